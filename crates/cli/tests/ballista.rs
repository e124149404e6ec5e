//! The events loop on an Apache Ballista cluster of dbopt processes: a scheduler and two
//! executors (`dbopt cluster ...`) on loopback, queries sent there with `--ballista`, their
//! scan metrics read back from the cluster, then propose, migrate, canary and promote. Also
//! the cluster's bad inputs. The cluster tests start real processes: they are ignored by
//! default and `.ci/run` runs them with `--ignored`.

mod common;

use common::{Moto, bin, free_port, generate_events, logged_queries, run, succeeded};
use dbopt_testkit::TempWorkspace;
use serde_json::Value;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A scheduler and its executors, killed when dropped.
struct Cluster {
    /// Environment every process of the cluster starts with.
    env: Vec<(&'static str, String)>,
    processes: Vec<Child>,
    /// `127.0.0.1:<port>` of the scheduler.
    address: String,
    /// Each executor's work directory (where its shuffle files go).
    work_dirs: Vec<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts a scheduler and `executors` executors of one task each; returns once every
    /// one of them listens. Each process's output goes to `<name>.log` in the cluster's
    /// directory, shown when a process does not come up.
    fn start(executors: usize) -> Cluster {
        Cluster::start_with_env(executors, Vec::new())
    }

    /// [`Cluster::start`] with `env` set for every process (an object store's settings).
    fn start_with_env(executors: usize, env: Vec<(&'static str, String)>) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cluster = Cluster {
            env,
            processes: Vec::new(),
            address: format!("127.0.0.1:{port}"),
            work_dirs: Vec::new(),
            _dir: dir,
        };
        cluster.spawn(
            "scheduler",
            &["cluster", "scheduler", "--port", &port.to_string()],
        );
        cluster.wait_listening("scheduler", port);
        for i in 0..executors {
            let (flight, grpc) = (free_port(), free_port());
            let name = format!("executor-{i}");
            let work = cluster._dir.path().join(&name);
            std::fs::create_dir_all(&work).unwrap();
            let address = cluster.address.clone();
            cluster.spawn(
                &name,
                &[
                    "cluster",
                    "executor",
                    "--scheduler",
                    &address,
                    "--port",
                    &flight.to_string(),
                    "--grpc-port",
                    &grpc.to_string(),
                    "--tasks",
                    "1",
                    "--work-dir",
                    work.to_str().unwrap(),
                ],
            );
            cluster.wait_listening(&name, flight);
            cluster.work_dirs.push(work);
        }
        // Listening comes just before registering with the scheduler.
        std::thread::sleep(Duration::from_secs(2));
        cluster
    }

    fn spawn(&mut self, name: &str, args: &[&str]) {
        let log = std::fs::File::create(self._dir.path().join(format!("{name}.log"))).unwrap();
        let child = Command::new(bin())
            .args(args)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("dbopt starts");
        self.processes.push(child);
    }

    fn wait_listening(&self, name: &str, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self._dir.path().join(format!("{name}.log")));
                panic!("{name} did not listen on {port}: {log:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in &mut self.processes {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("bad JSON {e}: {out}"))
}

/// Directories an executor wrote shuffle files into (one per job it ran a stage of).
fn jobs_run_in(work: &Path) -> usize {
    std::fs::read_dir(work).map_or(0, |d| d.flatten().filter(|e| e.path().is_dir()).count())
}

impl Cluster {
    /// Jobs the executors have run stages of, summed over executors.
    fn jobs_run(&self) -> usize {
        self.work_dirs.iter().map(|w| jobs_run_in(w)).sum()
    }
}

fn query(ws: &TempWorkspace, ballista: Option<&str>, sql: &str) -> Value {
    let mut args = vec!["query", "--table-name", "events", "--format", "json", sql];
    if let Some(b) = ballista {
        args.extend(["--ballista", b]);
    }
    json(&run(ws, &args).success())
}

#[test]
#[ignore = "starts a Ballista scheduler and two executors; .ci/run runs it with --ignored"]
#[allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario that reads top to bottom"
)]
fn the_events_loop_runs_on_a_ballista_cluster() {
    let cluster = Cluster::start(2);
    let b = cluster.address.as_str();
    let ws = TempWorkspace::new();
    generate_events(&ws, "60000", "3", "2000", &["--order", "shuffled"]);

    // The same answers as in this process, for a scan, a filter, a group and a join.
    for sql in [
        "SELECT count(*) AS n, sum(amount) AS s FROM events",
        "SELECT event_type, count(*) AS n FROM events WHERE country = 'DE' \
         GROUP BY event_type ORDER BY event_type",
        "SELECT c.segment, count(*) AS n FROM events e JOIN customers c \
         ON e.customer_id = c.customer_id GROUP BY c.segment ORDER BY c.segment",
    ] {
        assert_eq!(query(&ws, Some(b), sql), query(&ws, None, sql), "{sql}");
    }

    // Scan metrics come back from the executors: bytes, and pruning on a sorted layout.
    workload_on(&ws, b, 40, "1");

    let propose = json(
        &run(
            &ws,
            &["propose", "--table-name", "events", "--format", "json"],
        )
        .success(),
    );
    assert!(
        propose["proposals"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{propose}"
    );
    // The rewrite's scan and sort run as jobs on the cluster; a date slice on the sorted layout
    // prunes row groups and reads fewer bytes there.
    let target = date_sort_on(&ws, &cluster, &["--rows-per-file", "20000"]);
    slice_prunes_on(&ws, b, &target);

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
                "10",
                "--ballista",
                b,
                "--format",
                "json",
            ],
        )
        .success(),
    );
    assert_eq!(canary["summary"]["mismatches"], 0, "{canary}");
    assert_eq!(canary["verdict"], "promote", "{canary}");
    run(
        &ws,
        &["promote", "--table-name", "events", "--layout", &target],
    )
    .success();
    assert_eq!(common::active_layout(&ws), target);

    // An incremental rewrite: one unit per source file, several sorted on the cluster at once,
    // recorded in order and published as one layout holding the same rows.
    let units = common::enqueue(
        &ws,
        &[
            "--mode",
            "incremental",
            "--batch-files",
            "1",
            "--sort-by",
            "customer_id",
        ],
    );
    let jobs_before = cluster.jobs_run();
    let worker = run(&ws, &["migration-worker", "--once", "--ballista", b]);
    worker.success();
    let worker = worker.stderr();
    assert!(worker.contains("units at once on the cluster"), "{worker}");
    for k in 1..=3 {
        assert!(worker.contains(&format!("unit {k}/3:")), "{worker}");
    }
    assert!(cluster.jobs_run() >= jobs_before + 3, "a job per unit");
    assert_eq!(
        common::checksum(&ws, Some(&units)),
        common::checksum(&ws, Some(&target))
    );

    // The SQL endpoint's queries run there too: psql, a real client, through `serve`.
    let jobs_before = cluster.jobs_run();
    let sql = "SELECT count(DISTINCT session_id) AS n FROM events";
    let answer = psql_through_serve(&ws, b, sql);
    let local = query(&ws, None, sql)[0]["n"].to_string();
    assert_eq!(
        answer.trim(),
        local,
        "psql through the cluster against this process"
    );
    let jobs_after = cluster.jobs_run();
    assert!(jobs_after > jobs_before, "serve ran no job on the cluster");
    let served = logged_queries(&ws)
        .into_iter()
        .map(|q| q.entry)
        .rfind(|e| e.origin.as_str() == "sql")
        .expect("serve logged the query");
    assert_eq!(served.origin.as_str(), "sql");
    assert!(
        served.error.is_none() && served.metrics.bytes_scanned > 0,
        "{served:?}"
    );

    // Both executors ran stages (each wrote shuffle files of some job).
    for work in &cluster.work_dirs {
        assert!(jobs_run_in(work) > 0, "{} ran nothing", work.display());
    }
}

/// With `DATA_DIR` on an S3 bucket (moto), a cluster started with the store's environment
/// plans over the bucket's files and reads them: the same answers as this process, a
/// workload whose queries read bytes there, a rewrite sorted on the cluster and uploaded, and
/// a date slice that prunes on the sorted layout. A cluster without those settings is
/// refused with the fix.
#[test]
#[ignore = "starts moto, a Ballista scheduler and two executors; .ci/run runs it with --ignored"]
fn the_events_loop_runs_on_a_ballista_cluster_over_object_storage() {
    let moto = Moto::start();
    let ws = moto.workspace("lake", "cluster/");
    let cluster = Cluster::start_with_env(2, moto.env());
    let b = cluster.address.as_str();
    generate_events(&ws, "30000", "2", "2000", &["--order", "shuffled"]);

    for sql in [
        "SELECT count(*) AS n, sum(CAST(amount * 100 AS BIGINT)) AS cents FROM events",
        "SELECT c.segment, count(*) AS n FROM events e JOIN customers c \
         ON e.customer_id = c.customer_id GROUP BY c.segment ORDER BY c.segment",
    ] {
        assert_eq!(query(&ws, Some(b), sql), query(&ws, None, sql), "{sql}");
    }
    let jobs_before = cluster.jobs_run();
    workload_on(&ws, b, 10, "3");
    assert!(
        cluster.jobs_run() > jobs_before,
        "the workload ran on the cluster"
    );
    // One unit per source file: the two units run at once on the cluster, and each is verified
    // and uploaded alone while the other may already be written beside it.
    let target = date_sort_on(
        &ws,
        &cluster,
        &["--mode", "incremental", "--batch-files", "1"],
    );
    assert_eq!(
        common::checksum(&ws, Some(&target)),
        common::checksum(&ws, Some("initial"))
    );
    slice_prunes_on(&ws, b, &target);

    // A cluster started without the store's settings cannot read the bucket: a setting to
    // fix (exit 2) that says so, not a failure of the machine.
    drop(cluster);
    let blind = Cluster::start(1);
    let out = run(
        &ws,
        &[
            "query",
            "--table-name",
            "events",
            "--ballista",
            &blind.address,
            SLICE,
        ],
    );
    let e = out.user_error("could not read the object store");
    assert!(e.contains("AWS_ENDPOINT_URL"), "{e}");
}

/// `run-workload` of `n` queries (seed `seed`) on the cluster at `b`: no errors, and every
/// logged query has bytes the executors read.
fn workload_on(ws: &TempWorkspace, b: &str, n: usize, seed: &str) {
    let before = logged_queries(ws).len();
    let count = n.to_string();
    let summary = json(
        &run(
            ws,
            &[
                "run-workload",
                "--table-name",
                "events",
                "--num-queries",
                &count,
                "--seed",
                seed,
                "--ballista",
                b,
                "--format",
                "json",
            ],
        )
        .success(),
    );
    assert_eq!(summary["errors"], 0, "{summary}");
    let logged: Vec<_> = logged_queries(ws).into_iter().skip(before).collect();
    assert_eq!(logged.len(), n);
    assert!(
        logged
            .iter()
            .all(|q| q.entry.error.is_none() && q.entry.metrics.bytes_scanned > 0),
        "every query ran and read bytes on the cluster: {:?}",
        logged.iter().map(|q| &q.entry.metrics).collect::<Vec<_>>()
    );
}

/// Queues a sort(event_date) rewrite (2000-row groups, `rows_per_file`) and runs it with the
/// cluster: its scan and sort run there (the executors gain job directories: shuffle files of
/// the sort's first stage). Returns the new layout.
fn date_sort_on(ws: &TempWorkspace, cluster: &Cluster, extra: &[&str]) -> String {
    let args = [
        &["--sort-by", "event_date", "--row-group-rows", "2000"],
        extra,
    ]
    .concat();
    let target = common::enqueue(ws, &args);
    let jobs_before = cluster.jobs_run();
    let worker = run(
        ws,
        &["migration-worker", "--once", "--ballista", &cluster.address],
    )
    .success();
    assert!(worker.contains(&target), "{worker}");
    let jobs_after = cluster.jobs_run();
    assert!(
        jobs_after > jobs_before,
        "the rewrite ran no job on the cluster ({jobs_before} -> {jobs_after})"
    );
    target
}

/// A one-day slice of `events`.
const SLICE: &str = "SELECT count(*) AS n FROM events WHERE event_date = DATE '2025-02-01'";

/// [`SLICE`] on the cluster at `b`: the same answer on the initial and the date-sorted
/// layout `sorted`, with row groups pruned and fewer bytes on the sorted one.
fn slice_prunes_on(ws: &TempWorkspace, b: &str, sorted: &str) {
    let initial = query_on(ws, b, "initial", SLICE);
    let on_sorted = query_on(ws, b, sorted, SLICE);
    assert_eq!(initial.0, on_sorted.0, "same answer on both layouts");
    assert!(
        on_sorted.1.metrics.row_groups_pruned > 0
            && on_sorted.1.metrics.bytes_scanned < initial.1.metrics.bytes_scanned,
        "sorted {:?} against initial {:?}",
        on_sorted.1.metrics,
        initial.1.metrics
    );
}

/// `psql -c sql` (unaligned, tuples only) against `dbopt serve --ballista` on a free port.
fn psql_through_serve(ws: &TempWorkspace, ballista: &str, sql: &str) -> String {
    let mut serve = ws
        .command(&bin())
        .args([
            "serve",
            "--metrics-addr",
            "127.0.0.1:0",
            "--sql-addr",
            "127.0.0.1:0",
            "--ballista",
            ballista,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbopt serve starts");
    let mut out = std::io::BufReader::new(serve.stdout.take().unwrap());
    let (_, port, _) = common::served_addresses(&mut out);
    let port = port.to_string();
    let psql = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "dbopt",
            "-d",
            "dbopt",
            "-At",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs (apt-get install postgresql-client)");
    // A graceful stop flushes the query log writer.
    common::signal(&serve, "TERM");
    let _ = serve.wait();
    succeeded(&psql)
}

/// The answer of `sql` on `layout` through the cluster, and the query log entry it left.
fn query_on(
    ws: &TempWorkspace,
    ballista: &str,
    layout: &str,
    sql: &str,
) -> (Value, dbopt_catalog::QueryLogEntry) {
    let rows = json(
        &run(
            ws,
            &[
                "query",
                "--table-name",
                "events",
                "--layout",
                layout,
                "--ballista",
                ballista,
                "--format",
                "json",
                sql,
            ],
        )
        .success(),
    );
    let entry = logged_queries(ws).pop().unwrap().entry;
    (rows, entry)
}

#[test]
fn a_scheduler_that_does_not_answer_is_a_configuration_error() {
    let ws = TempWorkspace::new();
    generate_events(&ws, "2000", "1", "1000", &[]);
    let query_on = |address: &str| {
        run(
            &ws,
            &[
                "query",
                "--table-name",
                "events",
                "--ballista",
                address,
                "SELECT count(*) FROM events",
            ],
        )
    };
    let port = free_port();
    query_on(&format!("127.0.0.1:{port}")).user_error(&format!(
        "Ballista scheduler at http://127.0.0.1:{port} did not answer"
    ));
    for bad in ["host:port", "s3://x:1"] {
        query_on(bad).user_error("write host:port");
    }
    // Nothing was logged for queries that never reached a cluster.
    assert!(logged_queries(&ws).is_empty());

    // A worker told to sort on a cluster that does not answer touches no job.
    let target = common::enqueue(&ws, &["--sort-by", "event_date"]);
    let address = format!("127.0.0.1:{port}");
    run(&ws, &["migration-worker", "--once", "--ballista", &address]).user_error("did not answer");
    assert_eq!(
        common::job_status(&ws, &target),
        ("queued".to_string(), None)
    );
}

#[test]
fn cluster_processes_refuse_a_port_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let ws = TempWorkspace::new();
    run(&ws, &["cluster", "scheduler", "--port", &port]).user_error("choose another --port");
    run(
        &ws,
        &["cluster", "executor", "--port", &port, "--grpc-port", "1"],
    )
    .user_error("choose another --port");
}
