//! Executes read-only SQL and reads what it cost from DataFusion's own Parquet scan metrics.

use crate::profile::QueryProfile;
use crate::register::RegisteredLayout;
use crate::result_digest::digest_batches;
use crate::session::{Session, StatementTimeout};
use crate::{EngineError, check_read_only};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::metrics::MetricValue;
use datafusion::physical_plan::{ExecutionPlan, collect};
use dbopt_core::{LayoutId, RowDigest, ScanMetrics};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one query scanned of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableScanMetrics {
    /// The table.
    pub table: String,
    /// The layout read.
    pub layout_id: LayoutId,
    /// Bytes, files and row groups read and skipped.
    pub metrics: ScanMetrics,
}

/// The result of a query with its measured cost.
#[derive(Debug, Clone)]
pub struct QueryOutcome {
    /// Result schema.
    pub schema: SchemaRef,
    /// Result batches.
    pub batches: Vec<RecordBatch>,
    /// Rows returned.
    pub rows: u64,
    /// Wall time from planning to the last batch.
    pub latency: Duration,
    /// Order-insensitive digest of the result.
    pub digest: RowDigest,
    /// One entry per registered table the query scanned.
    pub scans: Vec<TableScanMetrics>,
    /// Where the time went, per operator.
    pub profile: QueryProfile,
}

/// Runs `sql` in `session`, where `tables` are the registered layouts (to attribute scan
/// metrics).
pub async fn execute_query(
    session: &Session,
    sql: &str,
    tables: &[RegisteredLayout],
) -> Result<QueryOutcome, EngineError> {
    check_read_only(sql)?;
    let ctx = session.ctx();
    let timeout = ctx
        .state()
        .config()
        .get_extension::<StatementTimeout>()
        .map(|t| t.0);
    let Some(timeout) = timeout else {
        return run_query(session, sql, tables, false).await;
    };
    // The deadline is an OS thread, not a tokio timer: while DataFusion operators keep every
    // worker busy in one long poll (a big cross join), tokio's timer is not driven and a
    // `tokio::time::timeout` would never fire. The thread wakes this future directly.
    let deadline = Deadline::start(timeout);
    let query = std::pin::pin!(run_query(session, sql, tables, true));
    match futures::future::select(query, deadline.fired).await {
        futures::future::Either::Left((result, _)) => result,
        // Dropping the query future aborts its execution task (see `AbortOnDrop`).
        futures::future::Either::Right(_) => Err(EngineError::Timeout(timeout)),
    }
}

/// Fires `fired` after a duration, from a thread of its own; dropping the `Deadline` before
/// then ends the thread at once (so a long timeout leaves no sleeping threads behind).
struct Deadline {
    _cancel: std::sync::mpsc::Sender<()>,
    fired: futures::future::BoxFuture<'static, ()>,
}

impl Deadline {
    fn start(after: Duration) -> Self {
        let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
        let (fire, fired) = futures::channel::oneshot::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("dbopt-deadline".into())
            .spawn(move || {
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    cancelled.recv_timeout(after)
                {
                    let _ = fire.send(());
                }
            });
        let fired: futures::future::BoxFuture<'static, ()> = match spawned {
            Ok(_) => Box::pin(async move {
                // The sender dropped unsent only when the query finished first.
                if fired.await.is_err() {
                    std::future::pending::<()>().await;
                }
            }),
            // No thread to spare: fall back to tokio's timer.
            Err(_) => Box::pin(tokio::time::sleep(after)),
        };
        Self {
            _cancel: cancel,
            fired,
        }
    }
}

/// Plans and runs `sql`; when `in_task` (a statement timeout applies) the execution runs in
/// its own task, aborted (which cancels DataFusion's partition tasks at their next yield) when
/// this future is dropped at the deadline.
async fn run_query(
    session: &Session,
    sql: &str,
    tables: &[RegisteredLayout],
    in_task: bool,
) -> Result<QueryOutcome, EngineError> {
    let ctx = session.ctx();
    let started = Instant::now();
    let df = ctx.sql(sql).await.map_err(EngineError::from_plan)?;
    let optimized = df
        .clone()
        .into_optimized_plan()
        .map_err(EngineError::from_plan)?;
    let scanned_tables = scanned_table_names(&optimized);
    let plan = df
        .create_physical_plan()
        .await
        .map_err(EngineError::from_plan)?;
    let batches = if in_task {
        // A task of its own: dropping the guard (at the deadline) aborts the work.
        let mut task = AbortOnDrop(tokio::spawn(collect(plan.clone(), ctx.task_ctx())));
        match (&mut task.0).await {
            Ok(result) => result.map_err(|e| exec_error(session, e))?,
            Err(join) => {
                return Err(EngineError::Execution(format!("query task failed: {join}")));
            }
        }
    } else {
        collect(plan.clone(), ctx.task_ctx())
            .await
            .map_err(|e| exec_error(session, e))?
    };
    let latency = started.elapsed();
    let schema = plan.schema();
    let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
    let digest = digest_batches(&batches)?;
    let per_file = scan_counters(session, &plan).await?;
    let scans = attribute_scans(&per_file, tables, &scanned_tables);
    let profile = QueryProfile::of_plan(&plan, ctx.state().config().target_partitions());
    Ok(QueryOutcome {
        schema,
        batches,
        rows,
        latency,
        digest,
        scans,
        profile,
    })
}

/// Aborts a spawned task when dropped (on timeout or when the caller goes away).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Names of the tables an optimized logical plan scans (views already inlined).
pub(crate) fn scanned_table_names(plan: &LogicalPlan) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            names.insert(scan.table_name.table().to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    names
}

/// An execution error; on a Ballista session, one the cluster caused (not the query) is the
/// machine's failure, and a cluster that cannot read the object store is a setting to fix.
fn exec_error(session: &Session, e: datafusion::error::DataFusionError) -> EngineError {
    let err = EngineError::from_exec(e);
    match (session.scheduler(), &err) {
        (Some(scheduler), EngineError::Execution(m))
            if crate::distributed::is_cluster_failure(m) =>
        {
            EngineError::ClusterFailed(format!(
                "the Ballista cluster at {scheduler} failed the query: {m}"
            ))
        }
        (Some(scheduler), EngineError::Execution(m)) if m.contains("Object Store error") => {
            EngineError::Scheduler(format!(
                "the Ballista cluster at {scheduler} could not read the object store: start its \
                 scheduler and executors with the store's settings (AWS_ENDPOINT_URL, \
                 AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, or the cloud's own) \
                 as dbopt has them ({})",
                dbopt_core::text::first_line(m)
            ))
        }
        _ => err,
    }
}

/// What a finished plan read, per scanned file: from the plan's own metrics when it ran here,
/// from the scheduler's job metrics when it ran on a Ballista cluster.
async fn scan_counters(
    session: &Session,
    plan: &Arc<dyn ExecutionPlan>,
) -> Result<Vec<(String, ScanCounters)>, EngineError> {
    if let (Some(scheduler), Some(job)) = (session.scheduler(), crate::distributed::job_of(plan)) {
        return crate::distributed::job_scan_counters(scheduler, &job).await;
    }
    let mut per_file = BTreeMap::new();
    collect_file_metrics(plan, &mut per_file);
    Ok(per_file
        .into_iter()
        .map(|(file, mut c)| {
            c.files_read = u64::from(c.bytes > 0);
            (file, c)
        })
        .collect())
}

/// What a scan read of one file (or, on a cluster, of the files one scan operator lists).
#[derive(Debug, Default)]
pub(crate) struct ScanCounters {
    /// Bytes read.
    pub bytes: u64,
    /// Row groups read (after statistics and bloom filters).
    pub row_groups_read: u64,
    /// Row groups a LIMIT let the scan skip.
    pub limit_pruned: u64,
    /// Rows the page index skipped.
    pub page_rows_pruned: u64,
    /// Files read.
    pub files_read: u64,
}

fn collect_file_metrics(plan: &Arc<dyn ExecutionPlan>, out: &mut BTreeMap<String, ScanCounters>) {
    if let Some(metrics) = plan.metrics() {
        for metric in metrics.iter() {
            let Some(file) = metric
                .labels()
                .iter()
                .find(|l| l.name() == "filename")
                .map(|l| l.value().to_string())
            else {
                continue;
            };
            let c = out.entry(file).or_default();
            match metric.value() {
                MetricValue::Count { name, count } if name == "bytes_scanned" => {
                    c.bytes += count.value() as u64;
                }
                MetricValue::PruningMetrics {
                    name,
                    pruning_metrics,
                } => match name.as_ref() {
                    "row_groups_pruned_bloom_filter" => {
                        c.row_groups_read += pruning_metrics.matched() as u64;
                    }
                    "limit_pruned_row_groups" => c.limit_pruned += pruning_metrics.pruned() as u64,
                    "page_index_rows_pruned" => {
                        c.page_rows_pruned += pruning_metrics.pruned() as u64;
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    for child in plan.children() {
        collect_file_metrics(child, out);
    }
}

/// Whether `file` (a path as a scan names it, with or without its leading `/`) lies under
/// `dir`.
pub(crate) fn file_in_dir(file: &str, dir: &std::path::Path) -> bool {
    let dir = dir.display().to_string();
    file.trim_start_matches('/')
        .strip_prefix(dir.trim_start_matches('/'))
        .is_some_and(|rest| rest.starts_with('/'))
}

fn attribute_scans(
    per_file: &[(String, ScanCounters)],
    tables: &[RegisteredLayout],
    scanned: &BTreeSet<String>,
) -> Vec<TableScanMetrics> {
    let mut scans = Vec::new();
    for t in tables {
        let internal_prefix = format!("__{}_", t.table);
        let is_scanned = scanned
            .iter()
            .any(|s| s == &t.table || s.starts_with(&internal_prefix));
        if !is_scanned {
            continue;
        }
        let mut m = ScanMetrics {
            files_total: t.files_total,
            row_groups_total: t.row_groups_total,
            ..Default::default()
        };
        let mut files_read = 0u64;
        let mut row_groups_read = 0u64;
        for (file, c) in per_file {
            if !file_in_dir(file, &t.dir) {
                continue;
            }
            m.bytes_scanned += c.bytes;
            m.rows_pruned_by_page_index += c.page_rows_pruned;
            row_groups_read += c.row_groups_read.saturating_sub(c.limit_pruned);
            files_read += c.files_read;
        }
        let files_read = files_read.min(t.files_total);
        m.files_pruned = t.files_total.saturating_sub(files_read);
        m.row_groups_pruned = t.row_groups_total.saturating_sub(row_groups_read);
        scans.push(TableScanMetrics {
            table: t.table.clone(),
            layout_id: t.layout_id.clone(),
            metrics: m,
        });
    }
    scans
}
