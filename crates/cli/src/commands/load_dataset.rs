//! `dbopt load-dataset`: a Parquet/CSV file or directory becomes a managed table.

use super::table_name;
use crate::cli::LoadDatasetArgs;
use crate::output::{human_bytes, human_count};
use crate::progress::Bar;
use anyhow::Result;
use dbopt::Workspace;

/// Runs `dbopt load-dataset`.
pub async fn run(ws: Workspace, args: LoadDatasetArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let bar = Bar::rows("loading");
    let r = ws
        .load_dataset(&table, &args.source_path, args.replace, &bar)
        .await?;
    println!(
        "{}: {} rows, {} files, {} in {:.2}s ({} rows/s)",
        r.table,
        human_count(r.rows),
        r.files,
        human_bytes(r.bytes),
        r.elapsed.as_secs_f64(),
        human_count(r.rows_per_second() as u64)
    );
    Ok(())
}
