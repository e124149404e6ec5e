//! `dbopt demo`: the whole learning loop on generated data in a fresh directory.

use crate::cli::Format;
use crate::output::{Rows, human_bytes, print_predicted_vs_measured, print_rows};
use crate::progress::Bar;
use anyhow::{Result, bail};
use clap::Args;
use dbopt::demo::{DemoOptions, DemoReport, HELD_OUT_TEMPLATE};
use dbopt::workload::WorkloadSummary;
use dbopt::{DbError, Workspace};
use dbopt_core::{Config, ConfigSource};
use std::path::PathBuf;

/// `dbopt demo`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt demo
  dbopt demo --num-rows 200000 --queries 150 --data-dir /tmp/dbopt-demo

--data-dir names a new or empty directory for the demo's tables and catalog (metadata.db inside
it); without it the demo makes a new temporary directory.

Generates shuffled events, runs a workload without one query shape on the initial layout, runs
autopilot (propose, rewrite, canary, promote), runs the full workload pinned to the initial
layout and then routed, runs autopilot again (the new shape gets a layout of its own), runs the
same queries routed once more, and prints before/after figures. The directory is kept so you
can look around: the last line prints the DATA_DIR and METADATA_DB to use.")]
pub struct DemoArgs {
    /// Event rows to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub num_rows: u64,
    /// Queries per workload run.
    #[arg(long, default_value_t = 200)]
    pub queries: u64,
    /// Seed of data, queries and routing.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output format of the final figures.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt demo`.
pub async fn run(config: Config, args: DemoArgs) -> Result<()> {
    if args.num_rows < 10_000 || args.queries < 20 {
        bail!(DbError::BadArgument(
            "the demo needs --num-rows of at least 10000 and --queries of at least 20".into()
        ));
    }
    let given = config
        .get("data_dir")
        .filter(|v| matches!(v.source, ConfigSource::Flag(_)))
        .map(|v| PathBuf::from(&v.value));
    let dir = demo_dir(given.as_ref())?;
    let config = config.with_paths(&dir.join("data"), &dir.join("metadata.db"), "dbopt demo");
    let ws = Workspace::open(config)?;
    eprintln!("demo directory: {}", dir.display());
    let options = DemoOptions {
        num_rows: args.num_rows,
        queries: args.queries,
        seed: args.seed,
    };
    let report = ws.demo(&options, &Bar::queries("queries")).await?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print_report(&report, args.format);
    println!(
        "\nlook around: DATA_DIR={0}/data METADATA_DB={0}/metadata.db dbopt tables",
        dir.display()
    );
    Ok(())
}

/// The demo's directory: the one given (new or empty), else a new temporary one.
fn demo_dir(given: Option<&PathBuf>) -> Result<PathBuf> {
    let dir = match given {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "dbopt-demo-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        )),
    };
    let non_empty = std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some());
    if non_empty {
        bail!(DbError::BadArgument(format!(
            "demo directory {} is not empty: give a new or empty --data-dir",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| DbError::io(format!("creating {}", dir.display()), e))?;
    Ok(dir)
}

fn print_report(r: &DemoReport, format: Format) {
    println!("\nThe same {} queries, three times:", r.before.queries);
    let mut rows = Rows::new(&[
        "",
        "before: initial layout",
        "routed, 1 pass",
        "after: routed, 2 passes",
    ]);
    let runs: [&WorkloadSummary; 3] = [&r.before, &r.routed_once, &r.after];
    let line = |name: &str, f: &dyn Fn(&WorkloadSummary) -> String| -> Vec<String> {
        let mut row = vec![name.to_string()];
        row.extend(runs.iter().map(|s| f(s)));
        row
    };
    rows.push(line("bytes scanned", &|s| {
        human_bytes(s.total_bytes_scanned)
    }));
    rows.push(line("p50 latency", &|s| format!("{:.1} ms", s.p50_ms)));
    rows.push(line("p95 latency", &|s| format!("{:.1} ms", s.p95_ms)));
    rows.push(line("errors", &|s| s.errors.to_string()));
    rows.push(line("queries per layout", &|s| {
        s.per_layout
            .iter()
            .filter_map(|(l, n)| Some(format!("{}: {n}", l.strip_prefix("events@")?)))
            .collect::<Vec<_>>()
            .join(", ")
    }));
    print_rows(&rows, format);
    let ratio = r.before.total_bytes_scanned as f64 / r.after.total_bytes_scanned.max(1) as f64;
    println!("bytes scanned fell {ratio:.1}x from before to after");

    println!("\nWhat autopilot decided (the training run left out {HELD_OUT_TEMPLATE}):");
    let mut rows = Rows::new(&["pass", "step", "decision", "reason"]);
    for (i, pass) in r.passes.iter().enumerate() {
        for s in &pass.steps {
            rows.push(vec![
                (i + 1).to_string(),
                s.step.clone(),
                s.decision.clone(),
                s.reason.clone(),
            ]);
        }
    }
    print_rows(&rows, format);

    println!("\nCanaries:");
    let mut rows = Rows::new(&[
        "layout",
        "against",
        "shapes",
        "differ",
        "bytes less",
        "verdict",
    ]);
    for c in &r.canaries {
        let c = &c.canary;
        rows.push(vec![
            c.layout_id.to_string(),
            c.baseline_layout.to_string(),
            c.summary.queries.to_string(),
            c.summary.mismatches.to_string(),
            format!("{:.0}%", c.summary.reduction * 100.0),
            c.verdict.to_string(),
        ]);
    }
    print_rows(&rows, format);

    println!("\nPredicted against measured (bytes of the logged workload):");
    print_predicted_vs_measured(&r.proposals, format);
    println!("\nactive layout: {}", r.active);
}
