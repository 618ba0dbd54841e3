//! The API's per-request bounds (`spec/network.md` §7), as middleware: a panic in
//! a handler is caught and answered 500; at most `api_max_requests` requests are
//! handled at once (an open event stream counts until it closes), the next is
//! answered 503 `busy` at once; a body is read whole before the handler runs, at
//! most `api_max_body_bytes` (413) within `api_body_timeout_secs` (408).

use std::{
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::{FutureExt, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// A body over the limit is still read, and thrown away, up to this many bytes,
/// so that the client, still sending, can read the 413 instead of a broken pipe;
/// past it the connection is closed.
const DRAIN_BYTES: u64 = 64 << 20;

/// Answers 500 with the panic's message when a handler panics; the server goes on.
pub(crate) async fn catch_panic(request: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            tracing::error!(panic = %what, "an API request panicked");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("the node failed while answering: {what}"),
            )
            .into_response()
        }
    }
}

/// The bound on requests in progress.
#[derive(Debug)]
pub(crate) struct Concurrency {
    permits: Arc<Semaphore>,
    max: usize,
}

impl Concurrency {
    pub(crate) fn new(max: usize) -> Concurrency {
        Concurrency {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }
}

/// Answers 503 `busy` when `api_max_requests` requests are in progress; a request
/// holds its place until its answer's body is sent (an event stream: until it
/// closes).
pub(crate) async fn limit_requests(
    State(bound): State<Arc<Concurrency>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(permit) = Arc::clone(&bound.permits).try_acquire_owned() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "busy: {} requests are in progress already (api_max_requests); try again",
                bound.max
            ),
        )
        .rule("api_max_requests")
        .into_response();
    };
    next.run(request).await.map(|body| {
        Body::new(Holding {
            body,
            _permit: permit,
        })
    })
}

/// A response body that keeps its request's place until it is dropped.
struct Holding {
    body: Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for Holding {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The body bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyBounds {
    pub(crate) max_bytes: u64,
    pub(crate) timeout: Duration,
}

/// Reads the request's body whole, within the bounds, and hands it on.
pub(crate) async fn read_body(
    State(bounds): State<BodyBounds>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let too_large = |size: &str| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit",
            format!(
                "the request body ({size} bytes) is over the API's limit of {} bytes \
                 (api_max_body_bytes)",
                bounds.max_bytes
            ),
        )
        .rule("api_max_body_bytes")
        .close()
    };
    let declared = declared_length(&parts.headers);
    if let Some(length) = declared.filter(|n| *n > bounds.max_bytes) {
        // A client that waits for `100 Continue`, or a body too large to drain, is
        // answered before anything more is read.
        let waits = parts
            .headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if waits || length > DRAIN_BYTES {
            return too_large(&length.to_string()).into_response();
        }
    }
    match tokio::time::timeout(bounds.timeout, collect(body, bounds.max_bytes)).await {
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the request body did not arrive within {} s (api_body_timeout_secs)",
                bounds.timeout.as_secs()
            ),
        )
        .rule("api_body_timeout_secs")
        .close()
        .into_response(),
        Ok(Err(e)) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("reading the request body: {e}"),
        )
        .close()
        .into_response(),
        Ok(Ok(Collected::TooLarge(seen))) => too_large(&seen).into_response(),
        Ok(Ok(Collected::Whole(bytes))) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A body read whole, or the count of bytes seen when it went over the limit.
enum Collected {
    Whole(Vec<u8>),
    /// "N" (drained whole) or "more than N".
    TooLarge(String),
}

async fn collect(body: Body, max: u64) -> Result<Collected, axum::Error> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    let mut seen: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        seen += chunk.len() as u64;
        if seen <= max {
            bytes.extend_from_slice(&chunk);
        } else if seen > DRAIN_BYTES {
            return Ok(Collected::TooLarge(format!("more than {DRAIN_BYTES}")));
        } else {
            bytes = Vec::new();
        }
    }
    Ok(if seen > max {
        Collected::TooLarge(seen.to_string())
    } else {
        Collected::Whole(bytes)
    })
}

#[cfg(test)]
mod tests {
    use axum::{
        Router,
        middleware::{from_fn, from_fn_with_state},
        routing::{get, post},
    };
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    async fn call(router: &Router, request: Request) -> (u16, Value) {
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn request(method: &str, path: &str, body: Body) -> Request {
        Request::builder()
            .method(method)
            .uri(path)
            .body(body)
            .unwrap()
    }

    async fn boom() -> &'static str {
        panic!("boom at the handler")
    }

    #[tokio::test]
    async fn a_panic_is_answered_500_and_the_server_goes_on() {
        let router = Router::new()
            .route("/boom", get(boom))
            .route("/ok", get(|| async { "{}" }))
            .layer(from_fn(catch_panic));
        let (status, json) = call(&router, request("GET", "/boom", Body::empty())).await;
        assert_eq!(status, 500);
        assert_eq!(json["error"]["kind"], "internal");
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains("boom at the handler"), "{message}");
        assert_eq!(
            call(&router, request("GET", "/ok", Body::empty())).await.0,
            200
        );
    }

    #[tokio::test]
    async fn bodies_over_the_limit_or_too_slow_are_refused() {
        let bounds = BodyBounds {
            max_bytes: 10,
            timeout: Duration::from_millis(200),
        };
        let router = Router::new()
            .route("/echo", post(|body: Bytes| async move { body }))
            .layer(from_fn_with_state(bounds, read_body));
        let (status, _) = call(&router, request("POST", "/echo", Body::from("0123456789"))).await;
        assert_eq!(status, 200);
        let (status, json) =
            call(&router, request("POST", "/echo", Body::from("0123456789A"))).await;
        assert_eq!(
            (status, &json["error"]["rule"]),
            (413, &"api_max_body_bytes".into())
        );
        let never = Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>());
        let (status, json) = call(&router, request("POST", "/echo", never)).await;
        assert_eq!((status, &json["error"]["kind"]), (408, &"timeout".into()));
    }
}
