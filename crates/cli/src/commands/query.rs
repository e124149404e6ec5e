//! `dbopt query`: one read-only query, printed and logged with its scan metrics.

use super::{layout_id, table_name};
use crate::cli::QueryArgs;
use crate::output::{human_bytes, print_batches};
use anyhow::Result;
use dbopt::Workspace;
use dbopt::workload::{Routing, Runner};
use dbopt_catalog::QueryOrigin;

/// Runs `dbopt query`: routed across the table's live layouts unless a layout is forced.
pub async fn run(ws: Workspace, args: QueryArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let mut runner = match &args.layout {
        Some(text) => Runner::pinned(&ws, &table, &layout_id(text)?).await?,
        None if args.no_route => Runner::open(&ws, &table, None).await?,
        None => {
            let routing = Routing {
                settings: ws.loop_settings()?,
                seed: ws.clock().now_ms() as u64,
            };
            Runner::open(&ws, &table, Some(&routing)).await?
        }
    };
    let outcome = runner.run(&args.sql, QueryOrigin::Query, None).await?;
    print_batches(&outcome.batches, &outcome.schema, args.format)?;
    for scan in &outcome.scans {
        let m = &scan.metrics;
        eprintln!(
            "{}@{}: scanned {}, files {}/{} pruned, row groups {}/{} pruned",
            scan.table,
            scan.layout_id,
            human_bytes(m.bytes_scanned),
            m.files_pruned,
            m.files_total,
            m.row_groups_pruned,
            m.row_groups_total
        );
    }
    eprintln!(
        "{} rows in {:.1} ms",
        outcome.rows,
        outcome.latency.as_secs_f64() * 1000.0
    );
    Ok(())
}
