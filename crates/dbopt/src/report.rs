//! `report`: everything the catalog knows about one table, gathered into a `ReportBundle`
//! (observed, proposed, predicted, built, measured, decided) and written as a shareable
//! directory by `dbopt-report`.
//!
//! Query text holds literal values (customer data); a report shows template fingerprints and
//! includes SQL only when asked (`include_sql`).

use crate::status::decision_row;
use crate::{DbError, Workspace};
use dbopt_catalog::{Activation, CanaryRecord, ProposalRecord, QueryPointRecord};
use dbopt_core::TableName;
use dbopt_report::{
    ActivationRow, CanaryRow, Observed, ProposalRow, QueryPoint, ReportBundle, ReportOptions,
    RoutingRow, TemplateRow, WrittenReport,
};
use std::collections::BTreeMap;
use std::path::Path;

/// Templates listed under "observed".
const TOP_TEMPLATES: usize = 10;
/// Most rows of each history kept in a report.
const HISTORY_ROWS: usize = 100_000;

impl Workspace {
    /// Gathers everything a report on `table` shows.
    pub fn report_bundle(
        &self,
        table: &TableName,
        include_sql: bool,
    ) -> Result<ReportBundle, DbError> {
        let points = self.catalog().query_points(table, 0)?;
        let status = self.status_of(table, &points)?;
        Ok(ReportBundle {
            status,
            observed: self.observed(table, include_sql)?,
            proposals: self.proposal_rows(table)?,
            jobs: self.jobs(Some(table), None)?,
            history: self.history(table, HISTORY_ROWS, false)?,
            routing: routing_rows(&points),
            activations: self
                .catalog()
                .activations(table)?
                .into_iter()
                .map(activation_row)
                .collect(),
            canaries: self
                .catalog()
                .canaries(table, None)?
                .into_iter()
                .map(canary_row)
                .collect(),
            decisions: self
                .catalog()
                .decisions(table, HISTORY_ROWS)?
                .into_iter()
                .map(decision_row)
                .collect(),
            queries: points.iter().map(query_point).collect(),
        })
    }

    /// Writes the report on `table` into `dir` (see `dbopt_report::write_report`).
    pub fn write_report(
        &self,
        table: &TableName,
        dir: &Path,
        force: bool,
        include_sql: bool,
    ) -> Result<WrittenReport, DbError> {
        let bundle = self.report_bundle(table, include_sql)?;
        Ok(dbopt_report::write_report(
            dir,
            &bundle,
            &ReportOptions { force },
        )?)
    }

    fn observed(&self, table: &TableName, include_sql: bool) -> Result<Observed, DbError> {
        let totals = self.catalog().log_totals(table)?;
        let top_templates = self
            .catalog()
            .template_stats(table, TOP_TEMPLATES)?
            .into_iter()
            .map(|t| TemplateRow {
                fingerprint: t.fingerprint,
                cluster: t.cluster_id,
                queries: t.queries,
                avg_bytes_scanned: t.avg_bytes_scanned,
                avg_latency_ms: t.avg_latency_ms,
                sql: include_sql.then_some(t.sample_sql),
            })
            .collect();
        Ok(Observed {
            queries: totals.queries,
            errors: totals.errors,
            first_ms: totals.first_ms,
            last_ms: totals.last_ms,
            templates: totals.templates,
            clusters: totals.clusters,
            top_templates,
        })
    }

    /// The latest propose run and every measured proposal, oldest first, each once.
    fn proposal_rows(&self, table: &TableName) -> Result<Vec<ProposalRow>, DbError> {
        let mut by_id: BTreeMap<i64, ProposalRecord> = BTreeMap::new();
        for p in self.catalog().measured_proposals(table)? {
            by_id.insert(p.id, p);
        }
        for p in self.catalog().latest_proposals(table)? {
            by_id.insert(p.id, p);
        }
        Ok(by_id.into_values().map(proposal_row).collect())
    }
}

fn proposal_row(p: ProposalRecord) -> ProposalRow {
    let rewrite_bytes = p.proposal.rewrite_read_bytes + p.proposal.rewrite_write_bytes;
    ProposalRow {
        id: p.id,
        created_ms: p.created_at_ms,
        rank: u32::try_from(p.proposal.rank).unwrap_or(u32::MAX),
        target_layout: p.proposal.target_layout.to_string(),
        spec: p.proposal.spec.describe(),
        recommended: p.proposal.recommended,
        predicted_bytes: p.proposal.predicted_bytes,
        predicted_reduction: p.proposal.predicted_reduction,
        measured_bytes: p.measured_bytes,
        measured_reduction: p.measured_reduction,
        rewrite_bytes,
        predicted_size_bytes: p.proposal.rewrite_write_bytes,
        built_size_bytes: p.built_size_bytes,
        payback_runs: p.proposal.payback_runs,
        reason: p.proposal.reasons.first().cloned().unwrap_or_default(),
    }
}

/// Per (cluster, layout): queries, share of the cluster's queries, explored, means.
fn routing_rows(points: &[QueryPointRecord]) -> Vec<RoutingRow> {
    let mut groups: BTreeMap<(&str, &str), Vec<&QueryPointRecord>> = BTreeMap::new();
    let mut per_cluster: BTreeMap<&str, u64> = BTreeMap::new();
    for p in points {
        groups
            .entry((&p.cluster_id, &p.layout_id))
            .or_default()
            .push(p);
        *per_cluster.entry(&p.cluster_id).or_default() += 1;
    }
    groups
        .into_iter()
        .map(|((cluster, layout), rows)| {
            let n = rows.len() as f64;
            RoutingRow {
                cluster: cluster.to_string(),
                layout_id: layout.to_string(),
                queries: rows.len() as u64,
                share: n / per_cluster[cluster] as f64,
                explored: rows.iter().filter(|p| p.explored).count() as u64,
                avg_latency_ms: rows.iter().map(|p| p.latency_ms).sum::<f64>() / n,
                avg_bytes_scanned: rows.iter().map(|p| p.bytes_scanned as f64).sum::<f64>() / n,
            }
        })
        .collect()
}

fn query_point(p: &QueryPointRecord) -> QueryPoint {
    QueryPoint {
        at_ms: p.ts_ms,
        layout_id: p.layout_id.clone(),
        cluster: p.cluster_id.clone(),
        latency_ms: p.latency_ms,
        bytes_scanned: p.bytes_scanned,
    }
}

fn activation_row(a: Activation) -> ActivationRow {
    ActivationRow {
        at_ms: a.at_ms,
        from_layout: a.from_layout.to_string(),
        to_layout: a.to_layout.to_string(),
        action: a.kind.as_str().to_string(),
        actor: a.actor,
        reason: a.reason,
    }
}

fn canary_row(c: CanaryRecord) -> CanaryRow {
    CanaryRow {
        at_ms: c.run_at_ms,
        layout_id: c.canary.layout_id.to_string(),
        baseline_layout: c.canary.baseline_layout.to_string(),
        queries: c.canary.summary.queries,
        mismatches: c.canary.summary.mismatches,
        reduction: c.canary.summary.reduction,
        verdict: c.canary.verdict.as_str().to_string(),
        reason: c.canary.reason,
    }
}
