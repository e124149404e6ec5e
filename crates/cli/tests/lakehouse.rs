//! Delta Lake tables registered where they are: written and read back by the reference
//! Python implementation (`deltalake`, delta-rs), with DuckDB reading the table through it.
//! dbopt reads the snapshot, publishes a layout as one commit, rolls back by another, and
//! never overwrites a concurrent writer.

mod common;

use common::{build_sorted_layout, python, run, write_delta_table};
use dbopt_testkit::TempWorkspace;
use serde_json::Value;

use common::DELTA_READ_BACK as READ_BACK;

fn scalar(ws: &TempWorkspace, sql: &str) -> String {
    let out = run(
        ws,
        &["query", "--table-name", "events", "--format", "json", sql],
    )
    .success();
    let rows: Value = serde_json::from_str(&out).unwrap();
    rows[0]
        .as_object()
        .unwrap()
        .values()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn a_delta_table_is_registered_in_place_promoted_by_a_commit_and_rolled_back() {
    let ws = TempWorkspace::new();
    let delta = write_delta_table(&ws);
    let before = python(&delta, READ_BACK);
    assert_eq!(before["version"], 2);

    let out = common::register_delta(&ws, &delta, &[]);
    assert!(out.contains("at version 2 (3 files"), "{out}");
    // No data copied: the initial layout's files are links to the table's own files.
    let initial = ws
        .data_dir()
        .join("events/layout_initial/part-00000.parquet");
    assert_eq!(std::fs::metadata(&initial).unwrap().len(), {
        let first = before["files"][0].as_str().unwrap();
        std::fs::metadata(delta.join(first)).unwrap().len()
    });
    answers_as_duckdb_read_it(&ws, &before);

    proposals_are_changes_against_the_declared_spec(&ws);

    // A layout is built beside the table and becomes its content by one commit.
    let layout = build_sorted_layout(&ws);
    let after_build = python(&delta, READ_BACK);
    assert_eq!(
        after_build["version"], 2,
        "building a layout does not touch the table"
    );
    let out = promote(&ws, &layout);
    assert!(out.contains("Delta log version 3"), "{out}");
    let promoted = python(&delta, READ_BACK);
    let files = promoted_as_optimize(&promoted, &before, &layout);
    the_commit_is_a_rearrangement_with_statistics(&delta);
    let pruned = python(
        &delta,
        r#"
import os, json, datetime, warnings, deltalake as dl
warnings.simplefilter('ignore')
dt = dl.DeltaTable(os.environ['LAKE'])
def files(day):
    return len(dt.file_uris([('event_date', '>', day)]))
print(json.dumps([files(datetime.date(2024, 2, 1)), files(datetime.date(2025, 1, 1))]))
"#,
    );
    assert_eq!(
        pruned,
        serde_json::json!([files.len(), 0]),
        "delta-rs skips dbopt's files by their statistics"
    );

    // Promoting again is a no-op; rollback is a RESTORE commit back to the original files.
    run(
        &ws,
        &["promote", "--table-name", "events", "--layout", &layout],
    )
    .success();
    let out = run(&ws, &["rollback", "--table-name", "events"]).success();
    assert!(out.contains("Delta log version 4"), "{out}");
    let restored = python(&delta, READ_BACK);
    assert_eq!(restored["version"], 4);
    assert_eq!(restored["operation"], "RESTORE");
    assert_eq!(restored["files"], before["files"]);
    assert_eq!(restored["digest"], before["digest"]);
}

#[test]
fn a_concurrent_append_is_kept_and_a_conflicting_rewrite_makes_promote_give_up() {
    let ws = TempWorkspace::new();
    let delta = write_delta_table(&ws);
    common::register_delta(&ws, &delta, &[]);
    let layout = build_sorted_layout(&ws);

    // Another writer compacts the table (removing the files dbopt would replace) first.
    python(
        &delta,
        "import os, deltalake as dl; dl.DeltaTable(os.environ['LAKE']).optimize.compact()",
    );
    let before = python(&delta, READ_BACK);
    let err = run(
        &ws,
        &["promote", "--table-name", "events", "--layout", &layout],
    )
    .user_error("changed at version");
    assert!(err.contains("register-table --replace"), "{err}");
    assert_eq!(python(&delta, READ_BACK), before, "the table is untouched");
    assert_eq!(common::active_layout(&ws), "initial");

    // Registered again, dbopt reads the compacted version; an append between the build and
    // the promote stays in the table beside dbopt's files.
    common::register_delta(&ws, &delta, &["--replace"]);
    let layout = build_sorted_layout(&ws);
    python(
        &delta,
        r#"
import os, pyarrow as pa, deltalake as dl, datetime
dl.write_deltalake(os.environ['LAKE'], pa.table({
    'id': pa.array([999999], pa.int64()), 'customer_id': pa.array([1], pa.int64()),
    'event_date': pa.array([datetime.date(2024, 2, 2)]), 'kind': pa.array(['buy']),
    'amount': pa.array([1.5])}), mode='append')
"#,
    );
    let out = promote(&ws, &layout);
    assert!(out.contains("Delta log version 5"), "{out}");
    let after = python(&delta, READ_BACK);
    assert_eq!(after["rows"], 6001);
    let files: Vec<&str> = strs(&after["files"]);
    assert_eq!(
        files.iter().filter(|f| !f.starts_with("dbopt-")).count(),
        1,
        "{files:?}"
    );
}

#[test]
fn what_dbopt_cannot_read_or_publish_is_refused_and_left_untouched() {
    let ws = TempWorkspace::new();
    let refused = |path: &str, error: &str| {
        run(
            &ws,
            &["register-table", "--table-name", "t", "--delta", path],
        )
        .user_error(error);
    };
    let plain = ws.root().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    refused(plain.to_str().unwrap(), "not a Delta table");
    refused("/no/such/dir", "cannot be opened");

    // Partitions a hive directory cannot hold: a null value, a float key.
    for (name, table, error) in [
        ("nulls", "{'a': [1, 2], 'p': ['x', None]}", "null p"),
        (
            "floats",
            "{'a': [1, 2], 'p': [0.5, 1.5]}",
            "partition column 'p' of type double",
        ),
    ] {
        let parted = ws.root().join(name);
        python(
            &parted,
            &format!(
                "import os, pyarrow as pa, deltalake as dl\ndl.write_deltalake(os.environ['LAKE'], pa.table({table}), partition_by=['p'])\n"
            ),
        );
        refused(parted.to_str().unwrap(), error);
    }
    assert!(
        ws.catalog().list_tables().unwrap().is_empty(),
        "nothing registered"
    );

    // A layout that changes the table's partitioning cannot be published to it, and no layout
    // is activated by a migration (only promote commits to the log).
    let delta = write_delta_table(&ws);
    common::register_delta(&ws, &delta, &[]);
    run(
        &ws,
        &[
            "enqueue-migration",
            "--table-name",
            "events",
            "--partition-by",
            "kind",
        ],
    )
    .user_error("an unpartitioned Delta table: its layouts stay unpartitioned (drop partition_by");
    run(
        &ws,
        &[
            "enqueue-migration",
            "--table-name",
            "events",
            "--sort-by",
            "id",
            "--activate",
        ],
    )
    .user_error("drop --activate");
}

/// A Delta table partitioned by two columns (int and string) is registered with its
/// partitions as hive directories, re-sorted inside them by one commit whose files keep their
/// partition values, and rolled back.
#[test]
fn a_partitioned_delta_table_keeps_its_partitions_through_promote_and_rollback() {
    let ws = TempWorkspace::new();
    let delta = ws.root().join("lake").join("parted");
    python(
        &delta,
        &r#"
import os, datetime, random
import pyarrow as pa, deltalake as dl
random.seed(7)
EVENTS_BATCH
def with_month(t):
    months = [d.month for d in t.column('event_date').to_pylist()]
    return t.append_column('month', pa.array(months, pa.int32()))
p = os.environ['LAKE']
dl.write_deltalake(p, with_month(batch(0, 3000)), partition_by=['month', 'kind'])
dl.write_deltalake(p, with_month(batch(3000, 3000)), partition_by=['month', 'kind'], mode='append')
"#
        .replace("EVENTS_BATCH", &common::events_batch_py(true)),
    );
    let before = python(&delta, READ_BACK);
    let report: Value =
        serde_json::from_str(&common::register_delta(&ws, &delta, &["--format", "json"])).unwrap();
    assert_eq!(report["files"], 18, "{report}");
    assert!(
        report["declared"].as_str().unwrap().contains("month"),
        "{report}"
    );
    // The partition columns read back typed and in the table's column order.
    let csv = run(
        &ws,
        &[
            "query",
            "--table-name",
            "events",
            "--format",
            "csv",
            "SELECT *, month + 1 AS next FROM events WHERE id = 42",
        ],
    )
    .success();
    assert_eq!(
        csv.lines().next().unwrap(),
        "id,customer_id,event_date,kind,amount,month,next"
    );
    answers_as_duckdb_read_it(&ws, &before);

    every_proposal_keeps_the_partitioning(&ws);

    // Re-sorted inside its partitions (repartitioning is refused), promoted by one commit.
    run(
        &ws,
        &[
            "enqueue-migration",
            "--table-name",
            "events",
            "--partition-by",
            "kind",
        ],
    )
    .user_error("use partition_by = [\"month\", \"kind\"]");
    let layout = common::build_layout_with(
        &ws,
        &["--partition-by", "month,kind", "--sort-by", "customer_id"],
    );
    let out = promote(&ws, &layout);
    assert!(out.contains("Delta log version 2"), "{out}");
    let promoted = python(&delta, READ_BACK);
    assert_eq!(promoted["digest"], before["digest"], "identical rows");
    assert_eq!(promoted["duck"], before["duck"]);
    let files = strs(&promoted["files"]);
    assert_eq!(files.len(), 9, "one file per partition: {files:?}");
    assert!(
        files.iter().all(|f| f.starts_with("month=")
            && f.contains("/kind=")
            && f.contains(&format!("/dbopt-{layout}-"))),
        "{files:?}"
    );
    // delta-rs prunes by the partition values the commit wrote, and by the files' statistics.
    let pruned = python(
        &delta,
        r#"
import os, json, warnings, deltalake as dl
warnings.simplefilter('ignore')
dt = dl.DeltaTable(os.environ['LAKE'])
print(json.dumps([len(dt.file_uris([('kind', '=', 'buy')])),
                  len(dt.file_uris([('month', '=', 2), ('kind', '=', 'view')])),
                  len(dt.file_uris([('customer_id', '>', 1000)]))]))
"#,
    );
    assert_eq!(pruned, serde_json::json!([3, 1, 0]));

    let out = run(&ws, &["rollback", "--table-name", "events"]).success();
    assert!(out.contains("Delta log version 3"), "{out}");
    let restored = python(&delta, READ_BACK);
    assert_eq!(restored["files"], before["files"]);
    assert_eq!(restored["digest"], before["digest"]);
}

/// After queries on `customer_id` and `month`, every proposal keeps `[month, kind]`.
fn every_proposal_keeps_the_partitioning(ws: &TempWorkspace) {
    let proposals = proposals_after(
        ws,
        [3, 17, 250]
            .map(|c| format!("SELECT count(*) FROM events WHERE customer_id = {c} AND month = 2")),
    );
    let specs: Vec<&Value> = proposals["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["spec"])
        .collect();
    assert!(specs.len() > 1, "{proposals}");
    assert!(
        specs
            .iter()
            .all(|s| s["partition_by"] == serde_json::json!(["month", "kind"])),
        "{specs:?}"
    );
}

/// `propose --format json` for `events` after running `queries` on it.
fn proposals_after<const N: usize>(ws: &TempWorkspace, queries: [String; N]) -> Value {
    for sql in &queries {
        run(ws, &["query", "--table-name", "events", sql]).success();
    }
    serde_json::from_str(
        &run(
            ws,
            &["propose", "--table-name", "events", "--format", "json"],
        )
        .success(),
    )
    .unwrap()
}

/// dbopt's count, distinct count and sum over `events` equal DuckDB's over the table as
/// `before` (`DELTA_READ_BACK`) read it.
fn answers_as_duckdb_read_it(ws: &TempWorkspace, before: &Value) {
    assert_eq!(
        scalar(
            ws,
            "SELECT count(*) AS n, count(DISTINCT id) AS d, round(sum(amount), 2) AS s FROM events"
        ),
        before["duck"]
            .as_array()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
}

/// Proposals are changes against what the table declares (no Z-order here).
fn proposals_are_changes_against_the_declared_spec(ws: &TempWorkspace) {
    let proposals = proposals_after(
        ws,
        ["2024-01-05", "2024-02-10", "2024-03-01"]
            .map(|d| format!("SELECT count(*) FROM events WHERE event_date = DATE '{d}'")),
    );
    let changes: Vec<String> = proposals["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["spec_change"].as_array().unwrap().clone())
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert!(
        changes
            .iter()
            .any(|c| c.starts_with("sort: [] -> [event_date")),
        "{changes:?}"
    );
}

/// Asserts `promoted` (`DELTA_READ_BACK` after promoting `layout`) is version 3, an
/// `OPTIMIZE` with the rows of `before` whose live files are all the layout's; returns them.
fn promoted_as_optimize<'a>(promoted: &'a Value, before: &Value, layout: &str) -> Vec<&'a str> {
    assert_eq!(promoted["version"], 3);
    assert_eq!(promoted["operation"], "OPTIMIZE");
    assert_eq!(
        promoted["digest"], before["digest"],
        "identical rows after the commit"
    );
    assert_eq!(promoted["duck"], before["duck"]);
    let files = strs(&promoted["files"]);
    assert!(
        !files.is_empty()
            && files
                .iter()
                .all(|f| f.starts_with(&format!("dbopt-{layout}-"))),
        "{files:?}"
    );
    files
}

/// Commit 3 only rearranges (dataChange false) and carries statistics Delta readers skip by.
fn the_commit_is_a_rearrangement_with_statistics(delta: &std::path::Path) {
    let commit =
        std::fs::read_to_string(delta.join("_delta_log/00000000000000000003.json")).unwrap();
    let actions: Vec<Value> = commit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        actions
            .iter()
            .filter_map(|a| a.get("add").or(a.get("remove")))
            .all(|a| a["dataChange"] == false)
    );
    let add = actions.iter().find_map(|a| a.get("add")).unwrap();
    let stats: Value = serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
    assert_eq!(stats["numRecords"], 6000);
    assert_eq!(stats["minValues"]["event_date"], "2024-01-01");
    assert_eq!(stats["nullCount"]["kind"], 0);
}

#[test]
fn an_iceberg_table_is_registered_from_its_snapshot_with_its_sort_order() {
    let ws = TempWorkspace::new();
    let table = common::write_iceberg_table(&ws, false);
    assert!(table.join("metadata").is_dir(), "{}", table.display());
    let out = run(
        &ws,
        &[
            "register-table",
            "--table-name",
            "events",
            "--iceberg",
            table.to_str().unwrap(),
        ],
    )
    .success();
    assert!(out.contains("registered iceberg table"), "{out}");
    assert!(out.contains("(2 files"), "{out}");
    assert!(out.contains("declares sort(event_date)"), "{out}");
    let out = run(
        &ws,
        &[
            "query",
            "--table-name",
            "events",
            "--format",
            "json",
            "SELECT count(*) AS n, count(DISTINCT id) AS d, min(event_date) AS lo FROM events",
        ],
    )
    .success();
    let rows: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["n"], 4000);
    assert_eq!(rows[0]["d"], 4000);

    // Layouts can be built and compared; publishing to Iceberg is refused, the table untouched.
    let metadata_before: Vec<_> = std::fs::read_dir(table.join("metadata"))
        .unwrap()
        .count()
        .to_string()
        .into();
    let layout = build_sorted_layout(&ws);
    run(
        &ws,
        &["promote", "--table-name", "events", "--layout", &layout],
    )
    .user_error("not through its catalog");
    let metadata_after: Vec<_> = std::fs::read_dir(table.join("metadata"))
        .unwrap()
        .count()
        .to_string()
        .into();
    assert_eq!(metadata_before, metadata_after);
    assert_eq!(common::active_layout(&ws), "initial");
}

/// An Iceberg table partitioned by `kind` (identity) keeps its partitions: registered with
/// them as hive directories, re-sorted inside them, published by a replace snapshot whose
/// entries carry the partition values (pyiceberg prunes by them and fills the column from
/// them), and rolled back. Other transforms are refused.
#[test]
fn a_partitioned_iceberg_table_keeps_its_partitions_through_promote_and_rollback() {
    let ws = TempWorkspace::new();
    common::write_iceberg_table(&ws, true);
    let warehouse = ws.root().join("warehouse");
    let read = || {
        let mut table = python(&warehouse, common::ICEBERG_READ_BACK);
        table["buy"] = python(&warehouse, KIND_BUY)["buy"].clone();
        table
    };
    let before = read();
    let out = common::register_iceberg_catalog(&ws, &warehouse);
    assert!(out.contains("kind"), "{out}");
    assert_eq!(
        scalar(
            &ws,
            "SELECT count(*) AS a, count(DISTINCT id) AS b, sum(CASE WHEN kind = 'buy' THEN 1 ELSE 0 END) AS c FROM events"
        ),
        format!("4000,4000,{}", before["buy"][1])
    );
    run(
        &ws,
        &[
            "enqueue-migration",
            "--table-name",
            "events",
            "--sort-by",
            "customer_id",
        ],
    )
    .user_error("partitioned by [\"kind\"]");
    let layout =
        common::build_layout_with(&ws, &["--partition-by", "kind", "--sort-by", "customer_id"]);
    let out = promote(&ws, &layout);
    assert!(out.contains("Iceberg snapshot"), "{out}");
    let promoted = read();
    assert_eq!(promoted["operation"], "Operation.REPLACE", "{promoted}");
    assert_eq!(promoted["digest"], before["digest"], "identical rows");
    let files = strs(&promoted["files"]);
    assert_eq!(files.len(), 3, "one file per kind: {files:?}");
    assert!(
        files
            .iter()
            .all(|f| f.starts_with(&format!("dbopt-{layout}-"))),
        "{files:?}"
    );
    assert_eq!(
        promoted["buy"],
        serde_json::json!([1, before["buy"][1]]),
        "pyiceberg prunes by the partition values dbopt wrote"
    );

    run(&ws, &["rollback", "--table-name", "events"]).success();
    let restored = read();
    assert_eq!(restored["files"], before["files"]);
    assert_eq!(restored["digest"], before["digest"]);
    assert_eq!(restored["buy"], before["buy"]);

    // A partition transform other than identity is refused, naming it.
    let daily = ws.root().join("daily");
    std::fs::create_dir_all(&daily).unwrap();
    let created = python(
        &daily,
        r#"
import os, json, datetime, pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.transforms import DayTransform
w = os.environ['LAKE']
cat = SqlCatalog('default', uri=f'sqlite:///{w}/catalog.db', warehouse=f'file://{w}')
cat.create_namespace('db')
data = pa.table({'id': pa.array([1, 2], pa.int64()), 'd': pa.array([datetime.date(2024, 1, 1)] * 2)})
t = cat.create_table('db.events', schema=data.schema)
t.append(data)
with t.update_spec() as u:
    u.add_field('d', DayTransform(), 'd_day')
print(json.dumps(t.location().removeprefix('file://')))
"#,
    );
    run(
        &ws,
        &[
            "register-table",
            "--table-name",
            "daily",
            "--iceberg",
            created.as_str().unwrap(),
        ],
    )
    .user_error("partition transform day(d)");
    run(
        &ws,
        &[
            "register-table",
            "--table-name",
            "other",
            "--iceberg",
            ws.root().to_str().unwrap(),
        ],
    )
    .user_error("not an Iceberg table");
}

/// The files pyiceberg plans for `kind = 'buy'` in `db.events` and the rows it reads for it
/// (all of them `buy`), as `buy`.
const KIND_BUY: &str = r#"
import os, json
from pyiceberg.catalog.sql import SqlCatalog
w = os.environ['LAKE']
t = SqlCatalog('default', uri=f'sqlite:///{w}/catalog.db', warehouse=f'file://{w}').load_table('db.events')
buy = t.scan(row_filter="kind == 'buy'")
rows = buy.to_arrow()
assert set(rows.column('kind').to_pylist()) == {'buy'}, rows.column('kind').to_pylist()[:5]
print(json.dumps({'buy': [len(list(buy.plan_files())), rows.num_rows]}))
"#;

/// The snapshot of `main` and of the branch `BRANCH` of `db.events`, as pyiceberg reads them.
const ICEBERG_REFS: &str = r#"
import os, json
from pyiceberg.catalog.sql import SqlCatalog
w = os.environ['LAKE']
t = SqlCatalog('default', uri=f'sqlite:///{w}/catalog.db', warehouse=f'file://{w}').load_table('db.events')
refs = t.metadata.refs
print(json.dumps({'main': refs['main'].snapshot_id,
                  'branch': refs['BRANCH'].snapshot_id if 'BRANCH' in refs else None}))
"#;

#[test]
fn an_iceberg_table_in_a_sql_catalog_is_promoted_by_a_replace_snapshot_and_rolled_back() {
    let ws = TempWorkspace::new();
    common::write_iceberg_table(&ws, false);
    let warehouse = ws.root().join("warehouse");
    let read = || python(&warehouse, common::ICEBERG_READ_BACK);
    let before = read();
    let out = common::register_iceberg_catalog(&ws, &warehouse);
    assert!(
        out.contains(&format!("snapshot {}", before["snapshot"])),
        "{out}"
    );

    let layout = common::build_layout(&ws, "customer_id");
    let staged = canary_on_a_branch(&ws, &layout);
    let refs = || {
        python(
            &warehouse,
            &ICEBERG_REFS.replace("BRANCH", &format!("dbopt/{layout}")),
        )
    };
    let branch = refs();
    assert_eq!(
        branch["main"], before["snapshot"],
        "main unchanged by the canary"
    );
    assert_eq!(branch["branch"].to_string(), staged, "{branch}");

    promote_to_the_branch(&ws, &layout, &staged);
    let after = refs();
    assert_eq!(after["main"].to_string(), staged);
    assert!(after["branch"].is_null(), "the branch is gone: {after}");
    let promoted = read();
    assert_ne!(promoted["snapshot"], before["snapshot"]);
    promoted_as_a_replace(&promoted, &before, &layout);

    // A writer appending between the build and the next promote keeps its rows.
    python(&warehouse, APPEND_ONE_ICEBERG_ROW);

    // Promoting again commits nothing; rollback is another replace back to the first files.
    let out = promote(&ws, &layout);
    assert!(out.contains("already active"), "{out}");
    run(&ws, &["rollback", "--table-name", "events"]).success();
    let restored = read();
    assert_eq!(restored["rows"], 4001, "the appended row stays");
    let files: Vec<&str> = strs(&restored["files"]);
    let original: Vec<&str> = strs(&before["files"]);
    assert!(original.iter().all(|f| files.contains(f)), "{files:?}");
    assert_eq!(files.len(), original.len() + 1, "{files:?}");
    assert_eq!(restored["order"], serde_json::json!(["event_date:ASC"]));
    assert_eq!(restored["history"], before["history"].as_u64().unwrap() + 3);
}

/// Runs two queries against `events`, then the canary of `layout`, whose candidate an Iceberg
/// table gets as a snapshot on the branch `dbopt/<layout>` (main does not move). Returns the
/// branch's snapshot id, as the canary prints it.
fn canary_on_a_branch(ws: &TempWorkspace, layout: &str) -> String {
    for day in ["2024-01-05", "2024-02-10"] {
        let sql = format!(
            "SELECT count(*) FROM events WHERE customer_id = 7 AND event_date >= DATE '{day}'"
        );
        run(ws, &["query", "--table-name", "events", &sql]).success();
    }
    let out = run(
        ws,
        &["canary", "--table-name", "events", "--layout", layout],
    )
    .success();
    out.split(&format!("Iceberg branch dbopt/{layout} at snapshot "))
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no branch in: {out}"))
        .to_string()
}

/// Promotes `layout` (`--force`: the canary's verdict aside), which fast-forwards `main` to
/// the canary's snapshot `staged`.
fn promote_to_the_branch(ws: &TempWorkspace, layout: &str, staged: &str) {
    let out = run(
        ws,
        &[
            "promote",
            "--table-name",
            "events",
            "--layout",
            layout,
            "--force",
        ],
    )
    .success();
    assert!(
        out.contains(&format!("(Iceberg snapshot {staged})")),
        "fast-forwarded: {out}"
    );
}

/// What pyiceberg reads (`ICEBERG_READ_BACK`) after `layout`, sorted by customer_id, was
/// promoted over `before`: a replace snapshot with identical rows, the new sort order, and
/// dbopt's files only, each skipped by its manifest bounds. Returns the files.
fn promoted_as_a_replace<'a>(promoted: &'a Value, before: &Value, layout: &str) -> Vec<&'a str> {
    assert_eq!(promoted["operation"], "Operation.REPLACE", "{promoted}");
    assert_eq!(promoted["digest"], before["digest"], "identical rows");
    assert_eq!(promoted["order"], serde_json::json!(["customer_id:ASC"]));
    let files = strs(&promoted["files"]);
    assert!(
        files
            .iter()
            .all(|f| f.starts_with(&format!("dbopt-{layout}-"))),
        "{files:?}"
    );
    assert_eq!(
        promoted["pruned"],
        serde_json::json!([files.len(), 0, 0]),
        "pyiceberg skips dbopt's files by their manifest bounds"
    );
    files
}

/// A pyiceberg script appending one row (id 999999) to `db.events`, as another writer would.
const APPEND_ONE_ICEBERG_ROW: &str = r#"
import os, datetime, pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
w = os.environ['LAKE']
t = SqlCatalog('default', uri=f'sqlite:///{w}/catalog.db', warehouse=f'file://{w}').load_table('db.events')
t.append(pa.table({'id': pa.array([999999], pa.int64()), 'customer_id': pa.array([1], pa.int64()),
    'event_date': pa.array([datetime.date(2024, 2, 2)]), 'kind': pa.array(['buy'])}))
"#;

/// Promotes `layout` of `events`; returns stdout.
fn promote(ws: &TempWorkspace, layout: &str) -> String {
    run(
        ws,
        &["promote", "--table-name", "events", "--layout", layout],
    )
    .success()
}

/// A lake table keeps its declared partitioning: even where a managed table would get a
/// hive-partitioned candidate (a 3-value column in every query, tiny partitions allowed),
/// propose offers none, so autopilot never builds a layout it cannot publish.
#[test]
fn proposals_for_a_delta_table_never_repartition_it() {
    let ws = TempWorkspace::new();
    let delta = write_delta_table(&ws);
    common::register_delta(&ws, &delta, &[]);
    for kind in ["buy", "view", "click", "buy"] {
        let sql = format!("SELECT count(*) FROM events WHERE kind = '{kind}'");
        run(&ws, &["query", "--table-name", "events", &sql]).success();
    }
    let out = common::cmd(
        &ws,
        &[("DBOPT_MIN_PARTITION_ROWS", "1")],
        &[
            "propose",
            "--table-name",
            "events",
            "--top",
            "100",
            "--format",
            "json",
        ],
    )
    .output()
    .unwrap();
    common::succeeded(&out);
    let proposals: Value = serde_json::from_slice(&out.stdout).unwrap();
    let partitioned: Vec<&Value> = proposals["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["spec"]["partition_by"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        })
        .collect();
    assert!(partitioned.is_empty(), "{partitioned:?}");
}

/// The strings of a JSON array.
fn strs(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect()
}

/// The store settings a `deltalake` script on the moto server needs beyond the environment's
/// credentials: plain HTTP, and commits by conditional put (`If-None-Match: *`).
const S3_OPTIONS: &str =
    "SO = {'AWS_ALLOW_HTTP': 'true', 'conditional_put': 'etag', 'AWS_REGION': 'us-east-1'}\n";

/// `DELTA_READ_BACK` for a table on the moto server.
fn s3_read_back() -> String {
    format!(
        "{S3_OPTIONS}{}",
        READ_BACK.replace(
            "dl.DeltaTable(os.environ['LAKE'])",
            "dl.DeltaTable(os.environ['LAKE'], storage_options=SO)"
        )
    )
}

/// A Delta table at `s3://lakehouse/lake/events` on a moto server.
struct S3Lake {
    moto: common::Moto,
}

impl S3Lake {
    const URL: &'static str = "s3://lakehouse/lake/events";
    /// Registers the table as `events`.
    const REGISTER: [&'static str; 5] = [
        "register-table",
        "--table-name",
        "events",
        "--delta",
        Self::URL,
    ];

    /// The store's environment, with `LAKE` the table's URL.
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.moto.env();
        env.push(("LAKE", Self::URL.to_string()));
        env
    }

    /// Runs a Python script with `env`; returns the JSON it prints.
    fn py(&self, script: &str) -> Value {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        common::python_with_env(&env, script)
    }

    /// Appends `n` events from id `lo` with `deltalake` (one commit).
    fn append(&self, seed: u32, lo: u32, n: u32, mode: &str) {
        self.py(&format!(
            r#"
import os, datetime, random
import pyarrow as pa, deltalake as dl
random.seed({seed})
{S3_OPTIONS}{batch}
dl.write_deltalake(os.environ['LAKE'], batch({lo}, {n}), mode='{mode}', storage_options=SO)
"#,
            batch = common::events_batch_py(true)
        ));
    }

    /// What `deltalake` reads of the table (`DELTA_READ_BACK`).
    fn read_back(&self) -> Value {
        self.py(&s3_read_back())
    }
}

/// A Delta table in an S3 bucket (moto), written and read back by `deltalake`, with DATA_DIR
/// a prefix of the same bucket: registered (its files copied into the initial layout by the
/// store), a date sort built and promoted by one commit that delta-rs reads (statistics and
/// all), promote again a no-op, rollback a RESTORE commit; a commit never overwrites a version
/// another writer took; a table in another bucket, or with DATA_DIR on local disk, is refused.
#[test]
fn a_delta_table_in_an_s3_bucket_is_promoted_by_a_commit_and_rolled_back() {
    let lake = S3Lake {
        moto: common::Moto::start(),
    };
    let ws = lake.moto.workspace("lakehouse", "dbopt/");
    // Three commits, the last after a checkpoint, as `write_delta_table` makes on disk.
    lake.append(5, 0, 2000, "error");
    lake.append(6, 2000, 2000, "append");
    lake.py(&format!(
        "import os, deltalake as dl\n{S3_OPTIONS}dl.DeltaTable(os.environ['LAKE'], storage_options=SO).create_checkpoint()\n"
    ));
    lake.append(7, 4000, 2000, "append");
    let before = lake.read_back();
    assert_eq!(before["version"], 2, "{before}");

    registered_as_copies_in_data_dir(&lake, &ws, &before);
    let layout = promoted_by_one_commit(&lake, &ws, &before);
    a_racing_append_makes_the_rollback_plan_again(&lake, &ws, &before, &layout);

    // Refused, exit 2, nothing registered: a table in another bucket, and DATA_DIR on disk.
    lake.py(
        "import os, boto3\nboto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL']).create_bucket(Bucket='other')\nprint('null')",
    );
    let other = [
        "register-table",
        "--table-name",
        "other",
        "--delta",
        "s3://other/lake/events",
    ];
    run(&ws, &other).user_error("not in DATA_DIR's bucket");
    let store_env = lake.env();
    let store_env: Vec<(&str, &str)> = store_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let local = TempWorkspace::new().with_env(&store_env);
    run(&local, &S3Lake::REGISTER).user_error("DATA_DIR is on local disk");
    assert!(local.catalog().list_tables().unwrap().is_empty());
}

/// Registering copies the table's three live files and nothing else into the initial
/// layout's prefix, and dbopt answers what DuckDB reads through delta-rs.
fn registered_as_copies_in_data_dir(lake: &S3Lake, ws: &TempWorkspace, before: &Value) {
    let out = run(ws, &S3Lake::REGISTER).success();
    assert!(out.contains("at version 2 (3 files"), "{out}");
    let copied = lake.py(
        r#"
import os, json, boto3
s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'])
keys = [o['Key'] for o in s3.list_objects_v2(Bucket='lakehouse', Prefix='dbopt/events/')['Contents']]
print(json.dumps(sorted(keys)))
"#,
    );
    assert_eq!(
        copied,
        serde_json::json!([
            "dbopt/events/layout_initial/_dbopt_layout.json",
            "dbopt/events/layout_initial/part-00000.parquet",
            "dbopt/events/layout_initial/part-00001.parquet",
            "dbopt/events/layout_initial/part-00002.parquet",
        ]),
        "the initial layout is the table's three files, copied, and its manifest"
    );
    answers_as_duckdb_read_it(ws, before);
}

/// A date sort built beside the table becomes its content by one commit (version 3) with
/// statistics delta-rs prunes by; promoting again commits nothing. Returns the layout.
fn promoted_by_one_commit(lake: &S3Lake, ws: &TempWorkspace, before: &Value) -> String {
    let layout = build_sorted_layout(ws);
    assert_eq!(
        lake.read_back()["version"],
        2,
        "building does not touch the table"
    );
    let out = promote(ws, &layout);
    assert!(out.contains("Delta log version 3"), "{out}");
    let promoted = lake.read_back();
    let files = promoted_as_optimize(&promoted, before, &layout);
    let pruned = lake.py(&format!(
        r#"
import os, json, datetime, warnings, deltalake as dl
warnings.simplefilter('ignore')
{S3_OPTIONS}dt = dl.DeltaTable(os.environ['LAKE'], storage_options=SO)
def files(day):
    return len(dt.file_uris([('event_date', '>', day)]))
print(json.dumps([files(datetime.date(2024, 2, 1)), files(datetime.date(2025, 1, 1))]))
"#
    ));
    assert_eq!(
        pruned,
        serde_json::json!([files.len(), 0]),
        "delta-rs skips dbopt's files by their statistics"
    );
    promote(ws, &layout);
    assert_eq!(
        lake.read_back()["version"],
        3,
        "promoting again commits nothing"
    );
    layout
}

/// Another writer takes version 4 (an append) while dbopt's rollback, planned on version 3,
/// is held at the fail point `lake.planned`: the store refuses dbopt's conditional put of
/// version 4, dbopt plans again on the newer snapshot and lands as version 5, a RESTORE that
/// keeps the appended rows.
fn a_racing_append_makes_the_rollback_plan_again(
    lake: &S3Lake,
    ws: &TempWorkspace,
    before: &Value,
    layout: &str,
) {
    let mut rollback = ws
        .command(&common::bin())
        .args(["rollback", "--table-name", "events"])
        .env("DBOPT_FAILPOINT", "lake.planned:sleep8000@1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(rollback.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("fail point lake.planned") {
        let mut line = String::new();
        let read = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(
            read > 0,
            "rollback ended before planning its commit: {seen}"
        );
        seen.push_str(&line);
    }
    lake.append(9, 6000, 10, "append");
    assert_eq!(
        lake.read_back()["version"],
        4,
        "the other writer's append is version 4"
    );
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    let out = rollback.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{seen}");
    assert!(seen.contains("was taken by another writer"), "{seen}");
    assert!(stdout.contains("Delta log version 5"), "{stdout}");
    let restored = lake.read_back();
    assert_eq!(restored["version"], 5);
    assert_eq!(restored["operation"], "RESTORE");
    assert_eq!(restored["rows"], 6010, "the other writer's rows are kept");
    let restored_files = strs(&restored["files"]);
    for file in strs(&before["files"]) {
        assert!(
            restored_files.contains(&file),
            "{file} back: {restored_files:?}"
        );
    }
    assert!(
        restored_files
            .iter()
            .all(|f| !f.starts_with(&format!("dbopt-{layout}-"))),
        "{restored_files:?}"
    );
}

/// An Iceberg table `db.events` whose warehouse is `s3://lakehouse/warehouse` on a moto
/// server, in a SQL catalog on local disk (`catalog.db` under `dir`).
struct S3Iceberg {
    moto: common::Moto,
    dir: std::path::PathBuf,
}

impl S3Iceberg {
    /// The store's environment, with `LAKE` the catalog's directory.
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.moto.env();
        env.push(("LAKE", self.dir.display().to_string()));
        env
    }

    /// Runs one of these tests' pyiceberg scripts (written for a warehouse on local disk)
    /// against the bucket; returns the JSON it prints.
    fn py(&self, script: &str) -> Value {
        let props = "S3 = {'s3.endpoint': os.environ['AWS_ENDPOINT_URL'], 's3.access-key-id': os.environ['AWS_ACCESS_KEY_ID'], 's3.secret-access-key': os.environ['AWS_SECRET_ACCESS_KEY'], 's3.region': 'us-east-1'}\n";
        let local = "warehouse=f'file://{w}')";
        assert!(script.contains(local), "{script}");
        let script = format!(
            "import os\n{props}{}",
            script.replace(local, "warehouse='s3://lakehouse/warehouse', **S3)")
        );
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        common::python_with_env(&env, &script)
    }

    /// The keys under `prefix` in the bucket, sorted.
    fn keys(&self, prefix: &str) -> Vec<String> {
        let keys = self.moto.python(&format!(
            r#"
import os, json, boto3
s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'])
found = s3.list_objects_v2(Bucket='lakehouse', Prefix='{prefix}').get('Contents', [])
print(json.dumps(sorted(o['Key'] for o in found)))
"#
        ));
        strs(&keys).into_iter().map(String::from).collect()
    }

    /// `register-table` of `db.events` through the catalog as `name`.
    fn register_args(&self, name: &str) -> Vec<String> {
        let uri = format!("sqlite:///{}", self.dir.join("catalog.db").display());
        [
            "register-table",
            "--table-name",
            name,
            "--iceberg-catalog",
            &uri,
            "--iceberg-table",
            "db.events",
        ]
        .map(String::from)
        .to_vec()
    }
}

/// An Iceberg table whose warehouse is an S3 bucket (moto), written, appended to and read back
/// by pyiceberg through its SQL catalog, with DATA_DIR a prefix of the same bucket: registered
/// (its two files copied into the initial layout by the store), a sort built and promoted by a
/// replace snapshot whose metadata, manifest list and manifest dbopt wrote in the bucket
/// (pyiceberg reads identical rows and prunes dbopt's files by their bounds), rolled back with
/// another writer's append kept, registered read-only from its prefix; a table in another
/// bucket, or with DATA_DIR on local disk, is refused.
#[test]
fn an_iceberg_table_in_an_s3_bucket_is_promoted_by_a_replace_snapshot_and_rolled_back() {
    let moto = common::Moto::start();
    let ws = moto.workspace("lakehouse", "dbopt/");
    let dir = ws.root().join("iceberg");
    std::fs::create_dir_all(&dir).unwrap();
    let lake = S3Iceberg { moto, dir };
    let written = lake.py(&common::iceberg_table_script(false));
    assert_eq!(
        written["location"], "s3://lakehouse/warehouse/db/events",
        "{written}"
    );
    let before = lake.py(common::ICEBERG_READ_BACK);

    let args = lake.register_args("events");
    let out = run(&ws, &args.iter().map(String::as_str).collect::<Vec<_>>()).success();
    assert!(
        out.contains(&format!("snapshot {}", before["snapshot"])) && out.contains("(2 files"),
        "{out}"
    );
    assert_eq!(
        lake.keys("dbopt/events/"),
        [
            "dbopt/events/layout_initial/_dbopt_layout.json",
            "dbopt/events/layout_initial/part-00000.parquet",
            "dbopt/events/layout_initial/part-00001.parquet",
        ],
        "the initial layout is the table's two files, copied, and its manifest"
    );
    assert_eq!(
        scalar(&ws, "SELECT count(*), count(DISTINCT id) FROM events"),
        "4000,4000"
    );

    let layout = iceberg_promoted_in_the_bucket(&lake, &ws, &before);
    iceberg_rolled_back_with_an_append_kept(&lake, &ws, &before, &layout);

    // Refused, exit 2, nothing registered: DATA_DIR on local disk, and a table in another bucket.
    let store_env = lake.moto.env();
    let store_env: Vec<(&str, &str)> = store_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let local = TempWorkspace::new().with_env(&store_env);
    let args = lake.register_args("events");
    run(&local, &args.iter().map(String::as_str).collect::<Vec<_>>())
        .user_error("DATA_DIR is on local disk");
    assert!(local.catalog().list_tables().unwrap().is_empty());
    let other = lake.moto.workspace("elsewhere", "dbopt/");
    let args = lake.register_args("other");
    run(&other, &args.iter().map(String::as_str).collect::<Vec<_>>())
        .user_error("not in DATA_DIR's bucket");
}

/// A sort by customer_id built beside the table is staged by the canary on a branch in the
/// bucket (main does not move), then becomes the table's content by a fast-forward: identical
/// rows, the new sort order, dbopt's files (copied into the table's data prefix) pruned by
/// their bounds. Returns the layout.
fn iceberg_promoted_in_the_bucket(lake: &S3Iceberg, ws: &TempWorkspace, before: &Value) -> String {
    let layout = common::build_layout(ws, "customer_id");
    let staged = canary_on_a_branch(ws, &layout);
    assert_eq!(
        lake.py(common::ICEBERG_READ_BACK)["snapshot"],
        before["snapshot"]
    );
    promote_to_the_branch(ws, &layout, &staged);
    let promoted = lake.py(common::ICEBERG_READ_BACK);
    let files = promoted_as_a_replace(&promoted, before, &layout);
    let copied = lake
        .keys("warehouse/db/events/data/")
        .into_iter()
        .filter(|k| k.contains(&format!("/dbopt-{layout}-")))
        .count();
    assert_eq!(copied, files.len(), "copied into the table's data prefix");
    layout
}

/// Another writer appends; promoting again commits nothing; rollback is a replace back to the
/// first files that keeps the append; registering again (`--replace`) reads the newest
/// snapshot; the table's prefix, registered read-only, reads as its newest metadata file says.
fn iceberg_rolled_back_with_an_append_kept(
    lake: &S3Iceberg,
    ws: &TempWorkspace,
    before: &Value,
    layout: &str,
) {
    lake.py(APPEND_ONE_ICEBERG_ROW);
    assert!(promote(ws, layout).contains("already active"));
    run(ws, &["rollback", "--table-name", "events"]).success();
    let restored = lake.py(common::ICEBERG_READ_BACK);
    assert_eq!(restored["rows"], 4001, "the appended row stays");
    let restored_files = strs(&restored["files"]);
    let original = strs(&before["files"]);
    assert!(
        original.iter().all(|f| restored_files.contains(f)),
        "{restored_files:?}"
    );
    assert_eq!(
        restored_files.len(),
        original.len() + 1,
        "{restored_files:?}"
    );
    assert_eq!(restored["order"], serde_json::json!(["event_date:ASC"]));

    // Registered again (--replace): the newest snapshot, copied beside the old initial layout.
    let mut args = lake.register_args("events");
    args.push("--replace".into());
    let out = run(ws, &args.iter().map(String::as_str).collect::<Vec<_>>()).success();
    assert!(out.contains("(3 files"), "{out}");
    assert_eq!(scalar(ws, "SELECT count(*) FROM events"), "4001");
    assert!(
        lake.keys("dbopt/events/layout_initial.")
            .iter()
            .any(|k| k.ends_with("/_dbopt_layout.json")),
        "{:?}",
        lake.keys("dbopt/events/")
    );

    let read_only = [
        "register-table",
        "--table-name",
        "events_ro",
        "--iceberg",
        "s3://lakehouse/warehouse/db/events",
    ];
    let out = run(ws, &read_only).success();
    assert!(
        out.contains(&format!("snapshot {}", restored["snapshot"])) && out.contains("(3 files"),
        "{out}"
    );
}
