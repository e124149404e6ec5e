//! `dbopt load-dataset`: a Parquet/CSV file or directory becomes a managed table.

use super::table_name;
use crate::cli::LoadDatasetArgs;
use crate::output::{human_bytes, human_count, print_initial_layout};
use crate::progress::Bar;
use anyhow::Result;
use dbopt::Workspace;
use dbopt::monitor::Monitored;

/// Runs `dbopt load-dataset`.
pub async fn run(ws: Workspace, args: LoadDatasetArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let bar = Bar::rows("loading");
    let monitor = super::start_monitor(&ws, args.monitor.as_deref())?;
    let progress = Monitored {
        inner: &bar,
        monitor: monitor.as_ref(),
    };
    let r = ws
        .load_dataset(&table, &args.source_path, args.replace, &progress)
        .await;
    super::finish_monitor(&ws, monitor);
    let r = r?;
    print_initial_layout(&r.layout);
    if let Some(c) = &r.csv {
        println!(
            "csv {} -> parquet {} ({:.1}x smaller); full scan of {} rows: csv {:.2}s, parquet {:.2}s ({:.1}x faster)",
            human_bytes(c.csv_bytes),
            human_bytes(c.parquet_bytes),
            c.compression_ratio(),
            human_count(c.rows),
            c.csv_scan.as_secs_f64(),
            c.parquet_scan.as_secs_f64(),
            c.scan_speedup()
        );
    }
    Ok(())
}
