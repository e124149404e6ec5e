//! `dbopt completions`: print the shell completion script for the `dbopt` command.

use anyhow::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

/// `dbopt completions`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt completions bash > ~/.local/share/bash-completion/completions/dbopt
  dbopt completions zsh > \"${fpath[1]}/_dbopt\"
  dbopt completions fish > ~/.config/fish/completions/dbopt.fish
  dbopt completions powershell >> $PROFILE")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Runs `dbopt completions`: writes the script to stdout.
pub fn run(args: &CompletionsArgs) -> Result<()> {
    let mut command = crate::cli::Cli::command();
    clap_complete::generate(args.shell, &mut command, "dbopt", &mut std::io::stdout());
    Ok(())
}
