//! Observability through the real binary: `status`, `jobs`, `history` and `report` on a table
//! the learning loop ran on, `dbopt serve` scraped and parsed by the Prometheus project's own
//! Python parser, SIGTERM, and the bad inputs that must exit 2 and write nothing.

mod common;

use common::{active_layout, bin, events, generate_events, jobs, logged_queries, run};
use dbopt_catalog::{JobStatus, Verdict};
use dbopt_testkit::TempWorkspace;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// 20k shuffled events; a workload, a sorted candidate built by the worker, a routed workload,
/// an evaluation and an autopilot pass. Returns the workspace and the candidate's layout id.
fn looped() -> (TempWorkspace, String) {
    let ws = TempWorkspace::new();
    generate_events(&ws, "20000", "3", "1000", &["--order", "shuffled"]);
    let workload = |seed: &str, extra: &[&str]| {
        let base = [
            "run-workload",
            "--table-name",
            "events",
            "--num-queries",
            "40",
            "--seed",
            seed,
        ];
        run(&ws, &[&base[..], extra].concat()).success();
    };
    workload("1", &[]);
    run(
        &ws,
        &[
            "enqueue-migration",
            "--table-name",
            "events",
            "--sort-by",
            "event_date",
            "--row-group-rows",
            "1000",
        ],
    )
    .success();
    run(&ws, &["migration-worker", "--once"]).success();
    let target = jobs(&ws)
        .into_iter()
        .find(|j| j.status == JobStatus::Done)
        .expect("the worker published the job")
        .target_layout
        .to_string();
    workload(
        "2",
        &[
            "--explore",
            "--policy",
            "epsilon-greedy",
            "--exploration-rate",
            "0.5",
        ],
    );
    run(&ws, &["evaluate", "--table-name", "events", "--once"]).success();
    run(&ws, &["autopilot", "--table-name", "events", "--once"]).success();
    (ws, target)
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario that reads top to bottom"
)]
fn status_jobs_history_and_report_show_what_the_catalog_holds() {
    let (ws, target) = looped();

    let status = json(
        &run(
            &ws,
            &["status", "--table-name", "events", "--format", "json"],
        )
        .success(),
    );
    let layouts = status["layouts"].as_array().unwrap();
    let by_id = |id: &str| {
        layouts
            .iter()
            .find(|l| l["layout_id"] == id)
            .unwrap_or_else(|| panic!("no layout {id} in {status}"))
    };
    let logged = logged_queries(&ws)
        .iter()
        .filter(|q| q.entry.error.is_none() && q.entry.layout_id.is_some())
        .count() as i64;
    let shown: i64 = layouts.iter().map(|l| l["queries"].as_i64().unwrap()).sum();
    assert_eq!(shown, logged, "every measured query is counted once");
    let target_queries = logged_queries(&ws)
        .iter()
        .filter(|q| {
            q.entry
                .layout_id
                .as_ref()
                .is_some_and(|l| l.as_str() == target)
        })
        .count() as i64;
    assert_eq!(by_id(&target)["queries"].as_i64().unwrap(), target_queries);
    let active = active_layout(&ws);
    assert_eq!(status["active_layout"], active.as_str());
    assert_eq!(by_id(&active)["state"], "active");
    let shares: f64 = layouts
        .iter()
        .filter_map(|l| l["traffic_share"].as_f64())
        .sum();
    assert!((shares - 1.0).abs() < 1e-9, "shares add up to 1: {status}");
    assert!(!status["best_per_cluster"].as_array().unwrap().is_empty());
    assert!(status["last_decision"]["reason"].is_string(), "{status}");

    let plain = run(&ws, &["status", "--table-name", "events"]).success();
    assert!(
        plain.contains(&target) && !plain.contains('\u{1b}'),
        "{plain}"
    );

    let jobs = json(&run(&ws, &["jobs", "--format", "json"]).success());
    let job = &jobs.as_array().unwrap()[0];
    assert_eq!(job["state"], "done");
    assert_eq!(job["target_layout"], target.as_str());
    assert_eq!(job["units_done"], job["units_total"]);
    assert_eq!(job["rows_written"], 20000);
    let none = json(&run(&ws, &["jobs", "--state", "failed", "--format", "json"]).success());
    assert_eq!(none.as_array().unwrap().len(), 0);
    let jobs_text = run(&ws, &["jobs", "--table-name", "events"]).success();
    assert!(jobs_text.contains(&target), "{jobs_text}");

    let stored = ws
        .catalog()
        .evals(&events(), None, None, usize::MAX)
        .unwrap();
    let evals = stored.len() as i64;
    let history = json(
        &run(
            &ws,
            &[
                "history",
                "--table-name",
                "events",
                "--limit",
                "100000",
                "--format",
                "json",
            ],
        )
        .success(),
    );
    assert_eq!(history.as_array().unwrap().len() as i64, evals);
    let limited = json(
        &run(
            &ws,
            &[
                "history",
                "--table-name",
                "events",
                "--limit",
                "3",
                "--format",
                "json",
            ],
        )
        .success(),
    );
    assert_eq!(limited.as_array().unwrap().len(), 3.min(evals as usize));
    let scored = stored.iter().filter(|e| e.eval.reward.is_some()).count() as i64;
    let csv = run(
        &ws,
        &[
            "history",
            "--table-name",
            "events",
            "--only-scored",
            "--limit",
            "100000",
            "--format",
            "csv",
        ],
    )
    .success();
    assert_eq!(csv.lines().count() as i64, scored + 1, "{csv}");

    let out = ws.root().join("report");
    run(
        &ws,
        &[
            "report",
            "--table-name",
            "events",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .success();
    for file in [
        "summary.md",
        "layout_eval.csv",
        "layout_eval.json",
        "query_routing_summary.csv",
        "proposals.csv",
        "latency_over_time.svg",
        "bytes_scanned.svg",
        "traffic_share.svg",
        "predicted_vs_measured.svg",
    ] {
        assert!(out.join(file).is_file(), "{file} written");
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains(&target), "{summary}");
    assert!(summary.contains("latency_over_time.svg"));
    let svg = std::fs::read_to_string(out.join("latency_over_time.svg")).unwrap();
    assert!(
        svg.contains(&target) && svg.contains("initial"),
        "legend names both layouts"
    );
    let report_json = json(&std::fs::read_to_string(out.join("layout_eval.json")).unwrap());
    assert_eq!(report_json.as_array().unwrap().len() as i64, evals);

    // No query text (literal values) unless asked for.
    let sample_sql = logged_queries(&ws).pop().unwrap().entry.sql;
    let all_text: String = ["summary.md", "query_routing_summary.csv", "proposals.csv"]
        .iter()
        .map(|f| std::fs::read_to_string(out.join(f)).unwrap())
        .collect();
    assert!(
        !all_text.contains(&sample_sql),
        "no SQL without --include-sql"
    );

    // A second report into the same directory is refused and changes nothing.
    let before = std::fs::read(out.join("summary.md")).unwrap();
    run(
        &ws,
        &[
            "report",
            "--table-name",
            "events",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .user_error("--force");
    assert_eq!(std::fs::read(out.join("summary.md")).unwrap(), before);
    run(
        &ws,
        &[
            "report",
            "--table-name",
            "events",
            "--out",
            out.to_str().unwrap(),
            "--force",
            "--include-sql",
        ],
    )
    .success();
    let with_sql = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(with_sql.contains("SELECT"), "{with_sql}");
}

/// A running `dbopt serve`, killed on drop if a test fails before stopping it.
struct Served {
    child: Child,
    addr: String,
}

impl Served {
    fn start(ws: &TempWorkspace, extra: &[&str]) -> Served {
        let mut child = ws
            .command(&bin())
            .args(["serve", "--metrics-addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dbopt serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Served { child, addr }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr).unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (code, body.to_string())
    }

    /// Sends SIGTERM and waits (up to a minute) for the exit code.
    fn terminate(mut self) -> (Option<i32>, String) {
        common::signal(&self.child, "TERM");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                self.child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                return (status.code(), err);
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "serve did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses exposition text with prometheus_client's parser; returns (sample name, sorted
/// labels) -> value.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (install bench/requirements.txt)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejected the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn serve_exposes_metrics_that_equal_the_catalog_and_stops_on_sigterm() {
    let (ws, target) = looped();
    let served = Served::start(&ws, &[]);
    let (code, health) = served.get("/healthz");
    assert_eq!((code, health.trim()), (200, "ok"));
    assert_eq!(served.get("/nope").0, 404);
    let (code, text) = served.get("/metrics");
    assert_eq!(code, 200);
    let metrics = parse_exposition(&text);

    for layout in ["initial", target.as_str()] {
        let served = common::served_by(&ws, layout);
        let queries = served.len();
        let bytes: u64 = served.iter().map(|e| e.metrics.bytes_scanned).sum();
        let key = |name: &str| format!("{name}{{layout={layout},table=events}}");
        assert_eq!(
            metrics[&key("dbopt_queries_total")],
            queries as f64,
            "{text}"
        );
        assert_eq!(metrics[&key("dbopt_bytes_scanned_total")], bytes as f64);
        assert_eq!(
            metrics[&key("dbopt_query_duration_seconds_count")],
            queries as f64
        );
    }
    let active = active_layout(&ws);
    assert_eq!(
        metrics[&format!("dbopt_active_layout_info{{layout={active},table=events}}")],
        1.0
    );
    let all_jobs = jobs(&ws);
    for state in ["queued", "running", "done", "failed"] {
        let jobs = all_jobs
            .iter()
            .filter(|j| j.status.as_str() == state)
            .count();
        assert_eq!(
            metrics[&format!("dbopt_migration_jobs{{state={state}}}")],
            jobs as f64
        );
    }
    assert!(metrics["dbopt_migration_jobs{state=done}"] >= 1.0);
    let written: u64 = all_jobs.iter().map(|j| j.stats.bytes_written).sum();
    assert_eq!(metrics["dbopt_rewrite_bytes_total{}"], written as f64);
    let proposals = ws.catalog().proposals(&events()).unwrap();
    let recommended = proposals.iter().filter(|p| p.proposal.recommended).count();
    assert_eq!(
        metrics["autopilot_recommendations_total{table=events}"],
        recommended as f64
    );
    // prometheus_client names counter samples with `_total` even when the family has none.
    let canaries = ws.catalog().canaries(&events(), None).unwrap();
    let rejected = canaries
        .iter()
        .filter(|c| c.canary.verdict == Verdict::Reject)
        .count();
    assert_eq!(
        metrics["autopilot_canary_failures_total{table=events}"],
        rejected as f64
    );
    assert!(!text.contains("SELECT"), "no SQL on /metrics");
    // The column-chunk cache: the same figures on /metrics and on /cache.
    let (code, cache) = served.get("/cache");
    assert_eq!(code, 200, "{cache}");
    let cache: serde_json::Value = serde_json::from_str(&cache).unwrap();
    for (metric, field) in [
        ("dbopt_chunk_cache_limit_bytes{}", "max_bytes"),
        ("dbopt_chunk_cache_entries{}", "entries"),
        ("dbopt_chunk_cache_hits_total{}", "hits"),
        ("dbopt_chunk_cache_misses_total{}", "misses"),
    ] {
        assert_eq!(
            metrics[metric],
            cache[field].as_f64().unwrap(),
            "{metric}: {cache}"
        );
    }
    assert_eq!(
        metrics["dbopt_chunk_cache_limit_bytes{}"],
        f64::from(1u32 << 30)
    );

    // A second server on the same port is refused with exit 2.
    let port = served.addr.rsplit(':').next().unwrap().to_string();
    run(
        &ws,
        &["serve", "--metrics-addr", &format!("127.0.0.1:{port}")],
    )
    .user_error("already in use");

    let (code, stderr) = served.terminate();
    assert_eq!(code, Some(0), "clean exit on SIGTERM: {stderr}");
    // The port is released.
    std::net::TcpListener::bind(format!("127.0.0.1:{port}")).expect("port released");
}

#[test]
fn serve_with_the_worker_hands_back_or_finishes_its_job_on_sigterm() {
    let ws = TempWorkspace::new();
    generate_events(&ws, "20000", "5", "1000", &["--order", "shuffled"]);
    run(
        &ws,
        &[
            "enqueue-migration",
            "--table-name",
            "events",
            "--sort-by",
            "event_date",
        ],
    )
    .success();
    let served = Served::start(&ws, &["--worker"]);
    // Let the worker claim the job, then stop the service mid-way or after.
    let start = Instant::now();
    while jobs(&ws)[0].attempt == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the worker claims the job"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, stderr) = served.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    let job = jobs(&ws).remove(0);
    let (status, owner) = (job.status.as_str(), job.lease_owner);
    assert!(
        status == "done" || (status == "queued" && owner.is_none()),
        "the job is published or back in the queue, not left running: {status} {owner:?}"
    );
}

#[test]
fn bad_observability_input_exits_2_and_writes_nothing() {
    let ws = TempWorkspace::new();
    generate_events(&ws, "2000", "1", "500", &[]);
    run(&ws, &["status", "--table-name", "nope"]).user_error("nope");
    run(&ws, &["history", "--table-name", "nope"]).user_error("nope");
    run(&ws, &["jobs", "--table-name", "nope"]).user_error("nope");
    let bad_state = run(&ws, &["jobs", "--state", "sleeping"]);
    assert_eq!(bad_state.code(), Some(2), "{}", bad_state.stderr());
    let bad_format = run(
        &ws,
        &["status", "--table-name", "events", "--format", "xml"],
    );
    assert_eq!(bad_format.code(), Some(2), "{}", bad_format.stderr());
    run(&ws, &["serve", "--metrics-addr", "localhost:http"]).user_error("--metrics-addr");
    run(
        &ws,
        &[
            "serve",
            "--metrics-addr",
            "127.0.0.1:0",
            "--interval-sec",
            "0",
        ],
    )
    .user_error("--interval-sec");

    let full = ws.root().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep.txt"), "mine").unwrap();
    run(
        &ws,
        &[
            "report",
            "--table-name",
            "events",
            "--out",
            full.to_str().unwrap(),
        ],
    )
    .user_error("--force");
    let names: Vec<_> = std::fs::read_dir(&full).unwrap().collect();
    assert_eq!(names.len(), 1, "nothing written beside the user's file");
    let file = ws.root().join("a-file");
    std::fs::write(&file, "x").unwrap();
    run(
        &ws,
        &[
            "report",
            "--table-name",
            "events",
            "--out",
            file.to_str().unwrap(),
        ],
    )
    .user_error("");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    let leftovers: Vec<String> = std::fs::read_dir(ws.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no staging left behind: {leftovers:?}"
    );
}
