//! `dbopt workload-sql`: print generated workload queries as JSON lines without running them.

use super::table_name;
use crate::cli::WorkloadKind;
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use dbopt::workload_sql::{WorkloadSource, WorkloadSqlOptions};
use dbopt_data::tpch_params::TpchMix;

/// `dbopt workload-sql`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  dbopt workload-sql --num-queries 100 --seed 9 > queries.jsonl\n  dbopt workload-sql --exclude-templates user_sessions,amount_duration --format sql > train.sql"
)]
pub struct WorkloadSqlArgs {
    /// Which generator: events, TPC-H (uniform) or TPC-H weighted toward selective filters.
    #[arg(long, value_enum, default_value_t = WorkloadKind::Events)]
    pub workload: WorkloadKind,
    /// The events table the queries target.
    #[arg(long, default_value = "events")]
    pub table_name: String,
    /// The customers table joins go to.
    #[arg(long, default_value = "customers")]
    pub customers_table: String,
    /// How many queries.
    #[arg(long, default_value_t = 100)]
    pub num_queries: u64,
    /// Seed of the generator (same seed, same queries as `run-workload --seed`).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Only these templates (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub only_templates: Vec<String>,
    /// Never these templates (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub exclude_templates: Vec<String>,
    /// `jsonl` ({"template","sql"} per line) or `sql` (statements ending in `;`).
    #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "sql"])]
    pub format: String,
}

/// Runs `dbopt workload-sql`.
pub fn run(ws: Workspace, args: WorkloadSqlArgs) -> Result<()> {
    let source = match args.workload {
        WorkloadKind::Events => WorkloadSource::Events,
        WorkloadKind::Tpch => WorkloadSource::Tpch(TpchMix::Uniform),
        WorkloadKind::TpchFilter => WorkloadSource::Tpch(TpchMix::FilterHeavy),
    };
    let options = WorkloadSqlOptions {
        source,
        table: table_name(&args.table_name)?,
        customers_table: table_name(&args.customers_table)?,
        num_queries: args.num_queries,
        seed: args.seed,
        only_templates: args.only_templates,
        exclude_templates: args.exclude_templates,
    };
    ws.workload_sql(&options, |q| -> Result<()> {
        if args.format == "sql" {
            println!("-- template: {}\n{};", q.template, q.sql);
        } else {
            println!("{}", serde_json::to_string(&q)?);
        }
        Ok(())
    })
}
