//! Trino: the `QueryCompletedEvent` the HTTP event listener posts, and rows of
//! `system.runtime.queries`.
//!
//! The event's fields are those of Trino's SPI (`io.trino.spi.eventlistener`): `metadata`
//! (`queryId`, `query`, `queryState`), `statistics` (`wallTime`, `physicalInputRows`,
//! `physicalInputBytes`, or `totalRows` / `totalBytes` in older releases), `context`
//! (`user`), `ioMetadata.inputs` (`catalogName`, `schema`, `table`), `failureInfo`, and
//! `createTime` / `endTime`.

use crate::rows::{Row, count, text};
use crate::time::{Zone, duration_ms, timestamp_ms};
use crate::{LogRecord, Outcome};
use serde_json::Value;

/// One `QueryCompletedEvent`.
pub(crate) fn event(row: &Row, zone: &Zone) -> Result<LogRecord, String> {
    let metadata = object(row, "metadata")?;
    let statistics = object(row, "statistics")?;
    let sql = text(metadata, "query").ok_or("no metadata.query")?;
    let failure = row.get("failureInfo").and_then(Value::as_object).map(|f| {
        text(f, "failureMessage")
            .or_else(|| {
                f.get("errorCode")
                    .and_then(Value::as_object)
                    .and_then(|c| text(c, "name"))
            })
            .unwrap_or_else(|| "failed".into())
    });
    let state = text(metadata, "queryState").unwrap_or_else(|| "FINISHED".into());
    let outcome = match (failure, state.as_str()) {
        (Some(message), _) => Outcome::Failed(message),
        (None, "FINISHED") => Outcome::Finished,
        (None, "FAILED") => Outcome::Failed("FAILED".into()),
        (None, other) => Outcome::Unfinished(other.to_string()),
    };
    let created = row.get("createTime").and_then(|v| timestamp_ms(v, zone));
    let ended = row.get("endTime").and_then(|v| timestamp_ms(v, zone));
    let elapsed_ms = statistics
        .get("wallTime")
        .and_then(duration_ms)
        .or_else(|| Some((ended? - created?) as f64));
    let read_rows =
        count(statistics, "physicalInputRows").or_else(|| count(statistics, "totalRows"));
    let read_bytes =
        count(statistics, "physicalInputBytes").or_else(|| count(statistics, "totalBytes"));
    Ok(LogRecord {
        line: 0,
        sql,
        outcome,
        ts_ms: created,
        elapsed_ms,
        read_rows,
        read_bytes,
        user: row
            .get("context")
            .and_then(Value::as_object)
            .and_then(|c| text(c, "user")),
        query_id: text(metadata, "queryId"),
        tables: input_tables(row),
    })
}

fn object<'a>(row: &'a Row, key: &str) -> Result<&'a Row, String> {
    row.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| format!("no '{key}' object"))
}

/// `catalog.schema.table` of each input the event lists.
fn input_tables(row: &Row) -> Vec<String> {
    let inputs = row
        .get("ioMetadata")
        .and_then(|io| io.get("inputs"))
        .and_then(Value::as_array);
    inputs
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter_map(|i| {
            let parts: Vec<String> = ["catalogName", "schema", "table"]
                .iter()
                .filter_map(|k| text(i, k))
                .collect();
            (!parts.is_empty()).then(|| parts.join("."))
        })
        .collect()
}

/// One row of `system.runtime.queries` (`query_id`, `state`, `user`, `query`, `created`,
/// `started`, `end`, `error_type`, `error_code`).
pub(crate) fn runtime_query(row: &Row, zone: &Zone) -> Result<LogRecord, String> {
    let sql = text(row, "query").ok_or("no 'query' field")?;
    let state = text(row, "state").ok_or("no 'state' field")?;
    let outcome = match (text(row, "error_code"), state.as_str()) {
        (Some(code), _) => Outcome::Failed(code),
        (None, "FINISHED") => Outcome::Finished,
        (None, "FAILED") => Outcome::Failed("FAILED".into()),
        (None, other) => Outcome::Unfinished(other.to_string()),
    };
    let created = row.get("created").and_then(|v| timestamp_ms(v, zone));
    let ended = row.get("end").and_then(|v| timestamp_ms(v, zone));
    Ok(LogRecord {
        line: 0,
        sql,
        outcome,
        ts_ms: created,
        elapsed_ms: match (created, ended) {
            (Some(c), Some(e)) => Some((e - c) as f64),
            _ => None,
        },
        read_rows: None,
        read_bytes: None,
        user: text(row, "user"),
        query_id: text(row, "query_id"),
        tables: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LogFormat, parse};

    #[test]
    fn completed_event_keeps_the_engines_measurements() {
        let line = r#"{"metadata":{"queryId":"20261130_100000_00001_abcde","transactionId":"t","query":"SELECT count(*) FROM iceberg.curated.events WHERE country = 'DE'","queryState":"FINISHED","tables":[],"routines":[],"uri":"http://trino:8080/v1/query/x"},"statistics":{"cpuTime":"PT0.4S","wallTime":"PT1.25S","queuedTime":"PT0.01S","physicalInputBytes":123456,"physicalInputRows":1000,"totalRows":1000,"totalBytes":123456,"outputRows":1},"context":{"user":"ann","source":"trino-cli","catalog":"iceberg","schema":"curated"},"ioMetadata":{"inputs":[{"catalogName":"iceberg","schema":"curated","table":"events","columns":[{"column":"country"}]}]},"failureInfo":null,"warnings":[],"createTime":"2026-11-30T10:00:00.000Z","executionStartTime":"2026-11-30T10:00:00.050Z","endTime":"2026-11-30T10:00:01.250Z"}"#;
        let log = parse(line, LogFormat::TrinoEvent, &Zone::default(), false).unwrap();
        let r = &log.records[0];
        assert_eq!(r.outcome, Outcome::Finished);
        assert_eq!(r.ts_ms, Some(1_796_032_800_000));
        assert_eq!(r.elapsed_ms, Some(1250.0));
        assert_eq!((r.read_rows, r.read_bytes), (Some(1000), Some(123_456)));
        assert_eq!(r.user.as_deref(), Some("ann"));
        assert_eq!(r.tables, vec!["iceberg.curated.events"]);
        assert_eq!(r.line, 1);
    }

    #[test]
    fn failed_event_carries_its_message() {
        let line = r#"{"metadata":{"queryId":"q2","query":"SELECT nope FROM events","queryState":"FAILED"},"statistics":{"wallTime":0.02},"context":{"user":"bob"},"failureInfo":{"errorCode":{"code":47,"name":"COLUMN_NOT_FOUND","type":"USER_ERROR"},"failureMessage":"line 1:8: Column 'nope' cannot be resolved"},"createTime":1796032800.0}"#;
        let log = parse(line, LogFormat::TrinoEvent, &Zone::default(), false).unwrap();
        assert_eq!(
            log.records[0].outcome,
            Outcome::Failed("line 1:8: Column 'nope' cannot be resolved".into())
        );
        assert_eq!(log.records[0].elapsed_ms, Some(20.0));
    }

    #[test]
    fn runtime_queries_csv_rows() {
        let text = "query_id,state,user,source,query,resource_group_id,queued_time_ms,analysis_time_ms,planning_time_ms,created,started,last_heartbeat,end,error_type,error_code\n\
            q1,FINISHED,ann,cli,SELECT 1,global,1,2,3,2026-11-30 10:00:00.000 UTC,2026-11-30 10:00:00.010 UTC,2026-11-30 10:00:00.500 UTC,2026-11-30 10:00:00.500 UTC,,\n\
            q2,FAILED,ann,cli,SELECT x,global,1,2,3,2026-11-30 10:00:01.000 UTC,,,2026-11-30 10:00:01.100 UTC,USER_ERROR,COLUMN_NOT_FOUND\n\
            q3,RUNNING,bob,cli,SELECT 2,global,1,2,3,2026-11-30 10:00:02.000 UTC,,,,,\n";
        let log = parse(text, LogFormat::TrinoQueries, &Zone::default(), false).unwrap();
        let outcomes: Vec<_> = log.records.iter().map(|r| r.outcome.clone()).collect();
        assert_eq!(
            outcomes,
            vec![
                Outcome::Finished,
                Outcome::Failed("COLUMN_NOT_FOUND".into()),
                Outcome::Unfinished("RUNNING".into())
            ]
        );
        assert_eq!(log.records[0].elapsed_ms, Some(500.0));
        assert_eq!(log.records[0].ts_ms, Some(1_796_032_800_000));
        assert_eq!(log.records[2].elapsed_ms, None);
    }
}
