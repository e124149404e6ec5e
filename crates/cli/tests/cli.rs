//! End-to-end tests: the real `dbopt` binary on small generated data.

mod common;
use common::{bin, generated, logged_queries, query_json, run};
use dbopt_catalog::QueryOrigin;
use dbopt_testkit::TempWorkspace;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// (bytes_scanned, row_groups_total, row_groups_pruned, error) of the latest logged query.
fn last_logged(ws: &TempWorkspace) -> (u64, u64, u64, Option<String>) {
    let newest = ws.catalog().logged_queries(None, 0, Some(1)).unwrap();
    let last = newest.into_iter().next().expect("a query was logged").entry;
    let m = last.metrics;
    (
        m.bytes_scanned,
        m.row_groups_total,
        m.row_groups_pruned,
        last.error,
    )
}

#[test]
fn generate_query_and_log_with_pruning() {
    let ws = generated();
    let tables = run(&ws, &["tables", "--format", "json"]).success();
    let tables: serde_json::Value = serde_json::from_str(&tables).unwrap();
    let names: Vec<&str> = tables
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["customers", "events"]);
    assert_eq!(tables[1]["rows"], 20000);
    assert!(
        ws.data_dir()
            .join("events/layout_initial/_dbopt_layout.json")
            .exists()
    );

    let all = query_json(&ws, "SELECT count(*) AS n FROM events");
    assert_eq!(all[0]["n"], 20000);

    // A full scan of a column prunes nothing.
    query_json(&ws, "SELECT sum(amount) AS s FROM events");
    let (full_bytes, rg_total, rg_pruned, err) = last_logged(&ws);
    assert_eq!(err, None);
    assert!(full_bytes > 0);
    assert_eq!(rg_total, 10);
    assert_eq!(rg_pruned, 0);

    // Arrival order keeps dates clustered: one day touches few row groups.
    query_json(
        &ws,
        "SELECT sum(amount) AS s FROM events WHERE event_date = DATE '2025-02-01'",
    );
    let (day_bytes, _, day_pruned, err) = last_logged(&ws);
    assert_eq!(err, None);
    assert!(
        day_pruned >= 7,
        "a one-day filter should prune most row groups, pruned {day_pruned}"
    );
    assert!(day_bytes < full_bytes, "{day_bytes} < {full_bytes}");

    let queries: Vec<_> = logged_queries(&ws)
        .into_iter()
        .filter(|q| q.entry.origin == QueryOrigin::Query)
        .collect();
    let fingerprints: BTreeSet<_> = queries.iter().map(|q| &q.entry.fingerprint).collect();
    assert_eq!(queries.len(), 3);
    assert_eq!(fingerprints.len(), 3);
}

#[test]
fn joins_are_logged_against_both_tables_and_fingerprints_ignore_literals() {
    let ws = generated();
    for day in ["2025-03-01", "2025-04-02"] {
        let sql = format!(
            "SELECT c.segment, count(*) AS n FROM events e JOIN customers c ON e.customer_id = c.customer_id WHERE e.event_date = DATE '{day}' GROUP BY c.segment"
        );
        let rows = query_json(&ws, &sql);
        assert!(!rows.as_array().unwrap().is_empty());
    }
    let logged = logged_queries(&ws);
    let fps: BTreeSet<_> = logged.iter().map(|q| &q.entry.fingerprint).collect();
    assert_eq!(fps.len(), 1, "same shape, other literal, same fingerprint");
    let scanned: BTreeSet<&str> = logged
        .iter()
        .flat_map(|q| &q.entry.scans)
        .map(|s| s.table.as_str())
        .collect();
    assert_eq!(Vec::from_iter(scanned), ["customers", "events"]);
}

#[test]
fn output_formats_and_layout_flag() {
    let ws = generated();
    let csv = run(
        &ws,
        &[
            "query",
            "--table-name",
            "events",
            "--format",
            "csv",
            "--layout",
            "initial",
            "SELECT device, count(*) AS n FROM events GROUP BY device ORDER BY device",
        ],
    )
    .success();
    assert!(csv.starts_with("device,n\n"), "{csv}");
    let table = run(&ws, &["query", "--table-name", "events", "SELECT 1 AS one"]).success();
    assert!(table.contains("one"), "{table}");
    run(
        &ws,
        &[
            "query",
            "--table-name",
            "events",
            "--layout",
            "abcdef",
            "SELECT 1",
        ],
    )
    .user_error("no layout 'abcdef'");
    run(
        &ws,
        &[
            "query",
            "--table-name",
            "events",
            "--layout",
            "../x",
            "SELECT 1",
        ],
    )
    .user_error("invalid layout id");
}

#[test]
fn run_workload_logs_every_query() {
    let ws = generated();
    let out = run(
        &ws,
        &[
            "run-workload",
            "--table-name",
            "events",
            "--num-queries",
            "40",
            "--seed",
            "3",
            "--format",
            "json",
            "--explore",
            "--exploration-rate",
            "0.2",
        ],
    );
    let summary: serde_json::Value = serde_json::from_str(&out.success()).unwrap();
    assert_eq!(summary["queries"], 40);
    assert_eq!(summary["errors"], 0, "{summary}");
    assert!(summary["total_bytes_scanned"].as_u64().unwrap() > 0);
    let ran: Vec<_> = logged_queries(&ws)
        .into_iter()
        .map(|q| q.entry)
        .filter(|e| e.origin == QueryOrigin::Workload && e.error.is_none())
        .collect();
    let templates = ran
        .iter()
        .filter_map(|e| e.workload.as_ref())
        .collect::<BTreeSet<_>>()
        .len();
    let with_bytes = ran.iter().filter(|e| e.metrics.bytes_scanned > 0).count();
    assert_eq!(ran.len(), 40);
    assert!(templates >= 4, "several templates drawn, got {templates}");
    assert!(with_bytes >= 35);
}

#[test]
fn refuses_ddl_dml_and_bad_sql_without_touching_the_catalog() {
    let ws = generated();
    for (sql, needle) in [
        ("DROP TABLE events", "DROP TABLE"),
        ("INSERT INTO events SELECT * FROM events", "INSERT"),
        ("CREATE TABLE x AS SELECT 1", "CREATE TABLE"),
        ("DELETE FROM events", "DELETE"),
        ("SELEC * FROM events", "syntax"),
        ("SELECT nope FROM events", "nope"),
        ("SELECT * FROM no_such_table", "no_such_table"),
    ] {
        run(&ws, &["query", "--table-name", "events", sql]).user_error(needle);
    }
    run(&ws, &["query", "--table-name", "ghost", "SELECT 1"]).user_error("unknown table 'ghost'");
    run(&ws, &["query", "--table-name", "../etc", "SELECT 1"]).user_error("invalid table name");
    run(
        &ws,
        &["generate", "--table-name", "a/b", "--num-rows", "10"],
    )
    .user_error("invalid table name");
    run(
        &ws,
        &["generate", "--table-name", "events", "--num-rows", "10"],
    )
    .user_error("already exists");
    // The table is intact after all of that.
    assert_eq!(
        query_json(&ws, "SELECT count(*) AS n FROM events")[0]["n"],
        20000
    );
    assert!(!ws.root().join("b").exists() && !ws.data_dir().join("a").exists());
}

#[test]
fn corrupt_parquet_is_a_one_line_error() {
    let ws = generated();
    let file = ws
        .data_dir()
        .join("events/layout_initial/part-00000.parquet");
    let len = std::fs::metadata(&file).unwrap().len() as usize;
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.truncate(len / 2);
    std::fs::write(&file, bytes).unwrap();
    run(
        &ws,
        &[
            "query",
            "--table-name",
            "events",
            "SELECT count(*) FROM events",
        ],
    )
    .user_error("parquet");
    // The catalog still opens and other tables still answer.
    let out = run(
        &ws,
        &[
            "query",
            "--table-name",
            "customers",
            "--format",
            "json",
            "SELECT count(*) AS n FROM customers",
        ],
    )
    .success();
    assert!(out.contains("\"n\""), "{out}");
}

fn write_csv(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn load_dataset_keeps_the_source_row_order_across_files_and_threads() {
    // Four files of ascending ids, read by four scan partitions: the loaded table must hold
    // the rows in file order, not interleaved as the partitions happen to deliver them.
    let ws = TempWorkspace::new();
    let src = ws.root().join("ordered");
    let per_file = 20_000;
    for f in 0..4 {
        let rows: String = (f * per_file..(f + 1) * per_file)
            .map(|i| format!("{i},{}\n", i % 7))
            .collect();
        write_csv(&src, &format!("part-{f}.csv"), &format!("id,k\n{rows}"));
    }
    run(
        &ws,
        &[
            "load-dataset",
            "--table-name",
            "ordered",
            "--source-path",
            src.to_str().unwrap(),
            "--threads",
            "4",
        ],
    )
    .success();
    let table = dbopt_core::TableName::new("ordered").unwrap();
    let layout = ws
        .catalog()
        .list_layouts(&table)
        .unwrap()
        .into_iter()
        .next()
        .expect("the initial layout");
    let mut files: Vec<PathBuf> = std::fs::read_dir(ws.data_dir().join(&layout.path))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    let mut ids = Vec::new();
    for file in files {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(file).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let col = batch.column_by_name("id").unwrap();
            let col = col
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .expect("id is Int64");
            ids.extend(col.values().iter().copied());
        }
    }
    let expected: Vec<i64> = (0..4 * per_file).collect();
    assert!(
        ids == expected,
        "rows out of source order: first ids {:?}",
        &ids[..20.min(ids.len())]
    );
}

#[test]
fn load_dataset_csv_parquet_and_hive_directories() {
    let ws = TempWorkspace::new();
    let src = ws.root().join("src");
    let csv = write_csv(
        &src,
        "sales.csv",
        "id,region,amount\n1,eu,10.5\n2,us,3.0\n3,eu,7.25\n",
    );
    run(
        &ws,
        &[
            "load-dataset",
            "--table-name",
            "sales",
            "--source-path",
            csv.to_str().unwrap(),
        ],
    )
    .success();
    let out = run(
        &ws,
        &[
            "query",
            "--table-name",
            "sales",
            "--format",
            "json",
            "SELECT region, sum(amount) AS total FROM sales GROUP BY region ORDER BY region",
        ],
    )
    .success();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["region"], "eu");
    assert_eq!(v[0]["total"], 17.75);

    // A hive-partitioned directory of Parquet files: reuse the loaded table's file twice.
    let parquet = ws
        .data_dir()
        .join("sales/layout_initial/part-00000.parquet");
    let hive = ws.root().join("hive");
    for year in ["2024", "2025"] {
        let d = hive.join(format!("year={year}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(&parquet, d.join("part.parquet")).unwrap();
    }
    run(
        &ws,
        &[
            "load-dataset",
            "--table-name",
            "sales_hive",
            "--source-path",
            hive.to_str().unwrap(),
        ],
    )
    .success();
    let out = run(
        &ws,
        &[
            "query",
            "--table-name",
            "sales_hive",
            "--format",
            "json",
            "SELECT year, count(*) AS n FROM sales_hive GROUP BY year ORDER BY year",
        ],
    )
    .success();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["year"], 2024);
    assert_eq!(v[1]["n"], 3);
}

#[test]
fn load_dataset_bad_sources() {
    let ws = TempWorkspace::new();
    let root = ws.root();
    run(
        &ws,
        &[
            "load-dataset",
            "--table-name",
            "t",
            "--source-path",
            "missing.parquet",
        ],
    )
    .user_error("does not exist");
    std::fs::create_dir_all(root.join("empty")).unwrap();
    run(
        &ws,
        &[
            "load-dataset",
            "--table-name",
            "t",
            "--source-path",
            "empty",
        ],
    )
    .user_error("empty");
    write_csv(&root.join("txt"), "notes.txt", "hello");
    run(
        &ws,
        &["load-dataset", "--table-name", "t", "--source-path", "txt"],
    )
    .user_error("unsupported file");
    write_csv(&root.join("mixed"), "a.csv", "x\n1\n");
    std::fs::write(root.join("mixed/b.parquet"), b"PAR1").unwrap();
    run(
        &ws,
        &[
            "load-dataset",
            "--table-name",
            "t",
            "--source-path",
            "mixed",
        ],
    )
    .user_error("mixes");
    write_csv(&root.join("disagree"), "a.csv", "x,y\n1,2\n");
    write_csv(&root.join("disagree"), "b.csv", "x,z\n1,2\n");
    run(
        &ws,
        &[
            "load-dataset",
            "--table-name",
            "t",
            "--source-path",
            "disagree",
        ],
    )
    .user_error("disagree");
    std::fs::create_dir_all(root.join("bad")).unwrap();
    std::fs::write(root.join("bad/x.parquet"), b"this is not parquet").unwrap();
    run(
        &ws,
        &["load-dataset", "--table-name", "t", "--source-path", "bad"],
    )
    .user_error("parquet");
    write_csv(&root.join("header_only"), "a.csv", "x,y\n");
    run(
        &ws,
        &[
            "load-dataset",
            "--table-name",
            "t",
            "--source-path",
            "header_only",
        ],
    )
    .user_error("no rows");
    // Nothing half-written: no table registered, no layout directory left.
    let tables = run(&ws, &["tables", "--format", "json"]).success();
    assert_eq!(tables.trim(), "[]");
    assert!(!ws.data_dir().join("t/layout_initial").exists());
}

#[test]
fn config_show_reports_sources_by_precedence() {
    let ws = TempWorkspace::new();
    std::fs::write(ws.root().join("dbopt.toml"), "alpha = 3.0\nbeta = 4\n").unwrap();
    let out = ws
        .command(&bin())
        .args(["--threads", "3", "config", "show", "--format", "json"])
        .env("BETA", "5")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let find = |k: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == k)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("alpha")["value"], "3");
    assert!(
        find("alpha")["source"]
            .as_str()
            .unwrap()
            .starts_with("file")
    );
    assert_eq!(find("beta")["value"], "5");
    assert_eq!(find("beta")["source"], "env BETA");
    assert_eq!(find("threads")["source"], "flag --threads");
    assert_eq!(find("max_partitions")["source"], "default");
    let bad = ws
        .command(&bin())
        .args(["config", "show"])
        .env("EXPLORATION_RATE", "2")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("exploration_rate"));
}

#[test]
fn a_spill_dir_that_cannot_be_created_is_refused_without_a_panic() {
    let ws = generated();
    let count_spilling_to = |dir: &std::path::Path| {
        ws.command(&bin())
            .args(["query", "--table-name", "events"])
            .arg("SELECT count(*) FROM events")
            .env("DBOPT_SPILL_DIR", dir)
            .output()
            .unwrap()
    };
    let file = ws.root().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let out = count_spilling_to(&file.join("spill"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("spill_dir") && stderr.contains("cannot be created"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // A spill directory that does not exist yet is made.
    let fresh = ws.root().join("spill").join("here");
    let ok = count_spilling_to(&fresh);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(fresh.is_dir());
}

#[test]
fn newer_catalog_schema_is_refused_unchanged() {
    let ws = generated();
    ws.write_catalog_schema_version(999);
    run(&ws, &["tables"]).user_error("newer");
    assert_eq!(ws.read_catalog_schema_version(), 999);
}

#[test]
fn generate_is_deterministic_and_replace_works() {
    let ws = generated();
    let digest = |ws: &TempWorkspace| {
        let text = std::fs::read_to_string(
            ws.data_dir()
                .join("events/layout_initial/_dbopt_layout.json"),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["digest"].as_str().unwrap().to_string()
    };
    let first = digest(&ws);
    run(
        &ws,
        &[
            "generate",
            "--table-name",
            "events",
            "--num-rows",
            "20000",
            "--seed",
            "7",
            "--row-group-rows",
            "2000",
            "--replace",
        ],
    )
    .success();
    assert_eq!(digest(&ws), first, "same seed, same rows");
    run(
        &ws,
        &[
            "generate",
            "--table-name",
            "events",
            "--num-rows",
            "20000",
            "--seed",
            "8",
            "--replace",
            "--order",
            "shuffled",
        ],
    )
    .success();
    assert_ne!(digest(&ws), first);
    assert_eq!(
        query_json(&ws, "SELECT count(*) AS n FROM events")[0]["n"],
        20000
    );
    let staging = ws.data_dir().join("events/_staging");
    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "staging cleaned: {left:?}");
}

#[test]
fn workload_sql_prints_filtered_queries_without_running_them() {
    let ws = generated();
    let out = run(
        &ws,
        &[
            "workload-sql",
            "--num-queries",
            "30",
            "--seed",
            "4",
            "--exclude-templates",
            "full_scan,user_sessions",
        ],
    )
    .success();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 30);
    assert!(
        lines
            .iter()
            .all(|q| q["template"] != "full_scan" && q["template"] != "user_sessions")
    );
    let again = run(
        &ws,
        &[
            "workload-sql",
            "--num-queries",
            "30",
            "--seed",
            "4",
            "--exclude-templates",
            "full_scan,user_sessions",
        ],
    )
    .success();
    assert_eq!(out, again, "same seed, same queries");
    let only = run(
        &ws,
        &[
            "workload-sql",
            "--num-queries",
            "5",
            "--only-templates",
            "segment_join",
            "--format",
            "sql",
        ],
    )
    .success();
    assert_eq!(only.matches("-- template: segment_join").count(), 5);
    assert_eq!(
        logged_queries(&ws).len(),
        0,
        "printing queries runs nothing"
    );
    run(&ws, &["workload-sql", "--only-templates", "nope"]).user_error("unknown template 'nope'");
}

#[test]
fn adopt_and_activate_an_external_layout() {
    let ws = generated();
    let ext = ws.root().join("external");
    std::fs::create_dir_all(&ext).unwrap();
    std::fs::copy(
        ws.data_dir()
            .join("events/layout_initial/part-00000.parquet"),
        ext.join("rewritten.parquet"),
    )
    .unwrap();
    let out = run(
        &ws,
        &[
            "adopt-layout",
            "--table-name",
            "events",
            "--source-path",
            ext.to_str().unwrap(),
            "--format",
            "json",
        ],
    )
    .success();
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = report["layout_id"].as_str().unwrap().to_string();
    assert_eq!(report["rows"], 20000);
    assert_eq!(report["newly_adopted"], true);
    let again = run(
        &ws,
        &[
            "adopt-layout",
            "--table-name",
            "events",
            "--source-path",
            ext.to_str().unwrap(),
        ],
    )
    .success();
    assert!(again.contains("already"), "{again}");

    let n = run(
        &ws,
        &[
            "query",
            "--table-name",
            "events",
            "--layout",
            &id,
            "--format",
            "json",
            "SELECT count(*) AS n FROM events",
        ],
    )
    .success();
    assert!(n.contains("20000"), "{n}");
    run(
        &ws,
        &["activate-layout", "--table-name", "events", "--layout", &id],
    )
    .success();
    let tables: serde_json::Value =
        serde_json::from_str(&run(&ws, &["tables", "--format", "json"]).success()).unwrap();
    assert_eq!(tables[1]["active_layout"], id.as_str());
    run(
        &ws,
        &[
            "activate-layout",
            "--table-name",
            "events",
            "--layout",
            "initial",
        ],
    )
    .success();
    run(
        &ws,
        &[
            "activate-layout",
            "--table-name",
            "events",
            "--layout",
            "abc123",
        ],
    )
    .user_error("no layout 'abc123'");

    // Files with other rows are refused: they are not a layout of this table.
    let other = ws.root().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(
        ws.data_dir()
            .join("customers/layout_initial/part-00000.parquet"),
        other.join("c.parquet"),
    )
    .unwrap();
    run(
        &ws,
        &[
            "adopt-layout",
            "--table-name",
            "events",
            "--source-path",
            other.to_str().unwrap(),
        ],
    )
    .user_error("column");
}

#[test]
fn completions_print_a_script_per_shell_and_refuse_unknown_shells() {
    let ws = TempWorkspace::new();
    let bash = run(&ws, &["completions", "bash"]).success();
    for sub in [
        "autopilot",
        "evaluate",
        "migration-worker",
        "completions",
        "--verbose",
    ] {
        assert!(bash.contains(sub), "bash completions lack {sub}");
    }
    for shell in ["zsh", "fish", "powershell"] {
        let script = run(&ws, &["completions", shell]).success();
        assert!(script.contains("autopilot"), "{shell}: {script}");
    }
    let bad = run(&ws, &["completions", "tcsh"]);
    assert_eq!(bad.code(), Some(2), "{}", bad.stderr());
    assert!(bad.stdout().is_empty());
    assert!(bad.stderr().contains("tcsh"), "{}", bad.stderr());
    assert!(
        !ws.metadata_db().exists(),
        "completions need no catalog and create none"
    );
}

/// Runs `args` with `env` set; returns (stdout, stderr) after checking it succeeded.
fn run_with_env(ws: &TempWorkspace, env: &[(&str, &str)], args: &[&str]) -> (String, String) {
    let mut cmd = ws.command(&bin());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (stdout, stderr)
}

#[test]
fn plain_and_no_color_output_holds_no_escape_codes() {
    for env in [("DBOPT_PLAIN", "1"), ("NO_COLOR", "1")] {
        let ws = TempWorkspace::new();
        let commands: [&[&str]; 7] = [
            &[
                "generate",
                "--table-name",
                "events",
                "--num-rows",
                "5000",
                "--row-group-rows",
                "500",
                "--order",
                "shuffled",
            ],
            &[
                "query",
                "--table-name",
                "events",
                "SELECT country, count(*) FROM events GROUP BY country",
            ],
            &[
                "run-workload",
                "--table-name",
                "events",
                "--num-queries",
                "20",
            ],
            &["tables"],
            &["autopilot", "--table-name", "events", "--once"],
            &["-v", "tables"],
            &["config", "show"],
        ];
        for args in commands {
            let (stdout, stderr) = run_with_env(&ws, &[env], args);
            assert!(
                !stdout.contains('\x1b'),
                "{env:?} {args:?} stdout: {stdout}"
            );
            assert!(
                !stderr.contains('\x1b'),
                "{env:?} {args:?} stderr: {stderr}"
            );
        }
    }
}

#[test]
fn verbosity_flags_and_rust_log_choose_what_stderr_shows() {
    let ws = generated();
    run(
        &ws,
        &[
            "run-workload",
            "--table-name",
            "events",
            "--num-queries",
            "20",
        ],
    )
    .success();
    let autopilot = ["autopilot", "--table-name", "events", "--once"];
    // Default: each decision is one plain line, as before (no level, time or target).
    let (_, stderr) = run_with_env(&ws, &[], &autopilot);
    let decision = stderr
        .lines()
        .find(|l| l.starts_with("propose: "))
        .unwrap_or_else(|| panic!("no decision line: {stderr}"));
    assert!(!decision.contains("INFO"), "{decision}");
    // -q: warnings only.
    let (_, quiet) = run_with_env(&ws, &[], &[&["-q"][..], &autopilot].concat());
    assert!(!quiet.contains("propose: "), "{quiet}");
    // -v: levels, spans and fields.
    let (_, verbose) = run_with_env(&ws, &[], &[&["-v"][..], &autopilot].concat());
    assert!(verbose.contains("INFO"), "{verbose}");
    assert!(verbose.contains("autopilot_pass"), "{verbose}");
    assert!(verbose.contains("propose: "), "{verbose}");
    // RUST_LOG wins over the flags.
    let (_, from_env) = run_with_env(
        &ws,
        &[("RUST_LOG", "warn")],
        &[&["-v"][..], &autopilot].concat(),
    );
    assert!(!from_env.contains("propose: "), "{from_env}");
    // -v and -q conflict: a usage error.
    let both = run(&ws, &["-v", "-q", "tables"]);
    assert_eq!(both.code(), Some(2), "{}", both.stderr());
}

#[test]
fn query_log_json_splits_a_joins_bytes_by_table() {
    let ws = generated();
    run(
        &ws,
        &[
            "query",
            "--table-name",
            "events",
            "SELECT c.segment, count(*) FROM events e JOIN customers c \
             ON e.customer_id = c.customer_id WHERE e.customer_id < 50 GROUP BY c.segment",
        ],
    )
    .success();
    let out = run(&ws, &["query-log", "--format", "json"]).success();
    let rows: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let last = rows
        .as_array()
        .and_then(|r| r.last())
        .expect("one logged query");
    let by_table = last["bytes_by_table"].as_object().expect("bytes_by_table");
    let events = by_table["events"].as_u64().unwrap();
    let customers = by_table["customers"].as_u64().unwrap();
    assert!(events > 0 && customers > 0, "{by_table:?}");
    assert_eq!(last["bytes_scanned"].as_u64(), Some(events + customers));
}
