//! Who may call the API (`spec/network.md` §7). A request is refused 403 when its
//! `Host` is not the API's own address or a loopback name with the API's port
//! (this closes DNS rebinding: a page served under an attacker's name that
//! resolves to this machine sends that name as `Host`), and when it carries an
//! `Origin` that is not the API's own origin (a cross-site browser request). Where
//! the bearer token is on, a request without it, or with another, is refused 401,
//! except a `GET` of the inspector's page and its files (`/`, `/programs/…`,
//! `/assets/…`), which hold nothing of the node's: the page sends the token with
//! each of its requests (it reads it from the URL fragment, never sent here).

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::error::ApiError;

/// The API's address and, when it is on, its token.
#[derive(Debug)]
pub(crate) struct Guard {
    addr: SocketAddr,
    token: Option<String>,
}

impl Guard {
    /// A guard for the API bound at `addr` (its real port), checking `token` when
    /// given.
    pub(crate) fn new(addr: SocketAddr, token: Option<String>) -> Guard {
        Guard { addr, token }
    }

    /// Checks one request's headers (`page`: a `GET` of the page or its files,
    /// which needs no token).
    pub(crate) fn check(&self, headers: &HeaderMap, page: bool) -> Result<(), ApiError> {
        let forbidden = |rule: &str, message: String| {
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", message).rule(rule)
        };
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(|| forbidden("host", "the request has no Host header".into()))?;
        if !self.is_own_host(host) {
            return Err(forbidden(
                "host",
                format!(
                    "Host `{host}` is neither this API's address ({}) nor a loopback name \
                     (localhost, 127.0.0.1, [::1]) with its port",
                    self.addr
                ),
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("(not text)");
            let own = origin
                .strip_prefix("http://")
                .is_some_and(|host| self.is_own_host(host));
            if !own {
                return Err(forbidden(
                    "origin",
                    format!(
                        "cross-origin requests are refused: Origin `{origin}` is not this \
                         API's own origin (http://{})",
                        self.addr
                    ),
                ));
            }
        }
        if let Some(token) = self.token.as_ref().filter(|_| !page) {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.strip_prefix("Bearer "));
            let unauthorized =
                |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
            match given {
                None => {
                    return Err(unauthorized(
                        "this API requires the node's bearer token (`Authorization: Bearer \
                         TOKEN`, TOKEN from the api_token file of the node's home; the CLI \
                         reads AMB_API_TOKEN or the api_token file of --home)",
                    ));
                }
                Some(given) if !same(given.trim().as_bytes(), token.as_bytes()) => {
                    return Err(unauthorized("the bearer token is not this node's"));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Whether `host` (a `Host` header, or an origin's host) names this API: its
    /// port, and its own IP, a loopback name or IP, or, when the API listens on
    /// every interface, any IP literal (DNS rebinding needs a name).
    fn is_own_host(&self, host: &str) -> bool {
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) if !port.contains(']') => (name, port.parse::<u16>().ok()),
            _ => (host, Some(80)),
        };
        if port != Some(self.addr.port()) {
            return false;
        }
        let name = name.to_ascii_lowercase();
        if name == "localhost" {
            return true;
        }
        let literal = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(&name);
        match literal.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || ip == self.addr.ip() || self.addr.ip().is_unspecified(),
            Err(_) => false,
        }
    }
}

/// Compares two byte strings in time that depends on their lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `path` is the inspector's page or one of its files.
fn is_page(path: &str) -> bool {
    path == "/" || path.starts_with("/programs/") || path.starts_with("/assets/")
}

/// The middleware: refuses a request the guard does not let through.
pub(crate) async fn check(
    State(guard): State<std::sync::Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    let page = request.method() == axum::http::Method::GET && is_page(request.uri().path());
    match guard.check(request.headers(), page) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), v.parse().unwrap()))
            .collect()
    }

    fn status(guard: &Guard, pairs: &[(header::HeaderName, &str)]) -> u16 {
        match guard.check(&headers(pairs), false) {
            Ok(()) => 200,
            Err(e) => e.status().as_u16(),
        }
    }

    #[test]
    fn hosts_and_origins() {
        let guard = Guard::new("127.0.0.1:4080".parse().unwrap(), None);
        for host in [
            "127.0.0.1:4080",
            "localhost:4080",
            "LOCALHOST:4080",
            "[::1]:4080",
        ] {
            assert_eq!(status(&guard, &[(header::HOST, host)]), 200, "{host}");
        }
        for host in [
            "evil.example:4080",
            "127.0.0.1:4081",
            "localhost",
            "10.0.0.1:4080",
            "localhost.evil.example:4080",
        ] {
            assert_eq!(status(&guard, &[(header::HOST, host)]), 403, "{host}");
        }
        assert_eq!(status(&guard, &[]), 403);
        let host = (header::HOST, "127.0.0.1:4080");
        let same_site = (header::ORIGIN, "http://localhost:4080");
        assert_eq!(status(&guard, &[host.clone(), same_site]), 200);
        for origin in ["http://evil.example", "null", "https://127.0.0.1:4080"] {
            let origin = (header::ORIGIN, origin);
            assert_eq!(status(&guard, &[host.clone(), origin]), 403);
        }
        // On every interface, any IP literal with the port is this API; a name is not.
        let any = Guard::new("0.0.0.0:80".parse().unwrap(), None);
        assert_eq!(status(&any, &[(header::HOST, "192.0.2.7")]), 200);
        assert_eq!(status(&any, &[(header::HOST, "rebound.example")]), 403);
    }

    #[test]
    fn the_token_where_it_is_on() {
        let guard = Guard::new("127.0.0.1:4080".parse().unwrap(), Some("s3cret".into()));
        let host = (header::HOST, "127.0.0.1:4080");
        assert_eq!(status(&guard, std::slice::from_ref(&host)), 401);
        let wrong = (header::AUTHORIZATION, "Bearer s3cres");
        assert_eq!(status(&guard, &[host.clone(), wrong]), 401);
        let basic = (header::AUTHORIZATION, "Basic s3cret");
        assert_eq!(status(&guard, &[host.clone(), basic]), 401);
        let right = (header::AUTHORIZATION, "Bearer s3cret");
        assert_eq!(status(&guard, &[host.clone(), right]), 200);
        // The page and its files need no token; the host is still checked.
        assert!(
            guard
                .check(&headers(std::slice::from_ref(&host)), true)
                .is_ok()
        );
        let evil = (header::HOST, "evil.example:4080");
        assert!(guard.check(&headers(&[evil]), true).is_err());
        for path in ["/", "/programs/bafy", "/assets/app.js"] {
            assert!(is_page(path), "{path}");
        }
        for path in [
            "/v1/programs",
            "/v1/programs/x/steps/1",
            "/v1/events",
            "/programsx",
        ] {
            assert!(!is_page(path), "{path}");
        }
    }
}
