//! `dbopt evaluate`: score each live layout per query cluster over a rolling window.

use super::{interval, next_round, table_name};
use crate::cli::{Format, RepeatArgs};
use crate::output::{Rows, human_bytes, print_rows};
use anyhow::{Result, bail};
use clap::Args;
use dbopt::analyze::parse_duration_ms;
use dbopt::evaluate::{EvaluateReport, human_window};
use dbopt::{DbError, Workspace};

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
a window where it is worse by more than regression_margin is marked regressed.")]
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
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt evaluate`.
pub async fn run(ws: Workspace, args: EvaluateArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let mut settings = ws.loop_settings()?;
    if let Some(w) = &args.window {
        settings.window_ms = parse_duration_ms(w)?;
        if settings.window_ms <= 0 {
            bail!(DbError::Invalid(format!(
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
        println!("{}", serde_json::to_string_pretty(report)?);
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
