//! `run-workload`: draws generated queries, runs each through a shared query session, logs
//! them, and summarizes latency and bytes.

use crate::query::QuerySession;
use crate::{DbError, Progress, Workspace};
use dbopt_catalog::QueryOrigin;
use dbopt_core::TableName;
use dbopt_data::workload::{EventsDomain, EventsWorkload};
use serde::Serialize;
use std::collections::BTreeMap;

/// What to run.
#[derive(Debug, Clone)]
pub struct WorkloadOptions {
    /// The events table the workload targets.
    pub table: TableName,
    /// The customers table joins go to.
    pub customers_table: TableName,
    /// How many queries.
    pub num_queries: u64,
    /// Seed of the query generator.
    pub seed: u64,
}

/// Summary of a workload run.
#[derive(Debug, Clone, Serialize, Default)]
pub struct WorkloadSummary {
    /// Queries run.
    pub queries: u64,
    /// Queries that failed.
    pub errors: u64,
    /// Median latency in ms.
    pub p50_ms: f64,
    /// 95th percentile latency in ms.
    pub p95_ms: f64,
    /// Bytes scanned by all queries.
    pub total_bytes_scanned: u64,
    /// Queries per template.
    pub per_template: BTreeMap<String, u64>,
    /// The first few error messages.
    pub first_errors: Vec<String>,
}

/// Accumulates per-query results into a `WorkloadSummary`.
#[derive(Debug, Default)]
pub struct SummaryBuilder {
    latencies: Vec<f64>,
    summary: WorkloadSummary,
}

impl SummaryBuilder {
    /// Records one query.
    pub fn record(&mut self, template: &str, result: &Result<dbopt_engine::QueryOutcome, DbError>) {
        self.summary.queries += 1;
        *self
            .summary
            .per_template
            .entry(template.to_string())
            .or_default() += 1;
        match result {
            Ok(o) => {
                self.latencies.push(o.latency.as_secs_f64() * 1000.0);
                self.summary.total_bytes_scanned +=
                    o.scans.iter().map(|s| s.metrics.bytes_scanned).sum::<u64>();
            }
            Err(e) => {
                self.summary.errors += 1;
                if self.summary.first_errors.len() < 5 {
                    self.summary.first_errors.push(format!("{template}: {e}"));
                }
            }
        }
    }

    /// The summary with percentiles computed.
    pub fn finish(mut self) -> WorkloadSummary {
        self.latencies.sort_by(f64::total_cmp);
        self.summary.p50_ms = percentile(&self.latencies, 0.50);
        self.summary.p95_ms = percentile(&self.latencies, 0.95);
        self.summary
    }
}

/// The nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Workspace {
    /// Runs the generated events workload and logs every query.
    pub async fn run_events_workload(
        &self,
        options: &WorkloadOptions,
        progress: &dyn Progress,
    ) -> Result<WorkloadSummary, DbError> {
        let table = self.require_table(&options.table)?;
        let mut domain = EventsDomain::for_rows(table.row_count);
        domain.table = options.table.to_string();
        domain.customers_table = options.customers_table.to_string();
        let mut generator = EventsWorkload::new(options.seed, domain);
        let session = self.query_session(&options.table, None).await?;
        Ok(run_generated(
            &session,
            options.num_queries,
            || generator.next_query(),
            progress,
        )
        .await)
    }
}

/// Runs `num_queries` queries drawn from `next` in `session`, logging each under its
/// template, and summarizes them (failed queries are logged and counted, not fatal).
pub async fn run_generated(
    session: &QuerySession<'_>,
    num_queries: u64,
    mut next: impl FnMut() -> dbopt_data::workload::GeneratedQuery,
    progress: &dyn Progress,
) -> WorkloadSummary {
    progress.set_total(num_queries);
    let mut builder = SummaryBuilder::default();
    for _ in 0..num_queries {
        let q = next();
        let result = run_logged(session, &q.sql, q.template).await;
        builder.record(q.template, &result);
        progress.advance(1);
    }
    progress.finish();
    builder.finish()
}

/// Runs one workload query, logging it under `template`.
pub async fn run_logged(
    session: &QuerySession<'_>,
    sql: &str,
    template: &str,
) -> Result<dbopt_engine::QueryOutcome, DbError> {
    session
        .run(sql, QueryOrigin::Workload, Some(template))
        .await
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7.0], 0.95), 7.0);
    }
}
