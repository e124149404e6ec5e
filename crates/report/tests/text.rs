//! Snapshot tests of the terminal renderers, the CSV history and the JSON models.

mod common;

use dbopt_report::{
    HistoryRow, JobRow, LayoutState, StatusReport, Style, history_csv, history_text, jobs_csv,
    jobs_text, status_text, table_text,
};

/// Plain output must be pipe-safe: ASCII only (no box drawing) and no escape codes.
fn assert_pipe_safe(text: &str) {
    assert!(!text.contains('\x1b'), "escape code in:\n{text}");
    assert!(text.is_ascii(), "non-ASCII character in:\n{text}");
    assert!(
        text.lines().all(|line| line == line.trim_end()),
        "trailing spaces in:\n{text}"
    );
}

#[test]
fn status_plain() {
    let text = status_text(&common::status_report(), Style::Plain);
    assert_pipe_safe(&text);
    insta::assert_snapshot!(text);
}

#[test]
fn status_plain_with_empty_sections() {
    let text = status_text(&common::empty_status(), Style::Plain);
    assert_pipe_safe(&text);
    assert!(text.contains("no queued or running migration jobs"));
    insta::assert_snapshot!(text);
}

#[test]
fn jobs_plain() {
    let text = jobs_text(&common::all_jobs(), Style::Plain);
    assert_pipe_safe(&text);
    insta::assert_snapshot!(text);
}

#[test]
fn history_plain() {
    let text = history_text(&common::history(), Style::Plain);
    assert_pipe_safe(&text);
    insta::assert_snapshot!(text);
}

#[test]
fn empty_lists_say_so() {
    assert_eq!(jobs_text(&[], Style::Plain), "no migration jobs\n");
    assert_eq!(history_text(&[], Style::Pretty), "no evaluations yet\n");
}

#[test]
fn status_json() {
    let json = serde_json::to_string_pretty(&common::status_report()).expect("serializes");
    let back: StatusReport = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, common::status_report());
    insta::assert_snapshot!(json);
}

#[test]
fn jobs_json() {
    let json = serde_json::to_string_pretty(&common::all_jobs()).expect("serializes");
    let back: Vec<JobRow> = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, common::all_jobs());
    insta::assert_snapshot!(json);
}

#[test]
fn history_json() {
    let json = serde_json::to_string_pretty(&common::history()).expect("serializes");
    let back: Vec<HistoryRow> = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, common::history());
    insta::assert_snapshot!(json);
}

#[test]
fn layout_state_is_lowercase_in_text_and_json() {
    assert_eq!(LayoutState::Building.to_string(), "building");
    let json = serde_json::to_string(&LayoutState::Retired).expect("serializes");
    assert_eq!(json, "\"retired\"");
}

#[test]
fn history_csv_has_header_and_raw_numbers() {
    let text = history_csv(&common::history());
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().expect("header").clone();
    assert_eq!(&header[0], "window_end_ms");
    assert_eq!(header.len(), 11);
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    assert_eq!(records.len(), 4);
    assert_eq!(&records[0][0], "1700000300000");
    assert_eq!(&records[0][3], "", "a missing reward is an empty cell");
    assert_eq!(&records[3][1], common::HOSTILE);
    assert_eq!(history_csv(&[]).lines().count(), 1);
}

#[test]
fn plain_table_aligns_columns_with_two_spaces() {
    let rows = vec![
        vec!["1".to_string(), "a long name".to_string(), "x".to_string()],
        vec!["22".to_string(), String::new(), "line\nbreak".to_string()],
    ];
    let text = table_text(&["id", "name", "note"], &rows, Style::Plain);
    let expected = "id  name         note\n1   a long name  x\n22  -            line break\n";
    assert_eq!(text, expected);
}

#[test]
fn plain_output_strips_escape_codes_from_values() {
    let mut status = common::status_report();
    status.layouts[0].layout_id = "evil\x1b[31mred".into();
    status.table = "t\x1b]0;title\x07".into();
    assert_pipe_safe(&status_text(&status, Style::Plain));
}

#[test]
fn pretty_tables_draw_boxes_without_escape_codes() {
    let text = status_text(&common::status_report(), Style::Pretty);
    assert!(text.contains('┆') || text.contains('│'));
    assert!(!text.contains('\x1b'));
}

#[test]
fn jobs_csv_has_header_and_one_record_per_job() {
    let text = jobs_csv(&common::all_jobs());
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().expect("header").clone();
    assert_eq!(header.len(), 18);
    assert_eq!(&header[10], "last_error");
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    assert_eq!(records.len(), 4);
    assert_eq!(
        &records[1][10], "disk full\nwhile writing",
        "CSV quotes, does not flatten"
    );
    assert_eq!(jobs_csv(&[]).lines().count(), 1);
}
