//! `dbopt exp convert`: a directory of CSV results into a store.

use super::{Base, StoreArgs};
use crate::cli::Format;
use crate::output::{Rows, human_bytes, print_rows};
use anyhow::Result;
use clap::{Args, ValueEnum};
use dbopt::exp::EngineSettings;
use dbopt::exp::Kind;
use dbopt::exp::{ConvertOptions, convert};
use std::path::PathBuf;

/// What one CSV row is.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum Granularity {
    /// One measured event (stored under BASE/events).
    #[default]
    Event,
    /// One seed's summary (stored under BASE/seeds).
    Seed,
}

/// `dbopt exp convert`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt exp convert sweep_csv/ results/ --param-columns algo,lr --dry-run
  dbopt exp convert sweep_csv/ results/ --param-columns algo,lr
  dbopt exp convert sweep_csv/ results/ --granularity seed     # parameters in run-7.json sidecars

Each .csv file in CSV_DIR is one run, or several told apart by their parameter columns and
`seed`. Parameters come from --param-columns, from a sidecar JSON next to the file
(run-7.csv -> run-7.json), or both; the seed from a `seed` column or the sidecar's \"seed\".
After the import it reports the CSV-to-Parquet size ratio and full-scan speed of both.")]
pub struct ConvertArgs {
    /// The directory of CSV files.
    pub csv_dir: PathBuf,
    /// The store's base directory (created when missing).
    pub base: Base,
    /// Whether a row is an event or a seed summary.
    #[arg(long, value_enum, default_value_t = Granularity::Event)]
    pub granularity: Granularity,
    /// Columns that hold the run's parameters [default: none; a sidecar JSON then]
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub param_columns: Vec<String>,
    /// Report the grids and runs it would write; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How the store is created.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt exp convert`.
pub async fn run(settings: &EngineSettings, args: ConvertArgs) -> Result<()> {
    let options = ConvertOptions {
        granularity: match args.granularity {
            Granularity::Event => Kind::Events,
            Granularity::Seed => Kind::Seeds,
        },
        param_columns: args.param_columns.clone(),
        dry_run: args.dry_run,
        store: args.store.options(),
    };
    let report = convert(settings, &args.csv_dir, &args.base, &options).await?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let mut rows = Rows::new(&["file", "grid", "seed", "rows", "grid is", "run"]);
    for r in &report.runs {
        rows.push(vec![
            std::path::Path::new(&r.file)
                .file_name()
                .map_or(r.file.clone(), |n| n.to_string_lossy().to_string()),
            r.grid_id.clone(),
            r.seed.to_string(),
            r.rows.to_string(),
            if r.new_grid { "new" } else { "stored" }.into(),
            if r.replaces { "replaces" } else { "new" }.into(),
        ]);
    }
    print_rows(&rows, args.format);
    let grids: std::collections::BTreeSet<&str> =
        report.runs.iter().map(|r| r.grid_id.as_str()).collect();
    if report.dry_run {
        println!(
            "dry run: would write {} runs of {} grids from {} CSV files ({}); nothing written",
            report.runs.len(),
            grids.len(),
            report.files,
            human_bytes(report.csv_bytes)
        );
        return Ok(());
    }
    println!(
        "wrote {} runs of {} grids from {} CSV files: {} of CSV -> {} of Parquet ({:.1}x smaller)",
        report.runs.len(),
        grids.len(),
        report.files,
        human_bytes(report.csv_bytes),
        human_bytes(report.parquet_bytes),
        report.csv_bytes as f64 / report.parquet_bytes.max(1) as f64
    );
    if let (Some(csv), Some(pq)) = (report.csv_rows_per_s, report.parquet_rows_per_s) {
        println!(
            "full scan: CSV {:.0} rows/s, store {:.0} rows/s ({:.1}x)",
            csv,
            pq,
            pq / csv.max(1e-9)
        );
    }
    Ok(())
}
