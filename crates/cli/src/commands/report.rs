//! `dbopt report`: a shareable directory (Markdown summary, CSV, JSON, SVG charts) on a table.

use super::table_name;
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use std::path::PathBuf;

/// `dbopt report`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt report --table-name events --out report-events
  dbopt report --table-name events --out report-events --force --include-sql

Writes summary.md (observed, proposed, predicted, built, measured, decided, each with its
reason), layout_eval.csv and .json, query_routing_summary.csv, proposals.csv (predicted beside
measured) and four SVG charts referenced from summary.md. The report is rendered beside --out
and moved into place, so a failure leaves no half-written report. Queries are shown by template
fingerprint; their text (which holds literal values) only with --include-sql.")]
pub struct ReportArgs {
    /// The table.
    #[arg(long)]
    pub table_name: String,
    /// Directory to write (must not exist or be empty, unless --force).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace the contents of a non-empty --out directory.
    #[arg(long)]
    pub force: bool,
    /// Include one example query text per template (it holds literal values).
    #[arg(long)]
    pub include_sql: bool,
}

/// Runs `dbopt report`.
pub fn run(ws: Workspace, args: ReportArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let written = ws.write_report(&table, &args.out, args.force, args.include_sql)?;
    println!(
        "wrote {} files to {}",
        written.files.len(),
        written.dir.display()
    );
    for file in &written.files {
        println!("  {}", file.display());
    }
    Ok(())
}
