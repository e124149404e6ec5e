//! `dbopt query`: one read-only query, printed and logged with its scan metrics.

use super::table_name;
use crate::cli::QueryArgs;
use crate::output::{human_bytes, print_batches};
use anyhow::{Result, bail};
use dbopt::Workspace;
use dbopt_catalog::QueryOrigin;
use dbopt_core::LayoutId;

/// Runs `dbopt query`.
pub async fn run(ws: Workspace, args: QueryArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let layout = match &args.layout {
        Some(text) => match LayoutId::parse(text) {
            Some(id) => Some(id),
            None => bail!(dbopt::DbError::Invalid(format!(
                "invalid layout id '{text}': use 'initial' or the hex id shown by `dbopt tables`"
            ))),
        },
        None => None,
    };
    let session = ws.query_session(&table, layout.as_ref()).await?;
    let outcome = session.run(&args.sql, QueryOrigin::Query, None).await?;
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
