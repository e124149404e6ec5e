//! dbopt-logs: other engines' query logs -> [`LogRecord`]s.
//!
//! Sits before the query log in the data flow (DESIGN.md, "imported query logs"):
//! `import-queries` hands it the text a Trino or ClickHouse server wrote (a file, or the body
//! of a live pull), and it finds the format, reads each entry's SQL with the engine's own
//! measurements (start time, elapsed time, rows and bytes read, user, query id, tables) and
//! says whether the query finished. Pure: text in, records out. It knows no catalog, engine
//! or network; the facade maps table names, applies the lookback window and logs the records.
//!
//! Formats ([`LogFormat`]), each in the encodings its engine exports ([`Encoding`]):
//! - Trino's `QueryCompletedEvent` as the HTTP event listener posts it (JSON, one per line);
//! - rows of Trino's `system.runtime.queries` (JSON lines or array, CSV with a header);
//! - ClickHouse's `system.query_log` (`JSONEachRow`, `TSVWithNames`, `CSVWithNames`).
//!
//! Guarantees: a line that is not a record of the format is an error naming its line, or,
//! with `skip_bad_lines`, a counted [`BadLine`]; a record is never guessed at.

mod clickhouse;
mod error;
mod rows;
mod time;
mod trino;

pub use error::LogError;
pub use time::Zone;

use serde::Serialize;

/// Which engine's log a text is, as the user names it in `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Trino `QueryCompletedEvent` JSON (the HTTP event listener's body), one per line.
    TrinoEvent,
    /// Rows of Trino's `system.runtime.queries`.
    TrinoQueries,
    /// Rows of ClickHouse's `system.query_log`.
    Clickhouse,
}

impl LogFormat {
    /// The engine whose SQL dialect the log's queries are written in.
    pub fn engine(self) -> Engine {
        match self {
            LogFormat::TrinoEvent | LogFormat::TrinoQueries => Engine::Trino,
            LogFormat::Clickhouse => Engine::Clickhouse,
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::TrinoEvent => "trino-event",
            LogFormat::TrinoQueries => "trino-queries",
            LogFormat::Clickhouse => "clickhouse",
        }
    }
}

/// How the records of a log are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// One JSON object per line (ClickHouse `JSONEachRow`, the Trino event listener).
    JsonLines,
    /// One JSON array of objects.
    JsonArray,
    /// Comma-separated with a header row (ClickHouse `CSVWithNames`, a Trino CSV export).
    Csv,
    /// Tab-separated with a header row and ClickHouse's escapes (`TSVWithNames`).
    Tsv,
}

/// The engine a query ran on; it names the SQL dialect to parse the query with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Trino (or Presto).
    Trino,
    /// ClickHouse.
    Clickhouse,
}

impl Engine {
    /// The lowercase name stored with each imported query.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Trino => "trino",
            Engine::Clickhouse => "clickhouse",
        }
    }
}

/// How a logged query ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    /// It finished and returned its result.
    Finished,
    /// It failed, with the engine's error.
    Failed(String),
    /// The entry is not a finished query (a start event, a query still running).
    Unfinished(String),
}

/// One query of an engine's log, with the engine's own measurements where it logged them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogRecord {
    /// 1-based line of the log where the record starts.
    pub line: usize,
    /// The SQL text as the engine received it.
    pub sql: String,
    /// How the query ended.
    pub outcome: Outcome,
    /// When it started (ms since the Unix epoch).
    pub ts_ms: Option<i64>,
    /// Elapsed wall time in ms as the engine measured it.
    pub elapsed_ms: Option<f64>,
    /// Rows the engine read from storage.
    pub read_rows: Option<u64>,
    /// Bytes the engine read from storage.
    pub read_bytes: Option<u64>,
    /// The user who ran it.
    pub user: Option<String>,
    /// The engine's query id.
    pub query_id: Option<String>,
    /// Tables the engine says the query read, qualified as the engine names them.
    pub tables: Vec<String>,
}

/// A line that is not a record of the format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    /// 1-based line.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// A parsed log: its format and encoding, its records, and the lines skipped as malformed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParsedLog {
    /// The format read.
    pub format: LogFormat,
    /// The encoding read.
    pub encoding: Encoding,
    /// The records, in log order.
    pub records: Vec<LogRecord>,
    /// Malformed lines skipped (only with `skip_bad_lines`).
    pub bad_lines: Vec<BadLine>,
}

/// Finds the format and encoding of a log from its first record; None when the text is not a
/// log this crate reads (plain SQL, for one).
pub fn detect(text: &str) -> Option<(LogFormat, Encoding)> {
    let (encoding, keys) = rows::first_keys(text)?;
    let has = |k: &str| keys.iter().any(|key| key == k);
    let format = if has("metadata") && has("statistics") {
        LogFormat::TrinoEvent
    } else if has("query_id") && has("state") && has("query") {
        LogFormat::TrinoQueries
    } else if has("query") && has("type") && (has("event_time") || has("query_duration_ms")) {
        LogFormat::Clickhouse
    } else {
        return None;
    };
    Some((format, encoding))
}

/// Parses `text` as a log of `format`; the encoding is detected. Naive timestamps are read in
/// `zone`. A malformed line is an error unless `skip_bad_lines`, which counts it and goes on.
pub fn parse(
    text: &str,
    format: LogFormat,
    zone: &Zone,
    skip_bad_lines: bool,
) -> Result<ParsedLog, LogError> {
    let encoding = rows::encoding(text).ok_or(LogError::Empty)?;
    let mut records = Vec::new();
    let mut bad_lines = Vec::new();
    for row in rows::rows(text, encoding)? {
        let result = row.and_then(|(line, row)| {
            let record = match format {
                LogFormat::TrinoEvent => trino::event(&row, zone),
                LogFormat::TrinoQueries => trino::runtime_query(&row, zone),
                LogFormat::Clickhouse => clickhouse::query_log_row(&row, zone),
            };
            record
                .map(|r| LogRecord { line, ..r })
                .map_err(|reason| BadLine { line, reason })
        });
        match result {
            Ok(record) => records.push(record),
            Err(bad) if skip_bad_lines => bad_lines.push(bad),
            Err(bad) => {
                return Err(LogError::BadLine {
                    format: format.name(),
                    line: bad.line,
                    reason: bad.reason,
                });
            }
        }
    }
    Ok(ParsedLog {
        format,
        encoding,
        records,
        bad_lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format_from_its_first_record() {
        let cases = [
            (
                r#"{"metadata":{"queryId":"q1"},"statistics":{},"context":{}}"#,
                LogFormat::TrinoEvent,
                Encoding::JsonLines,
            ),
            (
                "query_id,state,user,query\nq1,FINISHED,ann,SELECT 1\n",
                LogFormat::TrinoQueries,
                Encoding::Csv,
            ),
            (
                r#"[{"query_id":"q1","state":"FINISHED","query":"SELECT 1"}]"#,
                LogFormat::TrinoQueries,
                Encoding::JsonArray,
            ),
            (
                "type\tevent_time\tquery\nQueryFinish\t2026-11-30 10:00:00\tSELECT 1\n",
                LogFormat::Clickhouse,
                Encoding::Tsv,
            ),
            (
                r#"{"type":"QueryFinish","event_time":"2026-11-30 10:00:00","query":"SELECT 1"}"#,
                LogFormat::Clickhouse,
                Encoding::JsonLines,
            ),
        ];
        for (text, format, encoding) in cases {
            assert_eq!(detect(text), Some((format, encoding)), "{text}");
        }
        assert_eq!(detect("SELECT 1;\nSELECT 2;\n"), None);
        assert_eq!(detect(""), None);
        assert_eq!(detect(r#"{"a":1}"#), None);
    }

    #[test]
    fn a_malformed_line_is_named_or_skipped_and_counted() {
        let text = "{\"type\":\"QueryFinish\",\"event_time\":\"2026-11-30 10:00:00\",\"query\":\"SELECT 1\"}\n{not json\n{\"type\":\"QueryFinish\",\"event_time\":\"2026-11-30 10:00:01\",\"query\":\"SELECT 2\"}\n";
        let err = parse(text, LogFormat::Clickhouse, &Zone::default(), false).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let log = parse(text, LogFormat::Clickhouse, &Zone::default(), true).unwrap();
        assert_eq!(log.records.len(), 2);
        assert_eq!(log.records[1].line, 3);
        assert_eq!(log.bad_lines.len(), 1);
        assert_eq!(log.bad_lines[0].line, 2);
    }
}
