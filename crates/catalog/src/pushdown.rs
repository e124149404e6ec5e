//! Filter pushdown measured per query shape and layout: the latency sums `adaptive_pushdown`
//! chooses from. A query logged with a pushdown choice (`QueryLogEntry::pushdown`) adds its
//! latency to its (table, fingerprint, layout, choice) row in the same transaction as its
//! query-log row, so the sums always match the log.

use crate::error::SqlContext;
use crate::queries::QueryLogEntry;
use crate::{Catalog, CatalogError, QueryOrigin};
use dbopt_core::{LayoutId, TableName};
use rusqlite::{Transaction, params};

/// What the queries of one shape measured on one layout with filter pushdown on or off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PushdownStat {
    /// Filters evaluated inside the Parquet decoder (true) or after it (false).
    pub pushdown: bool,
    /// Successful queries that ran so.
    pub runs: u64,
    /// Their mean latency, ms.
    pub mean_latency_ms: f64,
    /// The slowest of them, ms.
    pub max_latency_ms: f64,
}

impl PushdownStat {
    /// The mean latency without the slowest run (a cold first run, a hiccup of the machine),
    /// ms; the plain mean of a single run.
    pub fn trimmed_mean_ms(&self) -> f64 {
        if self.runs < 2 {
            return self.mean_latency_ms;
        }
        let sum = self.mean_latency_ms * self.runs as f64;
        (sum - self.max_latency_ms) / (self.runs - 1) as f64
    }
}

/// Adds a logged query's latency to its pushdown row, when it ran with a chosen pushdown and
/// succeeded (imported queries never carry one).
pub(crate) fn record_pushdown_sample(
    tx: &Transaction<'_>,
    entry: &QueryLogEntry,
) -> Result<(), CatalogError> {
    let (Some(pushdown), Some(layout)) = (entry.pushdown, &entry.layout_id) else {
        return Ok(());
    };
    if entry.error.is_some()
        || entry.origin == QueryOrigin::Imported
        || entry.fingerprint.is_empty()
        || !entry.latency_ms.is_finite()
    {
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT INTO pushdown_stats (table_name, fingerprint, layout_id, pushdown, runs, \
         sum_latency_ms, max_latency_ms) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5) \
         ON CONFLICT (table_name, fingerprint, layout_id, pushdown) DO UPDATE SET \
         runs = runs + 1, sum_latency_ms = sum_latency_ms + ?5, \
         max_latency_ms = max(max_latency_ms, ?5)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            entry.table.as_str(),
            entry.fingerprint,
            layout.as_str(),
            i64::from(pushdown),
            entry.latency_ms,
        ])
    })
    .ctx("recording a pushdown sample")?;
    Ok(())
}

impl Catalog {
    /// What queries with `fingerprint` measured on `layout` of `table`, with pushdown off
    /// and on (only the choices that ran).
    pub fn pushdown_stats(
        &self,
        table: &TableName,
        fingerprint: &str,
        layout: &LayoutId,
    ) -> Result<Vec<PushdownStat>, CatalogError> {
        self.read("reading pushdown statistics", |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT pushdown, runs, sum_latency_ms, max_latency_ms FROM pushdown_stats \
                     WHERE table_name = ?1 AND fingerprint = ?2 AND layout_id = ?3 \
                     ORDER BY pushdown",
                )
                .ctx("reading pushdown statistics")?;
            let rows = stmt
                .query_map(
                    params![table.as_str(), fingerprint, layout.as_str()],
                    |row| {
                        let runs: i64 = row.get(1)?;
                        let sum: f64 = row.get(2)?;
                        Ok(PushdownStat {
                            pushdown: row.get::<_, i64>(0)? != 0,
                            runs: runs.max(0) as u64,
                            mean_latency_ms: if runs > 0 { sum / runs as f64 } else { 0.0 },
                            max_latency_ms: row.get(3)?,
                        })
                    },
                )
                .ctx("reading pushdown statistics")?;
            rows.collect::<Result<Vec<_>, _>>()
                .ctx("reading pushdown statistics")
        })
    }
}
