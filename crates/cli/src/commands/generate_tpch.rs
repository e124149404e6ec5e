//! `dbopt generate-tpch`: the eight TPC-H tables from tpchgen as managed tables.

use crate::output::{human_bytes, human_count, print_initial_layout};
use crate::progress::Bar;
use anyhow::Result;
use clap::Args;
use dbopt::tpch::TpchGenerateOptions;
use dbopt::{DbError, Workspace};
use dbopt_data::DataError;
use dbopt_data::tpch::TpchTable;

/// `dbopt generate-tpch`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  dbopt generate-tpch --scale-factor 1\n  dbopt generate-tpch --scale-factor 10 --tables lineitem,orders --replace\n\nTables: nation, region, part, supplier, partsupp, customer, orders, lineitem (their TPC-H names).\nGeneration uses --threads workers (0 = every core); the same scale factor gives the same rows."
)]
pub struct GenerateTpchArgs {
    /// TPC-H scale factor, above 0 (1 = about 6 million lineitem rows, 1 GB of raw data).
    #[arg(long, allow_hyphen_values = true)]
    pub scale_factor: String,
    /// Comma-separated tables to generate [default: all eight]
    #[arg(long)]
    pub tables: Option<String>,
    /// Overwrite tables that exist (their other layouts are dropped).
    #[arg(long)]
    pub replace: bool,
}

/// Runs `dbopt generate-tpch`.
pub fn run(ws: Workspace, args: GenerateTpchArgs) -> Result<()> {
    let scale_factor: f64 = args
        .scale_factor
        .trim()
        .parse()
        .map_err(|_| DbError::from(DataError::InvalidScaleFactor(args.scale_factor.clone())))?;
    let tables = match &args.tables {
        Some(list) => TpchTable::parse_list(list).map_err(DbError::from)?,
        None => Vec::new(),
    };
    let options = TpchGenerateOptions {
        scale_factor,
        tables,
        replace: args.replace,
        threads: None,
    };
    let bar = Bar::rows("generating");
    let report = ws.generate_tpch(&options, &bar)?;
    for r in &report.tables {
        print_initial_layout(r);
    }
    let secs = report.elapsed.as_secs_f64();
    println!(
        "TPC-H scale factor {scale_factor}: {} rows in {} tables, {} in {secs:.2}s ({} rows/s)",
        human_count(report.rows()),
        report.tables.len(),
        human_bytes(report.tables.iter().map(|t| t.bytes).sum()),
        human_count((report.rows() as f64 / secs.max(1e-9)) as u64)
    );
    Ok(())
}
