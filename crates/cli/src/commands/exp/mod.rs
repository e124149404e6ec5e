//! `dbopt exp`: the experiment store, one file per subcommand.

pub mod convert;
pub mod info;
pub mod query;
pub mod run;
pub mod views;
pub mod write;

use anyhow::Result;
use clap::{Args, Subcommand};
use dbopt_core::Config;
use std::path::PathBuf;

/// `dbopt exp ...`
#[derive(Debug, Subcommand)]
pub enum ExpCommand {
    /// Write one run (parameters, seed, events and/or a seed summary) into a store.
    Write(write::WriteArgs),
    /// Print (or --write) the DuckDB views that read the store in place.
    Views(views::ViewsArgs),
    /// Query the store's events, seeds or grids without loading them.
    Query(query::QueryArgs),
    /// Grids, seeds, rows, bytes, columns and parameter values of a store.
    Info(info::InfoArgs),
    /// Import a directory of CSV results (one file per run) into a store.
    Convert(convert::ConvertArgs),
    /// Run a sweep of dbopt itself (grid.toml) into a store; resumes after an interruption.
    Run(run::RunArgs),
}

/// How a store is created (ignored, or checked, when it exists).
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Parameters that become hive partition keys above grid_id, outermost first, e.g.
    /// algo,accountant; fixed when the store is created [default: none]
    #[arg(long, value_delimiter = ',', value_name = "KEYS")]
    pub partition_by: Option<Vec<String>>,
    /// Minimum grid id length in hex characters, 1 to 64; fixed when the store is created
    /// [default: 8]
    #[arg(long, value_name = "N")]
    pub id_chars: Option<usize>,
    /// Parameter keys to drop besides the documented volatile ones (timestamps, hosts, paths,
    /// keys starting with _) [default: none]
    #[arg(long, value_delimiter = ',', value_name = "KEYS")]
    pub volatile: Vec<String>,
}

impl StoreArgs {
    /// The facade's options.
    pub fn options(&self) -> dbopt::exp::StoreOptions {
        dbopt::exp::StoreOptions {
            partition_by: self.partition_by.clone(),
            id_chars: self.id_chars,
            extra_volatile: self.volatile.clone(),
        }
    }
}

/// Runs `dbopt exp ...`; the store needs no workspace, only the engine settings.
pub async fn run(config: &Config, command: ExpCommand) -> Result<()> {
    let settings =
        || dbopt::workspace::engine_settings(config, std::env::temp_dir().join("dbopt-exp-spill"));
    match command {
        ExpCommand::Write(args) => write::run(&settings(), args).await,
        ExpCommand::Views(args) => views::run(&args),
        ExpCommand::Query(args) => query::run(&settings(), args).await,
        ExpCommand::Info(args) => info::run(&settings(), args).await,
        ExpCommand::Convert(args) => convert::run(&settings(), args).await,
        ExpCommand::Run(args) => run::run(config, args).await,
    }
}

/// The base directory argument of every subcommand.
pub type Base = PathBuf;
