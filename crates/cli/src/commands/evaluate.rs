//! `dbopt evaluate`: score each live layout per query cluster over a rolling window.

use super::{interval, next_round, table_name};
use crate::cli::{Format, RepeatArgs};
use crate::output::{Rows, human_bytes, print_rows};
use anyhow::{Result, bail};
use clap::Args;
use dbopt::analyze::parse_duration_ms;
use dbopt::evaluate::{EvaluateReport, human_window};
use dbopt::{DbError, Workspace};
use serde::Serialize;

/// `dbopt evaluate`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt evaluate --table-name events --once
  dbopt evaluate --table-name events --once --window 30m --min-samples 20 --explain --dry-run
  dbopt evaluate --table-name events --loop --interval-sec 60

For each layout and query cluster with enough queries in the window: count, mean and p50/p95/p99
latency, mean bytes and rows, improvement of the objective against the baseline (the active
layout), and reward = ALPHA * improvement - BETA * rewrite cost (in table sizes, amortized over
the queries the layout served). The active layout is also compared with the layout it replaced;
a window where it is worse by more than regression_margin is marked regressed.

--format json prints one object per run on one line (JSON lines with --loop); the README's
JSON output section lists its fields.")]
pub struct EvaluateArgs {
    /// The table.
    #[arg(long)]
    pub table_name: String,
    /// Once, or every --interval-sec.
    #[command(flatten)]
    pub repeat: RepeatArgs,
    /// The rolling window, e.g. 30m, 1h, 7d [default: eval_window, 1h]
    #[arg(long)]
    pub window: Option<String>,
    /// Fewest queries to score a layout or cluster [default: min_samples, 5]
    #[arg(long)]
    pub min_samples: Option<u64>,
    /// Print the window, the baseline and why each layout is scored or skipped.
    #[arg(long)]
    pub explain: bool,
    /// Compute without storing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format: table, json (one object per run and line) or csv.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `dbopt evaluate --format json`: one evaluation run.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluateJson {
    /// The table evaluated.
    pub table: String,
    /// Start of the window, milliseconds since the Unix epoch.
    pub window_start_ms: i64,
    /// End of the window (the time of the run), milliseconds since the Unix epoch.
    pub window_end_ms: i64,
    /// What improvement and reward measure: `bytes` (bytes scanned) or `latency`.
    pub objective: String,
    /// The layout id improvements are measured against (the active layout).
    pub baseline: String,
    /// The layout id the active layout replaced, against which regressions are checked; null
    /// when there is none.
    pub reference: Option<String>,
    /// One row per scored (layout, cluster) pair; cluster `*` is all of the layout's queries.
    pub scored: Vec<EvalRowJson>,
    /// (layout, cluster) pairs not scored, with the reason.
    pub skipped: Vec<SkippedJson>,
    /// Whether the scored rows were stored in the catalog (false with --dry-run).
    pub written: bool,
}

/// One scored (layout, cluster) pair of `dbopt evaluate --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalRowJson {
    /// The layout id (`initial` or 16 hex digits, as `dbopt tables` lists them).
    pub layout_id: String,
    /// The query cluster id, or `*` for all queries of the layout.
    pub cluster_id: String,
    /// Queries of the window on this layout and cluster (a count).
    pub queries: u64,
    /// Mean latency, milliseconds.
    pub avg_latency_ms: f64,
    /// Median latency, milliseconds.
    pub p50_latency_ms: f64,
    /// 95th percentile latency, milliseconds.
    pub p95_latency_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_latency_ms: f64,
    /// Mean bytes scanned of the table per query, bytes.
    pub avg_bytes_scanned: f64,
    /// Mean rows returned per query, rows.
    pub avg_rows_returned: f64,
    /// Relative improvement of the objective against the baseline, a fraction (0.25 = 25%
    /// less); null without baseline figures for the cluster.
    pub improvement: Option<f64>,
    /// ALPHA * improvement - BETA * amortized rewrite cost (unitless); null when unscored.
    pub reward: Option<f64>,
    /// Whether the active layout did worse than the reference layout by more than
    /// regression_margin in this window (only ever true on the active layout's `*` row).
    pub regressed: bool,
}

/// One unscored (layout, cluster) pair of `dbopt evaluate --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedJson {
    /// The layout id.
    pub layout: String,
    /// The query cluster id, or `*`.
    pub cluster: String,
    /// Queries it had in the window (a count).
    pub queries: u64,
    /// Why it was not scored.
    pub reason: String,
}

impl From<&EvaluateReport> for EvaluateJson {
    fn from(r: &EvaluateReport) -> Self {
        EvaluateJson {
            table: r.table.clone(),
            window_start_ms: r.window_start_ms,
            window_end_ms: r.window_end_ms,
            objective: r.objective.as_str().to_string(),
            baseline: r.baseline.to_string(),
            reference: r.reference.as_ref().map(std::string::ToString::to_string),
            scored: r
                .scored
                .iter()
                .map(|e| EvalRowJson {
                    layout_id: e.layout_id.to_string(),
                    cluster_id: e.cluster_id.clone(),
                    queries: e.queries,
                    avg_latency_ms: e.avg_latency_ms,
                    p50_latency_ms: e.p50_latency_ms,
                    p95_latency_ms: e.p95_latency_ms,
                    p99_latency_ms: e.p99_latency_ms,
                    avg_bytes_scanned: e.avg_bytes_scanned,
                    avg_rows_returned: e.avg_rows_returned,
                    improvement: e.improvement,
                    reward: e.reward,
                    regressed: e.regressed,
                })
                .collect(),
            skipped: r
                .skipped
                .iter()
                .map(|s| SkippedJson {
                    layout: s.layout.to_string(),
                    cluster: s.cluster.clone(),
                    queries: s.queries,
                    reason: s.reason.clone(),
                })
                .collect(),
            written: r.written,
        }
    }
}

/// Runs `dbopt evaluate`.
pub async fn run(ws: Workspace, args: EvaluateArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let mut settings = ws.loop_settings()?;
    if let Some(w) = &args.window {
        settings.window_ms = parse_duration_ms(w)?;
        if settings.window_ms <= 0 {
            bail!(DbError::BadArgument(format!(
                "--window {w} must be longer than 0s"
            )));
        }
    }
    if let Some(n) = args.min_samples {
        settings.min_samples = n.max(1);
    }
    let pause = interval(&args.repeat, 60.0)?;
    loop {
        let report = ws.evaluate(&table, &settings, args.dry_run)?;
        print_report(&report, args.explain, args.format)?;
        if !next_round(&args.repeat, pause).await {
            return Ok(());
        }
    }
}

fn print_report(report: &EvaluateReport, explain: bool, format: Format) -> Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string(&EvaluateJson::from(report))?);
        return Ok(());
    }
    if explain {
        println!(
            "{}: window {} ({} .. {} ms), objective {}, baseline {}{}",
            report.table,
            human_window(report.window_end_ms - report.window_start_ms),
            report.window_start_ms,
            report.window_end_ms,
            report.objective,
            report.baseline,
            report
                .reference
                .as_ref()
                .map(|r| format!(", regression checked against {r}"))
                .unwrap_or_default()
        );
    }
    let mut rows = Rows::new(&[
        "layout",
        "cluster",
        "queries",
        "avg ms",
        "p50",
        "p95",
        "p99",
        "avg bytes",
        "improvement",
        "reward",
        "regressed",
    ]);
    for e in &report.scored {
        rows.push(vec![
            e.layout_id.to_string(),
            e.cluster_id.clone(),
            e.queries.to_string(),
            format!("{:.1}", e.avg_latency_ms),
            format!("{:.1}", e.p50_latency_ms),
            format!("{:.1}", e.p95_latency_ms),
            format!("{:.1}", e.p99_latency_ms),
            human_bytes(e.avg_bytes_scanned as u64),
            e.improvement
                .map_or("-".into(), |i| format!("{:+.0}%", i * 100.0)),
            e.reward.map_or("-".into(), |r| format!("{r:+.3}")),
            if e.regressed {
                "yes".into()
            } else {
                String::new()
            },
        ]);
    }
    print_rows(&rows, format);
    if explain {
        for s in &report.skipped {
            println!("skipped {} cluster {}: {}", s.layout, s.cluster, s.reason);
        }
    }
    if report.written {
        eprintln!("stored {} evaluation rows", report.scored.len());
    } else {
        eprintln!("dry run: nothing stored");
    }
    Ok(())
}
