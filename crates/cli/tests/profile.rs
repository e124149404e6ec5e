//! `dbopt profile` names the dominant work of a join-bound and a scan-bound query, and long
//! jobs write their `--monitor` file; `load-dataset` reports CSV against Parquet.

mod common;

use serde_json::Value;

fn profile(ws: &dbopt_testkit::TempWorkspace, sql: &str) -> Value {
    let out = common::run(
        ws,
        &["profile", "--table-name", "events", "--format", "json", sql],
    )
    .success();
    serde_json::from_str(&out).unwrap()
}

fn advised(report: &Value) -> Vec<String> {
    report["advice"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["bottleneck"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn profile_names_the_join_and_the_scan_and_advises() {
    let ws = common::generated();
    // Every (country, device) pair of 20k rows joined with itself: millions of join rows.
    let join = profile(
        &ws,
        "SELECT count(*) FROM events a JOIN events b ON a.country = b.country AND a.device = b.device",
    );
    assert_eq!(join["dominant"]["work"], "join", "{join:#}");
    assert!(advised(&join).contains(&"join".to_string()), "{join:#}");
    assert!(
        join["operators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"].as_str().unwrap().contains("Join"))
    );

    // Every column of every row, no filter: decoding is the work.
    let scan = profile(&ws, "SELECT * FROM events");
    assert_eq!(scan["dominant"]["work"], "scan and decode", "{scan:#}");
    assert!(advised(&scan).contains(&"decode".to_string()), "{scan:#}");

    // The table view prints the same advice; query --profile prints it after the result.
    let text = common::run(
        &ws,
        &[
            "query",
            "--table-name",
            "events",
            "--profile",
            "SELECT count(*) FROM events a JOIN events b ON a.country = b.country AND a.device = b.device",
        ],
    )
    .success();
    assert!(text.contains("advice: join-bound"), "{text}");
}

#[test]
fn load_dataset_compares_csv_with_parquet_and_writes_its_monitor_file() {
    let ws = dbopt_testkit::TempWorkspace::new();
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/seed.csv");
    let monitor = ws.root().join("load.jsonl");
    let out = common::run(
        &ws,
        &[
            "load-dataset",
            "--table-name",
            "seed",
            "--source-path",
            csv,
            "--monitor",
            monitor.to_str().unwrap(),
        ],
    )
    .success();
    assert!(
        out.contains("csv ") && out.contains("-> parquet") && out.contains("full scan of"),
        "{out}"
    );
    let lines: Vec<Value> = std::fs::read_to_string(&monitor)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.first().unwrap()["stage"], "start");
    assert!(
        lines
            .iter()
            .any(|l| l["kind"] == "checkpoint" && l["stage"] == "done")
    );
    let report = lines.last().unwrap();
    assert_eq!(report["kind"], "report");
    assert!(report["peak_rss_bytes"].as_u64().unwrap() > 0);
    // A monitor path that cannot be written is refused before anything runs.
    common::run(
        &ws,
        &[
            "load-dataset",
            "--table-name",
            "other",
            "--source-path",
            csv,
            "--monitor",
            "/nonexistent/dir/m.jsonl",
        ],
    )
    .user_error("--monitor");
    assert!(
        ws.catalog()
            .get_table(&dbopt_core::TableName::new("other").unwrap())
            .unwrap()
            .is_none()
    );
}

#[test]
fn tune_measures_each_setting_on_the_logged_workload_and_writes_a_config_that_parses() {
    let ws = common::generated();
    // Without logged queries there is nothing to measure: the caller is told what to run.
    let none = common::cmd(&ws, &[], &["tune", "--table-name", "events"])
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2), "{none:?}");
    common::run(
        &ws,
        &[
            "run-workload",
            "--table-name",
            "events",
            "--num-queries",
            "30",
            "--seed",
            "5",
        ],
    )
    .success();
    let out = common::run(
        &ws,
        &[
            "tune",
            "--table-name",
            "events",
            "--shapes",
            "3",
            "--rounds",
            "1",
            "--write",
            "--format",
            "json",
        ],
    )
    .success();
    let report: Value = serde_json::from_str(&out).unwrap();
    let trials = report["trials"].as_array().unwrap();
    assert!(
        trials.len() >= 6,
        "the baseline and one trial per change: {report}"
    );
    assert!(trials[0]["changes"].as_array().unwrap().is_empty());
    assert!((trials[0]["ratio"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    for t in trials {
        assert!(t["total_ms"].as_f64().unwrap() > 0.0, "{t}");
        assert_eq!(t["errors"], 0, "{t}");
    }
    let keys: Vec<&str> = report["chosen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "threads",
            "batch_size",
            "pushdown_filters",
            "page_index",
            "repartition_joins"
        ]
    );
    // The written file holds every tuned key, and dbopt reads it back.
    let written = std::fs::read_to_string(ws.root().join("dbopt.toml")).unwrap();
    for key in keys {
        assert!(written.contains(&format!("{key} = ")), "{written}");
    }
    let shown = common::run(&ws, &["config", "show"]).success();
    assert!(
        shown
            .lines()
            .any(|l| l.contains("pushdown_filters") && l.contains("dbopt.toml")),
        "{shown}"
    );
    common::run(
        &ws,
        &[
            "query",
            "--table-name",
            "events",
            "SELECT count(*) FROM events",
        ],
    )
    .success();
}

#[test]
fn calibrate_fits_prices_from_logged_latencies_and_writes_them() {
    let ws = dbopt_testkit::TempWorkspace::new();
    common::generate_events(&ws, "300000", "5", "16384", &["--order", "shuffled"]);
    // Too few measured queries: refused with the reason, exit code 2.
    common::run(&ws, &["calibrate", "--table-name", "events"]).user_error("at least 20");
    // Whole-table aggregates over wide columns and point lookups: latency grows with bytes.
    let sql: String = (0..12)
        .map(|i| {
            format!(
                "SELECT count(*), sum(amount), max(event_ts), min(session_id), max(referrer) FROM events WHERE duration_ms >= {i};\n\
                 SELECT event_type, count(*) FROM events WHERE event_id = {} GROUP BY event_type;\n",
                1000 + i
            )
        })
        .collect();
    let file = ws.root().join("mix.sql");
    std::fs::write(&file, sql).unwrap();
    common::run(
        &ws,
        &[
            "run-workload",
            "--table-name",
            "events",
            "--workload-file",
            file.to_str().unwrap(),
        ],
    )
    .success();
    let out = common::run(
        &ws,
        &[
            "calibrate",
            "--table-name",
            "events",
            "--write",
            "--format",
            "json",
        ],
    )
    .success();
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["fit"]["queries"], 24, "{report}");
    assert!(
        report["fit"]["ms_per_byte"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    for key in ["file", "row_group", "page"] {
        assert!(
            report["calibrated"][key].as_f64().unwrap() >= 0.0,
            "{report}"
        );
    }
    assert_eq!(report["calibrated"]["page"], report["current"]["page"]);
    // The written prices are what dbopt now reads, and propose runs with them.
    let shown = common::run(&ws, &["config", "show"]).success();
    let row_group = report["calibrated"]["row_group"].as_f64().unwrap().round() as u64;
    assert!(
        shown.lines().any(|l| l.contains("row_group_price_bytes")
            && l.contains(&row_group.to_string())
            && l.contains("dbopt.toml")),
        "{shown}"
    );
    common::run(&ws, &["propose", "--table-name", "events"]).success();
}

/// With `adaptive_pushdown`, the queries of one shape run with filter pushdown on and off, three
/// each, alternating (the configured choice first), then with whichever measured the lower
/// mean latency on that layout without its slowest run, as the query log shows; every answer
/// is the same. Another shape starts its own count.
#[test]
fn adaptive_pushdown_tries_both_choices_then_keeps_the_clearly_faster() {
    let ws = common::generated().with_env(&[("DBOPT_ADAPTIVE_PUSHDOWN", "true")]);
    let query = |customer: u32| {
        let sql = format!(
            "SELECT count(*) AS n, sum(duration_ms) AS d FROM events WHERE customer_id = {customer} \
             AND amount > 10"
        );
        common::run(
            &ws,
            &["query", "--table-name", "events", "--format", "json", &sql],
        )
        .success()
    };
    let first = query(7);
    for _ in 0..7 {
        assert_eq!(query(7), first, "pushdown never changes an answer");
    }
    common::run(
        &ws,
        &[
            "query",
            "--table-name",
            "events",
            "SELECT count(*) FROM events WHERE event_type = 'buy'",
        ],
    )
    .success();
    let mut log: Vec<(i64, dbopt_catalog::QueryLogEntry)> = ws
        .catalog()
        .queries_for_table(&common::events(), None, None)
        .unwrap()
        .into_iter()
        .map(|q| (q.id, q.entry))
        .collect();
    log.sort_by_key(|(id, _)| *id);
    let runs: Vec<(bool, f64)> = log[..8]
        .iter()
        .map(|(_, e)| (e.pushdown.expect("a chosen pushdown"), e.latency_ms))
        .collect();
    let choices: Vec<bool> = runs.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        choices[..6],
        [true, false, true, false, true, false],
        "explored: {runs:?}"
    );
    for n in 6..8 {
        // The mean of each choice's runs so far, its slowest left out.
        let mean = |choice: bool| {
            let l: Vec<f64> = runs[..n]
                .iter()
                .filter(|(p, _)| *p == choice)
                .map(|(_, l)| *l)
                .collect();
            let slowest = l.iter().copied().fold(f64::MIN, f64::max);
            (l.iter().sum::<f64>() - slowest) / (l.len() - 1) as f64
        };
        // Off replaces the configured on only when faster by more than the margins.
        let saved = mean(true) - mean(false);
        let keep_on = saved <= dbopt::pushdown::SWITCH_MIN_MS
            || saved <= dbopt::pushdown::SWITCH_MARGIN * mean(true);
        assert_eq!(
            choices[n],
            keep_on,
            "query {} keeps the faster, by the margins: {runs:?}",
            n + 1
        );
    }
    assert_eq!(
        log[8].1.pushdown,
        Some(true),
        "another shape starts with the configured choice"
    );
}
