//! Integration tests of the catalog on real files.

use dbopt_catalog::{
    ActivationKind, ActiveSwap, CanarySummary, Catalog, CatalogError, LayoutEval, LayoutRecord,
    LayoutStatus, NewCanary, QueryLogEntry, QueryOrigin, RouteChoice, SCHEMA_VERSION, ScanMetrics,
    TableRecord, TableScan, Verdict,
};
use dbopt_core::{LayoutId, LayoutSpec, ManualClock, SortKey, TableName};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn open(path: &Path) -> Catalog {
    Catalog::open(path, Arc::new(ManualClock::new(1_000))).unwrap()
}

fn name(n: &str) -> TableName {
    TableName::new(n).unwrap()
}

fn layout(table: &str, id: LayoutId, status: LayoutStatus, created_at_ms: i64) -> LayoutRecord {
    LayoutRecord {
        table: name(table),
        path: format!("{table}/{}", id.dir_name()),
        source_layout: (id != LayoutId::initial()).then(LayoutId::initial),
        layout_id: id,
        spec: LayoutSpec::default(),
        status,
        row_count: 100,
        file_count: 2,
        row_group_count: 4,
        total_bytes: 4096,
        digest: "100:00ff".into(),
        created_at_ms,
        published_at_ms: None,
    }
}

fn sorted_spec() -> LayoutSpec {
    LayoutSpec {
        sort_by: vec![SortKey {
            column: "ts".into(),
            descending: false,
        }],
        ..Default::default()
    }
}

/// Registers `table` with a ready initial layout.
fn register(cat: &Catalog, table: &str, source: &str, replace: bool) -> Result<(), CatalogError> {
    let record = TableRecord {
        name: name(table),
        created_at_ms: 10,
        active_layout: LayoutId::initial(),
        source: source.into(),
        row_count: 100,
    };
    let initial = layout(table, LayoutId::initial(), LayoutStatus::Ready, 10);
    cat.register_table(&record, &initial, replace, None)
}

fn entry(ts_ms: i64, table: &str, scans: &[&str]) -> QueryLogEntry {
    let scans: Vec<TableScan> = scans
        .iter()
        .map(|t| TableScan {
            table: name(t),
            layout_id: LayoutId::initial(),
            metrics: ScanMetrics {
                bytes_scanned: 1000,
                row_groups_total: 4,
                row_groups_pruned: 3,
                files_total: 2,
                files_pruned: 1,
                rows_pruned_by_page_index: 7,
            },
        })
        .collect();
    let mut metrics = ScanMetrics::default();
    scans.iter().for_each(|s| metrics.accumulate(&s.metrics));
    QueryLogEntry {
        ts_ms,
        table: name(table),
        layout_id: (!scans.is_empty()).then(LayoutId::initial),
        sql: format!("SELECT * FROM {table}"),
        fingerprint: format!("fp_{table}"),
        cluster_id: None,
        latency_ms: 12.5,
        rows_returned: 3,
        metrics,
        result_digest: Some("3:01".into()),
        error: None,
        origin: QueryOrigin::Query,
        workload: Some("point_lookup".into()),
        scans,
        route: None,
        source: None,
        pushdown: None,
    }
}

fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn migrations_apply_once_and_reopen_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metadata.db");
    let cat = open(&path);
    assert_eq!(cat.schema_version().unwrap(), SCHEMA_VERSION);
    register(&cat, "events", "generate events seed=42", false).unwrap();
    drop(cat);
    let cat = open(&path);
    assert_eq!(cat.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(cat.list_tables().unwrap().len(), 1);
    assert_eq!(user_version(&path), SCHEMA_VERSION);
}

#[test]
fn newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metadata.db");
    drop(open(&path));
    let newer = SCHEMA_VERSION + 6;
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let err = Catalog::open(&path, Arc::new(ManualClock::new(0))).unwrap_err();
    match &err {
        CatalogError::NewerSchema {
            found, supported, ..
        } => assert_eq!((*found, *supported), (newer, SCHEMA_VERSION)),
        other => panic!("expected NewerSchema, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("newer dbopt") && msg.contains("METADATA_DB"),
        "{msg}"
    );
    assert_eq!(user_version(&path), newer);
}

#[test]
fn wal_mode_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metadata.db");
    let _cat = open(&path);
    let mode: String = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn register_replace_and_table_exists() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(&dir.path().join("metadata.db"));
    let events = name("events");
    assert!(cat.get_table(&events).unwrap().is_none());
    assert!(matches!(
        cat.require_table(&events),
        Err(CatalogError::UnknownTable(t)) if t == "events"
    ));
    register(&cat, "events", "generate events seed=42", false).unwrap();
    register(&cat, "alpha", "load alpha.csv", false).unwrap();
    let names: Vec<String> = cat
        .list_tables()
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(names, ["alpha", "events"]);

    let sorted = LayoutId::derive(&LayoutId::initial(), &sorted_spec());
    assert!(
        cat.insert_layout(&layout("events", sorted.clone(), LayoutStatus::Ready, 20))
            .unwrap()
    );
    cat.log_query(&entry(5, "events", &["events"])).unwrap();

    let err = register(&cat, "events", "generate events seed=7", false).unwrap_err();
    assert!(
        matches!(err, CatalogError::TableExists(ref t) if t == "events"),
        "{err}"
    );
    assert_eq!(cat.list_layouts(&events).unwrap().len(), 2);

    register(&cat, "events", "generate events seed=7", true).unwrap();
    let table = cat.require_table(&events).unwrap();
    assert_eq!(table.source, "generate events seed=7");
    assert_eq!(table.active_layout, LayoutId::initial());
    let layouts = cat.list_layouts(&events).unwrap();
    assert_eq!(layouts.len(), 1, "old layouts dropped on replace");
    assert!(cat.get_layout(&events, &sorted).unwrap().is_none());
    assert_eq!(
        cat.count_queries(&events).unwrap(),
        1,
        "query log kept on replace"
    );
}

#[test]
fn layouts_insert_idempotently_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(&dir.path().join("metadata.db"));
    register(&cat, "events", "generate events", false).unwrap();
    let events = name("events");
    let id = LayoutId::derive(&LayoutId::initial(), &sorted_spec());
    let mut rec = layout("events", id.clone(), LayoutStatus::Building, 20);
    rec.spec = sorted_spec();
    assert!(cat.insert_layout(&rec).unwrap());
    assert!(!cat.insert_layout(&rec).unwrap());
    assert_eq!(cat.get_layout(&events, &id).unwrap().unwrap(), rec);

    let orphan = layout("nosuch", id.clone(), LayoutStatus::Building, 20);
    assert!(matches!(
        cat.insert_layout(&orphan),
        Err(CatalogError::UnknownTable(_))
    ));

    // The initial layout was registered ready, so it got the clock's time as published_at.
    let listed = cat.list_layouts(&events).unwrap();
    let ids: Vec<&LayoutId> = listed.iter().map(|l| &l.layout_id).collect();
    assert_eq!(ids, [&LayoutId::initial(), &id]);
    assert_eq!(listed[0].published_at_ms, Some(1_000));

    // Counts beyond i64::MAX saturate instead of wrapping or panicking.
    let big_id = LayoutId::parse("00ff").unwrap();
    let mut big = layout("events", big_id.clone(), LayoutStatus::Failed, 30);
    big.total_bytes = u64::MAX;
    cat.insert_layout(&big).unwrap();
    let back = cat.get_layout(&events, &big_id).unwrap().unwrap();
    assert_eq!(back.total_bytes, i64::MAX as u64);

    cat.set_layout_status(&events, &id, LayoutStatus::Ready)
        .unwrap();
    let ready = cat.get_layout(&events, &id).unwrap().unwrap();
    assert_eq!(
        (ready.status, ready.published_at_ms),
        (LayoutStatus::Ready, Some(1_000))
    );
}

#[test]
fn set_active_layout_requires_a_ready_layout() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(&dir.path().join("metadata.db"));
    register(&cat, "events", "generate events", false).unwrap();
    let events = name("events");
    let id = LayoutId::derive(&LayoutId::initial(), &sorted_spec());

    let err = cat.set_active_layout(&events, &id).unwrap_err();
    assert!(matches!(err, CatalogError::UnknownLayout { .. }), "{err}");
    let err = cat.set_active_layout(&name("nosuch"), &id).unwrap_err();
    assert!(matches!(err, CatalogError::UnknownTable(_)), "{err}");

    cat.insert_layout(&layout("events", id.clone(), LayoutStatus::Building, 20))
        .unwrap();
    let err = cat.set_active_layout(&events, &id).unwrap_err();
    assert!(matches!(err, CatalogError::Conflict(_)), "{err}");
    assert_eq!(
        cat.require_table(&events).unwrap().active_layout,
        LayoutId::initial()
    );

    cat.set_layout_status(&events, &id, LayoutStatus::Ready)
        .unwrap();
    cat.set_active_layout(&events, &id).unwrap();
    assert_eq!(cat.require_table(&events).unwrap().active_layout, id);

    // The active layout cannot be retired; the old one can.
    let err = cat
        .set_layout_status(&events, &id, LayoutStatus::Retired)
        .unwrap_err();
    assert!(matches!(err, CatalogError::Conflict(_)), "{err}");
    cat.set_layout_status(&events, &LayoutId::initial(), LayoutStatus::Retired)
        .unwrap();
}

#[test]
fn query_log_round_trips_with_scans_and_joins() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(&dir.path().join("metadata.db"));
    let (events, customers) = (name("events"), name("customers"));

    let single = entry(100, "events", &["events"]);
    let join = entry(200, "events", &["events", "customers"]);
    let mut imported = entry(300, "customers", &[]);
    imported.origin = QueryOrigin::Imported;
    imported.latency_ms = f64::INFINITY;
    imported.result_digest = None;
    let mut failed = entry(400, "events", &[]);
    failed.error = Some("column x not found".into());
    failed.metrics.bytes_scanned = u64::MAX;

    let ids: Vec<i64> = [&single, &join, &imported, &failed]
        .iter()
        .map(|e| cat.log_query(e).unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let for_events = cat.queries_for_table(&events, None, None).unwrap();
    let got: Vec<i64> = for_events.iter().map(|q| q.id).collect();
    assert_eq!(got, [ids[0], ids[1], ids[3]]);
    assert_eq!(for_events[0].entry, single);
    assert_eq!(for_events[1].entry, join);
    assert_eq!(for_events[1].entry.metrics.bytes_scanned, 2000);
    assert_eq!(for_events[2].entry.metrics.bytes_scanned, i64::MAX as u64);

    let for_customers = cat.queries_for_table(&customers, None, None).unwrap();
    let got: Vec<i64> = for_customers.iter().map(|q| q.id).collect();
    assert_eq!(got, [ids[1], ids[2]], "the join appears for both tables");
    assert_eq!(for_customers[1].entry, imported);
    assert_eq!(cat.count_queries(&events).unwrap(), 3);
    assert_eq!(cat.count_queries(&customers).unwrap(), 2);

    // since filter (inclusive) and limit (most recent, still oldest first)
    let since: Vec<i64> = cat
        .queries_for_table(&events, Some(200), None)
        .unwrap()
        .iter()
        .map(|q| q.id)
        .collect();
    assert_eq!(since, [ids[1], ids[3]]);
    let last_two: Vec<i64> = cat
        .queries_for_table(&events, None, Some(2))
        .unwrap()
        .iter()
        .map(|q| q.id)
        .collect();
    assert_eq!(last_two, [ids[1], ids[3]]);
    assert!(
        cat.queries_for_table(&events, Some(401), None)
            .unwrap()
            .is_empty()
    );

    // NaN latency survives as NaN.
    let mut nan = entry(500, "nan_table", &[]);
    nan.latency_ms = f64::NAN;
    cat.log_query(&nan).unwrap();
    let back = cat
        .queries_for_table(&name("nan_table"), None, None)
        .unwrap();
    assert!(back[0].entry.latency_ms.is_nan());
}

#[test]
fn logged_queries_read_the_whole_log_in_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(&dir.path().join("metadata.db"));
    assert!(cat.logged_queries(None, 0, None).unwrap().is_empty());
    // Logged out of time order: the log is read in id order all the same.
    let entries = [
        entry(300, "events", &["events"]),
        entry(100, "orders", &["orders", "events"]),
        entry(200, "customers", &[]),
        entry(50, "orders", &["orders"]),
    ];
    let ids: Vec<i64> = entries.iter().map(|e| cat.log_query(e).unwrap()).collect();
    let ids_of = |queries: Vec<dbopt_catalog::LoggedQuery>| -> Vec<i64> {
        queries.iter().map(|q| q.id).collect()
    };

    let all = cat.logged_queries(None, 0, None).unwrap();
    assert_eq!(
        all[1].entry, entries[1],
        "entries round-trip with their scans"
    );
    assert_eq!(ids_of(all), ids);
    assert_eq!(
        ids_of(cat.logged_queries(None, ids[1], None).unwrap()),
        &ids[2..],
        "after_id is exclusive"
    );
    assert_eq!(
        ids_of(cat.logged_queries(None, 0, Some(1)).unwrap()),
        [ids[3]],
        "a limit keeps the newest"
    );
    assert_eq!(
        ids_of(cat.logged_queries(Some(&name("events")), 0, None).unwrap()),
        [ids[0], ids[1]],
        "a table keeps the queries that scanned it"
    );
    assert_eq!(
        ids_of(
            cat.logged_queries(Some(&name("customers")), 0, None)
                .unwrap()
        ),
        [ids[2]],
        "or name it without scans"
    );
    assert!(cat.logged_queries(None, ids[3], None).unwrap().is_empty());
}

#[test]
fn cluster_ids_are_set_per_query_and_per_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(&dir.path().join("metadata.db"));
    let events = name("events");
    let a = cat.log_query(&entry(1, "events", &["events"])).unwrap();
    cat.log_query(&entry(2, "events", &["events"])).unwrap();
    let mut other = entry(3, "events", &["events"]);
    other.fingerprint = "fp_other".into();
    cat.log_query(&other).unwrap();

    assert_eq!(
        cat.set_cluster_ids_for_fingerprint("fp_events", "c1")
            .unwrap(),
        2
    );
    assert!(cat.set_cluster_id(a, "c0").unwrap());
    assert!(!cat.set_cluster_id(a + 1000, "c0").unwrap());
    let clusters: Vec<Option<String>> = cat
        .queries_for_table(&events, None, None)
        .unwrap()
        .into_iter()
        .map(|q| q.entry.cluster_id)
        .collect();
    assert_eq!(clusters, [Some("c0".into()), Some("c1".into()), None]);
}

#[test]
fn two_handles_on_one_file_both_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metadata.db");
    let first = open(&path);
    let second = open(&path);
    register(&first, "events", "generate events", false).unwrap();
    register(&second, "customers", "generate customers", false).unwrap();
    assert_eq!(first.list_tables().unwrap().len(), 2);

    // A third connection holds the write lock for a moment; the catalog waits for it
    // (busy_timeout) instead of failing with SQLITE_BUSY.
    let holder_path = path.clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let mut conn = Connection::open(&holder_path).unwrap();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        tx.commit().unwrap();
    });
    locked_rx.recv().unwrap();
    let writers: Vec<_> = [first, second]
        .into_iter()
        .enumerate()
        .map(|(i, cat)| {
            std::thread::spawn(move || {
                for n in 0..20 {
                    cat.log_query(&entry(i as i64 * 100 + n, "events", &["events"]))
                        .unwrap();
                }
                cat
            })
        })
        .collect();
    holder.join().unwrap();
    let cats: Vec<Catalog> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(cats[0].count_queries(&name("events")).unwrap(), 40);
}

#[test]
fn batch_logging_is_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(&dir.path().join("metadata.db"));
    register(&cat, "events", "test", false).unwrap();
    register(&cat, "customers", "test", false).unwrap();
    let batch = vec![
        entry(10, "events", &["events"]),
        entry(20, "events", &["events", "customers"]),
    ];
    let ids = cat.log_queries(&batch).unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1]);
    let logged = cat
        .queries_for_table(&name("customers"), None, None)
        .unwrap();
    assert_eq!(logged.len(), 1, "the join's scans were stored with it");
    assert_eq!(cat.count_queries(&name("events")).unwrap(), 2);
    assert!(cat.log_queries(&[]).unwrap().is_empty());
}

/// A measured query of cluster `cluster` on `layout` that scanned `bytes` of events.
fn routed(cluster: &str, layout: &LayoutId, bytes: u64, latency_ms: f64) -> QueryLogEntry {
    let mut e = entry(5, "events", &["events"]);
    e.cluster_id = Some(cluster.into());
    e.layout_id = Some(layout.clone());
    e.scans[0].layout_id = layout.clone();
    e.scans[0].metrics.bytes_scanned = bytes;
    e.metrics.bytes_scanned = bytes;
    e.latency_ms = latency_ms;
    e.route = Some(RouteChoice {
        policy: "thompson".into(),
        explored: bytes > 100,
    });
    e
}

#[test]
fn route_stats_sum_every_measured_query_and_rebuild_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(&dir.path().join("m.db"));
    register(&cat, "events", "gen", false).unwrap();
    let events = name("events");
    let sorted = LayoutId::derive(&LayoutId::initial(), &sorted_spec());
    cat.log_query(&routed("c1", &LayoutId::initial(), 300, 4.0))
        .unwrap();
    cat.log_query(&routed("c1", &LayoutId::initial(), 100, 2.0))
        .unwrap();
    cat.log_query(&routed("c1", &sorted, 10, 1.0)).unwrap();
    // Failed, imported and unclustered queries measure nothing.
    let mut failed = routed("c1", &sorted, 10, 1.0);
    failed.error = Some("boom".into());
    cat.log_query(&failed).unwrap();
    let mut imported = routed("c1", &sorted, 10, 1.0);
    imported.origin = QueryOrigin::Imported;
    cat.log_query(&imported).unwrap();
    let mut unclustered = routed("c1", &sorted, 10, 1.0);
    unclustered.cluster_id = None;
    cat.log_query(&unclustered).unwrap();

    let stats = cat.route_stats(&events).unwrap();
    assert_eq!(stats.len(), 2, "{stats:?}");
    let initial = stats
        .iter()
        .find(|s| s.layout_id == LayoutId::initial())
        .unwrap();
    assert_eq!(initial.n, 2);
    assert_eq!(initial.sum_bytes, 400.0);
    assert_eq!(initial.sum_sq_bytes, 300.0 * 300.0 + 100.0 * 100.0);
    assert_eq!(initial.sum_latency_ms, 6.0);
    assert_eq!(initial.explored, 1);
    let on_sorted = stats.iter().find(|s| s.layout_id == sorted).unwrap();
    assert_eq!((on_sorted.n, on_sorted.sum_bytes), (1, 10.0));

    // The log holds the policy, and rebuilding from it gives the same sums.
    let logged = cat.queries_for_table(&events, None, None).unwrap();
    assert_eq!(
        logged[0].entry.route,
        Some(RouteChoice {
            policy: "thompson".into(),
            explored: true
        })
    );
    assert_eq!(cat.rebuild_route_stats(&events).unwrap(), 2);
    let rebuilt = cat.route_stats(&events).unwrap();
    assert_eq!(
        rebuilt
            .iter()
            .map(|s| (s.n, s.sum_bytes, s.sum_sq_bytes, s.explored))
            .collect::<Vec<_>>(),
        stats
            .iter()
            .map(|s| (s.n, s.sum_bytes, s.sum_sq_bytes, s.explored))
            .collect::<Vec<_>>()
    );
}

#[test]
fn two_routers_logging_at_once_keep_counts_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    register(&open(&path), "events", "gen", false).unwrap();
    let per_thread = 150;
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let cat = open(&path);
                for i in 0..per_thread {
                    let bytes = 1 + (i % 7) as u64 + t;
                    cat.log_query(&routed("c1", &LayoutId::initial(), bytes, 1.0))
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let cat = open(&path);
    let stats = cat.route_stats(&name("events")).unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].n, 2 * per_thread as u64);
    let expected: f64 = (0..2u64)
        .flat_map(|t| (0..per_thread).map(move |i| (1 + (i % 7) as u64 + t) as f64))
        .sum();
    assert_eq!(stats[0].sum_bytes, expected);
}

#[test]
fn active_layout_swap_is_compare_and_swap_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(&dir.path().join("m.db"));
    register(&cat, "events", "gen", false).unwrap();
    let events = name("events");
    let initial = LayoutId::initial();
    let sorted = LayoutId::derive(&initial, &sorted_spec());
    cat.insert_layout(&layout("events", sorted.clone(), LayoutStatus::Ready, 20))
        .unwrap();
    let promote = ActiveSwap {
        table: &events,
        expected: &initial,
        to: &sorted,
        kind: ActivationKind::Promote,
        actor: "test",
        reason: "canary passed",
    };
    cat.swap_active_layout(&promote).unwrap();
    assert_eq!(cat.require_table(&events).unwrap().active_layout, sorted);
    // A second promoter that still believes `initial` is active loses and changes nothing.
    let err = cat.swap_active_layout(&promote).unwrap_err();
    assert!(
        matches!(&err, CatalogError::ActiveChanged { found, .. } if found == sorted.as_str()),
        "{err}"
    );
    assert_eq!(cat.require_table(&events).unwrap().active_layout, sorted);
    assert_eq!(cat.activations(&events).unwrap().len(), 1);
    // A layout that is not ready cannot be swapped in.
    let other = LayoutId::derive(&sorted, &sorted_spec());
    cat.insert_layout(&layout("events", other.clone(), LayoutStatus::Failed, 30))
        .unwrap();
    let bad = ActiveSwap {
        expected: &sorted,
        to: &other,
        ..promote.clone()
    };
    assert!(matches!(
        cat.swap_active_layout(&bad).unwrap_err(),
        CatalogError::Conflict(_)
    ));
    let back = ActiveSwap {
        expected: &sorted,
        to: &initial,
        kind: ActivationKind::Rollback,
        ..promote
    };
    cat.swap_active_layout(&back).unwrap();
    let history = cat.activations(&events).unwrap();
    assert_eq!(
        history
            .iter()
            .map(|a| (a.from_layout.clone(), a.to_layout.clone(), a.kind))
            .collect::<Vec<_>>(),
        vec![
            (initial.clone(), sorted.clone(), ActivationKind::Promote),
            (sorted, initial, ActivationKind::Rollback)
        ]
    );
}

#[test]
fn canaries_evaluations_and_decisions_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(&dir.path().join("m.db"));
    register(&cat, "events", "gen", false).unwrap();
    let events = name("events");
    let sorted = LayoutId::derive(&LayoutId::initial(), &sorted_spec());
    let canary = NewCanary {
        table: events.clone(),
        layout_id: sorted.clone(),
        baseline_layout: LayoutId::initial(),
        summary: CanarySummary {
            queries: 8,
            mismatches: 0,
            baseline_bytes: 1000.0,
            candidate_bytes: 250.0,
            reduction: 0.75,
            baseline_latency_ms: 10.0,
            candidate_latency_ms: 4.0,
            latency_change: -0.6,
        },
        verdict: Verdict::Promote,
        reason: "identical results, 75% fewer bytes".into(),
        detail_json: "[]".into(),
    };
    cat.record_canary(&canary).unwrap();
    let got = cat.latest_canary(&events, &sorted).unwrap().unwrap();
    assert_eq!(got.canary, canary);
    assert!(
        cat.latest_canary(&events, &LayoutId::initial())
            .unwrap()
            .is_none()
    );
    let eval = LayoutEval {
        table: events.clone(),
        layout_id: sorted.clone(),
        cluster_id: "*".into(),
        window_start_ms: 0,
        window_end_ms: 1000,
        baseline_layout: LayoutId::initial(),
        objective: "bytes".into(),
        queries: 12,
        avg_latency_ms: 3.0,
        p50_latency_ms: 2.0,
        p95_latency_ms: 5.0,
        p99_latency_ms: 6.0,
        avg_bytes_scanned: 240.0,
        avg_rows_returned: 1.0,
        improvement: Some(0.76),
        reward: Some(0.7),
        regressed: false,
    };
    cat.record_evals(&[
        eval.clone(),
        LayoutEval {
            cluster_id: "c1".into(),
            regressed: true,
            ..eval.clone()
        },
    ])
    .unwrap();
    let all = cat.evals(&events, Some(&sorted), None, 10).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].eval, eval);
    let c1 = cat.evals(&events, None, Some("c1"), 10).unwrap();
    assert!(c1.len() == 1 && c1[0].eval.regressed);
    cat.record_decision(&events, "p1", "propose", "skipped", "keep current", "{}")
        .unwrap();
    let d = cat.decisions(&events, 5).unwrap();
    assert_eq!(
        (d[0].step.as_str(), d[0].decision.as_str()),
        ("propose", "skipped")
    );
}

#[test]
fn pushdown_stats_sum_the_latency_of_each_choice_per_shape_and_layout() {
    let dir = tempfile::tempdir().unwrap();
    let cat = open(&dir.path().join("m.db"));
    register(&cat, "events", "gen", false).unwrap();
    let events = name("events");
    let initial = LayoutId::initial();
    let run = |pushdown: Option<bool>, latency_ms: f64, error: bool| {
        let mut e = entry(5, "events", &["events"]);
        e.pushdown = pushdown;
        e.latency_ms = latency_ms;
        e.error = error.then(|| "boom".to_string());
        cat.log_query(&e).unwrap();
    };
    run(Some(true), 10.0, false);
    run(Some(true), 30.0, false);
    run(Some(false), 8.0, false);
    run(Some(false), 99.0, true); // failed: not measured
    run(None, 99.0, false); // the session's fixed setting: not a choice
    let stats = cat.pushdown_stats(&events, "fp_events", &initial).unwrap();
    assert_eq!(
        stats,
        [
            dbopt_catalog::PushdownStat {
                pushdown: false,
                runs: 1,
                mean_latency_ms: 8.0,
                max_latency_ms: 8.0,
            },
            dbopt_catalog::PushdownStat {
                pushdown: true,
                runs: 2,
                mean_latency_ms: 20.0,
                max_latency_ms: 30.0,
            },
        ]
    );
    assert!(
        cat.pushdown_stats(&events, "fp_other", &initial)
            .unwrap()
            .is_empty()
    );
    let mut logged: Vec<(i64, Option<bool>)> = cat
        .queries_for_table(&events, None, None)
        .unwrap()
        .iter()
        .map(|q| (q.id, q.entry.pushdown))
        .collect();
    logged.sort_by_key(|(id, _)| *id);
    let logged: Vec<Option<bool>> = logged.into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        logged,
        [Some(true), Some(true), Some(false), Some(false), None],
        "each query's choice is kept in the log"
    );
    // Registering the table again forgets what its old rows measured.
    register(&cat, "events", "gen", true).unwrap();
    assert!(
        cat.pushdown_stats(&events, "fp_events", &initial)
            .unwrap()
            .is_empty()
    );
}
