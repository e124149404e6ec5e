//! One file per command; `dispatch` resolves the configuration and runs the chosen one.

pub mod activate_layout;
pub mod adopt_layout;
pub mod analyze;
pub mod apply;
pub mod autopilot;
pub mod cache;
pub mod calibrate;
pub mod canary;
pub mod cluster;
pub mod completions;
mod config;
pub mod demo;
pub mod download_nyc_taxi;
pub mod enqueue_migration;
pub mod evaluate;
pub mod exp;
pub mod export_layout;
pub mod gc;
mod generate;
pub mod generate_tpch;
pub mod history;
pub mod import_queries;
pub mod jobs;
mod load_dataset;
pub mod migration_worker;
pub mod profile;
pub mod promote;
pub mod propose;
mod query;
pub mod query_log;
pub mod register_table;
pub mod report;
pub mod rollback;
pub mod route_bench;
pub mod run_nyc_taxi_workload;
mod run_workload;
pub mod serve;
mod spec_flags;
pub mod status;
mod tables;
pub mod tpch_validate;
pub mod tune;
pub mod whatif;
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
    if let Command::Completions(args) = &cli.command {
        // Needs no configuration: works before any dbopt.toml or catalog exists.
        return completions::run(args);
    }
    let config = resolve_config(&cli.global, extra_flags)?;
    match cli.command {
        Command::Config(cmd) => config::run(&config, cmd),
        Command::AdoptLayout(args) => adopt_layout::run(open(config)?, args).await,
        Command::RegisterTable(args) => register_table::run(open(config)?, args).await,
        Command::Analyze(args) => analyze::run(open(config)?, args).await,
        Command::Propose(args) => propose::run(open(config)?, args).await,
        Command::Whatif(args) => whatif::run(open(config)?, args).await,
        Command::ActivateLayout(args) => activate_layout::run(open(config)?, args),
        Command::Generate(args) => generate::run(open(config)?, args).await,
        Command::GenerateTpch(args) => generate_tpch::run(open(config)?, args),
        Command::TpchValidate(args) => tpch_validate::run(open(config)?, args).await,
        Command::LoadDataset(args) => load_dataset::run(open(config)?, args).await,
        Command::ExportLayout(args) => export_layout::run(open(config)?, args).await,
        Command::Query(args) => query::run(open(config)?, args).await,
        Command::Profile(args) => profile::run(open(config)?, args).await,
        Command::RunWorkload(args) => run_workload::run(open(config)?, args).await,
        Command::DownloadNycTaxi(args) => download_nyc_taxi::run(open(config)?, args).await,
        Command::ImportQueries(args) => import_queries::run(open(config)?, args),
        Command::RunNycTaxiWorkload(args) => run_nyc_taxi_workload::run(open(config)?, args).await,
        Command::Tables(args) => tables::run(open(config)?, args),
        Command::EnqueueMigration(args) => enqueue_migration::run(open(config)?, args),
        Command::Apply(args) => apply::run(open(config)?, args),
        Command::MigrationWorker(args) => migration_worker::run(open(config)?, args).await,
        Command::Gc(args) => gc::run(open(config)?, args),
        Command::WorkloadSql(args) => workload_sql::run(open(config)?, args),
        Command::Evaluate(args) => evaluate::run(open(config)?, args).await,
        Command::Canary(args) => canary::run(open(config)?, args).await,
        Command::Promote(args) => promote::run(open(config)?, args),
        Command::Rollback(args) => rollback::run(open(config)?, args),
        Command::Autopilot(args) => autopilot::run(open(config)?, args).await,
        Command::Demo(args) => demo::run(config, args).await,
        Command::Completions(args) => completions::run(&args),
        Command::Cache(args) => cache::run(args),
        Command::Exp(cmd) => exp::run(&config, cmd).await,
        Command::Cluster(cmd) => cluster::run(&config, cmd).await,
        Command::Tune(args) => tune::run(open(config)?, args, cli.global.config.clone()).await,
        Command::Calibrate(args) => calibrate::run(open(config)?, args, cli.global.config.clone()),
        Command::RouteBench(args) => route_bench::run(open(config)?, args),
        Command::Status(args) => status::run(open(config)?, args),
        Command::Jobs(args) => jobs::run(open(config)?, args),
        Command::History(args) => history::run(open(config)?, args),
        Command::QueryLog(args) => query_log::run(open(config)?, args),
        Command::Report(args) => report::run(open(config)?, args),
        Command::Serve(args) => serve::run(open(config)?, args).await,
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
        (
            "statement_timeout",
            &global.statement_timeout,
            "--statement-timeout",
        ),
        ("ballista", &global.ballista, "--ballista"),
        ("policy", &global.policy, "--policy"),
        ("objective", &global.objective, "--objective"),
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
    let ws = Workspace::open(config)?;
    // A bad policy, objective, window or weight is reported before any command runs.
    ws.loop_settings()?;
    Ok(ws)
}

/// Validates a layout id typed by the user.
/// Starts `--monitor FILE` when it was given (one sample a second).
pub fn start_monitor(
    ws: &Workspace,
    path: Option<&std::path::Path>,
) -> Result<Option<dbopt::monitor::Monitor>> {
    path.map(|p| {
        dbopt::monitor::Monitor::start(p, ws.data_dir(), std::time::Duration::from_secs(1))
    })
    .transpose()
    .map_err(Into::into)
}

/// Writes the monitor's closing report and prints its summary and recommendations.
pub fn finish_monitor(ws: &Workspace, monitor: Option<dbopt::monitor::Monitor>) {
    let Some(m) = monitor else { return };
    let r = m.finish(ws.config().memory_limit());
    eprintln!(
        "monitor: {:.1}s, peak memory {} MiB, CPU {:.0}% of every core, read {} MiB, wrote {} MiB",
        r.elapsed_s,
        r.peak_rss_bytes >> 20,
        r.cpu_utilization * 100.0,
        r.read_bytes >> 20,
        r.write_bytes >> 20
    );
    for text in &r.recommendations {
        eprintln!("monitor: {text}");
    }
}

/// Parses a layout id given on the command line.
pub fn layout_id(text: &str) -> Result<dbopt_core::LayoutId> {
    dbopt_core::LayoutId::parse(text).ok_or_else(|| {
        anyhow::Error::from(DbError::BadArgument(format!(
            "invalid layout id '{text}': use 'initial' or the hex id shown by `dbopt tables`"
        )))
    })
}

/// The pause between runs of a repeating command (`default_sec` unless --interval-sec).
pub fn interval(repeat: &crate::cli::RepeatArgs, default_sec: f64) -> Result<std::time::Duration> {
    positive_seconds(repeat.interval_sec.unwrap_or(default_sec), "--interval-sec")
}

/// Longest pause a flag may ask for (a year): `Duration::from_secs_f64` panics on huge values
/// and `Instant + pause` must not overflow.
const MAX_PAUSE_SEC: f64 = 365.0 * 86_400.0;

/// `value` seconds as a duration; zero, negative or non-finite is a bad-input error naming `flag`.
pub fn positive_seconds(value: f64, flag: &str) -> Result<std::time::Duration> {
    seconds(value, flag, false)
}

/// `value` seconds as a duration (zero allowed when `allow_zero`); a negative, non-finite or
/// over-a-year value is a bad-input error naming `flag`, never a panic.
pub fn seconds(value: f64, flag: &str, allow_zero: bool) -> Result<std::time::Duration> {
    let low_ok = if allow_zero {
        value >= 0.0
    } else {
        value > 0.0
    };
    if !(value.is_finite() && low_ok && value <= MAX_PAUSE_SEC) {
        anyhow::bail!(DbError::BadArgument(format!(
            "{flag} {value} is out of range: give a {} number of seconds up to {MAX_PAUSE_SEC} (a year)",
            if allow_zero {
                "non-negative"
            } else {
                "positive"
            }
        )));
    }
    Ok(std::time::Duration::from_secs_f64(value))
}

/// After one run: false when the command runs once, else waits `pause` and returns true
/// (false when Ctrl+C arrives first).
pub async fn next_round(repeat: &crate::cli::RepeatArgs, pause: std::time::Duration) -> bool {
    if !repeat.keep_going {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(pause) => true,
        _ = tokio::signal::ctrl_c() => false,
    }
}

/// Validates a table name typed by the user.
pub fn table_name(text: &str) -> Result<TableName> {
    Ok(TableName::new(text).map_err(DbError::from)?)
}
