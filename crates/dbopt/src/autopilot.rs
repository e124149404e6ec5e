//! Autopilot: one pass closes the loop for one table.
//!
//! 1. propose over the logged workload; rewrite the best proposal (as a routed candidate) when
//!    it is recommended and pays back within `max_payback_runs` workload runs;
//! 2. for the query cluster that every measured live layout still serves by scanning most of
//!    the table (and that the layout built in step 1 is not predicted to serve), propose a
//!    layout for that cluster alone and build it beside the others when the bytes it saves
//!    over the payback horizon pay for its storage (at most one per pass, largest first);
//! 3. canary every candidate not yet compared with the active layout; promote the best that
//!    passes (compare-and-swap);
//! 4. evaluate the window; roll the active layout back when it regressed for
//!    `rollback_after_windows` windows in a row;
//! 5. retire rejected layouts and layouts beyond `max_layouts` that no cluster prefers, then gc.
//!
//! Every step records its decision and reason in the catalog's `decisions`. A pass holds an
//! exclusive lock on `DATA_DIR/<table>/_autopilot.lock` (released by the OS if the process
//! dies), so two autopilots never overlap on a table. Each step is one catalog transaction or
//! a crash-safe migration, so a killed pass leaves either the old state or the new one; a job
//! it left queued or running is resumed by the next pass's worker once its lease expires.

use crate::loop_settings::LoopSettings;
use crate::migrate::{EnqueueRequest, SpecSource};
use crate::route::{cluster_sums, live_layouts};
use crate::{DbError, Workspace};
use dbopt_catalog::LoggedQuery;
use dbopt_catalog::{LayoutStatus, MigrationMode, Verdict};
use dbopt_core::{LayoutId, TableName};
use dbopt_evaluate::{ArmInput, arm_rewards, should_roll_back};
use dbopt_migrate::WorkerOptions;
use dbopt_propose::ClusterFigure;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A cluster counts as underserved when its best live layout still reads more than this share
/// of its row groups per query.
pub const UNDERSERVED_SCAN_SHARE: f64 = 0.5;

/// How many recent logged queries step 2 measures clusters over.
pub const COVERAGE_QUERIES: usize = 5000;

/// What one cluster's queries cost on one layout.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Coverage {
    /// Queries measured.
    n: u64,
    /// Sum over them of the share of row groups they read.
    read_share_sum: f64,
    /// Bytes they scanned of the table.
    bytes: f64,
}

/// Per cluster and live layout, what the logged queries read of `table`.
fn coverage(
    queries: &[LoggedQuery],
    table: &TableName,
    live: &BTreeSet<LayoutId>,
) -> BTreeMap<String, BTreeMap<LayoutId, Coverage>> {
    let mut out: BTreeMap<String, BTreeMap<LayoutId, Coverage>> = BTreeMap::new();
    for q in queries {
        let (Some(cluster), None) = (&q.entry.cluster_id, &q.entry.error) else {
            continue;
        };
        let Some(scan) = q.entry.scans.iter().find(|s| &s.table == table) else {
            continue;
        };
        if !live.contains(&scan.layout_id) || scan.metrics.row_groups_total == 0 {
            continue;
        }
        let m = scan.metrics;
        let read = m.row_groups_total.saturating_sub(m.row_groups_pruned) as f64;
        let c = out
            .entry(cluster.clone())
            .or_default()
            .entry(scan.layout_id.clone())
            .or_default();
        c.n += 1;
        c.read_share_sum += read / m.row_groups_total as f64;
        c.bytes += m.bytes_scanned as f64;
    }
    out
}

/// Clusters that every live layout measured on them (at least `min_samples` queries) serves by
/// reading more than `UNDERSERVED_SCAN_SHARE` of the row groups: (cluster, the best layout's
/// read share, bytes the cluster scanned), the most bytes first.
fn underserved(
    cov: &BTreeMap<String, BTreeMap<LayoutId, Coverage>>,
    min_samples: u64,
) -> Vec<(String, f64, f64)> {
    let mut out: Vec<(String, f64, f64)> = cov
        .iter()
        .filter_map(|(cluster, layouts)| {
            let best = layouts
                .values()
                .filter(|c| c.n >= min_samples)
                .map(|c| c.read_share_sum / c.n as f64)
                .fold(f64::INFINITY, f64::min);
            let bytes = layouts.values().map(|c| c.bytes).sum();
            (best.is_finite() && best > UNDERSERVED_SCAN_SHARE)
                .then(|| (cluster.clone(), best, bytes))
        })
        .collect();
    out.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    out
}

/// One step of a pass and what it decided.
#[derive(Debug, Clone, Serialize)]
pub struct StepOutcome {
    /// The step name.
    pub step: String,
    /// What was decided.
    pub decision: String,
    /// Why.
    pub reason: String,
}

/// What one autopilot pass did.
#[derive(Debug, Clone, Serialize)]
pub struct PassReport {
    /// The pass id (shared by its decision rows).
    pub pass_id: String,
    /// The table.
    pub table: String,
    /// The steps in order.
    pub steps: Vec<StepOutcome>,
    /// The active layout after the pass.
    pub active: LayoutId,
}

/// The exclusive per-table lock of an autopilot pass; released on drop or process death.
pub struct TableLock {
    _file: File,
}

impl TableLock {
    /// Takes the lock of `table` or fails at once when another process holds it.
    pub fn acquire(ws: &Workspace, table: &TableName) -> Result<TableLock, DbError> {
        let dir = ws.table_dir(table);
        std::fs::create_dir_all(&dir)
            .map_err(|e| DbError::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join("_autopilot.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| DbError::io(format!("opening {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(TableLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(DbError::Busy(format!(
                "another autopilot is running on table '{table}' (it holds {}): wait for its pass to end or stop it",
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(DbError::io(format!("locking {}", path.display()), e))
            }
        }
    }
}

/// A pass in progress: records each step as a decision.
struct Pass<'a> {
    ws: &'a Workspace,
    table: &'a TableName,
    settings: &'a LoopSettings,
    id: String,
    steps: Vec<StepOutcome>,
    stop: &'a AtomicBool,
}

impl Pass<'_> {
    fn record(&mut self, step: &str, decision: &str, reason: &str) -> Result<(), DbError> {
        self.ws
            .catalog()
            .record_decision(self.table, &self.id, step, decision, reason, "{}")?;
        tracing::info!(step, decision, "{step}: {decision}: {reason}");
        self.steps.push(StepOutcome {
            step: step.into(),
            decision: decision.into(),
            reason: reason.into(),
        });
        Ok(())
    }

    /// Whether the caller asked the pass to stop (checked between steps).
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

impl Workspace {
    /// Runs one autopilot pass over `table` (see the module docs for its steps); each decision
    /// is also an info event on `tracing`.
    pub async fn autopilot_pass(
        &self,
        table: &TableName,
        settings: &LoopSettings,
    ) -> Result<PassReport, DbError> {
        self.autopilot_pass_with_stop(table, settings, &AtomicBool::new(false))
            .await
    }

    /// `autopilot_pass` that ends early once `stop` is set: a rewrite in progress stops after
    /// its current unit (its job goes back to the queue, recorded as a `migrate` step with
    /// decision `interrupted`) and the steps not yet begun are skipped.
    #[tracing::instrument(name = "autopilot_pass", skip_all, fields(table = %table, pass_id = tracing::field::Empty))]
    pub async fn autopilot_pass_with_stop(
        &self,
        table: &TableName,
        settings: &LoopSettings,
        stop: &AtomicBool,
    ) -> Result<PassReport, DbError> {
        self.require_table(table)?;
        let _lock = TableLock::acquire(self, table)?;
        let mut pass = Pass {
            ws: self,
            table,
            settings,
            id: format!("{table}-{}", self.clock().now_ms()),
            steps: Vec::new(),
            stop,
        };
        tracing::Span::current().record("pass_id", tracing::field::display(&pass.id));
        if self.catalog().count_queries(table)? == 0 {
            pass.record(
                "propose",
                "skipped",
                "no logged queries yet: run queries on the table first",
            )?;
        } else {
            self.run_steps(&mut pass).await?;
        }
        Ok(PassReport {
            pass_id: pass.id,
            table: table.to_string(),
            steps: pass.steps,
            active: self.require_table(table)?.active_layout,
        })
    }

    /// Steps 1 to 5 in order, skipping those after a stop request.
    async fn run_steps(&self, pass: &mut Pass<'_>) -> Result<(), DbError> {
        let built = self.rewrite_best_proposal(pass).await?;
        if pass.stopped() {
            return Ok(());
        }
        self.serve_underserved_clusters(pass, &built).await?;
        if pass.stopped() {
            return Ok(());
        }
        self.canary_candidates(pass).await?;
        if pass.stopped() {
            return Ok(());
        }
        self.evaluate_and_roll_back(pass)?;
        if pass.stopped() {
            return Ok(());
        }
        self.retire_unpreferred(pass)
    }

    /// Step 1: propose over the whole workload and build the best proposal when it pays;
    /// returns the built proposal's per-cluster predictions (empty when nothing was built).
    #[tracing::instrument(name = "autopilot_propose", skip_all)]
    async fn rewrite_best_proposal(
        &self,
        pass: &mut Pass<'_>,
    ) -> Result<Vec<ClusterFigure>, DbError> {
        let outcome = match self.propose_layouts(pass.table, None, None).await {
            Ok(o) => o,
            Err(e) if e.is_user_error() => {
                pass.record("propose", "skipped", &e.to_string())?;
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let Some(best) = outcome.proposals.first() else {
            pass.record("propose", "skipped", "no candidate layout")?;
            return Ok(Vec::new());
        };
        let p = &best.proposal;
        if p.is_current {
            pass.record(
                "propose",
                "keep",
                &format!("keeping the current layout ranks first ({})", p.description),
            )?;
            return Ok(Vec::new());
        }
        let why_not = self.why_not_build(pass, &p.target_layout, p.recommended, p.payback_runs)?;
        if let Some(reason) = why_not {
            pass.record(
                "propose",
                "skipped",
                &format!("{}: {reason}", p.description),
            )?;
            return Ok(Vec::new());
        }
        let reason = format!(
            "{}: predicted {:.0}% fewer bytes, pays back in {:.2} workload runs",
            p.description,
            p.predicted_reduction * 100.0,
            p.payback_runs.unwrap_or(0.0)
        );
        pass.record("propose", "build", &reason)?;
        self.build_layout(pass, best.id).await?;
        Ok(p.clusters.clone())
    }

    /// Why a proposal should not be built now, or None when it should.
    fn why_not_build(
        &self,
        pass: &Pass<'_>,
        target: &LayoutId,
        recommended: bool,
        payback_runs: Option<f64>,
    ) -> Result<Option<String>, DbError> {
        if !recommended {
            return Ok(Some("below the recommendation thresholds".into()));
        }
        if let Some(runs) = payback_runs
            && runs > pass.settings.max_payback_runs
        {
            return Ok(Some(format!(
                "pays back in {runs:.1} workload runs, beyond max_payback_runs {}",
                pass.settings.max_payback_runs
            )));
        }
        if let Some(l) = self.catalog().get_layout(pass.table, target)? {
            return Ok(Some(format!(
                "layout {target} already exists ({})",
                l.status
            )));
        }
        let extra = live_layouts(self, pass.table)?
            .iter()
            .filter(|l| l.id != LayoutId::initial())
            .count() as u64;
        if extra >= pass.settings.max_layouts {
            return Ok(Some(format!(
                "the table already keeps max_layouts {} layouts besides the initial one",
                pass.settings.max_layouts
            )));
        }
        Ok(None)
    }

    /// Queues proposal `proposal_id` as a candidate (not activated) and runs the worker for it.
    #[tracing::instrument(name = "autopilot_migrate", skip_all, fields(proposal_id = proposal_id))]
    async fn build_layout(&self, pass: &mut Pass<'_>, proposal_id: i64) -> Result<(), DbError> {
        let req = EnqueueRequest {
            table: pass.table.clone(),
            spec: SpecSource::Proposal(proposal_id),
            mode: MigrationMode::Full,
            batch_files: None,
            rows_per_file: None,
            activate: false,
            dry_run: false,
        };
        if let Err(e) = self.enqueue_migration(&req) {
            return pass.record("migrate", "skipped", &e.to_string());
        }
        let options = WorkerOptions {
            owner: format!("autopilot:{}", std::process::id()),
            keep_polling: false,
            sleep: Duration::from_secs(1),
            max_jobs: None,
            table: Some(pass.table.clone()),
        };
        let report = self.run_migration_worker(&options, pass.stop).await?;
        for done in &report.done {
            pass.record(
                "migrate",
                "published",
                &format!(
                    "layout {} as a routed candidate ({} rows, {} bytes written in {} ms)",
                    done.layout,
                    done.stats.rows_written,
                    done.stats.bytes_written,
                    done.stats.duration_ms
                ),
            )?;
        }
        for (id, reason) in report.failed.iter().chain(&report.retried) {
            pass.record("migrate", "failed", &format!("job {id}: {reason}"))?;
        }
        if report.interrupted {
            pass.record(
                "migrate",
                "interrupted",
                "stopped on request: the job goes back to the queue with its finished units kept",
            )?;
        }
        Ok(())
    }

    /// Step 2: a layout of its own for the query cluster that no live layout serves well and
    /// that scans the most, when one pays for its storage. Clusters the layout built in step 1
    /// is predicted to serve are left to it; at most one such layout is built per pass.
    #[tracing::instrument(name = "autopilot_cluster", skip_all)]
    async fn serve_underserved_clusters(
        &self,
        pass: &mut Pass<'_>,
        just_built: &[ClusterFigure],
    ) -> Result<(), DbError> {
        let live: BTreeSet<LayoutId> = live_layouts(self, pass.table)?
            .into_iter()
            .map(|l| l.id)
            .collect();
        let extra = live.iter().filter(|l| **l != LayoutId::initial()).count() as u64;
        if extra >= pass.settings.max_layouts {
            return Ok(()); // no room for a layout of its own; retire (step 5) may make some
        }
        let recent = self
            .catalog()
            .queries_for_table(pass.table, None, Some(COVERAGE_QUERIES))?;
        let cov = coverage(&recent, pass.table, &live);
        let mut underserved = underserved(&cov, pass.settings.min_samples);
        underserved.retain(|(cluster, _, _)| {
            !just_built.iter().any(|f| {
                &f.cluster_id == cluster
                    && f.predicted_bytes < UNDERSERVED_SCAN_SHARE * f.current_bytes
            })
        });
        for (cluster, best_share, _) in underserved.into_iter().take(3) {
            if pass.stopped() || self.propose_for_cluster(pass, &cluster, best_share).await? {
                break;
            }
        }
        Ok(())
    }

    /// Proposes and (when it pays for its storage) builds a layout for one cluster.
    #[tracing::instrument(skip_all, fields(cluster = cluster))]
    async fn propose_for_cluster(
        &self,
        pass: &mut Pass<'_>,
        cluster: &str,
        best_share: f64,
    ) -> Result<bool, DbError> {
        let step = "cluster";
        let outcome = match self.propose_layouts(pass.table, None, Some(cluster)).await {
            Ok(o) => o,
            Err(e) if e.is_user_error() => {
                pass.record(step, "skipped", &e.to_string())?;
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let Some(best) = outcome
            .proposals
            .iter()
            .find(|p| !p.proposal.is_current && p.proposal.recommended)
        else {
            pass.record(
                step,
                "skipped",
                &format!(
                    "cluster {cluster} reads {:.0}% of the row groups on its best layout and no layout helps it enough",
                    best_share * 100.0
                ),
            )?;
            return Ok(false);
        };
        let p = &best.proposal;
        // Bytes one run of the cluster's queries saves, over the horizon, against the storage
        // the extra layout takes (about the table's size).
        let saved =
            (p.current_bytes - p.predicted.bytes_scanned).max(0.0) * pass.settings.max_payback_runs;
        let storage = p.rewrite_write_bytes as f64;
        if saved < storage {
            pass.record(
                step,
                "skipped",
                &format!(
                    "cluster {cluster}: {} would save {saved:.0} bytes over {} runs, less than the {storage:.0} bytes it stores",
                    p.description, pass.settings.max_payback_runs
                ),
            )?;
            return Ok(false);
        }
        if let Some(reason) = self.why_not_build(pass, &p.target_layout, true, None)? {
            pass.record(
                step,
                "skipped",
                &format!("cluster {cluster}: {}: {reason}", p.description),
            )?;
            return Ok(false);
        }
        pass.record(
            step,
            "build",
            &format!(
                "cluster {cluster} reads {:.0}% of the row groups on its best live layout; {} predicts {:.0}% fewer bytes for it",
                best_share * 100.0,
                p.description,
                p.predicted_reduction * 100.0
            ),
        )?;
        self.build_layout(pass, best.id).await?;
        Ok(true)
    }

    /// Step 3: canary the candidates not yet compared with the active layout; promote the one
    /// with the largest measured reduction among those that pass.
    #[tracing::instrument(name = "autopilot_canary", skip_all)]
    async fn canary_candidates(&self, pass: &mut Pass<'_>) -> Result<(), DbError> {
        let active = self.require_table(pass.table)?.active_layout;
        let mut winner: Option<(LayoutId, f64, String)> = None;
        let candidates = live_layouts(self, pass.table)?
            .into_iter()
            .skip(1)
            .filter(|l| l.id != LayoutId::initial());
        for layout in candidates {
            let compared = self
                .catalog()
                .latest_canary(pass.table, &layout.id)?
                .is_some_and(|c| c.canary.baseline_layout == active);
            if compared {
                continue;
            }
            let report = self
                .canary(
                    pass.table,
                    &layout.id,
                    pass.settings.canary_queries,
                    pass.settings.min_canary_reduction,
                )
                .await?;
            pass.record(
                "canary",
                report.verdict.as_str(),
                &format!("layout {}: {}", layout.id, report.reason),
            )?;
            let better = winner
                .as_ref()
                .is_none_or(|(_, r, _)| report.summary.reduction > *r);
            if report.verdict == Verdict::Promote && better {
                winner = Some((layout.id, report.summary.reduction, report.reason));
            }
        }
        if let Some((layout, _, reason)) = winner {
            match self.promote(pass.table, &layout, false, "autopilot", &reason) {
                Ok(_) => {
                    pass.record("promote", "promoted", &format!("layout {layout}: {reason}"))?;
                }
                Err(DbError::Catalog(e)) => pass.record("promote", "lost", &e.to_string())?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Step 4: evaluate the window and roll back an active layout that keeps regressing.
    #[tracing::instrument(name = "autopilot_evaluate", skip_all)]
    fn evaluate_and_roll_back(&self, pass: &mut Pass<'_>) -> Result<(), DbError> {
        match self.evaluate(pass.table, pass.settings, false) {
            Ok(report) => pass.record(
                "evaluate",
                "scored",
                &format!(
                    "{} layout/cluster rows scored, {} skipped",
                    report.scored.len(),
                    report.skipped.len()
                ),
            )?,
            Err(e) if e.is_user_error() => {
                return pass.record("evaluate", "skipped", &e.to_string());
            }
            Err(e) => return Err(e),
        }
        let table = self.require_table(pass.table)?;
        let Some(previous) = self.previous_active(pass.table, &table.active_layout)? else {
            return Ok(());
        };
        let since = self
            .catalog()
            .activations(pass.table)?
            .last()
            .map_or(0, |a| a.at_ms);
        let windows = pass.settings.rollback_after_windows as usize;
        let recent: Vec<bool> = self
            .catalog()
            .evals(
                pass.table,
                Some(&table.active_layout),
                Some(crate::evaluate::ALL_CLUSTERS),
                windows.max(1),
            )?
            .into_iter()
            .filter(|e| e.evaluated_at_ms >= since)
            .map(|e| e.eval.regressed)
            .collect();
        if !should_roll_back(&recent, windows) {
            return Ok(());
        }
        let reason = format!(
            "layout {} regressed against {previous} in the last {windows} evaluation windows",
            table.active_layout
        );
        match self.rollback(pass.table, Some(&previous), "autopilot", &reason) {
            Ok(_) => pass.record("rollback", "rolled back", &reason),
            Err(DbError::Catalog(e)) => pass.record("rollback", "lost", &e.to_string()),
            Err(e) => pass.record("rollback", "skipped", &e.to_string()),
        }
    }

    /// Step 5: retire rejected layouts, and layouts beyond `max_layouts` no cluster prefers.
    #[tracing::instrument(name = "autopilot_retire", skip_all)]
    fn retire_unpreferred(&self, pass: &mut Pass<'_>) -> Result<(), DbError> {
        let active = self.require_table(pass.table)?.active_layout;
        let preferred = self.preferred_layouts(pass)?;
        let mut extra: Vec<LayoutId> = self
            .catalog()
            .ready_layouts(pass.table)?
            .into_iter()
            .map(|l| l.layout_id)
            .filter(|id| id != &LayoutId::initial() && id != &active)
            .collect();
        let mut kept = extra.len() as u64 + u64::from(active != LayoutId::initial());
        extra.retain(|id| !preferred.contains(id));
        let mut retired_any = false;
        for id in extra {
            let rejected = self
                .catalog()
                .latest_canary(pass.table, &id)?
                .is_some_and(|c| c.canary.verdict == Verdict::Reject);
            if !rejected && kept <= pass.settings.max_layouts {
                continue;
            }
            self.catalog()
                .set_layout_status(pass.table, &id, LayoutStatus::Retired)?;
            kept -= 1;
            let why = if rejected {
                "its canary rejected it"
            } else {
                "beyond max_layouts and no cluster prefers it"
            };
            pass.record("retire", "retired", &format!("layout {id}: {why}"))?;
            retired_any = true;
        }
        // Every pass collects: the files of layouts retired in an earlier pass go once their
        // gc grace period is over (those retired in this pass are kept for it). Ready layouts
        // are only counted against max_layouts when this pass retired something, as before.
        let keep = if retired_any {
            pass.settings.max_layouts as usize
        } else {
            usize::MAX
        };
        self.gc_table(pass.table, keep, false)?;
        Ok(())
    }

    /// Layouts that are the best arm of at least one cluster with enough samples.
    fn preferred_layouts(&self, pass: &Pass<'_>) -> Result<BTreeSet<LayoutId>, DbError> {
        let live = live_layouts(self, pass.table)?;
        let sums = cluster_sums(self, pass.table, pass.settings.objective)?;
        let table_bytes = self
            .catalog()
            .get_layout(pass.table, &LayoutId::initial())?
            .map_or(0, |l| l.total_bytes);
        let inputs: Vec<ArmInput> = live
            .iter()
            .map(|l| ArmInput {
                layout: l.id.to_string(),
                rewrite_bytes: l.rewrite_bytes,
            })
            .collect();
        let clusters: BTreeSet<&str> = sums.iter().map(|s| s.cluster.as_str()).collect();
        let mut preferred = BTreeSet::new();
        for cluster in clusters {
            let rewards = arm_rewards(
                &sums,
                &inputs,
                &inputs[0].layout,
                Some(cluster),
                pass.settings.weights,
                table_bytes,
            );
            let best = rewards
                .iter()
                .enumerate()
                .filter(|(_, (own, _))| own.n >= pass.settings.min_samples)
                .max_by(|a, b| a.1.0.mean.total_cmp(&b.1.0.mean));
            if let Some((i, _)) = best {
                preferred.insert(live[i].id.clone());
            }
        }
        Ok(preferred)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cov(
        entries: &[(&str, &str, u64, f64, f64)],
    ) -> BTreeMap<String, BTreeMap<LayoutId, Coverage>> {
        let mut out: BTreeMap<String, BTreeMap<LayoutId, Coverage>> = BTreeMap::new();
        for (cluster, layout, n, share, bytes) in entries {
            out.entry(cluster.to_string()).or_default().insert(
                LayoutId::parse(layout).unwrap(),
                Coverage {
                    n: *n,
                    read_share_sum: share * *n as f64,
                    bytes: *bytes,
                },
            );
        }
        out
    }

    #[test]
    fn a_cluster_is_underserved_only_when_every_measured_layout_reads_most_of_it() {
        let c = cov(&[
            // served by the sorted layout
            ("dates", "initial", 10, 1.0, 900.0),
            ("dates", "00000000000000aa", 10, 0.1, 90.0),
            // no layout prunes it; scans the most
            ("users", "initial", 10, 1.0, 2000.0),
            ("users", "00000000000000aa", 10, 0.9, 1800.0),
            // underserved but smaller
            ("amounts", "initial", 10, 0.8, 500.0),
            // too few samples to judge
            ("rare", "initial", 2, 1.0, 5000.0),
        ]);
        let u = underserved(&c, 5);
        let names: Vec<&str> = u.iter().map(|(c, _, _)| c.as_str()).collect();
        assert_eq!(names, vec!["users", "amounts"]);
        assert!((u[0].1 - 0.9).abs() < 1e-12);
    }
}
