//! End-to-end tests of TPC-H: `generate-tpch`, the TPC-H workloads and `tpch-validate`, run
//! through the real `dbopt` binary on scale factor 0.01 (the scale-factor-1 answer check is
//! `#[ignore]`d: `cargo test --workspace -- --ignored tpch_sf1`).

mod common;
use common::{logged_queries, run};
use dbopt_data::tpch_params::tpch_validation_query;
use dbopt_testkit::TempWorkspace;
use std::collections::BTreeMap;
use std::collections::BTreeSet;

/// Table name -> rows, from `dbopt tables --format json`.
fn table_rows(ws: &TempWorkspace) -> BTreeMap<String, u64> {
    let out = run(ws, &["tables", "--format", "json"]).success();
    let tables: serde_json::Value = serde_json::from_str(&out).unwrap();
    tables
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["rows"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario that reads top to bottom"
)]
fn tpch_sf_0_01_generates_specification_row_counts_and_runs_all_22_queries() {
    let ws = TempWorkspace::new();
    let out = run(&ws, &["generate-tpch", "--scale-factor", "0.01"]).success();
    assert!(out.contains("TPC-H scale factor 0.01"), "{out}");
    let expected: BTreeMap<String, u64> = [
        ("nation", 25),
        ("region", 5),
        ("supplier", 100),
        ("customer", 1500),
        ("part", 2000),
        ("partsupp", 8000),
        ("orders", 15000),
        ("lineitem", 60175),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_string(), n))
    .collect();
    assert_eq!(table_rows(&ws), expected);
    assert!(
        ws.data_dir()
            .join("lineitem/layout_initial/_dbopt_layout.json")
            .exists()
    );

    // Every template plans and runs with the validation parameters.
    for n in 1..=22 {
        let sql = tpch_validation_query(n, 0.01).unwrap();
        let out = run(
            &ws,
            &["query", "--table-name", "lineitem", "--format", "csv", &sql],
        );
        out.success();
    }
    let errors = logged_queries(&ws)
        .iter()
        .filter(|q| q.entry.error.is_some())
        .count();
    assert_eq!(errors, 0);

    // ... and with random parameters: the uniform workload over all templates.
    let summary = run(
        &ws,
        &[
            "run-workload",
            "--workload",
            "tpch",
            "--num-queries",
            "66",
            "--seed",
            "5",
            "--format",
            "json",
        ],
    )
    .success();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["queries"], 66);
    assert_eq!(summary["errors"], 0, "{summary}");
    let templates = summary["per_template"].as_object().unwrap();
    assert!(templates.len() >= 18, "{templates:?}");
    assert!(templates.keys().all(|t| t.starts_with('q')));

    // Workload queries are logged against lineitem, with one scan row per table read.
    let q5: Vec<_> = logged_queries(&ws)
        .into_iter()
        .map(|q| q.entry)
        .filter(|e| e.workload.as_deref() == Some("q5"))
        .collect();
    assert!(!q5.is_empty());
    let tables: BTreeSet<&str> = q5.iter().map(|e| e.table.as_str()).collect();
    assert_eq!(Vec::from_iter(tables), ["lineitem"]);
    let scanned: BTreeSet<&str> = q5
        .iter()
        .flat_map(|e| &e.scans)
        .map(|s| s.table.as_str())
        .collect();
    assert_eq!(scanned.len(), 6, "Q5 reads six tables");

    // The filter-heavy mix draws mostly the selective lineitem/orders templates.
    let summary = run(
        &ws,
        &[
            "run-workload",
            "--workload",
            "tpch-filter",
            "--num-queries",
            "30",
            "--seed",
            "2",
            "--format",
            "json",
        ],
    )
    .success();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["errors"], 0, "{summary}");
    let filter: u64 = [
        "q1", "q3", "q4", "q5", "q6", "q7", "q10", "q12", "q14", "q15", "q19",
    ]
    .iter()
    .filter_map(|t| summary["per_template"][t].as_u64())
    .sum();
    assert!(filter >= 18, "{summary}");

    // The same generator prints SQL for replay elsewhere, with template filters.
    let printed = run(
        &ws,
        &[
            "workload-sql",
            "--workload",
            "tpch-filter",
            "--num-queries",
            "12",
            "--seed",
            "5",
            "--exclude-templates",
            "q6,q14",
        ],
    )
    .success();
    let printed: Vec<serde_json::Value> = printed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(printed.len(), 12);
    assert!(
        printed
            .iter()
            .all(|q| q["template"] != "q6" && q["template"] != "q14")
    );
    run(
        &ws,
        &[
            "workload-sql",
            "--workload",
            "tpch",
            "--only-templates",
            "q23",
        ],
    )
    .user_error("unknown template 'q23'");

    // Reference answers exist only for scale factor 1.
    run(&ws, &["tpch-validate"]).user_error("scale factor 1");
}

#[test]
fn generate_tpch_refuses_bad_input_and_replaces_on_request() {
    let ws = TempWorkspace::new();
    for sf in ["0", "-1", "abc", "1e-9", "inf"] {
        run(&ws, &["generate-tpch", "--scale-factor", sf]).user_error("invalid scale factor");
    }
    run(
        &ws,
        &[
            "generate-tpch",
            "--scale-factor",
            "0.01",
            "--tables",
            "lineitem,items",
        ],
    )
    .user_error("unknown TPC-H table 'items'");
    run(&ws, &["run-workload", "--workload", "tpch"]).user_error("generate-tpch");
    assert!(table_rows(&ws).is_empty(), "refusals write nothing");

    let args = [
        "generate-tpch",
        "--scale-factor",
        "0.001",
        "--tables",
        "region,NATION,supplier",
    ];
    run(&ws, &args).success();
    let rows = table_rows(&ws);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows["supplier"], 10);
    run(&ws, &args).user_error("already exists");
    let mut replace = args.to_vec();
    replace.push("--replace");
    run(&ws, &replace).success();
    assert_eq!(table_rows(&ws)["nation"], 25);
    run(&ws, &["tpch-validate", "--queries", "23"]).user_error("1 to 22");
}

/// Q1 and Q6 with the validation parameters against tpchgen's scale-factor-1 answers.
/// Generates 6 million lineitem rows: run it on its own, preferably in release:
/// `cargo test --workspace --release -- --ignored tpch_sf1`.
#[test]
#[ignore = "generates scale factor 1 (6M rows); run with --ignored"]
fn tpch_sf1_q1_and_q6_match_the_reference_answers() {
    let ws = TempWorkspace::new();
    run(&ws, &["generate-tpch", "--scale-factor", "1"]).success();
    let out = run(&ws, &["tpch-validate", "--queries", "1,6"]).success();
    assert!(out.contains("q1: ok (4 rows"), "{out}");
    assert!(out.contains("q6: ok (1 rows"), "{out}");
}
