//! `dbopt tune`: measure the engine settings on a table's hottest logged query shapes and,
//! with `--write`, store the fastest in the configuration file.

use super::table_name;
use crate::cli::Format;
use crate::output::{Rows, print_rows};
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use dbopt::tune::{TuneOptions, TuneReport, write_config};
use std::path::PathBuf;

/// `dbopt tune`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt tune --table-name events                     # measure and show, change nothing
  dbopt tune --table-name events --write             # and store the winners in ./dbopt.toml
  dbopt tune --table-name lineitem --shapes 10 --rounds 5 --margin 0.1

Tried, one at a time from the current configuration: threads (1, the cores, twice the cores),
batch_size (4096, 8192, 32768), pushdown_filters, page_index and repartition_joins flipped.
Each setting runs the same queries (unlogged) after a warm-up round, in interleaved rounds;
a query counts its median. A value is chosen only when it beats the current configuration by
more than --margin and no query failed under it; the chosen values are then measured together
and kept only if the combination wins too. --write stores the tuned keys in the configuration
file (--config, or ./dbopt.toml), keeping its other keys.")]
pub struct TuneArgs {
    /// The table whose logged workload is measured.
    #[arg(long)]
    pub table_name: String,
    /// Hottest logged query shapes to run.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub shapes: u64,
    /// Measured rounds per setting (after one warm-up round).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub rounds: usize,
    /// Smallest improvement that changes a setting (0.05 = 5% faster than now).
    #[arg(long, default_value_t = 0.05, value_name = "FRACTION")]
    pub margin: f64,
    /// Store the chosen settings in the configuration file.
    #[arg(long)]
    pub write: bool,
    /// Output format (table or json).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt tune`; `config_file` is `--config` when given.
pub async fn run(ws: Workspace, args: TuneArgs, config_file: Option<PathBuf>) -> Result<()> {
    let table = table_name(&args.table_name)?;
    if args.rounds == 0 || !(0.0..1.0).contains(&args.margin) {
        return Err(dbopt::DbError::BadArgument(
            "--rounds must be at least 1 and --margin between 0 and 1 (e.g. 0.05)".into(),
        )
        .into());
    }
    let options = TuneOptions {
        shapes: args.shapes.max(1),
        rounds: args.rounds,
        margin: args.margin,
    };
    let progress = |line: &str| eprintln!("tune: {line}");
    let report = ws.tune(&table, &options, &progress).await?;
    let path = config_file.unwrap_or_else(|| PathBuf::from("dbopt.toml"));
    if args.write {
        write_config(&path, &report.chosen)?;
    }
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, args.format);
        if args.write {
            println!("wrote the tuned keys to {}", path.display());
        } else if report.chosen != report.baseline {
            println!("run again with --write to store them");
        }
    }
    Ok(())
}

fn print_report(report: &TuneReport, format: Format) {
    let mut rows = Rows::new(&["setting", "total ms", "vs now", "errors"]);
    for t in &report.trials {
        let setting = if t.changes.is_empty() {
            "now (baseline)".to_string()
        } else {
            t.changes
                .iter()
                .map(|k| format!("{} = {}", k.key, k.value))
                .collect::<Vec<_>>()
                .join(", ")
        };
        rows.push(vec![
            setting,
            format!("{:.1}", t.total_ms),
            format!("{:.2}x", t.ratio),
            t.errors.to_string(),
        ]);
    }
    println!(
        "{} queries of {} (hottest logged shapes), median of the rounds:",
        report.queries.len(),
        report.table
    );
    print_rows(&rows, format);
    let changed: Vec<String> = report
        .chosen
        .iter()
        .zip(&report.baseline)
        .filter(|(c, b)| c.value != b.value)
        .map(|(c, b)| format!("{}: {} -> {}", c.key, b.value, c.value))
        .collect();
    if changed.is_empty() {
        println!("keep the current settings: no change beat them by the margin");
    } else {
        println!(
            "chosen: {} ({:.2}x the current total)",
            changed.join(", "),
            report.chosen_ratio
        );
    }
}
