//! `dbopt exp write`: one run into a store.

use super::{Base, StoreArgs};
use crate::output::human_bytes;
use anyhow::Result;
use clap::Args;
use dbopt::DbError;
use dbopt::exp::EngineSettings;
use dbopt::exp::{Rows, write_run};
use std::path::PathBuf;

/// `dbopt exp write`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt exp write results/ --params '{\"algo\": \"ucb1\", \"lr\": 0.1}' --seed 3 --events run3.csv
  dbopt exp write results/ --params-file params.json --events events.parquet --seeds summary.csv
  dbopt exp write results/ --params '{\"algo\": \"eps\"}' --seed 1 --events e.csv --partition-by algo

The grid id is a hash of the canonical parameters (docs/grid-ids.md): the same parameters
always land in the same grid. Writing the same (grid, seed) again replaces its files in one
rename, never duplicating rows. The store is created on first write.")]
pub struct WriteArgs {
    /// The store's base directory (created when missing).
    pub base: Base,
    /// The run's parameters as a JSON object.
    #[arg(
        long,
        value_name = "JSON",
        conflicts_with = "params_file",
        required_unless_present = "params_file"
    )]
    pub params: Option<String>,
    /// A file holding the run's parameters as a JSON object.
    #[arg(long, value_name = "FILE")]
    pub params_file: Option<PathBuf>,
    /// The run's seed [default: the parameters' "seed"]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Event rows (one per measured event), a CSV or Parquet file.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// A seed-level summary, a CSV or Parquet file.
    #[arg(long, value_name = "FILE")]
    pub seeds: Option<PathBuf>,
    /// How the store is created.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Reads `--params` or `--params-file` as JSON.
pub fn read_params(text: Option<&str>, file: Option<&PathBuf>) -> Result<serde_json::Value> {
    let (text, what) = match (text, file) {
        (Some(t), _) => (t.to_string(), "--params".to_string()),
        (None, Some(f)) => (
            std::fs::read_to_string(f).map_err(|e| {
                DbError::BadArgument(format!("cannot read --params-file {}: {e}", f.display()))
            })?,
            f.display().to_string(),
        ),
        (None, None) => anyhow::bail!(DbError::BadArgument(
            "give the run's parameters with --params JSON or --params-file FILE".into()
        )),
    };
    Ok(serde_json::from_str(&text).map_err(|e| {
        DbError::BadArgument(format!(
            "{what} is not JSON ({e}): write the parameters as {{\"name\": value, ...}}"
        ))
    })?)
}

/// Runs `dbopt exp write`.
pub async fn run(settings: &EngineSettings, args: WriteArgs) -> Result<()> {
    let params = read_params(args.params.as_deref(), args.params_file.as_ref())?;
    let events = match &args.events {
        Some(p) => Some(Rows::from_file(settings, p).await?),
        None => None,
    };
    let seeds = match &args.seeds {
        Some(p) => Some(Rows::from_file(settings, p).await?),
        None => None,
    };
    let report = write_run(
        &args.base,
        &args.store.options(),
        &params,
        args.seed,
        events,
        seeds,
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let mut what = Vec::new();
    if let Some(n) = report.event_rows {
        what.push(format!("{n} event rows"));
    }
    if let Some(n) = report.seed_rows {
        what.push(format!("{n} seed rows"));
    }
    println!(
        "grid {} seed {}: {} ({}){}{}",
        report.grid_id,
        report.seed,
        what.join(", "),
        human_bytes(report.bytes),
        if report.new_grid { ", new grid" } else { "" },
        if report.replaced {
            ", replaced the earlier run"
        } else {
            ""
        },
    );
    Ok(())
}
