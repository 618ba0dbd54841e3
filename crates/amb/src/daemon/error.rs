//! The API's errors (`spec/network.md` §7): one JSON shape everywhere,
//! `{"error": {"kind", "message", "rule"?, "at"?}}`, with a status of the right
//! class: 4xx for the caller's mistakes, 5xx for the node's own failures. Every
//! `NetError` kind, every extractor rejection and the router's fallbacks come out
//! through [`ApiError`].
//!
//! The kinds, their statuses and when each is given are listed in
//! `spec/network.md` §7: `malformed`, `invalid`, `unauthorized`, `forbidden`,
//! `not-found`, `method`, `timeout`, `limit`, `content-type`, `schema`,
//! `refused`, `internal`, `peer`, `busy`, `stopped`, `storage`.

use amb_net::{NetError, ingest};
use axum::{
    Json,
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// An API error: a status, a kind, a message for people, and the rule broken and
/// the place where there are ones.
#[derive(Debug, Serialize)]
pub(crate) struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    kind: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<String>,
    /// Whether to close the connection after the answer (a body left unread).
    #[serde(skip)]
    close: bool,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            rule: None,
            at: None,
            close: false,
        }
    }

    /// A request that cannot be done as asked (400 `invalid`).
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    /// Logs the refusal of a request (`what`: "a deploy") at info level, so that the
    /// node's log says why what a user asked for did not happen.
    pub(crate) fn log_refusal(&self, what: &str) {
        tracing::info!(
            status = self.status.as_u16(),
            kind = self.kind,
            rule = self.rule.as_deref().unwrap_or(""),
            "refused {what}: {}",
            self.message
        );
    }

    /// Names the rule (or limit) broken.
    pub(crate) fn rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }

    /// Names the place: a line:column, an event's CID.
    pub(crate) fn at(mut self, at: impl Into<String>) -> Self {
        self.at = Some(at.into());
        self
    }

    /// Closes the connection after the answer.
    pub(crate) fn close(mut self) -> Self {
        self.close = true;
        self
    }

    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn kind(&self) -> &'static str {
        self.kind
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// An axum rejection (or a router fallback) with its own status and text.
    fn rejection(status: StatusCode, message: String) -> Self {
        let kind = match status {
            StatusCode::BAD_REQUEST => "malformed",
            StatusCode::NOT_FOUND => "not-found",
            StatusCode::METHOD_NOT_ALLOWED => "method",
            StatusCode::PAYLOAD_TOO_LARGE => "limit",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "content-type",
            StatusCode::UNPROCESSABLE_ENTITY => "schema",
            s if s.is_server_error() => "internal",
            _ => "invalid",
        };
        ApiError::new(status, kind, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, Json(serde_json::json!({ "error": &self }))).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<NetError> for ApiError {
    fn from(e: NetError) -> ApiError {
        let message = e.to_string();
        let new = |status, kind| ApiError::new(status, kind, message.clone());
        match e {
            NetError::Invalid(_) | NetError::Syntax(_) | NetError::Compile(_) => {
                new(StatusCode::BAD_REQUEST, "invalid")
            }
            NetError::Limit { limit, .. } => {
                new(StatusCode::PAYLOAD_TOO_LARGE, "limit").rule(limit)
            }
            NetError::NotFound(_) => new(StatusCode::NOT_FOUND, "not-found"),
            NetError::Timeout(_) => new(StatusCode::GATEWAY_TIMEOUT, "timeout"),
            NetError::Refused(refusal) => {
                let error = match refusal.rule {
                    ingest::RULE_STORE => new(StatusCode::SERVICE_UNAVAILABLE, "storage"),
                    _ if !refusal.blames_sender() => new(StatusCode::SERVICE_UNAVAILABLE, "busy"),
                    _ => new(StatusCode::UNPROCESSABLE_ENTITY, "refused"),
                };
                let error = error.rule(refusal.rule);
                match refusal.event {
                    Some(event) => error.at(event.to_string()),
                    None => error,
                }
            }
            NetError::Storage { full: true, .. } => {
                new(StatusCode::INSUFFICIENT_STORAGE, "storage").rule("disk-full")
            }
            NetError::Storage { full: false, .. } => {
                new(StatusCode::SERVICE_UNAVAILABLE, "storage")
            }
            NetError::Busy(_) => new(StatusCode::SERVICE_UNAVAILABLE, "busy"),
            NetError::Stopped => new(StatusCode::SERVICE_UNAVAILABLE, "stopped"),
            NetError::Peer { .. } => new(StatusCode::BAD_GATEWAY, "peer"),
            _ => new(StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        ApiError::rejection(r.status(), r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::rejection(r.status(), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::rejection(r.status(), r.body_text())
    }
}

/// The answer to a route that does not exist.
pub(crate) async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::rejection(
        StatusCode::NOT_FOUND,
        format!("no route {} (the API's routes start with /v1/)", uri.path()),
    )
}

/// The answer to a route asked with a method it does not have.
pub(crate) async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::rejection(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not answer {method}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_errors_map_to_their_class() {
        let status = |e: NetError| ApiError::from(e).status().as_u16();
        assert_eq!(status(NetError::Invalid("x".into())), 400);
        let limit = NetError::Limit {
            limit: "max_depth",
            detail: "x".into(),
        };
        assert_eq!(ApiError::from(limit).rule.as_deref(), Some("max_depth"));
        assert_eq!(status(NetError::NotFound("x".into())), 404);
        assert_eq!(status(NetError::Timeout("x".into())), 504);
        let full = NetError::Storage {
            full: true,
            detail: "x".into(),
        };
        assert_eq!(status(full), 507);
        let failing = NetError::Storage {
            full: false,
            detail: "x".into(),
        };
        assert_eq!(status(failing), 503);
        assert_eq!(status(NetError::Busy("x".into())), 503);
        assert_eq!(status(NetError::Stopped), 503);
        assert_eq!(status(NetError::Internal("x".into())), 500);
        let refused = |rule| {
            ApiError::from(NetError::Refused(amb_net::Refusal {
                rule,
                event: None,
                detail: "x".into(),
            }))
        };
        assert_eq!(
            refused(amb_net::Rule::from_name("signature"))
                .status()
                .as_u16(),
            422
        );
        assert_eq!(refused(ingest::RULE_BUFFER_FULL).kind, "busy");
        assert_eq!(refused(ingest::RULE_STORE).kind, "storage");
    }

    #[test]
    fn the_shape_has_kind_message_and_optional_rule_and_at() {
        let error = ApiError::invalid("bad").rule("syntax").at("3:8");
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "invalid", "message": "bad", "rule": "syntax", "at": "3:8"})
        );
        let json = serde_json::to_value(ApiError::invalid("bad")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "invalid", "message": "bad"})
        );
    }
}
