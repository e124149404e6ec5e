//! End-to-end tests of `dbopt analyze` and `dbopt propose`: the real binary on small
//! generated tables.

mod common;
use common::{generate_events, run, scripted};
use dbopt_testkit::{Run, TempWorkspace};
use serde_json::Value;

fn query(ws: &TempWorkspace, sql: &str) {
    run(ws, &["query", "--table-name", "events", sql]).success();
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.success()).expect("JSON output")
}

fn date_queries(ws: &TempWorkspace) {
    for (from, to) in [
        ("2025-02-01", "2025-02-08"),
        ("2025-03-10", "2025-03-12"),
        ("2025-05-01", "2025-05-31"),
        ("2025-07-04", "2025-07-05"),
        ("2025-09-01", "2025-09-15"),
        ("2025-11-20", "2025-11-27"),
    ] {
        query(
            ws,
            &format!(
                "SELECT event_type, count(*), sum(amount) FROM events \
                 WHERE event_date >= DATE '{from}' AND event_date < DATE '{to}' GROUP BY event_type"
            ),
        );
    }
}

#[test]
fn current_layout_prediction_is_within_15_percent_of_measured() {
    let ws = TempWorkspace::new();
    generate_events(&ws, "120000", "11", "16384", &["--order", "arrival"]);
    date_queries(&ws);
    for c in [3, 17, 250] {
        query(
            &ws,
            &format!(
                "SELECT event_date, count(*) FROM events WHERE customer_id = {c} GROUP BY event_date"
            ),
        );
    }
    query(
        &ws,
        "SELECT country, avg(duration_ms) FROM events WHERE country IN ('DE', 'FR') \
         AND event_ts >= TIMESTAMP '2025-06-01 00:00:00' AND event_ts < TIMESTAMP '2025-06-03 00:00:00' \
         GROUP BY country",
    );
    let out = json(&run(
        &ws,
        &["propose", "--table-name", "events", "--format", "json"],
    ));
    let cal = &out["calibration"];
    let ratio = cal["ratio"].as_f64().unwrap();
    assert_eq!(cal["queries"].as_u64(), Some(10), "{cal}");
    assert!(
        (0.85..=1.15).contains(&ratio),
        "predicted {} vs measured {}: ratio {ratio}",
        cal["predicted_bytes"],
        cal["measured_bytes"]
    );
    // The current layout is always a candidate.
    let proposals = out["proposals"].as_array().unwrap();
    assert!(proposals.iter().any(|p| p["is_current"] == true));
}

#[test]
fn date_ranges_on_a_shuffled_table_propose_a_date_led_layout() {
    let ws = TempWorkspace::new();
    generate_events(&ws, "60000", "11", "16384", &["--order", "shuffled"]);
    date_queries(&ws);
    let run1 = run(
        &ws,
        &["propose", "--table-name", "events", "--format", "json"],
    );
    let out = json(&run1);
    let best = &out["proposals"][0];
    assert_eq!(best["recommended"], true, "{best:#}");
    let spec = &best["spec"];
    let leads = spec["sort_by"][0]["column"] == "event_date"
        || spec["partition_by"][0] == "event_date"
        || spec["cluster_by"][0] == "event_date";
    assert!(leads, "{}", best["description"]);
    assert!(best["predicted_reduction"].as_f64().unwrap() > 0.5);
    assert!(best["payback_runs"].as_f64().is_some());

    // Stored with its content-addressed target id; the best one is recorded as recommended.
    let stored = ws
        .catalog()
        .get_proposal(best["id"].as_i64().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.proposal.target_layout.as_str(),
        best["target_layout"].as_str().unwrap()
    );
    assert_eq!(stored.proposal.source_layout.as_str(), "initial");
    assert!(stored.proposal.recommended);
    assert!(stored.measured_bytes.is_none());

    // Explained table output names the driving cluster.
    let text = run(
        &ws,
        &[
            "propose",
            "--table-name",
            "events",
            "--top",
            "3",
            "--explain",
        ],
    )
    .success();
    assert!(text.contains("event_date:range"), "{text}");
    assert!(
        text.contains("keep current") || text.lines().count() > 8,
        "{text}"
    );
}

#[test]
fn analyze_profiles_columns_and_assigns_stable_clusters() {
    let ws = TempWorkspace::new();
    generate_events(&ws, "20000", "11", "16384", &["--order", "arrival"]);
    date_queries(&ws);
    query(&ws, "SELECT count(*) FROM events WHERE customer_id = 5");
    let out = json(&run(
        &ws,
        &["analyze", "--table-name", "events", "--format", "json"],
    ));
    let profile = &out["profile"];
    assert_eq!(profile["queries_analyzed"], 7);
    assert_eq!(profile["hot_columns"][0], "event_date");
    let date = profile["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == "event_date")
        .unwrap();
    assert_eq!(date["range"], 6);
    assert!(out["stats"]["columns"].as_array().unwrap().len() >= 10);

    let clusters = |ws: &TempWorkspace| -> Vec<(i64, Option<String>)> {
        common::logged_queries(ws)
            .into_iter()
            .map(|q| (q.id, q.entry.cluster_id))
            .collect()
    };
    let first = clusters(&ws);
    assert!(first.iter().all(|(_, c)| c.is_some()), "{first:?}");
    let distinct: std::collections::BTreeSet<_> = first.iter().map(|(_, c)| c.clone()).collect();
    assert_eq!(
        distinct.len(),
        2,
        "date ranges share one cluster: {first:?}"
    );
    run(&ws, &["analyze", "--table-name", "events"]).success();
    assert_eq!(clusters(&ws), first, "cluster ids are stable across runs");

    let text = run(&ws, &["analyze", "--table-name", "events", "--since", "1h"]).success();
    assert!(text.contains("hot columns: event_date"), "{text}");
}

#[test]
fn bad_input_is_a_one_line_error() {
    let ws = TempWorkspace::new();
    generate_events(&ws, "2000", "11", "16384", &["--order", "arrival"]);
    run(&ws, &["analyze", "--table-name", "events"]).user_error("no logged queries");
    run(&ws, &["propose", "--table-name", "events"]).user_error("no logged queries");
    run(&ws, &["analyze", "--table-name", "nope"]).user_error("unknown table");
    run(&ws, &["propose", "--table-name", "nope"]).user_error("unknown table");
    run(
        &ws,
        &["analyze", "--table-name", "events", "--since", "5 years"],
    )
    .user_error("invalid duration");

    // A column is dropped: queries using it are skipped and counted; if none plans, exit 2.
    let csv = ws.root().join("t.csv");
    std::fs::write(&csv, "a,b\n1,2\n3,4\n5,6\n").unwrap();
    let load = |path: &std::path::Path| {
        run(
            &ws,
            &[
                "load-dataset",
                "--table-name",
                "t",
                "--source-path",
                path.to_str().unwrap(),
                "--replace",
            ],
        )
        .success();
    };
    load(&csv);
    run(
        &ws,
        &["query", "--table-name", "t", "SELECT b FROM t WHERE b > 2"],
    )
    .success();
    run(&ws, &["analyze", "--table-name", "t"]).success();
    std::fs::write(&csv, "a\n1\n3\n5\n").unwrap();
    load(&csv);
    run(&ws, &["analyze", "--table-name", "t"]).user_error("can be planned");
    run(&ws, &["propose", "--table-name", "t"]).user_error("can be planned");
    run(
        &ws,
        &["query", "--table-name", "t", "SELECT a FROM t WHERE a = 3"],
    )
    .success();
    let out = json(&run(
        &ws,
        &["analyze", "--table-name", "t", "--format", "json"],
    ));
    assert_eq!(out["profile"]["queries_analyzed"], 1);
    assert_eq!(out["profile"]["queries_skipped"], 1);
    // Statistics cached before the reload are not reused for the new files.
    assert_eq!(out["stats"]["columns"].as_array().unwrap().len(), 1);
    run(&ws, &["propose", "--table-name", "t"]).success();
}

#[test]
fn customer_lookups_propose_a_customer_led_sort_or_bloom_filter() {
    let ws = TempWorkspace::new();
    generate_events(&ws, "60000", "11", "16384", &["--order", "shuffled"]);
    for c in [2, 9, 41, 77, 150, 333, 512, 901] {
        query(
            &ws,
            &format!("SELECT event_ts, amount FROM events WHERE customer_id = {c}"),
        );
    }
    let out = json(&run(
        &ws,
        &["propose", "--table-name", "events", "--format", "json"],
    ));
    let best = &out["proposals"][0];
    assert_eq!(best["recommended"], true, "{best:#}");
    let spec = &best["spec"];
    let customer_led = spec["sort_by"][0]["column"] == "customer_id"
        || spec["cluster_by"][0] == "customer_id"
        || spec["bloom_filter_columns"]
            .as_array()
            .is_some_and(|b| b.iter().any(|c| c == "customer_id"));
    assert!(customer_led, "{}", best["description"]);
}

/// Runs the workload `file` and sums the events bytes its queries read on `layout` (a join's
/// other tables apart).
fn run_and_measure(ws: &TempWorkspace, file: &str, layout: &str) -> u64 {
    let before = common::logged_queries(ws).last().map_or(0, |q| q.id);
    run(
        ws,
        &[
            "run-workload",
            "--table-name",
            "events",
            "--workload-file",
            file,
        ],
    )
    .success();
    common::logged_queries(ws)
        .into_iter()
        .filter(|q| q.id > before && q.entry.error.is_none())
        .flat_map(|q| q.entry.scans)
        .filter(|s| s.table.as_str() == "events" && s.layout_id.as_str() == layout)
        .map(|s| s.metrics.bytes_scanned)
        .sum()
}

#[test]
fn whatif_predicts_fresh_queries_within_15_percent_before_and_after_the_rewrite() {
    let ws = TempWorkspace::new();
    generate_events(&ws, "60000", "11", "16384", &["--order", "shuffled"]);
    date_queries(&ws);
    let proposals = json(&run(
        &ws,
        &["propose", "--table-name", "events", "--format", "json"],
    ));
    let best = &proposals["proposals"][0];
    assert_eq!(best["recommended"], true, "{best:#}");
    // Fresh literals of the same shape, never logged before the prediction.
    let fresh = ws.root().join("fresh.sql");
    let sql: String = [("2025-04-02", "2025-04-09"), ("2025-08-10", "2025-08-13"), ("2025-12-01", "2025-12-24")]
        .iter()
        .map(|(from, to)| {
            format!(
                "SELECT event_type, count(*), sum(amount) FROM events \
                 WHERE event_date >= DATE '{from}' AND event_date < DATE '{to}' GROUP BY event_type;\n"
            )
        })
        .collect();
    std::fs::write(&fresh, sql).unwrap();
    let fresh_arg = fresh.to_str().unwrap();
    let w = json(&run(
        &ws,
        &[
            "whatif",
            "--table-name",
            "events",
            "--workload-file",
            fresh_arg,
            "--format",
            "json",
        ],
    ));
    assert_eq!(w["target"]["description"], best["description"], "{w:#}");
    assert_eq!(w["queries"].as_array().unwrap().len(), 3);
    let predicted = |layout: &str| w[layout]["estimate"]["bytes_scanned"].as_f64().unwrap();
    let within = |what: &str, predicted: f64, measured: u64| {
        let ratio = predicted / measured as f64;
        assert!(
            (0.85..=1.15).contains(&ratio),
            "{what}: predicted {predicted} vs measured {measured} ({ratio:.2})"
        );
    };

    let initial = run_and_measure(&ws, fresh_arg, "initial");
    within("the layout as it is", predicted("current"), initial);

    let id = best["id"].as_i64().unwrap().to_string();
    run(
        &ws,
        &[
            "enqueue-migration",
            "--table-name",
            "events",
            "--proposal",
            &id,
            "--activate",
        ],
    )
    .success();
    run(&ws, &["migration-worker", "--once"]).success();
    let target = best["target_layout"].as_str().unwrap();
    let adapted = run_and_measure(&ws, fresh_arg, target);
    within("the target layout", predicted("target"), adapted);

    // The predicted size is stored with the proposal and shown beside the built layout's.
    let stored = ws
        .catalog()
        .get_proposal(best["id"].as_i64().unwrap())
        .unwrap()
        .unwrap();
    let built = stored.built_size_bytes.expect("the layout is built");
    let size_ratio = stored.proposal.rewrite_write_bytes as f64 / built as f64;
    assert!(
        (0.8..=1.25).contains(&size_ratio),
        "predicted size {} vs built {built}",
        stored.proposal.rewrite_write_bytes
    );

    // A file that does not plan is refused with its line.
    let bad = ws.root().join("bad.sql");
    std::fs::write(&bad, "SELECT 1 FROM events;\nSELECT nope FROM events;\n").unwrap();
    let err = run(
        &ws,
        &[
            "whatif",
            "--table-name",
            "events",
            "--workload-file",
            bad.to_str().unwrap(),
            "--sort-by",
            "user_id",
        ],
    )
    .user_error("bad.sql:2");
    assert!(err.contains("nope"), "{err}");
}

/// `git args` in `dir`, which must succeed; its stdout.
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn propose_writes_a_pull_request_commits_the_spec_and_apply_queues_it() {
    let ws = TempWorkspace::new();
    generate_events(&ws, "60000", "11", "16384", &["--order", "shuffled"]);
    date_queries(&ws);
    // A team repository (with an upstream the branch is pushed to) and a fake GitHub API.
    let upstream = ws.root().join("upstream.git");
    let repo = ws.root().join("platform");
    std::fs::create_dir_all(&repo).unwrap();
    git(
        ws.root(),
        &["init", "-q", "--bare", upstream.to_str().unwrap()],
    );
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.email", "team@example.com"]);
    git(&repo, &["config", "user.name", "Team"]);
    std::fs::write(repo.join("README.md"), "tables\n").unwrap();
    git(&repo, &["add", "README.md"]);
    git(&repo, &["commit", "-q", "-m", "start"]);
    git(
        &repo,
        &["remote", "add", "origin", upstream.to_str().unwrap()],
    );
    let (api, seen) = scripted(|r, _| {
        Some(if r.header("Authorization") == Some("Bearer t0ken") {
            (
                201,
                r#"{"number":12,"html_url":"https://github.example/acme/platform/pull/12"}"#.into(),
            )
        } else {
            (401, r#"{"message":"Bad credentials"}"#.into())
        })
    });
    let pr = ws.root().join("pr");
    let pr_arg = pr.display().to_string();
    let repo_arg = repo.display().to_string();
    let propose = |extra: &[&str], env: &[(&str, &str)]| {
        let mut cmd = ws.command(&common::bin());
        cmd.args([
            "propose",
            "--table-name",
            "events",
            "--pr-dir",
            &pr_arg,
            "--git-repo",
            &repo_arg,
        ]);
        cmd.args(extra);
        cmd.envs(env.iter().copied());
        cmd.output().unwrap()
    };
    let github = [
        ("GITHUB_API_URL", api.as_str()),
        ("GITHUB_REPOSITORY", "acme/platform"),
        ("GITHUB_TOKEN", "t0ken"),
    ];
    let out = propose(&["--open-pr", "github"], &github);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("opened https://github.example/acme/platform/pull/12"),
        "{stderr}"
    );

    // PR.md: the delta, the predicted figures, the clusters, how to apply and roll back.
    let text = std::fs::read_to_string(pr.join("PR.md")).unwrap();
    for needle in [
        "# dbopt: ",
        "## Change",
        "event_date",
        "## Expected effect",
        "## Query clusters served",
        "No canary has run",
        "dbopt apply --spec tables/events.toml",
        "dbopt rollback --table-name events",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
    let proposal: Value =
        serde_json::from_str(&std::fs::read_to_string(pr.join("proposal.json")).unwrap()).unwrap();
    assert_eq!(proposal["proposal"]["recommended"], true);

    // The branch holds the spec file, was pushed, and the forge got the pull request.
    let branch = git(
        &repo,
        &["branch", "--list", "dbopt/*", "--format=%(refname:short)"],
    );
    assert!(branch.starts_with("dbopt/events-"), "{branch}");
    assert_eq!(
        git(&repo, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "main",
        "checkout untouched"
    );
    assert!(
        !repo.join("tables").exists(),
        "nothing written into the checkout"
    );
    let spec = git(&repo, &["show", &format!("{branch}:tables/events.toml")]);
    assert!(
        spec.contains("table = \"events\"") && spec.contains("[layout]"),
        "{spec}"
    );
    assert!(
        git(&upstream, &["branch", "--list", &branch]).contains(&branch),
        "pushed"
    );
    let request = seen.lock().unwrap()[0].clone();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/repos/acme/platform/pulls")
    );
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["head"], branch.as_str());
    assert_eq!(body["base"], "main");
    assert!(
        body["body"]
            .as_str()
            .unwrap()
            .contains("## Expected effect")
    );

    // The same proposal again: its branch exists, a clear error and nothing new.
    let again = propose(&[], &github);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // Applying the reviewed file queues the rewrite it describes.
    let merged = ws.root().join("events.toml");
    std::fs::write(&merged, &spec).unwrap();
    let merged_arg = merged.display().to_string();
    let dry = run(&ws, &["apply", "--spec", &merged_arg, "--dry-run"]).success();
    assert!(dry.contains("dry run: nothing queued"), "{dry}");
    let queued = run(&ws, &["apply", "--spec", &merged_arg]).success();
    assert!(queued.contains("queued job"), "{queued}");
    let target = proposal["proposal"]["target_layout"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        queued.contains(&target),
        "the reviewed spec is the proposal's layout: {queued}"
    );

    // Bad input: unknown keys, unknown columns, not a repository, no token.
    std::fs::write(&merged, spec.replace("[layout]", "[layout]\nshards = 4")).unwrap();
    run(&ws, &["apply", "--spec", &merged_arg]).user_error("unknown field `shards`");
    std::fs::write(
        &merged,
        "table = \"events\"\n[layout]\nsort_by = [\"no_such_column\"]\n",
    )
    .unwrap();
    run(&ws, &["apply", "--spec", &merged_arg]).user_error("no_such_column");
    let not_repo = ws.root().join("plain");
    std::fs::create_dir_all(&not_repo).unwrap();
    run(
        &ws,
        &[
            "propose",
            "--table-name",
            "events",
            "--pr-dir",
            &pr_arg,
            "--git-repo",
            not_repo.to_str().unwrap(),
        ],
    )
    .user_error("not a git repository");
    git(&repo, &["branch", "-D", &branch]);
    git(&repo, &["push", "-q", "origin", "--delete", &branch]);
    let out = propose(&["--open-pr", "gitlab"], &github);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GITLAB_TOKEN is not set"));
    assert_eq!(
        git(&repo, &["branch", "--list", "dbopt/*"]),
        "",
        "a missing token commits nothing"
    );

    // GitLab: a merge request against the project's API, with its own token header.
    let (gitlab, seen) = scripted(|r, _| {
        Some(if r.header("PRIVATE-TOKEN") == Some("gl-t0ken") {
            (
                201,
                r#"{"iid":3,"web_url":"https://gitlab.example/acme/platform/-/merge_requests/3"}"#
                    .into(),
            )
        } else {
            (401, r#"{"message":"401 Unauthorized"}"#.into())
        })
    });
    let out = propose(
        &["--open-pr", "gitlab"],
        &[
            ("GITLAB_API_URL", gitlab.as_str()),
            ("GITLAB_PROJECT", "acme/platform"),
            ("GITLAB_TOKEN", "gl-t0ken"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("opened https://gitlab.example/acme/platform/-/merge_requests/3"),
        "{stderr}"
    );
    let request = seen.lock().unwrap()[0].clone();
    assert_eq!(request.path, "/projects/acme%2Fplatform/merge_requests");
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["source_branch"], branch.as_str());
    assert_eq!(body["target_branch"], "main");
    assert!(body["description"].as_str().unwrap().contains("## Change"));
}

/// The arguments of `whatif` pricing `file` on `sort(customer_id)`, as JSON.
fn whatif_by_customer(file: &str) -> [&str; 9] {
    [
        "whatif",
        "--table-name",
        "events",
        "--workload-file",
        file,
        "--sort-by",
        "customer_id",
        "--format",
        "json",
    ]
}

/// `whatif` of `file` on `sort(customer_id)` with `join_keys_seconds = 0`: its JSON, after
/// checking it warns that the joins went unpriced.
fn whatif_without_time_for_joins(ws: &TempWorkspace, file: &str) -> Value {
    let out = ws
        .command(&common::bin())
        .env("DBOPT_JOIN_KEYS_SECONDS", "0")
        .args(whatif_by_customer(file))
        .output()
        .unwrap();
    assert!(out.status.success());
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains("priced for 0 of 1 queries that join")
            && warning.contains("join_keys_seconds"),
        "{warning}"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn whatif_prices_the_keys_a_join_carries_into_the_scan() {
    let ws = TempWorkspace::new();
    generate_events(&ws, "60000", "11", "16384", &["--order", "shuffled"]);
    let file = ws.root().join("join.sql");
    let customers = "c.segment = 'enterprise' AND c.country = 'DE'";
    std::fs::write(
        &file,
        format!(
            "SELECT e.event_type, count(*), sum(e.amount) FROM events e \
             JOIN customers c ON e.customer_id = c.customer_id WHERE {customers} \
             GROUP BY e.event_type;\n"
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let w = json(&run(&ws, &whatif_by_customer(file)));
    // The build side is the customers the filter keeps; the model priced their keys.
    let kept = run(
        &ws,
        &[
            "query",
            "--table-name",
            "customers",
            "--format",
            "csv",
            &format!("SELECT count(*) AS n FROM customers c WHERE {customers}"),
        ],
    )
    .success();
    let kept: u64 = kept.lines().nth(1).unwrap().trim().parse().unwrap();
    assert!(kept > 0, "the filter keeps some customers");
    let filters = &w["queries"][0]["join_filters"];
    assert_eq!(filters[0]["column"], "customer_id", "{w:#}");
    assert_eq!(filters[0]["build_rows"], kept, "{w:#}");
    let predicted = |layout: &str| w["queries"][0][layout].as_f64().unwrap();
    let within = |what: &str, predicted: f64, measured: u64| {
        let ratio = predicted / measured as f64;
        assert!(
            (0.85..=1.15).contains(&ratio),
            "{what}: predicted {predicted} vs measured {measured} ({ratio:.2})"
        );
    };

    // With no time for build sides, the query is priced on its own filters, and stderr says so.
    let unpriced = whatif_without_time_for_joins(&ws, file);
    assert_eq!(unpriced["queries"][0]["join_filters"], Value::Array(vec![]));
    assert!(unpriced["queries"][0]["target_bytes"].as_f64().unwrap() > predicted("target_bytes"));

    // Shuffled, every page holds some of those customers' events: nothing to skip.
    within(
        "the layout as it is",
        predicted("current_bytes"),
        run_and_measure(&ws, file, "initial"),
    );

    // Sorted by customer, their events sit together: the keys' bounds and membership skip the
    // rest, and the prediction said so before the rewrite.
    let target = common::enqueue(&ws, &["--sort-by", "customer_id", "--activate"]);
    run(&ws, &["migration-worker", "--once"]).success();
    let measured = run_and_measure(&ws, file, &target);
    within("sorted by customer", predicted("target_bytes"), measured);
    assert!(
        predicted("target_bytes") < 0.5 * predicted("current_bytes"),
        "{w:#}"
    );
}
