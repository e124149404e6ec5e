//! The report directory: every file, valid CSV/JSON/SVG, escaping, and the refusal and
//! replacement rules of `write_report`.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use dbopt_report::report::REPORT_FILES;
use dbopt_report::{HistoryRow, ReportError, ReportOptions, write_report};

const SVGS: [&str; 4] = [
    "latency_over_time.svg",
    "bytes_scanned.svg",
    "traffic_share.svg",
    "predicted_vs_measured.svg",
];
const QUERY_LAYOUTS: [&str; 3] = ["L0-initial", "L1-sorted", common::HOSTILE];

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn write(dir: &Path, force: bool) -> Result<dbopt_report::WrittenReport, ReportError> {
    write_report(dir, &common::bundle(), &ReportOptions { force })
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        files.insert(path.clone(), fs::read(&path).expect("read file"));
    }
    files
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).expect("report file")
}

fn csv_records(text: &str) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().expect("csv header").clone();
    let records = reader.records().map(|r| r.expect("csv record")).collect();
    (header, records)
}

/// All text of the SVG's `<text>` elements.
fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("SVG is well-formed XML");
    doc.descendants()
        .filter(|node| node.has_tag_name("text"))
        .filter_map(|node| node.text())
        .map(|text| text.trim().to_string())
        .collect()
}

/// Distinct colours (`fill` or `stroke`) of the SVG's elements with this tag, ignoring the
/// black, white and gray of axes, frames and backgrounds.
fn series_colors(svg: &str, tag: &str, attribute: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("SVG is well-formed XML");
    let mut colors: Vec<String> = doc
        .descendants()
        .filter(|node| node.has_tag_name(tag))
        .filter_map(|node| node.attribute(attribute))
        .filter(|color| !["#000000", "#FFFFFF", "none"].contains(color))
        .map(str::to_string)
        .collect();
    colors.sort();
    colors.dedup();
    colors
}

fn count(svg: &str, tag: &str) -> usize {
    let doc = roxmltree::Document::parse(svg).expect("SVG is well-formed XML");
    doc.descendants()
        .filter(|node| node.has_tag_name(tag))
        .count()
}

#[test]
fn writes_every_file() {
    let tmp = temp();
    let dir = tmp.path().join("report");
    let written = write(&dir, false).expect("report written");
    assert_eq!(written.dir, dir);
    let expected: Vec<PathBuf> = REPORT_FILES.iter().map(|name| dir.join(name)).collect();
    assert_eq!(written.files, expected);
    for file in &written.files {
        assert!(file.is_file(), "{} missing", file.display());
    }
    assert_eq!(
        entries(tmp.path()),
        vec!["report".to_string()],
        "no staging left behind"
    );
}

#[test]
fn csv_files_parse_with_expected_rows() {
    let tmp = temp();
    let dir = tmp.path().join("report");
    write(&dir, false).expect("report written");
    let expected = [
        ("layout_eval.csv", 4, 11),
        ("query_routing_summary.csv", 3, 7),
        ("proposals.csv", 3, 15),
    ];
    for (name, rows, columns) in expected {
        let (header, records) = csv_records(&read(&dir, name));
        assert_eq!(records.len(), rows, "{name}");
        assert_eq!(header.len(), columns, "{name}");
        assert!(
            records.iter().all(|record| record.len() == columns),
            "{name}"
        );
    }
    let (header, records) = csv_records(&read(&dir, "proposals.csv"));
    let predicted = header
        .iter()
        .position(|h| h == "predicted_reduction")
        .expect("column");
    assert_eq!(
        header.get(predicted + 2),
        Some("measured_reduction"),
        "measured beside predicted"
    );
    assert_eq!(
        &records[2][predicted + 2],
        "",
        "unmeasured proposal has an empty cell"
    );
}

#[test]
fn json_holds_the_history_rows() {
    let tmp = temp();
    let dir = tmp.path().join("report");
    write(&dir, false).expect("report written");
    let rows: Vec<HistoryRow> =
        serde_json::from_str(&read(&dir, "layout_eval.json")).expect("json");
    assert_eq!(rows, common::history());
}

#[test]
fn query_charts_plot_one_series_per_layout() {
    let tmp = temp();
    let dir = tmp.path().join("report");
    write(&dir, false).expect("report written");
    for name in [
        "latency_over_time.svg",
        "bytes_scanned.svg",
        "traffic_share.svg",
    ] {
        let svg = read(&dir, name);
        let texts = svg_texts(&svg);
        for layout in QUERY_LAYOUTS {
            assert!(
                texts.iter().any(|t| t == layout),
                "{name}: legend lacks {layout}: {texts:?}"
            );
        }
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("time since 2023-11-14 22:13:20 UTC")),
            "{name}"
        );
        assert_eq!(
            series_colors(&svg, "circle", "fill").len(),
            3,
            "{name}: one colour per layout"
        );
    }
    let latency = read(&dir, "latency_over_time.svg");
    assert_eq!(
        count(&latency, "circle"),
        90 + 3,
        "every query plus one legend mark per layout"
    );
    let traffic = read(&dir, "traffic_share.svg");
    assert!(count(&traffic, "polyline") >= 3);
    assert_eq!(series_colors(&traffic, "polyline", "stroke").len(), 3);
}

#[test]
fn proposal_chart_shows_predicted_beside_measured() {
    let tmp = temp();
    let dir = tmp.path().join("report");
    write(&dir, false).expect("report written");
    let svg = read(&dir, "predicted_vs_measured.svg");
    let texts = svg_texts(&svg);
    for label in [
        "predicted",
        "measured",
        "L1-sorted (#1)",
        "a|b*_<x> (#2)",
        "L3-unbuilt (#3)",
    ] {
        assert!(
            texts.iter().any(|t| t == label),
            "missing {label}: {texts:?}"
        );
    }
    let bar_colors = series_colors(&svg, "rect", "fill");
    assert_eq!(
        bar_colors.len(),
        2,
        "predicted and measured colours: {bar_colors:?}"
    );
    // 3 predicted + 2 measured bars + 2 legend marks, besides background and legend box.
    let bars = roxmltree::Document::parse(&svg)
        .expect("xml")
        .descendants()
        .filter(|n| {
            n.has_tag_name("rect")
                && bar_colors
                    .iter()
                    .any(|c| Some(c.as_str()) == n.attribute("fill"))
        })
        .count();
    assert_eq!(bars, 3 + 2 + 2);
}

#[test]
fn summary_links_charts_and_escapes_strings() {
    let tmp = temp();
    let dir = tmp.path().join("report");
    write(&dir, false).expect("report written");
    let summary = read(&dir, "summary.md");
    for svg in SVGS {
        assert!(summary.contains(&format!("]({svg})")), "no link to {svg}");
    }
    assert!(summary.contains(r"a\|b\*\_\<x\>"));
    assert!(!summary.contains(common::HOSTILE), "raw hostile id leaked");
    assert!(
        summary.contains("SELECT \\* FROM events WHERE user\\_id = 1"),
        "SQL is escaped, one line"
    );
    assert!(
        summary.contains("disk full while writing"),
        "newlines become spaces"
    );
    for heading in [
        "## Observed",
        "## Proposed",
        "## Built",
        "## Measured",
        "## Decided",
        "## Status",
    ] {
        assert!(summary.contains(heading), "missing {heading}");
    }
}

#[test]
fn summary_omits_sql_unless_given() {
    let tmp = temp();
    let dir = tmp.path().join("report");
    let mut bundle = common::bundle();
    bundle
        .observed
        .top_templates
        .iter_mut()
        .for_each(|t| t.sql = None);
    write_report(&dir, &bundle, &ReportOptions::default()).expect("report written");
    let summary = read(&dir, "summary.md");
    assert!(!summary.contains("SELECT"));
    assert!(!summary.contains("Sample SQL"));
}

#[test]
fn refuses_a_non_empty_dir_and_leaves_it_unchanged() {
    let tmp = temp();
    let dir = tmp.path().join("report");
    write(&dir, false).expect("first report");
    let before = snapshot(&dir);
    let error = write_report(&dir, &common::empty_bundle(), &ReportOptions::default())
        .expect_err("second write refused");
    assert!(
        matches!(&error, ReportError::DirNotEmpty(path) if path == &dir),
        "{error:?}"
    );
    assert!(error.is_user_error());
    let message = error.to_string();
    assert!(message.contains("--out") && message.contains("--force") && !message.contains('\n'));
    assert_eq!(snapshot(&dir), before, "first report changed");
    assert_eq!(entries(tmp.path()), vec!["report".to_string()]);
}

#[test]
fn force_replaces_an_existing_report() {
    let tmp = temp();
    let dir = tmp.path().join("report");
    fs::create_dir(&dir).expect("dir");
    fs::write(dir.join("old-notes.txt"), "old").expect("old file");
    write(&dir, true).expect("forced report");
    let mut expected: Vec<String> = REPORT_FILES
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    expected.sort();
    assert_eq!(
        entries(&dir),
        expected,
        "old contents removed, new report complete"
    );
    assert_eq!(
        entries(tmp.path()),
        vec!["report".to_string()],
        "no old or staging dir left"
    );
}

#[test]
fn writes_into_an_existing_empty_dir_without_force() {
    let tmp = temp();
    let dir = tmp.path().join("report");
    fs::create_dir(&dir).expect("dir");
    write(&dir, false).expect("report into empty dir");
    assert_eq!(entries(&dir).len(), REPORT_FILES.len());
}

#[test]
fn creates_missing_parent_dirs() {
    let tmp = temp();
    let dir = tmp.path().join("a").join("b").join("report");
    write(&dir, false).expect("report written");
    assert!(dir.join("summary.md").is_file());
    assert_eq!(
        entries(&tmp.path().join("a").join("b")),
        vec!["report".to_string()]
    );
}

#[test]
fn refuses_a_file_and_writes_nothing() {
    let tmp = temp();
    let file = tmp.path().join("report");
    fs::write(&file, "not a dir").expect("file");
    for force in [false, true] {
        let error = write(&file, force).expect_err("file refused");
        assert!(
            matches!(&error, ReportError::NotADirectory(path) if path == &file),
            "{error:?}"
        );
        assert!(error.is_user_error());
        assert!(error.to_string().contains("--out"));
    }
    assert_eq!(fs::read_to_string(&file).expect("file"), "not a dir");
    assert_eq!(entries(tmp.path()), vec!["report".to_string()]);
}

#[test]
fn io_errors_are_not_user_errors() {
    let error = ReportError::Io {
        path: "x".into(),
        source: std::io::Error::other("boom"),
    };
    assert!(!error.is_user_error());
    assert!(!ReportError::Chart("x".into()).is_user_error());
}

#[test]
fn empty_bundle_still_writes_valid_files() {
    let tmp = temp();
    let dir = tmp.path().join("report");
    write_report(&dir, &common::empty_bundle(), &ReportOptions::default()).expect("report");
    for svg in SVGS {
        let texts = svg_texts(&read(&dir, svg));
        assert!(texts.iter().any(|t| t == "no data"), "{svg}: {texts:?}");
    }
    for name in [
        "layout_eval.csv",
        "query_routing_summary.csv",
        "proposals.csv",
    ] {
        let (header, records) = csv_records(&read(&dir, name));
        assert!(!header.is_empty() && records.is_empty(), "{name}");
    }
    assert_eq!(read(&dir, "layout_eval.json").trim(), "[]");
    assert!(read(&dir, "summary.md").contains("No layouts proposed."));
}
