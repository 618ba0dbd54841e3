//! `amb node`: the peer daemon. It loads the home (key, `[node]` settings, store),
//! starts the libp2p node and the HTTP API, prints one JSON `ready` line on stdout,
//! logs to stderr, and stops cleanly on SIGINT or SIGTERM.

pub(crate) mod api;

use std::{net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use amb_log::Store;
use amb_net::{FaultConfig, NodeTable};
use anyhow::Context;
use libp2p::Multiaddr;

use crate::home::HomeArgs;

/// The API's address when neither the flag, the variable nor the file gives one.
const DEFAULT_API: &str = "127.0.0.1:4080";

/// Arguments of `amb node`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on for peers (repeatable) [default: /ip4/0.0.0.0/tcp/0].
    #[arg(long, value_name = "MULTIADDR")]
    listen: Vec<Multiaddr>,
    /// Address of the local HTTP JSON API, HOST:PORT (port 0 picks one) [default:
    /// 127.0.0.1:4080].
    #[arg(long, value_name = "HOST:PORT")]
    api: Option<SocketAddr>,
    /// A peer to connect to at start (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    peer: Vec<Multiaddr>,
    /// Do not discover peers on the local network by mDNS.
    #[arg(long)]
    no_mdns: bool,
    /// A seeded fault layer on received gossip, for tests and benchmarks:
    /// `seed=N,drop=P,duplicate=P,delay_ms=N`.
    #[arg(long, value_name = "SETTINGS", value_parser = FaultConfig::parse)]
    faults: Option<FaultConfig>,
    #[command(flatten)]
    home: HomeArgs,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let loaded = args.home.load()?;
    let table = NodeTable::load(loaded.config.node.as_ref(), |key| {
        std::env::var(format!("AMB_NODE_{key}")).ok()
    })
    .map_err(anyhow::Error::msg)?;
    let mut config = table.to_config().map_err(anyhow::Error::msg)?;
    if !args.listen.is_empty() {
        config.listen = args.listen.clone();
    }
    config.peers.extend(args.peer.iter().cloned());
    if args.no_mdns {
        config.mdns = false;
    }
    config.faults = args.faults;
    let api: SocketAddr = match (args.api, &table.api) {
        (Some(api), _) => api,
        (None, Some(text)) => text
            .parse()
            .with_context(|| format!("the API address `{text}` is not HOST:PORT"))?,
        (None, None) => DEFAULT_API.parse().expect("a valid address"),
    };
    init_logging();
    let store = Arc::new(
        Store::open_or_create(&loaded.store_path)
            .with_context(|| format!("opening the store {}", loaded.store_path.display()))?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config, api, loaded.key, store))?;
    // Blocking tasks (a long verification) are not waited for past this.
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(ExitCode::SUCCESS)
}

async fn serve(
    config: amb_net::NodeConfig,
    api: SocketAddr,
    key: amb_log::SigningKey,
    store: Arc<Store>,
) -> anyhow::Result<()> {
    let (node, ready) = amb_net::start(config, key, store).await?;
    let listener = tokio::net::TcpListener::bind(api)
        .await
        .with_context(|| format!("binding the API to {api}"))?;
    let api_url = format!("http://{}", listener.local_addr()?);
    let line = serde_json::json!({
        "event": "ready",
        "peer_id": ready.peer_id,
        "listen": ready.listen,
        "api": api_url,
    });
    println!("{line}");
    tracing::info!(peer_id = %ready.peer_id, api = %api_url, "node ready");
    let router = api::router(node.clone());
    axum::serve(listener, router)
        .with_graceful_shutdown(stop_signal())
        .await
        .context("serving the API")?;
    node.shutdown();
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Logs to stderr; `RUST_LOG` chooses what (default: info for amb, warn else).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,amb=info,amb_net=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
