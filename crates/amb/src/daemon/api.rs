//! The node's local HTTP JSON API (`spec/network.md` §7): node info, deploy,
//! program status and value, and a live stream of stored events (server-sent
//! events). Errors are `{"error": "..."}` with a 4xx or 5xx status.

use std::{convert::Infallible, time::Duration};

use amb_bytecode::Cid;
use amb_engine::Limits;
use amb_net::{NetError, NodeEvent, NodeHandle};
use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio_stream::wrappers::{BroadcastStream, errors::BroadcastStreamRecvError};

/// The API's routes.
pub(crate) fn router(node: NodeHandle) -> Router {
    Router::new()
        .route("/v1/info", get(info))
        .route("/v1/deploy", post(deploy))
        .route("/v1/programs/{cid}", get(status))
        .route("/v1/programs/{cid}/value", get(value))
        .route("/v1/events", get(events))
        .with_state(node)
}

/// An API error: a status and a message.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<NetError> for ApiError {
    fn from(e: NetError) -> ApiError {
        let status = match e {
            NetError::Stopped | NetError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            NetError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            NetError::Invalid(_) => StatusCode::BAD_REQUEST,
            NetError::Limit { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            NetError::NotFound(_) => StatusCode::NOT_FOUND,
            NetError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            NetError::Storage { full: true, .. } => StatusCode::INSUFFICIENT_STORAGE,
            NetError::Storage { full: false, .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        };
        ApiError(status, e.to_string())
    }
}

fn program_cid(text: &str) -> Result<Cid, ApiError> {
    let cid = text.strip_prefix("/amb/").unwrap_or(text);
    cid.parse().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("`{text}` is not a program address (/amb/<cid>)"),
        )
    })
}

async fn info(State(node): State<NodeHandle>) -> Result<Json<amb_net::NodeInfo>, ApiError> {
    Ok(Json(node.info().await?))
}

#[derive(Deserialize)]
struct DeployRequest {
    source: String,
    name: Option<String>,
    max_steps: Option<u64>,
    /// Ambient names delegated to peers: `{"NAME": "PEER_ID"}`.
    #[serde(default)]
    delegate: std::collections::BTreeMap<String, String>,
}

async fn deploy(
    State(node): State<NodeHandle>,
    Json(request): Json<DeployRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limits = Limits {
        max_steps: request.max_steps.unwrap_or(Limits::default().max_steps),
        ..Limits::default()
    };
    let mut delegates = Vec::new();
    for (name, peer) in request.delegate {
        let peer = peer.parse().map_err(|_| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("`{peer}` (delegate of `{name}`) is not a peer id"),
            )
        })?;
        delegates.push((name, peer));
    }
    let deployed = if delegates.is_empty() {
        amb_net::deploy(&node, request.source, request.name, limits).await
    } else {
        amb_net::delegation::deploy_delegated(
            &node,
            request.source,
            request.name,
            limits,
            delegates,
        )
        .await
    };
    let deployed = deployed.map_err(|e| match e {
        NetError::Other(message) => ApiError(StatusCode::BAD_REQUEST, message),
        other => other.into(),
    })?;
    Ok(Json(serde_json::json!({
        "address": format!("/amb/{}", deployed.program),
        "normal_form": deployed.normal_form,
        "value": deployed.value,
        "steps": deployed.steps,
        "events": deployed.events,
    })))
}

async fn status(
    State(node): State<NodeHandle>,
    Path(cid): Path<String>,
) -> Result<Json<amb_net::ProgramStatus>, ApiError> {
    Ok(Json(node.status(program_cid(&cid)?).await?))
}

#[derive(Deserialize)]
struct ValueQuery {
    /// How long to wait for the program to be fetched and complete, in ms.
    wait_ms: Option<u64>,
}

async fn value(
    State(node): State<NodeHandle>,
    Path(cid): Path<String>,
    Query(query): Query<ValueQuery>,
) -> Result<Json<amb_net::ProgramValue>, ApiError> {
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(30_000));
    let value = amb_net::value(&node, program_cid(&cid)?, wait)
        .await
        .map_err(|e| match e {
            NetError::Other(message) => ApiError(StatusCode::NOT_FOUND, message),
            other => other.into(),
        })?;
    Ok(Json(value))
}

#[derive(Deserialize)]
struct EventsQuery {
    program: Option<String>,
}

/// Every event stored from now on (optionally of one program), one SSE `stored`
/// event each; a client too slow to keep up gets a `lagged` event with the count.
async fn events(
    State(node): State<NodeHandle>,
    Query(query): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let program = query.program.as_deref().map(program_cid).transpose()?;
    let program = program.map(|c| c.to_string());
    let stream = BroadcastStream::new(node.subscribe_events()).flat_map(move |item| {
        let events: Vec<Result<Event, Infallible>> = match item {
            Ok(NodeEvent::Stored(stored)) => stored
                .into_iter()
                .filter(|s| program.as_ref().is_none_or(|p| *p == s.program))
                .map(|s| {
                    Ok(Event::default()
                        .event("stored")
                        .json_data(s)
                        .expect("a summary serializes"))
                })
                .collect(),
            Ok(_) => Vec::new(),
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                vec![Ok(Event::default().event("lagged").data(n.to_string()))]
            }
        };
        futures::stream::iter(events)
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
