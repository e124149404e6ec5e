//! `import-queries`: logs queries that ran elsewhere (a `.sql` file, a Trino or ClickHouse
//! query log) without running them, marked as imported, so a workload that runs in another
//! engine can be analyzed here.
//!
//! Steps: read the text; find its format (`dbopt_logs::detect`, or `.sql`); parse each query
//! in its engine's dialect; map the engine's table names onto managed tables (`--table-map`,
//! else by the last part of the name); keep finished, read-only queries of managed tables
//! inside the lookback window that were not imported before (by the engine's query id); log
//! them in one transaction with the engine's measurements beside them. Everything left out is
//! counted by reason.
//!
//! Guarantees: nothing is logged unless the whole input was read (an unreadable log line is
//! an error naming it unless `skip_bad_lines`; in a `.sql` file, a statement that does not
//! parse refuses the file); an import is one transaction; importing the same log twice logs
//! its queries once.

use crate::workload_file::read_user_file;
use crate::{DbError, Workspace};
use dbopt_catalog::{QueryLogEntry, QueryOrigin, QuerySource};
use dbopt_core::{ScanMetrics, TableName};
use dbopt_data::workload_spec::split_sql;
use dbopt_engine::{EngineError, translate};
use dbopt_logs::{LogRecord, Outcome};

pub use dbopt_engine::Dialect;
pub use dbopt_logs::{LogFormat, Zone};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

/// The format of an import, as `--format` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// Detect a log format from the first record, else read plain SQL.
    Auto,
    /// Statements separated by `;`.
    Sql,
    /// An engine's query log.
    Log(LogFormat),
}

/// Where the text of an import comes from.
#[derive(Debug, Clone)]
pub enum ImportInput {
    /// A file on disk.
    File(PathBuf),
    /// Text already fetched (a live pull), with a label for the report and the log.
    Text {
        /// Names the input in the report and as the queries' workload, e.g. `clickhouse://host`.
        label: String,
        /// The log's text.
        text: String,
    },
}

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The input.
    pub input: ImportInput,
    /// Only queries reading this table are logged (None: each query against the first
    /// managed table it reads).
    pub table: Option<TableName>,
    /// The input's format.
    pub format: ImportFormat,
    /// The SQL dialect of the queries (None: the engine's own, generic for `.sql`).
    pub dialect: Option<Dialect>,
    /// Engine table names (qualified, e.g. `iceberg.curated.events`) -> managed tables.
    pub table_map: Vec<(String, TableName)>,
    /// Queries that started before this time (ms since the epoch) are left out.
    pub since_ms: Option<i64>,
    /// The zone of timestamps written without one (ClickHouse's `event_time`).
    pub zone: Zone,
    /// Skip and count malformed log lines instead of refusing the log.
    pub skip_bad_lines: bool,
}

/// A query that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedStatement {
    /// 1-based line where it starts.
    pub line: usize,
    /// Why it was left out (one of [`SkipReason`]'s names).
    pub kind: &'static str,
    /// The details.
    pub reason: String,
}

/// Why a query of the input was not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SkipReason {
    /// DDL or DML.
    NotReadOnly,
    /// The engine reports that it failed.
    Failed,
    /// A start event, or a query still running.
    Unfinished,
    /// It reads no managed table (or not the one asked for).
    OtherTables,
    /// It started before the lookback window.
    OutsideWindow,
    /// Its query id was imported before.
    AlreadyImported,
    /// Its SQL does not parse in the dialect.
    Unparsed,
    /// A malformed log line (with `skip_bad_lines`).
    BadLine,
}

impl SkipReason {
    /// The reason's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::NotReadOnly => "not_read_only",
            SkipReason::Failed => "failed",
            SkipReason::Unfinished => "unfinished",
            SkipReason::OtherTables => "other_tables",
            SkipReason::OutsideWindow => "outside_window",
            SkipReason::AlreadyImported => "already_imported",
            SkipReason::Unparsed => "unparsed",
            SkipReason::BadLine => "bad_line",
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The input imported (file path or live source).
    pub file: String,
    /// The format read: `sql`, `trino-event`, `trino-queries` or `clickhouse`.
    pub format: String,
    /// The SQL dialect the queries were parsed in.
    pub dialect: String,
    /// The table the queries were logged against (when one was asked for).
    pub table: Option<String>,
    /// Queries logged.
    pub imported: u64,
    /// Queries logged per managed table.
    pub by_table: BTreeMap<String, u64>,
    /// Distinct template fingerprints among them.
    pub fingerprints: u64,
    /// Queries left out, per reason.
    pub skipped_counts: BTreeMap<&'static str, u64>,
    /// Every query left out, with its line.
    pub skipped: Vec<SkippedStatement>,
}

/// One query of the input, whatever its format.
struct Candidate {
    line: usize,
    sql: String,
    record: Option<LogRecord>,
}

impl Workspace {
    /// Logs the queries of `options.input` unexecuted (see the module documentation).
    pub fn import_queries(&self, options: &ImportOptions) -> Result<ImportReport, DbError> {
        if let Some(table) = &options.table {
            self.require_table(table)?;
        }
        let managed: BTreeSet<String> = self
            .catalog()
            .list_tables()?
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        for (name, table) in &options.table_map {
            if !managed.contains(table.as_str()) {
                return Err(DbError::BadArgument(format!(
                    "--table-map {name}={table}: '{table}' is not a managed table; load or register it first (`dbopt tables` lists them)"
                )));
            }
        }
        let (label, text) = match &options.input {
            ImportInput::File(path) => (
                path.display().to_string(),
                read_user_file(path, "query file")?,
            ),
            ImportInput::Text { label, text } => (label.clone(), text.clone()),
        };
        let mut skipped = Vec::new();
        let input = read_input(&label, &text, options, &mut skipped)?;
        let (format, engine) = (input.format, input.engine);
        let dialect = options.dialect.unwrap_or(match engine {
            "trino" => Dialect::Trino,
            "clickhouse" => Dialect::Clickhouse,
            _ => Dialect::Generic,
        });
        let known_ids = self.catalog().imported_query_ids(engine)?;
        let resolver = Resolver {
            managed: &managed,
            map: &options.table_map,
        };
        let now = self.clock().now_ms();
        let mut entries = Vec::new();
        let mut seen_ids: HashSet<String> = HashSet::new();
        for c in input.candidates {
            let decision = admit(&c, options, dialect, &resolver, &known_ids, &mut seen_ids);
            match decision {
                Err((reason, detail)) => {
                    if format == "sql" && reason == SkipReason::Unparsed {
                        return Err(DbError::BadFile(format!(
                            "{label}:{}: {detail}; fix the statement and import again (nothing was imported)",
                            c.line
                        )));
                    }
                    skipped.push(skip(c.line, reason, detail));
                }
                Ok((table, query)) => {
                    let source = QuerySource {
                        engine: engine.to_string(),
                        dialect: dialect.name().to_string(),
                        query_id: c.record.as_ref().and_then(|r| r.query_id.clone()),
                        user: c.record.as_ref().and_then(|r| r.user.clone()),
                        elapsed_ms: c.record.as_ref().and_then(|r| r.elapsed_ms),
                        read_rows: c.record.as_ref().and_then(|r| r.read_rows),
                        read_bytes: c.record.as_ref().and_then(|r| r.read_bytes),
                    };
                    let ts_ms = c.record.as_ref().and_then(|r| r.ts_ms).unwrap_or(now);
                    entries.push(log_entry(table, query, ts_ms, source, &label));
                }
            }
        }
        // One transaction: an interrupted import leaves nothing half-imported.
        self.catalog().log_queries(&entries)?;
        let mut by_table = BTreeMap::new();
        for e in &entries {
            *by_table.entry(e.table.to_string()).or_insert(0) += 1;
        }
        let mut skipped_counts = BTreeMap::new();
        for s in &skipped {
            *skipped_counts.entry(s.kind).or_insert(0) += 1;
        }
        skipped.sort_by_key(|s| s.line);
        Ok(ImportReport {
            file: label,
            format: format.to_string(),
            dialect: dialect.name().to_string(),
            table: options.table.as_ref().map(ToString::to_string),
            imported: entries.len() as u64,
            by_table,
            fingerprints: entries
                .iter()
                .map(|e| e.fingerprint.as_str())
                .collect::<BTreeSet<_>>()
                .len() as u64,
            skipped_counts,
            skipped,
        })
    }
}

/// The table a candidate is logged against and its translated query, or why it is left out.
fn admit(
    c: &Candidate,
    options: &ImportOptions,
    dialect: Dialect,
    resolver: &Resolver<'_>,
    known_ids: &HashSet<String>,
    seen_ids: &mut HashSet<String>,
) -> Result<(TableName, dbopt_engine::ForeignQuery), (SkipReason, String)> {
    if let Some(record) = &c.record {
        match &record.outcome {
            Outcome::Finished => {}
            Outcome::Failed(message) => {
                return Err((SkipReason::Failed, dbopt_core::text::first_line(message)));
            }
            Outcome::Unfinished(state) => {
                return Err((SkipReason::Unfinished, state.clone()));
            }
        }
        if let (Some(since), Some(ts)) = (options.since_ms, record.ts_ms)
            && ts < since
        {
            return Err((
                SkipReason::OutsideWindow,
                "started before the --since window".into(),
            ));
        }
        if let Some(id) = &record.query_id
            && (known_ids.contains(id) || !seen_ids.insert(id.clone()))
        {
            return Err((SkipReason::AlreadyImported, format!("query id {id}")));
        }
    }
    let query =
        translate(&c.sql, dialect, |parts| resolver.resolve(parts)).map_err(|e| match e {
            EngineError::NotReadOnly(reason) => (
                SkipReason::NotReadOnly,
                reason
                    .split_once(" is not a read-only query")
                    .map_or(reason.clone(), |(kind, _)| {
                        format!("{kind} is not a read-only query")
                    }),
            ),
            // Engines log writes without their data (`INSERT INTO t VALUES `): still a write.
            _ if c.record.is_some() && writes(&c.sql) => (
                SkipReason::NotReadOnly,
                format!("{} is not a read-only query", leading_word(&c.sql)),
            ),
            other => (
                SkipReason::Unparsed,
                format!("does not parse as {} SQL: {other}", dialect.name()),
            ),
        })?;
    let table = match &options.table {
        Some(t) if query.tables.iter().any(|q| q == t.as_str()) => t.clone(),
        Some(t) => {
            return Err((SkipReason::OtherTables, other_tables(&query, Some(t))));
        }
        None => match query.tables.first() {
            Some(first) => {
                TableName::new(first).map_err(|e| (SkipReason::OtherTables, e.to_string()))?
            }
            None => return Err((SkipReason::OtherTables, other_tables(&query, None))),
        },
    };
    Ok((table, query))
}

/// The queries of an input, with its format's name and its engine.
struct Input {
    format: &'static str,
    engine: &'static str,
    candidates: Vec<Candidate>,
}

/// Finds the input's format and reads its queries; malformed log lines skipped under
/// `skip_bad_lines` go to `skipped`.
fn read_input(
    label: &str,
    text: &str,
    options: &ImportOptions,
    skipped: &mut Vec<SkippedStatement>,
) -> Result<Input, DbError> {
    let format = match options.format {
        ImportFormat::Auto => dbopt_logs::detect(text).map(|(f, _)| ImportFormat::Log(f)),
        other => Some(other),
    };
    let format = match format {
        Some(f) => f,
        None if looks_like_sql(text) => ImportFormat::Sql,
        None => {
            return Err(DbError::BadFile(format!(
                "{label}: cannot tell the format: not a Trino or ClickHouse query log and not SQL; pass --format (sql, trino-event, trino-queries, clickhouse)"
            )));
        }
    };
    let ImportFormat::Log(log_format) = format else {
        return Ok(Input {
            format: "sql",
            engine: "sql",
            candidates: sql_candidates(label, text)?,
        });
    };
    let log = dbopt_logs::parse(text, log_format, &options.zone, options.skip_bad_lines)
        .map_err(|e| DbError::BadFile(format!("{label}: {e}")))?;
    for bad in log.bad_lines {
        skipped.push(skip(bad.line, SkipReason::BadLine, bad.reason));
    }
    Ok(Input {
        format: log_format.name(),
        engine: log_format.engine().name(),
        candidates: log
            .records
            .into_iter()
            .map(|r| Candidate {
                line: r.line,
                sql: r.sql.clone(),
                record: Some(r),
            })
            .collect(),
    })
}

/// The query-log row of an admitted query: unexecuted, with the engine's figures in `source`.
fn log_entry(
    table: TableName,
    query: dbopt_engine::ForeignQuery,
    ts_ms: i64,
    source: QuerySource,
    label: &str,
) -> QueryLogEntry {
    QueryLogEntry {
        ts_ms,
        table,
        layout_id: None,
        sql: query.sql,
        fingerprint: query.fingerprint.hash,
        cluster_id: None,
        latency_ms: f64::NAN,
        rows_returned: 0,
        metrics: ScanMetrics::default(),
        result_digest: None,
        error: None,
        origin: QueryOrigin::Imported,
        workload: Some(workload_label(label)),
        scans: Vec::new(),
        route: None,
        source: Some(source),
        pushdown: None,
    }
}

/// Maps an engine's table names onto managed tables.
struct Resolver<'a> {
    managed: &'a BTreeSet<String>,
    map: &'a [(String, TableName)],
}

impl Resolver<'_> {
    /// With a table map, the entry whose name ends with `parts` (or that `parts` ends with);
    /// without one, the managed table named like the last part.
    fn resolve(&self, parts: &[String]) -> Option<String> {
        if self.map.is_empty() {
            return parts
                .last()
                .filter(|name| self.managed.contains(name.as_str()))
                .cloned();
        }
        let wanted: Vec<String> = parts.iter().map(|p| p.to_lowercase()).collect();
        self.map
            .iter()
            .find(|(name, _)| {
                let key: Vec<String> = name.split('.').map(str::to_lowercase).collect();
                key.ends_with(&wanted) || wanted.ends_with(&key)
            })
            .map(|(_, table)| table.to_string())
    }
}

fn other_tables(query: &dbopt_engine::ForeignQuery, wanted: Option<&TableName>) -> String {
    let names = if query.unresolved.is_empty() {
        query.tables.join(", ")
    } else {
        query.unresolved.join(", ")
    };
    match wanted {
        Some(t) => {
            format!("does not read '{t}' (reads {names}); map engine names with --table-map")
        }
        None if names.is_empty() => "reads no table".into(),
        None => format!("reads no managed table ({names}); map engine names with --table-map"),
    }
}

fn leading_word(sql: &str) -> String {
    sql.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// Whether a statement starts like DDL or DML.
fn writes(sql: &str) -> bool {
    const WRITES: [&str; 12] = [
        "INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "DROP", "ALTER", "TRUNCATE", "RENAME",
        "OPTIMIZE", "SYSTEM", "GRANT",
    ];
    WRITES.contains(&leading_word(sql).as_str())
}

fn skip(line: usize, reason: SkipReason, detail: String) -> SkippedStatement {
    SkippedStatement {
        line,
        kind: reason.name(),
        reason: detail,
    }
}

/// The statements of a `.sql` file as candidates.
fn sql_candidates(label: &str, text: &str) -> Result<Vec<Candidate>, DbError> {
    let statements = split_sql(text);
    if statements.is_empty() {
        return Err(DbError::BadFile(format!(
            "{label}: no SQL statements: separate queries with ';'"
        )));
    }
    Ok(statements
        .into_iter()
        .map(|s| Candidate {
            line: s.line,
            sql: s.sql,
            record: None,
        })
        .collect())
}

/// Whether text that is no known log reads as SQL: its first statement starts with a SQL
/// keyword.
fn looks_like_sql(text: &str) -> bool {
    const STARTS: [&str; 16] = [
        "SELECT", "WITH", "EXPLAIN", "FROM", "VALUES", "TABLE", "(", "INSERT", "UPDATE", "DELETE",
        "CREATE", "DROP", "ALTER", "SHOW", "DESCRIBE", "SET",
    ];
    split_sql(text).into_iter().next().is_some_and(|s| {
        let upper = s.sql.trim_start().to_ascii_uppercase();
        STARTS.iter().any(|k| {
            upper.starts_with(k)
                && upper[k.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_')
        })
    })
}

/// The workload label of imported queries: a file's name, or the live source.
fn workload_label(label: &str) -> String {
    std::path::Path::new(label)
        .file_name()
        .filter(|_| !label.contains("://"))
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| label.to_string())
}
