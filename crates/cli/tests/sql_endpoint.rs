//! The PostgreSQL-wire SQL endpoint (`dbopt serve --sql-addr`) with real clients:
//! tokio-postgres here, psycopg and psql from `sql_clients.py` (checked against DuckDB), over
//! plain TCP, with a password, and over TLS.

mod common;

use dbopt_catalog::QueryOrigin;
use dbopt_testkit::TempWorkspace;
use std::io::{BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

/// A query that runs until it is cancelled (a three-way cross join of 20k rows).
const ENDLESS: &str =
    "SELECT count(*) FROM events a, events b, events c WHERE a.amount + b.amount + c.amount < -1";

/// A running `dbopt serve --sql-addr`, killed on drop.
struct Served {
    child: Child,
    host: String,
    port: u16,
    /// The HTTP address of /metrics and /cache, e.g. `http://127.0.0.1:41234`.
    http: String,
}

impl Served {
    fn start(ws: &TempWorkspace, env: &[(&str, &str)], extra: &[&str]) -> Served {
        let mut child = ws
            .command(&common::bin())
            .args([
                "serve",
                "--metrics-addr",
                "127.0.0.1:0",
                "--sql-addr",
                "127.0.0.1:0",
            ])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dbopt serve starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (host, port, http) = common::served_addresses(&mut out);
        Served {
            child,
            host,
            port,
            http,
        }
    }

    async fn connect(&self, password: Option<&str>) -> Result<Client, tokio_postgres::Error> {
        let password = password
            .map(|p| format!(" password={p}"))
            .unwrap_or_default();
        let config = format!(
            "host={} port={} user=dbopt dbname=dbopt connect_timeout=30{password}",
            self.host, self.port
        );
        let (client, connection) = tokio_postgres::connect(&config, NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// Sends SIGTERM, waits for the exit and returns stderr.
    fn stop(mut self) -> String {
        common::signal(&self.child, "TERM");
        let start = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "serve did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        err
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn count(rows: &[tokio_postgres::SimpleQueryMessage]) -> Vec<String> {
    rows.iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("").to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn tokio_postgres_runs_simple_and_extended_queries_that_are_guarded_and_logged() {
    let ws = common::generated();
    let served = Served::start(&ws, &[], &[]);
    runtime().block_on(async {
        let client = served.connect(None).await.unwrap();
        // Simple protocol, two statements in one message.
        let answers = count(
            &client
                .simple_query("SELECT count(*) FROM events; SELECT count(DISTINCT country) FROM events")
                .await
                .unwrap(),
        );
        assert_eq!(answers[0], "20000");
        // Extended protocol: parameters typed by the server (tokio-postgres sends no types).
        let with_params: i64 = client
            .query_one(
                "SELECT count(*) FROM events WHERE country = $1 AND amount > $2 AND event_date >= $3",
                &[
                    &"US",
                    &10.0f64,
                    &chrono::NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
                ],
            )
            .await
            .unwrap()
            .get(0);
        let literal = count(
            &client
                .simple_query(
                    "SELECT count(*) FROM events WHERE country = 'US' AND amount > 10.0 AND event_date >= DATE '2025-06-01'",
                )
                .await
                .unwrap(),
        );
        assert_eq!(with_params.to_string(), literal[0]);
        assert!(with_params > 0, "the filter matched nothing: the check proves nothing");
        // Types: timestamptz, date, nullable float, nullable text.
        let row = client
            .query_one(
                "SELECT event_ts, event_date, amount, referrer FROM events WHERE event_id = $1",
                &[&5i64],
            )
            .await
            .unwrap();
        let ts: chrono::DateTime<chrono::Utc> = row.get(0);
        let date: chrono::NaiveDate = row.get(1);
        assert_eq!(ts.date_naive(), date);
        let _: Option<f64> = row.get(2);
        let _: Option<String> = row.get(3);
        // DDL and DML are refused with the read-only SQLSTATE; the session goes on.
        for sql in ["DROP TABLE events", "INSERT INTO events SELECT * FROM events"] {
            let err = client.simple_query(sql).await.unwrap_err();
            assert_eq!(err.code(), Some(&SqlState::READ_ONLY_SQL_TRANSACTION), "{err}");
        }
        let err = client.simple_query("SELEC 1").await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::SYNTAX_ERROR), "{err}");
        // What drivers send on their own is answered.
        client
            .batch_execute("BEGIN; SET application_name = 'test'; COMMIT")
            .await
            .unwrap();
        let iso = count(&client.simple_query("SHOW transaction_isolation").await.unwrap());
        assert_eq!(iso, vec!["read committed".to_string()]);
    });
    served.stop();
    let sql: Vec<_> = common::logged_queries(&ws)
        .into_iter()
        .filter(|q| q.entry.origin == QueryOrigin::Sql)
        .collect();
    assert!(
        sql.iter()
            .any(|q| q.entry.sql.contains("country = 'US'") && q.entry.sql.contains("2025-06-01")),
        "the extended query is logged with its bound literals: {:?}",
        sql.iter().map(|q| &q.entry.sql).collect::<Vec<_>>()
    );
    assert!(
        sql.iter()
            .any(|q| q.entry.error.is_none() && q.entry.cluster_id.is_some())
    );
    assert!(
        sql.iter()
            .filter(|q| q.entry.sql.starts_with("DROP"))
            .all(|q| q
                .entry
                .error
                .as_deref()
                .is_some_and(|e| e.contains("read-only"))),
        "a refused statement is logged with its error, as `dbopt query` logs it"
    );
    assert!(
        sql.iter()
            .all(|q| !q.entry.sql.starts_with("BEGIN") && !q.entry.sql.starts_with("SET")),
        "session commands are not workload"
    );
}

#[test]
fn a_slow_query_blocks_no_other_client_and_cancel_or_hang_up_stops_it() {
    let ws = common::generated();
    // A broken cancel fails the test at the five-minute bound below instead of hanging it.
    let served = Served::start(&ws, &[], &[]);
    let body = async {
        let slow = served.connect(None).await.unwrap();
        let cancel = slow.cancel_token();
        let running = tokio::spawn(async move {
            let result = slow.simple_query(ENDLESS).await;
            (slow, result)
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Another client is answered while the slow query runs.
        let other = served.connect(None).await.unwrap();
        let n = count(
            &other
                .simple_query("SELECT count(*) FROM events")
                .await
                .unwrap(),
        );
        assert_eq!(n, vec!["20000".to_string()]);
        assert!(!running.is_finished(), "the endless query ended on its own");
        // A cancel request (what psql sends on Ctrl+C) stops it; its connection stays usable.
        cancel.cancel_query(NoTls).await.unwrap();
        let (slow, result) = tokio::time::timeout(Duration::from_secs(60), running)
            .await
            .expect("the cancelled query returned within a minute")
            .unwrap();
        let err = result.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
        assert_eq!(
            count(&slow.simple_query("SELECT 1").await.unwrap()),
            vec!["1"]
        );
        // A client that hangs up mid-query has its query stopped too.
        let (client, connection) = tokio_postgres::connect(
            &format!(
                "host={} port={} user=dbopt dbname=dbopt",
                served.host, served.port
            ),
            NoTls,
        )
        .await
        .unwrap();
        let conn_task = tokio::spawn(connection);
        let hung = tokio::spawn(async move { client.simple_query(ENDLESS).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        conn_task.abort();
        hung.abort();
        // The server notices the closed socket; give it a moment, then it stays up.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            count(&other.simple_query("SELECT 2").await.unwrap()),
            vec!["2"]
        );
    };
    runtime().block_on(async {
        tokio::time::timeout(Duration::from_secs(300), body)
            .await
            .expect("the test finished within five minutes");
    });
    let stderr = served.stop();
    assert!(
        stderr
            .matches("a query was cancelled by its client")
            .count()
            >= 2,
        "the cancel request and the hang-up each stopped a query: {stderr}"
    );
}

#[test]
fn a_password_is_required_off_loopback_and_checked_when_set() {
    let ws = common::generated();
    let refused = common::run(
        &ws,
        &[
            "serve",
            "--metrics-addr",
            "127.0.0.1:0",
            "--sql-addr",
            "0.0.0.0:0",
        ],
    );
    refused.user_error("sql_password");
    let bad = common::run(&ws, &["serve", "--sql-addr", "localhost"]);
    bad.user_error("--sql-addr");

    let served = Served::start(&ws, &[("DBOPT_SQL_PASSWORD", "s3cret")], &[]);
    runtime().block_on(async {
        assert!(
            served.connect(None).await.is_err(),
            "no password was accepted"
        );
        let wrong = served.connect(Some("guess")).await.unwrap_err();
        assert!(
            wrong.to_string().contains("password") || wrong.code().is_some(),
            "{wrong}"
        );
        let client = served.connect(Some("s3cret")).await.unwrap();
        assert_eq!(
            count(&client.simple_query("SELECT 3").await.unwrap()),
            vec!["3"]
        );
    });
    served.stop();
}

#[test]
fn psycopg_and_psql_agree_with_duckdb_in_plain_text_and_over_tls() {
    let ws = common::generated();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sql_clients.py");
    let data_dir = ws.data_dir().display().to_string();
    let served = Served::start(&ws, &[], &[]);
    let plain = Command::new("python3")
        .args([script, &served.host, &served.port.to_string(), &data_dir])
        .output()
        .expect("python3 runs");
    assert!(
        plain.status.success(),
        "{}{}",
        String::from_utf8_lossy(&plain.stdout),
        String::from_utf8_lossy(&plain.stderr)
    );
    served.stop();

    // TLS with a password: a self-signed certificate made by openssl.
    let cert = ws.root().join("server.crt");
    let key = ws.root().join("server.key");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let env = [
        ("DBOPT_SQL_PASSWORD", "tls-pass"),
        ("DBOPT_SQL_TLS_CERT", cert.to_str().unwrap()),
        ("DBOPT_SQL_TLS_KEY", key.to_str().unwrap()),
    ];
    let served = Served::start(&ws, &env, &[]);
    let tls = Command::new("python3")
        .args([script, &served.host, &served.port.to_string(), &data_dir])
        .args(["--password", "tls-pass", "--tls"])
        .output()
        .expect("python3 runs");
    assert!(
        tls.status.success(),
        "{}{}",
        String::from_utf8_lossy(&tls.stdout),
        String::from_utf8_lossy(&tls.stderr)
    );
    served.stop();
    // A certificate without its key is refused at startup.
    let mut cmd = common::cmd(
        &ws,
        &[("DBOPT_SQL_TLS_CERT", cert.to_str().unwrap())],
        &[
            "serve",
            "--sql-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
    );
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("sql_tls_key"));
}

/// `dbopt cache ACTION --json` against `served`, parsed.
fn cache(ws: &TempWorkspace, served: &Served, action: &[&str]) -> serde_json::Value {
    let args = [
        &["cache"][..],
        action,
        &["--server", &served.http, "--json"],
    ]
    .concat();
    let out = common::run(ws, &args).success();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"))
}

fn num(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// A query that reads two columns of every row group.
const CACHED: &str =
    "SELECT country, sum(amount), count(*) FROM events GROUP BY country ORDER BY country";

#[test]
fn the_column_chunk_cache_serves_repeats_warms_clears_and_follows_layouts() {
    let ws = common::generated();
    // Unrouted: every query reads the active layout, so a migration moves them all.
    let served = Served::start(&ws, &[], &["--no-route"]);
    let rt = runtime();
    let client = rt.block_on(served.connect(None)).unwrap();
    let answer = |client: &Client| {
        rt.block_on(client.simple_query(CACHED))
            .map(|m| count(&m))
            .unwrap()
    };
    let first = answer(&client);
    let cold = cache(&ws, &served, &["stats"]);
    assert!(
        num(&cold, "misses") > 0 && num(&cold, "entries") > 0,
        "{cold}"
    );
    assert_eq!(num(&cold, "hits"), 0, "{cold}");
    assert_eq!(answer(&client), first, "a cached answer is the same answer");
    let warm = cache(&ws, &served, &["stats"]);
    assert_eq!(
        num(&warm, "misses"),
        num(&cold, "misses"),
        "the repeat read no file: {warm}"
    );
    assert!(num(&warm, "hits") >= num(&cold, "misses"), "{warm}");
    assert!(num(&warm, "bytes") <= num(&warm, "max_bytes"));
    assert!(
        num(&warm, "memory_reserved") >= num(&warm, "bytes"),
        "the pool holds the cache: {warm}"
    );

    // clear releases the table's chunks; warm reads its hot columns back before any query.
    let cleared = cache(&ws, &served, &["clear", "--table-name", "events"]);
    assert_eq!(num(&cleared, "entries"), num(&warm, "entries"), "{cleared}");
    assert_eq!(num(&cache(&ws, &served, &["stats"]), "entries"), 0);
    let warmed = cache(&ws, &served, &["warm", "--table-name", "events"]);
    assert_eq!(warmed["from_workload"], true, "{warmed}");
    let columns: Vec<&str> = warmed["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        columns.contains(&"country") && columns.contains(&"amount"),
        "{warmed}"
    );
    assert!(num(&warmed, "chunks") >= num(&warm, "entries"), "{warmed}");
    let before = cache(&ws, &served, &["stats"]);
    assert_eq!(answer(&client), first);
    let after = cache(&ws, &served, &["stats"]);
    assert_eq!(
        num(&after, "misses"),
        num(&before, "misses"),
        "warm preloaded every chunk the query reads: {after}"
    );

    // A new layout is new files, so new keys: its answer is read from its own files.
    let migrate = |sort_by: &str| {
        let out = common::run(
            &ws,
            &[
                "enqueue-migration",
                "--activate",
                "--table-name",
                "events",
                "--sort-by",
                sort_by,
            ],
        )
        .success();
        let target = common::target_of(&out);
        common::run(&ws, &["migration-worker", "--once"]).success();
        assert_eq!(common::active_layout(&ws), target);
        target
    };
    let sorted = migrate("country");
    let fresh = rt.block_on(served.connect(None)).unwrap();
    assert_eq!(answer(&fresh), first, "the new layout answers the same");
    let moved = cache(&ws, &served, &["stats"]);
    assert!(
        num(&moved, "misses") > num(&after, "misses"),
        "the new layout's chunks were read from its files: {moved}"
    );
    // Once gc removes a layout's files, the server releases their chunks.
    migrate("event_date");
    let newest = rt.block_on(served.connect(None)).unwrap();
    assert_eq!(answer(&newest), first);
    let held = cache(&ws, &served, &["stats"]);
    common::gc_now(&ws, "0");
    assert!(
        !common::layout_dirs(&ws).contains(&format!("layout_{sorted}")),
        "gc removed {sorted}"
    );
    let released = cache(&ws, &served, &["stats"]);
    assert!(num(&released, "bytes") < num(&held, "bytes"), "{released}");
    // A table that does not exist is the caller's mistake: exit 2, one line.
    let bad = ws
        .command(&common::bin())
        .args([
            "cache",
            "clear",
            "--table-name",
            "nope",
            "--server",
            &served.http,
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    drop((client, fresh, newest));
    served.stop();
}

/// With DATA_DIR in an S3 bucket (moto), the server's cache holds the chunks it read by range
/// requests: a repeat reads no chunk from the bucket, `cache clear` releases the table's
/// entries, `cache warm` reads its hot columns from the bucket before any query.
#[test]
fn the_column_chunk_cache_serves_a_table_in_an_s3_bucket() {
    let moto = common::Moto::start();
    let ws = moto.workspace("cached", "dbopt/");
    common::generate_events(&ws, "20000", "4", "2000", &[]);
    let served = Served::start(&ws, &[], &["--no-route"]);
    let rt = runtime();
    let client = rt.block_on(served.connect(None)).unwrap();
    let answer = || {
        rt.block_on(client.simple_query(CACHED))
            .map(|m| count(&m))
            .unwrap()
    };
    let first = answer();
    let cold = cache(&ws, &served, &["stats"]);
    assert!(
        num(&cold, "misses") > 0 && num(&cold, "entries") > 0,
        "{cold}"
    );
    assert_eq!(answer(), first);
    let warm = cache(&ws, &served, &["stats"]);
    assert_eq!(
        num(&warm, "misses"),
        num(&cold, "misses"),
        "the repeat read no chunk from the bucket: {warm}"
    );
    assert!(num(&warm, "hits") >= num(&cold, "misses"), "{warm}");
    assert_eq!(
        num(&warm, "entries"),
        num(&cold, "entries"),
        "stats keep the bucket's entries (their files are not on local disk): {warm}"
    );
    let cleared = cache(&ws, &served, &["clear", "--table-name", "events"]);
    assert_eq!(num(&cleared, "entries"), num(&warm, "entries"), "{cleared}");
    let warmed = cache(&ws, &served, &["warm", "--table-name", "events"]);
    assert!(num(&warmed, "chunks") >= num(&warm, "entries"), "{warmed}");
    let before = cache(&ws, &served, &["stats"]);
    assert_eq!(answer(), first);
    let after = cache(&ws, &served, &["stats"]);
    assert_eq!(
        num(&after, "misses"),
        num(&before, "misses"),
        "warm preloaded every chunk the query reads: {after}"
    );
    drop(client);
    served.stop();
}

#[test]
fn a_small_cache_stays_within_its_bound_and_a_bad_size_is_refused() {
    let ws = common::generated();
    let served = Served::start(&ws, &[("DBOPT_CACHE_MAX_BYTES", "64KiB")], &[]);
    let rt = runtime();
    let client = rt.block_on(served.connect(None)).unwrap();
    for _ in 0..3 {
        rt.block_on(client.simple_query(
            "SELECT sum(amount), count(DISTINCT session_id), max(country) FROM events",
        ))
        .unwrap();
    }
    let stats = cache(&ws, &served, &["stats"]);
    assert_eq!(num(&stats, "max_bytes"), 64 << 10);
    assert!(num(&stats, "bytes") <= 64 << 10, "{stats}");
    assert!(
        num(&stats, "evictions") > 0,
        "three columns of 20k rows do not fit in 64 KiB: {stats}"
    );
    drop(client);
    served.stop();
    let out = common::cmd(
        &ws,
        &[("DBOPT_CACHE_MAX_BYTES", "lots")],
        &["serve", "--metrics-addr", "127.0.0.1:0"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cache_max_bytes") && err.contains("byte size"),
        "{err}"
    );
    // No server: a clear one-line error, exit 1 (nothing is wrong with the input).
    let none = ws
        .command(&common::bin())
        .args(["cache", "stats", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1), "{none:?}");
    assert!(String::from_utf8_lossy(&none.stderr).contains("cannot reach dbopt serve"));
}

#[test]
fn a_query_over_the_memory_limit_fails_for_its_client_only() {
    let ws = common::generated();
    let served = Served::start(&ws, &[("DBOPT_MEMORY_LIMIT", "1MiB")], &[]);
    runtime().block_on(async {
        let greedy = served.connect(None).await.unwrap();
        // A hash join's build side cannot spill: 20k rows of strings do not fit in 1 MiB.
        let err = greedy
            .simple_query(
                "SELECT count(*) FROM events a JOIN events b ON a.session_id = b.session_id AND a.country = b.country",
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::OUT_OF_MEMORY), "{err}");
        // The same session and another one go on.
        assert_eq!(
            count(&greedy.simple_query("SELECT count(*) FROM events").await.unwrap()),
            vec!["20000"]
        );
        let other = served.connect(None).await.unwrap();
        assert_eq!(
            count(&other.simple_query("SELECT count(*) FROM events WHERE country = 'US'").await.unwrap()).len(),
            1
        );
    });
    served.stop();
}
