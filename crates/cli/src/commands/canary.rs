//! `dbopt canary`: replay the hottest logged query shapes on a candidate and the active layout.

use super::{layout_id, table_name};
use crate::cli::Format;
use crate::output::{Rows, human_bytes, print_rows};
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;

/// `dbopt canary`
#[derive(Debug, Args)]
#[command(after_help = "Example:
  dbopt canary --table-name events --layout 3f2a9c0d11e4b7a2 --queries 20

Each of the N most frequent logged query shapes runs, with the literal values it was last
logged with, on the active layout and on the candidate (unlogged). Verdict: promote when every
result is the same (order-insensitive; floats within a relative 1e-9) and bytes fall by at least
min_canary_reduction (default 0.3); reject on any difference; hold otherwise. The figures are
stored, and beside the prediction of the proposal that named the layout.")]
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
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
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
        println!("{}", serde_json::to_string_pretty(&report)?);
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
    if let Some(id) = report.proposal_id {
        println!("measured figures stored beside proposal {id}");
    }
    Ok(())
}
