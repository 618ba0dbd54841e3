//! `amb node`: the peer daemon. It loads the home (key, `[node]` settings, API
//! token, store), starts the libp2p node and the HTTP API, prints one JSON `ready`
//! line on stdout, logs to stderr, and stops cleanly on SIGINT or SIGTERM.
//!
//! The API (`spec/network.md` §7) is split by job: the routes (`api`), the error
//! shape and status classes (`error`), who may call (`guard`), the per-request
//! bounds (`bounds`), the server loop with its header timeout (`server`), the
//! server's settings (`settings`), the health `/v1/info` reports (`health`) and
//! the checks of a deployed program's text (`program`).

pub(crate) mod api;
mod bounds;
pub(crate) mod error;
mod guard;
mod health;
mod program;
mod server;
mod settings;

use std::{io::Write, net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use amb_log::{Home, Store};
use amb_net::{FaultConfig, NodeTable};
use anyhow::Context;
use libp2p::Multiaddr;
use tokio::sync::watch;

use crate::home::HomeArgs;
use settings::ApiSettings;

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
    /// Require the bearer token of the home's `api_token` file on a loopback API too
    /// (beyond loopback it is always required) [config: api_token].
    #[arg(long)]
    api_token: bool,
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
}

/// `amb node` with the home of the global `--home`.
pub(crate) fn run(args: &Args, home: &HomeArgs) -> anyhow::Result<ExitCode> {
    // A missing home is created, as `amb init` does (said on standard error).
    let loaded = home.load_or_create()?;
    let home = home.resolve()?;
    let env = |key: &str| std::env::var(format!("AMB_NODE_{key}")).ok();
    // The server's own keys first: amb-net refuses keys it does not know.
    let mut node_table = loaded.config.node.clone();
    let settings = ApiSettings::take(node_table.as_mut(), env).map_err(anyhow::Error::msg)?;
    let table = NodeTable::load(node_table.as_ref(), env).map_err(anyhow::Error::msg)?;
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
    let token = api_token(&home, api, args.api_token || table.api_token == Some(true))?;
    init_logging();
    if !api.ip().is_loopback() {
        tracing::warn!(
            %api,
            "the API listens beyond loopback: every request must carry the bearer token"
        );
    }
    let store = Arc::new(
        Store::open_or_create_with_cache(&loaded.store_path, config.store_cache_bytes)
            .with_context(|| format!("opening the store {}", loaded.store_path.display()))?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let api = Api {
        addr: api,
        token,
        settings,
    };
    runtime.block_on(serve(config, api, loaded.key, store))?;
    // Blocking tasks (a long verification) are not waited for past this.
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(ExitCode::SUCCESS)
}

/// The bearer token the API checks: always beyond loopback (a node there refuses
/// to start without one), on loopback when `asked` (the `api_token` setting).
fn api_token(home: &Home, api: SocketAddr, asked: bool) -> anyhow::Result<Option<String>> {
    let beyond = !api.ip().is_loopback();
    if !beyond && !asked {
        return Ok(None);
    }
    if let Some(token) = home.api_token()? {
        return Ok(Some(token));
    }
    let why = if beyond {
        format!(
            "the API address {api} is beyond loopback, where every request needs the bearer token"
        )
    } else {
        "the api_token setting asks for the bearer token".to_string()
    };
    anyhow::bail!(
        "{why}, but the home has no token file {}: run `amb init --home {}` to create one",
        home.api_token_path().display(),
        home.dir().display()
    )
}

/// The inspector page's URL: with the bearer token, when it is on, in the
/// fragment (`#token=…`), which a browser never sends: the page reads it, keeps it
/// for the tab and sends it as `Authorization: Bearer`.
fn page_url(api: &str, token: Option<&str>) -> String {
    match token {
        None => format!("{api}/"),
        Some(token) => {
            let encoded: String = token
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        char::from(b).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{api}/#token={encoded}")
        }
    }
}

/// The API's address, token and bounds.
struct Api {
    addr: SocketAddr,
    token: Option<String>,
    settings: ApiSettings,
}

async fn serve(
    config: amb_net::NodeConfig,
    api: Api,
    key: amb_log::SigningKey,
    store: Arc<Store>,
) -> anyhow::Result<()> {
    let (node, ready) = amb_net::start(config, key, store).await?;
    let listener = tokio::net::TcpListener::bind(api.addr)
        .await
        .with_context(|| format!("binding the API to {}", api.addr))?;
    let local = listener.local_addr()?;
    let api_url = format!("http://{local}");
    let line = serde_json::json!({
        "event": "ready",
        "peer_id": ready.peer_id,
        "listen": ready.listen,
        "api": api_url,
        "page": page_url(&api_url, api.token.as_deref()),
    });
    // Nobody reading the ready line is no reason to stop serving.
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        tracing::warn!(error = %e, "writing the ready line");
    }
    drop(out);
    tracing::info!(peer_id = %ready.peer_id, api = %api_url, "node ready");
    let (stopping, stopping_rx) = watch::channel(false);
    let state = api::ApiState {
        node: node.clone(),
        max_wait: api.settings.max_wait,
        stopping: stopping_rx,
    };
    let router = api::router(state, guard::Guard::new(local, api.token), &api.settings);
    server::serve(
        listener,
        router,
        api.settings.header_timeout,
        stop_signal(),
        stopping,
    )
    .await;
    node.shutdown();
    tracing::info!("stopped");
    Ok(())
}

/// Arguments of `amb ui`.
#[derive(Debug, clap::Args)]
pub(crate) struct UiArgs {
    /// Address to serve the inspector on, HOST:PORT (loopback; port 0 picks one).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:4090")]
    api: SocketAddr,
}

/// `amb ui`: the inspector's page and read routes over the home's store, with no
/// peer (the store is opened, so a running node's store is refused: ask the node
/// instead). Prints `{"event": "ready", "api": URL}` when it listens.
pub(crate) fn ui(args: &UiArgs, home: &HomeArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.api.ip().is_loopback(),
        "amb ui serves a store with no bearer token: give a loopback --api, not {}",
        args.api
    );
    let loaded = home.load()?;
    let mut node_table = loaded.config.node.clone();
    let env = |key: &str| std::env::var(format!("AMB_NODE_{key}")).ok();
    let settings = ApiSettings::take(node_table.as_mut(), env).map_err(anyhow::Error::msg)?;
    let store = Arc::new(
        Store::open(&loaded.store_path)
            .with_context(|| format!("opening the store {}", loaded.store_path.display()))?,
    );
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.api)
            .await
            .with_context(|| format!("binding {}", args.api))?;
        let local = listener.local_addr()?;
        let reader =
            crate::inspector::routes::Reader::new(store, settings.timeline_cache_bytes, None);
        let router = api::layered(
            crate::inspector::routes::router(reader),
            guard::Guard::new(local, None),
            &settings,
        );
        let api_url = format!("http://{local}");
        let line = serde_json::json!({
            "event": "ready",
            "api": api_url,
            "page": page_url(&api_url, None),
        });
        println!("{line}");
        let (stopping, _) = watch::channel(false);
        server::serve(
            listener,
            router,
            settings.header_timeout,
            stop_signal(),
            stopping,
        )
        .await;
        anyhow::Ok(())
    })?;
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(ExitCode::SUCCESS)
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
