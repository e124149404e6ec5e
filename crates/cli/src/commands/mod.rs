//! One file per command; `dispatch` resolves the configuration and runs the chosen one.

pub mod activate_layout;
pub mod adopt_layout;
pub mod analyze;
mod config;
pub mod download_nyc_taxi;
pub mod enqueue_migration;
pub mod gc;
mod generate;
pub mod generate_tpch;
pub mod import_queries;
mod load_dataset;
pub mod migration_worker;
pub mod propose;
mod query;
pub mod run_nyc_taxi_workload;
mod run_workload;
mod tables;
pub mod tpch_validate;
pub mod workload_sql;

use crate::cli::{Cli, Command, GlobalArgs};
use anyhow::Result;
use dbopt::{DbError, Workspace};
use dbopt_core::{Config, TableName};
use std::collections::BTreeMap;

/// Runs the parsed command line.
pub async fn dispatch(cli: Cli) -> Result<()> {
    let mut extra_flags: Vec<(&str, String, &str)> = Vec::new();
    if let Command::RunWorkload(args) = &cli.command
        && let Some(rate) = &args.exploration_rate
    {
        extra_flags.push(("exploration_rate", rate.clone(), "--exploration-rate"));
    }
    if let Command::RunNycTaxiWorkload(args) = &cli.command
        && let Some(rate) = &args.exploration_rate
    {
        extra_flags.push(("exploration_rate", rate.clone(), "--exploration-rate"));
    }
    let config = resolve_config(&cli.global, extra_flags)?;
    match cli.command {
        Command::Config(cmd) => config::run(&config, cmd),
        Command::AdoptLayout(args) => adopt_layout::run(open(config)?, args).await,
        Command::Analyze(args) => analyze::run(open(config)?, args).await,
        Command::Propose(args) => propose::run(open(config)?, args).await,
        Command::ActivateLayout(args) => activate_layout::run(open(config)?, args),
        Command::Generate(args) => generate::run(open(config)?, args).await,
        Command::GenerateTpch(args) => generate_tpch::run(open(config)?, args).await,
        Command::TpchValidate(args) => tpch_validate::run(open(config)?, args).await,
        Command::LoadDataset(args) => load_dataset::run(open(config)?, args).await,
        Command::Query(args) => query::run(open(config)?, args).await,
        Command::RunWorkload(args) => run_workload::run(open(config)?, args).await,
        Command::DownloadNycTaxi(args) => download_nyc_taxi::run(open(config)?, args).await,
        Command::ImportQueries(args) => import_queries::run(open(config)?, args).await,
        Command::RunNycTaxiWorkload(args) => run_nyc_taxi_workload::run(open(config)?, args).await,
        Command::Tables(args) => tables::run(open(config)?, args),
        Command::EnqueueMigration(args) => enqueue_migration::run(open(config)?, args),
        Command::MigrationWorker(args) => migration_worker::run(open(config)?, args).await,
        Command::Gc(args) => gc::run(open(config)?, args),
        Command::WorkloadSql(args) => workload_sql::run(open(config)?, args),
    }
}

fn resolve_config<'a>(
    global: &'a GlobalArgs,
    mut flags: Vec<(&'a str, String, &'a str)>,
) -> Result<Config> {
    let pairs = [
        ("data_dir", &global.data_dir, "--data-dir"),
        ("metadata_db", &global.metadata_db, "--metadata-db"),
        ("threads", &global.threads, "--threads"),
        ("memory_limit", &global.memory_limit, "--memory-limit"),
    ];
    for (key, value, flag) in pairs {
        if let Some(v) = value {
            flags.push((key, v.clone(), flag));
        }
    }
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let cwd = std::env::current_dir()?;
    Ok(Config::resolve(&cwd, global.config.as_deref(), &env, &flags).map_err(DbError::from)?)
}

fn open(config: Config) -> Result<Workspace> {
    Ok(Workspace::open(config)?)
}

/// Validates a table name typed by the user.
pub fn table_name(text: &str) -> Result<TableName> {
    Ok(TableName::new(text).map_err(DbError::from)?)
}
