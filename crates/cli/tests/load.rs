//! Load and memory: 1,000 queries from concurrent real `dbopt` processes while a migration
//! rewrites, publishes and activates a layout, the active layout is rolled back and forth, and
//! `gc` removes the old layout under them; and the peak memory of a rewrite larger than
//! `memory_limit`.

mod common;

use common::{bin, generate_events, logged_queries, run};
use dbopt_catalog::{LayoutStatus, QueryOrigin};
use dbopt_testkit::TempWorkspace;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Processes running `run-workload` over a query file, and statements in each file.
const WORKLOAD_CLIENTS: usize = 6;
const WORKLOAD_QUERIES: usize = 150;
/// Threads each starting `dbopt query` processes one after another, and queries per thread.
const QUERY_CLIENTS: usize = 2;
const QUERY_RUNS: usize = 50;

/// Point lookups, range filters and aggregates over `events` whose answers do not depend on
/// the row order (no floating-point sums; every multi-row result is ordered).
fn queries() -> Vec<String> {
    let mut q = Vec::new();
    for m in 1..=12 {
        q.push(format!(
            "SELECT count(*) AS n, sum(duration_ms) AS d, min(amount) AS lo, max(amount) AS hi \
             FROM events WHERE event_date BETWEEN DATE '2025-{m:02}-03' AND DATE '2025-{m:02}-12'"
        ));
    }
    for c in [1, 2, 3, 17, 42, 99] {
        q.push(format!(
            "SELECT country, count(*) AS n, sum(duration_ms) AS d FROM events \
             WHERE customer_id = {c} GROUP BY country ORDER BY country"
        ));
    }
    for id in [1, 777, 5000, 31337, 59999] {
        q.push(format!(
            "SELECT event_id, user_id, customer_id, amount, event_ts FROM events \
             WHERE event_id = {id}"
        ));
    }
    for a in [10, 500, 2500, 9000] {
        q.push(format!(
            "SELECT count(*) AS n, count(DISTINCT session_id) AS s FROM events \
             WHERE user_id BETWEEN {a} AND {}",
            a + 40
        ));
    }
    q.push(
        "SELECT device, event_type, count(*) AS n, max(duration_ms) AS d FROM events \
         GROUP BY device, event_type ORDER BY device, event_type"
            .into(),
    );
    q.push(
        "SELECT status_code, min(event_ts) AS first, max(event_ts) AS last FROM events \
         WHERE country = 'US' GROUP BY status_code ORDER BY status_code"
            .into(),
    );
    q
}

/// Writes `statements` as a `.sql` workload file.
fn write_sql(path: &Path, statements: &[String]) {
    let mut text = String::new();
    for s in statements {
        text.push_str(s);
        text.push_str(";\n");
    }
    std::fs::write(path, text).unwrap();
}

/// `(sql, result digest)` of every logged query whose workload starts with `prefix` (with
/// `query`: of every `dbopt query`), and the number of logged errors among them.
fn logged(ws: &TempWorkspace, prefix: &str) -> (Vec<(String, String)>, i64) {
    let mut rows = Vec::new();
    let mut errors = 0;
    for q in logged_queries(ws) {
        let e = q.entry;
        let matches = if prefix == "query" {
            e.origin == QueryOrigin::Query
        } else {
            e.workload.as_deref().is_some_and(|w| w.starts_with(prefix))
        };
        if matches {
            errors += i64::from(e.error.is_some());
            rows.push((e.sql, e.result_digest.unwrap_or_default()));
        }
    }
    (rows, errors)
}

/// The target layout id printed by `enqueue-migration`.
fn target_of(out: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("target layout:"))
        .unwrap_or_else(|| panic!("no target layout in:\n{out}"))
        .trim()
        .to_string()
}

fn spawn_workload(ws: &TempWorkspace, file: &Path, explore: bool) -> Child {
    let mut cmd = ws.command(&bin());
    cmd.args(["run-workload", "--table-name", "events", "--format", "json"])
        .arg("--workload-file")
        .arg(file);
    if explore {
        cmd.arg("--explore");
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dbopt starts")
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario that reads top to bottom"
)]
fn a_thousand_concurrent_queries_survive_a_migration_promotions_and_gc() {
    let ws = Arc::new(TempWorkspace::new());
    generate_events(&ws, "60000", "5", "2000", &["--rows-per-file", "15000"]);
    let all = queries();

    // The answers before any migration: every query once on the initial layout, logged
    // with its result digest, and as CSV for the `dbopt query` clients.
    let expected_file = ws.root().join("expected.sql");
    write_sql(&expected_file, &all);
    let out = run(
        &ws,
        &[
            "run-workload",
            "--table-name",
            "events",
            "--format",
            "json",
            "--workload-file",
            expected_file.to_str().unwrap(),
        ],
    )
    .success();
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["errors"], 0, "{out}");
    let (rows, errors) = logged(&ws, "expected.sql:");
    assert_eq!((rows.len(), errors), (all.len(), 0));
    let expected: BTreeMap<String, String> = rows.into_iter().collect();
    let csv_queries: Vec<String> = all.iter().step_by(3).cloned().collect();
    let expected_csv: BTreeMap<String, String> = csv_queries
        .iter()
        .map(|q| {
            let out = run(
                &ws,
                &["query", "--table-name", "events", "--format", "csv", q],
            )
            .success();
            (q.clone(), out)
        })
        .collect();

    // Layout A (sorted by event_date) becomes active: the layout the clients start on.
    let out = run(
        &ws,
        &[
            "enqueue-migration",
            "--table-name",
            "events",
            "--sort-by",
            "event_date",
            "--activate",
        ],
    )
    .success();
    let a = target_of(&out);
    run(&ws, &["migration-worker", "--once"]).success();
    assert_eq!(common::active_layout(&ws), a);
    let before = logged_queries(&ws).len();

    // Clients: run-workload processes (one session each, half routed across the live
    // layouts), and threads starting one `dbopt query` process per query (each resolves the
    // layout from the catalog on its own), half routed, half on the active layout.
    let mut workloads = Vec::new();
    for k in 0..WORKLOAD_CLIENTS {
        let statements: Vec<String> = (0..WORKLOAD_QUERIES)
            .map(|i| all[(i * 7 + k * 5) % all.len()].clone())
            .collect();
        let file = ws.root().join(format!("client{k}.sql"));
        write_sql(&file, &statements);
        workloads.push(spawn_workload(&ws, &file, k % 2 == 1));
    }
    let mut query_threads = Vec::new();
    for t in 0..QUERY_CLIENTS {
        let ws = Arc::clone(&ws);
        let csv_queries = csv_queries.clone();
        let expected_csv = expected_csv.clone();
        query_threads.push(thread::spawn(move || {
            let mut mismatches = Vec::new();
            for i in 0..QUERY_RUNS {
                let q = &csv_queries[(i + t * 3) % csv_queries.len()];
                let mut args = vec!["query", "--table-name", "events", "--format", "csv"];
                if i % 2 == 0 {
                    args.push("--no-route");
                }
                args.push(q);
                let r = run(&ws, &args);
                if r.code() != Some(0) {
                    mismatches.push(format!("{q}: exit {:?}: {}", r.code(), r.stderr()));
                } else if r.stdout() != expected_csv[q] {
                    mismatches.push(format!("{q}: got\n{}", r.stdout()));
                }
            }
            mismatches
        }));
    }

    // Meanwhile: migrate A -> B and activate B at publish (a real worker process), roll back
    // to A and activate B again, then gc with --keep 0: first within the default grace
    // period (A's files stay), then with a 1 s grace until A's directory is gone.
    let out = run(
        &ws,
        &[
            "enqueue-migration",
            "--table-name",
            "events",
            "--sort-by",
            "customer_id,event_ts",
            "--activate",
        ],
    )
    .success();
    let b = target_of(&out);
    assert_ne!(a, b);
    run(&ws, &["migration-worker", "--once"]).success();
    assert_eq!(common::active_layout(&ws), b);
    run(&ws, &["rollback", "--table-name", "events"]).success();
    assert_eq!(common::active_layout(&ws), a);
    run(
        &ws,
        &["activate-layout", "--table-name", "events", "--layout", &b],
    )
    .success();
    assert_eq!(common::active_layout(&ws), b);
    let a_dir = ws.data_dir().join("events").join(format!("layout_{a}"));
    let out = run(&ws, &["gc", "--table-name", "events", "--keep", "0"]).success();
    assert!(
        out.contains(&format!("kept events/layout_{a} for its grace period")),
        "{out}"
    );
    assert!(a_dir.is_dir(), "A is kept for the grace period:\n{out}");
    let status = common::layouts(&ws)
        .into_iter()
        .find(|l| l.layout_id.as_str() == a)
        .map(|l| l.status);
    assert_eq!(status, Some(LayoutStatus::Retired));
    // The catalog remembers when A was retired: a long grace keeps it on the next gc too.
    let out = run(
        &ws,
        &[
            "gc",
            "--table-name",
            "events",
            "--keep",
            "0",
            "--grace",
            "1h",
        ],
    )
    .success();
    assert!(out.contains("for its grace period"), "{out}");
    assert!(a_dir.is_dir());
    let mut gc_runs = 0;
    while a_dir.exists() {
        thread::sleep(Duration::from_millis(300));
        run(
            &ws,
            &[
                "gc",
                "--table-name",
                "events",
                "--keep",
                "0",
                "--grace",
                "1s",
            ],
        )
        .success();
        gc_runs += 1;
        assert!(gc_runs < 100, "gc never removed {}", a_dir.display());
    }
    // The removal happened under load: some clients were still running.
    // (clients on the active layout opened their session on A and keep it: one still
    // running must re-resolve when A's files go.)
    let mut still_running = 0;
    let mut pinned_to_a_running = 0;
    for (k, c) in workloads.iter_mut().enumerate() {
        let running = c.try_wait().unwrap().is_none();
        still_running += usize::from(running);
        pinned_to_a_running += usize::from(running && k % 2 == 0);
    }

    // Every client finished every query without an error, with the answers from before.
    let mut failures = Vec::new();
    let mut re_resolved = 0;
    for (k, child) in workloads.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        re_resolved += stderr.matches("re-resolving").count();
        if let Some(line) = stderr.lines().find(|l| l.contains("re-resolving")) {
            eprintln!("client {k}: {line}");
        }
        assert!(
            out.status.success(),
            "client {k} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(summary["queries"], WORKLOAD_QUERIES as u64, "{stdout}");
        if summary["errors"] != 0 {
            failures.push(format!("client {k}: {}", summary["first_errors"]));
        }
    }
    for t in query_threads {
        failures.extend(t.join().unwrap());
    }
    assert!(
        failures.is_empty(),
        "query failures:\n{}",
        failures.join("\n")
    );
    let (mut rows, mut errors) = logged(&ws, "client");
    let (query_rows, query_errors) = logged(&ws, "query");
    let query_rows: Vec<_> = query_rows
        .into_iter()
        .filter(|(sql, _)| csv_queries.contains(sql))
        .collect();
    rows.extend(query_rows);
    errors += query_errors;
    assert_eq!(errors, 0, "errors in the query log");
    let total = WORKLOAD_CLIENTS * WORKLOAD_QUERIES + QUERY_CLIENTS * QUERY_RUNS;
    // The CSV baselines were logged too (`origin = 'query'`), before the clients started.
    assert_eq!(rows.len(), total + csv_queries.len());
    for (sql, digest) in &rows {
        assert_eq!(&expected[sql], digest, "a different answer to {sql}");
    }
    let after = logged_queries(&ws).len();
    assert_eq!(after - before, total);
    assert!(
        still_running > 0,
        "every client had finished before gc removed layout {a}: the test needs longer clients"
    );
    if pinned_to_a_running > 0 {
        assert!(
            re_resolved > 0,
            "a client reading A after its removal re-resolves"
        );
    }
    eprintln!(
        "{total} client queries, {still_running} of {WORKLOAD_CLIENTS} workload clients running \
         when gc removed A ({gc_runs} gc runs), {re_resolved} queries re-resolved"
    );
    assert!(!a_dir.exists());
    assert_eq!(common::active_layout(&ws), b);
}

/// The worker's peak resident memory may exceed `memory_limit` by at most this much: the
/// documented overhead (README, Migration, "Memory": 160 MiB plus one row group's encoded
/// size, about 10 MiB for this table; at most 143 MiB measured) with a margin.
const REWRITE_OVERHEAD_BYTES: u64 = 192 << 20;

/// 400k generated events with a migration sorting them by (session_id, event_ts) queued;
/// returns the workspace and the target layout.
fn events_with_a_queued_sort() -> (TempWorkspace, String) {
    let ws = TempWorkspace::new();
    generate_events(&ws, "400000", "3", "8192", &["--rows-per-file", "100000"]);
    let out = run(
        &ws,
        &[
            "enqueue-migration",
            "--table-name",
            "events",
            "--sort-by",
            "session_id,event_ts",
        ],
    )
    .success();
    let target = target_of(&out);
    (ws, target)
}

/// Checks the job's recorded peak RSS is within `limit` plus [`REWRITE_OVERHEAD_BYTES`].
fn assert_peak_within_limit(ws: &TempWorkspace, target: &str, limit: u64, what: &str) {
    let peak = common::job(ws, target).stats.peak_memory_bytes;
    assert!(peak > 0, "peak RSS is recorded");
    eprintln!(
        "{what} at memory_limit {} MiB: peak RSS {} MiB",
        limit >> 20,
        peak >> 20
    );
    assert!(
        peak <= limit + REWRITE_OVERHEAD_BYTES,
        "peak RSS {} MiB > memory_limit {} MiB + overhead {} MiB",
        peak >> 20,
        limit >> 20,
        REWRITE_OVERHEAD_BYTES >> 20
    );
}

#[test]
fn a_rewrite_larger_than_the_memory_limit_spills_and_stays_within_limit_plus_overhead() {
    let (ws, target) = events_with_a_queued_sort();
    let run = run(
        &ws,
        &["--memory-limit", "32MiB", "migration-worker", "--once"],
    );
    let out = run.success() + &run.stderr();
    let spilled: u64 = out
        .split("spilled ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the worker reports spilled bytes:\n{out}"));
    assert!(spilled > 0, "the sort must spill:\n{out}");
    let what = format!("rewrite of 400k rows spilling {} MiB", spilled >> 20);
    assert_peak_within_limit(&ws, &target, 32 << 20, &what);
}

#[test]
fn a_rewrite_that_fits_the_memory_limit_sorts_in_memory_and_stays_within_limit_plus_overhead() {
    let (ws, target) = events_with_a_queued_sort();
    let out = run(
        &ws,
        &["--memory-limit", "192MiB", "migration-worker", "--once"],
    )
    .success();
    assert!(
        out.contains("spilled 0 bytes, 1 of 1 units sorted in memory"),
        "400k rows fit in 192 MiB:\n{out}"
    );
    assert_peak_within_limit(&ws, &target, 192 << 20, "in-memory rewrite of 400k rows");
}
