//! `dbopt query-log`: the logged queries with what each one measured.

use super::table_name;
use crate::cli::Format;
use crate::output::{Rows, human_bytes, print_rows};
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use dbopt::query_log::QueryLogRow;

/// Characters of SQL shown per row in the table format (CSV and JSON keep all of it).
const SQL_PREVIEW_CHARS: usize = 60;

/// `dbopt query-log`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt query-log
  dbopt query-log --table-name events --limit 10
  dbopt query-log --after-id 1200 --limit 0 --format json   # all logged after query 1200

One row per logged query, oldest first: id, time, table, layout, origin, workload, latency,
rows returned, bytes scanned, row groups and files pruned of total, error, SQL. JSON and CSV
add the fingerprint, cluster, routing policy, rows skipped by the page index, the result
digest and the tables scanned.")]
pub struct QueryLogArgs {
    /// Only queries that scanned this table, or name it without scanning [default: every table]
    #[arg(long)]
    pub table_name: Option<String>,
    /// Only queries logged after this id (ids only grow) [default: 0, from the first]
    #[arg(long, default_value_t = 0, value_name = "ID")]
    pub after_id: u64,
    /// The newest N of them, shown oldest first; 0 = all
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt query-log`.
pub fn run(ws: Workspace, args: QueryLogArgs) -> Result<()> {
    let table = args.table_name.as_deref().map(table_name).transpose()?;
    let after_id = i64::try_from(args.after_id).unwrap_or(i64::MAX);
    let limit = (args.limit > 0).then_some(args.limit);
    let queries = ws.query_log(table.as_ref(), after_id, limit)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&queries)?),
        Format::Csv => print_rows(&csv_rows(&queries), Format::Csv),
        Format::Table if queries.is_empty() => println!("no logged queries"),
        Format::Table => print_rows(&table_rows(&queries), Format::Table),
    }
    Ok(())
}

/// The CSV view: every field under its JSON name, raw numbers, empty cells for missing
/// values, the scans joined by `;`.
fn csv_rows(queries: &[QueryLogRow]) -> Rows {
    let mut rows = Rows::new(&[
        "id",
        "ts_ms",
        "table",
        "layout_id",
        "origin",
        "workload",
        "sql",
        "fingerprint",
        "cluster_id",
        "policy",
        "explored",
        "latency_ms",
        "rows_returned",
        "bytes_scanned",
        "row_groups_total",
        "row_groups_pruned",
        "files_total",
        "files_pruned",
        "rows_pruned_by_page_index",
        "result_digest",
        "error",
        "scans",
    ]);
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let opt = |v: Option<String>| v.unwrap_or_default();
    for q in queries {
        rows.push(vec![
            q.id.to_string(),
            q.ts_ms.to_string(),
            q.table.clone(),
            text(&q.layout_id),
            q.origin.clone(),
            text(&q.workload),
            q.sql.clone(),
            q.fingerprint.clone(),
            text(&q.cluster_id),
            text(&q.policy),
            opt(q.explored.map(|e| e.to_string())),
            opt(q.latency_ms.map(|ms| ms.to_string())),
            q.rows_returned.to_string(),
            q.metrics.bytes_scanned.to_string(),
            q.metrics.row_groups_total.to_string(),
            q.metrics.row_groups_pruned.to_string(),
            q.metrics.files_total.to_string(),
            q.metrics.files_pruned.to_string(),
            q.metrics.rows_pruned_by_page_index.to_string(),
            text(&q.result_digest),
            text(&q.error),
            q.scans.join(";"),
        ]);
    }
    rows
}

/// The table view: times, sizes and latencies for people, SQL shortened to one line.
fn table_rows(queries: &[QueryLogRow]) -> Rows {
    let mut rows = Rows::new(&[
        "id",
        "time (UTC)",
        "table",
        "layout",
        "origin",
        "workload",
        "latency",
        "rows",
        "scanned",
        "row groups pruned",
        "files pruned",
        "error",
        "sql",
    ]);
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for q in queries {
        rows.push(vec![
            q.id.to_string(),
            dbopt_report::format::utc_time(q.ts_ms),
            q.table.clone(),
            or_dash(&q.layout_id),
            q.origin.clone(),
            or_dash(&q.workload),
            q.latency_ms
                .map_or_else(|| "-".into(), dbopt_report::format::latency),
            q.rows_returned.to_string(),
            human_bytes(q.metrics.bytes_scanned),
            format!(
                "{}/{}",
                q.metrics.row_groups_pruned, q.metrics.row_groups_total
            ),
            format!("{}/{}", q.metrics.files_pruned, q.metrics.files_total),
            or_dash(&q.error.as_deref().map(one_line)),
            one_line(&q.sql),
        ]);
    }
    rows
}

/// `text` on one line (whitespace runs collapsed), cut to `SQL_PREVIEW_CHARS` with `...`.
fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= SQL_PREVIEW_CHARS {
        return flat;
    }
    let cut: String = flat.chars().take(SQL_PREVIEW_CHARS - 3).collect();
    cut + "..."
}
