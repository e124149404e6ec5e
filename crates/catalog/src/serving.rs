//! Layouts in service: the active layout's compare-and-swap with its history (promote,
//! rollback, publish, activate), canary verdicts, rolling-window evaluations and autopilot's
//! decisions.

use crate::error::SqlContext;
use crate::tables::{find_layout_in, require_table_in};
use crate::{
    Catalog, CatalogError, LayoutStatus, collect_rows, get, get_layout_id, get_table_name, get_u64,
    sql_int,
};
use dbopt_core::{LayoutId, TableName};
use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};

/// Why the active layout of a table changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivationKind {
    /// Chosen by hand (`dbopt activate-layout`).
    Activate,
    /// Made active by the migration that published it.
    Publish,
    /// A candidate promoted on proof.
    Promote,
    /// Back to an earlier layout.
    Rollback,
}

stored_as_text!(ActivationKind, "action" {
    Activate => "activate",
    Publish => "publish",
    Promote => "promote",
    Rollback => "rollback",
});

/// A change of the active layout to make: from `expected` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSwap<'a> {
    /// The table.
    pub table: &'a TableName,
    /// The layout the caller believes is active; the swap fails if another is.
    pub expected: &'a LayoutId,
    /// The layout to make active (must be ready).
    pub to: &'a LayoutId,
    /// Why.
    pub kind: ActivationKind,
    /// Who: `cli`, `autopilot`, `worker`.
    pub actor: &'a str,
    /// In words.
    pub reason: &'a str,
}

/// One recorded change of a table's active layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    /// Row id (increasing).
    pub id: i64,
    /// The table.
    pub table: TableName,
    /// When, ms since the Unix epoch.
    pub at_ms: i64,
    /// The layout that was active.
    pub from_layout: LayoutId,
    /// The layout that became active.
    pub to_layout: LayoutId,
    /// Why.
    pub kind: ActivationKind,
    /// Who.
    pub actor: String,
    /// In words.
    pub reason: String,
}

/// A canary verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Identical results and the required reduction: promote.
    Promote,
    /// Identical results without enough reduction: keep routing, do not promote.
    Hold,
    /// A result differed (or the candidate could not answer): never promote.
    Reject,
}

stored_as_text!(Verdict, "verdict" {
    Promote => "promote",
    Hold => "hold",
    Reject => "reject",
});

/// A canary replay's totals, each shape weighted by how often it was logged.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CanarySummary {
    /// Shapes replayed.
    pub queries: u64,
    /// Shapes whose results differed.
    pub mismatches: u64,
    /// Weighted bytes of the table scanned on the baseline (one run of the logged workload).
    pub baseline_bytes: f64,
    /// Weighted bytes scanned on the candidate.
    pub candidate_bytes: f64,
    /// 1 - candidate / baseline bytes.
    pub reduction: f64,
    /// Weighted mean latency on the baseline.
    pub baseline_latency_ms: f64,
    /// Weighted mean latency on the candidate.
    pub candidate_latency_ms: f64,
    /// candidate / baseline latency - 1 (negative is faster).
    pub latency_change: f64,
}

impl CanarySummary {
    /// `candidate / baseline - 1` (0 when the baseline is 0): negative is less, or faster.
    pub fn change(baseline: f64, candidate: f64) -> f64 {
        if baseline > 0.0 {
            candidate / baseline - 1.0
        } else {
            0.0
        }
    }
}

/// A canary run to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewCanary {
    /// The table.
    pub table: TableName,
    /// The candidate layout.
    pub layout_id: LayoutId,
    /// The layout it was compared against.
    pub baseline_layout: LayoutId,
    /// What the replay measured.
    #[serde(flatten)]
    pub summary: CanarySummary,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in one line.
    pub reason: String,
    /// Per-query figures as JSON.
    pub detail_json: String,
}

/// A stored canary run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryRecord {
    /// Row id.
    pub id: i64,
    /// When it ran.
    pub run_at_ms: i64,
    /// What it measured and decided.
    #[serde(flatten)]
    pub canary: NewCanary,
}

/// One rolling-window evaluation of a layout (cluster `*` = every cluster of the window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayoutEval {
    /// The table.
    pub table: TableName,
    /// The layout evaluated.
    pub layout_id: LayoutId,
    /// The cluster, or `*`.
    pub cluster_id: String,
    /// Window start, ms since the Unix epoch.
    pub window_start_ms: i64,
    /// Window end.
    pub window_end_ms: i64,
    /// The layout improvements are measured against.
    pub baseline_layout: LayoutId,
    /// `bytes` or `latency`.
    pub objective: String,
    /// Queries in the window on this layout (and cluster).
    pub queries: u64,
    /// Mean latency.
    pub avg_latency_ms: f64,
    /// Median latency.
    pub p50_latency_ms: f64,
    /// 95th percentile latency.
    pub p95_latency_ms: f64,
    /// 99th percentile latency.
    pub p99_latency_ms: f64,
    /// Mean bytes scanned of the table.
    pub avg_bytes_scanned: f64,
    /// Mean rows returned.
    pub avg_rows_returned: f64,
    /// Relative improvement of the objective against the baseline (None without baseline data).
    pub improvement: Option<f64>,
    /// The reward (`ALPHA * improvement - BETA * amortized rewrite cost`).
    pub reward: Option<f64>,
    /// Whether the layout regressed against its canary figures in this window.
    pub regressed: bool,
}

/// A stored evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Row id.
    pub id: i64,
    /// When it was computed.
    pub evaluated_at_ms: i64,
    /// The figures.
    #[serde(flatten)]
    pub eval: LayoutEval,
}

/// One autopilot decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Row id.
    pub id: i64,
    /// The table.
    pub table: TableName,
    /// When.
    pub at_ms: i64,
    /// The pass it belongs to.
    pub pass_id: String,
    /// The step: `propose`, `migrate`, `canary`, `promote`, `evaluate`, `rollback`, `retire`.
    pub step: String,
    /// What was decided, e.g. `enqueued`, `skipped`, `promoted`.
    pub decision: String,
    /// Why, in one line.
    pub reason: String,
    /// Figures behind it, as JSON.
    pub detail_json: String,
}

fn activation_from_row(row: &Row<'_>) -> Result<Activation, CatalogError> {
    let action: String = get(row, "action")?;
    Ok(Activation {
        id: get(row, "id")?,
        table: get_table_name(row, "table_name")?,
        at_ms: get(row, "at_ms")?,
        from_layout: get_layout_id(row, "from_layout")?,
        to_layout: get_layout_id(row, "to_layout")?,
        kind: ActivationKind::parse(&action)
            .ok_or_else(|| CatalogError::Corrupt(format!("activation action '{action}'")))?,
        actor: get(row, "actor")?,
        reason: get(row, "reason")?,
    })
}

fn canary_from_row(row: &Row<'_>) -> Result<CanaryRecord, CatalogError> {
    let verdict: String = get(row, "verdict")?;
    let baseline_latency_ms: f64 = get(row, "baseline_latency_ms")?;
    let candidate_latency_ms: f64 = get(row, "candidate_latency_ms")?;
    Ok(CanaryRecord {
        id: get(row, "id")?,
        run_at_ms: get(row, "run_at_ms")?,
        canary: NewCanary {
            table: get_table_name(row, "table_name")?,
            layout_id: get_layout_id(row, "layout_id")?,
            baseline_layout: get_layout_id(row, "baseline_layout")?,
            summary: CanarySummary {
                queries: get_u64(row, "queries")?,
                mismatches: get_u64(row, "mismatches")?,
                baseline_bytes: get(row, "baseline_bytes")?,
                candidate_bytes: get(row, "candidate_bytes")?,
                reduction: get(row, "reduction")?,
                baseline_latency_ms,
                candidate_latency_ms,
                latency_change: CanarySummary::change(baseline_latency_ms, candidate_latency_ms),
            },
            verdict: Verdict::parse(&verdict)
                .ok_or_else(|| CatalogError::Corrupt(format!("canary verdict '{verdict}'")))?,
            reason: get(row, "reason")?,
            detail_json: get(row, "detail_json")?,
        },
    })
}

fn eval_from_row(row: &Row<'_>) -> Result<EvalRecord, CatalogError> {
    Ok(EvalRecord {
        id: get(row, "id")?,
        evaluated_at_ms: get(row, "evaluated_at_ms")?,
        eval: LayoutEval {
            table: get_table_name(row, "table_name")?,
            layout_id: get_layout_id(row, "layout_id")?,
            cluster_id: get(row, "cluster_id")?,
            window_start_ms: get(row, "window_start_ms")?,
            window_end_ms: get(row, "window_end_ms")?,
            baseline_layout: get_layout_id(row, "baseline_layout")?,
            objective: get(row, "objective")?,
            queries: get_u64(row, "queries")?,
            avg_latency_ms: get(row, "avg_latency_ms")?,
            p50_latency_ms: get(row, "p50_latency_ms")?,
            p95_latency_ms: get(row, "p95_latency_ms")?,
            p99_latency_ms: get(row, "p99_latency_ms")?,
            avg_bytes_scanned: get(row, "avg_bytes_scanned")?,
            avg_rows_returned: get(row, "avg_rows_returned")?,
            improvement: get(row, "improvement")?,
            reward: get(row, "reward")?,
            regressed: get::<i64>(row, "regressed")? != 0,
        },
    })
}

fn decision_from_row(row: &Row<'_>) -> Result<DecisionRecord, CatalogError> {
    Ok(DecisionRecord {
        id: get(row, "id")?,
        table: get_table_name(row, "table_name")?,
        at_ms: get(row, "at_ms")?,
        pass_id: get(row, "pass_id")?,
        step: get(row, "step")?,
        decision: get(row, "decision")?,
        reason: get(row, "reason")?,
        detail_json: get(row, "detail_json")?,
    })
}

/// Swaps the active layout inside `conn`'s transaction: checks the table, that `expected` is
/// still active (`ActiveChanged` otherwise) and that the new layout is ready, then records it.
pub(crate) fn swap_active_in(
    conn: &Connection,
    swap: &ActiveSwap<'_>,
    now_ms: i64,
) -> Result<(), CatalogError> {
    let table = require_table_in(conn, swap.table)?;
    if &table.active_layout != swap.expected {
        return Err(CatalogError::ActiveChanged {
            table: swap.table.to_string(),
            expected: swap.expected.to_string(),
            found: table.active_layout.to_string(),
        });
    }
    let layout =
        find_layout_in(conn, swap.table, swap.to)?.ok_or_else(|| CatalogError::UnknownLayout {
            table: swap.table.to_string(),
            layout: swap.to.to_string(),
        })?;
    if layout.status != LayoutStatus::Ready {
        return Err(CatalogError::Conflict(format!(
            "layout '{}' of table '{}' is {}, only a ready layout can be made active",
            swap.to, swap.table, layout.status
        )));
    }
    if swap.expected == swap.to {
        return Ok(());
    }
    conn.execute(
        "UPDATE tables SET active_layout = ?3 WHERE name = ?1 AND active_layout = ?2",
        params![
            swap.table.as_str(),
            swap.expected.as_str(),
            swap.to.as_str()
        ],
    )
    .ctx("swapping the active layout")?;
    conn.execute(
        "INSERT INTO activations (table_name, at_ms, from_layout, to_layout, action, actor, \
         reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            swap.table.as_str(),
            now_ms,
            swap.expected.as_str(),
            swap.to.as_str(),
            swap.kind.as_str(),
            swap.actor,
            swap.reason,
        ],
    )
    .ctx("recording an activation")?;
    Ok(())
}

impl Catalog {
    /// Makes `swap.to` active if and only if `swap.expected` still is, in one transaction, and
    /// records the change; a concurrent change fails with `ActiveChanged` and changes nothing.
    pub fn swap_active_layout(&self, swap: &ActiveSwap<'_>) -> Result<(), CatalogError> {
        let now = self.now_ms();
        self.write("swapping the active layout", |tx| {
            swap_active_in(tx, swap, now)
        })
    }

    /// Every recorded change of `table`'s active layout, oldest first.
    pub fn activations(&self, table: &TableName) -> Result<Vec<Activation>, CatalogError> {
        self.read("reading activations", |tx| {
            collect_rows(
                tx,
                "reading activations",
                "SELECT id, table_name, at_ms, from_layout, to_layout, action, actor, reason \
                 FROM activations WHERE table_name = ?1 ORDER BY id",
                [table.as_str()],
                activation_from_row,
            )
        })
    }

    /// Stores a canary run; returns its id.
    pub fn record_canary(&self, canary: &NewCanary) -> Result<i64, CatalogError> {
        let now = self.now_ms();
        self.write("recording a canary", |tx| {
            tx.execute(
                "INSERT INTO canaries (table_name, layout_id, baseline_layout, run_at_ms, \
                 queries, mismatches, baseline_bytes, candidate_bytes, reduction, \
                 baseline_latency_ms, candidate_latency_ms, verdict, reason, detail_json) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    canary.table.as_str(),
                    canary.layout_id.as_str(),
                    canary.baseline_layout.as_str(),
                    now,
                    sql_int(canary.summary.queries),
                    sql_int(canary.summary.mismatches),
                    canary.summary.baseline_bytes,
                    canary.summary.candidate_bytes,
                    canary.summary.reduction,
                    canary.summary.baseline_latency_ms,
                    canary.summary.candidate_latency_ms,
                    canary.verdict.as_str(),
                    canary.reason,
                    canary.detail_json,
                ],
            )
            .ctx("recording a canary")?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Canary runs of `table` (of one layout when given), oldest first.
    pub fn canaries(
        &self,
        table: &TableName,
        layout: Option<&LayoutId>,
    ) -> Result<Vec<CanaryRecord>, CatalogError> {
        self.read("reading canaries", |tx| {
            collect_rows(
                tx,
                "reading canaries",
                "SELECT * FROM canaries WHERE table_name = ?1 \
                 AND (?2 IS NULL OR layout_id = ?2) ORDER BY id",
                params![table.as_str(), layout.map(LayoutId::as_str)],
                canary_from_row,
            )
        })
    }

    /// The newest canary run of one layout.
    pub fn latest_canary(
        &self,
        table: &TableName,
        layout: &LayoutId,
    ) -> Result<Option<CanaryRecord>, CatalogError> {
        Ok(self.canaries(table, Some(layout))?.pop())
    }

    /// Stores the evaluations of one window in one transaction.
    pub fn record_evals(&self, evals: &[LayoutEval]) -> Result<(), CatalogError> {
        let now = self.now_ms();
        self.write("recording evaluations", |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO layout_evals (table_name, layout_id, cluster_id, \
                     evaluated_at_ms, window_start_ms, window_end_ms, baseline_layout, objective, \
                     queries, avg_latency_ms, p50_latency_ms, p95_latency_ms, p99_latency_ms, \
                     avg_bytes_scanned, avg_rows_returned, improvement, reward, regressed) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
                     ?16, ?17, ?18)",
                )
                .ctx("recording an evaluation")?;
            for e in evals {
                stmt.execute(params![
                    e.table.as_str(),
                    e.layout_id.as_str(),
                    e.cluster_id,
                    now,
                    e.window_start_ms,
                    e.window_end_ms,
                    e.baseline_layout.as_str(),
                    e.objective,
                    sql_int(e.queries),
                    e.avg_latency_ms,
                    e.p50_latency_ms,
                    e.p95_latency_ms,
                    e.p99_latency_ms,
                    e.avg_bytes_scanned,
                    e.avg_rows_returned,
                    e.improvement,
                    e.reward,
                    i64::from(e.regressed),
                ])
                .ctx("recording an evaluation")?;
            }
            Ok(())
        })
    }

    /// The newest `limit` evaluations of `table` (of one layout and cluster when given),
    /// oldest first.
    pub fn evals(
        &self,
        table: &TableName,
        layout: Option<&LayoutId>,
        cluster: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EvalRecord>, CatalogError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("reading evaluations", |tx| {
            let mut rows = collect_rows(
                tx,
                "reading evaluations",
                "SELECT * FROM layout_evals WHERE table_name = ?1 \
                 AND (?2 IS NULL OR layout_id = ?2) AND (?3 IS NULL OR cluster_id = ?3) \
                 ORDER BY id DESC LIMIT ?4",
                params![table.as_str(), layout.map(LayoutId::as_str), cluster, limit],
                eval_from_row,
            )?;
            rows.reverse();
            Ok(rows)
        })
    }

    /// Records one autopilot decision; returns its id.
    pub fn record_decision(
        &self,
        table: &TableName,
        pass_id: &str,
        step: &str,
        decision: &str,
        reason: &str,
        detail_json: &str,
    ) -> Result<i64, CatalogError> {
        let now = self.now_ms();
        self.write("recording a decision", |tx| {
            tx.execute(
                "INSERT INTO decisions (table_name, at_ms, pass_id, step, decision, reason, \
                 detail_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    table.as_str(),
                    now,
                    pass_id,
                    step,
                    decision,
                    reason,
                    detail_json
                ],
            )
            .ctx("recording a decision")?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// The newest `limit` decisions of `table`, oldest first.
    pub fn decisions(
        &self,
        table: &TableName,
        limit: usize,
    ) -> Result<Vec<DecisionRecord>, CatalogError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("reading decisions", |tx| {
            let mut rows = collect_rows(
                tx,
                "reading decisions",
                "SELECT * FROM decisions WHERE table_name = ?1 ORDER BY id DESC LIMIT ?2",
                params![table.as_str(), limit],
                decision_from_row,
            )?;
            rows.reverse();
            Ok(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_texts_round_trip() {
        for k in [
            ActivationKind::Activate,
            ActivationKind::Publish,
            ActivationKind::Promote,
            ActivationKind::Rollback,
        ] {
            assert_eq!(ActivationKind::parse(k.as_str()), Some(k));
        }
        for v in [Verdict::Promote, Verdict::Hold, Verdict::Reject] {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
        }
        assert_eq!(Verdict::parse("maybe"), None);
    }
}
