//! `dbopt exp`: the experiment store end to end through the real binary, read back by DuckDB.

mod common;

use common::run;
use dbopt_testkit::TempWorkspace;
use serde_json::Value;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes a CSV of `n` events for a run: latency grows with `shift`.
fn events_csv(dir: &Path, name: &str, n: usize, shift: f64) -> PathBuf {
    let path = dir.join(name);
    let mut text = String::from("query,latency_ms,regret,kind\n");
    for i in 0..n {
        let _ = writeln!(
            text,
            "{i},{:.3},{:.4},{}",
            shift + i as f64 * 0.5,
            (i as f64) / (n as f64 * 10.0),
            if i % 2 == 0 { "scan" } else { "lookup" }
        );
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn exp(ws: &TempWorkspace, args: &[&str]) -> dbopt_testkit::Run {
    run(ws, &[&["exp"], args].concat())
}

fn json_rows(text: &str) -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Files read, out of the total, from `exp query`'s closing line on stderr.
fn files_read(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.contains(" files, "))
        .unwrap_or_else(|| panic!("no files line: {stderr}"));
    let after = line.split("read ").nth(1).unwrap();
    let mut words = after.split_whitespace();
    let read = words.next().unwrap().parse().unwrap();
    assert_eq!(words.next(), Some("of"));
    let total = words.next().unwrap().parse().unwrap();
    (read, total)
}

/// Four runs (2 grids x 2 seeds) written with `exp write`.
fn store_with_runs(ws: &TempWorkspace) -> PathBuf {
    let base = ws.root().join("store");
    let b = base.to_str().unwrap();
    for (algo, lr) in [("ucb1", "0.1"), ("eps", "0.25")] {
        for seed in ["1", "2"] {
            let csv = events_csv(
                ws.root(),
                &format!("{algo}-{seed}.csv"),
                20,
                seed.parse().unwrap(),
            );
            let params = format!(
                "{{\"algo\": \"{algo}\", \"lr\": {lr}, \"started_at\": \"2026-11-30T10:0{seed}:00Z\"}}"
            );
            exp(
                ws,
                &[
                    "write",
                    b,
                    "--params",
                    &params,
                    "--seed",
                    seed,
                    "--events",
                    csv.to_str().unwrap(),
                    "--partition-by",
                    "algo",
                ],
            )
            .success();
        }
    }
    base
}

#[test]
fn runs_are_stored_once_per_grid_and_seed_and_replaced_atomically() {
    let ws = TempWorkspace::new();
    let base = store_with_runs(&ws);
    let b = base.to_str().unwrap();
    // The volatile started_at differs per run yet both seeds share one grid per algo.
    let grids = json_rows(&exp(&ws, &["query", b, "grids", "--format", "json"]).success());
    assert_eq!(grids.len(), 2, "{grids:?}");
    let ucb1 = grids.iter().find(|g| g["algo"] == "ucb1").unwrap();
    let id = ucb1["grid_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 8);
    assert!(
        ucb1.get("started_at").is_none(),
        "volatile keys are not stored"
    );
    // The grid id is the documented hash of the canonical parameters.
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/grid_id.py"))
        .arg(r#"{"lr": 0.10, "algo": "ucb1"}"#)
        .output()
        .expect("python3 runs");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&id),
        "{out:?}"
    );

    let all = json_rows(&exp(&ws, &["query", b, "events", "--format", "json"]).success());
    assert_eq!(all.len(), 80);
    let path = base.join(format!(
        "events/algo=ucb1/grid_id={id}/seed=1/part-00000.parquet"
    ));
    assert!(path.exists(), "hive layout: {}", path.display());

    // Writing the same (grid, seed) again replaces it: never duplicated.
    let csv = events_csv(ws.root(), "again.csv", 5, 100.0);
    let out = exp(
        &ws,
        &[
            "write",
            b,
            "--params",
            r#"{"lr": 0.1, "algo": "ucb1", "seed": 1}"#,
            "--events",
            csv.to_str().unwrap(),
        ],
    )
    .success();
    assert!(out.contains("replaced the earlier run"), "{out}");
    let filter = format!("grid_id = '{id}' AND seed = 1");
    let run = exp(
        &ws,
        &["query", b, "events", "--where", &filter, "--format", "json"],
    );
    let rows = json_rows(&run.success());
    assert_eq!(rows.len(), 5);
    assert!(
        rows.iter()
            .all(|r| r["latency_ms"].as_f64().unwrap() >= 100.0)
    );
    assert!(
        rows.iter().all(|r| r["lr"].as_f64() == Some(0.1)),
        "parameters joined in"
    );
    // The views are tables too: a subquery over them works in --where.
    let top = json_rows(
        &exp(
            &ws,
            &[
                "query",
                b,
                "events",
                "--where",
                "latency_ms = (SELECT max(latency_ms) FROM events)",
                "--format",
                "json",
            ],
        )
        .success(),
    );
    assert_eq!(top.len(), 1);
    assert_eq!(top[0]["latency_ms"].as_f64(), Some(102.0));
    // Pruning: a grid and seed filter reads that run's file only.
    assert_eq!(files_read(&run.stderr()), (1, 4));
    let run = exp(
        &ws,
        &[
            "query",
            b,
            "events",
            "--where",
            "algo = 'eps'",
            "--format",
            "csv",
        ],
    );
    run.success();
    assert_eq!(files_read(&run.stderr()), (2, 4));
    let run = exp(
        &ws,
        &[
            "query",
            b,
            "events",
            "--where",
            "regret < 0.05 AND lr > 0.2",
        ],
    );
    run.success();
    assert_eq!(
        files_read(&run.stderr()),
        (2, 4),
        "lr is a joined parameter, algo is in the path"
    );
    assert!(std::fs::read_dir(base.join("_staging")).map_or(true, |mut d| d.next().is_none()));

    let info: Value =
        serde_json::from_str(&exp(&ws, &["info", b, "--format", "json"]).success()).unwrap();
    assert_eq!(info["grids"], 2);
    assert_eq!(info["event_runs"], 4);
    assert_eq!(info["event_rows"], 65);
    let lr = info["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "lr")
        .unwrap();
    assert_eq!(lr["values"], serde_json::json!(["0.1", "0.25"]));
}

#[test]
fn duckdb_reads_the_store_through_the_printed_views_with_the_same_rows() {
    let ws = TempWorkspace::new();
    let base = store_with_runs(&ws);
    let b = base.to_str().unwrap();
    exp(&ws, &["views", b, "--write"]).success();
    let script = format!(
        r#"
import duckdb, json
con = duckdb.connect()
con.execute(open({views:?}).read())
rows = con.execute("SELECT grid_id, seed, query, latency_ms, algo, lr FROM events WHERE regret < 0.05 ORDER BY grid_id, seed, query").fetchall()
print(json.dumps([list(r) for r in rows]))
"#,
        views = base.join("views.sql").to_str().unwrap()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let duck: Vec<Vec<Value>> = serde_json::from_slice(&out.stdout).unwrap();
    let ours = json_rows(
        &exp(
            &ws,
            &[
                "query",
                b,
                "events",
                "--where",
                "regret < 0.05",
                "--format",
                "json",
            ],
        )
        .success(),
    );
    let mut ours: Vec<Vec<Value>> = ours
        .iter()
        .map(|r| {
            ["grid_id", "seed", "query", "latency_ms", "algo", "lr"]
                .iter()
                .map(|k| r[*k].clone())
                .collect()
        })
        .collect();
    ours.sort_by_key(|r| (r[0].to_string(), r[1].as_i64(), r[2].as_i64()));
    assert!(!duck.is_empty());
    assert_eq!(duck, ours);
}

#[test]
fn convert_imports_a_csv_sweep_and_a_dry_run_writes_nothing() {
    let ws = TempWorkspace::new();
    let csv_dir = ws.root().join("sweep");
    std::fs::create_dir_all(&csv_dir).unwrap();
    // Parameters in columns (one file holds two seeds of a run) ...
    let mut text = String::from("algo,lr,seed,step,regret\n");
    for seed in [1, 2] {
        for step in 0..50 {
            let _ = writeln!(
                text,
                "ucb1,0.1,{seed},{step},{:.4}",
                1.0 / f64::from(step + 1)
            );
        }
    }
    std::fs::write(csv_dir.join("a.csv"), text).unwrap();
    // ... or in a sidecar next to the file.
    events_csv(&csv_dir, "b.csv", 30, 0.0);
    std::fs::write(
        csv_dir.join("b.json"),
        r#"{"algo": "eps", "lr": 0.5, "seed": 9, "host": "node7"}"#,
    )
    .unwrap();
    let base = ws.root().join("store");
    let b = base.to_str().unwrap();
    let c = csv_dir.to_str().unwrap();
    // b.csv has no lr/algo columns: naming them for every file is refused ...
    exp(&ws, &["convert", c, b, "--param-columns", "algo,lr"]).user_error("has no column `algo`");
    assert!(!base.exists(), "nothing half-written");
    // A file that is only a header fails after the checks: the new store is removed again.
    let empty = ws.root().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("h.csv"), "algo,lr,seed,step\n").unwrap();
    exp(
        &ws,
        &[
            "convert",
            empty.to_str().unwrap(),
            b,
            "--param-columns",
            "algo,lr",
        ],
    )
    .user_error("no rows");
    assert!(!base.exists(), "a failed first import leaves no store");
    std::fs::remove_file(csv_dir.join("b.csv")).unwrap();
    std::fs::remove_file(csv_dir.join("b.json")).unwrap();
    let out = exp(
        &ws,
        &["convert", c, b, "--param-columns", "algo,lr", "--dry-run"],
    )
    .success();
    assert!(out.contains("would write 2 runs of 1 grids"), "{out}");
    assert!(!base.exists(), "a dry run writes nothing");
    let out = exp(&ws, &["convert", c, b, "--param-columns", "algo,lr"]).success();
    assert!(
        out.contains("smaller") && out.contains("full scan: CSV"),
        "{out}"
    );
    let rows = json_rows(
        &exp(
            &ws,
            &[
                "query", b, "events", "--where", "seed = 2", "--format", "json",
            ],
        )
        .success(),
    );
    assert_eq!(rows.len(), 50);
    assert!(
        rows.iter()
            .all(|r| r["algo"] == "ucb1" && r.get("step").is_some())
    );
    // Sidecar parameters; the volatile host is dropped.
    let side = ws.root().join("side");
    std::fs::create_dir_all(&side).unwrap();
    events_csv(&side, "b.csv", 30, 0.0);
    std::fs::write(
        side.join("b.json"),
        r#"{"algo": "eps", "lr": 0.5, "seed": 9, "host": "node7"}"#,
    )
    .unwrap();
    exp(&ws, &["convert", side.to_str().unwrap(), b]).success();
    let grids = json_rows(&exp(&ws, &["query", b, "grids", "--format", "json"]).success());
    assert_eq!(grids.len(), 2);
    assert!(grids.iter().all(|g| g.get("host").is_none()));
}

#[test]
fn bad_queries_and_directories_are_one_line_exit_2() {
    let ws = TempWorkspace::new();
    let base = store_with_runs(&ws);
    let b = base.to_str().unwrap();
    exp(&ws, &["query", b, "events", "--where", "latency_ms + 1"])
        .user_error("not a boolean expression");
    exp(
        &ws,
        &["query", b, "events", "--where", "no_such_column < 1"],
    )
    .user_error("--where");
    exp(&ws, &["query", b, "seeds"]).user_error("has no seeds");
    let other = ws.root().join("notes");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("x.txt"), "hello").unwrap();
    exp(&ws, &["info", other.to_str().unwrap()]).user_error("not an experiment store");
}

#[test]
fn bad_writes_are_one_line_exit_2_and_change_nothing() {
    let ws = TempWorkspace::new();
    let base = store_with_runs(&ws);
    let b = base.to_str().unwrap();
    let sorted = |text: String| {
        let mut rows: Vec<String> = json_rows(&text).iter().map(Value::to_string).collect();
        rows.sort();
        rows
    };
    let before = sorted(exp(&ws, &["query", b, "events", "--format", "json"]).success());
    let other = ws.root().join("notes");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("x.txt"), "hello").unwrap();
    let e = events_csv(ws.root(), "e.csv", 3, 0.0);
    // An event column named like a parameter would be ambiguous in the views.
    let clash = ws.root().join("clash.csv");
    std::fs::write(&clash, "lr,latency_ms\n1,2\n").unwrap();
    // A column's type cannot change under the files already written.
    let text_latency = ws.root().join("text.csv");
    std::fs::write(&text_latency, "query,latency_ms\n1,fast\n").unwrap();
    let write = |base: &str, params: &str, events: &Path, extra: &[&str], needle: &str| {
        let events = events.to_str().unwrap();
        let args = [
            &["write", base, "--params", params, "--events", events],
            extra,
        ]
        .concat();
        exp(&ws, &args).user_error(needle);
    };
    let seed = ["--seed", "1"];
    // A failed first write leaves no store behind.
    let header_only = ws.root().join("header.csv");
    std::fs::write(&header_only, "query,latency_ms\n").unwrap();
    let fresh = ws.root().join("fresh");
    write(
        fresh.to_str().unwrap(),
        "{}",
        &header_only,
        &seed,
        "no rows",
    );
    assert!(!fresh.exists());
    write(
        other.to_str().unwrap(),
        "{}",
        &e,
        &seed,
        "not an experiment store",
    );
    write(b, "[1]", &e, &seed, "not a JSON object");
    write(b, r#"{"algo": "x"}"#, &e, &[], "no seed");
    write(b, r#"{"algo": "a/b"}"#, &e, &seed, "algo");
    write(b, r#"{"algo": "new"}"#, &clash, &seed, "lr");
    write(b, r#"{"algo": "new"}"#, &text_latency, &seed, "latency_ms");
    // A params.json edited by hand conflicts with its grid id.
    let grid = std::fs::read_dir(base.join("grids"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let original = std::fs::read_to_string(grid.join("params.json")).unwrap();
    std::fs::write(grid.join("params.json"), r#"{"algo": "edited"}"#).unwrap();
    write(
        b,
        &original,
        &e,
        &["--seed", "1", "--id-chars", "8"],
        "params.json",
    );
    write(
        b,
        &original,
        &e,
        &["--seed", "1", "--id-chars", "4"],
        "--id-chars",
    );
    std::fs::write(grid.join("params.json"), &original).unwrap();
    let after = sorted(exp(&ws, &["query", b, "events", "--format", "json"]).success());
    assert!(after == before, "no failed write changed the store");
}

#[test]
fn exp_run_sweeps_dbopt_and_resumes_without_rerunning_complete_grids() {
    let ws = TempWorkspace::new();
    let grid = ws.root().join("grid.toml");
    std::fs::write(
        &grid,
        r#"
rows = [3000]
queries = [6]
threads = [1]
seeds = [1, 2]
[layouts]
initial = {}
by_time = { sort_by = ["event_ts"], row_group_rows = 500 }
"#,
    )
    .unwrap();
    let base = ws.root().join("store");
    let b = base.to_str().unwrap();
    let g = grid.to_str().unwrap();
    // Killed while storing the third run: two runs are complete.
    let out = common::cmd(
        &ws,
        &[("DBOPT_FAILPOINT", "exp.staged@3")],
        &["exp", "run", b, "--grid", g],
    )
    .output()
    .unwrap();
    assert_ne!(
        out.status.code(),
        Some(0),
        "the fail point killed the sweep"
    );
    let done_before = json_rows(&exp(&ws, &["query", b, "seeds", "--format", "json"]).success());
    assert_eq!(done_before.len(), 2, "{done_before:?}");
    let stamps: Vec<(String, std::time::SystemTime)> = done_before
        .iter()
        .map(|r| {
            let path = events_file(
                &base,
                r["grid_id"].as_str().unwrap(),
                r["seed"].as_i64().unwrap(),
            );
            (
                path.display().to_string(),
                std::fs::metadata(&path).unwrap().modified().unwrap(),
            )
        })
        .collect();
    let out = exp(&ws, &["run", b, "--grid", g, "--format", "json"]).success();
    let runs = json_rows(&out);
    let skipped = runs.iter().filter(|r| r["status"] == "skipped").count();
    assert_eq!((runs.len(), skipped), (4, 2), "{out}");
    for (path, stamp) in stamps {
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            stamp,
            "{path} was not rerun"
        );
    }
    let seeds = json_rows(&exp(&ws, &["query", b, "seeds", "--format", "json"]).success());
    assert_eq!(seeds.len(), 4);
    assert!(seeds.iter().all(|s| s["queries"].as_f64() == Some(6.0)
        && s["queries_run"] == 6
        && s["table_rows"] == 3000));
    // The sorted layout reads fewer bytes than the generated one on the same queries.
    let bytes = |name: &str| -> i64 {
        seeds
            .iter()
            .filter(|s| s["layout_name"] == name)
            .map(|s| s["bytes_scanned"].as_i64().unwrap())
            .sum()
    };
    assert!(bytes("by_time") > 0 && bytes("initial") > 0);
    let events = json_rows(
        &exp(
            &ws,
            &[
                "query",
                b,
                "events",
                "--where",
                "layout_name = 'by_time'",
                "--format",
                "json",
            ],
        )
        .success(),
    );
    assert_eq!(events.len(), 12);
    assert!(events.iter().all(|e| e["layout_id"] != "initial"));
    // Nothing is rerun once complete.
    let again = json_rows(&exp(&ws, &["run", b, "--grid", g, "--format", "json"]).success());
    assert!(again.iter().all(|r| r["status"] == "skipped"));
    assert!(
        !base.join("_work").exists(),
        "scratch workspaces are removed"
    );
}

fn events_file(base: &Path, grid: &str, seed: i64) -> PathBuf {
    base.join(format!(
        "events/grid_id={grid}/seed={seed}/part-00000.parquet"
    ))
}
