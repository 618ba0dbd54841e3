//! The API's HTTP/1 server loop, on hyper and hyper-util (`axum::serve` cannot
//! bound the time a client takes to send a request head). Each connection gets
//! `api_header_timeout_secs` for every request head, counted from when it
//! connects or from the end of its previous answer, so the same bound closes idle
//! kept-alive connections; a connection that is sending a body or receiving an
//! answer (an event stream) is not idle. On stop: no new connections, event
//! streams end, each connection finishes the request in progress, and the loop
//! waits for them at most [`GRACE`].

use std::{future::Future, time::Duration};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
};

/// How long a stopping server waits for requests in progress.
const GRACE: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `stop` resolves; then sets `stopping`.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
    stopping: watch::Sender<bool>,
) {
    // Every connection task holds a clone of `open`; `closed` ends when all are gone.
    let (open, mut closed) = mpsc::channel::<()>(1);
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "accepting an API connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let router = router.clone();
        let open = open.clone();
        let mut stopping = stopping.subscribe();
        tokio::spawn(async move {
            let _open = open;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let connection =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router));
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = async { drop(stopping.wait_for(|stop| *stop).await) } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "API connection closed");
            }
        });
    }
    drop(listener);
    stopping.send_replace(true);
    drop(open);
    let _ = tokio::time::timeout(GRACE, closed.recv()).await;
}
