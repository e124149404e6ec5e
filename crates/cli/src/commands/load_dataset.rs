//! `dbopt load-dataset`: a Parquet/CSV file or directory becomes a managed table.

use super::table_name;
use crate::cli::LoadDatasetArgs;
use crate::output::print_initial_layout;
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
    print_initial_layout(&r);
    Ok(())
}
