//! `dbopt history`: the time series of a table's layout evaluations.

use super::table_name;
use crate::cli::Format;
use crate::output::text_style;
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;

/// `dbopt history`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt history --table-name events
  dbopt history --table-name events --only-scored --limit 200 --format csv > evals.csv

One row per layout, cluster and evaluation window written by `dbopt evaluate` or autopilot
(cluster * is every cluster of the window): window end, layout, cluster, reward, improvement,
queries, average and p95 latency, average bytes scanned and rows returned, regressed.")]
pub struct HistoryArgs {
    /// The table.
    #[arg(long)]
    pub table_name: String,
    /// The newest N rows, shown oldest first.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: usize,
    /// Only rows with a reward (layouts and clusters with enough samples and a baseline).
    #[arg(long)]
    pub only_scored: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt history`.
pub fn run(ws: Workspace, args: HistoryArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let rows = ws.history(&table, args.limit, args.only_scored)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Csv => print!("{}", dbopt_report::history_csv(&rows)),
        Format::Table => print!("{}", dbopt_report::history_text(&rows, text_style())),
    }
    Ok(())
}
