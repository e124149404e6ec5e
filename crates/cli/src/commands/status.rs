//! `dbopt status`: per layout of a table, what it costs and saves; jobs; the last decision.

use super::table_name;
use crate::cli::Format;
use crate::output::text_style;
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;

/// `dbopt status`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt status --table-name events
  dbopt status --table-name events --format json | jq '.layouts[] | {layout_id, state, reward}'

Per layout: state (active, initial, candidate, building, retired, failed), spec, queries,
average and p95 latency and bytes scanned over every logged query, improvement and reward of
the last `dbopt evaluate`, and the share of queries it served in the last evaluation window
(config key eval_window). Then the best layout per query cluster, queued and running
migration jobs, and the last autopilot decision with its reason.")]
pub struct StatusArgs {
    /// The table.
    #[arg(long)]
    pub table_name: String,
    /// Output format (json: the fields documented in the README, "JSON output").
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt status`.
pub fn run(ws: Workspace, args: StatusArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let status = ws.status(&table)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        Format::Table | Format::Csv => {
            print!("{}", dbopt_report::status_text(&status, text_style()));
        }
    }
    Ok(())
}
