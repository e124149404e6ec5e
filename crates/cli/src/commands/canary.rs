//! `dbopt canary`: replay the hottest logged query shapes on a candidate and the active layout.

use super::{layout_id, table_name};
use crate::cli::Format;
use crate::output::{Rows, human_bytes, print_rows};
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use dbopt::canary::CanaryReport;
use serde::Serialize;

/// `dbopt canary`
#[derive(Debug, Args)]
#[command(after_help = "Example:
  dbopt canary --table-name events --layout 3f2a9c0d11e4b7a2 --queries 20

Each of the N most frequent logged query shapes runs, with the literal values it was last
logged with, on the active layout and on the candidate (unlogged). Verdict: promote when every
result is the same (order-insensitive; floats within a relative 1e-9) and bytes fall by at least
min_canary_reduction (default 0.3); reject on any difference; hold otherwise. The figures are
stored, and beside the prediction of the proposal that named the layout.

--format json prints one object (the README's JSON output section lists its fields); it names
each shape by its template fingerprint, never by SQL with literal values.")]
pub struct CanaryArgs {
    /// The table.
    #[arg(long)]
    pub table_name: String,
    /// The candidate layout (`dbopt tables` lists them).
    #[arg(long)]
    pub layout: String,
    /// Query shapes to replay [default: canary_queries, 10]
    #[arg(long)]
    pub queries: Option<u64>,
    /// Output format: table, json or csv (the per-shape rows).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `dbopt canary --format json`: one canary run.
#[derive(Debug, Clone, Serialize)]
pub struct CanaryJson {
    /// The stored canary run's id.
    pub id: i64,
    /// The table.
    pub table: String,
    /// The candidate layout id.
    pub layout: String,
    /// The layout id it was compared against (the active layout).
    pub baseline: String,
    /// `promote`, `hold` or `reject`.
    pub verdict: String,
    /// Why, in one sentence.
    pub reason: String,
    /// The proposal whose measured figures were filled in; null when no proposal named the layout.
    pub proposal_id: Option<i64>,
    /// Totals over the replayed shapes, each weighted by how often it was logged.
    pub summary: CanarySummaryJson,
    /// One entry per replayed query shape, the most frequent first.
    pub queries: Vec<CanaryShapeJson>,
    /// Shapes that fail on the baseline too (not counted), as `fingerprint: error`.
    pub skipped: Vec<String>,
}

/// The totals of `dbopt canary --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct CanarySummaryJson {
    /// Shapes replayed (a count).
    pub queries: u64,
    /// Shapes whose results differed (a count); any makes the verdict `reject`.
    pub mismatches: u64,
    /// Bytes scanned on the baseline by one run of the logged workload (weighted), bytes.
    pub baseline_bytes: f64,
    /// Bytes scanned on the candidate by the same run (weighted), bytes.
    pub candidate_bytes: f64,
    /// 1 - candidate_bytes / baseline_bytes, a fraction (0.6 = 60% fewer bytes).
    pub reduction: f64,
    /// Weighted mean latency on the baseline, milliseconds.
    pub baseline_latency_ms: f64,
    /// Weighted mean latency on the candidate, milliseconds.
    pub candidate_latency_ms: f64,
    /// candidate / baseline latency - 1, a fraction (negative is faster).
    pub latency_change: f64,
}

/// One replayed shape of `dbopt canary --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct CanaryShapeJson {
    /// The template fingerprint (the SQL with its literals stripped, hashed).
    pub fingerprint: String,
    /// The shape's query cluster id; null when unclustered.
    pub cluster_id: Option<String>,
    /// How often the shape was logged: its weight in the totals (a count).
    pub weight: u64,
    /// Whether both layouts returned the same rows (floats within a relative 1e-9).
    pub matched: bool,
    /// Why the results differ, or why one side failed; null when they match.
    pub mismatch: Option<String>,
    /// Bytes the baseline scanned of the table, bytes.
    pub baseline_bytes: f64,
    /// Bytes the candidate scanned of the table, bytes.
    pub candidate_bytes: f64,
    /// Baseline latency, milliseconds.
    pub baseline_latency_ms: f64,
    /// Candidate latency, milliseconds.
    pub candidate_latency_ms: f64,
}

impl From<&CanaryReport> for CanaryJson {
    fn from(r: &CanaryReport) -> Self {
        let s = &r.summary;
        CanaryJson {
            id: r.id,
            table: r.table.clone(),
            layout: r.layout.to_string(),
            baseline: r.baseline.to_string(),
            verdict: r.verdict.to_string(),
            reason: r.reason.clone(),
            proposal_id: r.proposal_id,
            summary: CanarySummaryJson {
                queries: s.queries,
                mismatches: s.mismatches,
                baseline_bytes: s.baseline_bytes,
                candidate_bytes: s.candidate_bytes,
                reduction: s.reduction,
                baseline_latency_ms: s.baseline_latency_ms,
                candidate_latency_ms: s.candidate_latency_ms,
                latency_change: s.latency_change,
            },
            queries: r
                .queries
                .iter()
                .map(|q| CanaryShapeJson {
                    fingerprint: q.fingerprint.clone(),
                    cluster_id: q.cluster_id.clone(),
                    weight: q.weight,
                    matched: q.matched,
                    mismatch: q.mismatch.clone(),
                    baseline_bytes: q.baseline_bytes,
                    candidate_bytes: q.candidate_bytes,
                    baseline_latency_ms: q.baseline_latency_ms,
                    candidate_latency_ms: q.candidate_latency_ms,
                })
                .collect(),
            skipped: r.skipped.clone(),
        }
    }
}

/// Runs `dbopt canary`.
pub async fn run(ws: Workspace, args: CanaryArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let layout = layout_id(&args.layout)?;
    let settings = ws.loop_settings()?;
    let shapes = args.queries.unwrap_or(settings.canary_queries).max(1);
    let report = ws
        .canary(&table, &layout, shapes, settings.min_canary_reduction)
        .await?;
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&CanaryJson::from(&report))?
        );
        return Ok(());
    }
    let mut rows = Rows::new(&[
        "shape",
        "runs",
        "result",
        "baseline",
        "candidate",
        "ms base",
        "ms cand",
    ]);
    for q in &report.queries {
        rows.push(vec![
            q.fingerprint.chars().take(12).collect(),
            q.weight.to_string(),
            match &q.mismatch {
                None => "same".into(),
                Some(why) => format!("DIFFERS: {why}"),
            },
            human_bytes(q.baseline_bytes as u64),
            human_bytes(q.candidate_bytes as u64),
            format!("{:.1}", q.baseline_latency_ms),
            format!("{:.1}", q.candidate_latency_ms),
        ]);
    }
    print_rows(&rows, args.format);
    for s in &report.skipped {
        eprintln!("skipped (fails on the baseline too): {s}");
    }
    let s = &report.summary;
    println!(
        "{table}: candidate {} vs active {}: {} shapes, {} differ, bytes {} -> {} ({:.0}% less), latency {:.1} -> {:.1} ms",
        report.layout,
        report.baseline,
        s.queries,
        s.mismatches,
        human_bytes(s.baseline_bytes as u64),
        human_bytes(s.candidate_bytes as u64),
        s.reduction * 100.0,
        s.baseline_latency_ms,
        s.candidate_latency_ms
    );
    println!("verdict: {} ({})", report.verdict, report.reason);
    if let Some(branch) = &report.lake_branch {
        let fate = if report.verdict == dbopt_catalog::Verdict::Reject {
            "dropped"
        } else {
            "promote fast-forwards main to it"
        };
        println!("Iceberg branch {branch}: {fate}");
    }
    if let Some(id) = report.proposal_id {
        println!("measured figures stored beside proposal {id}");
    }
    Ok(())
}
