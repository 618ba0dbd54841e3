//! The node's local HTTP JSON API (`spec/network.md` §7): node info with its
//! health, deploy, program status and value, a live stream of stored events
//! (server-sent events), and the inspector's read routes and page
//! (`crate::inspector`), behind the guard (`guard`) and the bounds (`bounds`).
//! Every error is an [`ApiError`]: extractors refuse through it, and so do the
//! fallbacks of unknown routes and wrong methods.

use std::{convert::Infallible, sync::Arc, time::Duration};

use amb_bytecode::Cid;
use amb_engine::Limits;
use amb_net::{NetError, NodeEvent, NodeHandle};
use amb_vm::system::Service;
use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State},
    http::{StatusCode, request},
    middleware::{from_fn, from_fn_with_state},
    response::sse::{Event, KeepAlive, Sse},
    routing::{get, post},
};
use futures::{Stream, StreamExt};
use serde::{Deserialize, de::DeserializeOwned};
use tokio::sync::watch;
use tokio_stream::wrappers::{BroadcastStream, errors::BroadcastStreamRecvError};

use super::{
    bounds::{self, BodyBounds, Concurrency},
    error::{self, ApiError},
    guard::{self, Guard},
    health, program,
    settings::ApiSettings,
};

/// What every handler shares.
#[derive(Clone, Debug)]
pub(crate) struct ApiState {
    pub(crate) node: NodeHandle,
    /// The cap on `wait_ms` (`api_max_wait_ms`).
    pub(crate) max_wait: Duration,
    /// Turns true when the node stops: event streams end.
    pub(crate) stopping: watch::Receiver<bool>,
}

impl ApiState {
    /// The API error of a failed node call: the store's failure where the node
    /// could not say better.
    fn failed(&self, e: NetError) -> ApiError {
        health::blame_store(e.into(), self.node.store())
    }
}

/// The API's routes (the node's own and the inspector's, `crate::inspector`),
/// fallbacks and layers.
pub(crate) fn router(state: ApiState, guard: Guard, settings: &ApiSettings) -> Router {
    let reader = crate::inspector::routes::Reader::new(
        Arc::clone(state.node.store()),
        settings.timeline_cache_bytes,
        Some(state.node.clone()),
    );
    let routes = Router::new()
        .route("/v1/info", get(info))
        .route("/v1/deploy", post(deploy))
        .route("/v1/programs/{cid}", get(status))
        .route("/v1/programs/{cid}/value", get(value))
        .route("/v1/events", get(events))
        .with_state(state)
        .merge(crate::inspector::routes::router(reader));
    layered(routes, guard, settings)
}

/// `routes` with the fallbacks of unknown routes and wrong methods, and the
/// layers (outermost first: panics caught, the guard, the bound on requests, the
/// body read whole).
pub(crate) fn layered(routes: Router, guard: Guard, settings: &ApiSettings) -> Router {
    let body = BodyBounds {
        max_bytes: settings.max_body_bytes,
        timeout: settings.body_timeout,
    };
    routes
        .method_not_allowed_fallback(error::wrong_method)
        .fallback(error::no_route)
        // `read_body` bounds the body; axum's own limit would answer in text.
        .layer(DefaultBodyLimit::disable())
        .layer(from_fn_with_state(body, bounds::read_body))
        .layer(from_fn_with_state(
            Arc::new(Concurrency::new(settings.max_requests)),
            bounds::limit_requests,
        ))
        .layer(from_fn_with_state(Arc::new(guard), guard::check))
        .layer(from_fn(bounds::catch_panic))
}

/// A JSON body whose rejections are [`ApiError`]s.
struct JsonBody<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(JsonBody(value))
    }
}

/// A request-parts extractor (`Path`, `Query`) whose rejections are [`ApiError`]s.
pub(crate) struct Checked<E>(pub(crate) E);

impl<S: Send + Sync, E> FromRequestParts<S> for Checked<E>
where
    E: FromRequestParts<S>,
    ApiError: From<E::Rejection>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut request::Parts, state: &S) -> Result<Self, ApiError> {
        Ok(Checked(E::from_request_parts(parts, state).await?))
    }
}

/// The program CID of an address (`/amb/<cid>` or a bare CID), or 400 `invalid`.
pub(crate) fn program_cid(text: &str) -> Result<Cid, ApiError> {
    let cid = text.strip_prefix("/amb/").unwrap_or(text);
    cid.parse()
        .map_err(|_| ApiError::invalid(format!("`{text}` is not a program address (/amb/<cid>)")))
}

/// The node's info, with `"health"`.
async fn info(State(api): State<ApiState>) -> Result<Json<serde_json::Value>, ApiError> {
    let info = api.node.info().await.map_err(|e| api.failed(e))?;
    let mut json = serde_json::to_value(info)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    json["health"] = health::to_json(api.node.store());
    json["services"] = serde_json::json!(OFFERED.map(Service::name));
    Ok(Json(json))
}

/// The system services (`spec/system.md` §1) this node performs for the programs
/// deployed to it: none yet, as a deployment is planned without services (`amb
/// run` performs them on one node). A deployment needing one is refused.
const OFFERED: [Service; 0] = [];

/// Refuses a deployment whose program holds a service ambient this node does not
/// offer, naming it (a source that does not parse is left to the deployment, which
/// names the place).
fn refuse_unoffered(source: &str) -> Result<(), ApiError> {
    let Ok(ast) = amb_syntax::parse(source) else {
        return Ok(());
    };
    let missing: Vec<String> = amb_vm::system::services_needed(&ast)
        .into_iter()
        .filter(|name| !OFFERED.iter().any(|s| s.name() == name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let offered = match OFFERED.map(Service::name).join(", ") {
        none if none.is_empty() => "none".to_string(),
        some => some,
    };
    Err(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "not-offered",
        format!(
            "the program needs the system service {} (spec/system.md), which this node does not offer to deployments (it offers: {offered}); `amb run` performs them on one node",
            missing.join(", "),
        ),
    ))
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
    State(api): State<ApiState>,
    JsonBody(request): JsonBody<DeployRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let deployed = deploy_program(&api, request).await;
    if let Err(e) = &deployed {
        e.log_refusal("a deploy");
    }
    deployed
}

/// Deploys the program of `request` on the node.
async fn deploy_program(
    api: &ApiState,
    request: DeployRequest,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limits = Limits {
        max_steps: request.max_steps.unwrap_or(Limits::default().max_steps),
        ..Limits::default()
    };
    let mut delegates = Vec::new();
    for (name, peer) in request.delegate {
        let peer = peer.parse().map_err(|_| {
            ApiError::invalid(format!("`{peer}` (delegate of `{name}`) is not a peer id"))
        })?;
        delegates.push((name, peer));
    }
    program::refuse_empty(&request.source)?;
    refuse_unoffered(&request.source)?;
    // Kept to name the place of a syntax error the node refuses.
    let source = request.source.clone();
    let deployed = if delegates.is_empty() {
        amb_net::deploy(&api.node, request.source, request.name, limits).await
    } else {
        amb_net::deploy::deploy_delegated(
            &api.node,
            request.source,
            request.name,
            limits,
            delegates,
        )
        .await
    };
    let deployed = deployed.map_err(|e| match e {
        NetError::Syntax(_) => program::syntax_error(e.into(), &source),
        e => api.failed(e),
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
    State(api): State<ApiState>,
    Checked(Path(cid)): Checked<Path<String>>,
) -> Result<Json<amb_net::ProgramStatus>, ApiError> {
    let program = program_cid(&cid)?;
    refuse_bytecode(&api, program)?;
    let status = api.node.status(program).await;
    Ok(Json(status.map_err(|e| api.failed(e))?))
}

/// Refuses a bytecode block's CID given for a program address (400 `invalid`, rule
/// `bytecode-cid`), as the CLI does.
fn refuse_bytecode(api: &ApiState, program: Cid) -> Result<(), ApiError> {
    let stored = crate::address::stored_kind(api.node.store(), program)
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string()))?;
    if stored == crate::address::Stored::Bytecode {
        let message = crate::address::AddressError::Bytecode(program).to_string();
        return Err(ApiError::invalid(message).rule("bytecode-cid"));
    }
    Ok(())
}

#[derive(Deserialize)]
struct ValueQuery {
    /// How long to wait for the program to be fetched and complete, in ms.
    wait_ms: Option<u64>,
}

async fn value(
    State(api): State<ApiState>,
    Checked(Path(cid)): Checked<Path<String>>,
    Checked(Query(query)): Checked<Query<ValueQuery>>,
) -> Result<Json<amb_net::ProgramValue>, ApiError> {
    let program = program_cid(&cid)?;
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(30_000));
    if wait > api.max_wait {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "limit",
            format!(
                "wait_ms={} is over the API's limit of {} ms (api_max_wait_ms)",
                wait.as_millis(),
                api.max_wait.as_millis()
            ),
        )
        .rule("api_max_wait_ms"));
    }
    refuse_bytecode(&api, program)?;
    let value = amb_net::value(&api.node, program, wait).await;
    if value.is_ok() {
        // What this node signed or took from gossip may name values it was not
        // given: fetched now, so that it can export the program whole.
        if let Err(e) = amb_net::sync::fetch_values(&api.node, program).await {
            tracing::debug!(%program, "fetching value blocks: {e}");
        }
    }
    Ok(Json(value.map_err(|e| match e {
        // The wording of an unknown address, with why no peer gave it.
        NetError::NotFound(detail) => ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!(
                "{}: {detail}",
                crate::address::AddressError::NotFound(format!("/amb/{program}"))
            ),
        ),
        e => api.failed(e),
    })?))
}

#[derive(Deserialize)]
struct EventsQuery {
    program: Option<String>,
}

/// Every event stored from now on (optionally of one program), one SSE `stored`
/// event each; a client too slow to keep up gets a `lagged` event with the count.
/// The stream ends when the node stops.
async fn events(
    State(api): State<ApiState>,
    Checked(Query(query)): Checked<Query<EventsQuery>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let program = query.program.as_deref().map(program_cid).transpose()?;
    let program = program.map(|c| c.to_string());
    let mut stopping = api.stopping.clone();
    let stop = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    let stream = BroadcastStream::new(api.node.subscribe_events())
        .flat_map(move |item| {
            let events: Vec<Result<Event, Infallible>> = match item {
                Ok(NodeEvent::Stored(stored)) => stored
                    .into_iter()
                    .filter(|s| program.as_ref().is_none_or(|p| *p == s.program))
                    .filter_map(|s| Event::default().event("stored").json_data(s).ok())
                    .map(Ok)
                    .collect(),
                Ok(_) => Vec::new(),
                Err(BroadcastStreamRecvError::Lagged(n)) => {
                    vec![Ok(Event::default().event("lagged").data(n.to_string()))]
                }
            };
            futures::stream::iter(events)
        })
        .take_until(stop);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
