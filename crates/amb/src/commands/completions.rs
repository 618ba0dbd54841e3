//! `amb completions SHELL`: a completion script for the shell, on standard output
//! (for example `amb completions bash > ~/.local/share/bash-completion/completions/amb`).

use std::{io::Write, process::ExitCode};

use clap::CommandFactory;
use clap_complete::Shell;

/// Arguments of `amb completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell.
    #[arg(value_enum)]
    shell: Shell,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut command = crate::Cli::command();
    // Written whole, then once: a reader gone (`| head -1`) is an error `main` ends
    // quietly with 0, where clap_complete's own writing would panic.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "amb", &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&script)?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}
