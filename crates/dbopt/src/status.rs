//! `status`, `jobs` and `history`: what each layout of a table costs and saves, the migration
//! jobs, and the time series of evaluations, read from the catalog into the report models.

use crate::{DbError, Workspace};
use dbopt_catalog::{
    DecisionRecord, EvalRecord, JobRecord, JobStatus, LayoutRecord, LayoutStatus as Stored,
    QueryPointRecord, TableRecord,
};
use dbopt_core::{LayoutId, TableName};
use dbopt_evaluate::{Objective, Sample, window_stats};
use dbopt_report::{
    ClusterBest, DecisionRow, HistoryRow, JobRow, LayoutState, LayoutStatus, StatusReport,
};
use std::collections::BTreeMap;

/// The all-clusters row of an evaluation.
const ALL_CLUSTERS: &str = crate::evaluate::ALL_CLUSTERS;

impl Workspace {
    /// Per layout of `table`: state, spec, query figures, last evaluation and traffic share;
    /// the best layout per cluster; queued and running jobs; the last autopilot decision.
    pub fn status(&self, table: &TableName) -> Result<StatusReport, DbError> {
        let points = self.catalog().query_points(table, 0)?;
        self.status_of(table, &points)
    }

    /// `status` over `points`, every measured query of `table` (read once by the caller).
    pub(crate) fn status_of(
        &self,
        table: &TableName,
        points: &[QueryPointRecord],
    ) -> Result<StatusReport, DbError> {
        let record = self.require_table(table)?;
        let settings = self.loop_settings()?;
        let now = self.clock().now_ms();
        let window_start = now.saturating_sub(settings.window_ms);
        let layouts = self.catalog().list_layouts(table)?;
        let last_evals =
            latest_evals(
                self.catalog()
                    .evals(table, None, Some(ALL_CLUSTERS), 10_000)?,
            );
        let jobs = self.jobs(Some(table), None)?;
        Ok(StatusReport {
            table: table.to_string(),
            generated_ms: now,
            window_sec: settings.window_ms as f64 / 1000.0,
            active_layout: record.active_layout.to_string(),
            layouts: layouts
                .iter()
                .map(|l| layout_status(l, &record, points, window_start, &last_evals))
                .collect(),
            best_per_cluster: best_per_cluster(points, settings.objective),
            jobs: jobs
                .into_iter()
                .filter(|j| j.state == "queued" || j.state == "running")
                .collect(),
            last_decision: self.catalog().decisions(table, 1)?.pop().map(decision_row),
        })
    }

    /// Migration jobs (of `table`, in `state`, when given), oldest first.
    pub fn jobs(
        &self,
        table: Option<&TableName>,
        state: Option<JobStatus>,
    ) -> Result<Vec<JobRow>, DbError> {
        if let Some(t) = table {
            self.require_table(t)?;
        }
        Ok(self
            .catalog()
            .list_jobs(table)?
            .into_iter()
            .filter(|j| state.is_none_or(|s| j.status == s))
            .map(job_row)
            .collect())
    }

    /// The newest `limit` evaluations of `table`, oldest first; `only_scored` keeps rows with
    /// a reward.
    pub fn history(
        &self,
        table: &TableName,
        limit: usize,
        only_scored: bool,
    ) -> Result<Vec<HistoryRow>, DbError> {
        self.require_table(table)?;
        let mut rows: Vec<HistoryRow> = self
            .catalog()
            .evals(table, None, None, usize::MAX)?
            .into_iter()
            .filter(|e| !only_scored || e.eval.reward.is_some())
            .map(history_row)
            .collect();
        let skip = rows.len().saturating_sub(limit);
        rows.drain(..skip);
        Ok(rows)
    }
}

/// The newest all-clusters evaluation of each layout.
fn latest_evals(evals: Vec<EvalRecord>) -> BTreeMap<String, EvalRecord> {
    evals
        .into_iter()
        .map(|e| (e.eval.layout_id.to_string(), e))
        .collect()
}

fn layout_status(
    layout: &LayoutRecord,
    table: &TableRecord,
    points: &[QueryPointRecord],
    window_start: i64,
    last_evals: &BTreeMap<String, EvalRecord>,
) -> LayoutStatus {
    let id = layout.layout_id.to_string();
    let mine: Vec<Sample> = points
        .iter()
        .filter(|p| p.layout_id == id)
        .map(sample)
        .collect();
    let stats = (!mine.is_empty()).then(|| window_stats(&mine));
    let eval = last_evals.get(&id).map(|e| &e.eval);
    LayoutStatus {
        layout_id: id.clone(),
        state: layout_state(layout, &table.active_layout),
        spec: layout.spec.describe(),
        size_bytes: layout.total_bytes,
        queries: mine.len() as u64,
        avg_latency_ms: stats.as_ref().map(|s| s.avg_latency_ms),
        p95_latency_ms: stats.as_ref().map(|s| s.p95_latency_ms),
        avg_bytes_scanned: stats.as_ref().map(|s| s.avg_bytes),
        improvement: eval.and_then(|e| e.improvement),
        reward: eval.and_then(|e| e.reward),
        traffic_share: traffic_share(points, window_start, &id),
    }
}

/// Where a layout is in its life as status shows it.
fn layout_state(layout: &LayoutRecord, active: &LayoutId) -> LayoutState {
    match layout.status {
        Stored::Building => LayoutState::Building,
        Stored::Retired => LayoutState::Retired,
        Stored::Failed => LayoutState::Failed,
        Stored::Ready if &layout.layout_id == active => LayoutState::Active,
        Stored::Ready if layout.layout_id == LayoutId::initial() => LayoutState::Initial,
        Stored::Ready => LayoutState::Candidate,
    }
}

/// The share of the window's queries that read `layout` (None when the window is empty).
fn traffic_share(points: &[QueryPointRecord], window_start: i64, layout: &str) -> Option<f64> {
    let recent: Vec<&QueryPointRecord> =
        points.iter().filter(|p| p.ts_ms >= window_start).collect();
    if recent.is_empty() {
        return None;
    }
    let mine = recent.iter().filter(|p| p.layout_id == layout).count();
    Some(mine as f64 / recent.len() as f64)
}

/// Per cluster, the layout with the lowest mean objective over every logged query.
fn best_per_cluster(points: &[QueryPointRecord], objective: Objective) -> Vec<ClusterBest> {
    let mut groups: BTreeMap<(&str, &str), Vec<Sample>> = BTreeMap::new();
    for p in points.iter().filter(|p| p.cluster_id != "-") {
        groups
            .entry((p.cluster_id.as_str(), p.layout_id.as_str()))
            .or_default()
            .push(sample(p));
    }
    let mut best: BTreeMap<&str, ClusterBest> = BTreeMap::new();
    for ((cluster, layout), samples) in &groups {
        let stats = window_stats(samples);
        let candidate = ClusterBest {
            cluster: cluster.to_string(),
            layout_id: layout.to_string(),
            queries: stats.queries,
            avg_bytes_scanned: stats.avg_bytes,
            avg_latency_ms: stats.avg_latency_ms,
        };
        let better = best
            .get(cluster)
            .is_none_or(|b| cost(&candidate, objective) < cost(b, objective));
        if better {
            best.insert(cluster, candidate);
        }
    }
    best.into_values().collect()
}

fn cost(row: &ClusterBest, objective: Objective) -> f64 {
    match objective {
        Objective::Bytes => row.avg_bytes_scanned,
        Objective::Latency => row.avg_latency_ms,
    }
}

fn sample(p: &QueryPointRecord) -> Sample {
    Sample {
        latency_ms: p.latency_ms,
        bytes: p.bytes_scanned as f64,
        rows: 0.0,
    }
}

/// A job as `jobs` and `status` show it.
pub(crate) fn job_row(job: JobRecord) -> JobRow {
    JobRow {
        id: job.id,
        table: job.table.to_string(),
        source_layout: job.source_layout.to_string(),
        target_layout: job.target_layout.to_string(),
        state: job.status.as_str().to_string(),
        units_done: job.units_done,
        units_total: job.units_total,
        lease_owner: job.lease_owner,
        lease_expires_ms: job.lease_expires_ms,
        attempts: u32::try_from(job.attempt).unwrap_or(u32::MAX),
        last_error: job.error,
        created_ms: job.created_at_ms,
        finished_ms: job.finished_at_ms,
        bytes_read: job.stats.bytes_read,
        bytes_written: job.stats.bytes_written,
        rows_written: job.stats.rows_written,
        duration_ms: job.stats.duration_ms,
        peak_memory_bytes: job.stats.peak_memory_bytes,
    }
}

/// A decision as status and reports show it.
pub(crate) fn decision_row(d: DecisionRecord) -> DecisionRow {
    DecisionRow {
        at_ms: d.at_ms,
        step: d.step,
        decision: d.decision,
        reason: d.reason,
    }
}

/// An evaluation as `history` shows it.
pub(crate) fn history_row(e: EvalRecord) -> HistoryRow {
    HistoryRow {
        window_end_ms: e.eval.window_end_ms,
        layout_id: e.eval.layout_id.to_string(),
        cluster: e.eval.cluster_id,
        reward: e.eval.reward,
        improvement: e.eval.improvement,
        queries: e.eval.queries,
        avg_latency_ms: e.eval.avg_latency_ms,
        p95_latency_ms: e.eval.p95_latency_ms,
        avg_bytes_scanned: e.eval.avg_bytes_scanned,
        avg_rows_returned: e.eval.avg_rows_returned,
        regressed: e.eval.regressed,
    }
}
