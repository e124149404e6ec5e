//! `dbopt calibrate`: fit the what-if model's per-file and per-row-group prices to this
//! machine from the latencies in the query log; with `--write`, store them in the
//! configuration file.

use super::analyze::since_ms;
use super::table_name;
use crate::cli::Format;
use crate::output::{Rows, print_rows};
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use dbopt::calibrate::write_prices;
use std::path::PathBuf;

/// `dbopt calibrate`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt calibrate --table-name events                 # fit and show, change nothing
  dbopt calibrate --table-name events --write         # store the prices in ./dbopt.toml
  dbopt calibrate --table-name events --since 7d --format json

Fits latency = fixed + a*bytes + b*row groups + c*files (every coefficient non-negative) to
the logged queries that scanned the table alone and succeeded; the prices propose and whatif
use are b/a (row_group_price_bytes) and c/a (file_price_bytes), in bytes scanned. The page
price is not in the query log and is kept. Needs at least 20 such queries that read more and
less of the table. --write stores the keys in the configuration file (--config, or
./dbopt.toml), keeping its other keys.")]
pub struct CalibrateArgs {
    /// The table whose logged queries are fitted.
    #[arg(long)]
    pub table_name: String,
    /// Only queries logged within this long ago, e.g. 24h or 7d [default: all]
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Store the calibrated prices in the configuration file.
    #[arg(long)]
    pub write: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt calibrate`; `config_file` is `--config` when given.
pub fn run(ws: Workspace, args: CalibrateArgs, config_file: Option<PathBuf>) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let since = since_ms(&ws, args.since.as_deref())?;
    let report = ws.calibrate(&table, since)?;
    let path = config_file.unwrap_or_else(|| PathBuf::from("dbopt.toml"));
    if args.write {
        write_prices(&path, &report.calibrated)?;
    }
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let f = &report.fit;
    let term = |ms: Option<f64>, what: &str| {
        ms.map_or(format!("{what}: not measured (kept)"), |ms| {
            format!("{ms:.4} ms per {what}")
        })
    };
    println!(
        "{}: {} single-table queries fitted ({} left out): {:.2} ms + {:.3} ms per MiB, {}, {}; R² {:.2}",
        report.table,
        f.queries,
        report.queries_skipped,
        f.fixed_ms,
        f.ms_per_byte * 1_048_576.0,
        term(f.ms_per_row_group, "row group"),
        term(f.ms_per_file, "file"),
        f.r_squared,
    );
    if f.r_squared < 0.5 {
        println!(
            "the fit explains {:.0}% of the latency variance: queries that read more and less of the table give a firmer answer",
            f.r_squared * 100.0
        );
    }
    let mut rows = Rows::new(&["price (bytes)", "now", "calibrated"]);
    let (now, new) = (&report.current, &report.calibrated);
    for (name, a, b) in [
        ("file_price_bytes", now.file, new.file),
        ("row_group_price_bytes", now.row_group, new.row_group),
        ("page_price_bytes", now.page, new.page),
    ] {
        rows.push(vec![name.into(), format!("{a:.0}"), format!("{b:.0}")]);
    }
    print_rows(&rows, args.format);
    if args.write {
        println!("wrote the prices to {}", path.display());
    } else {
        println!("run again with --write to store them");
    }
    Ok(())
}
