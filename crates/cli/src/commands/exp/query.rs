//! `dbopt exp query`: a view of the store, filtered, without loading it.

use super::Base;
use crate::cli::Format;
use crate::output::{human_bytes, print_batches};
use anyhow::Result;
use clap::{Args, ValueEnum};
use dbopt::exp::EngineSettings;
use dbopt::exp::{Target, query};

/// Which view `exp query` reads.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum TargetArg {
    /// One row per event, with the grid's parameters.
    #[default]
    Events,
    /// One row per seed summary, with the grid's parameters.
    Seeds,
    /// One row per grid.
    Grids,
}

/// `dbopt exp query`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt exp query results/ events --where \"regret < 0.05\" --limit 10
  dbopt exp query results/ events --where \"grid_id = '1f0c2a9e' AND seed = 3\" --format csv
  dbopt exp query results/ grids --format json

Reads the Parquet files in place: a filter on grid_id, seed or a --partition-by key skips the
other runs' files (the line on stderr says how many files were read). Columns: the files'
columns, the hive keys, then the grid's parameters (see `dbopt exp info`).")]
pub struct QueryArgs {
    /// The store's base directory.
    pub base: Base,
    /// The view to read.
    #[arg(value_enum, default_value_t = TargetArg::Events)]
    pub target: TargetArg,
    /// A boolean SQL expression over the view's columns.
    #[arg(long = "where", value_name = "EXPR")]
    pub filter: Option<String>,
    /// At most this many rows [default: all]
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt exp query`.
pub async fn run(settings: &EngineSettings, args: QueryArgs) -> Result<()> {
    let target = match args.target {
        TargetArg::Events => Target::Events,
        TargetArg::Seeds => Target::Seeds,
        TargetArg::Grids => Target::Grids,
    };
    let answer = query(
        settings,
        &args.base,
        target,
        args.filter.as_deref(),
        args.limit,
    )
    .await?;
    let o = &answer.outcome;
    print_batches(&o.batches, &o.schema, args.format)?;
    eprintln!(
        "{} rows in {:.1} ms; read {} of {} files, {}",
        o.rows,
        o.latency.as_secs_f64() * 1000.0,
        answer.files_read,
        answer.files_total,
        human_bytes(answer.bytes_scanned)
    );
    Ok(())
}
