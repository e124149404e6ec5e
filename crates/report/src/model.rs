//! The report models: plain data the facade fills from the catalog and the renderers turn into
//! text, JSON, CSV, Markdown and SVG.
//!
//! The serde field names are the stable JSON names of `dbopt status --json`, `dbopt history
//! --json` and the report directory's JSON files. Every time is milliseconds since the Unix
//! epoch (UTC); every fraction is a plain ratio (0.25 = 25 %).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a layout is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutState {
    /// Serving the table's queries by default.
    Active,
    /// The layout the table was registered with (the baseline).
    Initial,
    /// Built and available to the router, not the default.
    Candidate,
    /// Being rewritten by a migration job.
    Building,
    /// No longer served; files kept until garbage collection.
    Retired,
    /// Its build or canary failed.
    Failed,
}

impl LayoutState {
    /// The lowercase name used in text and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            LayoutState::Active => "active",
            LayoutState::Initial => "initial",
            LayoutState::Candidate => "candidate",
            LayoutState::Building => "building",
            LayoutState::Retired => "retired",
            LayoutState::Failed => "failed",
        }
    }
}

impl fmt::Display for LayoutState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One layout of a table as `dbopt status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayoutStatus {
    /// Layout id (content hash prefix or name).
    pub layout_id: String,
    /// Life-cycle state.
    pub state: LayoutState,
    /// The layout spec on one line (sort keys, partitioning, file size).
    pub spec: String,
    /// Size of the layout's files, in bytes.
    pub size_bytes: u64,
    /// Queries served by this layout, all time (count).
    pub queries: u64,
    /// Mean query latency over every logged query it served, in milliseconds.
    pub avg_latency_ms: Option<f64>,
    /// 95th percentile query latency over every logged query it served, in milliseconds.
    pub p95_latency_ms: Option<f64>,
    /// Mean bytes scanned per query over every logged query it served, in bytes.
    pub avg_bytes_scanned: Option<f64>,
    /// Improvement against the baseline layout at the last evaluation, as a fraction.
    pub improvement: Option<f64>,
    /// Reward at the last evaluation (dimensionless, higher is better).
    pub reward: Option<f64>,
    /// Fraction of the table's queries this layout served in the last window.
    pub traffic_share: Option<f64>,
}

/// The best layout for one query cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterBest {
    /// Query cluster id.
    pub cluster: String,
    /// The layout with the best objective for this cluster.
    pub layout_id: String,
    /// Queries of this cluster on that layout (count).
    pub queries: u64,
    /// Mean bytes scanned per query, in bytes.
    pub avg_bytes_scanned: f64,
    /// Mean query latency, in milliseconds.
    pub avg_latency_ms: f64,
}

/// One migration job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRow {
    /// Job id.
    pub id: i64,
    /// Table name.
    pub table: String,
    /// Layout the job reads.
    pub source_layout: String,
    /// Layout the job writes.
    pub target_layout: String,
    /// Job state: `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// Work units finished (count).
    pub units_done: u64,
    /// Work units in the job (count).
    pub units_total: u64,
    /// Worker holding the lease, if any.
    pub lease_owner: Option<String>,
    /// When the lease expires, in milliseconds since the Unix epoch.
    pub lease_expires_ms: Option<i64>,
    /// Attempts started (count).
    pub attempts: u32,
    /// The last error message, if an attempt failed.
    pub last_error: Option<String>,
    /// When the job was queued, in milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When the job finished, in milliseconds since the Unix epoch.
    pub finished_ms: Option<i64>,
    /// Bytes read from the source layout, in bytes.
    pub bytes_read: u64,
    /// Bytes written to the target layout, in bytes.
    pub bytes_written: u64,
    /// Rows written to the target layout (count).
    pub rows_written: u64,
    /// Time spent rewriting, in milliseconds.
    pub duration_ms: u64,
    /// Peak memory of the rewrite, in bytes.
    pub peak_memory_bytes: u64,
}

/// One autopilot decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRow {
    /// When the decision was taken, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The autopilot step (e.g. `propose`, `build`, `activate`).
    pub step: String,
    /// What was decided.
    pub decision: String,
    /// Why.
    pub reason: String,
}

/// Everything `dbopt status` shows for one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Table name.
    pub table: String,
    /// When the report was generated, in milliseconds since the Unix epoch.
    pub generated_ms: i64,
    /// Length of the evaluation window, in seconds.
    pub window_sec: f64,
    /// The active layout's id.
    pub active_layout: String,
    /// Every layout of the table.
    pub layouts: Vec<LayoutStatus>,
    /// The best layout per query cluster.
    pub best_per_cluster: Vec<ClusterBest>,
    /// Queued and running migration jobs.
    pub jobs: Vec<JobRow>,
    /// The most recent autopilot decision, if any.
    pub last_decision: Option<DecisionRow>,
}

/// One evaluation of one layout for one cluster at the end of a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// End of the evaluation window, in milliseconds since the Unix epoch.
    pub window_end_ms: i64,
    /// Layout id.
    pub layout_id: String,
    /// Query cluster id.
    pub cluster: String,
    /// Reward (dimensionless, higher is better).
    pub reward: Option<f64>,
    /// Improvement against the baseline layout, as a fraction.
    pub improvement: Option<f64>,
    /// Queries in the window (count).
    pub queries: u64,
    /// Mean query latency, in milliseconds.
    pub avg_latency_ms: f64,
    /// 95th percentile query latency, in milliseconds.
    pub p95_latency_ms: f64,
    /// Mean bytes scanned per query, in bytes.
    pub avg_bytes_scanned: f64,
    /// Mean rows returned per query (count).
    pub avg_rows_returned: f64,
    /// Whether the layout regressed against the baseline in this window.
    pub regressed: bool,
}

/// One measured query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryPoint {
    /// When the query ran, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The layout that served it.
    pub layout_id: String,
    /// Its query cluster id.
    pub cluster: String,
    /// Its latency, in milliseconds.
    pub latency_ms: f64,
    /// Bytes it scanned, in bytes.
    pub bytes_scanned: u64,
}

/// How the router sent one cluster's queries to one layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingRow {
    /// Query cluster id.
    pub cluster: String,
    /// Layout id.
    pub layout_id: String,
    /// Queries of the cluster routed to the layout (count).
    pub queries: u64,
    /// Fraction of the cluster's queries routed to the layout.
    pub share: f64,
    /// Of those, queries routed for exploration (count).
    pub explored: u64,
    /// Mean query latency, in milliseconds.
    pub avg_latency_ms: f64,
    /// Mean bytes scanned per query, in bytes.
    pub avg_bytes_scanned: f64,
}

/// One proposed layout, with its prediction and, once built and measured, its measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposalRow {
    /// Proposal id.
    pub id: i64,
    /// When it was proposed, in milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Rank among the proposals of the same run (1 = best).
    pub rank: u32,
    /// The proposed layout's id.
    pub target_layout: String,
    /// The proposed layout spec on one line.
    pub spec: String,
    /// Whether this proposal was recommended.
    pub recommended: bool,
    /// Predicted bytes scanned per query, in bytes.
    pub predicted_bytes: f64,
    /// Predicted reduction of bytes scanned against the current layout, as a fraction.
    pub predicted_reduction: f64,
    /// Measured bytes scanned per query, in bytes.
    pub measured_bytes: Option<f64>,
    /// Measured reduction of bytes scanned, as a fraction.
    pub measured_reduction: Option<f64>,
    /// Estimated bytes the rewrite reads and writes, in bytes.
    pub rewrite_bytes: u64,
    /// Predicted size of the layout on disk, in bytes.
    pub predicted_size_bytes: u64,
    /// Size of the layout on disk once built, in bytes.
    pub built_size_bytes: Option<u64>,
    /// Workload runs until the rewrite pays for itself (count).
    pub payback_runs: Option<f64>,
    /// Why it was proposed.
    pub reason: String,
}

/// One change of the active layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationRow {
    /// When it happened, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The previously active layout.
    pub from_layout: String,
    /// The newly active layout.
    pub to_layout: String,
    /// `activate` or `rollback` (free text).
    pub action: String,
    /// Who did it: a user or the autopilot.
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// One canary replay of a candidate against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryRow {
    /// When it ran, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The candidate layout.
    pub layout_id: String,
    /// The layout it was compared with.
    pub baseline_layout: String,
    /// Queries replayed (count).
    pub queries: u64,
    /// Queries whose results differed (count).
    pub mismatches: u64,
    /// Measured reduction of the objective, as a fraction.
    pub reduction: f64,
    /// The verdict (e.g. `pass`, `fail`).
    pub verdict: String,
    /// Why.
    pub reason: String,
}

/// One query template of the observed workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRow {
    /// Template fingerprint.
    pub fingerprint: String,
    /// Query cluster id.
    pub cluster: String,
    /// Queries of this template (count).
    pub queries: u64,
    /// Mean bytes scanned per query, in bytes.
    pub avg_bytes_scanned: f64,
    /// Mean query latency, in milliseconds.
    pub avg_latency_ms: f64,
    /// A sample SQL text; only present when requested (`--include-sql`).
    pub sql: Option<String>,
}

/// What was observed of the workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// Queries logged (count).
    pub queries: u64,
    /// Queries that failed (count).
    pub errors: u64,
    /// The first logged query, in milliseconds since the Unix epoch.
    pub first_ms: Option<i64>,
    /// The last logged query, in milliseconds since the Unix epoch.
    pub last_ms: Option<i64>,
    /// Distinct query templates (count).
    pub templates: u64,
    /// Distinct query clusters (count).
    pub clusters: u64,
    /// The most frequent templates.
    pub top_templates: Vec<TemplateRow>,
}

/// Everything the shareable report directory is rendered from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportBundle {
    /// The table's current status.
    pub status: StatusReport,
    /// The observed workload.
    pub observed: Observed,
    /// Every proposal.
    pub proposals: Vec<ProposalRow>,
    /// Every migration job.
    pub jobs: Vec<JobRow>,
    /// Every evaluation.
    pub history: Vec<HistoryRow>,
    /// Routing per cluster and layout.
    pub routing: Vec<RoutingRow>,
    /// Every change of the active layout.
    pub activations: Vec<ActivationRow>,
    /// Every canary replay.
    pub canaries: Vec<CanaryRow>,
    /// Every autopilot decision.
    pub decisions: Vec<DecisionRow>,
    /// Measured queries for the charts.
    pub queries: Vec<QueryPoint>,
}
