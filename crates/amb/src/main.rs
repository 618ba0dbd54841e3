//! `amb`: the command-line front of the Ambients node.
//!
//! Each subcommand lives in its own module under `commands/`; this file parses the
//! arguments, runs one command and turns its outcome into an exit code: 0 for
//! success, 1 for a failure the command reported (every error answer of a node
//! included), 2 for bad usage. Only our own output's reader going away
//! (`amb log | head`) ends a command quietly with 0. With `--json`, the commands
//! that talk to a node (and `amb init`) also print their error on stdout in the
//! API's shape, `{"error": {"kind", "message", …}}`.

mod client;
mod commands;
mod daemon;
mod home;
mod inspector;
mod progress;
mod source;

use std::{io::Write, process::ExitCode};

use clap::{Parser, Subcommand};

/// Parse, format, compile and run programs of the Ambients protocol.
#[derive(Debug, Parser)]
#[command(name = "amb", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a program in canonical form (or indented with --pretty).
    Fmt(commands::fmt::Args),
    /// Compile a program to bytecode blocks and print its CID.
    Compile(commands::compile::Args),
    /// Reduce a program to its normal form and print it with its value.
    Reduce(commands::reduce::Args),
    /// Enumerate every reachable normal form of a program (bounded).
    Explore(commands::explore::Args),
    /// Deploy a program to a new address, run it and record every step as signed events.
    Run(commands::run::Args),
    /// Re-check every event of every log of a stored program.
    Verify(commands::verify::Args),
    /// List the events of a stored program (`--json`, `--dot` for Graphviz).
    Log(commands::log::Args),
    /// Show the ambient tree of a stored program after any step (time travel).
    Inspect(commands::inspect::Args),
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
}

/// mimalloc: the events of a long run are many small allocations, which the system
/// allocator serves slowly once the heap is large (about a tenth of `amb run`'s time
/// on a 10^5-step program; `BENCHMARKS.md`, "Signed events").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

impl Command {
    /// Whether the command prints its errors as JSON (`--json` of the commands that
    /// talk to a node, and of `amb init`).
    fn json_errors(&self) -> bool {
        match self {
            Command::Deploy(args) => args.json,
            Command::Info(args) => args.json,
            Command::Value(args) => args.json,
            Command::Init(args) => args.json,
            _ => false,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json_errors = cli.command.json_errors();
    let outcome = match cli.command {
        Command::Fmt(args) => commands::fmt::run(&args),
        Command::Compile(args) => commands::compile::run(&args),
        Command::Reduce(args) => commands::reduce::run(&args),
        Command::Explore(args) => commands::explore::run(&args),
        Command::Run(args) => commands::run::run(&args),
        Command::Verify(args) => commands::verify::run(&args),
        Command::Log(args) => commands::log::run(&args),
        Command::Inspect(args) => commands::inspect::run(&args),
        Command::Init(args) => commands::init::run(&args),
        Command::Node(args) => commands::node::run(&args),
        Command::Info(args) => commands::info::run(&args),
        Command::Deploy(args) => commands::deploy::run(&args),
        Command::Value(args) => commands::value::run(&args),
        Command::Ui(args) => commands::ui::run(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            if json_errors {
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
