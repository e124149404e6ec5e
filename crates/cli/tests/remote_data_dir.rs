//! `DATA_DIR` on object storage: the events loop with its layouts kept as real objects in an
//! S3 bucket, served by moto on loopback with IAM authentication on (see `common::Moto`),
//! while METADATA_DB stays a local SQLite file.
//!
//! What it proves, checked on the objects themselves with boto3 and pyarrow (never through
//! dbopt's own reading code):
//! * `generate` uploads `prefix/events/layout_initial/` (Parquet parts and the manifest the
//!   parts are listed in), pyarrow reads every row back, and no layout file lands in the
//!   workspace's local data directory;
//! * queries on the remote table answer exactly what the same queries answer on an identical
//!   local workspace, and the remote manifest's row digest equals the local one;
//! * run-workload, propose, a migration to a date sort and the worker work unchanged, and a
//!   thin date range on the new layout prunes row groups and reads fewer bytes (the engine's
//!   own scan metrics, from the query log);
//! * canary then promote make the new layout active (`status` says so);
//! * a worker killed (SIGABRT) at `migrate.uploaded`, every object of the new layout uploaded
//!   and the catalog not yet told, leaves objects no catalog row names and no query reads; gc
//!   keeps them while the job lives, a rerun of the worker publishes the layout whole, and gc
//!   deletes the objects of a layout the catalog does not know (and nothing else);
//! * bad settings (a missing bucket, a wrong secret key, an endpoint nothing listens on) exit
//!   2 with one error line naming the problem, and Delta-table commands are refused on a
//!   remote DATA_DIR.

mod common;

use common::{Moto, free_port, layouts};
use dbopt_catalog::QueryLogEntry;
use dbopt_testkit::TempWorkspace;
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Output;

/// The bucket of the loop test.
const BUCKET: &str = "dbopt-remote";
/// The prefix DATA_DIR names inside the bucket (trailing slash included).
const PREFIX: &str = "warehouse/";
/// 60k shuffled events in three files of 20k rows, row groups of 2000 rows: the same command
/// for the remote and the local workspace.
const GENERATE: [&str; 13] = [
    "generate",
    "--table-name",
    "events",
    "--num-rows",
    "60000",
    "--seed",
    "3",
    "--row-group-rows",
    "2000",
    "--rows-per-file",
    "20000",
    "--order",
    "shuffled",
];
/// Queries whose answers hold no floating-point sums (their order of addition may differ).
const QUERIES: [&str; 3] = [
    "SELECT count(*) AS n, sum(event_id) AS ids, count(DISTINCT session_id) AS sessions, \
     sum(CAST(amount * 100 AS BIGINT)) AS cents, min(event_ts) AS first_ts, \
     max(event_date) AS last_day FROM events",
    "SELECT country, count(*) AS n, sum(duration_ms) AS d FROM events \
     WHERE event_date BETWEEN DATE '2025-02-01' AND DATE '2025-02-10' \
     GROUP BY country ORDER BY country",
    "SELECT c.segment, count(*) AS n FROM events e JOIN customers c \
     ON e.customer_id = c.customer_id GROUP BY c.segment ORDER BY c.segment",
];
/// A thin date range: a date-sorted layout keeps it in a few row groups.
const SLICE: &str = "SELECT count(*) AS n, sum(event_id) AS ids FROM events \
                     WHERE event_date BETWEEN DATE '2025-02-01' AND DATE '2025-02-02'";
/// An order-insensitive checksum of every row (as `common::checksum`).
const CHECKSUM: &str = "SELECT count(*) AS n, sum(event_id) AS ids, \
                        count(DISTINCT session_id) AS sessions, \
                        sum(CAST(amount * 100 AS BIGINT)) AS cents, count(country) AS c \
                        FROM events";

/// A workspace whose DATA_DIR is an `s3://` URL on the moto server: every command gets the
/// store's environment, DATA_DIR included (set after the workspace's own, so it wins).
struct Remote<'a> {
    ws: &'a TempWorkspace,
    env: Vec<(&'static str, String)>,
}

impl<'a> Remote<'a> {
    fn new(ws: &'a TempWorkspace, moto: &Moto, data_dir: &str) -> Remote<'a> {
        let mut env = moto.env();
        env.push(("DATA_DIR", data_dir.to_string()));
        Remote { ws, env }
    }

    /// `dbopt args` with the store's environment and then `extra` (later entries win).
    fn output_with(&self, extra: &[(&str, &str)], args: &[&str]) -> Output {
        let mut env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend_from_slice(extra);
        common::cmd(self.ws, &env, args).output().unwrap()
    }

    fn output(&self, args: &[&str]) -> Output {
        self.output_with(&[], args)
    }

    /// Runs `dbopt args`, asserts it succeeded, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "dbopt {args:?} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON from {args:?} ({e}): {out}"))
    }

    /// The rows `sql` returns from `events` (routed; `layout` pins one).
    fn query(&self, layout: Option<&str>, sql: &str) -> Value {
        let mut args = vec!["query", "--table-name", "events", "--format", "json"];
        if let Some(l) = layout {
            args.extend(["--layout", l]);
        }
        args.push(sql);
        self.json(&args)
    }

    /// The rows of `sql` on `layout` and the query-log entry it left.
    fn query_on(&self, layout: &str, sql: &str) -> (Value, QueryLogEntry) {
        let rows = self.query(Some(layout), sql);
        let newest = self.ws.catalog().logged_queries(None, 0, Some(1)).unwrap();
        let entry = newest
            .into_iter()
            .next()
            .expect("the query was logged")
            .entry;
        assert_eq!(entry.sql, sql);
        assert_eq!(
            entry.layout_id.as_ref().map(dbopt_core::LayoutId::as_str),
            Some(layout)
        );
        assert!(entry.error.is_none(), "{:?}", entry.error);
        (rows, entry)
    }
}

/// Prepends the Python every store script shares: `s3` (boto3), `keys(bucket, prefix)` (every
/// key under it, sorted) and `fs` (pyarrow's S3 filesystem on the same server).
fn s3_script(body: &str) -> String {
    format!(
        r#"
import os, json, boto3
import pyarrow.fs as pafs
BUCKET = '{BUCKET}'
PREFIX = '{PREFIX}'
s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'])
def keys(bucket, prefix):
    out = []
    for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=prefix):
        out += [o['Key'] for o in page.get('Contents', [])]
    return sorted(out)
fs = pafs.S3FileSystem(endpoint_override=os.environ['AWS_ENDPOINT_URL'], scheme='http',
    access_key=os.environ['AWS_ACCESS_KEY_ID'], secret_key=os.environ['AWS_SECRET_ACCESS_KEY'],
    region='us-east-1')
{body}
"#
    )
}

fn create_bucket(moto: &Moto, bucket: &str) {
    moto.python(&s3_script(&format!(
        "s3.create_bucket(Bucket='{bucket}')\nprint('null')"
    )));
}

/// Every key under `prefix` of `bucket`, sorted.
fn keys(moto: &Moto, bucket: &str, prefix: &str) -> Vec<String> {
    let listed = moto.python(&s3_script(&format!(
        "print(json.dumps(keys('{bucket}', '{prefix}')))"
    )));
    listed
        .as_array()
        .unwrap_or_else(|| panic!("a key list: {listed}"))
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

/// The key prefix of `layout` of `events`.
fn layout_prefix(layout: &str) -> String {
    format!("{PREFIX}events/layout_{layout}/")
}

/// The manifest of `layout` of `events`, as uploaded.
fn manifest(moto: &Moto, layout: &str) -> Value {
    let key = format!("{}_dbopt_layout.json", layout_prefix(layout));
    moto.python(&s3_script(&format!(
        "print(s3.get_object(Bucket=BUCKET, Key='{key}')['Body'].read().decode())"
    )))
}

/// Asserts the objects of `layout` are its Parquet parts, its manifest and (for a migrated
/// layout) its units' digests, nothing else, and that the manifest lists exactly those parts;
/// returns the part names.
fn assert_layout_objects(moto: &Moto, layout: &str) -> Vec<String> {
    let base = layout_prefix(layout);
    let names: Vec<String> = keys(moto, BUCKET, &base)
        .iter()
        .map(|k| k.strip_prefix(&base).unwrap().to_string())
        .collect();
    assert!(
        names.iter().any(|n| n == "_dbopt_layout.json"),
        "no manifest under {base}: {names:?}"
    );
    let parts: Vec<String> = names
        .iter()
        .filter(|n| n.ends_with(".parquet"))
        .cloned()
        .collect();
    assert!(!parts.is_empty(), "no Parquet under {base}: {names:?}");
    let digests = names
        .iter()
        .filter(|n| n.starts_with("_dbopt_unit_") && n.ends_with(".digest"))
        .count();
    assert_eq!(
        names.len(),
        parts.len() + digests + 1,
        "only parts, unit digests and the manifest: {names:?}"
    );
    assert_eq!(
        digests > 0,
        layout != "initial",
        "a migrated layout keeps each unit's digest, a loaded one has none: {names:?}"
    );
    let manifest = manifest(moto, layout);
    let mut listed: Vec<String> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, parts, "the manifest lists the uploaded parts");
    assert_eq!(manifest["row_count"], 60000);
    parts
}

/// Parquet files and manifests anywhere under `dir` (none when it does not exist).
fn local_layout_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(local_layout_files(&path));
        } else if path
            .file_name()
            .is_some_and(|n| n == "_dbopt_layout.json" || n.to_string_lossy().ends_with(".parquet"))
        {
            out.push(path.display().to_string());
        }
    }
    out
}

/// Asserts `out` exited 2 with one `error:` line (no panic) containing one of `needles`.
fn refused(out: &Output, what: &str, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: should exit 2\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: panic\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{what}: one error line\n{stderr}");
    let line = lines[0].to_lowercase();
    assert!(
        needles.iter().any(|n| line.contains(&n.to_lowercase())),
        "{what}: the error should mention one of {needles:?}: {}",
        lines[0]
    );
    lines[0].to_string()
}

#[test]
fn the_events_loop_keeps_its_layouts_in_an_s3_bucket() {
    let moto = Moto::start();
    create_bucket(&moto, BUCKET);
    let ws = TempWorkspace::new();
    let remote = Remote::new(&ws, &moto, &format!("s3://{BUCKET}/{PREFIX}"));
    remote.ok(&GENERATE);

    initial_layout_is_on_s3(&moto, &remote);
    let sorted = a_sorted_layout_prunes_on_s3(&moto, &remote);
    canary_then_promote(&remote, &sorted);
    a_crash_after_upload_is_collected_then_republished(&moto, &remote, &sorted);
    a_replace_is_published_beside_the_old_layouts(&moto, &remote);

    assert_eq!(
        local_layout_files(&ws.data_dir()),
        Vec::<String>::new(),
        "no layout file in the local data directory"
    );
}

/// The initial layout's objects, read by pyarrow, and answers equal to those of
/// a local workspace generated alike.
fn initial_layout_is_on_s3(moto: &Moto, remote: &Remote<'_>) {
    assert_eq!(
        local_layout_files(&remote.ws.data_dir()),
        Vec::<String>::new(),
        "generate wrote no layout file in the local data directory"
    );
    let parts = assert_layout_objects(moto, "initial");
    let events = keys(moto, BUCKET, &format!("{PREFIX}events/"));
    assert!(
        events
            .iter()
            .all(|k| k.starts_with(&layout_prefix("initial"))),
        "nothing but the initial layout under events/ (no staging on the store): {events:?}"
    );
    let read = moto.python(&s3_script(
        r#"
import pyarrow.parquet as pq, pyarrow.compute as pc
t = pq.read_table(BUCKET + '/' + PREFIX + 'events/layout_initial/', filesystem=fs)
print(json.dumps({'rows': t.num_rows, 'ids': pc.sum(t['event_id']).as_py()}))
"#,
    ));
    assert_eq!(read["rows"], 60000, "pyarrow reads every row of {parts:?}");

    let local = TempWorkspace::new();
    common::run(&local, &GENERATE).success();
    for sql in QUERIES {
        assert_eq!(
            remote.query(None, sql),
            common::query_json(&local, sql),
            "remote and local answers differ: {sql}"
        );
    }
    let totals = remote.query(None, QUERIES[0]);
    assert_eq!(totals[0]["n"], 60000);
    assert_eq!(totals[0]["ids"], read["ids"], "dbopt and pyarrow agree");
    assert_eq!(
        manifest(moto, "initial")["digest"].as_str(),
        Some(common::manifest_digest(&local, "initial").as_str()),
        "the same rows as the local copy"
    );
}

/// Workload, propose, a date sort built by the worker, and its pruning on S3.
/// Returns the sorted layout's id.
fn a_sorted_layout_prunes_on_s3(moto: &Moto, remote: &Remote<'_>) -> String {
    let summary = remote.json(&[
        "run-workload",
        "--table-name",
        "events",
        "--num-queries",
        "40",
        "--seed",
        "1",
        "--format",
        "json",
    ]);
    assert_eq!(summary["errors"], 0, "{summary}");
    let propose = remote.json(&["propose", "--table-name", "events", "--format", "json"]);
    assert!(
        propose["proposals"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{propose}"
    );
    let target = common::target_of(&remote.ok(&[
        "enqueue-migration",
        "--table-name",
        "events",
        "--sort-by",
        "event_date",
        "--row-group-rows",
        "2000",
        "--rows-per-file",
        "20000",
    ]));
    let worker = remote.ok(&["migration-worker", "--once"]);
    assert!(worker.contains(&target), "{worker}");
    assert_eq!(common::job_status(remote.ws, &target).0, "done");
    assert_layout_objects(moto, &target);
    assert_eq!(
        manifest(moto, &target)["digest"],
        manifest(moto, "initial")["digest"],
        "the rewrite holds the same rows"
    );

    let (before_rows, before) = remote.query_on("initial", SLICE);
    let (after_rows, after) = remote.query_on(&target, SLICE);
    assert_eq!(before_rows, after_rows, "same answer on both layouts");
    assert!(before.metrics.bytes_scanned > 0, "{:?}", before.metrics);
    assert!(
        after.metrics.row_groups_pruned > 0
            && after.metrics.bytes_scanned < before.metrics.bytes_scanned,
        "sorted {:?} against initial {:?}",
        after.metrics,
        before.metrics
    );
    target
}

/// The canary proves the sorted layout, promote makes it active, status shows it.
fn canary_then_promote(remote: &Remote<'_>, target: &str) {
    let canary = remote.json(&[
        "canary",
        "--table-name",
        "events",
        "--layout",
        target,
        "--queries",
        "10",
        "--format",
        "json",
    ]);
    assert_eq!(canary["summary"]["mismatches"], 0, "{canary}");
    assert_eq!(canary["verdict"], "promote", "{canary}");
    remote.ok(&["promote", "--table-name", "events", "--layout", target]);
    assert_eq!(common::active_layout(remote.ws), target);
    let status = remote.json(&["status", "--table-name", "events", "--format", "json"]);
    assert_eq!(status["active_layout"], target, "{status}");
    let shown = status["layouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["layout_id"] == target)
        .unwrap_or_else(|| panic!("no layout {target} in {status}"));
    assert_eq!(shown["state"], "active", "{status}");
    // Unpinned queries now read it.
    let rows = remote.query(None, SLICE);
    let (pinned, _) = remote.query_on(target, SLICE);
    assert_eq!(rows, pinned);
}

/// A worker killed once every object of the new layout is uploaded and before the catalog
/// commit: the objects stay while the job lives, and a rerun publishes the layout.
fn a_crash_after_upload_is_collected_then_republished(
    moto: &Moto,
    remote: &Remote<'_>,
    active: &str,
) {
    let target = common::target_of(&remote.ok(&[
        "enqueue-migration",
        "--table-name",
        "events",
        "--sort-by",
        "customer_id",
        "--row-group-rows",
        "2000",
    ]));
    let lease = ("DBOPT_LEASE_SECONDS", "1");
    let out = remote.output_with(
        &[("DBOPT_FAILPOINT", "migrate.uploaded"), lease],
        &["migration-worker", "--once"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "the worker should die at migrate.uploaded: {:?}\n{stderr}",
        out.status
    );
    assert!(stderr.contains("fail point migrate.uploaded"), "{stderr}");

    let base = layout_prefix(&target);
    let uploaded = keys(moto, BUCKET, &base);
    assert!(
        uploaded.contains(&format!("{base}_dbopt_layout.json"))
            && uploaded.iter().any(|k| k.ends_with(".parquet")),
        "every object of {target} is uploaded: {uploaded:?}"
    );
    assert!(
        layouts(remote.ws)
            .iter()
            .all(|l| l.layout_id.as_str() != target),
        "the catalog does not list {target}"
    );

    // The job is still running (its worker died holding the lease): gc keeps what it builds.
    let before: Vec<String> = keys(moto, BUCKET, PREFIX);
    gc_now(remote);
    assert_eq!(
        keys(moto, BUCKET, PREFIX),
        before,
        "gc keeps the objects of a job that is still running"
    );
    let env: Vec<(&str, &str)> = remote.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    common::finish_job(remote.ws, &env, &target);
    assert_layout_objects(moto, &target);
    assert_eq!(
        manifest(moto, &target)["digest"],
        manifest(moto, "initial")["digest"]
    );
    assert!(
        remote
            .ws
            .catalog()
            .ready_layouts(&common::events())
            .unwrap()
            .iter()
            .any(|l| l.layout_id.as_str() == target),
        "the rerun published {target}"
    );
    assert_eq!(common::active_layout(remote.ws), active, "still active");
    assert_eq!(
        remote.query(Some(&target), CHECKSUM),
        remote.query(Some(active), CHECKSUM)
    );
    orphans_are_collected(moto, remote);
}

/// `generate --replace` on the bucket: the new initial layout goes under a prefix of its own
/// (`layout_initial.<ms>`, no rename on an object store) and the catalog commit switches every
/// reader to it. Killed between the upload and the commit (of `events`, the second table
/// `generate` writes, after `customers`), the table answers its old rows and
/// gc deletes the upload; run again, the table answers the new rows, and gc then deletes every
/// old layout's objects.
fn a_replace_is_published_beside_the_old_layouts(moto: &Moto, remote: &Remote<'_>) {
    let mut replace = GENERATE.to_vec();
    replace[4] = "30000"; // --num-rows
    replace[6] = "4"; // --seed
    replace.push("--replace");
    let events = format!("{PREFIX}events/");
    let before = keys(moto, BUCKET, &events);
    let out = remote.output_with(&[("DBOPT_FAILPOINT", "publish.uploaded@2")], &replace);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "generate should die at publish.uploaded: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uploaded: Vec<String> = keys(moto, BUCKET, &events)
        .into_iter()
        .filter(|k| !before.contains(k))
        .collect();
    assert!(
        !uploaded.is_empty()
            && uploaded
                .iter()
                .all(|k| k.starts_with(&format!("{events}layout_initial."))),
        "the new initial layout is uploaded beside the old one: {uploaded:?}"
    );
    assert_eq!(remote.query(None, CHECKSUM)[0]["n"], 60000, "the old rows");
    gc_now(remote);
    assert_eq!(
        keys(moto, BUCKET, &events),
        before,
        "gc deletes the upload no commit named"
    );

    remote.ok(&replace);
    let rows = remote.query(None, CHECKSUM);
    assert_eq!(rows[0]["n"], 30000, "the new rows: {rows}");
    let initial = remote
        .ws
        .catalog()
        .get_layout(&common::events(), &dbopt_core::LayoutId::initial())
        .unwrap()
        .unwrap();
    assert!(
        initial.path.starts_with("events/layout_initial."),
        "{}",
        initial.path
    );
    assert_eq!(layouts(remote.ws).len(), 1, "the old layouts are dropped");
    gc_now(remote);
    let left = keys(moto, BUCKET, &events);
    assert!(
        !left.is_empty()
            && left
                .iter()
                .all(|k| k.starts_with(&format!("{PREFIX}{}/", initial.path))),
        "gc leaves only the new initial layout: {left:?}"
    );
    assert_eq!(remote.query(None, CHECKSUM), rows, "still read after gc");
}

/// Objects under a layout prefix that no catalog row names (what a killed worker leaves when
/// its job later fails for good) are deleted by gc, and nothing else.
fn orphans_are_collected(moto: &Moto, remote: &Remote<'_>) {
    let orphan = layout_prefix("00000000000000aa");
    let before = keys(moto, BUCKET, PREFIX);
    moto.python(&s3_script(&format!(
        "for name in ('part-u00000-00000.parquet', '_dbopt_layout.json'):\n    s3.put_object(Bucket=BUCKET, Key='{orphan}' + name, Body=b'x')\nprint('null')"
    )));
    assert_eq!(keys(moto, BUCKET, &orphan).len(), 2);
    gc_now(remote);
    assert_eq!(
        keys(moto, BUCKET, PREFIX),
        before,
        "gc deletes the orphan layout's objects, and nothing else"
    );
}

/// gc of `events` keeping 3 inactive layouts, with no grace period.
fn gc_now(remote: &Remote<'_>) {
    remote.ok(&[
        "gc",
        "--table-name",
        "events",
        "--keep",
        "3",
        "--grace",
        "0s",
    ]);
}

#[test]
fn bad_object_storage_settings_are_named_and_lake_commands_refused() {
    let moto = Moto::start();
    create_bucket(&moto, "lake");
    let good = TempWorkspace::new();
    let remote = Remote::new(&good, &moto, "s3://lake/good/");
    let small = [
        "generate",
        "--table-name",
        "events",
        "--num-rows",
        "2000",
        "--seed",
        "1",
        "--row-group-rows",
        "500",
    ];
    remote.ok(&small);

    // Each bad setting on a fresh workspace: named, exit 2, nothing registered or uploaded.
    let fresh = TempWorkspace::new();
    let attempt = Remote::new(&fresh, &moto, "s3://lake/bad/");
    let port = free_port();
    let closed = format!("http://127.0.0.1:{port}");
    let address = format!("127.0.0.1:{port}");
    let generate = |env: &[(&str, &str)]| attempt.output_with(env, &small);
    let missing = generate(&[("DATA_DIR", "s3://no-such-bucket/data/")]);
    refused(&missing, "a missing bucket", &["bucket"]);
    let wrong_key = generate(&[("AWS_SECRET_ACCESS_KEY", "wrong")]);
    refused(&wrong_key, "a wrong secret key", &["credentials"]);
    let unreachable = generate(&[("AWS_ENDPOINT_URL", closed.as_str())]);
    refused(
        &unreachable,
        "an endpoint nothing listens on",
        &["endpoint", "did not answer", address.as_str()],
    );
    assert!(
        fresh.catalog().list_tables().unwrap().is_empty(),
        "nothing registered"
    );
    assert_eq!(
        keys(&moto, "lake", "bad/"),
        Vec::<String>::new(),
        "nothing uploaded"
    );

    // A reader with a wrong key is refused on a table that exists.
    let count = [
        "query",
        "--table-name",
        "events",
        "SELECT count(*) FROM events",
    ];
    refused(
        &remote.output_with(&[("AWS_SECRET_ACCESS_KEY", "wrong")], &count),
        "a query with a wrong secret key",
        &["credentials"],
    );

    // Delta tables live on local disk: refused on a remote DATA_DIR.
    let lake = good.root().join("lake").join("events");
    let register = [
        "register-table",
        "--table-name",
        "delta_events",
        "--delta",
        lake.to_str().unwrap(),
    ];
    refused(
        &remote.output(&register),
        "register-table --delta",
        &["object storage"],
    );
    let tables: Vec<String> = good
        .catalog()
        .list_tables()
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(tables, ["customers", "events"]);
    let rows = remote.query(None, "SELECT count(*) AS n FROM events");
    assert_eq!(rows[0]["n"], 2000, "the good settings still read the table");
}

/// `adopt-layout` with DATA_DIR in the bucket: files another tool wrote in the same bucket
/// (pyarrow here, as Spark would) are copied in by the store, a local directory is uploaded;
/// either becomes a layout whose objects are its parts and manifest, answering as the table
/// does. Files with other rows, and a prefix of another bucket, are refused with exit 2.
#[test]
fn adopt_layout_copies_files_of_the_bucket_and_uploads_local_ones() {
    let moto = Moto::start();
    create_bucket(&moto, BUCKET);
    create_bucket(&moto, "elsewhere");
    let ws = TempWorkspace::new();
    let remote = Remote::new(&ws, &moto, &format!("s3://{BUCKET}/{PREFIX}"));
    remote.ok(&GENERATE);
    let local_dir = ws.root().join("sorted-by-customer");
    moto.python(&s3_script(&format!(
        r#"
import pyarrow.parquet as pq, pyarrow.dataset as ds, os
t = pq.read_table(BUCKET + '/' + PREFIX + 'events/layout_initial/', filesystem=fs)
by_day = t.sort_by([('event_date', 'ascending')])
for i, lo in enumerate(range(0, t.num_rows, 30000)):
    pq.write_table(by_day.slice(lo, 30000), BUCKET + '/spark/by_day/part-%d.parquet' % i, filesystem=fs, row_group_size=2000)
pq.write_table(by_day.slice(0, 1000), BUCKET + '/spark/partial/part-0.parquet', filesystem=fs)
pq.write_table(by_day, 'elsewhere/by_day/part-0.parquet', filesystem=fs)
os.makedirs('{local}', exist_ok=True)
pq.write_table(t.sort_by([('customer_id', 'ascending')]), '{local}/part-0.parquet', row_group_size=5000)
print('null')
"#,
        local = local_dir.display()
    )));
    let expected = remote.query(None, CHECKSUM);

    let adopt = |source: &str| {
        remote.output(&[
            "adopt-layout",
            "--table-name",
            "events",
            "--source-path",
            source,
            "--format",
            "json",
        ])
    };
    let from_bucket = format!("s3://{BUCKET}/spark/by_day/");
    let out = adopt(&from_bucket);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["files"], 2, "{report}");
    assert_eq!(report["rows"], 60000);
    let by_day = report["layout_id"].as_str().unwrap().to_string();
    let names: Vec<String> = keys(&moto, BUCKET, &layout_prefix(&by_day));
    assert_eq!(
        names,
        [
            format!("{}_dbopt_layout.json", layout_prefix(&by_day)),
            format!("{}part-00000.parquet", layout_prefix(&by_day)),
            format!("{}part-00001.parquet", layout_prefix(&by_day)),
        ],
        "the two files copied and the manifest"
    );
    assert_eq!(remote.query(Some(&by_day), CHECKSUM), expected);
    let (_, entry) = remote.query_on(&by_day, SLICE);
    assert!(entry.metrics.row_groups_pruned > 0, "{:?}", entry.metrics);
    let again: Value = serde_json::from_slice(&adopt(&from_bucket).stdout).unwrap();
    assert_eq!(again["newly_adopted"], false);
    assert_eq!(again["layout_id"], by_day.as_str());

    let uploaded: Value =
        serde_json::from_slice(&adopt(local_dir.to_str().unwrap()).stdout).unwrap();
    assert_eq!(uploaded["newly_adopted"], true, "{uploaded}");
    let by_customer = uploaded["layout_id"].as_str().unwrap();
    assert_eq!(
        keys(&moto, BUCKET, &layout_prefix(by_customer)).len(),
        2,
        "one part uploaded and the manifest"
    );
    assert_eq!(remote.query(Some(by_customer), CHECKSUM), expected);

    refused(
        &adopt(&format!("s3://{BUCKET}/spark/partial/")),
        "files with other rows",
        &["do not hold the same rows"],
    );
    refused(
        &adopt("s3://elsewhere/by_day/"),
        "a prefix of another bucket",
        &["not in DATA_DIR's bucket"],
    );
    let layouts = layouts(&ws);
    assert_eq!(layouts.len(), 3, "initial and the two adopted: {layouts:?}");
}
