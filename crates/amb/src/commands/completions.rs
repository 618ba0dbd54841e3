//! `amb completions SHELL`: a completion script for the shell, on standard output
//! (for example `amb completions bash > ~/.local/share/bash-completion/completions/amb`).

use std::process::ExitCode;

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
    clap_complete::generate(args.shell, &mut command, "amb", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
