//! Canary: before a candidate layout may replace the active one, the most frequent logged
//! query shapes (each with the literal values it was last logged with) run on both, unlogged.
//! Every result must be the same rows (order-insensitive digest; when digests differ, floats
//! are compared within `FLOAT_RELATIVE_TOLERANCE`), and bytes must fall by
//! `min_canary_reduction`. The verdict and its figures are stored, and the measured figures
//! go into the `measured_*` columns of the proposal that predicted the layout.

use crate::{DbError, Workspace};
use dbopt_catalog::{NewCanary, Verdict};
use dbopt_core::{FLOAT_RELATIVE_TOLERANCE, LayoutId, TableName};
use dbopt_engine::QueryOutcome;
use dbopt_engine::compare::results_differ;
use dbopt_evaluate::{CanaryQuery, CanarySummary, canary_verdict, summarize};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// What a canary found.
#[derive(Debug, Clone, Serialize)]
pub struct CanaryReport {
    /// The stored run's id.
    pub id: i64,
    /// The table.
    pub table: String,
    /// The candidate.
    pub layout: LayoutId,
    /// The layout it was compared against (the active one).
    pub baseline: LayoutId,
    /// Per replayed shape.
    pub queries: Vec<CanaryQuery>,
    /// Totals.
    pub summary: CanarySummary,
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub reason: String,
    /// The proposal whose measured figures were filled in.
    pub proposal_id: Option<i64>,
    /// Shapes whose baseline run failed (not counted: the query itself is broken).
    pub skipped: Vec<String>,
    /// For an Iceberg table: the branch holding the candidate's snapshot (dropped on reject,
    /// fast-forwarded to by promote).
    pub lake_branch: Option<String>,
}

/// A logged query shape to replay: its fingerprint, cluster, frequency and latest SQL.
pub(crate) struct Shape {
    pub(crate) fingerprint: String,
    pub(crate) cluster: Option<String>,
    pub(crate) count: u64,
    pub(crate) sql: String,
}

impl Workspace {
    /// Replays the `shapes` most frequent logged query shapes of `table` on its active layout
    /// and on `layout`, stores the verdict and returns it.
    #[tracing::instrument(skip_all, fields(table = %table, layout = %layout, shapes = shapes))]
    pub async fn canary(
        &self,
        table: &TableName,
        layout: &LayoutId,
        shapes: u64,
        min_reduction: f64,
    ) -> Result<CanaryReport, DbError> {
        let baseline = self.require_table(table)?.active_layout;
        if &baseline == layout {
            return Err(DbError::CanaryOnActive {
                table: table.to_string(),
                layout: layout.to_string(),
            });
        }
        if self.catalog().get_layout(table, layout)?.is_none() {
            return Err(DbError::UnknownLayout {
                table: table.to_string(),
                layout: layout.to_string(),
            });
        }
        // An Iceberg table's candidate is first a snapshot on its own branch (Delta has no
        // branches: the canary reads the staged files directly).
        let lake_branch = self.stage_lake_branch(table, &baseline, layout)?;
        let predicted = crate::route::predicted_improvements(self, table, layout)?;
        let replay = self.hottest_shapes(table, shapes, &predicted)?;
        let base_session = self.query_session(table, Some(&baseline)).await?;
        let cand_session = self.query_session(table, Some(layout)).await?;
        let mut queries = Vec::new();
        let mut skipped = Vec::new();
        for shape in replay {
            let base = match base_session.execute_unlogged(&shape.sql).await {
                Ok(o) => o,
                Err(e) => {
                    skipped.push(format!("{}: {e}", shape.fingerprint));
                    continue;
                }
            };
            let cand = cand_session.execute_unlogged(&shape.sql).await;
            queries.push(compare_shape(table, shape, &base, cand)?);
        }
        let summary = summarize(&queries);
        let (verdict, reason) = canary_verdict(&summary, min_reduction);
        let id = self.catalog().record_canary(&NewCanary {
            table: table.clone(),
            layout_id: layout.clone(),
            baseline_layout: baseline.clone(),
            summary,
            verdict,
            reason: reason.clone(),
            detail_json: serde_json::to_string(&queries).unwrap_or_default(),
        })?;
        let proposal_id = self.store_measured(table, layout, &queries, &predicted)?;
        if verdict == Verdict::Reject && lake_branch.is_some() {
            self.drop_lake_branch(table, layout)?;
        }
        Ok(CanaryReport {
            id,
            table: table.to_string(),
            layout: layout.clone(),
            baseline,
            queries,
            summary,
            verdict,
            reason,
            proposal_id,
            skipped,
            lake_branch,
        })
    }

    /// The `n` most frequent logged shapes of `table` (by fingerprint), each with its most
    /// recently logged SQL, that did not fail; plus the most frequent shape of each cluster the
    /// layout's proposal made a prediction for that the first `n` miss (so a layout built for
    /// one cluster is measured on it).
    pub(crate) fn hottest_shapes(
        &self,
        table: &TableName,
        n: u64,
        predicted: &BTreeMap<String, f64>,
    ) -> Result<Vec<Shape>, DbError> {
        let mut by_fp: HashMap<String, Shape> = HashMap::new();
        for q in self.catalog().queries_for_table(table, None, None)? {
            if q.entry.error.is_some() || q.entry.fingerprint.is_empty() {
                continue;
            }
            let shape = by_fp
                .entry(q.entry.fingerprint.clone())
                .or_insert_with(|| Shape {
                    fingerprint: q.entry.fingerprint.clone(),
                    cluster: None,
                    count: 0,
                    sql: String::new(),
                });
            shape.count += 1;
            // Oldest first: the last one seen is the most recent.
            shape.sql = q.entry.sql;
            if q.entry.cluster_id.is_some() {
                shape.cluster = q.entry.cluster_id;
            }
        }
        let mut shapes: Vec<Shape> = by_fp.into_values().collect();
        shapes.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(a.fingerprint.cmp(&b.fingerprint))
        });
        let n = usize::try_from(n).unwrap_or(usize::MAX).min(shapes.len());
        let rest = shapes.split_off(n);
        for shape in rest {
            let Some(cluster) = &shape.cluster else {
                continue;
            };
            let covered = shapes.iter().any(|s| s.cluster.as_ref() == Some(cluster));
            if predicted.contains_key(cluster) && !covered {
                shapes.push(shape);
            }
        }
        Ok(shapes)
    }

    /// Writes the canary's figures beside the prediction of the proposal that named `layout`:
    /// over the replayed shapes of the clusters the prediction covered, scaled to the number of
    /// queries it covered.
    fn store_measured(
        &self,
        table: &TableName,
        layout: &LayoutId,
        queries: &[CanaryQuery],
        predicted: &BTreeMap<String, f64>,
    ) -> Result<Option<i64>, DbError> {
        let Some(p) = self.catalog().proposal_for_target(table, layout)? else {
            return Ok(None);
        };
        let covered: Vec<CanaryQuery> = queries
            .iter()
            .filter(|q| {
                predicted.is_empty()
                    || q.cluster_id
                        .as_ref()
                        .is_some_and(|c| predicted.contains_key(c))
            })
            .cloned()
            .collect();
        let weight: u64 = covered.iter().map(|q| q.weight.max(1)).sum();
        if weight == 0 {
            return Ok(None);
        }
        let measured = summarize(&covered);
        let per_query = measured.candidate_bytes / weight as f64;
        self.catalog().set_proposal_measured(
            p.id,
            per_query * p.proposal.queries as f64,
            measured.reduction,
            Some(measured.candidate_latency_ms),
        )?;
        Ok(Some(p.id))
    }
}

/// The figures of one shape on both layouts and whether their results agree.
fn compare_shape(
    table: &TableName,
    shape: Shape,
    base: &QueryOutcome,
    cand: Result<QueryOutcome, DbError>,
) -> Result<CanaryQuery, DbError> {
    let bytes = |o: &QueryOutcome| -> f64 {
        o.scans
            .iter()
            .find(|s| s.table == table.as_str())
            .map_or(0, |s| s.metrics.bytes_scanned) as f64
    };
    let ms = |o: &QueryOutcome| o.latency.as_secs_f64() * 1000.0;
    let mut q = CanaryQuery {
        fingerprint: shape.fingerprint,
        cluster_id: shape.cluster,
        weight: shape.count,
        sql: shape.sql,
        matched: false,
        mismatch: None,
        baseline_bytes: bytes(base),
        candidate_bytes: 0.0,
        baseline_latency_ms: ms(base),
        candidate_latency_ms: 0.0,
    };
    match cand {
        Err(e) => q.mismatch = Some(format!("the candidate failed: {e}")),
        Ok(cand) => {
            q.candidate_bytes = bytes(&cand);
            q.candidate_latency_ms = ms(&cand);
            q.mismatch = if cand.digest == base.digest {
                None
            } else {
                results_differ(&base.batches, &cand.batches, FLOAT_RELATIVE_TOLERANCE)?
            };
            q.matched = q.mismatch.is_none();
        }
    }
    Ok(q)
}
