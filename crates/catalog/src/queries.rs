//! The query log: one `query_log` row per query, one `query_scans` row per managed table it
//! scanned.

use crate::error::SqlContext;
use crate::{
    Catalog, CatalogError, collect_rows, get, get_layout_id, get_opt_layout_id, get_table_name,
    get_u64, sql_int,
};
use dbopt_core::{LayoutId, TableName};
use rusqlite::{Connection, Params, Row, params};
use serde::{Deserialize, Serialize};

/// Where a logged query came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryOrigin {
    /// Run by a user (`dbopt query`).
    Query,
    /// Run by a generated workload.
    Workload,
    /// Imported from another engine's query log; never executed here.
    Imported,
    /// Sent by a client of the SQL endpoint (`dbopt serve --sql-addr`).
    Sql,
}

stored_as_text!(QueryOrigin, "origin" {
    Query => "query",
    Workload => "workload",
    Imported => "imported",
    Sql => "sql",
});

pub use dbopt_core::ScanMetrics;

/// The metric column list shared by `query_log` and `query_scans`, in `to_params` order.
macro_rules! metric_columns {
    () => {
        "bytes_scanned, row_groups_total, row_groups_pruned, files_total, files_pruned, \
         rows_pruned_by_page_index"
    };
}

/// Stores and reads `ScanMetrics` as SQL columns.
trait ScanMetricsSql: Sized {
    fn to_params(self) -> [i64; 6];
    fn from_row(row: &Row<'_>) -> Result<Self, CatalogError>;
}

impl ScanMetricsSql for ScanMetrics {
    fn to_params(self) -> [i64; 6] {
        [
            self.bytes_scanned,
            self.row_groups_total,
            self.row_groups_pruned,
            self.files_total,
            self.files_pruned,
            self.rows_pruned_by_page_index,
        ]
        .map(sql_int)
    }

    fn from_row(row: &Row<'_>) -> Result<ScanMetrics, CatalogError> {
        Ok(ScanMetrics {
            bytes_scanned: get_u64(row, "bytes_scanned")?,
            row_groups_total: get_u64(row, "row_groups_total")?,
            row_groups_pruned: get_u64(row, "row_groups_pruned")?,
            files_total: get_u64(row, "files_total")?,
            files_pruned: get_u64(row, "files_pruned")?,
            rows_pruned_by_page_index: get_u64(row, "rows_pruned_by_page_index")?,
        })
    }
}

/// One managed table scanned by a query, at one layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableScan {
    /// The table scanned.
    pub table: TableName,
    /// The layout it was read at.
    pub layout_id: LayoutId,
    /// What the scan read and pruned.
    #[serde(flatten)]
    pub metrics: ScanMetrics,
}

/// One logged query (a `query_log` row without its id) with its per-table scans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryLogEntry {
    /// When it ran (or was logged, for imports), ms since the Unix epoch.
    pub ts_ms: i64,
    /// The primary table (the one the query was routed for).
    pub table: TableName,
    /// The layout of the primary table it ran on (None if it never ran, e.g. imported).
    pub layout_id: Option<LayoutId>,
    /// The SQL text.
    pub sql: String,
    /// The template fingerprint (literals stripped).
    pub fingerprint: String,
    /// The workload cluster, once analyze has assigned one.
    pub cluster_id: Option<String>,
    /// Wall-clock latency in ms (NaN is stored as NULL and read back as NaN).
    pub latency_ms: f64,
    /// Rows in the result.
    pub rows_returned: u64,
    /// Scan counters summed over all scanned tables.
    #[serde(flatten)]
    pub metrics: ScanMetrics,
    /// Order-insensitive digest of the result rows.
    pub result_digest: Option<String>,
    /// The error message if the query failed.
    pub error: Option<String>,
    /// Where the query came from.
    pub origin: QueryOrigin,
    /// The workload template name or imported file.
    pub workload: Option<String>,
    /// One entry per managed table scanned (a join scans two).
    pub scans: Vec<TableScan>,
    /// How the layout was chosen when a routing policy chose it (None: forced or active).
    #[serde(default)]
    pub route: Option<RouteChoice>,
    /// Where an imported query ran and what its engine measured (None: dbopt ran it).
    #[serde(default)]
    pub source: Option<QuerySource>,
    /// Whether the scan's filters were pushed into the Parquet decoder, when dbopt chose it
    /// for this query (`adaptive_pushdown`); None when the session's fixed setting applied.
    #[serde(default)]
    pub pushdown: Option<bool>,
}

/// Where an imported query ran, with the source engine's own measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuerySource {
    /// The engine whose log it came from: `trino`, `clickhouse`, or `sql` for a plain file.
    pub engine: String,
    /// The SQL dialect its text is written in (see `dbopt_engine::Dialect`).
    pub dialect: String,
    /// The engine's query id.
    pub query_id: Option<String>,
    /// The user who ran it.
    pub user: Option<String>,
    /// Elapsed time in ms as the engine measured it.
    pub elapsed_ms: Option<f64>,
    /// Rows the engine read.
    pub read_rows: Option<u64>,
    /// Bytes the engine read.
    pub read_bytes: Option<u64>,
}

/// How a routing policy chose a query's layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteChoice {
    /// The policy name, e.g. `thompson`.
    pub policy: String,
    /// Whether the policy chose a layout other than its current best.
    pub explored: bool,
}

/// A query read back from the log, with its row id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedQuery {
    /// The `query_log` id.
    pub id: i64,
    /// What was logged.
    pub entry: QueryLogEntry,
}

/// Ids of the queries that concern table ?1: those that scanned it, plus those without scans
/// (imported or failed) whose primary table it is.
macro_rules! ids_for_table {
    () => {
        "WITH ids (id) AS ( \
           SELECT query_id FROM query_scans WHERE table_name = ?1 \
           UNION \
           SELECT q.id FROM query_log q WHERE q.table_name = ?1 \
             AND NOT EXISTS (SELECT 1 FROM query_scans s WHERE s.query_id = q.id)) "
    };
}

/// The `query_log` columns `query_from_row` reads.
macro_rules! query_columns {
    () => {
        concat!(
            "id, ts_ms, table_name, layout_id, sql, fingerprint, cluster_id, latency_ms, \
             rows_returned, result_digest, error, origin, workload, policy, explored, source_json, \
             pushdown, ",
            metric_columns!()
        )
    };
}

const QUERY_SELECT: &str = concat!(
    ids_for_table!(),
    "SELECT ",
    query_columns!(),
    " FROM query_log WHERE id IN ids AND ts_ms >= ?2 ORDER BY ts_ms DESC, id DESC LIMIT ?3"
);

/// Newest first: queries with an id above ?2 that concern table ?1 (every table when NULL).
const LOG_SELECT: &str = concat!(
    ids_for_table!(),
    "SELECT ",
    query_columns!(),
    " FROM query_log WHERE (?1 IS NULL OR id IN ids) AND id > ?2 ORDER BY id DESC LIMIT ?3"
);

const SCAN_SELECT: &str = concat!(
    "SELECT table_name, layout_id, ",
    metric_columns!(),
    " FROM query_scans WHERE query_id = ?1 ORDER BY rowid"
);

fn scan_from_row(row: &Row<'_>) -> Result<TableScan, CatalogError> {
    Ok(TableScan {
        table: get_table_name(row, "table_name")?,
        layout_id: get_layout_id(row, "layout_id")?,
        metrics: ScanMetrics::from_row(row)?,
    })
}

/// Maps a `QUERY_SELECT` row and loads its scans.
fn query_from_row(conn: &Connection, row: &Row<'_>) -> Result<LoggedQuery, CatalogError> {
    let id: i64 = get(row, "id")?;
    let origin_text: String = get(row, "origin")?;
    let origin = QueryOrigin::parse(&origin_text)
        .ok_or_else(|| CatalogError::Corrupt(format!("query {id} has origin '{origin_text}'")))?;
    let latency: Option<f64> = get(row, "latency_ms")?;
    let policy: Option<String> = get(row, "policy")?;
    let explored: Option<i64> = get(row, "explored")?;
    let source: Option<String> = get(row, "source_json")?;
    let pushdown: Option<i64> = get(row, "pushdown")?;
    let source = source
        .map(|json| serde_json::from_str::<QuerySource>(&json))
        .transpose()
        .map_err(|e| CatalogError::Corrupt(format!("query {id} has a bad source: {e}")))?;
    let entry = QueryLogEntry {
        ts_ms: get(row, "ts_ms")?,
        table: get_table_name(row, "table_name")?,
        layout_id: get_opt_layout_id(row, "layout_id")?,
        sql: get(row, "sql")?,
        fingerprint: get(row, "fingerprint")?,
        cluster_id: get(row, "cluster_id")?,
        latency_ms: latency.unwrap_or(f64::NAN),
        rows_returned: get_u64(row, "rows_returned")?,
        metrics: ScanMetrics::from_row(row)?,
        result_digest: get(row, "result_digest")?,
        error: get(row, "error")?,
        origin,
        workload: get(row, "workload")?,
        scans: collect_rows(
            conn,
            "reading query scans",
            SCAN_SELECT,
            [id],
            scan_from_row,
        )?,
        route: policy.map(|policy| RouteChoice {
            policy,
            explored: explored.unwrap_or(0) != 0,
        }),
        source,
        pushdown: pushdown.map(|p| p != 0),
    };
    Ok(LoggedQuery { id, entry })
}

impl Catalog {
    /// Appends a query and its scans in one transaction; returns the new query id.
    pub fn log_query(&self, entry: &QueryLogEntry) -> Result<i64, CatalogError> {
        self.write("logging a query", |tx| insert_query(tx, entry))
    }

    /// Logs many queries in one transaction (all or none); returns their ids in order.
    pub fn log_queries(&self, entries: &[QueryLogEntry]) -> Result<Vec<i64>, CatalogError> {
        self.write("logging queries", |tx| {
            entries.iter().map(|e| insert_query(tx, e)).collect()
        })
    }

    /// Queries that concern `table` (scanned it, or have no scans and name it as primary),
    /// at or after `since_ms`; with `limit`, the most recent `limit` of them. Oldest first.
    pub fn queries_for_table(
        &self,
        table: &TableName,
        since_ms: Option<i64>,
        limit: Option<usize>,
    ) -> Result<Vec<LoggedQuery>, CatalogError> {
        let since = since_ms.unwrap_or(i64::MIN);
        self.read_log(
            QUERY_SELECT,
            params![table.as_str(), since, sql_limit(limit)],
        )
    }

    /// The query log in id order: queries with an id above `after_id` that concern `table`
    /// (as in `queries_for_table`; every table when None); with `limit`, the newest `limit`
    /// of them. Oldest first.
    pub fn logged_queries(
        &self,
        table: Option<&TableName>,
        after_id: i64,
        limit: Option<usize>,
    ) -> Result<Vec<LoggedQuery>, CatalogError> {
        self.read_log(
            LOG_SELECT,
            params![table.map(TableName::as_str), after_id, sql_limit(limit)],
        )
    }

    /// Runs a newest-first query log select (`QUERY_SELECT` or `LOG_SELECT`); oldest first.
    fn read_log(&self, sql: &str, params: impl Params) -> Result<Vec<LoggedQuery>, CatalogError> {
        self.read("reading the query log", |tx| {
            let mut queries = collect_rows(tx, "reading the query log", sql, params, |row| {
                query_from_row(tx, row)
            })?;
            queries.reverse();
            Ok(queries)
        })
    }

    /// The query ids of `engine` already in the log (so a log imported twice is not logged
    /// twice).
    pub fn imported_query_ids(
        &self,
        engine: &str,
    ) -> Result<std::collections::HashSet<String>, CatalogError> {
        self.read("reading imported query ids", |tx| {
            let ids = collect_rows(
                tx,
                "reading imported query ids",
                "SELECT source_query_id FROM query_log \
                 WHERE source_engine = ?1 AND source_query_id IS NOT NULL",
                [engine],
                |row| get::<String>(row, "source_query_id"),
            )?;
            Ok(ids.into_iter().collect())
        })
    }

    /// Number of queries `queries_for_table(table, None, None)` would return.
    pub fn count_queries(&self, table: &TableName) -> Result<u64, CatalogError> {
        self.read("counting queries", |tx| {
            let n: i64 = tx
                .query_row(
                    concat!(ids_for_table!(), "SELECT count(*) FROM ids"),
                    [table.as_str()],
                    |r| r.get(0),
                )
                .ctx("counting queries")?;
            Ok(n.max(0) as u64)
        })
    }

    /// Sets the cluster of one query; false if no query has that id.
    pub fn set_cluster_id(&self, query_id: i64, cluster_id: &str) -> Result<bool, CatalogError> {
        self.write("setting a query cluster", |tx| {
            let n = tx
                .execute(
                    "UPDATE query_log SET cluster_id = ?2 WHERE id = ?1",
                    params![query_id, cluster_id],
                )
                .ctx("setting a query cluster")?;
            Ok(n == 1)
        })
    }

    /// Sets the cluster of every query with `fingerprint`; returns how many were updated.
    pub fn set_cluster_ids_for_fingerprint(
        &self,
        fingerprint: &str,
        cluster_id: &str,
    ) -> Result<u64, CatalogError> {
        self.write("setting a fingerprint's cluster", |tx| {
            let n = tx
                .execute(
                    "UPDATE query_log SET cluster_id = ?2 WHERE fingerprint = ?1",
                    [fingerprint, cluster_id],
                )
                .ctx("setting a fingerprint's cluster")?;
            Ok(n as u64)
        })
    }
}

/// A `LIMIT` value: -1 (no limit) for None.
fn sql_limit(limit: Option<usize>) -> i64 {
    limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX))
}

/// Inserts one query_log row and its query_scans rows inside `tx`; returns the id.
fn insert_query(
    tx: &rusqlite::Transaction<'_>,
    entry: &QueryLogEntry,
) -> Result<i64, CatalogError> {
    let m = entry.metrics.to_params();
    let source_json = entry
        .source
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| CatalogError::Corrupt(format!("query source does not serialize: {e}")))?;
    tx.prepare_cached(concat!(
        "INSERT INTO query_log (ts_ms, table_name, layout_id, sql, fingerprint, \
         cluster_id, latency_ms, rows_returned, result_digest, error, origin, workload, \
         policy, explored, source_engine, source_query_id, source_json, pushdown, ",
        metric_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
         ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)"
    ))
    .and_then(|mut stmt| {
        stmt.execute(params![
            entry.ts_ms,
            entry.table.as_str(),
            entry.layout_id.as_ref().map(LayoutId::as_str),
            entry.sql,
            entry.fingerprint,
            entry.cluster_id,
            entry.latency_ms,
            sql_int(entry.rows_returned),
            entry.result_digest,
            entry.error,
            entry.origin.as_str(),
            entry.workload,
            entry.route.as_ref().map(|r| r.policy.as_str()),
            entry.route.as_ref().map(|r| i64::from(r.explored)),
            entry.source.as_ref().map(|s| s.engine.as_str()),
            entry.source.as_ref().and_then(|s| s.query_id.as_deref()),
            source_json,
            entry.pushdown.map(i64::from),
            m[0],
            m[1],
            m[2],
            m[3],
            m[4],
            m[5],
        ])
    })
    .ctx("inserting a query log row")?;
    let id = tx.last_insert_rowid();
    let mut stmt = tx
        .prepare_cached(concat!(
            "INSERT INTO query_scans (query_id, table_name, layout_id, ",
            metric_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ))
        .ctx("inserting a query scan")?;
    for scan in &entry.scans {
        let m = scan.metrics.to_params();
        stmt.execute(params![
            id,
            scan.table.as_str(),
            scan.layout_id.as_str(),
            m[0],
            m[1],
            m[2],
            m[3],
            m[4],
            m[5],
        ])
        .ctx("inserting a query scan")?;
    }
    crate::routes::record_route_sample(tx, entry)?;
    crate::pushdown::record_pushdown_sample(tx, entry)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_text_round_trips() {
        for o in [
            QueryOrigin::Query,
            QueryOrigin::Workload,
            QueryOrigin::Imported,
            QueryOrigin::Sql,
        ] {
            assert_eq!(QueryOrigin::parse(o.as_str()), Some(o));
        }
        assert_eq!(QueryOrigin::parse("other"), None);
    }
}
