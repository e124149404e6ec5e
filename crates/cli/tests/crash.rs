//! Crash and conflict tests by phase: a real `dbopt` process dies (SIGABRT, no cleanup) at each
//! named fail point of a migration, `gc`, a table publish, `--replace`, promote and rollback,
//! or gets an injected ENOSPC/EIO; then a fresh process must find the table answering exactly
//! the rows it answered before (or the new layout whole and verified), and `gc` must leave no
//! staging and no stray layout directory. Also the conflicts: an activation during a running
//! job, `--replace` under queued jobs, two workers racing, a worker paused past its lease.
//!
//! The fail points exist only in the binary built for tests (feature `failpoints` of
//! dbopt-core; see crates/core/src/failpoint.rs).

mod common;
use common::{
    active_layout, checksum, cmd, gc_now, generate_events, jobs, layout_dirs, layouts,
    logged_queries, manifest_digest, run, staging_entries, target_of,
};
use dbopt_testkit::TempWorkspace;
use std::os::unix::process::ExitStatusExt;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `dbopt args` with the fail point `point` armed and asserts the process died there.
fn dies_at(ws: &TempWorkspace, point: &str, args: &[&str]) {
    let out = cmd(
        ws,
        &[("DBOPT_FAILPOINT", point), ("DBOPT_LEASE_SECONDS", "1")],
        args,
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "dbopt {args:?} should die at {point}: status {:?}\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains(&format!(
            "fail point {}",
            point.split([':', '@']).next().unwrap()
        )),
        "{stderr}"
    );
}

/// Runs `dbopt args` with `DBOPT_FAILPOINT=point` (an injected error) and returns the output.
fn with_fault(ws: &TempWorkspace, point: &str, args: &[&str]) -> Output {
    cmd(ws, &[("DBOPT_FAILPOINT", point)], args)
        .output()
        .unwrap()
}

/// Catalog layouts of `events` with the given status.
fn layouts_with(ws: &TempWorkspace, status: &str) -> Vec<String> {
    let mut ids: Vec<String> = layouts(ws)
        .into_iter()
        .filter(|l| l.status.as_str() == status)
        .map(|l| l.layout_id.to_string())
        .collect();
    ids.sort();
    ids
}

/// A small events table of 4 files (20k rows), the checksum of its rows.
fn table(ws: &TempWorkspace) -> String {
    generate_events(ws, "20000", "11", "1000", &["--rows-per-file", "5000"]);
    checksum(ws, None)
}

/// Queues a two-unit incremental sort on `col` that activates when published; its target id.
fn enqueue(ws: &TempWorkspace, col: &str) -> String {
    let out = run(
        ws,
        &[
            "enqueue-migration",
            "--activate",
            "--table-name",
            "events",
            "--mode",
            "incremental",
            "--batch-files",
            "2",
            "--sort-by",
            col,
            "--rows-per-file",
            "4000",
        ],
    )
    .success();
    target_of(&out)
}

/// Runs workers (lease of 1 s, so an abandoned job is taken over) until `target`'s job is done.
fn finish_job(ws: &TempWorkspace, target: &str) {
    common::finish_job(ws, &[], target);
}

/// A lease that outlives any test, in milliseconds.
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Sleeps until the job building `target` is due again after a failed attempt's backoff.
fn wait_for_retry(ws: &TempWorkspace, target: &str) {
    let due = common::job(ws, target).retry_after_ms.unwrap_or(0);
    let wait = due.saturating_sub(ws.catalog().now_ms());
    if wait > 0 {
        std::thread::sleep(Duration::from_millis(wait as u64 + 50));
    }
}

/// The status of the job building `target`.
fn job_status(ws: &TempWorkspace, target: &str) -> String {
    common::job_status(ws, target).0
}

/// Kills a migration worker at `point`, checks the table still answers its rows, restarts
/// workers until the job is published, and checks the result and that gc leaves nothing.
fn migration_crash(point: &str) {
    let ws = TempWorkspace::new();
    let before = table(&ws);
    let digest = manifest_digest(&ws, "initial");
    let target = enqueue(&ws, "event_ts");
    dies_at(&ws, point, &["migration-worker"]);
    let active = active_layout(&ws);
    assert!(active == "initial" || active == target, "active {active}");
    assert_eq!(checksum(&ws, None), before, "after dying at {point}");
    finish_job(&ws, &target);
    assert_eq!(active_layout(&ws), target);
    assert_eq!(manifest_digest(&ws, &target), digest);
    assert_eq!(checksum(&ws, Some(&target)), before);
    gc_now(&ws, "0");
    assert_eq!(staging_entries(&ws), Vec::<String>::new(), "{point}");
    assert_eq!(
        layout_dirs(&ws),
        vec![format!("layout_{target}"), "layout_initial".to_string()],
        "{point}"
    );
}

#[test]
fn crash_after_a_unit_is_written() {
    migration_crash("migrate.unit_written");
}

#[test]
fn crash_after_the_second_unit_is_written() {
    migration_crash("migrate.unit_written@2");
}

#[test]
fn crash_before_a_file_is_fsynced() {
    migration_crash("write.fsync@2");
}

#[test]
fn crash_after_a_unit_is_recorded() {
    migration_crash("migrate.unit_recorded");
}

#[test]
fn crash_after_verify() {
    migration_crash("migrate.verified");
}

#[test]
fn crash_between_rename_and_commit() {
    migration_crash("migrate.renamed");
}

#[test]
fn crash_after_the_publish_commit() {
    migration_crash("migrate.committed");
}

/// A table with two built layouts: `old` (ready, inactive) and `new` (active).
fn two_layouts(ws: &TempWorkspace) -> (String, String, String) {
    let before = table(ws);
    let old = enqueue(ws, "event_ts");
    finish_job(ws, &old);
    let new = enqueue(ws, "user_id");
    finish_job(ws, &new);
    assert_eq!(active_layout(ws), new);
    (before, old, new)
}

fn gc_crash(point: &str) {
    let ws = TempWorkspace::new();
    let (before, old, new) = two_layouts(&ws);
    // A stray staging entry, so gc has something to delete before the layouts.
    std::fs::create_dir_all(ws.data_dir().join("events/_staging/job-999")).unwrap();
    dies_at(
        &ws,
        point,
        &[
            "gc",
            "--table-name",
            "events",
            "--keep",
            "0",
            "--grace",
            "0s",
        ],
    );
    assert_eq!(active_layout(&ws), new);
    assert_eq!(checksum(&ws, None), before, "after dying at {point}");
    gc_now(&ws, "0");
    assert_eq!(checksum(&ws, None), before);
    assert_eq!(staging_entries(&ws), Vec::<String>::new());
    let mut expected = vec!["layout_initial".to_string(), format!("layout_{new}")];
    expected.sort();
    assert_eq!(layout_dirs(&ws), expected);
    assert_eq!(layouts_with(&ws, "retired"), vec![old]);
}

#[test]
fn crash_in_gc_after_retiring() {
    gc_crash("gc.retired");
}

#[test]
fn crash_in_gc_after_the_first_delete() {
    gc_crash("gc.removed_one");
}

/// A first generate that dies at `point` of its second publish (`customers` is published
/// first, then `events`) leaves no events table, or the whole table.
fn first_publish_crash(point: &str, committed: bool) {
    let ws = TempWorkspace::new();
    let args = [
        "generate",
        "--table-name",
        "events",
        "--num-rows",
        "20000",
        "--seed",
        "11",
        "--rows-per-file",
        "5000",
    ];
    dies_at(&ws, point, &args);
    let listed = run(&ws, &["tables"]).success();
    assert_eq!(listed.contains("events"), committed, "{listed}");
    if !committed {
        run(&ws, &[&args[..], &["--replace"]].concat()).success();
    }
    let reference = TempWorkspace::new();
    assert_eq!(checksum(&ws, None), table(&reference));
    run(&ws, &["gc", "--table-name", "events", "--grace", "0s"]).success();
    assert_eq!(staging_entries(&ws), Vec::<String>::new());
    assert_eq!(layout_dirs(&ws), vec!["layout_initial".to_string()]);
}

#[test]
fn crash_in_generate_after_staging() {
    first_publish_crash("publish.staged@2", false);
}

#[test]
fn crash_in_generate_between_rename_and_commit() {
    first_publish_crash("publish.renamed@2", false);
}

#[test]
fn crash_in_generate_after_commit() {
    first_publish_crash("publish.committed@2", true);
}

/// `generate --replace` (new rows, seed 12) dies at `point` of its second publish (`events`,
/// after `customers`) over a table with an active sorted
/// layout: before the commit the old rows and layouts come back whole; after it the new rows
/// are served and the old layouts are gone.
fn replace_crash(point: &str, committed: bool) {
    let ws = TempWorkspace::new();
    let before = table(&ws);
    let sorted = enqueue(&ws, "event_ts");
    finish_job(&ws, &sorted);
    let replace = [
        "generate",
        "--replace",
        "--table-name",
        "events",
        "--num-rows",
        "20000",
        "--seed",
        "12",
        "--rows-per-file",
        "5000",
    ];
    dies_at(&ws, point, &replace);
    if committed {
        assert_ne!(checksum(&ws, None), before);
        assert_eq!(active_layout(&ws), "initial");
        assert_eq!(layout_dirs(&ws), vec!["layout_initial".to_string()]);
    } else {
        assert_eq!(checksum(&ws, None), before, "after dying at {point}");
        assert_eq!(active_layout(&ws), sorted);
        assert_eq!(checksum(&ws, Some("initial")), before);
        assert_eq!(
            layout_dirs(&ws),
            vec![format!("layout_{sorted}"), "layout_initial".to_string()]
        );
        run(&ws, &replace).success();
    }
    let after = checksum(&ws, None);
    assert_ne!(after, before);
    run(&ws, &["gc", "--table-name", "events", "--grace", "0s"]).success();
    assert_eq!(staging_entries(&ws), Vec::<String>::new());
    // The replaced table forgets the old jobs: the same spec is built again from the new rows.
    let again = enqueue(&ws, "event_ts");
    assert_eq!(again, sorted, "same source id and spec, same layout id");
    finish_job(&ws, &again);
    assert_eq!(checksum(&ws, Some(&again)), after);
}

#[test]
fn crash_in_replace_after_staging() {
    replace_crash("publish.staged@2", false);
}

#[test]
fn crash_in_replace_after_moving_the_old_layouts_aside() {
    replace_crash("publish.moved_aside@2", false);
}

#[test]
fn crash_in_replace_between_rename_and_commit() {
    replace_crash("publish.renamed@2", false);
}

#[test]
fn crash_in_replace_after_commit() {
    replace_crash("publish.committed@2", true);
}

#[test]
fn crash_in_promote_and_rollback() {
    let ws = TempWorkspace::new();
    let (before, old, new) = two_layouts(&ws);
    dies_at(
        &ws,
        "serving.before_swap",
        &["promote", "--table-name", "events", "--layout", &old],
    );
    assert_eq!(active_layout(&ws), new);
    dies_at(
        &ws,
        "serving.swapped",
        &["promote", "--table-name", "events", "--layout", &old],
    );
    assert_eq!(active_layout(&ws), old);
    assert_eq!(checksum(&ws, None), before);
    dies_at(
        &ws,
        "serving.before_swap",
        &["rollback", "--table-name", "events"],
    );
    assert_eq!(active_layout(&ws), old);
    dies_at(
        &ws,
        "serving.swapped",
        &["rollback", "--table-name", "events"],
    );
    assert_eq!(active_layout(&ws), new);
    assert_eq!(checksum(&ws, None), before);
}

/// A promote killed before its Delta commit leaves the table at its version; killed after
/// the commit but before the catalog's swap, promoting again finds the commit and only swaps.
#[test]
fn crash_in_a_delta_promote() {
    let ws = TempWorkspace::new();
    let delta = common::write_delta_table(&ws);
    let read = || common::python(&delta, common::DELTA_READ_BACK);
    common::register_delta(&ws, &delta, &[]);
    let layout = common::build_sorted_layout(&ws);
    let before = read();
    let promote = ["promote", "--table-name", "events", "--layout", &layout];
    for point in ["lake.before_commit", "lake.planned"] {
        dies_at(&ws, point, &promote);
        assert_eq!(
            read(),
            before,
            "no commit at {point}: the table reads as before"
        );
        assert_eq!(active_layout(&ws), "initial");
    }
    dies_at(&ws, "lake.committed", &promote);
    let committed = read();
    assert_eq!(committed["version"], 3);
    assert_eq!(committed["digest"], before["digest"]);
    assert_eq!(
        active_layout(&ws),
        "initial",
        "the catalog did not swap yet"
    );
    let out = run(&ws, &promote).success();
    assert!(
        out.contains("already committed: Delta log version 3"),
        "{out}"
    );
    assert_eq!(active_layout(&ws), layout);
    assert_eq!(read(), committed, "no second commit");
}

/// The same for an Iceberg table: killed after the catalog's swap, promoting again finds the
/// snapshot current and only swaps dbopt's catalog.
#[test]
fn crash_in_an_iceberg_promote() {
    let ws = TempWorkspace::new();
    common::write_iceberg_table(&ws, false);
    let warehouse = ws.root().join("warehouse");
    let read = || common::python(&warehouse, common::ICEBERG_READ_BACK);
    common::register_iceberg_catalog(&ws, &warehouse);
    let layout = common::build_layout(&ws, "customer_id");
    let before = read();
    let promote = ["promote", "--table-name", "events", "--layout", &layout];
    dies_at(&ws, "lake.before_commit", &promote);
    assert_eq!(
        read()["snapshot"],
        before["snapshot"],
        "the catalog still points at the old metadata"
    );
    dies_at(&ws, "lake.committed", &promote);
    let committed = read();
    assert_ne!(committed["snapshot"], before["snapshot"]);
    assert_eq!(committed["digest"], before["digest"]);
    assert_eq!(
        active_layout(&ws),
        "initial",
        "dbopt's catalog did not swap yet"
    );
    let out = run(&ws, &promote).success();
    assert!(out.contains("already committed: Iceberg snapshot"), "{out}");
    assert_eq!(active_layout(&ws), layout);
    assert_eq!(
        read()["snapshot"],
        committed["snapshot"],
        "no second snapshot"
    );
}

/// A writer killed while replacing an experiment run leaves the old run whole: the store
/// answers the same rows, and the next write clears the orphaned staging and replaces it.
#[test]
fn a_killed_experiment_write_keeps_the_old_run() {
    let ws = TempWorkspace::new();
    let base = ws.root().join("store");
    let b = base.to_str().unwrap();
    let csv = |name: &str, n: usize| {
        let path = ws.root().join(name);
        let rows: String = (0..n).map(|i| format!("{i},{}\n", i * 10)).collect();
        std::fs::write(&path, format!("query,latency_ms\n{rows}")).unwrap();
        path.display().to_string()
    };
    let (old, new) = (csv("old.csv", 7), csv("new.csv", 3));
    let write = |events: &str| -> Vec<String> {
        let fixed = [
            "exp",
            "write",
            b,
            "--params",
            r#"{"algo": "ucb1"}"#,
            "--seed",
            "1",
            "--events",
        ];
        fixed
            .iter()
            .copied()
            .chain([events])
            .map(String::from)
            .collect()
    };
    let args = write(&old);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&ws, &args).success();
    let count = || {
        let out = run(&ws, &["exp", "query", b, "events", "--format", "json"]).success();
        serde_json::from_str::<Vec<serde_json::Value>>(out.trim())
            .unwrap()
            .len()
    };
    assert_eq!(count(), 7);
    let args = write(&new);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    dies_at(&ws, "exp.staged", &args);
    assert_eq!(count(), 7, "the old run is intact");
    assert!(
        std::fs::read_dir(base.join("_staging")).unwrap().count() > 0,
        "the killed writer left its staged file"
    );
    run(&ws, &args).success();
    assert_eq!(count(), 3, "the rerun replaced it");
    assert!(
        std::fs::read_dir(base.join("_staging")).map_or(true, |d| d.count() == 0),
        "orphans cleared"
    );
}

/// An export to object storage killed after its files and before its manifest leaves files
/// no reader takes for a layout (no manifest); running it again completes it.
#[test]
fn crash_in_an_export_leaves_no_manifest_and_a_rerun_completes_it() {
    let moto = common::Moto::start();
    let ws = common::generated();
    moto.python(
        "import os, boto3\nboto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL']).create_bucket(Bucket='lake')\n",
    );
    let env = moto.env();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = [
        "export-layout",
        "--table-name",
        "events",
        "--to",
        "s3://lake/t/",
    ];
    env.push(("DBOPT_FAILPOINT", "export.files_uploaded"));
    let out = cmd(&ws, &env, &args).output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
    let keys = || {
        moto.python(
            r#"
import os, json, boto3
s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'])
print(json.dumps(sorted(o['Key'] for o in s3.list_objects_v2(Bucket='lake', Prefix='t/').get('Contents', []))))
"#,
        )
    };
    let after_crash = keys();
    assert!(
        !after_crash.as_array().unwrap().is_empty()
            && !after_crash
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == "t/_dbopt_layout.json"),
        "files, no manifest: {after_crash}"
    );
    env.pop();
    let out = cmd(&ws, &env, &args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let complete = keys();
    let mut expected = after_crash.as_array().unwrap().clone();
    expected.push("t/_dbopt_layout.json".into());
    expected.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    assert_eq!(complete.as_array().unwrap(), &expected);
}

/// Every file under `dir`, at any depth, as paths.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    out
}

/// The layout directories (`layout_*` prefixes) of `table` in the bucket, sorted.
fn remote_layout_dirs(moto: &common::Moto, table: &str) -> Vec<String> {
    let listed = moto.python(&format!(
        r#"
import os, json, boto3
s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'])
keys = [o['Key'] for o in s3.list_objects_v2(Bucket='lake', Prefix='ws/{table}/').get('Contents', [])]
print(json.dumps(sorted({{k.split('/')[2] for k in keys}})))
"#
    ));
    serde_json::from_value(listed).unwrap()
}

/// With DATA_DIR on object storage, a worker killed after its upload and before the catalog
/// commit leaves objects no query reads: the table answers its old rows, a restarted worker
/// clears them, uploads again and publishes, and gc leaves only the two layouts.
#[test]
fn crash_between_the_upload_and_the_commit_on_object_storage() {
    let moto = common::Moto::start();
    let ws = moto.workspace("lake", "ws/");
    let before = table(&ws);
    let target = enqueue(&ws, "event_ts");
    dies_at(&ws, "migrate.uploaded", &["migration-worker"]);
    assert_eq!(active_layout(&ws), "initial");
    assert_eq!(
        checksum(&ws, None),
        before,
        "after dying at migrate.uploaded"
    );
    assert_eq!(
        remote_layout_dirs(&moto, "events"),
        vec![format!("layout_{target}"), "layout_initial".to_string()],
        "uploaded, not committed"
    );
    finish_job(&ws, &target);
    assert_eq!(active_layout(&ws), target);
    assert_eq!(checksum(&ws, Some(&target)), before);
    gc_now(&ws, "0");
    assert_eq!(
        remote_layout_dirs(&moto, "events"),
        vec![format!("layout_{target}"), "layout_initial".to_string()]
    );
    assert!(!ws.data_dir().exists(), "no layout on local disk");
}

/// With DATA_DIR on object storage, each unit is uploaded to the layout's prefix before it is
/// recorded, and leaves local disk. A worker killed after the second unit's upload leaves the
/// first unit only in the bucket; a restarted worker deletes the unrecorded unit's objects (here
/// also one an earlier attempt might have written and this one would not), rewrites that unit,
/// verifies what the bucket holds and publishes exactly the manifest's files.
#[test]
fn crash_after_a_unit_is_uploaded_and_before_it_is_recorded_on_object_storage() {
    let moto = common::Moto::start();
    let ws = moto.workspace("lake", "ws/");
    let before = table(&ws);
    let target = enqueue(&ws, "event_ts");
    dies_at(&ws, "migrate.unit_uploaded@2", &["migration-worker"]);
    assert_eq!(checksum(&ws, None), before, "after dying at unit_uploaded");
    assert_eq!(common::job(&ws, &target).units_done, 1);
    let local_units: Vec<String> = files_under(ws.root())
        .into_iter()
        .filter(|f| f.contains("part-u0000"))
        .collect();
    assert!(
        local_units.iter().all(|f| f.contains("part-u00001-")),
        "the recorded unit left local disk: {local_units:?}"
    );
    let prefix = format!("ws/events/layout_{target}/");
    let stray = format!("{prefix}part-u00001-99999.parquet");
    moto.python(&format!(
        "import os, boto3\nboto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL']).put_object(Bucket='lake', Key='{stray}', Body=b'not parquet')\nprint('null')\n"
    ));
    finish_job(&ws, &target);
    assert_eq!(active_layout(&ws), target);
    assert_eq!(checksum(&ws, Some(&target)), before);
    let listed = moto.python(&format!(
        r#"
import os, json, boto3
s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'])
keys = [o['Key'] for o in s3.list_objects_v2(Bucket='lake', Prefix='{prefix}').get('Contents', [])]
manifest = json.loads(s3.get_object(Bucket='lake', Key='{prefix}_dbopt_layout.json')['Body'].read())
print(json.dumps([sorted(k[len('{prefix}'):] for k in keys if k.endswith('.parquet')),
                  sorted(f['path'] for f in manifest['files']),
                  sorted(k[len('{prefix}'):] for k in keys if k.endswith('.digest'))]))
"#
    ));
    assert_eq!(
        listed[0], listed[1],
        "the bucket holds exactly the manifest's files"
    );
    assert!(
        !listed[0].to_string().contains("99999"),
        "the stray object was deleted: {listed}"
    );
}

/// On object storage verification adds up the digests each unit left beside its files (the
/// unit's files were read back before they were uploaded) instead of reading the layout from
/// the bucket again: a digest that does not belong to its unit fails the job, and nothing is
/// published.
#[test]
fn a_unit_digest_that_does_not_match_fails_verification_on_object_storage() {
    let moto = common::Moto::start();
    let ws = moto.workspace("lake", "ws/");
    let before = table(&ws);
    let target = enqueue(&ws, "event_ts");
    dies_at(&ws, "migrate.unit_recorded@1", &["migration-worker"]);
    let digest = format!("ws/events/layout_{target}/_dbopt_unit_00000.digest");
    moto.python(&format!(
        r#"
import os, boto3
s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'])
rows, _ = s3.get_object(Bucket='lake', Key='{digest}')['Body'].read().decode().split(':')
s3.put_object(Bucket='lake', Key='{digest}', Body=(rows + ':' + '0' * 31 + '1').encode())
print('null')
"#
    ));
    std::thread::sleep(Duration::from_millis(1200));
    let out = cmd(
        &ws,
        &[("DBOPT_LEASE_SECONDS", "1")],
        &["migration-worker", "--once"],
    )
    .output()
    .unwrap();
    let (status, error) = common::job_status(&ws, &target);
    assert_eq!(
        status,
        "failed",
        "{error:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        error.as_deref().is_some_and(|e| e.contains("digest")),
        "{error:?}"
    );
    assert_eq!(active_layout(&ws), "initial");
    assert_eq!(checksum(&ws, None), before);
}

/// A load killed after its upload and before its commit leaves no table; loading again clears
/// what it uploaded and publishes the table whole.
#[test]
fn crash_after_a_load_is_uploaded_leaves_no_table_and_a_rerun_loads_it() {
    let moto = common::Moto::start();
    let ws = moto.workspace("lake", "ws/");
    let args = [
        "generate",
        "--table-name",
        "events",
        "--num-rows",
        "20000",
        "--seed",
        "11",
        "--row-group-rows",
        "1000",
        "--rows-per-file",
        "5000",
    ];
    dies_at(&ws, "publish.uploaded", &args);
    assert!(ws.catalog().list_tables().unwrap().is_empty(), "no table");
    // `generate` writes its customers table first.
    assert_eq!(
        remote_layout_dirs(&moto, "customers"),
        vec!["layout_initial".to_string()],
        "uploaded, not committed"
    );
    let query = run(&ws, &["query", "--table-name", "events", "SELECT 1"]);
    assert_eq!(query.output.status.code(), Some(2), "{}", query.stderr());
    run(&ws, &args).success();
    let local = TempWorkspace::new();
    assert_eq!(
        checksum(&ws, None),
        table(&local),
        "the same rows as a local load"
    );
}

/// Every fail point listed in the code has a test in this file.
#[test]
fn every_fail_point_is_exercised() {
    let source = include_str!("crash.rs");
    for (name, _) in dbopt_core::failpoint::FAIL_POINTS {
        assert!(
            source.matches(&format!("\"{name}")).count() >= 1,
            "fail point {name} has no crash test"
        );
    }
}

// ---- Injected IO errors (disk full, a failing device) ----

#[test]
fn a_full_disk_during_a_migration_fails_the_attempt_and_keeps_the_table() {
    let ws = TempWorkspace::new();
    let before = table(&ws);
    let target = enqueue(&ws, "event_ts");
    for fault in ["write.file:enospc", "write.fsync:eio@3"] {
        let out = with_fault(&ws, fault, &["migration-worker"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "a retryable failure is not the worker's failure: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (status, error) = common::job_status(&ws, &target);
        let error = error.unwrap_or_default();
        assert_eq!(status, "queued", "{fault}: retried later");
        let expected = if fault.contains("enospc") {
            "No space left on device"
        } else {
            "Input/output error"
        };
        assert!(error.contains(expected), "{fault}: {error}");
        assert_eq!(active_layout(&ws), "initial");
        assert_eq!(checksum(&ws, None), before);
        // The retry waits out its backoff (2 s after the first attempt, 4 s after the second).
        wait_for_retry(&ws, &target);
    }
    finish_job(&ws, &target);
    assert_eq!(checksum(&ws, None), before);
    gc_now(&ws, "0");
    assert_eq!(staging_entries(&ws), Vec::<String>::new());
}

#[test]
fn a_full_disk_during_generate_and_load_leaves_no_table_and_exits_1() {
    let ws = TempWorkspace::new();
    for fault in ["write.file:enospc", "write.fsync:eio"] {
        let out = with_fault(
            &ws,
            fault,
            &["generate", "--table-name", "events", "--num-rows", "5000"],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{fault}: {stderr}");
        let last = stderr.trim().lines().last().unwrap_or_default();
        assert!(last.starts_with("error: "), "{stderr}");
        assert!(!run(&ws, &["tables"]).success().contains("events"));
        assert_eq!(staging_entries(&ws), Vec::<String>::new(), "{fault}");
    }
    // The same for a load over a table that exists: the old table stays whole.
    let before = table(&ws);
    let csv = ws.root().join("rows.csv");
    std::fs::write(&csv, "a,b\n1,x\n2,y\n").unwrap();
    let out = with_fault(
        &ws,
        "write.file:enospc",
        &[
            "load-dataset",
            "--replace",
            "--table-name",
            "events",
            "--source-path",
            csv.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(checksum(&ws, None), before);
}

// ---- Conflicts ----

#[test]
fn a_job_planned_before_an_activation_publishes_a_candidate() {
    let ws = TempWorkspace::new();
    let (before, old, new) = two_layouts(&ws);
    // A job planned from `new`, killed after verify; meanwhile `old` is activated.
    let target = enqueue(&ws, "customer_id");
    dies_at(&ws, "migrate.verified", &["migration-worker"]);
    run(
        &ws,
        &[
            "activate-layout",
            "--table-name",
            "events",
            "--layout",
            &old,
        ],
    )
    .success();
    finish_job(&ws, &target);
    assert_eq!(active_layout(&ws), old, "the newer activation stands");
    assert!(layouts_with(&ws, "ready").contains(&target));
    assert_eq!(checksum(&ws, Some(&target)), before);
    assert_eq!(checksum(&ws, Some(&new)), before);
}

#[test]
fn replace_drops_queued_and_running_jobs() {
    let ws = TempWorkspace::new();
    let before = table(&ws);
    // A job left running by a dead worker (claimed under a day's lease), and a queued one.
    let running = enqueue(&ws, "user_id");
    let claimed = ws.catalog().claim_job("gone", DAY_MS, None).unwrap();
    assert_eq!(claimed.unwrap().0.target_layout.as_str(), running);
    let queued = enqueue(&ws, "event_ts");
    run(
        &ws,
        &[
            "generate",
            "--replace",
            "--table-name",
            "events",
            "--num-rows",
            "8000",
            "--seed",
            "5",
        ],
    )
    .success();
    assert_eq!(
        jobs(&ws).len(),
        0,
        "jobs planned from the old rows are gone"
    );
    let again = enqueue(&ws, "event_ts");
    assert_eq!(again, queued);
    finish_job(&ws, &again);
    let after = checksum(&ws, None);
    assert_ne!(after, before);
    assert!(after.contains("8000"), "{after}");
}

#[test]
fn two_workers_racing_for_one_job_publish_it_once() {
    let ws = TempWorkspace::new();
    let before = table(&ws);
    let target = enqueue(&ws, "event_ts");
    let spawn = || {
        cmd(&ws, &[], &["migration-worker"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(job_status(&ws, &target), "done");
    assert_eq!(
        common::job(&ws, &target).attempt,
        1,
        "only one worker claimed the job"
    );
    assert_eq!(active_layout(&ws), target);
    assert_eq!(checksum(&ws, None), before);
}

#[test]
fn a_worker_paused_past_its_lease_does_not_publish() {
    let ws = TempWorkspace::new();
    let before = table(&ws);
    let target = enqueue(&ws, "event_ts");
    // Worker A stalls 4 s after verify, with a 1 s lease and no heartbeat while stalled.
    let a = cmd(
        &ws,
        &[
            ("DBOPT_FAILPOINT", "migrate.verified:sleep4000"),
            ("DBOPT_LEASE_SECONDS", "1"),
        ],
        &["migration-worker"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Wait for A to stall, then let B take over once the lease expired.
    let started = Instant::now();
    while !staging_has_manifest(&ws) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "A never verified"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    finish_job(&ws, &target);
    let out = a.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("lease"),
        "A must notice it lost the lease: {stderr}"
    );
    assert_eq!(common::job(&ws, &target).attempt, 2);
    assert_eq!(active_layout(&ws), target);
    assert_eq!(checksum(&ws, None), before);
    gc_now(&ws, "0");
    assert_eq!(staging_entries(&ws), Vec::<String>::new());
    assert_eq!(
        layout_dirs(&ws),
        vec![format!("layout_{target}"), "layout_initial".to_string()]
    );
}

/// True once some job's staging holds a verified manifest.
fn staging_has_manifest(ws: &TempWorkspace) -> bool {
    staging_entries(ws).iter().any(|e| {
        ws.data_dir()
            .join("events/_staging")
            .join(e)
            .join("data/_dbopt_layout.json")
            .exists()
    })
}

#[test]
fn migration_worker_once_drains_what_is_queued() {
    let ws = TempWorkspace::new();
    table(&ws);
    let a = enqueue(&ws, "event_ts");
    let b = enqueue(&ws, "user_id");
    run(&ws, &["migration-worker", "--once"]).success();
    assert_eq!(job_status(&ws, &a), "done");
    assert_eq!(job_status(&ws, &b), "done");
    let c = enqueue(&ws, "session_id");
    let d = enqueue(&ws, "customer_id");
    run(&ws, &["migration-worker", "--max-jobs", "1"]).success();
    assert_eq!(job_status(&ws, &c), "done");
    assert_eq!(job_status(&ws, &d), "queued");
}

#[test]
fn file_shape_enters_the_layout_id() {
    let ws = TempWorkspace::new();
    table(&ws);
    let plan = |extra: &[&str]| {
        let base = [
            "enqueue-migration",
            "--dry-run",
            "--table-name",
            "events",
            "--sort-by",
            "event_ts",
        ];
        target_of(&run(&ws, &[&base[..], extra].concat()).success())
    };
    let ids = [
        plan(&[]),
        plan(&["--rows-per-file", "4000"]),
        plan(&["--mode", "incremental"]),
        plan(&["--mode", "incremental", "--batch-files", "2"]),
    ];
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            assert_ne!(a, b, "{ids:?}");
        }
    }
    assert_eq!(plan(&[]), ids[0], "the same request, the same id");
}

#[test]
fn routing_a_worker_and_gc_write_the_catalog_at_once() {
    let ws = TempWorkspace::new();
    let (before, _, _) = two_layouts(&ws);
    let target = enqueue(&ws, "session_id");
    let logged_before = logged_queries(&ws).len();
    let spawn = |args: &[&str]| {
        cmd(&ws, &[], args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children = [
        spawn(&[
            "run-workload",
            "--num-queries",
            "40",
            "--seed",
            "1",
            "--explore",
        ]),
        spawn(&[
            "run-workload",
            "--num-queries",
            "40",
            "--seed",
            "2",
            "--explore",
        ]),
        spawn(&["migration-worker"]),
        spawn(&["gc", "--table-name", "events", "--keep", "1"]),
    ];
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let logged = logged_queries(&ws);
    assert_eq!(
        logged.len() - logged_before,
        80,
        "every routed query is logged once"
    );
    let errors = logged.iter().filter(|q| q.entry.error.is_some()).count();
    assert_eq!(errors, 0);
    assert_eq!(job_status(&ws, &target), "done");
    assert_eq!(checksum(&ws, None), before);
}

// ---- Exit codes: 2 for input the user can fix, 1 for the machine ----

/// Asserts `out` exited `code` with a one-line `error:` that contains `needle`.
fn exits(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let last = stderr.trim().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(needle),
        "{stderr}"
    );
}

#[test]
fn a_bad_name_is_the_users_error() {
    let ws = TempWorkspace::new();
    exits(
        &cmd(&ws, &[], &["query", "--table-name", "no such", "SELECT 1"])
            .output()
            .unwrap(),
        2,
        "no such",
    );
}

#[test]
fn a_corrupt_catalog_and_an_unusable_data_dir_are_the_machines() {
    let ws = TempWorkspace::new();
    std::fs::write(ws.metadata_db(), vec![b'x'; 8192]).unwrap();
    exits(&cmd(&ws, &[], &["tables"]).output().unwrap(), 1, "");
    let file = ws.root().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = cmd(
        &ws,
        &[("DATA_DIR", file.join("data").to_str().unwrap())],
        &["tables"],
    )
    .env("METADATA_DB", ws.root().join("other.db"))
    .output()
    .unwrap();
    exits(&out, 1, "data directory");
}

#[test]
fn a_failed_verification_is_the_machines() {
    let ws = TempWorkspace::new();
    let before = table(&ws);
    // A source manifest whose digest no longer matches its files (bit rot, a bad disk).
    let path = ws
        .data_dir()
        .join("events/layout_initial/_dbopt_layout.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    manifest["digest"] = serde_json::json!("00000000000000000000000000000000");
    std::fs::write(&path, serde_json::to_string(&manifest).unwrap()).unwrap();
    let target = enqueue(&ws, "event_ts");
    exits(
        &cmd(&ws, &[], &["migration-worker"]).output().unwrap(),
        1,
        "verification failed",
    );
    assert_eq!(job_status(&ws, &target), "failed");
    assert_eq!(active_layout(&ws), "initial");
    assert_eq!(checksum(&ws, None), before);
    assert_eq!(staging_entries(&ws), Vec::<String>::new());
}

#[test]
fn a_network_failure_after_retries_is_the_machines() {
    let ws = TempWorkspace::new();
    // Nothing listens on port 9 (discard) of loopback here: every attempt is refused.
    let out = cmd(
        &ws,
        &[("DBOPT_NYC_TAXI_BASE_URL", "http://127.0.0.1:9/trip-data")],
        &["download-nyc-taxi", "--year", "2024", "--month", "1"],
    )
    .output()
    .unwrap();
    exits(&out, 1, "attempts");
    assert!(!run(&ws, &["tables"]).success().contains("nyc_taxi"));
}
