//! `dbopt exp run`: a sweep of dbopt itself into a store, resumable.

use super::{Base, StoreArgs};
use crate::cli::Format;
use crate::output::{Rows, print_rows};
use anyhow::Result;
use clap::Args;
use dbopt::exp_run::{SweepFile, run_sweep};
use dbopt_core::Config;
use std::path::PathBuf;

/// `dbopt exp run`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt exp run results/ --grid grid.toml
  dbopt exp run results/ --grid grid.toml --format json

grid.toml (every list is an axis; the sweep is their product, each grid run once per seed):
  rows = [100000]
  order = [\"arrival\"]            # arrival or shuffled      [default: arrival]
  queries = [60]                 # queries per run          [default: 100]
  threads = [1, 2]               # engine threads, 0 = all  [default: 0]
  seeds = [1, 2, 3]
  exclude_templates = []
  [layouts]                      # name = layout, as in a tables/<t>.toml [layout] section
  initial = {}
  by_time = { sort_by = [\"event_ts\"] }
  hilbert = { cluster_by = [\"country\", \"event_ts\"], curve = \"hilbert\" }

Each run generates the events table in a scratch workspace under BASE/_work, builds the
layout, runs the seeded workload pinned to it and stores one event row per query and a seed
summary. A (grid, seed) already complete in the store is skipped: rerun after an interruption
and it goes on where it stopped.")]
pub struct RunArgs {
    /// The store's base directory (created when missing).
    pub base: Base,
    /// The sweep file.
    #[arg(long, value_name = "FILE")]
    pub grid: PathBuf,
    /// How the store is created.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output format of the closing table.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt exp run`.
pub async fn run(config: &Config, args: RunArgs) -> Result<()> {
    let sweep = SweepFile::read(&args.grid)?;
    let runs = run_sweep(&args.base, &args.store.options(), &sweep, config).await?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(());
    }
    let mut rows = Rows::new(&["grid", "layout", "seed", "status", "queries", "seconds"]);
    for r in &runs {
        rows.push(vec![
            r.grid_id.clone(),
            r.layout_name.clone(),
            r.seed.to_string(),
            r.status.to_string(),
            r.queries.to_string(),
            format!("{:.1}", r.seconds),
        ]);
    }
    print_rows(&rows, args.format);
    let ran = runs.iter().filter(|r| r.status == "ran").count();
    println!(
        "{ran} runs done, {} already complete; query them with `dbopt exp query {}`",
        runs.len() - ran,
        args.base.display()
    );
    Ok(())
}
