//! The learning loop through the library facade on small generated tables: a canary rejects
//! broken candidates, routing spreads queries over live layouts and logs its choices, and
//! autopilot rolls back an active layout after injected regressions.

use arrow::array::{Array, Int64Array, RecordBatch};
use arrow::compute::concat_batches;
use dbopt::NoProgress;
use dbopt::Workspace;
use dbopt::generate::GenerateOptions;
use dbopt::migrate::{EnqueueRequest, SpecSource};
use dbopt::workload::{Routing, WorkloadOptions};
use dbopt_catalog::{LayoutRecord, LayoutStatus, MigrationMode, QueryOrigin, Verdict};
use dbopt_core::{
    Clock, Config, LayoutId, LayoutManifest, LayoutSpec, ManualClock, SortKey, SystemClock,
    TableName,
};
use dbopt_engine::LayoutWriter;
use dbopt_engine::writer::write_manifest;
use dbopt_migrate::WorkerOptions;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

const ROWS: u64 = 20_000;
const ROW_GROUP: usize = 1024;

fn events() -> TableName {
    TableName::new("events").unwrap()
}

fn open(dir: &std::path::Path, clock: Arc<dyn Clock>) -> Workspace {
    let config = Config::with_dirs(&dir.join("data"), &dir.join("metadata.db"));
    Workspace::open_with_clock(config, clock).unwrap()
}

async fn generate(ws: &Workspace) {
    ws.generate_events(
        &GenerateOptions {
            table: events(),
            customers_table: TableName::new("customers").unwrap(),
            num_rows: ROWS,
            seed: 5,
            order: dbopt_data::events::RowOrder::Shuffled,
            replace: false,
            rows_per_file: None,
            row_group_rows: Some(ROW_GROUP),
        },
        &NoProgress,
    )
    .await
    .unwrap();
}

fn workload(n: u64, seed: u64, routing: Option<Routing>) -> WorkloadOptions {
    WorkloadOptions {
        table: events(),
        customers_table: TableName::new("customers").unwrap(),
        num_queries: n,
        seed,
        routing,
        exclude_templates: Vec::new(),
        layout: None,
    }
}

fn sort_spec(column: &str) -> LayoutSpec {
    LayoutSpec {
        sort_by: vec![SortKey {
            column: column.into(),
            descending: false,
        }],
        row_group_rows: Some(ROW_GROUP),
        ..Default::default()
    }
}

/// Builds a real candidate sorted on `column` through the migration queue; returns its id.
async fn build_sorted(ws: &Workspace, column: &str) -> LayoutId {
    let report = ws
        .enqueue_migration(&EnqueueRequest {
            table: events(),
            spec: SpecSource::Given(sort_spec(column)),
            mode: MigrationMode::Full,
            batch_files: None,
            rows_per_file: None,
            activate: false,
            dry_run: false,
        })
        .unwrap();
    let options = WorkerOptions {
        owner: "test".into(),
        keep_polling: false,
        sleep: Duration::from_millis(10),
        max_jobs: None,
        table: Some(events()),
    };
    let done = ws
        .run_migration_worker(&options, &AtomicBool::new(false))
        .await
        .unwrap();
    assert_eq!(done.done.len(), 1, "{:?}", done.failed);
    assert!(!done.done[0].activated, "published as a candidate");
    report.plan.target_layout
}

/// Writes `batch` as a layout of events whose manifest claims the initial layout's digest
/// (damage that escaped verification), and registers it as ready.
fn register_broken(ws: &Workspace, batch: &RecordBatch, marker: &str) -> LayoutId {
    let table = events();
    let initial = ws.layout_manifest(&table, &LayoutId::initial()).unwrap();
    let spec = sort_spec(marker);
    let id = LayoutId::derive(&LayoutId::initial(), &spec);
    let dir = ws.layout_dir(&table, &id);
    let mut writer = LayoutWriter::create(&dir, batch.schema(), &spec, 1 << 30).unwrap();
    writer.write(batch).unwrap();
    let written = writer.finish().unwrap();
    let manifest = LayoutManifest {
        layout_id: id.clone(),
        source_layout: Some(LayoutId::initial()),
        spec,
        files: written.files,
        ..initial
    };
    write_manifest(&dir, &manifest).unwrap();
    let path = format!("events/{}", id.dir_name());
    let record = LayoutRecord::from_manifest(&manifest, path, LayoutStatus::Ready).unwrap();
    ws.catalog().insert_layout(&record).unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_rejects_broken_candidates_and_passes_a_real_one() {
    let dir = tempfile::tempdir().unwrap();
    let ws = open(dir.path(), Arc::new(SystemClock));
    generate(&ws).await;
    ws.run_events_workload(&workload(80, 1, None), &NoProgress)
        .await
        .unwrap();
    // Whole-table shapes that any damage shows in, logged often enough to be replayed.
    let session = ws.query_session(&events(), None).await.unwrap();
    for _ in 0..20 {
        for sql in [
            "SELECT count(*) AS n FROM events",
            "SELECT sum(event_id) AS s, sum(amount) AS a FROM events",
        ] {
            session.run(sql, QueryOrigin::Query, None).await.unwrap();
        }
    }
    let all = session
        .execute_unlogged("SELECT * FROM events ORDER BY event_id")
        .await
        .unwrap();
    let all = concat_batches(&all.schema, &all.batches).unwrap();
    drop(session);

    let one_row_removed = register_broken(&ws, &all.slice(1, all.num_rows() - 1), "user_id");
    let ids = all
        .column_by_name("event_id")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    let mut changed: Vec<i64> = ids.values().to_vec();
    changed[7] += 1_000_000;
    let index = all.schema().index_of("event_id").unwrap();
    let mut columns = all.columns().to_vec();
    columns[index] = Arc::new(Int64Array::from(changed));
    let one_value_changed = register_broken(
        &ws,
        &RecordBatch::try_new(all.schema(), columns).unwrap(),
        "session_id",
    );

    for broken in [&one_row_removed, &one_value_changed] {
        let report = ws.canary(&events(), broken, 10, 0.3).await.unwrap();
        assert_eq!(
            report.verdict,
            Verdict::Reject,
            "{}: {}",
            broken,
            report.reason
        );
        assert!(report.summary.mismatches >= 1);
        // A rejected layout is no longer routed to, and promote refuses it without --force.
        let live = dbopt::route::live_layouts(&ws, &events()).unwrap();
        assert!(live.iter().all(|l| &l.id != broken));
        let err = ws
            .promote(&events(), broken, false, "test", "should fail")
            .unwrap_err();
        assert!(
            err.is_user_error() && err.to_string().contains("canary"),
            "{err}"
        );
        assert_eq!(
            ws.require_table(&events()).unwrap().active_layout,
            LayoutId::initial()
        );
    }

    // A real rewrite gives identical results on every shape and prunes the date filters.
    let sorted = build_sorted(&ws, "event_date").await;
    let report = ws.canary(&events(), &sorted, 12, 0.3).await.unwrap();
    assert_eq!(report.summary.mismatches, 0, "{:?}", report.queries);
    assert!(report.summary.reduction > 0.0, "{:?}", report.summary);
    ws.promote(&events(), &sorted, false, "test", "canary passed")
        .unwrap();
    assert_eq!(ws.require_table(&events()).unwrap().active_layout, sorted);
    // Rollback goes back to the layout it replaced.
    let back = ws.rollback(&events(), None, "test", "by hand").unwrap();
    assert_eq!(back.to, LayoutId::initial());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_spreads_queries_and_logs_each_choice() {
    let dir = tempfile::tempdir().unwrap();
    let ws = open(dir.path(), Arc::new(SystemClock));
    generate(&ws).await;
    ws.run_events_workload(&workload(60, 1, None), &NoProgress)
        .await
        .unwrap();
    let sorted = build_sorted(&ws, "event_date").await;
    let mut settings = ws.loop_settings().unwrap();
    settings.policy = dbopt_route::Policy::EpsilonGreedy;
    settings.params.exploration_rate = 0.5;
    let routing = Routing { settings, seed: 3 };
    let summary = ws
        .run_events_workload(&workload(80, 2, Some(routing)), &NoProgress)
        .await
        .unwrap();
    assert_eq!(summary.errors, 0, "{:?}", summary.first_errors);
    let on_sorted = summary
        .per_layout
        .get(&format!("events@{sorted}"))
        .copied()
        .unwrap_or(0);
    assert!(on_sorted > 0 && on_sorted < 80, "{:?}", summary.per_layout);
    let logged = ws
        .catalog()
        .queries_for_table(&events(), None, Some(80))
        .unwrap();
    let routed: Vec<_> = logged
        .iter()
        .filter_map(|q| q.entry.route.as_ref())
        .collect();
    assert!(!routed.is_empty());
    assert!(routed.iter().all(|r| r.policy == "epsilon-greedy"));
    assert!(routed.iter().any(|r| r.explored) && routed.iter().any(|r| !r.explored));
    // Every measured query landed in the route sums of its (cluster, layout).
    let stats = ws.catalog().route_stats(&events()).unwrap();
    let counted: u64 = stats.iter().map(|s| s.n).sum();
    let measured = ws
        .catalog()
        .queries_for_table(&events(), None, None)
        .unwrap()
        .iter()
        .filter(|q| q.entry.cluster_id.is_some() && q.entry.error.is_none())
        .count() as u64;
    assert_eq!(counted, measured);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autopilot_rolls_back_after_injected_regressions() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let ws = open(dir.path(), Arc::new(clock.clone()));
    generate(&ws).await;
    ws.run_events_workload(&workload(60, 1, None), &NoProgress)
        .await
        .unwrap();
    let sorted = build_sorted(&ws, "event_date").await;
    ws.promote(&events(), &sorted, true, "test", "set up")
        .unwrap();
    let mut settings = ws.loop_settings().unwrap();
    settings.window_ms = 60_000;
    settings.max_layouts = 1; // no new rewrites in this test
    let template = ws
        .catalog()
        .queries_for_table(&events(), None, None)
        .unwrap()
        .into_iter()
        .find(|q| q.entry.cluster_id.is_some())
        .unwrap()
        .entry;
    for window in 0..3 {
        clock.advance(120_000); // the previous window's queries fall out
        let now = clock.now_ms();
        for i in 0..10 {
            for (layout, bytes) in [(LayoutId::initial(), 100), (sorted.clone(), 50_000)] {
                let mut e = template.clone();
                e.ts_ms = now - 1_000 - i;
                e.layout_id = Some(layout.clone());
                e.scans[0].layout_id = layout;
                e.scans[0].metrics.bytes_scanned = bytes;
                e.metrics.bytes_scanned = bytes;
                ws.catalog().log_query(&e).unwrap();
            }
        }
        let pass = ws.autopilot_pass(&events(), &settings).await.unwrap();
        let rolled = pass.steps.iter().any(|s| s.step == "rollback");
        assert_eq!(rolled, window == 2, "window {window}: {:?}", pass.steps);
    }
    assert_eq!(
        ws.require_table(&events()).unwrap().active_layout,
        LayoutId::initial()
    );
    let last = ws.catalog().activations(&events()).unwrap().pop().unwrap();
    assert_eq!(last.kind, dbopt_catalog::ActivationKind::Rollback);
    assert!(last.reason.contains("regressed"), "{}", last.reason);
    let decisions = ws.catalog().decisions(&events(), 100).unwrap();
    assert!(
        decisions
            .iter()
            .any(|d| d.step == "rollback" && d.decision == "rolled back")
    );
}
