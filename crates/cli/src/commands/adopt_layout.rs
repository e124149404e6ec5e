//! `dbopt adopt-layout`: register Parquet files written by another tool as a layout of a table.

use super::table_name;
use crate::cli::Format;
use crate::output::{human_bytes, human_count};
use crate::progress::Bar;
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;

/// `dbopt adopt-layout`
#[derive(Debug, Args)]
#[command(
    after_help = "Example (a Delta Lake Z-order of the events table, vacuumed):\n  dbopt adopt-layout --table-name events --source-path ./events_delta/\n  dbopt query --table-name events --layout <id> \"SELECT ...\"\n\nWith DATA_DIR on object storage the files may be a prefix of the same bucket (copied by the\nstore, server-side) or a local directory (uploaded):\n  DATA_DIR=s3://lake/dbopt/ dbopt adopt-layout --table-name events --source-path s3://lake/spark/events_z/"
)]
pub struct AdoptLayoutArgs {
    /// The managed table the files are a rewrite of.
    #[arg(long)]
    pub table_name: String,
    /// A directory (or, with DATA_DIR on object storage, a prefix of its bucket) of
    /// unpartitioned Parquet files holding exactly the table's rows.
    #[arg(long)]
    pub source_path: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt adopt-layout`.
pub async fn run(ws: Workspace, args: AdoptLayoutArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let report = ws
        .adopt_layout(&table, &args.source_path, &Bar::rows("verifying"))
        .await?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.newly_adopted {
        println!(
            "{}: adopted layout {} ({} files, {}, {} rows; digest verified)",
            report.table,
            report.layout_id,
            report.files,
            human_bytes(report.bytes),
            human_count(report.rows)
        );
    } else {
        println!(
            "{}: these files are already layout {}",
            report.table, report.layout_id
        );
    }
    Ok(())
}
