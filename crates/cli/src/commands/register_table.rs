//! `dbopt register-table`: bring a Delta Lake table under dbopt where it is, read through its
//! own log, without copying its data.

use super::table_name;
use crate::cli::Format;
use crate::output::{human_bytes, human_count};
use crate::progress::Bar;
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use std::path::PathBuf;

/// `dbopt register-table`
#[derive(Debug, Args)]
#[command(
    after_help = "Example (a table written by Spark, delta-rs or the deltalake package):
  dbopt register-table --table-name events --delta /lake/events
  dbopt query --table-name events \"SELECT count(*) FROM events\"
  dbopt promote --table-name events --layout <id>   # one commit of the table's log
  dbopt rollback --table-name events                # a RESTORE commit

The table stays where it is and stays the source of truth: its current version becomes the
initial layout (hard links to its files, no copy), and a layout becomes the table's content
only by a commit of its log (remove + add, dataChange false). Registered again with --replace,
dbopt reads the table's newest version. Unpartitioned tables without deletion vectors or
column mapping are supported; others are refused and left untouched."
)]
pub struct RegisterTableArgs {
    /// The name queries use for the table.
    #[arg(long)]
    pub table_name: String,
    /// The Delta table's root directory (the one holding `_delta_log`).
    #[arg(long)]
    pub delta: PathBuf,
    /// Replace a table of the same name (its query log stays).
    #[arg(long)]
    pub replace: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt register-table`.
pub async fn run(ws: Workspace, args: RegisterTableArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let report = ws
        .register_delta_table(&table, &args.delta, args.replace, &Bar::rows("reading"))
        .await?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{}: registered Delta table {} at version {} ({} files, {}, {} rows; digest recorded)",
        report.table,
        report.location,
        report.version,
        report.files,
        human_bytes(report.bytes),
        human_count(report.rows)
    );
    if !report.z_order_by.is_empty() {
        println!(
            "  the table was last Z-ordered by {}: that is its initial layout's spec",
            report.z_order_by.join(", ")
        );
    }
    Ok(())
}
