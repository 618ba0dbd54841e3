//! The node's health (`spec/network.md` §7): its store's, as `Store::health`
//! says (whether its last write failed, and why, or its file is damaged). A write
//! that failed on I/O, a full disk most often, passes by itself: the store reopens
//! its database before the next write, which succeeds once there is room, and the
//! health with it. The health check does not try an empty write
//! (`Store::retry_failed_write`): on a full tmpfs an empty commit, which does not
//! grow the file, succeeded where every deploy still failed, so a full disk would
//! have looked healthy.

use amb_log::{Health, Store};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::error::ApiError;

/// `{"ok": true}`, or `{"ok": false, "store": "…"}`.
pub(crate) fn to_json(store: &Store) -> Value {
    match failure(store) {
        None => json!({ "ok": true }),
        Some((_, _, what, _)) => json!({ "ok": false, "store": what }),
    }
}

/// An error the node could not name better (500 `internal`) met while its store
/// fails is that failure: 507 `storage` when the disk is full, else 503.
pub(crate) fn blame_store(error: ApiError, store: &Store) -> ApiError {
    if error.kind() != "internal" {
        return error;
    }
    match failure(store) {
        None => error,
        Some((status, rule, what, detail)) => {
            let message = if error.message().contains(&detail) {
                format!("{} ({rule})", error.message())
            } else {
                format!("{}: the store: {what}", error.message())
            };
            ApiError::new(status, "storage", message).rule(rule)
        }
    }
}

/// The store's failure: the status it gives, its rule, what it is, and the
/// store's own words.
fn failure(store: &Store) -> Option<(StatusCode, &'static str, String, String)> {
    let (status, rule, what, detail) = match store.health() {
        Health::Ok => return None,
        Health::WriteFailed {
            message,
            disk_full: true,
        } => (
            StatusCode::INSUFFICIENT_STORAGE,
            "disk-full",
            "disk full",
            message,
        ),
        Health::WriteFailed { message, .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "write-failed",
            "a write failed",
            message,
        ),
        Health::Damaged { detail } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "damaged",
            "damaged",
            detail,
        ),
        other => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unhealthy",
            "unhealthy",
            format!("{other:?}"),
        ),
    };
    Some((status, rule, format!("{what}: {detail}"), detail))
}
