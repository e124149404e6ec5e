//! What the user typed: global options and one subcommand, before configuration is resolved.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// dbopt: watch a query workload over Parquet tables and adapt their physical layout.
#[derive(Debug, Parser)]
#[command(name = "dbopt", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// Options that apply to every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "Examples:
  dbopt demo                                   # the whole loop on 1M generated rows
  dbopt generate --table-name events --num-rows 1000000 --seed 42
  dbopt query --table-name events \"SELECT country, count(*) FROM events GROUP BY country\"
  dbopt run-workload --table-name events --num-queries 200 --explore
  dbopt autopilot --table-name events --once
  dbopt tables
  dbopt config show

Configuration: defaults < dbopt.toml (or --config FILE) < environment (DATA_DIR, METADATA_DB,
EXPLORATION_RATE, ALPHA, BETA, DBOPT_<KEY>) < flags. Exit codes: 0 ok, 1 internal failure,
2 bad input.";

/// Global options (each overrides the configuration key of the same name).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file [default: ./dbopt.toml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory holding the tables' layouts [default: data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// SQLite metadata catalog [default: metadata.db]
    #[arg(long, global = true, value_name = "FILE")]
    pub metadata_db: Option<String>,
    /// DataFusion target partitions, 0 = all cores [default: 0]
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<String>,
    /// Memory pool for queries and rewrites, e.g. 512MiB [default: 2GiB]
    #[arg(long, global = true, value_name = "BYTES")]
    pub memory_limit: Option<String>,
    /// Cancel a query running longer than this, e.g. 500ms, 30s, 5m; 0 = no limit. A
    /// cancelled query is an error with exit code 2 (raise the limit) [default: 0]
    #[arg(long, global = true, value_name = "DURATION")]
    pub statement_timeout: Option<String>,
    /// Run queries on the Apache Ballista cluster whose scheduler is at HOST:PORT (started
    /// with `dbopt cluster scheduler`); empty = in this process [default: empty]
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub ballista: Option<String>,
    /// Routing policy: epsilon-greedy, ucb1 or thompson [default: thompson]
    #[arg(long, global = true, value_name = "NAME")]
    pub policy: Option<String>,
    /// What routing and evaluation optimize: bytes or latency [default: bytes]
    #[arg(long, global = true, value_name = "NAME")]
    pub objective: Option<String>,
    /// More detail on stderr: -v debug, -vv trace, with span fields; RUST_LOG, when set, wins
    /// [default: info]
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors on stderr; RUST_LOG, when set, wins [default: off]
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// Output format of results and reports.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum Format {
    /// A table for people.
    #[default]
    Table,
    /// JSON (an array of objects for results).
    Json,
    /// CSV with a header row.
    Csv,
}

/// Row order of generated events.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum OrderArg {
    /// Roughly in time order, with late arrivals from several sources.
    #[default]
    Arrival,
    /// No order at all.
    Shuffled,
}

/// The dbopt commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register Parquet files written by another tool as a layout of a table.
    AdoptLayout(crate::commands::adopt_layout::AdoptLayoutArgs),
    /// Register a Delta Lake or Iceberg table where it is, read through its own log (no copy).
    RegisterTable(crate::commands::register_table::RegisterTableArgs),
    /// Profile a table's logged workload: column usage, selectivity, clusters, statistics.
    Analyze(crate::commands::analyze::AnalyzeArgs),
    /// Propose ranked layouts with predicted bytes scanned, rewrite cost and payback.
    Propose(crate::commands::propose::ProposeArgs),
    /// Choose the layout queries read by default.
    ActivateLayout(crate::commands::activate_layout::ActivateLayoutArgs),
    /// Show the resolved configuration and where each value came from.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run an Apache Ballista scheduler or executor (queries reach them with --ballista).
    #[command(subcommand)]
    Cluster(crate::commands::cluster::ClusterCommand),
    /// Generate the synthetic events table (and its customers dimension).
    Generate(GenerateArgs),
    /// Generate the eight TPC-H tables (tpchgen) at a scale factor.
    GenerateTpch(crate::commands::generate_tpch::GenerateTpchArgs),
    /// Check TPC-H Q1/Q6 (or others) against the scale-factor-1 reference answers.
    #[command(hide = true)]
    TpchValidate(crate::commands::tpch_validate::TpchValidateArgs),
    /// Load a Parquet or CSV file or directory as a managed table.
    LoadDataset(LoadDatasetArgs),
    /// Copy a layout to an object-storage prefix (files first, manifest last).
    ExportLayout(crate::commands::export_layout::ExportLayoutArgs),
    /// Run one read-only SQL query against managed tables and log it.
    Query(QueryArgs),
    /// Run a query and show where its time went, per operator, with advice on the bottleneck.
    Profile(crate::commands::profile::ProfileArgs),
    /// Run a generated workload of realistic queries and log each one.
    RunWorkload(RunWorkloadArgs),
    /// Download a month of NYC taxi trip records and load it as a table.
    DownloadNycTaxi(crate::commands::download_nyc_taxi::DownloadNycTaxiArgs),
    /// Log the queries of a SQL file or a Trino or ClickHouse query log without running them.
    ImportQueries(crate::commands::import_queries::ImportQueriesArgs),
    /// Run realistic NYC taxi queries against a trip-record table and log each one.
    RunNycTaxiWorkload(crate::commands::run_nyc_taxi_workload::RunNycTaxiWorkloadArgs),
    /// List managed tables with rows, size and layouts.
    Tables(TablesArgs),
    /// Predict the bytes a .sql file's queries scan on a target layout, without rewriting.
    Whatif(crate::commands::whatif::WhatIfArgs),
    /// Plan a rewrite of a table into a new layout and queue it as a migration job.
    EnqueueMigration(crate::commands::enqueue_migration::EnqueueMigrationArgs),
    /// Queue the migration a reviewed table spec file (tables/<table>.toml) asks for.
    Apply(crate::commands::apply::ApplyArgs),
    /// Claim queued migration jobs; rewrite, verify and publish them.
    MigrationWorker(crate::commands::migration_worker::MigrationWorkerArgs),
    /// Remove orphaned staging and layouts that were not kept.
    Gc(crate::commands::gc::GcArgs),
    /// Print generated workload queries (JSON lines or SQL) without running them.
    WorkloadSql(crate::commands::workload_sql::WorkloadSqlArgs),
    /// Score each live layout per query cluster over a rolling window.
    Evaluate(crate::commands::evaluate::EvaluateArgs),
    /// Replay the hottest logged query shapes on a candidate layout and the active one.
    Canary(crate::commands::canary::CanaryArgs),
    /// Make a candidate layout the active one (compare-and-swap).
    Promote(crate::commands::promote::PromoteArgs),
    /// Make the previously active layout (or --to) active again.
    Rollback(crate::commands::rollback::RollbackArgs),
    /// Analyze, propose, rewrite, canary, promote, evaluate, roll back and retire, in one pass.
    Autopilot(crate::commands::autopilot::AutopilotArgs),
    /// The whole loop on generated data in a fresh directory, with before/after figures.
    Demo(crate::commands::demo::DemoArgs),
    /// Per layout of a table: state, cost, savings, reward, traffic; jobs; last decision.
    Status(crate::commands::status::StatusArgs),
    /// List migration jobs with progress, lease, attempts, error and measured cost.
    Jobs(crate::commands::jobs::JobsArgs),
    /// The time series of a table's layout evaluations.
    History(crate::commands::history::HistoryArgs),
    /// List logged queries with their layout, latency, bytes scanned, pruning and error.
    QueryLog(crate::commands::query_log::QueryLogArgs),
    /// Write a shareable report directory: summary.md, CSV, JSON and SVG charts.
    Report(crate::commands::report::ReportArgs),
    /// Serve /metrics and /healthz; optionally run autopilot and the migration worker too.
    Serve(crate::commands::serve::ServeArgs),
    /// Fit the what-if model's file and row-group prices to this machine from logged latencies.
    Calibrate(crate::commands::calibrate::CalibrateArgs),
    /// Measure engine settings on the hottest logged queries; --write stores the fastest.
    Tune(crate::commands::tune::TuneArgs),
    /// The column-chunk cache of a running `dbopt serve`: stats, clear, warm.
    Cache(crate::commands::cache::CacheArgs),
    /// Layout experiments as a reproducible store: write, views, query, info, convert, run.
    #[command(subcommand)]
    Exp(crate::commands::exp::ExpCommand),
    /// Print the shell completion script for dbopt (bash, zsh, fish, powershell, elvish).
    Completions(crate::commands::completions::CompletionsArgs),
    /// Time routing decisions and their catalog writes (for the benchmark).
    #[command(hide = true)]
    RouteBench(crate::commands::route_bench::RouteBenchArgs),
}

/// Run once, or again every `--interval-sec` until stopped (`evaluate`, `autopilot`).
#[derive(Debug, Args)]
pub struct RepeatArgs {
    /// Run once and stop (the default).
    #[arg(long, conflicts_with = "keep_going")]
    pub once: bool,
    /// Run again every --interval-sec until stopped with Ctrl+C.
    #[arg(long = "loop")]
    pub keep_going: bool,
    /// Seconds between runs with --loop [default: 60 for evaluate, 300 for autopilot]
    #[arg(long, value_name = "S")]
    pub interval_sec: Option<f64>,
}

/// `dbopt config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every configuration key, its value and its source.
    Show(ShowConfigArgs),
}

/// `dbopt config show`
#[derive(Debug, Args)]
pub struct ShowConfigArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `dbopt generate`
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  dbopt generate --table-name events --num-rows 10000000 --seed 7 --order shuffled"
)]
pub struct GenerateArgs {
    /// Name of the events table.
    #[arg(long, default_value = "events")]
    pub table_name: String,
    /// Name of the customers dimension table generated beside it.
    #[arg(long, default_value = "customers")]
    pub customers_table: String,
    /// Number of event rows.
    #[arg(long, default_value_t = 1_000_000)]
    pub num_rows: u64,
    /// Random seed: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Physical row order of the initial layout.
    #[arg(long, value_enum, default_value_t = OrderArg::Arrival)]
    pub order: OrderArg,
    /// Overwrite the tables if they exist (their other layouts are dropped).
    #[arg(long)]
    pub replace: bool,
    /// Rows per Parquet file [default: 4194304]
    #[arg(long)]
    pub rows_per_file: Option<u64>,
    /// Rows per row group [default: 131072]
    #[arg(long)]
    pub row_group_rows: Option<usize>,
    /// Write checkpoints, samples (memory, CPU, IO, disk) and a closing report to FILE (JSON lines).
    #[arg(long, value_name = "FILE")]
    pub monitor: Option<PathBuf>,
}

/// `dbopt load-dataset`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  dbopt load-dataset --table-name trips --source-path ./trips.parquet\n  dbopt load-dataset --table-name sales --source-path ./exports/   # *.csv or hive-partitioned *.parquet\n  AWS_ENDPOINT_URL=http://127.0.0.1:9000 dbopt load-dataset --table-name events --source-path s3://lake/events/\n\nObject storage: credentials, region and endpoint come from the standard variables\n(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION [default us-east-1], AWS_ENDPOINT_URL;\nGOOGLE_SERVICE_ACCOUNT; AZURE_STORAGE_ACCOUNT_NAME, ...). An http:// S3 endpoint is used\nwithout TLS, path-style."
)]
pub struct LoadDatasetArgs {
    /// Name of the managed table to create.
    #[arg(long)]
    pub table_name: String,
    /// A Parquet file, a CSV file, or a directory of either (hive partitions are read); or an
    /// object-storage prefix of them: s3://bucket/prefix/, gs://..., az://...
    #[arg(long)]
    pub source_path: PathBuf,
    /// Overwrite the table if it exists.
    #[arg(long)]
    pub replace: bool,
    /// Write checkpoints, samples (memory, CPU, IO, disk) and a closing report to FILE (JSON lines).
    #[arg(long, value_name = "FILE")]
    pub monitor: Option<PathBuf>,
}

/// `dbopt query`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  dbopt query --table-name events \"SELECT count(*) FROM events WHERE event_date = DATE '2025-03-01'\"\n  dbopt query --table-name events --format json \"SELECT e.country, c.segment, count(*) FROM events e JOIN customers c USING (customer_id) GROUP BY 1, 2\""
)]
pub struct QueryArgs {
    /// The table the query is logged against (other managed tables can be joined).
    #[arg(long)]
    pub table_name: String,
    /// Read this layout of the table (no routing).
    #[arg(long)]
    pub layout: Option<String>,
    /// Read the active layout instead of routing across the table's live layouts.
    #[arg(long, conflicts_with = "layout")]
    pub no_route: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// After the result, show where the time went and advice (see `dbopt profile`).
    #[arg(long)]
    pub profile: bool,
    /// The SQL (SELECT, WITH or EXPLAIN).
    pub sql: String,
}

/// `dbopt run-workload`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  dbopt run-workload --table-name events --num-queries 500 --seed 3\n  dbopt run-workload --table-name events --num-queries 500 --explore --policy ucb1\n  dbopt run-workload --table-name events --exclude-templates user_sessions,amount_duration"
)]
pub struct RunWorkloadArgs {
    /// The events table to run against.
    #[arg(long, default_value = "events")]
    pub table_name: String,
    /// The customers table joins go to.
    #[arg(long, default_value = "customers")]
    pub customers_table: String,
    /// Which generated workload: the events templates, TPC-H's 22 queries, or TPC-H weighted
    /// toward selective lineitem/orders filters (TPC-H ignores --table-name).
    #[arg(long, value_enum, default_value_t = WorkloadKind::Events)]
    pub workload: WorkloadKind,
    /// How many queries to run.
    #[arg(long, default_value_t = 100)]
    pub num_queries: u64,
    /// Seed of the query generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run the queries of a .sql file (in order) or draw from a .toml template file instead of
    /// a generated workload; see README "Workload files".
    #[arg(long, value_name = "FILE", conflicts_with = "workload")]
    pub workload_file: Option<PathBuf>,
    /// With a .sql --workload-file: draw --num-queries statements at random (--seed) instead
    /// of replaying the file once in order.
    #[arg(long, requires = "workload_file")]
    pub sample: bool,
    /// Route each query across the table's live layouts with the --policy bandit (without it
    /// every query reads the active layout).
    #[arg(long)]
    pub explore: bool,
    /// Epsilon-greedy's share of queries sent to a non-best layout, 0..1 (overrides
    /// EXPLORATION_RATE) [default: 0.2]
    #[arg(long)]
    pub exploration_rate: Option<String>,
    /// Events templates never drawn, comma separated (hold shapes out of a training run).
    #[arg(long, value_delimiter = ',')]
    pub exclude_templates: Vec<String>,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// The generated workloads `run-workload` can draw from.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum WorkloadKind {
    /// Queries over the generated events table and its customers dimension.
    #[default]
    Events,
    /// The 22 TPC-H queries, equally often, with parameters drawn per the specification.
    Tpch,
    /// TPC-H with Q6, Q14, Q4, Q12, Q3, Q10, Q15, Q1, Q5, Q19, Q7 weighted up (~83%).
    TpchFilter,
}

/// `dbopt tables`
#[derive(Debug, Args)]
pub struct TablesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}
