//! Sources on S3-compatible object storage, served by a real S3 server on loopback: moto's
//! (`moto[server]` from the Python index, in bench/requirements.txt), started and stopped by
//! the test, with IAM authentication on, so wrong credentials are refused as S3 refuses them.
//! The objects are written by pyarrow and boto3; dbopt reads them through `object_store`.

mod common;

use common::{Moto, free_port};
use dbopt_testkit::TempWorkspace;

/// Writes the bucket `lake`: `events/` as hive-partitioned Parquet (three days, with a
/// `_SUCCESS` marker), `csv/` as two CSV files, `mixed/` as two Parquet files whose schemas
/// differ, and prints what pyarrow reads of `events/`.
const WRITE_LAKE: &str = r#"
import io, os, json, boto3, pyarrow as pa, pyarrow.parquet as pq
s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'])
s3.create_bucket(Bucket='lake')
def put(key, table=None, body=None):
    if table is not None:
        buf = io.BytesIO(); pq.write_table(table, buf); body = buf.getvalue()
    s3.put_object(Bucket='lake', Key=key, Body=body)
total = 0
for day in range(1, 4):
    n = 1000 * day
    ids = list(range(day * 10000, day * 10000 + n))
    put(f'events/day={day}/part-0.parquet', pa.table({'id': pa.array(ids, pa.int64()),
        'amount': pa.array([i % 97 / 4 for i in ids])}))
    total += n
put('events/_SUCCESS', body=b'')
put('csv/a.csv', body=b'id,name\n1,x\n2,y\n')
put('csv/b.csv', body=b'id,name\n3,z\n')
put('mixed/a.parquet', pa.table({'id': [1]}))
put('mixed/b.parquet', pa.table({'name': ['x']}))
amount = sum(i % 97 / 4 for day in range(1, 4) for i in range(day * 10000, day * 10000 + 1000 * day))
print(json.dumps({'rows': total, 'amount': round(amount, 2)}))
"#;

#[test]
fn a_dataset_is_loaded_from_an_s3_prefix_and_bad_settings_are_named() {
    let moto = Moto::start();
    let lake = moto.python(WRITE_LAKE);
    let ws = TempWorkspace::new();
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let load = |table: &str, source: &str, env: &[(&str, &str)]| {
        common::cmd(
            &ws,
            env,
            &[
                "load-dataset",
                "--table-name",
                table,
                "--source-path",
                source,
            ],
        )
        .output()
        .unwrap()
    };

    // Hive-partitioned Parquet under a prefix: every row, the partition column typed.
    let out = load("events", "s3://lake/events/", &env);
    common::succeeded(&out);
    let rows = common::query_json(
        &ws,
        "SELECT count(*) AS n, round(sum(amount), 2) AS s, max(day) AS d FROM events",
    );
    assert_eq!(rows[0]["n"], lake["rows"]);
    assert_eq!(rows[0]["s"], lake["amount"]);
    assert_eq!(rows[0]["d"], 3);

    // CSV objects: loaded, with the size comparison read from the objects' sizes.
    let stdout = common::succeeded(&load("names", "s3://lake/csv", &env));
    assert!(stdout.contains("csv 28 B -> parquet"), "{stdout}");

    exported_layouts_read_back(&moto, &ws, &env, lake["rows"].as_u64().unwrap());

    // What cannot be read is named, exit 2, and nothing is registered.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let wrong_key: Vec<(&str, &str)> = env
        .iter()
        .map(|&(k, v)| {
            (
                k,
                if k == "AWS_SECRET_ACCESS_KEY" {
                    "wrong"
                } else {
                    v
                },
            )
        })
        .collect();
    let unreachable: Vec<(&str, &str)> = env
        .iter()
        .map(|&(k, v)| {
            (
                k,
                if k == "AWS_ENDPOINT_URL" {
                    closed.as_str()
                } else {
                    v
                },
            )
        })
        .collect();
    for (source, env, expected) in [
        ("s3://nope/events/", &env, "the bucket does not exist"),
        ("s3://lake/events/", &wrong_key, "refused the credentials"),
        ("s3://lake/events/", &unreachable, "did not answer"),
        ("s3://lake/nothing/", &env, "is empty"),
        ("s3://lake/mixed/", &env, "schemas disagree"),
    ] {
        let out = load("bad", source, env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{source}: {stderr}");
        assert!(stderr.contains(expected), "{source}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
    let tables: Vec<String> = ws
        .catalog()
        .list_tables()
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(tables, ["events", "names", "roundtrip"]);
}

/// `export-layout` puts the active layout of `events` under `s3://lake/exported/` (files,
/// then the manifest): pyarrow reads the same rows from there, dbopt loads them back, a second
/// export overwrites the first, and a prefix holding other data is refused.
fn exported_layouts_read_back(moto: &Moto, ws: &TempWorkspace, env: &[(&str, &str)], rows: u64) {
    let export = |to: &str| {
        common::cmd(
            ws,
            env,
            &["export-layout", "--table-name", "events", "--to", to],
        )
        .output()
        .unwrap()
    };
    // A second export of the same layout overwrites the first.
    for _ in 0..2 {
        let stdout = common::succeeded(&export("s3://lake/exported/"));
        assert!(
            stdout.contains("exported layout initial to s3://lake/exported/ (1 files, ")
                && stdout.contains(" 6,000 rows; manifest written last"),
            "{stdout}"
        );
    }
    let read = moto.python(
        r#"
import os, json, boto3, pyarrow.parquet as pq, pyarrow.fs as pafs
fs = pafs.S3FileSystem(endpoint_override=os.environ['AWS_ENDPOINT_URL'], scheme='http',
    access_key=os.environ['AWS_ACCESS_KEY_ID'], secret_key=os.environ['AWS_SECRET_ACCESS_KEY'],
    region='us-east-1')
t = pq.read_table('lake/exported/', filesystem=fs)
s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'])
manifest = json.loads(s3.get_object(Bucket='lake', Key='exported/_dbopt_layout.json')['Body'].read())
print(json.dumps({'rows': t.num_rows, 'manifest_rows': manifest['row_count']}))
"#,
    );
    assert_eq!(read["rows"], rows);
    assert_eq!(read["manifest_rows"], rows);
    let out = common::cmd(
        ws,
        env,
        &[
            "load-dataset",
            "--table-name",
            "roundtrip",
            "--source-path",
            "s3://lake/exported/",
        ],
    )
    .output()
    .unwrap();
    common::succeeded(&out);
    let out = export("s3://lake/csv/");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds other objects (a.csv)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
