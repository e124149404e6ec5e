//! End-to-end tests of user workload files, import-queries and the NYC taxi download and
//! workload. The taxi file is a small generated sample with the real TLC schema, served over
//! HTTP by a bounded server on 127.0.0.1 (tests have no internet).

mod common;
use common::{bin, generated, logged_queries, run, scripted};
use dbopt_catalog::{QueryLogEntry, QueryOrigin};
use dbopt_data::taxi::{TaxiColor, taxi_sample};
use dbopt_testkit::TempWorkspace;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many logged queries `keep` accepts.
fn count(ws: &TempWorkspace, keep: impl Fn(&QueryLogEntry) -> bool) -> i64 {
    logged_queries(ws).iter().filter(|q| keep(&q.entry)).count() as i64
}

/// Every logged query.
fn any(_: &QueryLogEntry) -> bool {
    true
}

fn write(ws: &TempWorkspace, name: &str, text: &str) -> String {
    let path = ws.root().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bad JSON {e}: {text}"))
}

#[test]
fn example_workload_files_run_replay_and_sample() {
    let ws = generated();
    let toml = examples().join("events_workload.toml");
    let sql = examples().join("events_queries.sql");
    let out = run(
        &ws,
        &[
            "run-workload",
            "--workload-file",
            toml.to_str().unwrap(),
            "--num-queries",
            "30",
            "--seed",
            "4",
            "--format",
            "json",
        ],
    )
    .success();
    let summary = json(&out);
    assert_eq!(summary["queries"], 30);
    assert_eq!(summary["errors"], 0, "{out}");
    assert!(
        summary["per_template"].as_object().unwrap().len() >= 3,
        "{out}"
    );
    assert_eq!(
        count(&ws, |e| e.origin == QueryOrigin::Workload
            && e.workload.as_deref() == Some("customer_activity")
            && e.error.is_none()),
        summary["per_template"]["customer_activity"]
            .as_i64()
            .unwrap_or(0)
    );

    let out = run(
        &ws,
        &[
            "run-workload",
            "--workload-file",
            sql.to_str().unwrap(),
            "--format",
            "json",
        ],
    )
    .success();
    let summary = json(&out);
    assert_eq!(summary["queries"], 5, "a replay runs the file once: {out}");
    assert_eq!(summary["errors"], 0, "{out}");
    assert_eq!(summary["per_template"]["events_queries.sql:7"], 1, "{out}");

    let out = run(
        &ws,
        &[
            "run-workload",
            "--workload-file",
            sql.to_str().unwrap(),
            "--sample",
            "--num-queries",
            "12",
            "--seed",
            "3",
            "--format",
            "json",
        ],
    )
    .success();
    assert_eq!(json(&out)["queries"], 12);
    let again = run(
        &ws,
        &[
            "run-workload",
            "--workload-file",
            sql.to_str().unwrap(),
            "--sample",
            "--num-queries",
            "12",
            "--seed",
            "3",
            "--format",
            "json",
        ],
    )
    .success();
    assert_eq!(
        json(&out)["per_template"],
        json(&again)["per_template"],
        "same seed, same sample"
    );
}

#[test]
fn bad_workload_files_fail_before_any_query_runs() {
    let ws = generated();
    let before = count(&ws, any);
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            "syntax.sql",
            "SELECT 1;\n\nSELEC count(*) FROM events;\n",
            "syntax.sql:3",
        ),
        (
            "ddl.sql",
            "SELECT 1;\nDROP TABLE events;\n",
            "ddl.sql:2: refused: DROP TABLE",
        ),
        (
            "column.sql",
            "SELECT nope FROM events;\n",
            "column.sql:1: cannot plan",
        ),
        ("empty.sql", "-- nothing\n", "no SQL statements"),
        (
            "syntax.toml",
            "[[template]]\nname = \"a\"\nsql = \"SELECT 1\nweight = 2\n",
            "syntax.toml:3",
        ),
        (
            "param.toml",
            "[[template]]\nname = \"by_customer\"\nsql = \"SELECT count(*) FROM {table} WHERE customer_id = {customer}\"\n",
            "template 'by_customer': unknown parameter 'customer'",
        ),
        (
            "zipf.toml",
            "[[template]]\nname = \"z\"\nsql = \"SELECT count(*) FROM {table} WHERE x = {v}\"\nparams.v = { type = \"zipf\", column = \"no_such_column\" }\n",
            "column 'no_such_column' is not a column of 'events'",
        ),
        (
            "plan.toml",
            "[[template]]\nname = \"ok\"\nsql = \"SELECT count(*) FROM {table}\"\n[[template]]\nname = \"bad\"\nsql = \"SELECT sum(no_col) FROM {table} WHERE amount > {a}\"\nparams.a = { type = \"int\", min = 1, max = 5 }\n",
            "template 'bad' does not plan with sample parameters",
        ),
        ("workload.csv", "x", "must end in .sql"),
    ];
    for (name, text, needle) in cases {
        let path = write(&ws, name, text);
        run(&ws, &["run-workload", "--workload-file", &path]).user_error(needle);
    }
    run(&ws, &["run-workload", "--workload-file", "missing.sql"])
        .user_error("cannot read workload file missing.sql");
    assert_eq!(count(&ws, any), before, "nothing ran");
}

#[test]
fn import_queries_logs_without_running() {
    let ws = generated();
    let path = write(
        &ws,
        "trino.sql",
        "SELECT count(*) FROM events WHERE customer_id = 42;\n\
         SELECT count(*) FROM events WHERE customer_id = 7;\n\
         INSERT INTO events SELECT * FROM events;\n\
         -- a query against a table this engine never saw still counts for analysis\n\
         SELECT country, sum(amount) FROM events WHERE event_date >= DATE '2025-02-01' GROUP BY country;\n",
    );
    let out = run(
        &ws,
        &[
            "import-queries",
            "--table-name",
            "events",
            "--file",
            &path,
            "--output",
            "json",
        ],
    );
    let report = json(&out.success());
    assert_eq!(report["imported"], 3);
    assert_eq!(report["fingerprints"], 2);
    assert_eq!(report["skipped"][0]["line"], 3);
    assert!(out.stderr().contains("trino.sql:3"), "{}", out.stderr());
    assert_eq!(
        count(&ws, |e| e.origin == QueryOrigin::Imported
            && e.layout_id.is_none()
            && e.workload.as_deref() == Some("trino.sql")
            && e.metrics.bytes_scanned == 0
            && e.result_digest.is_none()),
        3
    );
    assert_eq!(
        logged_queries(&ws)
            .iter()
            .filter(|q| q.entry.origin == QueryOrigin::Imported)
            .map(|q| &q.entry.fingerprint)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        2
    );
    assert_eq!(
        count(&ws, |e| !e.scans.is_empty()),
        0,
        "nothing was executed"
    );

    let bad = write(&ws, "bad.sql", "SELECT 1;\nSELEC count(*) FROM events;\n");
    run(
        &ws,
        &["import-queries", "--table-name", "events", "--file", &bad],
    )
    .user_error("bad.sql:2");
    run(
        &ws,
        &["import-queries", "--table-name", "nope", "--file", &path],
    )
    .user_error("nope");
    assert_eq!(count(&ws, any), 3, "a refused file imports nothing");
}

/// A query-log fixture of `crates/cli/tests/fixtures/querylogs`.
fn querylog(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/querylogs")
        .join(name)
        .display()
        .to_string()
}

/// `import-queries --output json` of `file` with extra `args`.
/// `import-queries --output json` of `file` (or of `--from` in `args` when `file` is empty)
/// with extra `args`.
fn import(ws: &TempWorkspace, file: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["import-queries", "--output", "json"];
    if !file.is_empty() {
        all.extend_from_slice(&["--file", file]);
    }
    all.extend_from_slice(args);
    json(&run(ws, &all).success())
}

/// Runs the binary in `ws` with extra environment variables.
fn run_env(ws: &TempWorkspace, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = ws.command(&bin());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn import_queries_reads_a_real_clickhouse_query_log_in_each_export_format() {
    let ws = generated();
    let map = ["--table-map", "analytics.events=events", "--since", "all"];
    let first = import(&ws, &querylog("clickhouse_query_log.jsonl"), &map);
    assert_eq!(first["format"], "clickhouse");
    assert_eq!(first["dialect"], "clickhouse");
    assert_eq!(first["imported"], 5, "{first:#}");
    assert_eq!(first["by_table"]["events"], 5);
    assert_eq!(
        first["fingerprints"], 4,
        "customer_id 42 and 7 are one shape"
    );
    let counts = &first["skipped_counts"];
    assert_eq!(counts["not_read_only"], 6, "{counts}");
    assert_eq!(counts["unfinished"], 12, "QueryStart rows");
    assert_eq!(counts["failed"], 1);
    assert_eq!(counts["other_tables"], 1);
    // The same log in the other two formats: the same records, already imported by id.
    for name in ["clickhouse_query_log.tsv", "clickhouse_query_log.csv"] {
        let again = import(&ws, &querylog(name), &map);
        assert_eq!(again["imported"], 0, "{name}: {again:#}");
        assert_eq!(again["skipped_counts"]["already_imported"], 5, "{name}");
        assert_eq!(again["skipped_counts"]["not_read_only"], 6, "{name}");
        assert_eq!(again["skipped_counts"]["unfinished"], 12, "{name}");
    }
    let imported: Vec<_> = logged_queries(&ws)
        .into_iter()
        .filter(|q| q.entry.origin == QueryOrigin::Imported)
        .collect();
    assert_eq!(imported.len(), 5);
    for q in &imported {
        let source = q.entry.source.as_ref().expect("engine figures kept");
        assert_eq!(source.engine, "clickhouse");
        assert!(
            source.query_id.is_some() && source.read_rows.is_some(),
            "{source:?}"
        );
        assert!(source.elapsed_ms.is_some() && source.user.as_deref() == Some("default"));
        assert!(
            q.entry.sql.contains("FROM events"),
            "renamed: {}",
            q.entry.sql
        );
        assert!(
            q.entry.ts_ms > 1_700_000_000_000,
            "the time it ran, not the import's"
        );
    }
    // Two of the five use ClickHouse functions DataFusion lacks: read from the syntax tree.
    let out = run(
        &ws,
        &["analyze", "--table-name", "events", "--format", "json"],
    );
    let analysis = json(&out.success());
    assert_eq!(analysis["profile"]["queries_analyzed"], 5, "{analysis:#}");
    assert_eq!(analysis["profile"]["queries_from_syntax"], 2);
    let country = analysis["profile"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == "country")
        .unwrap()
        .clone();
    assert_eq!(
        country["eq"], 1,
        "country = 'DE' inside the toStartOfHour query"
    );
}

#[test]
fn import_queries_reads_trino_event_listener_json_and_runtime_queries() {
    let ws = generated();
    let map = [
        "--table-map",
        "iceberg.curated.events=events",
        "--since",
        "all",
    ];
    let events = import(&ws, &querylog("trino_events.jsonl"), &map);
    assert_eq!(events["format"], "trino-event");
    assert_eq!(events["imported"], 3, "{events:#}");
    let counts = &events["skipped_counts"];
    assert_eq!(counts["failed"], 1, "{counts}");
    assert_eq!(
        counts["other_tables"], 1,
        "iceberg.raw.clicks is not mapped"
    );
    assert_eq!(counts["not_read_only"], 1, "CREATE TABLE AS");
    assert_eq!(counts["already_imported"], 1, "a redelivered event");
    let runtime = import(&ws, &querylog("trino_runtime_queries.csv"), &map);
    assert_eq!(runtime["format"], "trino-queries");
    assert_eq!(runtime["imported"], 2, "{runtime:#}");
    assert_eq!(runtime["skipped_counts"]["failed"], 1);
    assert_eq!(runtime["skipped_counts"]["unfinished"], 1);
    let trino: Vec<_> = logged_queries(&ws)
        .into_iter()
        .filter_map(|q| q.entry.source.clone().map(|s| (q.entry, s)))
        .collect();
    assert_eq!(trino.len(), 5);
    let bob = trino
        .iter()
        .find(|(_, s)| s.query_id.as_deref() == Some("20261120_100005_00002_aaaaa"))
        .unwrap();
    assert_eq!(bob.1.user.as_deref(), Some("bob"));
    assert_eq!(bob.1.elapsed_ms, Some(800.0));
    assert_eq!(
        (bob.1.read_rows, bob.1.read_bytes),
        (Some(4000), Some(52_000))
    );
    assert_eq!(bob.0.ts_ms, 1_795_168_805_000);
    let out = run(
        &ws,
        &["analyze", "--table-name", "events", "--format", "json"],
    );
    let analysis = json(&out.success());
    assert_eq!(analysis["profile"]["queries_analyzed"], 5, "{analysis:#}");
    assert_eq!(
        analysis["profile"]["queries_from_syntax"], 1,
        "from_iso8601_date is Trino's own"
    );
}

#[test]
fn import_queries_keeps_the_lookback_window_and_refuses_bad_logs() {
    let ws = generated();
    let now = chrono::Utc::now();
    let at = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let row = |t: &str, id: &str, sql: &str| {
        format!(
            "{{\"type\":\"QueryFinish\",\"event_time\":\"{t}\",\"query_duration_ms\":5,\"read_rows\":10,\"read_bytes\":100,\"query\":\"{sql}\",\"user\":\"u\",\"query_id\":\"{id}\"}}\n"
        )
    };
    let sql = "SELECT count(*) FROM events WHERE country = 'DE'";
    let text = row(&at(now - chrono::Duration::days(30)), "old", sql)
        + &row(&at(now - chrono::Duration::hours(1)), "new", sql);
    let log = write(&ws, "window.jsonl", &text);
    let report = import(&ws, &log, &[]);
    assert_eq!(
        report["imported"], 1,
        "default --since is lookback_days (7)"
    );
    assert_eq!(report["skipped_counts"]["outside_window"], 1);
    let wider = import(&ws, &log, &["--since", "60d"]);
    assert_eq!(
        wider["imported"], 1,
        "the old one now; the new one was imported before"
    );
    assert_eq!(wider["skipped_counts"]["already_imported"], 1);
    let before = count(&ws, any);

    let broken = write(&ws, "broken.jsonl", &(text.clone() + "{\"type\": oops\n"));
    run(
        &ws,
        &["import-queries", "--file", &broken, "--since", "all"],
    )
    .user_error("line 3 is not a clickhouse log record");
    let skipped = import(&ws, &broken, &["--since", "all", "--skip-bad-lines"]);
    assert_eq!(skipped["skipped_counts"]["bad_line"], 1);
    let cases: [(&[&str], &str); 5] = [
        (
            &["--file", &write(&ws, "x.csv", "a,b\n1,2\n")],
            "cannot tell the format",
        ),
        (
            &["--file", &log, "--timezone", "Mars/Olympus"],
            "not a time zone name",
        ),
        (
            &["--file", &log, "--table-map", "db.events=nope"],
            "'nope' is not a managed table",
        ),
        (
            &["--file", &log, "--table-map", "db.events"],
            "write ENGINE_NAME=TABLE",
        ),
        (
            &["--file", &log, "--format", "trino-event"],
            "line 1 is not a trino-event log record",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["import-queries"];
        all.extend_from_slice(args);
        run(&ws, &all).user_error(needle);
    }
    assert_eq!(count(&ws, any), before, "a refused import logs nothing");
}

#[test]
fn import_queries_pulls_clickhouse_over_http_and_names_server_errors() {
    let ws = generated();
    // ClickHouse's answer to the pull's query: the real log's finished and failed rows.
    let rows: String = std::fs::read_to_string(querylog("clickhouse_query_log.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\"QueryStart\""))
        .map(|l| format!("{l}\n"))
        .collect();
    let (base, seen) = scripted(move |r, _| {
        if r.header("X-ClickHouse-Key") == Some("wrong") {
            return Some((403, "Code: 516. DB::Exception: default: Authentication failed: password is incorrect. (AUTHENTICATION_FAILED)".into()));
        }
        Some((200, rows.clone()))
    });
    let from = base.replace("http://", "clickhouse://");
    let report = import(
        &ws,
        "",
        &[
            "--from",
            &from,
            "--table-map",
            "analytics.events=events",
            "--since",
            "all",
        ],
    );
    assert_eq!(report["imported"], 5, "{report:#}");
    assert_eq!(report["format"], "clickhouse");
    let request = seen.lock().unwrap()[0].clone();
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("X-ClickHouse-User"), Some("default"));
    assert!(
        request.body.contains("FROM system.query_log"),
        "{}",
        request.body
    );
    assert!(
        request.body.ends_with("FORMAT JSONEachRow"),
        "{}",
        request.body
    );
    assert_eq!(
        count(&ws, |e| e.workload.as_deref() == Some(from.as_str())),
        5,
        "the pull's source is the queries' workload"
    );
    let before = count(&ws, any);
    let out = run_env(
        &ws,
        &["import-queries", "--from", &from, "--since", "all"],
        &[("CLICKHOUSE_PASSWORD", "wrong")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Authentication failed"),
        "{}",
        text(&out.stderr)
    );
    // A server that accepts and never answers.
    let (slow, _) = scripted(|_, _| None);
    let slow = slow.replace("http://", "clickhouse://");
    let out = run_env(
        &ws,
        &["import-queries", "--from", &slow, "--timeout", "1s"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("did not answer within"),
        "{}",
        text(&out.stderr)
    );
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    run(
        &ws,
        &[
            "import-queries",
            "--from",
            &format!("clickhouse://127.0.0.1:{closed}"),
        ],
    )
    .user_error("cannot reach clickhouse://127.0.0.1");
    assert_eq!(count(&ws, any), before, "failed pulls import nothing");
}

#[test]
fn import_queries_pulls_trino_runtime_queries_following_next_uri() {
    let ws = generated();
    let columns = r#"[{"name":"query_id","type":"varchar"},{"name":"state","type":"varchar"},{"name":"user","type":"varchar"},{"name":"source","type":"varchar"},{"name":"query","type":"varchar"},{"name":"created","type":"timestamp(3) with time zone"},{"name":"started","type":"timestamp(3) with time zone"},{"name":"end","type":"timestamp(3) with time zone"},{"name":"error_type","type":"varchar"},{"name":"error_code","type":"varchar"}]"#;
    let page1 = format!(
        r#"{{"id":"q1","columns":{columns},"data":[["20261120_1","FINISHED","ann","cli","SELECT count(*) FROM iceberg.curated.events WHERE country = 'DE'","2026-11-20 11:00:00.000 UTC","2026-11-20 11:00:00.010 UTC","2026-11-20 11:00:00.400 UTC",null,null]],"nextUri":"NEXT/2","stats":{{"state":"RUNNING"}}}}"#
    );
    let page2 = r#"{"id":"q1","data":[["20261120_2","FAILED","bob","cli","SELECT nope FROM iceberg.curated.events","2026-11-20 11:00:01.000 UTC",null,"2026-11-20 11:00:01.010 UTC","USER_ERROR","COLUMN_NOT_FOUND"],["20261120_3","FINISHED","bob","cli","SELECT avg(amount) FROM iceberg.curated.events WHERE event_date >= DATE '2025-02-01'","2026-11-20 11:00:02.000 UTC","2026-11-20 11:00:02.010 UTC","2026-11-20 11:00:02.300 UTC",null,null]],"stats":{"state":"FINISHED"}}"#.to_string();
    let (base, seen) = scripted(move |r, own| {
        match r.path.as_str() {
        "/v1/statement" if r.body.contains("no_such_table") => Some((200, r#"{"id":"q9","stats":{"state":"FAILED"},"error":{"message":"line 1:15: Table 'system.runtime.no_such_table' does not exist","errorName":"TABLE_NOT_FOUND","errorType":"USER_ERROR"}}"#.into())),
        "/v1/statement" => Some((200, format!(r#"{{"id":"q1","nextUri":"{own}/v1/statement/queued/q1/1","stats":{{"state":"QUEUED"}}}}"#))),
        "/v1/statement/queued/q1/1" => Some((200, page1.replace("NEXT", &format!("{own}/v1/statement/executing/q1"))))
        ,
        "/v1/statement/executing/q1/2" => Some((200, page2.clone())),
        _ => Some((404, "{}".into())),
    }
    });
    let from = format!("{}/iceberg", base.replace("http://", "trino://"));
    let report = import(
        &ws,
        "",
        &[
            "--from",
            &from,
            "--table-map",
            "iceberg.curated.events=events",
            "--since",
            "all",
            "--user",
            "ann",
        ],
    );
    assert_eq!(report["format"], "trino-queries");
    assert_eq!(report["imported"], 2, "{report:#}");
    assert_eq!(report["skipped_counts"]["failed"], 1);
    let requests = seen.lock().unwrap().clone();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1/statement",
            "/v1/statement/queued/q1/1",
            "/v1/statement/executing/q1/2"
        ]
    );
    assert_eq!(requests[0].method, "POST");
    assert!(requests[0].body.contains("FROM system.runtime.queries"));
    assert_eq!(requests[0].header("X-Trino-User"), Some("ann"));
    assert_eq!(requests[0].header("X-Trino-Catalog"), Some("iceberg"));
    assert_eq!(requests[1].method, "GET");
    let out = run_env(
        &ws,
        &["import-queries", "--from", &from, "--since", "all"],
        &[("TRINO_PASSWORD", "secret")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("only over HTTPS; write trino+https://"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        3,
        "no request sent with a password over HTTP"
    );
}
/// How the loopback server answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Serve {
    /// The file, honouring Range requests; the first full response breaks off halfway.
    BreakFirst,
    /// An HTML error page with status 200.
    Html,
    /// The first 60% of the file, as if it were complete.
    Truncated,
}

/// A bounded HTTP server on 127.0.0.1 serving one body; records each request's Range header.
struct Server {
    url: String,
    ranges: Arc<Mutex<Vec<Option<String>>>>,
}

fn serve(body: Vec<u8>, mode: Serve) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/trip-data", listener.local_addr().unwrap());
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut served = 0;
        while served < 16 && Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    served += 1;
                    let _ = answer(stream, &body, mode, served, &seen);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    Server { url, ranges }
}

fn answer(
    mut stream: TcpStream,
    body: &[u8],
    mode: Serve,
    nth: usize,
    seen: &Mutex<Vec<Option<String>>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut range = None;
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_string());
        }
    }
    seen.lock().unwrap().push(range.clone());
    let head = |status: &str, kind: &str, len: usize, extra: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len}\r\nConnection: close\r\n{extra}\r\n"
        )
    };
    match mode {
        Serve::Html => {
            let page = b"<!DOCTYPE html><html><body>Please sign in</body></html>";
            stream
                .write_all(head("200 OK", "text/html; charset=utf-8", page.len(), "").as_bytes())?;
            stream.write_all(page)?;
        }
        Serve::Truncated => {
            let cut = &body[..body.len() * 6 / 10];
            stream
                .write_all(head("200 OK", "application/octet-stream", cut.len(), "").as_bytes())?;
            stream.write_all(cut)?;
        }
        Serve::BreakFirst => {
            let start: usize = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.trim_end_matches('-').parse().ok())
                .unwrap_or(0);
            if start > 0 {
                let rest = &body[start..];
                let extra = format!(
                    "Content-Range: bytes {start}-{}/{}\r\n",
                    body.len() - 1,
                    body.len()
                );
                stream.write_all(
                    head(
                        "206 Partial Content",
                        "application/octet-stream",
                        rest.len(),
                        &extra,
                    )
                    .as_bytes(),
                )?;
                stream.write_all(rest)?;
            } else {
                stream.write_all(
                    head("200 OK", "application/octet-stream", body.len(), "").as_bytes(),
                )?;
                let part = if nth == 1 {
                    &body[..body.len() / 2]
                } else {
                    body
                };
                stream.write_all(part)?;
            }
        }
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

/// A generated month of yellow trips as Parquet bytes.
fn taxi_parquet(rows: usize) -> Vec<u8> {
    taxi_month_parquet(TaxiColor::Yellow, 2024, 1, rows)
}

/// A generated month of trips of one color as Parquet bytes.
fn taxi_month_parquet(color: TaxiColor, year: i32, month: u32, rows: usize) -> Vec<u8> {
    let batch = taxi_sample(color, year, month, rows, 11);
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    out
}

fn download(ws: &TempWorkspace, url: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "download-nyc-taxi",
        "--table-name",
        "nyc_taxi",
        "--year",
        "2024",
        "--month",
        "1",
    ];
    args.extend_from_slice(extra);
    download_args(ws, url, &args)
}

/// Runs dbopt with `args` and the taxi base URL pointed at the loopback server.
fn download_args(ws: &TempWorkspace, url: &str, args: &[&str]) -> Output {
    ws.command(&bin())
        .env("DBOPT_NYC_TAXI_BASE_URL", url)
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[test]
fn taxi_download_resumes_loads_and_runs_the_workload() {
    let ws = TempWorkspace::new();
    let body = taxi_parquet(6000);
    let server = serve(body.clone(), Serve::BreakFirst);
    let out = download(&ws, &server.url, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("resumed"),
        "{}",
        text(&out.stderr)
    );
    let ranges = server.ranges.lock().unwrap().clone();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert_eq!(ranges[0], None);
    assert_eq!(ranges[1], Some(format!("bytes={}-", body.len() / 2)));
    let downloaded = ws
        .data_dir()
        .join("_downloads/yellow_tripdata_2024-01.parquet");
    assert_eq!(
        std::fs::read(&downloaded).unwrap(),
        body,
        "the resumed file is byte-identical"
    );

    let tables = json(&run(&ws, &["tables", "--format", "json"]).success());
    assert_eq!(tables[0]["name"], "nyc_taxi");
    assert_eq!(tables[0]["rows"], 6000);

    // A second download with --replace reuses the valid file without a request.
    let out = download(&ws, &server.url, &["--replace"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("reused"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(server.ranges.lock().unwrap().len(), 2);

    let out = run(
        &ws,
        &[
            "run-nyc-taxi-workload",
            "--table-name",
            "nyc_taxi",
            "--num-queries",
            "40",
            "--seed",
            "5",
            "--format",
            "json",
        ],
    )
    .success();
    let summary = json(&out);
    assert_eq!(summary["queries"], 40);
    assert_eq!(summary["errors"], 0, "{out}");
    assert!(
        summary["per_template"].as_object().unwrap().len() >= 6,
        "{out}"
    );
    assert_eq!(
        count(&ws, |e| e.table.as_str() == "nyc_taxi"
            && e.origin == QueryOrigin::Workload
            && e.error.is_none()),
        40
    );
    // Time-window queries land in the month of the trips and find some.
    assert!(
        count(&ws, |e| e.workload.as_deref()
            == Some("pickup_window_by_payment")
            && e.rows_returned > 0)
            > 0
            || summary["per_template"]["pickup_window_by_payment"].is_null()
    );
    run(&ws, &["generate", "--num-rows", "1000"]).success();
    run(&ws, &["run-nyc-taxi-workload", "--table-name", "events"])
        .user_error("no tpep_pickup_datetime");
}

#[test]
fn taxi_download_rejects_html_and_truncated_files() {
    let ws = TempWorkspace::new();
    let body = taxi_parquet(3000);
    for (mode, needle) in [(Serve::Html, "HTML"), (Serve::Truncated, "truncated")] {
        let server = serve(body.clone(), mode);
        let out = download(&ws, &server.url, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains(needle), "{stderr}");
        let tables = json(&run(&ws, &["tables", "--format", "json"]).success());
        assert_eq!(
            tables.as_array().unwrap().len(),
            0,
            "no table is left behind"
        );
        assert!(!ws.data_dir().join("nyc_taxi").exists());
        let leftovers: Vec<_> = std::fs::read_dir(ws.data_dir().join("_downloads"))
            .unwrap()
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
    run(
        &ws,
        &["download-nyc-taxi", "--year", "2024", "--month", "13"],
    )
    .user_error("no trip records for 2024-13");
}

#[test]
fn green_taxi_month_downloads_and_runs() {
    let ws = TempWorkspace::new();
    let body = taxi_month_parquet(TaxiColor::Green, 2023, 11, 3000);
    let server = serve(body, Serve::BreakFirst);
    let out = download_args(
        &ws,
        &server.url,
        &[
            "download-nyc-taxi",
            "--table-name",
            "green_taxi",
            "--color",
            "green",
            "--year",
            "2023",
            "--month",
            "11",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        ws.data_dir()
            .join("_downloads/green_tripdata_2023-11.parquet")
            .is_file()
    );
    let out = run(
        &ws,
        &[
            "run-nyc-taxi-workload",
            "--table-name",
            "green_taxi",
            "--num-queries",
            "20",
            "--format",
            "json",
        ],
    )
    .success();
    let summary = json(&out);
    assert_eq!(summary["errors"], 0, "{out}");
    let sql = logged_queries(&ws)
        .into_iter()
        .map(|q| q.entry.sql)
        .find(|sql| sql.contains("lpep_pickup_datetime >= TIMESTAMP"))
        .expect("a time-window query was logged");
    assert!(
        sql.contains("TIMESTAMP '2023-11-") || sql.contains("TIMESTAMP '2023-12-01"),
        "{sql}"
    );
}
