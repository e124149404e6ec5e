//! `dbopt run-nyc-taxi-workload`: realistic queries over a TLC trip-record table.

use super::table_name;
use crate::cli::Format;
use crate::progress::Bar;
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;

/// `dbopt run-nyc-taxi-workload`
#[derive(Debug, Args)]
#[command(after_help = "Example:
  dbopt download-nyc-taxi --table-name nyc_taxi --year 2024 --month 1
  dbopt run-nyc-taxi-workload --table-name nyc_taxi --num-queries 300 --seed 2

Templates: pickup time windows by payment type, daily trips, pickup-zone destinations,
drop-off zone fares, zone pairs, passenger count, fare and distance ranges, top trips of a day,
and a payment-type summary. Zones are drawn Zipf-skewed from the table's busiest pickup zones;
time windows fall in the month holding most trips.")]
pub struct RunNycTaxiWorkloadArgs {
    /// The trip-record table (yellow or green schema).
    #[arg(long, default_value = "nyc_taxi")]
    pub table_name: String,
    /// How many queries to run.
    #[arg(long, default_value_t = 100)]
    pub num_queries: u64,
    /// Seed of the query generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Route each query across the table's live layouts with the --policy bandit.
    #[arg(long)]
    pub explore: bool,
    /// Epsilon-greedy's share of queries sent to a non-best layout, 0..1 (overrides
    /// EXPLORATION_RATE) [default: 0.2]
    #[arg(long)]
    pub exploration_rate: Option<String>,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt run-nyc-taxi-workload`.
pub async fn run(ws: Workspace, args: RunNycTaxiWorkloadArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let routing = super::run_workload::routing(&ws, args.explore, args.seed)?;
    let bar = Bar::queries("queries");
    let summary = ws
        .run_nyc_taxi_workload(&table, args.num_queries, args.seed, routing.as_ref(), &bar)
        .await?;
    super::run_workload::print_summary(&summary, args.format)
}
