//! `dbopt download-nyc-taxi`: fetch a month of TLC trip records and load it as a table.

use super::table_name;
use crate::output::{human_bytes, human_count};
use crate::progress::Bar;
use anyhow::Result;
use clap::{Args, ValueEnum};
use dbopt::Workspace;
use dbopt::nyc_taxi::{DEFAULT_NYC_TAXI_BASE_URL, NYC_TAXI_BASE_URL_ENV, TaxiDownloadOptions};
use dbopt_data::taxi::TaxiColor;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `dbopt download-nyc-taxi`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt download-nyc-taxi --table-name nyc_taxi --year 2024 --month 1
  dbopt download-nyc-taxi --table-name green_taxi --year 2023 --month 6 --color green

The file is fetched from $DBOPT_NYC_TAXI_BASE_URL (default https://d37ci6vzurychx.cloudfront.net/trip-data)
into DATA_DIR/_downloads/ (a broken transfer resumes with an HTTP Range request; a valid earlier
download is reused), checked to be Parquet, then loaded like `dbopt load-dataset`.")]
pub struct DownloadNycTaxiArgs {
    /// Name of the managed table to create.
    #[arg(long, default_value = "nyc_taxi")]
    pub table_name: String,
    /// Year of the trips, e.g. 2024.
    #[arg(long)]
    pub year: i32,
    /// Month of the trips, 1..12.
    #[arg(long)]
    pub month: u32,
    /// Which cabs.
    #[arg(long, value_enum, default_value_t = ColorArg::Yellow)]
    pub color: ColorArg,
    /// Overwrite the table if it exists.
    #[arg(long)]
    pub replace: bool,
}

/// The trip-record files.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ColorArg {
    /// Yellow cabs (tpep_ timestamps).
    Yellow,
    /// Green cabs (lpep_ timestamps).
    Green,
}

/// A byte-counting bar for the transfer (hidden when stderr is not a terminal).
struct ByteBar(ProgressBar);

impl dbopt::Progress for ByteBar {
    fn set_total(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self, delta: u64) {
        self.0.inc(delta);
    }
    fn message(&self, text: &str) {
        self.0.set_message(text.to_string());
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Runs `dbopt download-nyc-taxi`.
pub async fn run(ws: Workspace, args: DownloadNycTaxiArgs) -> Result<()> {
    let base_url = std::env::var(NYC_TAXI_BASE_URL_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_NYC_TAXI_BASE_URL.to_string());
    let options = TaxiDownloadOptions {
        table: table_name(&args.table_name)?,
        color: match args.color {
            ColorArg::Yellow => TaxiColor::Yellow,
            ColorArg::Green => TaxiColor::Green,
        },
        year: args.year,
        month: args.month,
        base_url,
        replace: args.replace,
    };
    let bytes = ByteBar(ProgressBar::with_draw_target(
        None,
        ProgressDrawTarget::stderr(),
    ));
    bytes.0.set_style(
        ProgressStyle::with_template(
            "downloading [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
        )?
        .progress_chars("=> "),
    );
    let rows = Bar::rows("loading");
    let r = ws.download_nyc_taxi(&options, &bytes, &rows).await?;
    let d = &r.download;
    let how = if d.reused {
        "reused the earlier download".to_string()
    } else if d.resumed {
        format!("resumed, {} requests", d.attempts)
    } else {
        format!("{} request(s)", d.attempts)
    };
    eprintln!("{}: {} ({how})", d.url, human_bytes(d.bytes));
    let l = &r.load;
    println!(
        "{}: {} rows, {} files, {} in {:.2}s ({} rows/s)",
        l.table,
        human_count(l.rows),
        l.files,
        human_bytes(l.bytes),
        l.elapsed.as_secs_f64(),
        human_count(l.rows_per_second() as u64)
    );
    Ok(())
}
