//! `whatif`: the what-if model's prediction for given queries, on the table's layout as it
//! is and on a target spec (typed, or a stored proposal), without rewriting anything.
//!
//! It is how a prediction is checked on queries the model never chose a layout from: the
//! benchmark predicts its held-out test set before the migration and measures it after, and a
//! user can price a query mix of their own before they enqueue a rewrite. Steps: read the
//! active layout's statistics and sample, plan each statement for what it asks of the table,
//! then price all of them once on each layout (`whatif::estimate`), per query.

use crate::migrate::SpecSource;
use crate::query::JoinKeyBudget;
use crate::workload_file::{checked_statements, read_user_file};
use crate::{DbError, Workspace};
use arrow::array::Array;
use dbopt_core::{LayoutId, LayoutSpec, TableName};
use dbopt_engine::plan_summary::summarize_sql;
use dbopt_propose::whatif::{Estimate, Workload, estimate};
use dbopt_propose::{Geometry, WhatIfQuery};
use serde::Serialize;
use std::path::Path;

/// One statement's predicted bytes on the current layout and on the target.
#[derive(Debug, Clone, Serialize)]
pub struct QueryPrediction {
    /// 1-based line of the statement in its file.
    pub line: usize,
    /// The statement.
    pub sql: String,
    /// Predicted bytes scanned on the layout as it is.
    pub current_bytes: f64,
    /// Predicted bytes scanned on the target spec.
    pub target_bytes: f64,
    /// The filters its joins carry into the table's scan, priced with it.
    pub join_filters: Vec<JoinFilterPriced>,
}

/// A join-carried filter the model priced: the build side's keys on one column.
#[derive(Debug, Clone, Serialize)]
pub struct JoinFilterPriced {
    /// The table's column the keys filter.
    pub column: String,
    /// Rows of the build side (its non-null keys).
    pub build_rows: u64,
}

/// The workload's predicted totals on one layout.
#[derive(Debug, Clone, Serialize)]
pub struct LayoutPrediction {
    /// The spec priced.
    pub spec: LayoutSpec,
    /// Its short description.
    pub description: String,
    /// The model's figures (bytes, files, row groups, pages, cost, size).
    pub estimate: Estimate,
}

/// What `whatif` predicts.
#[derive(Debug, Clone, Serialize)]
pub struct WhatIf {
    /// The table.
    pub table: String,
    /// Its active layout (the sample the model laid out).
    pub layout: LayoutId,
    /// Rows in the sample.
    pub sample_rows: u64,
    /// The layout as it is.
    pub current: LayoutPrediction,
    /// The target spec, rewritten from the active layout's rows.
    pub target: LayoutPrediction,
    /// Per statement, in file order.
    pub queries: Vec<QueryPrediction>,
    /// Statements that do not scan the table (not priced).
    pub skipped: Vec<usize>,
}

impl Workspace {
    /// Predicts the statements of `file` (a `.sql` file) on `table` as it is and on `target`.
    #[tracing::instrument(name = "whatif", skip_all, fields(table = %table))]
    pub async fn whatif(
        &self,
        table: &TableName,
        target: &SpecSource,
        file: &Path,
    ) -> Result<WhatIf, DbError> {
        let layout = self.require_table(table)?.active_layout;
        let (_, target_spec) = self.resolve_spec(table, target)?;
        let manifest = self.layout_manifest(table, &layout)?;
        let (stats, sample) = self.layout_stats_and_sample(table, &layout)?;
        let (lines, queries, skipped) = self.priced_statements(table, file).await?;
        let workload = Workload::new(&sample, &queries).with_prices(self.model_prices());
        let current_geometry = Geometry::as_written(&stats, &manifest.spec);
        let target_geometry = Geometry::of_spec(&target_spec);
        let now = estimate(
            &sample,
            &stats,
            &manifest.spec,
            true,
            current_geometry,
            &workload,
        )?;
        let then = estimate(
            &sample,
            &stats,
            &target_spec,
            false,
            target_geometry,
            &workload,
        )?;
        let per_query = lines
            .into_iter()
            .zip(&queries)
            .map(|((line, sql), q)| QueryPrediction {
                line,
                sql,
                current_bytes: now.cluster_bytes.get(&q.cluster_id).copied().unwrap_or(0.0),
                target_bytes: then
                    .cluster_bytes
                    .get(&q.cluster_id)
                    .copied()
                    .unwrap_or(0.0),
                join_filters: q
                    .join_keys
                    .iter()
                    .map(|j| JoinFilterPriced {
                        column: j.column.clone(),
                        build_rows: (j.keys.len() - j.keys.null_count()) as u64,
                    })
                    .collect(),
            })
            .collect();
        Ok(WhatIf {
            table: table.to_string(),
            layout,
            sample_rows: sample.rows() as u64,
            current: prediction(manifest.spec.clone(), now),
            target: prediction(target_spec, then),
            queries: per_query,
            skipped,
        })
    }

    /// Plans each statement of `file` for what it asks of `table`; each becomes a query of
    /// its own (its index as the cluster id, so the estimate's per-cluster bytes are per
    /// query). A statement that does not parse or plan refuses the file, naming the line.
    async fn priced_statements(
        &self,
        table: &TableName,
        file: &Path,
    ) -> Result<(Vec<(usize, String)>, Vec<WhatIfQuery>, Vec<usize>), DbError> {
        let text = read_user_file(file, "workload file")?;
        let session = self.query_session(table, None).await?;
        let mut lines = Vec::new();
        let mut queries = Vec::new();
        let mut skipped = Vec::new();
        let mut budget = JoinKeyBudget::new(self.config().join_keys_budget());
        for (line, sql, check) in checked_statements(file, &text)? {
            let bad = |e: String| DbError::BadFile(format!("{}:{line}: {e}", file.display()));
            check.map_err(|e| bad(e.to_string()))?;
            let summary = summarize_sql(session.context(), &sql)
                .await
                .map_err(|e| bad(e.to_string()))?;
            let Some(usage) = summary.table(table.as_str()).cloned() else {
                skipped.push(line);
                continue;
            };
            let join_keys = if usage.join_keys.is_empty() {
                Vec::new()
            } else {
                budget.keys(&session, &sql).await
            };
            queries.push(WhatIfQuery {
                cluster_id: queries.len().to_string(),
                usage,
                weight: 1.0,
                join_keys,
            });
            lines.push((line, sql));
        }
        budget.finish(table);
        if queries.is_empty() {
            return Err(DbError::BadFile(format!(
                "{}: no statement scans table '{table}'",
                file.display()
            )));
        }
        Ok((lines, queries, skipped))
    }
}

fn prediction(spec: LayoutSpec, estimate: Estimate) -> LayoutPrediction {
    LayoutPrediction {
        description: spec.describe(),
        spec,
        estimate,
    }
}
