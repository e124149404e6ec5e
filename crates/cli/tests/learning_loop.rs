//! The learning loop through the real binary: the seed workflow (generate, run-workload
//! --explore, enqueue-migration, migration-worker, run-workload --explore, evaluate, canary,
//! promote, rollback, autopilot), `dbopt demo`, and the bad inputs that must exit 2.

mod common;

use common::{active_layout, generate_events, run, scalar};
use dbopt_testkit::TempWorkspace;
use serde_json::Value;

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
    let policies: i64 = scalar(
        &ws,
        "SELECT count(*) FROM query_log WHERE policy = 'epsilon-greedy'",
    );
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
    let evals = |ws: &TempWorkspace| -> i64 { scalar(ws, "SELECT count(*) FROM layout_evals") };
    assert_eq!(evals(&ws), 0, "a dry run stores nothing");
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
    assert!(evals(&ws) > 0);
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
    let decisions: i64 = scalar(&ws, "SELECT count(*) FROM decisions");
    assert_eq!(decisions as usize, pass["steps"].as_array().unwrap().len());
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
    let layout: String = scalar(
        &ws,
        "SELECT layout_id FROM layouts WHERE table_name = 'events' AND layout_id != 'initial'",
    );
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
