//! Helpers shared by the CLI integration tests: the binary under test and the events table.
#![allow(dead_code)] // each test file uses its own subset

use dbopt_catalog::{JobRecord, LayoutRecord, LoggedQuery, QueryLogEntry};
use dbopt_core::TableName;
use dbopt_testkit::{Run, TempWorkspace};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `dbopt` binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dbopt"))
}

/// Runs `dbopt args` in the workspace.
pub fn run(ws: &TempWorkspace, args: &[&str]) -> Run {
    ws.run(&bin(), args)
}

/// Generates the `events` table: `rows` rows from `seed` in row groups of `row_group_rows`,
/// with `extra` flags appended.
pub fn generate_events(
    ws: &TempWorkspace,
    rows: &str,
    seed: &str,
    row_group_rows: &str,
    extra: &[&str],
) {
    let base = [
        "generate",
        "--table-name",
        "events",
        "--num-rows",
        rows,
        "--seed",
        seed,
        "--row-group-rows",
        row_group_rows,
    ];
    run(ws, &[&base[..], extra].concat()).success();
}

/// A new workspace holding 20k generated events (seed 7, row groups of 2000 rows).
pub fn generated() -> TempWorkspace {
    let ws = TempWorkspace::new();
    generate_events(&ws, "20000", "7", "2000", &[]);
    ws
}

/// The name of the `events` table.
pub fn events() -> TableName {
    TableName::new("events").unwrap()
}

/// The active layout of `events`.
pub fn active_layout(ws: &TempWorkspace) -> String {
    let table = ws.catalog().require_table(&events()).unwrap();
    table.active_layout.to_string()
}

/// Every layout of `events` the catalog holds, in any status.
pub fn layouts(ws: &TempWorkspace) -> Vec<LayoutRecord> {
    ws.catalog().list_layouts(&events()).unwrap()
}

/// Every query the catalog logged, of every table, oldest first.
pub fn logged_queries(ws: &TempWorkspace) -> Vec<LoggedQuery> {
    ws.catalog().logged_queries(None, 0, None).unwrap()
}

/// The queries logged against `events` that read `layout` and succeeded, oldest first.
pub fn served_by(ws: &TempWorkspace, layout: &str) -> Vec<QueryLogEntry> {
    logged_queries(ws)
        .into_iter()
        .map(|q| q.entry)
        .filter(|e| e.table == events() && e.error.is_none())
        .filter(|e| e.layout_id.as_ref().is_some_and(|l| l.as_str() == layout))
        .collect()
}

/// The migration jobs of every table, oldest first.
pub fn jobs(ws: &TempWorkspace) -> Vec<JobRecord> {
    ws.catalog().list_jobs(None).unwrap()
}

/// The job building `target`.
pub fn job(ws: &TempWorkspace, target: &str) -> JobRecord {
    jobs(ws)
        .into_iter()
        .find(|j| j.target_layout.as_str() == target)
        .unwrap_or_else(|| panic!("no job builds {target}"))
}

/// `dbopt args` with extra environment, as a `Command`.
pub fn cmd(ws: &TempWorkspace, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut c = ws.command(&bin());
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args);
    c
}

/// (status, error) of the job building `target`.
pub fn job_status(ws: &TempWorkspace, target: &str) -> (String, Option<String>) {
    let job = job(ws, target);
    (job.status.to_string(), job.error)
}

/// The digest recorded in the manifest of `layout` of `events`.
pub fn manifest_digest(ws: &TempWorkspace, layout: &str) -> String {
    let path = ws
        .data_dir()
        .join("events")
        .join(format!("layout_{layout}"))
        .join("_dbopt_layout.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["digest"].as_str().unwrap().to_string()
}

/// The target layout id printed by enqueue-migration.
pub fn target_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("target layout:"))
        .expect("the plan names its target layout")
        .trim()
        .to_string()
}

/// An order-insensitive checksum of the rows of `events` read through `layout` (the active or
/// routed layout when None), answered by `dbopt query`.
pub fn checksum(ws: &TempWorkspace, layout: Option<&str>) -> String {
    let sql = "SELECT count(*), sum(event_id), count(DISTINCT session_id), \
               sum(CAST(amount * 100 AS BIGINT)), count(country) FROM events";
    let mut args = vec!["query", "--table-name", "events", "--format", "csv"];
    if let Some(l) = layout {
        args.extend(["--layout", l]);
    }
    args.push(sql);
    run(ws, &args).success()
}

/// Entry names under `DATA_DIR/events/_staging`, sorted.
pub fn staging_entries(ws: &TempWorkspace) -> Vec<String> {
    let dir = ws.data_dir().join("events").join("_staging");
    let mut out: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// The `layout_*` directories of `events`, sorted.
pub fn layout_dirs(ws: &TempWorkspace) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(ws.data_dir().join("events"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("layout_"))
        .collect();
    out.sort();
    out
}

/// `dbopt gc` on `events` keeping `keep` inactive layouts and no grace period: removes at once
/// everything gc may remove.
pub fn gc_now(ws: &TempWorkspace, keep: &str) {
    let args = [
        "gc",
        "--table-name",
        "events",
        "--keep",
        keep,
        "--grace",
        "0s",
    ];
    run(ws, &args).success();
}

/// Sends signal `name` (`INT`, `TERM`, `KILL`) to a child this test started and has not
/// reaped, through kill(1) so the tests need no unsafe code.
pub fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {} failed", child.id());
}

/// A request a scripted server received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// GET, POST, ...
    pub method: String,
    /// The request path.
    pub path: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Seen {
    /// A header by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A loopback HTTP server that answers each request with `script` (status and JSON body;
/// None: never answers, like a stalled server) and records what it received.
pub fn scripted(
    script: impl Fn(&Seen, &str) -> Option<(u16, String)> + Send + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let own = base.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(32) {
            let Ok(mut stream) = stream else { continue };
            let Ok(request) = read_request(&stream) else {
                continue;
            };
            log.lock().unwrap().push(request.clone());
            match script(&request, &own) {
                Some((status, body)) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                None => std::thread::sleep(Duration::from_secs(5)),
            }
        }
    });
    (base, seen)
}

fn read_request(stream: &TcpStream) -> std::io::Result<Seen> {
    use std::io::Read;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok(Seen {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    })
}

// ---- Delta Lake tables written and read by the reference Python implementation ----

/// Runs a Python script with `LAKE` set to the table path; returns its stdout as JSON.
pub fn python(table: &Path, script: &str) -> Value {
    python_with_env(&[("LAKE", table.to_str().expect("a UTF-8 path"))], script)
}

/// Runs a Python script with `env` set; returns the JSON it prints.
pub fn python_with_env(env: &[(&str, &str)], script: &str) -> Value {
    // Leave without the interpreter's teardown: native threads of DuckDB and delta-rs
    // occasionally abort there ("terminate called without an active exception") after the
    // script has done its work.
    let script =
        format!("{script}\nimport os as _os, sys as _sys\n_sys.stdout.flush()\n_os._exit(0)\n");
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .envs(env.iter().copied())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or(Value::Null)
}

/// Writes a Delta table of 6000 events with the `deltalake` package: three commits (the last
/// after a checkpoint), so dbopt replays a checkpoint and the commits after it.
pub fn write_delta_table(ws: &TempWorkspace) -> PathBuf {
    let path = ws.root().join("lake").join("events");
    python(
        &path,
        &r#"
import os, datetime, random
import pyarrow as pa, deltalake as dl
random.seed(5)
EVENTS_BATCH
p = os.environ['LAKE']
dl.write_deltalake(p, batch(0, 2000))
dl.write_deltalake(p, batch(2000, 2000), mode='append')
dl.DeltaTable(p).create_checkpoint()
dl.write_deltalake(p, batch(4000, 2000), mode='append')
"#
        .replace("EVENTS_BATCH", &events_batch_py(true)),
    );
    path
}

/// A Python script printing what `deltalake` reads of the table at `LAKE`: version, row
/// count, a digest of the rows in id order, the live files, DuckDB's aggregates over the
/// table's dataset, and the newest commit's operation.
pub const DELTA_READ_BACK: &str = r#"
import os, json, hashlib
import deltalake as dl, duckdb
dt = dl.DeltaTable(os.environ['LAKE'])
t = dt.to_pyarrow_table().sort_by([('id', 'ascending')])
digest = hashlib.sha256(json.dumps(t.to_pylist(), default=str).encode()).hexdigest()
ds = dt.to_pyarrow_dataset()
duck = duckdb.sql("SELECT count(*), count(DISTINCT id), round(sum(amount), 2) FROM ds").fetchall()[0]
hist = dt.history(1)[0]
print(json.dumps({'version': dt.version(), 'rows': t.num_rows, 'digest': digest,
                  'files': sorted(os.path.relpath(u, os.environ['LAKE']) for u in dt.file_uris()),
                  'duck': list(duck),
                  'operation': hist.get('operation')}))
"#;

/// Builds a date-sorted layout of `events` and returns its id.
pub fn build_sorted_layout(ws: &TempWorkspace) -> String {
    build_layout(ws, "event_date")
}

/// Asserts `out` is a success (showing its stderr otherwise) and returns its stdout.
pub fn succeeded(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The rows `sql` returns from `events`, as JSON.
pub fn query_json(ws: &TempWorkspace, sql: &str) -> Value {
    let out = run(
        ws,
        &["query", "--table-name", "events", "--format", "json", sql],
    )
    .success();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON {e}: {out}"))
}

/// Builds a layout of `events` sorted by `sort_by` and returns its id.
pub fn build_layout(ws: &TempWorkspace, sort_by: &str) -> String {
    build_layout_with(ws, &["--sort-by", sort_by])
}

/// Builds the layout of `events` the spec flags ask for (`--partition-by`, `--sort-by`, ...)
/// and returns its id.
pub fn build_layout_with(ws: &TempWorkspace, spec: &[&str]) -> String {
    let layout = enqueue(ws, spec);
    run(ws, &["migration-worker", "--once"]).success();
    layout
}

/// Enqueues a migration of `events` to the layout `spec` describes (enqueue-migration's flags);
/// returns the target layout id.
pub fn enqueue(ws: &TempWorkspace, spec: &[&str]) -> String {
    let out = run(
        ws,
        &[&["enqueue-migration", "--table-name", "events"][..], spec].concat(),
    )
    .success();
    target_of(&out)
}

/// Registers the Delta table at `path` as `events` (`extra` flags appended); returns stdout.
pub fn register_delta(ws: &TempWorkspace, path: &Path, extra: &[&str]) -> String {
    let args = [
        "register-table",
        "--table-name",
        "events",
        "--delta",
        path.to_str().unwrap(),
    ];
    run(ws, &[&args[..], extra].concat()).success()
}

/// A Python function `batch(lo, n)` making `n` events (ids from `lo`) as a pyarrow table, with
/// an `amount` column when `amount`; it draws from `random`, which the script seeds.
pub fn events_batch_py(amount: bool) -> String {
    let amount = if amount {
        "\n        'amount': pa.array([random.randrange(10000) / 100 for _ in range(n)]),"
    } else {
        ""
    };
    format!(
        "def batch(lo, n):
    return pa.table({{
        'id': pa.array(range(lo, lo + n), pa.int64()),
        'customer_id': pa.array([random.randrange(300) for _ in range(n)], pa.int64()),
        'event_date': pa.array([datetime.date(2024, 1, 1) + datetime.timedelta(days=random.randrange(90)) for _ in range(n)]),
        'kind': pa.array([random.choice(['view', 'click', 'buy']) for _ in range(n)]),{amount}
    }})
"
    )
}

/// Writes an Iceberg table of 4000 events with pyiceberg (a SQL catalog on SQLite, a local
/// warehouse): two appends, then a declared sort order on `event_date`. With `partitioned`,
/// the table is partitioned by `kind` instead.
pub fn write_iceberg_table(ws: &TempWorkspace, partitioned: bool) -> std::path::PathBuf {
    let warehouse = ws.root().join("warehouse");
    std::fs::create_dir_all(&warehouse).unwrap();
    let out = python(&warehouse, &iceberg_table_script(partitioned));
    assert_eq!(out["rows"], 4000);
    let location = out["location"].as_str().unwrap();
    std::path::PathBuf::from(location.strip_prefix("file://").unwrap_or(location))
}

/// The pyiceberg script `write_iceberg_table` runs: `db.events` in the SQL catalog under
/// `LAKE` (4000 events in two appends), sorted by `event_date` or partitioned by `kind`; it
/// prints the snapshot, the rows and the table's location.
pub fn iceberg_table_script(partitioned: bool) -> String {
    r#"
import os, sys, datetime, random, json
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.transforms import IdentityTransform
random.seed(9)
w = os.environ['LAKE']
cat = SqlCatalog('default', uri=f'sqlite:///{w}/catalog.db', warehouse=f'file://{w}')
cat.create_namespace('db')
EVENTS_BATCH
first = batch(0, 2000)
if PARTITIONED:
    from pyiceberg.partitioning import PartitionSpec, PartitionField
    t = cat.create_table('db.events', schema=first.schema)
    with t.update_spec() as u:
        u.add_identity('kind')
else:
    t = cat.create_table('db.events', schema=first.schema)
t.append(first)
t.append(batch(2000, 2000))
if not PARTITIONED:
    with t.update_sort_order() as u:
        u.asc('event_date', IdentityTransform())
t = cat.load_table('db.events')
print(json.dumps({'snapshot': t.current_snapshot().snapshot_id, 'rows': t.scan().to_arrow().num_rows,
                  'location': t.location()}))
"#
    .replace("PARTITIONED", if partitioned { "True" } else { "False" })
    .replace("EVENTS_BATCH", &events_batch_py(false))
}

/// What pyiceberg reads of `db.events` in the SQL catalog under `LAKE`.
pub const ICEBERG_READ_BACK: &str = r#"
import os, json, hashlib
from pyiceberg.catalog.sql import SqlCatalog
w = os.environ['LAKE']
cat = SqlCatalog('default', uri=f'sqlite:///{w}/catalog.db', warehouse=f'file://{w}')
t = cat.load_table('db.events')
rows = sorted(t.scan().to_arrow().to_pylist(), key=lambda r: r['id'])
digest = hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()
files = sorted(os.path.basename(f.file.file_path) for f in t.scan().plan_files())
snap = t.current_snapshot()
order = [t.schema().find_column_name(f.source_id) + ':' + str(f.direction) for f in t.sort_order().fields]
pruned = [len(list(t.scan(row_filter=f).plan_files()))
          for f in ["event_date >= '2024-02-01'", "event_date >= '2025-01-01'", "customer_id > 1000"]]
print(json.dumps({'snapshot': snap.snapshot_id, 'operation': str(snap.summary.operation), 'rows': len(rows),
                  'digest': digest, 'files': files, 'order': order, 'history': len(t.history()),
                  'pruned': pruned}))
"#;

/// Registers `db.events` of the SQL catalog in `warehouse` as `events`; returns stdout.
pub fn register_iceberg_catalog(ws: &TempWorkspace, warehouse: &Path) -> String {
    let uri = format!("sqlite:///{}", warehouse.join("catalog.db").display());
    let args = [
        "register-table",
        "--table-name",
        "events",
        "--iceberg-catalog",
        &uri,
        "--iceberg-table",
        "db.events",
    ];
    run(ws, &args).success()
}

/// A moto S3 server on a free loopback port, killed when dropped, and the access key of the
/// one IAM user it knows (every other key is refused).
pub struct Moto {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    key: String,
    secret: String,
}

impl Moto {
    /// Starts the server, creates a user allowed everything, and returns with its key.
    pub fn start() -> Moto {
        let port = free_port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            // The first three requests (the IAM set-up below) need no signature; every
            // request after them is checked against IAM.
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m moto.server starts (pip install -r bench/requirements.txt)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "moto did not listen on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let endpoint = format!("http://127.0.0.1:{port}");
        let keys = python_with_env(
            &[("AWS_ENDPOINT_URL", endpoint.as_str())],
            r#"
import os, json, boto3
iam = boto3.client('iam', endpoint_url=os.environ['AWS_ENDPOINT_URL'], aws_access_key_id='setup',
                   aws_secret_access_key='setup', region_name='us-east-1')
iam.create_user(UserName='dbopt')
iam.put_user_policy(UserName='dbopt', PolicyName='all', PolicyDocument=json.dumps(
    {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': '*', 'Resource': '*'}]}))
k = iam.create_access_key(UserName='dbopt')['AccessKey']
print(json.dumps([k['AccessKeyId'], k['SecretAccessKey']]))
"#,
        );
        Moto {
            child,
            endpoint,
            key: keys[0].as_str().unwrap().to_string(),
            secret: keys[1].as_str().unwrap().to_string(),
        }
    }

    /// The environment dbopt (and boto3) read the store's settings from.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", self.key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// A workspace whose `DATA_DIR` is `s3://<bucket>/<prefix>` on this server (the bucket is
    /// created here), every command run with the store's environment.
    pub fn workspace(&self, bucket: &str, prefix: &str) -> TempWorkspace {
        self.python(&format!(
            "import os, boto3\nboto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL']).create_bucket(Bucket='{bucket}')\nprint('null')\n"
        ));
        let mut env = self.env();
        env.push(("DATA_DIR", format!("s3://{bucket}/{prefix}")));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        TempWorkspace::new().with_env(&env)
    }

    /// Runs a Python script with the store's environment; returns the JSON it prints.
    pub fn python(&self, script: &str) -> Value {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        python_with_env(&env, script)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Reads `dbopt serve`'s stdout up to its "serving SQL on ..." line; returns the SQL host and
/// port, and the HTTP address of /metrics (e.g. `http://127.0.0.1:41234`) when it printed one.
pub fn served_addresses(out: &mut impl BufRead) -> (String, u16, String) {
    let mut line = String::new();
    let mut http = String::new();
    while !line.contains("serving SQL on") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "serve printed no SQL address"
        );
        // "serving http://127.0.0.1:PORT/metrics and ..."
        if let Some(rest) = line.strip_prefix("serving http://") {
            http = format!("http://{}", rest.split('/').next().unwrap());
        }
    }
    // "serving SQL on postgresql://dbopt@127.0.0.1:PORT/dbopt (...)"
    let addr = line
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let (host, port) = addr.rsplit_once(':').unwrap();
    (host.to_string(), port.parse().unwrap(), http)
}

/// Runs workers with `env` (and a lease of 1 s, so an abandoned job is taken over) until the
/// job building `target` is done; each worker must exit 0.
pub fn finish_job(ws: &TempWorkspace, env: &[(&str, &str)], target: &str) {
    let started = std::time::Instant::now();
    loop {
        let (status, error) = job_status(ws, target);
        if status == "done" {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "job for {target} stuck in {status} ({error:?})"
        );
        let env = [env, &[("DBOPT_LEASE_SECONDS", "1")]].concat();
        let out = cmd(ws, &env, &["migration-worker", "--once"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
