//! `query-log`: the logged queries with their measured figures, read back from the catalog
//! (what the engine measured for each query, as `query`, workloads and imports logged it).

use crate::{DbError, Workspace};
use dbopt_catalog::LoggedQuery;
use dbopt_core::{ScanMetrics, TableName};
use serde::Serialize;

/// One logged query as `dbopt query-log` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryLogRow {
    /// The query log id; ids only grow, so `after_id` reads what was logged since one.
    pub id: i64,
    /// When the query ran (or was imported), in milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// The table the query was logged against.
    pub table: String,
    /// The layout of that table the query read (None when it read none).
    pub layout_id: Option<String>,
    /// Where the query came from: `query`, `workload` or `imported`.
    pub origin: String,
    /// The workload template or file position, or the imported file, it came from.
    pub workload: Option<String>,
    /// The query text.
    pub sql: String,
    /// The template fingerprint (literals stripped).
    pub fingerprint: String,
    /// The workload cluster, once assigned.
    pub cluster_id: Option<String>,
    /// The routing policy that chose the layout, when the query was routed.
    pub policy: Option<String>,
    /// Whether the routed choice explored (None when not routed).
    pub explored: Option<bool>,
    /// Latency in milliseconds (None when the query never ran here).
    pub latency_ms: Option<f64>,
    /// Rows returned (count).
    pub rows_returned: u64,
    /// Bytes, row groups and files scanned and skipped over every table the query read
    /// (flattened: `bytes_scanned`, `row_groups_total`, `row_groups_pruned`, `files_total`,
    /// `files_pruned`, `rows_pruned_by_page_index`).
    #[serde(flatten)]
    pub metrics: ScanMetrics,
    /// The order-insensitive digest of the result.
    pub result_digest: Option<String>,
    /// The error, when the query failed.
    pub error: Option<String>,
    /// `table@layout` of every managed table the query scanned.
    pub scans: Vec<String>,
    /// Bytes scanned per managed table (a join's tables apart; `bytes_scanned` is their sum).
    pub bytes_by_table: std::collections::BTreeMap<String, u64>,
}

impl Workspace {
    /// Logged queries with an id above `after_id` (of `table` when given: those that scanned
    /// it, or name it without scans), oldest first; with `limit`, only the newest `limit`.
    pub fn query_log(
        &self,
        table: Option<&TableName>,
        after_id: i64,
        limit: Option<usize>,
    ) -> Result<Vec<QueryLogRow>, DbError> {
        if let Some(t) = table {
            self.require_table(t)?;
        }
        let queries = self.catalog().logged_queries(table, after_id, limit)?;
        Ok(queries.into_iter().map(query_log_row).collect())
    }
}

/// A logged query as `query-log` shows it.
fn query_log_row(q: LoggedQuery) -> QueryLogRow {
    let e = q.entry;
    QueryLogRow {
        id: q.id,
        ts_ms: e.ts_ms,
        table: e.table.to_string(),
        layout_id: e.layout_id.map(|l| l.to_string()),
        origin: e.origin.as_str().to_string(),
        workload: e.workload,
        sql: e.sql,
        fingerprint: e.fingerprint,
        cluster_id: e.cluster_id,
        policy: e.route.as_ref().map(|r| r.policy.clone()),
        explored: e.route.as_ref().map(|r| r.explored),
        latency_ms: Some(e.latency_ms).filter(|ms| ms.is_finite()),
        rows_returned: e.rows_returned,
        metrics: e.metrics,
        result_digest: e.result_digest,
        error: e.error,
        scans: e
            .scans
            .iter()
            .map(|s| format!("{}@{}", s.table, s.layout_id))
            .collect(),
        bytes_by_table: e.scans.iter().fold(Default::default(), |mut acc, s| {
            *acc.entry(s.table.to_string()).or_default() += s.metrics.bytes_scanned;
            acc
        }),
    }
}
