//! `dbopt import-queries`: log the queries of a SQL file or of a Trino or ClickHouse query
//! log without running them.

use super::table_name;
use crate::cli::Format;
use crate::output::{Rows, print_rows};
use anyhow::Result;
use clap::{Args, ValueEnum};
use dbopt::analyze::parse_duration_ms;
use dbopt::import::{Dialect, ImportFormat, ImportInput, ImportOptions, LogFormat, Zone};
use dbopt::pull::{PullOptions, PullSource, pull};
use dbopt::{DbError, Workspace};
use dbopt_core::TableName;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Skipped queries listed on stderr before the rest are only counted.
const LISTED_SKIPS: usize = 10;

/// `--format` of `import-queries`: what the input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// Detect a Trino or ClickHouse log from its first record; otherwise read SQL.
    Auto,
    /// Statements separated by ';' (a DuckDB or psql history, a hand-made file).
    Sql,
    /// Trino `QueryCompletedEvent` JSON, one per line (the HTTP event listener's body).
    TrinoEvent,
    /// Rows of Trino's `system.runtime.queries` (JSON lines or array, or CSV with a header).
    TrinoQueries,
    /// ClickHouse `system.query_log` (JSONEachRow, TSVWithNames or CSVWithNames).
    Clickhouse,
}

/// `--dialect`: the SQL dialect the queries are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DialectArg {
    /// DataFusion's own (sqlparser's generic dialect).
    Generic,
    /// Trino and Presto.
    Trino,
    /// ClickHouse.
    Clickhouse,
    /// DuckDB.
    Duckdb,
    /// PostgreSQL.
    Postgres,
}

/// `dbopt import-queries`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["file", "from"])))]
#[command(after_help = "Examples:
  dbopt import-queries --table-name events --file ./queries.sql
  dbopt import-queries --file query_log.tsv --table-map default.events=events --timezone Europe/Berlin
  dbopt import-queries --file trino-events.jsonl --table-map iceberg.curated.events=events --since 30d
  dbopt import-queries --from clickhouse://ch.internal:8123 --table-map analytics.events=events
  TRINO_HOST=coordinator dbopt import-queries --from trino --table-map iceberg.curated.events=events

Live pulls (--from) read ClickHouse's system.query_log over its HTTP interface and Trino's
system.runtime.queries over its REST protocol, for the --since window. Host, port and catalog
come from the URL or from CLICKHOUSE_HOST, CLICKHOUSE_PORT (8123), TRINO_HOST, TRINO_PORT
(8080), TRINO_CATALOG (iceberg); passwords only from CLICKHOUSE_PASSWORD / TRINO_PASSWORD.

Formats (--format auto detects them from the first record):
  sql            statements separated by ';' (--dialect duckdb for a DuckDB history)
  trino-event    Trino QueryCompletedEvent JSON lines, as the HTTP event listener posts them
  trino-queries  rows of Trino's system.runtime.queries, as JSON or CSV with a header
  clickhouse     ClickHouse system.query_log as JSONEachRow, TSVWithNames or CSVWithNames

Each finished read-only query is logged with origin 'imported', its template fingerprint, the
time it ran and the engine's own figures (elapsed ms, rows and bytes read, user, query id); it
is not executed. Queries are parsed in the engine's SQL dialect; one that DataFusion cannot
plan is still analyzed from its syntax tree. Engine table names are mapped onto managed tables
with --table-map (without it, by the last part of the name). Left out and counted: DDL and
DML, failed and unfinished queries, queries of other tables, queries before the --since
window, and queries whose id was imported before. In a .sql file, a statement that does not
parse refuses the file with its line; in a log, a malformed line refuses the log unless
--skip-bad-lines. Nothing is logged unless the whole input was read.")]
pub struct ImportQueriesArgs {
    /// The file to import.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Pull the log from a live server: clickhouse://HOST:PORT or trino://HOST:PORT/CATALOG
    /// (or a bare clickhouse / trino with the host from the environment).
    #[arg(long, conflicts_with_all = ["format", "timezone", "skip_bad_lines"])]
    pub from: Option<String>,
    /// User for --from [default: ClickHouse's `default`, Trino's `dbopt`; or CLICKHOUSE_USER /
    /// TRINO_USER].
    #[arg(long, requires = "from")]
    pub user: Option<String>,
    /// Longest wait for each answer of a --from server, e.g. 30s.
    #[arg(long, default_value = "30s", requires = "from")]
    pub timeout: String,
    /// Log only queries reading this table (default: each query against the first managed
    /// table it reads).
    #[arg(long)]
    pub table_name: Option<String>,
    /// What the file is.
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    pub format: InputFormat,
    /// SQL dialect of the queries [default: the engine's; generic for sql].
    #[arg(long, value_enum)]
    pub dialect: Option<DialectArg>,
    /// Engine table name = managed table, e.g. iceberg.curated.events=events (repeat, or
    /// separate with commas).
    #[arg(long, value_delimiter = ',')]
    pub table_map: Vec<String>,
    /// Keep queries that started within this long before now, e.g. 7d, 24h, or 'all'
    /// [default: lookback_days of the config, 7].
    #[arg(long)]
    pub since: Option<String>,
    /// Zone of timestamps written without one (ClickHouse's event_time is the server's).
    #[arg(long, default_value = "UTC")]
    pub timezone: String,
    /// Skip and count malformed log lines instead of refusing the log.
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// Output format of the report.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Runs `dbopt import-queries`.
pub fn run(ws: Workspace, args: ImportQueriesArgs) -> Result<()> {
    let since_ms = since_ms(&ws, args.since.as_deref())?;
    let (input, format) = match (&args.file, &args.from) {
        (Some(file), _) => (ImportInput::File(file.clone()), import_format(args.format)),
        (None, Some(from)) => pulled(from, &args, since_ms)?,
        (None, None) => unreachable!("clap requires --file or --from"),
    };
    let options = ImportOptions {
        input,
        table: args.table_name.as_deref().map(table_name).transpose()?,
        format,
        dialect: args.dialect.map(dialect),
        table_map: table_map(&args.table_map)?,
        since_ms,
        zone: Zone::parse(&args.timezone).ok_or_else(|| {
            DbError::BadArgument(format!(
                "--timezone {}: not a time zone name; give an IANA name such as UTC or Europe/Berlin",
                args.timezone
            ))
        })?,
        skip_bad_lines: args.skip_bad_lines,
    };
    let report = ws.import_queries(&options)?;
    // Start rows, running queries and repeats are expected in any log: counted, not listed.
    let notable: Vec<_> = report
        .skipped
        .iter()
        .filter(|s| !matches!(s.kind, "unfinished" | "already_imported"))
        .collect();
    for s in notable.iter().take(LISTED_SKIPS) {
        eprintln!(
            "skipped {}:{}: {}: {}",
            report.file, s.line, s.kind, s.reason
        );
    }
    if notable.len() > LISTED_SKIPS {
        eprintln!(
            "... and {} more skipped (--output json lists them all)",
            notable.len() - LISTED_SKIPS
        );
    }
    if args.output == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let mut rows = Rows::new(&["metric", "value"]);
    rows.push(vec!["format".into(), report.format.clone()]);
    rows.push(vec!["dialect".into(), report.dialect.clone()]);
    rows.push(vec!["imported".into(), report.imported.to_string()]);
    for (table, n) in &report.by_table {
        rows.push(vec![format!("imported into {table}"), n.to_string()]);
    }
    rows.push(vec![
        "distinct fingerprints".into(),
        report.fingerprints.to_string(),
    ]);
    rows.push(vec!["skipped".into(), report.skipped.len().to_string()]);
    for (kind, n) in &report.skipped_counts {
        rows.push(vec![format!("skipped: {kind}"), n.to_string()]);
    }
    print_rows(&rows, args.output);
    Ok(())
}

/// Pulls the log `--from` names; the text and its format.
fn pulled(
    from: &str,
    args: &ImportQueriesArgs,
    since_ms: Option<i64>,
) -> Result<(ImportInput, ImportFormat)> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let source = PullSource::parse(from, &env)?;
    let (user_key, password_key) = match source {
        PullSource::Clickhouse { .. } => ("CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD"),
        PullSource::Trino { .. } => ("TRINO_USER", "TRINO_PASSWORD"),
    };
    let timeout_ms = parse_duration_ms(&args.timeout)?;
    let options = PullOptions {
        source: source.clone(),
        user: args.user.clone().or_else(|| env.get(user_key).cloned()),
        password: env.get(password_key).cloned(),
        since_ms,
        timeout: Duration::from_millis(u64::try_from(timeout_ms.max(1)).unwrap_or(1)),
    };
    eprintln!("pulling the query log from {}", source.label());
    let text = pull(&options)?;
    Ok((
        ImportInput::Text {
            label: source.label(),
            text,
        },
        ImportFormat::Log(source.format()),
    ))
}

fn import_format(format: InputFormat) -> ImportFormat {
    match format {
        InputFormat::Auto => ImportFormat::Auto,
        InputFormat::Sql => ImportFormat::Sql,
        InputFormat::TrinoEvent => ImportFormat::Log(LogFormat::TrinoEvent),
        InputFormat::TrinoQueries => ImportFormat::Log(LogFormat::TrinoQueries),
        InputFormat::Clickhouse => ImportFormat::Log(LogFormat::Clickhouse),
    }
}

fn dialect(d: DialectArg) -> Dialect {
    match d {
        DialectArg::Generic => Dialect::Generic,
        DialectArg::Trino => Dialect::Trino,
        DialectArg::Clickhouse => Dialect::Clickhouse,
        DialectArg::Duckdb => Dialect::Duckdb,
        DialectArg::Postgres => Dialect::Postgres,
    }
}

/// `NAME=TABLE` pairs.
fn table_map(pairs: &[String]) -> Result<Vec<(String, TableName)>> {
    pairs
        .iter()
        .map(|pair| {
            let (name, table) = pair.split_once('=').ok_or_else(|| {
                DbError::BadArgument(format!(
                    "--table-map {pair}: write ENGINE_NAME=TABLE, e.g. iceberg.curated.events=events"
                ))
            })?;
            Ok((name.trim().to_string(), table_name(table.trim())?))
        })
        .collect()
}

/// `--since`: a duration before now, `all`, or the configured lookback.
fn since_ms(ws: &Workspace, since: Option<&str>) -> Result<Option<i64>> {
    match since {
        Some("all") => Ok(None),
        Some(text) => super::analyze::since_ms(ws, Some(text)),
        None => {
            let days = i64::try_from(ws.config().lookback_days()).unwrap_or(i64::MAX / 86_400_000);
            Ok(Some(
                ws.clock()
                    .now_ms()
                    .saturating_sub(days.saturating_mul(86_400_000)),
            ))
        }
    }
}
