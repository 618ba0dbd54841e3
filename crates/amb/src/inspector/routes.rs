//! The inspector's routes (`spec/network.md` §7, "Reading programs"), over a
//! [`Reader`]: the program list, a program's events, its state after a step, the
//! step's term, the diff of two steps, its verification, the peers and the slices
//! they host; and the page at `/` and `/programs/<cid>`. Reads run on the
//! blocking pool (they may replay a program); every error is an [`ApiError`].

use std::sync::Arc;

use amb_log::Store;
use amb_net::NodeHandle;
use amb_vm::travel::Timeline;
use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    assets,
    cache::{CacheError, TimelineCache},
    list, peers,
    views::{self, TreeQuery, ViewError},
};
use crate::daemon::{
    api::{Checked, program_cid},
    error::ApiError,
};

/// The most programs, events and tree nodes one answer holds.
const MAX_PROGRAMS: usize = 1000;
const MAX_EVENTS: usize = 10_000;
const MAX_NODES: usize = 5000;

/// What the routes read: a store, its timelines, and the node when there is one.
#[derive(Clone, Debug)]
pub(crate) struct Reader {
    store: Arc<Store>,
    cache: Arc<TimelineCache>,
    counted: Arc<list::Counted>,
    hosted: Arc<peers::HostedCache>,
    node: Option<NodeHandle>,
}

impl Reader {
    /// Reads `store`, keeping at most `cache_bytes` of timelines; `node` is the
    /// running node that owns the store, if any.
    pub(crate) fn new(store: Arc<Store>, cache_bytes: usize, node: Option<NodeHandle>) -> Reader {
        Reader {
            store,
            // Without a node, the store is opened alone (`amb ui`): nothing writes it.
            cache: Arc::new(TimelineCache::new(cache_bytes, node.is_none())),
            counted: Arc::default(),
            hosted: Arc::default(),
            node,
        }
    }
}

/// The routes, with their state applied.
pub(crate) fn router(reader: Reader) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/programs/{cid}", get(assets::index))
        .route("/assets/{file}", get(asset))
        .route("/v1/programs", get(programs))
        .route("/v1/programs/{cid}/events", get(events))
        .route("/v1/programs/{cid}/steps/{at}", get(state))
        .route("/v1/programs/{cid}/steps/{at}/term", get(term))
        .route("/v1/programs/{cid}/diff", get(diff))
        .route("/v1/programs/{cid}/verify", get(verify))
        .route("/v1/programs/{cid}/car", get(car))
        .route("/v1/peers", get(peers))
        .with_state(reader)
}

async fn asset(Checked(Path(file)): Checked<Path<String>>) -> Result<Response, ApiError> {
    assets::file(&file).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no file /assets/{file}"),
        )
    })
}

impl From<CacheError> for ApiError {
    fn from(e: CacheError) -> ApiError {
        let message = e.to_string();
        match e {
            CacheError::Unknown(_) => ApiError::new(StatusCode::NOT_FOUND, "not-found", message),
            CacheError::Bytecode(_) => ApiError::invalid(message).rule("bytecode-cid"),
            CacheError::Store(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", message)
            }
            // No program at that address here (a slice's, a part's, no manifest).
            CacheError::Replay(amb_vm::verify::VerifyError::Program(..)) => {
                ApiError::new(StatusCode::NOT_FOUND, "not-found", message)
            }
            CacheError::Replay(e) => {
                let error = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message);
                match (e.rule(), e.event()) {
                    (Some(rule), Some(at)) => error.rule(rule).at(at.to_string()),
                    (Some(rule), None) => error.rule(rule),
                    _ => error,
                }
            }
        }
    }
}

impl From<ViewError> for ApiError {
    fn from(e: ViewError) -> ApiError {
        let message = e.to_string();
        match e {
            ViewError::StepOutOfRange { .. } => ApiError::invalid(message).rule("step-range"),
            ViewError::NoSuchPath(_) | ViewError::NoSuchEvent(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not-found", message)
            }
            ViewError::BadMoment(_) => ApiError::new(StatusCode::BAD_REQUEST, "malformed", message),
            ViewError::Replay(e) => CacheError::Replay(e).into(),
        }
    }
}

/// Runs a blocking read on the blocking pool.
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(read).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("a read failed: {e}"),
        )
    })?
}

/// Runs `view` over the timeline of `program` (loading it if needed); the answer
/// says `load_ms` when this request loaded it.
async fn with_timeline(
    reader: Reader,
    program: &str,
    view: impl FnOnce(&Timeline<'static>) -> Result<Value, ViewError> + Send + 'static,
) -> Result<Json<Value>, ApiError> {
    let program = program_cid(program)?;
    blocking(move || {
        let loaded = reader.cache.get(&reader.store, program)?;
        let timeline = loaded.timeline.lock().unwrap_or_else(|e| e.into_inner());
        let mut answer = view(&timeline)?;
        if let (Some(ms), Some(object)) = (loaded.load_ms, answer.as_object_mut()) {
            object.insert("load_ms".into(), json!(ms));
        }
        Ok(Json(answer))
    })
    .await
}

/// A bounded `limit`: at most `max`, 400 `limit` past it.
fn limit(asked: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    match asked {
        None => Ok(default),
        Some(0) => Err(ApiError::invalid("limit must be at least 1")),
        Some(n) if n > max => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "limit",
            format!("limit={n} is over the route's maximum of {max}"),
        )
        .rule("limit")),
        Some(n) => Ok(n),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    after: Option<String>,
}

async fn programs(
    State(reader): State<Reader>,
    Checked(Query(query)): Checked<Query<ListQuery>>,
) -> Result<Json<Value>, ApiError> {
    let limit = limit(query.limit, 50, MAX_PROGRAMS)?;
    let after = query.after.as_deref().map(program_cid).transpose()?;
    let store = Arc::clone(&reader.store);
    let (page, next) = blocking(move || Ok(list::window(&store, after, limit)?)).await?;
    // What the node knows of each listed program's run: over (its walk ended,
    // or a peer said so), failed.
    let mut known = Vec::with_capacity(page.len());
    for program in &page {
        let mut k = list::Known {
            // A local store's runs are written whole by `amb run`.
            over: reader.node.is_none(),
            failed: false,
        };
        if let Some(node) = &reader.node {
            k.over = node.is_finished(program);
            if let Ok(Some(status)) = node.execution(*program).await {
                k.failed = status.failed.is_some();
                k.over |= status.done;
            }
        }
        known.push(k);
    }
    blocking(move || {
        let mut programs = Vec::with_capacity(page.len());
        for (program, known) in page.into_iter().zip(known) {
            programs.push(list::entry(&reader.store, &reader.counted, program, known)?);
        }
        Ok(Json(json!({ "programs": programs, "next": next })))
    })
    .await
}

#[derive(Deserialize)]
struct EventsQuery {
    after: Option<usize>,
    limit: Option<usize>,
}

async fn events(
    State(reader): State<Reader>,
    Checked(Path(cid)): Checked<Path<String>>,
    Checked(Query(query)): Checked<Query<EventsQuery>>,
) -> Result<Json<Value>, ApiError> {
    let limit = limit(query.limit, 500, MAX_EVENTS)?;
    // A delegate's part (its order's events) is listed as stored: no program to
    // replay it under.
    let part = program_cid(&cid)?;
    let store = Arc::clone(&reader.store);
    let part_events = blocking(move || {
        if !amb_vm::part::is_part(&store, part).map_err(CacheError::Store)? {
            return Ok(None);
        }
        let events = amb_vm::part::part_events(&store, part).map_err(CacheError::Replay)?;
        Ok(Some(views::part_events_page(
            part,
            &events,
            query.after,
            limit,
        )))
    })
    .await?;
    if let Some(page) = part_events {
        return Ok(Json(page));
    }
    with_timeline(reader, &cid, move |timeline| {
        Ok(views::events_page(timeline, query.after, limit))
    })
    .await
}

#[derive(Deserialize)]
struct StateQuery {
    path: Option<String>,
    max_nodes: Option<usize>,
    from: Option<usize>,
}

async fn state(
    State(reader): State<Reader>,
    Checked(Path((cid, at))): Checked<Path<(String, String)>>,
    Checked(Query(query)): Checked<Query<StateQuery>>,
) -> Result<Json<Value>, ApiError> {
    let moment = views::moment(&at)?;
    let tree = TreeQuery {
        path: query.path,
        max_nodes: limit(query.max_nodes, 2000, MAX_NODES)?,
        from: query.from.unwrap_or(0),
    };
    with_timeline(reader, &cid, move |timeline| {
        views::state(timeline, moment, &tree)
    })
    .await
}

async fn term(
    State(reader): State<Reader>,
    Checked(Path((cid, at))): Checked<Path<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let moment = views::moment(&at)?;
    with_timeline(reader, &cid, move |timeline| views::term(timeline, moment)).await
}

#[derive(Deserialize)]
struct DiffQuery {
    from: String,
    to: String,
}

async fn diff(
    State(reader): State<Reader>,
    Checked(Path(cid)): Checked<Path<String>>,
    Checked(Query(query)): Checked<Query<DiffQuery>>,
) -> Result<Json<Value>, ApiError> {
    let from = views::moment(&query.from)?;
    let to = views::moment(&query.to)?;
    with_timeline(reader, &cid, move |timeline| {
        views::diff(timeline, from, to)
    })
    .await
}

/// `amb verify --json`'s answer, verified by the node over its store.
async fn verify(
    State(reader): State<Reader>,
    Checked(Path(cid)): Checked<Path<String>>,
) -> Result<Json<Value>, ApiError> {
    let program = program_cid(&cid)?;
    blocking(move || {
        super::cache::stored_events(&reader.store, program)?;
        let verified = amb_vm::verify::verify_prefix_with_progress(&reader.store, program, &())
            .map_err(|e| {
                let error = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "refused",
                    format!("verifying /amb/{program}: {e}"),
                );
                match (e.rule(), e.event()) {
                    (Some(rule), Some(at)) => error.rule(rule).at(at.to_string()),
                    (Some(rule), None) => error.rule(rule),
                    _ => error,
                }
            })?;
        Ok(Json(crate::commands::verify::verified_json(
            program, &verified,
        )))
    })
    .await
}

/// The program as a CAR file, as `amb export` writes it (`amb export --node`).
async fn car(
    State(reader): State<Reader>,
    Checked(Path(cid)): Checked<Path<String>>,
) -> Result<Response, ApiError> {
    let program = program_cid(&cid)?;
    let bytes = blocking(move || {
        super::cache::stored_events(&reader.store, program)?;
        crate::commands::car::car_bytes(&reader.store, program).map_err(|e| {
            if e.is::<crate::commands::car::MissingBlock>() {
                ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("{e:#}"))
                    .rule("missing-block")
            } else {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("exporting /amb/{program}: {e:#}"),
                )
            }
        })
    })
    .await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            crate::commands::car::CAR_MEDIA_TYPE,
        )],
        bytes,
    )
        .into_response())
}

/// This node and its connected peers, each with the slices (logs) it hosts now of
/// the programs the store holds: `{"peers": [{"peer_id", "self", "slices":
/// [{"program", "log", "name", "creator"}]}]}` (see `peers`).
async fn peers(State(reader): State<Reader>) -> Result<Json<Value>, ApiError> {
    let mut ids = Vec::new();
    if let Some(node) = &reader.node {
        ids.push((node.peer_id().to_string(), true));
        let info = node.info().await.map_err(ApiError::from)?;
        for peer in info.peers {
            ids.push((peer.peer_id.clone(), false));
        }
    }
    blocking(move || {
        let store = &reader.store;
        let mut slices: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
        let failed = |e| ApiError::from(CacheError::Store(e));
        for program in store.programs().map_err(failed)? {
            for (peer, slice) in peers::hosted(store, &reader.cache, &reader.hosted, program)? {
                slices.entry(peer).or_default().push(slice);
            }
        }
        for writer in slices.keys() {
            if !ids.iter().any(|(id, _)| id == writer) {
                ids.push((writer.clone(), false));
            }
        }
        let peers: Vec<Value> = ids
            .into_iter()
            .map(|(id, me)| {
                json!({
                    "peer_id": id,
                    "self": me,
                    "slices": slices.get(&id).cloned().unwrap_or_default(),
                })
            })
            .collect();
        Ok(Json(json!({ "peers": peers })))
    })
    .await
}
