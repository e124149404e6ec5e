//! The learning loop through the real binary: the seed workflow (generate, run-workload
//! --explore, enqueue-migration, migration-worker, run-workload --explore, evaluate, canary,
//! promote, rollback, autopilot), `dbopt demo`, and the bad inputs that must exit 2.

mod common;

use common::{active_layout, events, generate_events, layouts, logged_queries, run};
use dbopt_catalog::DecisionRecord;
use dbopt_testkit::TempWorkspace;
use serde_json::Value;

/// How many evaluations of `events` the catalog stores.
fn stored_evals(ws: &TempWorkspace) -> usize {
    let evals = ws.catalog().evals(&events(), None, None, usize::MAX);
    evals.unwrap().len()
}

/// The stored decisions of the autopilot pass `pass_id` on `events`, oldest first.
fn pass_decisions(ws: &TempWorkspace, pass_id: &str) -> Vec<DecisionRecord> {
    let all = ws.catalog().decisions(&events(), usize::MAX).unwrap();
    all.into_iter().filter(|d| d.pass_id == pass_id).collect()
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The events layouts a workload summary's queries ran on.
fn events_layouts(summary: &Value) -> Vec<String> {
    summary["per_layout"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("events@"))
        .cloned()
        .collect()
}

/// 20k shuffled events in row groups of 1000 rows.
fn shuffled() -> TempWorkspace {
    let ws = TempWorkspace::new();
    generate_events(&ws, "20000", "3", "1000", &["--order", "shuffled"]);
    ws
}

fn workload(ws: &TempWorkspace, n: &str, seed: &str, extra: &[&str]) -> Value {
    let base = [
        "run-workload",
        "--table-name",
        "events",
        "--num-queries",
        n,
        "--seed",
        seed,
        "--format",
        "json",
    ];
    json(&run(ws, &[&base[..], extra].concat()).success())
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario that reads top to bottom"
)]
fn the_seed_workflow_routes_evaluates_canaries_promotes_and_rolls_back() {
    let ws = shuffled();
    // With one live layout, routing has a single choice.
    let first = workload(&ws, "60", "1", &["--explore"]);
    assert_eq!(events_layouts(&first).len(), 1, "{first}");

    let out = run(
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
    let target = out
        .split_whitespace()
        .skip_while(|w| *w != "layout")
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    let worker = run(&ws, &["migration-worker", "--once"]).success();
    assert!(worker.contains(&target), "{worker}");
    // Published as a routed candidate: the active layout is unchanged.
    assert_eq!(active_layout(&ws), "initial");

    let routed = workload(
        &ws,
        "80",
        "2",
        &[
            "--explore",
            "--policy",
            "epsilon-greedy",
            "--exploration-rate",
            "0.5",
        ],
    );
    assert_eq!(
        events_layouts(&routed).len(),
        2,
        "both layouts served queries: {routed}"
    );
    let policies = logged_queries(&ws)
        .iter()
        .filter(|q| {
            q.entry
                .route
                .as_ref()
                .is_some_and(|r| r.policy == "epsilon-greedy")
        })
        .count();
    assert!(policies > 0);

    let dry = run(
        &ws,
        &[
            "evaluate",
            "--table-name",
            "events",
            "--once",
            "--explain",
            "--dry-run",
        ],
    )
    .success();
    assert!(
        dry.contains("baseline initial") && dry.contains(&target),
        "{dry}"
    );
    assert_eq!(stored_evals(&ws), 0, "a dry run stores nothing");
    let eval = json(
        &run(
            &ws,
            &[
                "evaluate",
                "--table-name",
                "events",
                "--once",
                "--format",
                "json",
            ],
        )
        .success(),
    );
    assert!(stored_evals(&ws) > 0);
    let scored = eval["scored"].as_array().unwrap();
    let target_all = scored
        .iter()
        .find(|r| r["layout_id"] == target.as_str() && r["cluster_id"] == "*")
        .unwrap_or_else(|| panic!("{eval}"));
    assert!(
        target_all["improvement"].as_f64().unwrap() > 0.0,
        "{target_all}"
    );

    let canary = json(
        &run(
            &ws,
            &[
                "canary",
                "--table-name",
                "events",
                "--layout",
                &target,
                "--queries",
                "15",
                "--format",
                "json",
            ],
        )
        .success(),
    );
    assert_eq!(canary["summary"]["mismatches"], 0, "{canary}");
    assert_eq!(canary["verdict"], "promote", "{canary}");

    let promoted = run(
        &ws,
        &["promote", "--table-name", "events", "--layout", &target],
    )
    .success();
    assert!(promoted.contains("initial ->"), "{promoted}");
    assert_eq!(active_layout(&ws), target);
    run(&ws, &["rollback", "--table-name", "events"]).success();
    assert_eq!(active_layout(&ws), "initial");
    run(
        &ws,
        &["rollback", "--table-name", "events", "--to", &target],
    )
    .success();
    assert_eq!(active_layout(&ws), target);

    // Autopilot: nothing is half-done, every step is recorded with its reason.
    let pass = json(
        &run(
            &ws,
            &[
                "autopilot",
                "--table-name",
                "events",
                "--once",
                "--format",
                "json",
            ],
        )
        .success(),
    );
    assert!(!pass["steps"].as_array().unwrap().is_empty(), "{pass}");
    let decisions = ws.catalog().decisions(&events(), usize::MAX).unwrap();
    assert_eq!(decisions.len(), pass["steps"].as_array().unwrap().len());
}

#[test]
fn bad_loop_inputs_exit_2_and_change_nothing() {
    let ws = shuffled();
    let t = ["--table-name", "events"];
    // Nothing logged yet: evaluate has no window to score.
    run(&ws, &[&["evaluate"][..], &t, &["--once"]].concat()).user_error("no measured queries");
    run(&ws, &[&["rollback"][..], &t].concat()).user_error("no earlier active layout");
    run(
        &ws,
        &[&["promote"][..], &t, &["--layout", "00112233aabbccdd"]].concat(),
    )
    .user_error("has no layout");
    // customers' own layout id is `initial` too; a layout id of events named for customers:
    workload(&ws, "10", "1", &[]);
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
    run(&ws, &["migration-worker", "--once"]).success();
    let layout = layouts(&ws)
        .into_iter()
        .map(|l| l.layout_id.to_string())
        .find(|l| l != "initial")
        .expect("the worker published a layout");
    run(
        &ws,
        &["promote", "--table-name", "customers", "--layout", &layout],
    )
    .user_error("belongs to table 'events'");
    run(
        &ws,
        &["canary", "--table-name", "events", "--layout", "initial"],
    )
    .user_error("active layout");
    for (flag, value, needle) in [
        ("--policy", "greedy", "greedy"),
        ("--objective", "speed", "speed"),
    ] {
        run(
            &ws,
            &[&["run-workload"][..], &t, &[flag, value, "--explore"]].concat(),
        )
        .user_error(needle);
    }
    run(
        &ws,
        &[
            &["run-workload"][..],
            &t,
            &["--explore", "--exploration-rate", "1.5"],
        ]
        .concat(),
    )
    .user_error("exploration_rate");
    run(
        &ws,
        &[&["evaluate"][..], &t, &["--loop", "--interval-sec=-1"]].concat(),
    )
    .user_error("interval");
    run(
        &ws,
        &[&["evaluate"][..], &t, &["--once", "--window", "soon"]].concat(),
    )
    .user_error("duration");
    let negative = ws
        .command(&common::bin())
        .env("ALPHA", "-1")
        .args(["evaluate", "--table-name", "events", "--once"])
        .output()
        .unwrap();
    assert_eq!(negative.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&negative.stderr).contains("alpha"));
    let nan = ws
        .command(&common::bin())
        .env("DBOPT_EVAL_WINDOW", "0s")
        .args(["evaluate", "--table-name", "events", "--once"])
        .output()
        .unwrap();
    assert_eq!(nan.status.code(), Some(2));
    assert_eq!(active_layout(&ws), "initial", "nothing changed");

    // A second autopilot on the same table is refused while the first holds the lock.
    let lock_path = ws.data_dir().join("events").join("_autopilot.lock");
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    lock.lock().unwrap();
    run(&ws, &[&["autopilot"][..], &t, &["--once"]].concat()).user_error("another autopilot");
    lock.unlock().unwrap();
    run(&ws, &[&["autopilot"][..], &t, &["--once"]].concat()).success();
}

#[test]
fn demo_promotes_a_layout_that_scans_fewer_bytes_than_the_initial_one() {
    let ws = TempWorkspace::new();
    let dir = ws.root().join("demo");
    let out = run(
        &ws,
        &[
            "--data-dir",
            dir.to_str().unwrap(),
            "demo",
            "--num-rows",
            "60000",
            "--queries",
            "80",
            "--format",
            "json",
        ],
    )
    .success();
    let report = json(&out);
    let before = report["before"]["total_bytes_scanned"].as_u64().unwrap();
    let after = report["after"]["total_bytes_scanned"].as_u64().unwrap();
    assert!(after < before, "after {after} vs before {before}");
    assert_ne!(report["active"], "initial", "{}", report["passes"]);
    assert!(
        report["canaries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["verdict"] == "promote"),
        "{}",
        report["canaries"]
    );
    // The predicted figure of the promoted layout stands beside its measured one.
    let measured = report["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["measured_bytes"].is_number())
        .count();
    assert!(measured >= 1, "{}", report["proposals"]);
    assert!(dir.join("metadata.db").exists());
    // The directory must be new or empty.
    run(&ws, &["--data-dir", dir.to_str().unwrap(), "demo"]).user_error("not empty");
}

/// The events entry of `dbopt tables --format json`: (active layout, every layout id).
fn events_tables_entry(ws: &TempWorkspace) -> (String, Vec<String>) {
    let tables = json(&run(ws, &["tables", "--format", "json"]).success());
    let events = tables
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "events")
        .unwrap_or_else(|| panic!("{tables}"))
        .clone();
    let layouts = events["layouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    (
        events["active_layout"].as_str().unwrap().to_string(),
        layouts,
    )
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario that reads top to bottom"
)]
fn evaluate_canary_and_autopilot_json_names_the_real_layouts() {
    let ws = shuffled();
    workload(&ws, "40", "1", &[]);
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
    run(&ws, &["migration-worker", "--once"]).success();
    workload(
        &ws,
        "60",
        "2",
        &[
            "--explore",
            "--policy",
            "epsilon-greedy",
            "--exploration-rate",
            "0.5",
        ],
    );
    let (active, layouts) = events_tables_entry(&ws);
    assert_eq!(active, "initial");
    assert_eq!(layouts.len(), 2, "{layouts:?}");
    let target = layouts.iter().find(|l| *l != "initial").unwrap().clone();

    // evaluate: one line of JSON; its layouts, counts and stored rows are the catalog's.
    let out = run(
        &ws,
        &[
            "evaluate",
            "--table-name",
            "events",
            "--once",
            "--format",
            "json",
        ],
    )
    .success();
    assert_eq!(out.trim_end().lines().count(), 1, "{out}");
    let eval = json(&out);
    assert_eq!(eval["table"], "events");
    assert_eq!(eval["baseline"], active.as_str());
    assert_eq!(eval["objective"], "bytes");
    assert_eq!(eval["written"], true);
    assert!(eval["window_start_ms"].as_i64().unwrap() < eval["window_end_ms"].as_i64().unwrap());
    let scored = eval["scored"].as_array().unwrap();
    assert_eq!(stored_evals(&ws), scored.len());
    for row in scored {
        let layout = row["layout_id"].as_str().unwrap();
        assert!(layouts.iter().any(|l| l == layout), "{row}");
        if row["cluster_id"] == "*" {
            let logged = common::served_by(&ws, layout).len();
            assert_eq!(row["queries"].as_u64().unwrap() as usize, logged, "{row}");
            assert!(row["avg_bytes_scanned"].as_f64().unwrap() > 0.0, "{row}");
            assert!(
                row["p95_latency_ms"].as_f64().unwrap() >= row["p50_latency_ms"].as_f64().unwrap()
            );
        }
    }
    assert!(
        scored
            .iter()
            .any(|r| r["layout_id"] == target.as_str() && r["cluster_id"] == "*"),
        "{eval}"
    );

    // canary: the candidate against the active layout, shapes named by fingerprint only.
    let canary = json(
        &run(
            &ws,
            &[
                "canary",
                "--table-name",
                "events",
                "--layout",
                &target,
                "--queries",
                "5",
                "--format",
                "json",
            ],
        )
        .success(),
    );
    assert_eq!(canary["table"], "events");
    assert_eq!(canary["layout"], target.as_str());
    assert_eq!(canary["baseline"], active.as_str());
    let newest = ws
        .catalog()
        .canaries(&events(), None)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(canary["id"].as_i64().unwrap(), newest.id);
    assert_eq!(canary["verdict"], newest.canary.verdict.as_str());
    let shapes = canary["queries"].as_array().unwrap();
    assert_eq!(
        canary["summary"]["queries"].as_u64().unwrap() as usize,
        shapes.len()
    );
    assert!(!shapes.is_empty() && shapes.len() <= 5, "{canary}");
    for shape in shapes {
        assert!(shape.get("sql").is_none(), "no SQL literals: {shape}");
        let fingerprint = shape["fingerprint"].as_str().unwrap();
        let logged = logged_queries(&ws)
            .iter()
            .filter(|q| q.entry.fingerprint == fingerprint)
            .count();
        assert!(logged > 0, "{shape}");
    }

    // autopilot: the pass's steps are its stored decisions; the active layout is the catalog's.
    let out = run(
        &ws,
        &[
            "autopilot",
            "--table-name",
            "events",
            "--once",
            "--format",
            "json",
        ],
    )
    .success();
    assert_eq!(out.trim_end().lines().count(), 1, "{out}");
    let pass = json(&out);
    let (active_after, layouts_after) = events_tables_entry(&ws);
    assert_eq!(pass["table"], "events");
    assert_eq!(pass["active"], active_after.as_str());
    assert!(layouts_after.contains(&active_after));
    let pass_id = pass["pass_id"].as_str().unwrap();
    let decisions = pass_decisions(&ws, pass_id);
    let steps = pass["steps"].as_array().unwrap();
    assert_eq!(decisions.len(), steps.len());
    let first = format!("{}:{}", decisions[0].step, decisions[0].decision);
    assert_eq!(
        first,
        format!(
            "{}:{}",
            steps[0]["step"].as_str().unwrap(),
            steps[0]["decision"].as_str().unwrap()
        )
    );
}

#[test]
fn autopilot_loop_prints_one_json_object_per_pass() {
    use std::io::BufRead;
    let ws = shuffled();
    workload(&ws, "20", "1", &[]);
    let mut child = ws
        .command(&common::bin())
        .args([
            "autopilot",
            "--table-name",
            "events",
            "--loop",
            "--interval-sec",
            "0.2",
            "--format",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut passes = Vec::new();
    while passes.len() < 2 {
        let line = lines
            .next()
            .expect("a line per pass")
            .expect("readable stdout");
        passes.push(json(&line));
    }
    child.kill().ok();
    child.wait().unwrap();
    let (_, layouts) = events_tables_entry(&ws);
    for pass in &passes {
        assert_eq!(pass["table"], "events");
        assert!(
            layouts.iter().any(|l| pass["active"] == l.as_str()),
            "{pass} {layouts:?}"
        );
        assert!(!pass["steps"].as_array().unwrap().is_empty(), "{pass}");
        let pass_id = pass["pass_id"].as_str().unwrap();
        let decisions = pass_decisions(&ws, pass_id);
        assert_eq!(decisions.len(), pass["steps"].as_array().unwrap().len());
    }
    assert_ne!(passes[0]["pass_id"], passes[1]["pass_id"]);
}
