//! Read-only aggregates for status, history, reports and the metrics endpoint.
//!
//! Every figure here is computed from the stored rows at read time, so `dbopt status`, a
//! report and a `/metrics` scrape taken at the same moment agree.

use crate::{Catalog, CatalogError, collect_rows, get, get_u64};
use dbopt_core::TableName;
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// One measured query of a table: when, on which layout and cluster, how long, how many bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryPointRecord {
    /// When it ran, ms since the Unix epoch.
    pub ts_ms: i64,
    /// The layout it read.
    pub layout_id: String,
    /// Its workload cluster (`-` before `analyze` assigned one).
    pub cluster_id: String,
    /// Its latency in ms.
    pub latency_ms: f64,
    /// Bytes it scanned of the table.
    pub bytes_scanned: u64,
    /// Whether the router sent it there to explore.
    pub explored: bool,
}

/// One query template of a table with its figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateStat {
    /// The template fingerprint (literals stripped, hashed).
    pub fingerprint: String,
    /// Its workload cluster (`-` when unassigned).
    pub cluster_id: String,
    /// Queries of this template (executed or imported, failed ones excluded).
    pub queries: u64,
    /// Mean bytes scanned.
    pub avg_bytes_scanned: f64,
    /// Mean latency in ms (0 when none was measured).
    pub avg_latency_ms: f64,
    /// The newest query text of the template (it holds literal values: show only on request).
    pub sample_sql: String,
}

/// What the query log holds for one table, in totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogTotals {
    /// Logged queries, failed ones included.
    pub queries: u64,
    /// Failed queries.
    pub errors: u64,
    /// The first query's time.
    pub first_ms: Option<i64>,
    /// The last query's time.
    pub last_ms: Option<i64>,
    /// Distinct templates.
    pub templates: u64,
    /// Distinct clusters.
    pub clusters: u64,
}

/// Query totals of one (table, layout) for counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayoutTotals {
    /// The table.
    pub table: String,
    /// The layout queries read.
    pub layout_id: String,
    /// Successful queries that ran on it.
    pub queries: u64,
    /// Bytes they scanned of the table.
    pub bytes_scanned: u64,
    /// Sum of their latencies in seconds.
    pub latency_sum_sec: f64,
    /// Cumulative counts of queries at or under each latency bound (seconds), in bound order.
    pub latency_buckets: Vec<u64>,
}

const SUCCESSFUL_EXECUTED: &str =
    "error IS NULL AND layout_id IS NOT NULL AND latency_ms IS NOT NULL";

impl Catalog {
    /// Every successful query of `table` that ran on a layout since `since_ms`, oldest first.
    pub fn query_points(
        &self,
        table: &TableName,
        since_ms: i64,
    ) -> Result<Vec<QueryPointRecord>, CatalogError> {
        let sql = format!(
            "SELECT ts_ms, layout_id, coalesce(cluster_id, '-') AS cluster_id, latency_ms, \
             bytes_scanned, coalesce(explored, 0) AS explored FROM query_log \
             WHERE table_name = ?1 AND ts_ms >= ?2 AND {SUCCESSFUL_EXECUTED} ORDER BY ts_ms, id"
        );
        self.read("reading query points", |tx| {
            collect_rows(
                tx,
                "reading query points",
                &sql,
                params![table.as_str(), since_ms],
                |row| {
                    Ok(QueryPointRecord {
                        ts_ms: get(row, "ts_ms")?,
                        layout_id: get(row, "layout_id")?,
                        cluster_id: get(row, "cluster_id")?,
                        latency_ms: get(row, "latency_ms")?,
                        bytes_scanned: get_u64(row, "bytes_scanned")?,
                        explored: get::<i64>(row, "explored")? != 0,
                    })
                },
            )
        })
    }

    /// Totals of the query log of `table`.
    pub fn log_totals(&self, table: &TableName) -> Result<LogTotals, CatalogError> {
        self.read("reading query log totals", |tx| {
            tx.query_row(
                "SELECT count(*) AS queries, \
                 coalesce(sum(error IS NOT NULL), 0) AS errors, \
                 min(ts_ms) AS first_ms, max(ts_ms) AS last_ms, \
                 count(DISTINCT fingerprint) AS templates, \
                 count(DISTINCT cluster_id) AS clusters \
                 FROM query_log WHERE table_name = ?1",
                [table.as_str()],
                |row| {
                    Ok((
                        row.get::<_, i64>("queries")?,
                        row.get::<_, i64>("errors")?,
                        row.get::<_, Option<i64>>("first_ms")?,
                        row.get::<_, Option<i64>>("last_ms")?,
                        row.get::<_, i64>("templates")?,
                        row.get::<_, i64>("clusters")?,
                    ))
                },
            )
            .map_err(|source| CatalogError::Sqlite {
                context: "reading query log totals".into(),
                source,
            })
            .map(|(q, e, first_ms, last_ms, t, c)| LogTotals {
                queries: count(q),
                errors: count(e),
                first_ms,
                last_ms,
                templates: count(t),
                clusters: count(c),
            })
        })
    }

    /// The `limit` most frequent templates of `table`, most frequent first.
    pub fn template_stats(
        &self,
        table: &TableName,
        limit: usize,
    ) -> Result<Vec<TemplateStat>, CatalogError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("reading template figures", |tx| {
            collect_rows(
                tx,
                "reading template figures",
                "SELECT fingerprint, coalesce(max(cluster_id), '-') AS cluster_id, \
                 count(*) AS queries, avg(bytes_scanned) AS avg_bytes, \
                 coalesce(avg(latency_ms), 0.0) AS avg_latency, \
                 (SELECT sql FROM query_log q2 WHERE q2.table_name = q.table_name \
                  AND q2.fingerprint = q.fingerprint ORDER BY q2.id DESC LIMIT 1) AS sample_sql \
                 FROM query_log q WHERE table_name = ?1 AND error IS NULL \
                 GROUP BY fingerprint ORDER BY queries DESC, fingerprint LIMIT ?2",
                params![table.as_str(), limit],
                |row| {
                    Ok(TemplateStat {
                        fingerprint: get(row, "fingerprint")?,
                        cluster_id: get(row, "cluster_id")?,
                        queries: get_u64(row, "queries")?,
                        avg_bytes_scanned: get(row, "avg_bytes")?,
                        avg_latency_ms: get(row, "avg_latency")?,
                        sample_sql: get(row, "sample_sql")?,
                    })
                },
            )
        })
    }

    /// Query totals and a latency histogram per (table, layout) over every table, for counters.
    /// `bounds_sec` are the histogram's upper bounds in seconds, ascending.
    pub fn layout_totals(&self, bounds_sec: &[f64]) -> Result<Vec<LayoutTotals>, CatalogError> {
        let buckets: String = bounds_sec
            .iter()
            .enumerate()
            .map(|(i, b)| format!(", sum(latency_ms <= {}) AS b{i}", b * 1000.0))
            .collect();
        let sql = format!(
            "SELECT table_name, layout_id, count(*) AS queries, \
             coalesce(sum(bytes_scanned), 0) AS bytes, coalesce(sum(latency_ms), 0.0) AS latency \
             {buckets} FROM query_log WHERE {SUCCESSFUL_EXECUTED} \
             GROUP BY table_name, layout_id ORDER BY table_name, layout_id"
        );
        self.read("reading query totals", |tx| {
            collect_rows(tx, "reading query totals", &sql, [], |row| {
                let latency_buckets = (0..bounds_sec.len())
                    .map(|i| get_u64(row, &format!("b{i}")))
                    .collect::<Result<Vec<u64>, _>>()?;
                Ok(LayoutTotals {
                    table: get(row, "table_name")?,
                    layout_id: get(row, "layout_id")?,
                    queries: get_u64(row, "queries")?,
                    bytes_scanned: get_u64(row, "bytes")?,
                    latency_sum_sec: get::<f64>(row, "latency")? / 1000.0,
                    latency_buckets,
                })
            })
        })
    }
}

/// Per table, counters the autopilot dashboards read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutopilotCounts {
    /// The table.
    pub table: String,
    /// Proposals stored as recommended, over every propose run.
    pub recommendations: u64,
    /// Migration jobs published.
    pub jobs_done: u64,
    /// Canaries whose verdict was reject.
    pub canary_failures: u64,
    /// The newest measured scan reduction of a proposal (fraction), if any.
    pub last_measured_reduction: Option<f64>,
}

impl Catalog {
    /// The autopilot counters of every managed table, by table name.
    pub fn autopilot_counts(&self) -> Result<Vec<AutopilotCounts>, CatalogError> {
        self.read("reading autopilot counters", |tx| {
            collect_rows(
                tx,
                "reading autopilot counters",
                "SELECT name, \
                 (SELECT count(*) FROM proposals p WHERE p.table_name = t.name \
                  AND p.recommended = 1) AS recommendations, \
                 (SELECT count(*) FROM migration_jobs j WHERE j.table_name = t.name \
                  AND j.status = 'done') AS jobs_done, \
                 (SELECT count(*) FROM canaries c WHERE c.table_name = t.name \
                  AND c.verdict = 'reject') AS canary_failures, \
                 (SELECT measured_reduction FROM proposals p WHERE p.table_name = t.name \
                  AND p.measured_at_ms IS NOT NULL ORDER BY p.measured_at_ms DESC, p.id DESC \
                  LIMIT 1) AS reduction \
                 FROM tables t ORDER BY name",
                [],
                |row| {
                    Ok(AutopilotCounts {
                        table: get(row, "name")?,
                        recommendations: get_u64(row, "recommendations")?,
                        jobs_done: get_u64(row, "jobs_done")?,
                        canary_failures: get_u64(row, "canary_failures")?,
                        last_measured_reduction: get(row, "reduction")?,
                    })
                },
            )
        })
    }
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{QueryLogEntry, QueryOrigin, ScanMetrics};
    use dbopt_core::{LayoutId, ManualClock};
    use std::sync::Arc;

    fn entry(table: &TableName, ts_ms: i64, fp: &str, latency: f64, bytes: u64) -> QueryLogEntry {
        QueryLogEntry {
            ts_ms,
            table: table.clone(),
            layout_id: Some(LayoutId::initial()),
            sql: format!("SELECT {bytes}"),
            fingerprint: fp.into(),
            cluster_id: Some("c1".into()),
            latency_ms: latency,
            rows_returned: 1,
            metrics: ScanMetrics {
                bytes_scanned: bytes,
                ..ScanMetrics::default()
            },
            scans: Vec::new(),
            result_digest: None,
            error: None,
            origin: QueryOrigin::Query,
            workload: None,
            route: None,
            source: None,
            pushdown: None,
        }
    }

    #[test]
    fn totals_templates_points_and_histogram_agree() {
        let catalog = Catalog::open_in_memory(Arc::new(ManualClock::new(1_000))).unwrap();
        let t = TableName::new("t").unwrap();
        catalog.log_query(&entry(&t, 1_000, "a", 4.0, 100)).unwrap();
        catalog
            .log_query(&entry(&t, 1_010, "a", 20.0, 300))
            .unwrap();
        catalog
            .log_query(&entry(&t, 1_010, "b", 2000.0, 50))
            .unwrap();
        let mut failed = entry(&t, 1_010, "b", 1.0, 0);
        failed.error = Some("boom".into());
        catalog.log_query(&failed).unwrap();

        let totals = catalog.log_totals(&t).unwrap();
        assert_eq!((totals.queries, totals.errors, totals.templates), (4, 1, 2));
        assert_eq!(
            (totals.first_ms, totals.last_ms),
            (Some(1_000), Some(1_010))
        );

        let templates = catalog.template_stats(&t, 10).unwrap();
        assert_eq!(templates[0].fingerprint, "a");
        assert_eq!(templates[0].queries, 2);
        assert_eq!(templates[0].avg_bytes_scanned, 200.0);
        assert_eq!(templates[0].sample_sql, "SELECT 300");

        assert_eq!(catalog.query_points(&t, 0).unwrap().len(), 3);
        assert_eq!(catalog.query_points(&t, 1_005).unwrap().len(), 2);

        let rows = catalog.layout_totals(&[0.005, 0.1, 1.0]).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].queries, 3);
        assert_eq!(rows[0].bytes_scanned, 450);
        assert_eq!(rows[0].latency_buckets, vec![1, 2, 2]);
        assert!((rows[0].latency_sum_sec - 2.024).abs() < 1e-9);
    }
}
