//! `amb`: the command-line front of the Ambients node.
//!
//! Each subcommand lives in its own module under `commands/`; this file parses the
//! arguments, runs one command and turns its outcome into an exit code: 0 for
//! success, 1 for a failure the command reported (every error answer of a node
//! included), 2 for bad usage. Only our own output's reader going away
//! (`amb log | head`) ends a command quietly with 0. The global options (`--home`,
//! `--node`, `--json`) are in `options`; with `--json` every command prints its
//! result as JSON, and its error once on stdout in the API's shape,
//! `{"error": {"kind", "message", "rule"?, "at"?}}`, with the same exit code.

mod address;
mod client;
mod commands;
mod daemon;
mod home;
mod inspector;
mod options;
mod progress;
mod source;

use std::{io::Write, process::ExitCode};

use clap::{Parser, Subcommand};

/// The version `amb -V` prints: the crate's version and the commit it was built
/// from (`build.rs`).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("AMB_COMMIT"), ")");

/// Run programs of the Ambients protocol as signed, verifiable event logs: format,
/// compile, reduce, run and verify them locally; run peer nodes, deploy programs
/// to them and inspect every step.
#[derive(Debug, Parser)]
#[command(name = "amb", version = VERSION, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    global: options::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a program: record every step as signed events, print its value and address.
    Run(commands::run::Args),
    /// Re-check every event of every log of a stored program.
    Verify(commands::verify::Args),
    /// List the programs of the store (or of a node, with --node).
    Ls(commands::ls::Args),
    /// List the events of a stored program (`--json`, `--dot` for Graphviz).
    Log(commands::log::Args),
    /// Show the ambient tree of a stored program after any step (time travel).
    Inspect(commands::inspect::Args),
    /// Write a stored program with its signed events to a CAR file.
    Export(commands::car::ExportArgs),
    /// Verify the program of a CAR file and store it (nothing is stored on failure).
    Import(commands::car::ImportArgs),
    /// Print a program in canonical form (or indented with --pretty), comments kept.
    Fmt(commands::fmt::Args),
    /// Compile a program to bytecode blocks and print its CID.
    Compile(commands::compile::Args),
    /// Reduce a program to its normal form and print it with its value (nothing stored).
    Reduce(commands::reduce::Args),
    /// Enumerate every reachable normal form of a program (bounded).
    Explore(commands::explore::Args),
    /// Create the node's key, configuration and store (once; an existing key is kept).
    Init(commands::init::Args),
    /// Run a peer node: libp2p gossip and sync, and a local HTTP API.
    Node(commands::node::Args),
    /// Show a running node's peer id, addresses, peers and refused messages.
    Info(commands::info::Args),
    /// Deploy a program on a running node and print its address.
    Deploy(commands::deploy::Args),
    /// Fetch, verify and replay a program through a running node; print its value.
    Value(commands::value::Args),
    /// Serve the time-travel inspector (a page and read routes) over the home's store.
    Ui(commands::ui::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(commands::completions::Args),
}

impl Command {
    /// The name of a command that never talks to a node (`--node` is refused for it).
    fn works_locally(&self) -> Option<&'static str> {
        Some(match self {
            Command::Run(_) => "run",
            Command::Import(_) => "import",
            Command::Fmt(_) => "fmt",
            Command::Compile(_) => "compile",
            Command::Reduce(_) => "reduce",
            Command::Explore(_) => "explore",
            Command::Init(_) => "init",
            Command::Node(_) => "node",
            Command::Ui(_) => "ui",
            Command::Completions(_) => "completions",
            Command::Verify(_)
            | Command::Ls(_)
            | Command::Log(_)
            | Command::Inspect(_)
            | Command::Export(_)
            | Command::Info(_)
            | Command::Deploy(_)
            | Command::Value(_) => return None,
        })
    }
}

/// mimalloc: the events of a long run are many small allocations, which the system
/// allocator serves slowly once the heap is large (about a tenth of `amb run`'s time
/// on a 10^5-step program; `BENCHMARKS.md`, "Signed events").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let global = &cli.global;
    if let (Some(_), Some(name)) = (&global.node, cli.command.works_locally()) {
        let error = <Cli as clap::CommandFactory>::command().error(
            clap::error::ErrorKind::ArgumentConflict,
            format!(
                "`--node` does nothing for `amb {name}`, which works on this machine alone \
                 (`amb deploy FILE --node URL` runs a program on a node)"
            ),
        );
        return usage_error(&error);
    }
    let outcome = match &cli.command {
        Command::Run(args) => commands::run::run(args, global),
        Command::Verify(args) => commands::verify::run(args, global),
        Command::Ls(args) => commands::ls::run(args, global),
        Command::Log(args) => commands::log::run(args, global),
        Command::Inspect(args) => commands::inspect::run(args, global),
        Command::Export(args) => commands::car::export(args, global),
        Command::Import(args) => commands::car::import(args, global),
        Command::Fmt(args) => commands::fmt::run(args, global),
        Command::Compile(args) => commands::compile::run(args, global),
        Command::Reduce(args) => commands::reduce::run(args, global),
        Command::Explore(args) => commands::explore::run(args, global),
        Command::Init(args) => commands::init::run(args, global),
        Command::Node(args) => commands::node::run(args, &global.home()),
        Command::Info(args) => commands::info::run(args, global),
        Command::Deploy(args) => commands::deploy::run(args, global),
        Command::Value(args) => commands::value::run(args, global),
        Command::Ui(args) => commands::ui::run(args, &global.home()),
        Command::Completions(args) => commands::completions::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            if global.json {
                commands::json_error::print_json_error(&error);
            }
            // A closed stderr is no reason to panic.
            let mut err = std::io::stderr().lock();
            let _ = match error.downcast_ref::<source::Reported>() {
                Some(reported) => write!(err, "{reported}"),
                None => writeln!(err, "error: {error:#}"),
            };
            ExitCode::FAILURE
        }
    }
}

/// Bad usage (clap's error): its text on stderr, and with `--json` among the
/// arguments also once on stdout as `{"error": {"kind": "invalid", "message"}}`;
/// exit 2. `--help` and `--version` print as clap prints them, exit 0.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let wants_json = std::env::args_os()
        .skip(1)
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json");
    let is_usage = !matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if wants_json && is_usage {
        let message = error.to_string();
        let first = message.lines().next().unwrap_or_default();
        let body = serde_json::json!({ "error": {
            "kind": "invalid",
            "message": first.strip_prefix("error: ").unwrap_or(first),
        }});
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{body}").and_then(|()| stdout.flush());
    }
    // A closed pipe while printing help is not a failure either.
    let _ = error.print();
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}

/// Whether an error is the reader of our output going away (`amb log | head`), which
/// is not a failure of the command. A node's connection cut while we send it a
/// request is not one: the client reports it without an I/O error (`client.rs`).
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
