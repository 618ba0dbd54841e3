//! The page's files, built into the binary from `crates/amb/web/` (plain ES
//! modules, CSS and SVG: nothing is fetched at build or run time).

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

/// The page (the program list, and a program's view at `/programs/<cid>`).
const INDEX: &str = include_str!("../../web/index.html");

/// The files under `/assets/`: name, content type, bytes.
const FILES: [(&str, &str, &str); 3] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../../web/icon.svg"),
    ),
];

/// The page itself.
pub(crate) async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
        .into_response()
}

/// One of the page's files, or 404.
pub(crate) fn file(name: &str) -> Option<Response> {
    let (_, kind, body) = FILES.iter().find(|(n, _, _)| *n == name)?;
    Some(
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
    )
}
