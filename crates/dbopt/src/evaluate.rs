//! Evaluation: over a rolling window of logged queries, score each live layout per cluster
//! against the baseline (the active layout): query count, latency percentiles, mean bytes and
//! rows, improvement, reward. The active layout is also checked against the layout it
//! replaced (in the same window when that one still gets traffic, else the canary's baseline
//! figures); a window where it is worse by more than `regression_margin` is marked regressed,
//! and autopilot rolls back after `rollback_after_windows` such windows in a row.

use crate::loop_settings::LoopSettings;
use crate::route::live_layouts;
use crate::{DbError, Workspace};
use dbopt_catalog::{LayoutEval, LoggedQuery, QueryOrigin};
use dbopt_core::{LayoutId, TableName};
use dbopt_evaluate::{
    CanaryQuery, Moments, Objective, Sample, amortized_rewrite_cost, regressed, window_stats,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// The cluster id of the all-clusters row.
pub const ALL_CLUSTERS: &str = "*";

/// A layout (or layout and cluster) left unscored, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// The layout.
    pub layout: LayoutId,
    /// The cluster, or `*`.
    pub cluster: String,
    /// Queries it had in the window.
    pub queries: u64,
    /// Why it was not scored.
    pub reason: String,
}

/// One evaluation pass.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluateReport {
    /// The table.
    pub table: String,
    /// Window start, ms since the Unix epoch.
    pub window_start_ms: i64,
    /// Window end.
    pub window_end_ms: i64,
    /// The baseline layout.
    pub baseline: LayoutId,
    /// The layout the active one replaced, when known.
    pub reference: Option<LayoutId>,
    /// What was optimized.
    pub objective: Objective,
    /// Scored rows.
    pub scored: Vec<LayoutEval>,
    /// Unscored layouts and clusters with the reason.
    pub skipped: Vec<Skipped>,
    /// Whether the rows were stored (false on a dry run).
    pub written: bool,
}

/// (cluster -> samples) of one layout.
type ByCluster = BTreeMap<String, Vec<Sample>>;

impl Workspace {
    /// Scores `table`'s layouts over the last `settings.window_ms` and stores the rows unless
    /// `dry_run`. No measured query in the window is a bad-input error.
    #[tracing::instrument(skip_all, fields(table = %table, dry_run = dry_run))]
    pub fn evaluate(
        &self,
        table: &TableName,
        settings: &LoopSettings,
        dry_run: bool,
    ) -> Result<EvaluateReport, DbError> {
        let baseline = self.require_table(table)?.active_layout;
        let end = self.clock().now_ms();
        let start = end.saturating_sub(settings.window_ms);
        let by_layout = window_samples(
            self.catalog().queries_for_table(table, Some(start), None)?,
            table,
        );
        if by_layout.is_empty() {
            return Err(DbError::NoMeasuredQueries {
                table: table.to_string(),
                window: human_window(settings.window_ms),
            });
        }
        let reference = self.previous_active(table, &baseline)?;
        let served = self.served_counts(table)?;
        let table_bytes = self
            .catalog()
            .get_layout(table, &LayoutId::initial())?
            .map_or(0, |l| l.total_bytes);
        let mut report = EvaluateReport {
            table: table.to_string(),
            window_start_ms: start,
            window_end_ms: end,
            baseline: baseline.clone(),
            reference: reference.clone(),
            objective: settings.objective,
            scored: Vec::new(),
            skipped: Vec::new(),
            written: false,
        };
        let empty = ByCluster::new();
        let base_samples = by_layout.get(&baseline).unwrap_or(&empty);
        for live in live_layouts(self, table)? {
            let Some(samples) = by_layout.get(&live.id) else {
                report.skipped.push(Skipped {
                    layout: live.id.clone(),
                    cluster: ALL_CLUSTERS.into(),
                    queries: 0,
                    reason: "no queries in the window (route queries to it with --explore)".into(),
                });
                continue;
            };
            let cost = amortized_rewrite_cost(
                live.rewrite_bytes,
                table_bytes,
                served.get(&live.id).copied().unwrap_or(0),
            );
            let ctx = RowContext {
                table,
                layout: &live.id,
                baseline: &baseline,
                settings,
                start,
                end,
                cost,
            };
            score_layout(&ctx, samples, base_samples, &mut report);
        }
        if let Some(reference) = &reference {
            let regressed_now =
                self.regressed_against(table, &baseline, reference, &by_layout, settings)?;
            if let Some(row) = report
                .scored
                .iter_mut()
                .find(|r| r.layout_id == baseline && r.cluster_id == ALL_CLUSTERS)
            {
                row.regressed = regressed_now;
            }
        }
        if !dry_run && !report.scored.is_empty() {
            self.catalog().record_evals(&report.scored)?;
            report.written = true;
        }
        Ok(report)
    }

    /// Queries each layout has answered overall (for amortizing its rewrite cost).
    fn served_counts(&self, table: &TableName) -> Result<BTreeMap<LayoutId, u64>, DbError> {
        let mut served = BTreeMap::new();
        for s in self.catalog().route_stats(table)? {
            *served.entry(s.layout_id).or_insert(0) += s.n;
        }
        Ok(served)
    }

    /// Whether the active layout did worse in this window than the layout it replaced: that
    /// layout's figures in the same window per cluster when it has enough, else the baseline
    /// figures of the canary that compared the two.
    fn regressed_against(
        &self,
        table: &TableName,
        active: &LayoutId,
        reference: &LayoutId,
        by_layout: &BTreeMap<LayoutId, ByCluster>,
        settings: &LoopSettings,
    ) -> Result<bool, DbError> {
        let Some(mine) = by_layout.get(active) else {
            return Ok(false);
        };
        let canary: Vec<CanaryQuery> = self
            .catalog()
            .canaries(table, Some(active))?
            .into_iter()
            .rev()
            .find(|c| &c.canary.baseline_layout == reference)
            .and_then(|c| serde_json::from_str(&c.canary.detail_json).ok())
            .unwrap_or_default();
        let theirs = by_layout.get(reference);
        let (mut num, mut den) = (0.0, 0.0);
        for (cluster, samples) in mine {
            let n = samples.len() as f64;
            let own = objective_mean(samples, settings.objective);
            let in_window = theirs
                .and_then(|t| t.get(cluster))
                .filter(|s| s.len() as u64 >= settings.min_samples)
                .map(|s| objective_mean(s, settings.objective));
            let from_canary = || canary_mean(&canary, cluster, settings.objective);
            if let Some(reference_mean) = in_window.or_else(from_canary) {
                num += n * own;
                den += n * reference_mean;
            }
        }
        let improvement = (den > 0.0).then(|| 1.0 - num / den);
        Ok(regressed(improvement, settings.regression_margin))
    }
}

/// What every row of one layout shares.
struct RowContext<'a> {
    table: &'a TableName,
    layout: &'a LayoutId,
    baseline: &'a LayoutId,
    settings: &'a LoopSettings,
    start: i64,
    end: i64,
    cost: f64,
}

/// Adds the all-clusters row and one row per cluster with enough samples.
fn score_layout(
    ctx: &RowContext<'_>,
    samples: &ByCluster,
    base: &ByCluster,
    report: &mut EvaluateReport,
) {
    let all: Vec<Sample> = samples.values().flatten().copied().collect();
    let min = ctx.settings.min_samples;
    if (all.len() as u64) < min {
        report.skipped.push(Skipped {
            layout: ctx.layout.clone(),
            cluster: ALL_CLUSTERS.into(),
            queries: all.len() as u64,
            reason: format!(
                "{} queries in the window, fewer than min_samples {min}",
                all.len()
            ),
        });
        return;
    }
    // Against the baseline cluster by cluster, so a different mix of shapes is no bias.
    let (mut num, mut den) = (0.0, 0.0);
    for (cluster, s) in samples {
        if let Some(b) = base.get(cluster) {
            num += s.len() as f64 * objective_mean(s, ctx.settings.objective);
            den += s.len() as f64 * objective_mean(b, ctx.settings.objective);
        }
    }
    let overall = relative(num, den);
    report.scored.push(row(ctx, ALL_CLUSTERS, &all, overall));
    for (cluster, s) in samples {
        if (s.len() as u64) < min {
            report.skipped.push(Skipped {
                layout: ctx.layout.clone(),
                cluster: cluster.clone(),
                queries: s.len() as u64,
                reason: format!("{} queries, fewer than min_samples {min}", s.len()),
            });
            continue;
        }
        let imp = base.get(cluster).and_then(|b| {
            relative(
                objective_mean(s, ctx.settings.objective),
                objective_mean(b, ctx.settings.objective),
            )
        });
        report.scored.push(row(ctx, cluster, s, imp));
    }
}

fn row(
    ctx: &RowContext<'_>,
    cluster: &str,
    samples: &[Sample],
    improvement: Option<f64>,
) -> LayoutEval {
    let w = window_stats(samples);
    let weights = ctx.settings.weights;
    LayoutEval {
        table: ctx.table.clone(),
        layout_id: ctx.layout.clone(),
        cluster_id: cluster.to_string(),
        window_start_ms: ctx.start,
        window_end_ms: ctx.end,
        baseline_layout: ctx.baseline.clone(),
        objective: ctx.settings.objective.as_str().to_string(),
        queries: w.queries,
        avg_latency_ms: w.avg_latency_ms,
        p50_latency_ms: w.p50_latency_ms,
        p95_latency_ms: w.p95_latency_ms,
        p99_latency_ms: w.p99_latency_ms,
        avg_bytes_scanned: w.avg_bytes,
        avg_rows_returned: w.avg_rows,
        improvement,
        reward: improvement.map(|i| weights.alpha * i - weights.beta * ctx.cost),
        regressed: false,
    }
}

/// 1 - value / reference (None without a reference).
fn relative(value: f64, reference: f64) -> Option<f64> {
    if reference > 0.0 {
        Some(1.0 - value / reference)
    } else if reference == 0.0 && value == 0.0 {
        Some(0.0)
    } else {
        None
    }
}

fn objective_mean(samples: &[Sample], objective: Objective) -> f64 {
    let m = samples.iter().fold(Moments::default(), |m, s| {
        let x = match objective {
            Objective::Bytes => s.bytes,
            Objective::Latency => s.latency_ms,
        };
        m.merge(&Moments {
            n: 1,
            sum: x,
            sum_sq: x * x,
        })
    });
    m.mean().unwrap_or(0.0)
}

/// The canary baseline's frequency-weighted mean for `cluster`.
fn canary_mean(queries: &[CanaryQuery], cluster: &str, objective: Objective) -> Option<f64> {
    let hits: Vec<&CanaryQuery> = queries
        .iter()
        .filter(|q| q.cluster_id.as_deref() == Some(cluster))
        .collect();
    let weight: f64 = hits.iter().map(|q| q.weight.max(1) as f64).sum();
    (weight > 0.0).then(|| {
        hits.iter()
            .map(|q| {
                let x = match objective {
                    Objective::Bytes => q.baseline_bytes,
                    Objective::Latency => q.baseline_latency_ms,
                };
                q.weight.max(1) as f64 * x
            })
            .sum::<f64>()
            / weight
    })
}

/// Measured queries of the window grouped by layout and cluster (`?` when never clustered).
fn window_samples(queries: Vec<LoggedQuery>, table: &TableName) -> BTreeMap<LayoutId, ByCluster> {
    let mut out: BTreeMap<LayoutId, ByCluster> = BTreeMap::new();
    for q in queries {
        let e = q.entry;
        let (Some(layout), None) = (e.layout_id.clone(), &e.error) else {
            continue;
        };
        if e.origin == QueryOrigin::Imported || !e.latency_ms.is_finite() || &e.table != table {
            continue;
        }
        let bytes = e
            .scans
            .iter()
            .find(|s| &s.table == table)
            .map_or(e.metrics.bytes_scanned, |s| s.metrics.bytes_scanned);
        out.entry(layout)
            .or_default()
            .entry(e.cluster_id.unwrap_or_else(|| "?".into()))
            .or_default()
            .push(Sample {
                latency_ms: e.latency_ms,
                bytes: bytes as f64,
                rows: e.rows_returned as f64,
            });
    }
    out
}

/// `3600000` -> `1h`, for messages.
pub fn human_window(ms: i64) -> String {
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)] {
        if ms % size == 0 && ms >= size {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{}s", ms / 1000)
}
