//! Workload analysis: plan every logged query of a table with DataFusion, summarize its
//! optimized plan, and build the `WorkloadProfile` (column usage, selectivity, clusters);
//! column statistics of the active layout come from Parquet footers plus a sample and are
//! cached in the catalog. Stable cluster ids are written back to the query log. An imported
//! query DataFusion cannot plan is read from its syntax tree in its engine's dialect instead,
//! and an imported query's rows read, as its engine measured them, count as its measured
//! selectivity.

use crate::{DbError, Workspace};
use dbopt_analyze::{Observation, WorkloadProfile, cluster_id, profile, shape};
use dbopt_catalog::LoggedQuery;
use dbopt_core::plan_summary::{TableStats, TableUsage};
use dbopt_core::{LayoutId, TableName};
use dbopt_engine::column_stats::{footer_stats, read_sample};
use dbopt_engine::plan_summary::summarize_sql;
use dbopt_engine::{Dialect, referenced_tables, summarize_syntax};
use dbopt_propose::Sample;
use serde::Serialize;
use std::collections::HashMap;

/// Seed of the deterministic sample.
pub const SAMPLE_SEED: u64 = 0x5EED;

/// A logged query that could not be analyzed, and why.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedQuery {
    /// The `query_log` id.
    pub query_id: i64,
    /// Why it was skipped.
    pub reason: String,
}

/// The result of analyzing a table's workload.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// The table.
    pub table: String,
    /// Its active layout (the one statistics describe).
    pub layout: LayoutId,
    /// The profile.
    pub profile: WorkloadProfile,
    /// Column statistics of the active layout.
    pub stats: TableStats,
    /// Analyzable queries with their plan usage and measured figures.
    #[serde(skip)]
    pub observations: Vec<Observation>,
    /// The layout each observation ran on (None when never run).
    #[serde(skip)]
    pub ran_on: Vec<Option<LayoutId>>,
    /// Queries skipped, with reasons.
    pub skipped: Vec<SkippedQuery>,
}

/// Parses a duration such as `90s`, `30m`, `12h`, `7d` or `2w` into milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, DbError> {
    dbopt_core::config::parse_duration_ms(text)
        .ok_or_else(|| DbError::BadDuration(text.to_string()))
}

impl Workspace {
    /// Column statistics of `table` at `layout` and a sample of it in physical order; the
    /// statistics are cached in the catalog.
    pub fn layout_stats_and_sample(
        &self,
        table: &TableName,
        layout: &LayoutId,
    ) -> Result<(TableStats, Sample), DbError> {
        let manifest = self.layout_manifest(table, layout)?;
        let dir = self.layout_location(table, layout)?;
        let mut stats = footer_stats(&dir, &manifest)?;
        if stats.rows == 0 {
            return Err(DbError::EmptyTable {
                table: table.to_string(),
                layout: layout.to_string(),
            });
        }
        let fraction = (self.config().sample_rows() as f64 / stats.rows as f64).min(1.0);
        let batches = read_sample(&dir, &manifest, fraction, SAMPLE_SEED)?;
        let sample = Sample::new(&batches, stats.rows).map_err(DbError::Propose)?;
        sample.complete_stats(&mut stats);
        self.catalog()
            .put_column_stats(table, layout, &stats, sample.rows() as u64)?;
        Ok((stats, sample))
    }

    /// Analyzes the logged queries of `table` at or after `since_ms`; `with_sample` also
    /// returns the sample for the what-if model.
    #[tracing::instrument(name = "analyze", skip_all, fields(table = %table))]
    pub async fn analyze_workload(
        &self,
        table: &TableName,
        since_ms: Option<i64>,
        with_sample: bool,
    ) -> Result<(Analysis, Option<Sample>), DbError> {
        let record = self.require_table(table)?;
        let layout = record.active_layout.clone();
        let logged: Vec<LoggedQuery> = self
            .catalog()
            .queries_for_table(table, since_ms, None)?
            .into_iter()
            .filter(|q| q.entry.error.is_none())
            .collect();
        if logged.is_empty() {
            let window = if since_ms.is_some() {
                " in that --since window"
            } else {
                ""
            };
            return Err(DbError::NoLoggedQueries {
                table: table.to_string(),
                window: window.to_string(),
            });
        }
        let (observations, ran_on, skipped) = self.observe(table, &logged).await?;
        if observations.is_empty() {
            let first = skipped
                .first()
                .map(|s| s.reason.clone())
                .unwrap_or_default();
            return Err(DbError::NoPlannableQueries {
                table: table.to_string(),
                count: logged.len(),
                first,
            });
        }
        let (stats, sample) = self.profile_stats(table, &layout, with_sample)?;
        let prof = profile(
            table.as_str(),
            &observations,
            skipped.len() as u64,
            Some(&stats),
        );
        let assignments: Vec<(i64, String)> = observations
            .iter()
            .map(|o| (o.query_id, cluster_id(&shape(&o.usage))))
            .collect();
        self.catalog().set_cluster_ids(&assignments)?;
        // Queries logged before their cluster was known now count for routing too.
        self.catalog().rebuild_route_stats(table)?;
        Ok((
            Analysis {
                table: table.to_string(),
                layout,
                profile: prof,
                stats,
                observations,
                ran_on,
                skipped,
            },
            sample,
        ))
    }

    /// Plans each logged query of `table` once (queries repeat) and turns it into an
    /// observation of what it asks of the table; queries that no longer plan or do not scan
    /// the table are skipped with the reason.
    async fn observe(
        &self,
        table: &TableName,
        logged: &[LoggedQuery],
    ) -> Result<(Vec<Observation>, Vec<Option<LayoutId>>, Vec<SkippedQuery>), DbError> {
        let session = self.query_session(table, None).await?;
        let mut planned: HashMap<String, Result<Option<(TableUsage, bool)>, String>> =
            HashMap::new();
        let mut layout_bytes: HashMap<LayoutId, Option<u64>> = HashMap::new();
        let active = self.require_table(table)?.active_layout;
        let active = self.catalog().get_layout(table, &active)?;
        let mut observations = Vec::new();
        let mut ran_on = Vec::new();
        let mut skipped = Vec::new();
        for q in logged {
            if !planned.contains_key(&q.entry.sql) {
                let result = usage_of(session.context(), &q.entry, table).await;
                planned.insert(q.entry.sql.clone(), result);
            }
            let (usage, from_syntax) = match &planned[&q.entry.sql] {
                Ok(Some(u)) => u.clone(),
                Ok(None) => {
                    skipped.push(SkippedQuery {
                        query_id: q.id,
                        reason: format!("does not scan '{table}'"),
                    });
                    continue;
                }
                Err(e) => {
                    skipped.push(SkippedQuery {
                        query_id: q.id,
                        reason: e.clone(),
                    });
                    continue;
                }
            };
            let scan = q
                .entry
                .scans
                .iter()
                .find(|s| &s.table == table)
                .map(|s| (s.layout_id.clone(), s.metrics.bytes_scanned));
            let (bytes_scanned, total) = match &scan {
                Some((l, bytes)) => {
                    if !layout_bytes.contains_key(l) {
                        let bytes = self.catalog().get_layout(table, l)?.map(|r| r.total_bytes);
                        layout_bytes.insert(l.clone(), bytes);
                    }
                    (Some(*bytes), layout_bytes[l])
                }
                None => engine_measured_bytes(active.as_ref(), &q.entry),
            };
            ran_on.push(scan.as_ref().map(|(l, _)| l.clone()));
            observations.push(Observation {
                query_id: q.id,
                sql: q.entry.sql.clone(),
                usage,
                bytes_scanned,
                layout_bytes: total,
                from_syntax,
            });
        }
        Ok((observations, ran_on, skipped))
    }

    /// Column statistics of `table` at `layout` and, when asked, the what-if sample. Cached
    /// statistics are used only while they still describe the files on disk.
    fn profile_stats(
        &self,
        table: &TableName,
        layout: &LayoutId,
        with_sample: bool,
    ) -> Result<(TableStats, Option<Sample>), DbError> {
        Ok(if with_sample {
            let (s, sample) = self.layout_stats_and_sample(table, layout)?;
            (s, Some(sample))
        } else {
            // The cache is keyed by layout id; a reloaded table keeps the id `initial`, so
            // cached figures are used only while they still describe the files on disk.
            let manifest = self.layout_manifest(table, layout)?;
            match self.catalog().column_stats(table, layout)? {
                Some(cached)
                    if cached.stats.rows == manifest.row_count
                        && cached.stats.total_bytes == manifest.total_bytes() =>
                {
                    (cached.stats, None)
                }
                _ => {
                    let (s, _) = self.layout_stats_and_sample(table, layout)?;
                    (s, None)
                }
            }
        })
    }
}

/// An imported single-table query's share of the table as its engine measured it (rows
/// read / the table's rows, at most all of it), as bytes of the `active` layout; (None, None)
/// without such a figure. This assumes the engine's table holds the rows dbopt's does.
fn engine_measured_bytes(
    active: Option<&dbopt_catalog::LayoutRecord>,
    entry: &dbopt_catalog::QueryLogEntry,
) -> (Option<u64>, Option<u64>) {
    let Some(read_rows) = entry.source.as_ref().and_then(|s| s.read_rows) else {
        return (None, None);
    };
    let Some(layout) = active.filter(|l| l.row_count > 0) else {
        return (None, None);
    };
    if referenced_tables(&entry.sql).len() != 1 {
        return (None, None);
    }
    let share = (read_rows as f64 / layout.row_count as f64).min(1.0);
    (
        Some((share * layout.total_bytes as f64).round() as u64),
        Some(layout.total_bytes),
    )
}

/// What a logged query asks of `table`: from DataFusion's plan, or, for an imported query
/// DataFusion cannot plan (another engine's functions), from its syntax tree in its dialect
/// (the flag says which). Ok(None): it does not read the table.
async fn usage_of(
    session: &dbopt_engine::Session,
    entry: &dbopt_catalog::QueryLogEntry,
    table: &TableName,
) -> Result<Option<(TableUsage, bool)>, String> {
    let planned = summarize_sql(session, &entry.sql)
        .await
        .map(|s| s.table(table.as_str()).cloned().map(|u| (u, false)));
    let Err(plan_error) = planned else {
        return Ok(planned.unwrap_or_default());
    };
    let Some(source) = &entry.source else {
        return Err(plan_error.to_string());
    };
    let dialect = Dialect::from_name(&source.dialect).unwrap_or_default();
    match summarize_syntax(session, &entry.sql, dialect, table.as_str()).await {
        Ok(usage) => Ok(usage.map(|u| (u, true))),
        Err(_) => Err(plan_error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration_ms("90s").unwrap(), 90_000);
        assert_eq!(parse_duration_ms("2h").unwrap(), 7_200_000);
        assert_eq!(parse_duration_ms("1w").unwrap(), 604_800_000);
        for bad in ["", "5", "h", "5y", "-3d", "1.5h"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }
}
