//! Route statistics: running sums of latency and bytes per (table, cluster, layout), updated
//! in the transaction that logs each measured query, so a routing decision reads a handful of
//! rows instead of the whole query log. Two processes logging at once both commit their
//! increments (each write is a `BEGIN IMMEDIATE` transaction doing `n = n + 1`).

use crate::error::SqlContext;
use crate::queries::QueryLogEntry;
use crate::{Catalog, CatalogError, QueryOrigin, collect_rows, get, get_layout_id, get_u64};
use dbopt_core::{LayoutId, TableName};
use rusqlite::{Transaction, params};
use serde::{Deserialize, Serialize};

/// The sums kept for one (table, cluster, layout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteStat {
    /// The workload cluster (`analyze` shape id).
    pub cluster_id: String,
    /// The layout the queries ran on.
    pub layout_id: LayoutId,
    /// Queries measured.
    pub n: u64,
    /// Sum of their latencies in ms.
    pub sum_latency_ms: f64,
    /// Sum of squared latencies.
    pub sum_sq_latency_ms: f64,
    /// Sum of the bytes they scanned of the table.
    pub sum_bytes: f64,
    /// Sum of squared bytes.
    pub sum_sq_bytes: f64,
    /// How many of them were routed there by exploration.
    pub explored: u64,
    /// When the last one was added.
    pub updated_at_ms: i64,
}

/// Adds one logged query to its (table, cluster, layout) sums when it ran successfully on a
/// known layout of a known cluster; imported and failed queries measure nothing.
pub(crate) fn record_route_sample(
    tx: &Transaction<'_>,
    entry: &QueryLogEntry,
) -> Result<(), CatalogError> {
    let (Some(cluster), Some(layout)) = (&entry.cluster_id, &entry.layout_id) else {
        return Ok(());
    };
    if entry.error.is_some()
        || entry.origin == QueryOrigin::Imported
        || !entry.latency_ms.is_finite()
    {
        return Ok(());
    }
    let bytes = entry
        .scans
        .iter()
        .find(|s| s.table == entry.table)
        .map_or(entry.metrics.bytes_scanned, |s| s.metrics.bytes_scanned) as f64;
    let latency = entry.latency_ms;
    let explored = i64::from(entry.route.as_ref().is_some_and(|r| r.explored));
    tx.prepare_cached(
        "INSERT INTO route_stats (table_name, cluster_id, layout_id, n, sum_latency_ms, \
         sum_sq_latency_ms, sum_bytes, sum_sq_bytes, explored, updated_at_ms) \
         VALUES (?1, ?2, ?3, 1, ?4, ?4 * ?4, ?5, ?5 * ?5, ?6, ?7) \
         ON CONFLICT (table_name, cluster_id, layout_id) DO UPDATE SET n = n + 1, \
         sum_latency_ms = sum_latency_ms + ?4, sum_sq_latency_ms = sum_sq_latency_ms + ?4 * ?4, \
         sum_bytes = sum_bytes + ?5, sum_sq_bytes = sum_sq_bytes + ?5 * ?5, \
         explored = explored + ?6, updated_at_ms = max(updated_at_ms, ?7)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            entry.table.as_str(),
            cluster,
            layout.as_str(),
            latency,
            bytes,
            explored,
            entry.ts_ms,
        ])
    })
    .ctx("updating route statistics")?;
    Ok(())
}

impl Catalog {
    /// Every (cluster, layout) sum of `table`, by cluster then layout.
    pub fn route_stats(&self, table: &TableName) -> Result<Vec<RouteStat>, CatalogError> {
        self.read("reading route statistics", |tx| {
            collect_rows(
                tx,
                "reading route statistics",
                "SELECT cluster_id, layout_id, n, sum_latency_ms, sum_sq_latency_ms, sum_bytes, \
                 sum_sq_bytes, explored, updated_at_ms FROM route_stats WHERE table_name = ?1 \
                 ORDER BY cluster_id, layout_id",
                [table.as_str()],
                |row| {
                    Ok(RouteStat {
                        cluster_id: get(row, "cluster_id")?,
                        layout_id: get_layout_id(row, "layout_id")?,
                        n: get_u64(row, "n")?,
                        sum_latency_ms: get(row, "sum_latency_ms")?,
                        sum_sq_latency_ms: get(row, "sum_sq_latency_ms")?,
                        sum_bytes: get(row, "sum_bytes")?,
                        sum_sq_bytes: get(row, "sum_sq_bytes")?,
                        explored: get_u64(row, "explored")?,
                        updated_at_ms: get(row, "updated_at_ms")?,
                    })
                },
            )
        })
    }

    /// Recomputes the route sums of `table` from its query log (after `analyze` assigned
    /// clusters to queries logged without one); returns the number of (cluster, layout) rows.
    pub fn rebuild_route_stats(&self, table: &TableName) -> Result<u64, CatalogError> {
        self.write("rebuilding route statistics", |tx| {
            tx.execute(
                "DELETE FROM route_stats WHERE table_name = ?1",
                [table.as_str()],
            )
            .ctx("clearing route statistics")?;
            let n = tx
                .execute(
                    "INSERT INTO route_stats (table_name, cluster_id, layout_id, n, \
                     sum_latency_ms, sum_sq_latency_ms, sum_bytes, sum_sq_bytes, explored, \
                     updated_at_ms) \
                     SELECT q.table_name, q.cluster_id, q.layout_id, count(*), \
                     sum(q.latency_ms), sum(q.latency_ms * q.latency_ms), \
                     sum(coalesce(s.bytes_scanned, q.bytes_scanned)), \
                     sum(coalesce(s.bytes_scanned, q.bytes_scanned) * \
                         coalesce(s.bytes_scanned, q.bytes_scanned)), \
                     sum(coalesce(q.explored, 0)), max(q.ts_ms) \
                     FROM query_log q LEFT JOIN query_scans s \
                       ON s.query_id = q.id AND s.table_name = q.table_name \
                     WHERE q.table_name = ?1 AND q.cluster_id IS NOT NULL \
                       AND q.layout_id IS NOT NULL AND q.error IS NULL \
                       AND q.latency_ms IS NOT NULL AND q.origin != 'imported' \
                     GROUP BY q.cluster_id, q.layout_id",
                    [table.as_str()],
                )
                .ctx("rebuilding route statistics")?;
            Ok(n as u64)
        })
    }
}
