//! `dbopt query`: one read-only query, printed and logged with its scan metrics.

use super::{layout_id, table_name};
use crate::cli::QueryArgs;
use crate::output::{human_bytes, print_batches};
use anyhow::Result;
use dbopt::Workspace;
use dbopt::workload::{Routing, Runner};
use dbopt_catalog::QueryOrigin;
use dbopt_core::TableName;

/// A runner for `table`: pinned to `layout`, on the active layout with `no_route`, else routed
/// across the live layouts with the configured policy.
pub async fn open_runner<'a>(
    ws: &'a Workspace,
    table: &TableName,
    layout: Option<&str>,
    no_route: bool,
) -> Result<Runner<'a>> {
    Ok(match layout {
        Some(text) => Runner::pinned(ws, table, &layout_id(text)?).await?,
        None if no_route => Runner::open(ws, table, None).await?,
        None => {
            let routing = Routing {
                settings: ws.loop_settings()?,
                seed: ws.clock().now_ms() as u64,
            };
            Runner::open(ws, table, Some(&routing)).await?
        }
    })
}

/// Runs `dbopt query`: routed across the table's live layouts unless a layout is forced.
pub async fn run(ws: Workspace, args: QueryArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let mut runner = open_runner(&ws, &table, args.layout.as_deref(), args.no_route).await?;
    let outcome = runner.run(&args.sql, QueryOrigin::Query, None).await?;
    print_batches(&outcome.batches, &outcome.schema, args.format)?;
    if args.profile {
        let advice = ws.advice_for(&runner, &table, &args.sql, &outcome).await;
        super::profile::print_profile(&outcome, &advice, crate::cli::Format::Table);
    }
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
