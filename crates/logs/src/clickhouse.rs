//! ClickHouse: rows of `system.query_log` (`type`, `event_time`, `query_duration_ms`,
//! `read_rows`, `read_bytes`, `query`, `user`, `query_id`, `tables`, `exception`).
//!
//! `type` is `QueryStart`, `QueryFinish`, `ExceptionBeforeStart` or
//! `ExceptionWhileProcessing` (1 to 4 when exported as numbers). `event_time` has no zone:
//! it is the server's, which the caller names with [`Zone`].

use crate::rows::{Row, count, names, text};
use crate::time::{Zone, timestamp_ms};
use crate::{LogRecord, Outcome};

/// One row of `system.query_log`.
pub(crate) fn query_log_row(row: &Row, zone: &Zone) -> Result<LogRecord, String> {
    let sql = text(row, "query").ok_or("no 'query' field")?;
    let kind = text(row, "type").ok_or("no 'type' field")?;
    let failure = || text(row, "exception").unwrap_or_else(|| kind.clone());
    let outcome = match kind.as_str() {
        "QueryFinish" | "2" => Outcome::Finished,
        "ExceptionBeforeStart" | "ExceptionWhileProcessing" | "3" | "4" => {
            Outcome::Failed(failure())
        }
        "QueryStart" | "1" => Outcome::Unfinished("QueryStart".into()),
        other => return Err(format!("unknown query_log type '{other}'")),
    };
    let ts_ms = match row.get("event_time") {
        Some(v) if !v.is_null() => {
            Some(timestamp_ms(v, zone).ok_or_else(|| format!("event_time {v} is not a time"))?)
        }
        _ => None,
    };
    Ok(LogRecord {
        line: 0,
        sql,
        outcome,
        ts_ms,
        elapsed_ms: count(row, "query_duration_ms").map(|ms| ms as f64),
        read_rows: count(row, "read_rows"),
        read_bytes: count(row, "read_bytes"),
        user: text(row, "user"),
        query_id: text(row, "query_id"),
        tables: names(row, "tables"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Encoding, LogFormat, detect, parse};

    const CSV: &str = "\"type\",\"event_time\",\"query_duration_ms\",\"read_rows\",\"read_bytes\",\"query\",\"tables\"\n\
        \"QueryFinish\",\"2026-11-30 11:00:00\",13,1000,19000,\"SELECT country, sum(amount) FROM events WHERE id < 100 GROUP BY country\",\"['default.events']\"\n\
        \"ExceptionBeforeStart\",\"2026-11-30 11:00:01\",0,0,0,\"SELECT nope FROM events\",\"[]\"\n";

    #[test]
    fn csv_with_names_export_in_the_servers_zone() {
        assert_eq!(detect(CSV), Some((LogFormat::Clickhouse, Encoding::Csv)));
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let log = parse(CSV, LogFormat::Clickhouse, &berlin, false).unwrap();
        let r = &log.records[0];
        assert_eq!(r.ts_ms, Some(1_796_032_800_000));
        assert_eq!(
            (r.elapsed_ms, r.read_rows, r.read_bytes),
            (Some(13.0), Some(1000), Some(19_000))
        );
        assert_eq!(r.tables, vec!["default.events"]);
        assert!(matches!(log.records[1].outcome, Outcome::Failed(_)));
    }

    #[test]
    fn unknown_type_and_bad_time_are_bad_lines() {
        let text = "{\"type\":\"Whatever\",\"event_time\":\"2026-11-30 10:00:00\",\"query\":\"SELECT 1\"}\n{\"type\":\"QueryFinish\",\"event_time\":\"noon\",\"query\":\"SELECT 1\"}\n";
        let log = parse(text, LogFormat::Clickhouse, &Zone::default(), true).unwrap();
        assert!(log.records.is_empty());
        assert_eq!(log.bad_lines.len(), 2);
        assert!(log.bad_lines[1].reason.contains("noon"));
    }
}
