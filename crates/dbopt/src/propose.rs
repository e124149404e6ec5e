//! Layout proposals: analyze the workload, generate candidates, price each with the what-if
//! model over a sample of the active layout, rank them and store every one in the catalog with
//! its spec, content-addressed target layout id and predicted figures.

use crate::query::JoinKeyBudget;
use crate::{DbError, Workspace};
use dbopt_analyze::{cluster_id, shape};
use dbopt_catalog::NewProposal;
use dbopt_core::{LayoutId, TableName};
use dbopt_propose::whatif::{Workload, estimate};
use dbopt_propose::{Geometry, Prices, Proposal, ProposeInput, Thresholds, WhatIfQuery, propose};
use serde::Serialize;
use std::collections::BTreeMap;

/// The model's prediction for the current layout beside what the logged queries measured on it.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// Queries measured on the current layout.
    pub queries: u64,
    /// Bytes they measured (sum).
    pub measured_bytes: u64,
    /// Bytes the model predicts for them on the current layout.
    pub predicted_bytes: f64,
    /// predicted / measured.
    pub ratio: f64,
}

/// A stored proposal with its catalog id.
#[derive(Debug, Clone, Serialize)]
pub struct StoredProposal {
    /// The `proposals` row id.
    pub id: i64,
    /// The proposal.
    #[serde(flatten)]
    pub proposal: Proposal,
}

/// What one propose run produced.
#[derive(Debug, Clone, Serialize)]
pub struct ProposeOutcome {
    /// The run id (all its proposals share it).
    pub run_id: String,
    /// The table.
    pub table: String,
    /// Queries analyzed.
    pub queries_analyzed: u64,
    /// Queries skipped.
    pub queries_skipped: u64,
    /// Rows in the sample the model laid out.
    pub sample_rows: u64,
    /// Prediction against measurement on the current layout, when queries ran on it.
    pub calibration: Option<Calibration>,
    /// Ranked proposals, best first.
    pub proposals: Vec<StoredProposal>,
}

/// Keeps only the observations of `cluster` and profiles them alone.
fn restrict_to_cluster(
    analysis: &mut crate::analyze::Analysis,
    cluster: &str,
) -> Result<(), DbError> {
    let keep: Vec<bool> = analysis
        .observations
        .iter()
        .map(|o| cluster_id(&shape(&o.usage)) == cluster)
        .collect();
    let mut flags = keep.iter();
    analysis
        .observations
        .retain(|_| *flags.next().unwrap_or(&false));
    let mut flags = keep.iter();
    analysis.ran_on.retain(|_| *flags.next().unwrap_or(&false));
    if analysis.observations.is_empty() {
        return Err(DbError::EmptyCluster {
            table: analysis.table.to_string(),
            cluster: cluster.to_string(),
        });
    }
    analysis.profile = dbopt_analyze::profile(
        &analysis.table,
        &analysis.observations,
        0,
        Some(&analysis.stats),
    );
    Ok(())
}

impl Workspace {
    /// The what-if model's prices as configured (`dbopt calibrate --write` fits them).
    pub fn model_prices(&self) -> Prices {
        let [file, row_group, page] = self.config().price_bytes();
        Prices {
            file,
            row_group,
            page,
        }
    }

    /// Gives each distinct query that joins the keys its joins carry into `table`'s scan (the
    /// same keys for its measured twin), planned with `table` on `layout`.
    async fn attach_join_keys<'s>(
        &self,
        table: &TableName,
        layout: &LayoutId,
        by_sql: &mut BTreeMap<&'s str, WhatIfQuery>,
        measured: &mut BTreeMap<&'s str, (WhatIfQuery, u64)>,
    ) -> Result<(), DbError> {
        if by_sql.values().all(|q| q.usage.join_keys.is_empty()) {
            return Ok(());
        }
        let session = self.query_session(table, Some(layout)).await?;
        let mut budget = JoinKeyBudget::new(self.config().join_keys_budget());
        for (sql, q) in by_sql.iter_mut() {
            if q.usage.join_keys.is_empty() {
                continue;
            }
            q.join_keys = budget.keys(&session, sql).await;
            if let Some(m) = measured.get_mut(sql) {
                m.0.join_keys = q.join_keys.clone();
            }
        }
        budget.finish(table);
        Ok(())
    }

    /// Proposes layouts for `table` from its logged queries at or after `since_ms` (only those
    /// of `cluster` when given: a layout for one query shape that the live layouts serve badly).
    #[tracing::instrument(name = "propose", skip_all, fields(table = %table, cluster = cluster))]
    pub async fn propose_layouts(
        &self,
        table: &TableName,
        since_ms: Option<i64>,
        cluster: Option<&str>,
    ) -> Result<ProposeOutcome, DbError> {
        let (mut analysis, sample) = self.analyze_workload(table, since_ms, true).await?;
        if let Some(cluster) = cluster {
            restrict_to_cluster(&mut analysis, cluster)?;
        }
        let sample = sample.expect("analyze_workload returns a sample when asked");
        let manifest = self.layout_manifest(table, &analysis.layout)?;
        // Identical SQL is priced once, weighted by how often it ran.
        let mut by_sql: BTreeMap<&str, WhatIfQuery> = BTreeMap::new();
        let mut measured: BTreeMap<&str, (WhatIfQuery, u64)> = BTreeMap::new();
        for (o, ran) in analysis.observations.iter().zip(&analysis.ran_on) {
            let q = by_sql.entry(&o.sql).or_insert_with(|| WhatIfQuery {
                cluster_id: cluster_id(&shape(&o.usage)),
                usage: o.usage.clone(),
                weight: 0.0,
                join_keys: Vec::new(),
            });
            q.weight += 1.0;
            if ran.as_ref() == Some(&analysis.layout)
                && let Some(b) = o.bytes_scanned
            {
                let m = measured.entry(&o.sql).or_insert_with(|| {
                    let mut q = q.clone();
                    q.weight = 0.0;
                    (q, 0)
                });
                m.0.weight += 1.0;
                m.1 += b;
            }
        }
        self.attach_join_keys(table, &analysis.layout, &mut by_sql, &mut measured)
            .await?;
        let queries: Vec<WhatIfQuery> = by_sql.into_values().collect();
        let geometry = Geometry::as_written(&analysis.stats, &manifest.spec);
        let config = self.config();
        // A Delta or Iceberg table keeps its declared partitioning (a replace commit cannot
        // change it): no new hive partitions, and every candidate keeps the declared ones,
        // so autopilot never builds a layout it cannot publish.
        let lake = self.catalog().lake_source(table)?.is_some();
        let input = ProposeInput {
            current_layout: analysis.layout.clone(),
            current_spec: manifest.spec.clone(),
            current_geometry: geometry,
            stats: &analysis.stats,
            profile: &analysis.profile,
            queries: &queries,
            sample: &sample,
            thresholds: Thresholds {
                max_partitions: if lake { 0 } else { config.max_partitions() },
                min_partition_rows: config.min_partition_rows(),
                partition_min_query_share: config.partition_min_query_share(),
                sort_min_query_share: config.sort_min_query_share(),
                min_predicted_reduction: config.min_predicted_reduction(),
                max_size_growth: config.max_size_growth(),
            },
            keep_partitioning: lake,
            prices: self.model_prices(),
        };
        let proposals = propose(&input)?;
        let calibration = if measured.is_empty() {
            None
        } else {
            let (qs, bytes): (Vec<WhatIfQuery>, Vec<u64>) = measured.into_values().unzip();
            let workload = Workload::new(&sample, &qs).with_prices(self.model_prices());
            let e = estimate(
                &sample,
                &analysis.stats,
                &manifest.spec,
                true,
                geometry,
                &workload,
            )?;
            let measured_bytes: u64 = bytes.iter().sum();
            Some(Calibration {
                queries: qs.iter().map(|q| q.weight as u64).sum(),
                measured_bytes,
                predicted_bytes: e.bytes_scanned,
                ratio: e.bytes_scanned / (measured_bytes.max(1) as f64),
            })
        };
        let run_id = format!("{table}-{}", self.clock().now_ms());
        let rows: Vec<NewProposal> = proposals
            .iter()
            .map(|p| NewProposal {
                rank: p.rank as u64,
                source_layout: p.source_layout.clone(),
                target_layout: p.target_layout.clone(),
                spec: p.spec.clone(),
                description: p.description.clone(),
                is_current: p.is_current,
                recommended: p.recommended,
                queries: analysis.profile.queries_analyzed,
                current_bytes: p.current_bytes,
                predicted_bytes: p.predicted.bytes_scanned,
                predicted_reduction: p.predicted_reduction,
                predicted_files: p.predicted.files_read,
                predicted_row_groups: p.predicted.row_groups_read,
                predicted_cost: p.predicted.cost,
                rewrite_read_bytes: p.rewrite_read_bytes,
                rewrite_write_bytes: p.rewrite_write_bytes,
                payback_runs: p.payback_runs,
                reasons: p.reasons.clone(),
                detail_json: serde_json::to_string(p).unwrap_or_default(),
            })
            .collect();
        let ids = self.catalog().insert_proposals(table, &run_id, &rows)?;
        Ok(ProposeOutcome {
            run_id,
            table: table.to_string(),
            queries_analyzed: analysis.profile.queries_analyzed,
            queries_skipped: analysis.profile.queries_skipped,
            sample_rows: sample.rows() as u64,
            calibration,
            proposals: ids
                .into_iter()
                .zip(proposals)
                .map(|(id, proposal)| StoredProposal { id, proposal })
                .collect(),
        })
    }
}
