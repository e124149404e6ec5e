//! Queries on an Apache Ballista cluster.
//!
//! A remote [`Session`] plans like a local one (the same tables, options and pruning), but its
//! physical plan is one `DistributedQueryExec`: the logical plan goes to the scheduler, which
//! splits it into stages that the executors run, and the client streams the result back.
//!
//! Guarantees:
//! - A session is only handed out once the scheduler has answered a request: a scheduler that
//!   does not answer, or a server that is not a Ballista scheduler, is an
//!   [`EngineError::Scheduler`] (a configuration error) before any query runs.
//! - Scan metrics come from the executors themselves: after the query, the scheduler's
//!   per-stage operator metrics (summed over tasks) are read back by job id and attributed
//!   to tables by the files each Parquet scan lists. Nothing is estimated.

use crate::execute::ScanCounters;
use crate::{EngineError, EngineRuntime, EngineSettings, Session, new_session_in};
use ballista_core::execution_plans::DistributedQueryExec;
use ballista_core::extension::{SessionConfigExt, SessionStateExt};
use ballista_core::serde::protobuf::operator_metric::Metric;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{
    GetJobMetricsParams, GetJobMetricsResult, GetJobStatusParams, OperatorWithMetrics,
};
use ballista_core::utils::{GrpcClientConfig, create_grpc_client_endpoint};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion_proto::protobuf::LogicalPlanNode;
use std::sync::Arc;
use std::time::Duration;

/// Largest gRPC message the client accepts from the cluster (the cluster's processes use the
/// same bound): a rewrite streams whole sorted batches back, and Ballista's 16 MiB default
/// refuses the wide ones.
pub const GRPC_MESSAGE_BYTES: u32 = 256 << 20;

/// How long a scheduler has to answer the first request before it counts as not answering.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The scheduler's host and port for what a user may write: `host:port`, `df://host:port`
/// (Ballista's own scheme) or `http://host:port`. The port defaults to Ballista's 50050.
pub fn scheduler_host_port(given: &str) -> Result<(String, u16), EngineError> {
    let trimmed = given.trim();
    let rest = trimmed
        .strip_prefix("df://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .unwrap_or(trimmed)
        .trim_end_matches('/');
    let bad = |why: &str| {
        EngineError::Scheduler(format!(
            "bad Ballista scheduler address {given:?}: {why} (write host:port, e.g. 127.0.0.1:50050)"
        ))
    };
    if rest.is_empty() {
        return Err(bad("it is empty"));
    }
    if rest.contains("://") {
        return Err(bad("only df:// and http:// are understood"));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => {
            let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
            (host, port)
        }
        None => (rest, 50050),
    };
    if host.is_empty() || host.contains('/') {
        return Err(bad("no host name"));
    }
    Ok((host.to_string(), port))
}

/// The scheduler's gRPC URL (`http://host:port`) for an address [`scheduler_host_port`] takes.
pub fn scheduler_url(given: &str) -> Result<String, EngineError> {
    let (host, port) = scheduler_host_port(given)?;
    Ok(format!("http://{host}:{port}"))
}

/// A session whose queries run on the Ballista cluster behind `scheduler` (any form
/// [`scheduler_url`] takes), configured like a local session from `settings` (pruning,
/// page index, filter pushdown, batch size and target partitions travel with each job).
pub async fn remote_session(
    runtime: &EngineRuntime,
    settings: &EngineSettings,
    scheduler: &str,
) -> Result<Session, EngineError> {
    let url = probe_scheduler(scheduler).await?;
    let local = new_session_in(runtime, settings);
    let mut state = local.ctx().state();
    // Ballista's query planner copies its settings when the state is upgraded: they are set
    // on the config first.
    let config = state.config().clone().upgrade_for_ballista();
    *state.config_mut() = config;
    let options = state.config_mut().options_mut();
    options
        .set(
            "ballista.client.grpc_max_message_size",
            &GRPC_MESSAGE_BYTES.to_string(),
        )
        .map_err(|e| EngineError::Scheduler(format!("Ballista client settings: {e}")))?;
    // Strings read as Utf8, not Utf8View: a shuffle writes each sliced view array with every
    // data buffer it points into.
    options.execution.parquet.schema_force_view_types = false;
    let state = state
        .upgrade_for_ballista(url.clone())
        .map_err(|e| EngineError::Scheduler(format!("Ballista scheduler at {url}: {e}")))?;
    let ctx = SessionContext::new_with_state(state);
    Ok(Session::remote(ctx, url))
}

/// Checks that a Ballista scheduler answers at `scheduler` (any form [`scheduler_url`] takes);
/// returns its gRPC URL.
pub async fn probe_scheduler(scheduler: &str) -> Result<String, EngineError> {
    let url = scheduler_url(scheduler)?;
    check_scheduler(&url).await?;
    Ok(url)
}

/// Asks the scheduler for the status of a job that does not exist: any gRPC answer proves a
/// Ballista scheduler listens; no connection within [`CONNECT_TIMEOUT`] is a configuration
/// error naming the address.
async fn check_scheduler(url: &str) -> Result<(), EngineError> {
    let not_answering = |why: String| {
        EngineError::Scheduler(format!(
            "the Ballista scheduler at {url} did not answer ({why}): start one \
             (`dbopt cluster scheduler`) or fix the address (--ballista, config key ballista)"
        ))
    };
    let probe = async {
        let mut client = connect(url).await?;
        client
            .get_job_status(GetJobStatusParams {
                job_id: "dbopt-probe".to_string(),
            })
            .await
            .map(|_| ())
            .map_err(|status| status.to_string())
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, probe).await {
        Err(_) => Err(not_answering(format!(
            "no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
        Ok(Err(why)) if why.contains("not found") || why.contains("NotFound") => Ok(()),
        Ok(Err(why)) if why.contains("transport") || why.contains("Unavailable") => {
            Err(not_answering(why))
        }
        Ok(Err(why)) => Err(EngineError::Scheduler(format!(
            "{url} answered, but not as a Ballista scheduler ({why}): check the address"
        ))),
        Ok(Ok(())) => Ok(()),
    }
}

async fn connect(url: &str) -> Result<SchedulerGrpcClient<tonic::transport::Channel>, String> {
    let config = GrpcClientConfig {
        connect_timeout_seconds: CONNECT_TIMEOUT.as_secs(),
        ..GrpcClientConfig::default()
    };
    let endpoint =
        create_grpc_client_endpoint(url.to_string(), Some(&config)).map_err(|e| e.to_string())?;
    let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
    Ok(SchedulerGrpcClient::new(channel))
}

/// The job a finished distributed plan ran as (None for a plan that ran locally).
pub(crate) fn job_of(plan: &Arc<dyn ExecutionPlan>) -> Option<String> {
    plan.downcast_ref::<DistributedQueryExec<LogicalPlanNode>>()
        .and_then(DistributedQueryExec::job_id)
        .map(|id| id.to_string())
}

/// What each Parquet scan of a finished job read, keyed by the first file it lists (the
/// executors' metrics carry no file names: a scan is attributed by the files in its plan).
pub(crate) async fn job_scan_counters(
    scheduler: &str,
    job: &str,
) -> Result<Vec<(String, ScanCounters)>, EngineError> {
    let failed = |why: String| {
        EngineError::ClusterFailed(format!(
            "reading the metrics of Ballista job {job} from {scheduler} failed: {why}"
        ))
    };
    let mut client = connect(scheduler).await.map_err(failed)?;
    let metrics: GetJobMetricsResult = client
        .get_job_metrics(GetJobMetricsParams {
            job_id: job.to_string(),
        })
        .await
        .map_err(|s| failed(s.to_string()))?
        .into_inner();
    Ok(metrics
        .stages
        .iter()
        .flat_map(|stage| &stage.operators)
        .filter(|op| op.operator_type == "DataSourceExec")
        .filter_map(scan_counters)
        .collect())
}

/// One Parquet scan's counters and the first file its description lists.
fn scan_counters(op: &OperatorWithMetrics) -> Option<(String, ScanCounters)> {
    let file = first_file(&op.operator_desc)?;
    let mut c = ScanCounters::default();
    let mut ranges_opened = None;
    for metric in &op.metrics {
        match &metric.metric {
            Some(Metric::Count(count)) if count.name == "bytes_scanned" => c.bytes += count.value,
            Some(Metric::PruningMetrics(p)) => match p.name.as_str() {
                "row_groups_pruned_bloom_filter" => c.row_groups_read += p.matched,
                "limit_pruned_row_groups" => c.limit_pruned += p.pruned,
                "page_index_rows_pruned" => c.page_rows_pruned += p.pruned,
                "files_ranges_pruned_statistics" => {
                    *ranges_opened.get_or_insert(0) += p.matched;
                }
                _ => {}
            },
            _ => {}
        }
    }
    // File ranges opened and not pruned: a file split across partitions counts once per
    // range, which the caller caps at the layout's file count.
    c.files_read = ranges_opened.unwrap_or(u64::from(c.bytes > 0));
    Some((file, c))
}

/// The first file in a `DataSourceExec` description (`file_groups={2 groups: [[/a/b.parquet,
/// ...`), with its byte range (`:0..100`) removed.
fn first_file(desc: &str) -> Option<String> {
    let start = desc.find("[[")? + 2;
    let rest = &desc[start..];
    let end = rest.find([',', ']'])?;
    let file = rest[..end].trim();
    let file = match file.rfind(':') {
        Some(i) if file[i + 1..].contains("..") => &file[..i],
        _ => file,
    };
    (!file.is_empty()).then(|| file.to_string())
}

/// Whether a failed distributed query failed for the cluster's reasons (a lost executor, a
/// broken connection) rather than the query's own.
pub(crate) fn is_cluster_failure(message: &str) -> bool {
    const MARKS: [&str; 6] = [
        "transport error",
        "Unavailable",
        "Connection refused",
        "executor lost",
        "Executor lost",
        "Failed to connect",
    ];
    MARKS.iter().any(|m| message.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballista_core::serde::protobuf::{NamedCount, NamedPruningMetrics, OperatorMetric};

    #[test]
    fn scheduler_addresses_in_every_written_form() {
        assert_eq!(
            scheduler_url("127.0.0.1:50051").unwrap(),
            "http://127.0.0.1:50051"
        );
        assert_eq!(scheduler_url("df://host:7").unwrap(), "http://host:7");
        assert_eq!(scheduler_url("http://host:7/").unwrap(), "http://host:7");
        assert_eq!(scheduler_url("host").unwrap(), "http://host:50050");
        for bad in ["", "s3://x:1", "host:port", ":50050"] {
            let e = scheduler_url(bad).unwrap_err().to_string();
            assert!(e.contains("host:port"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_first_file_of_a_scan_description() {
        let desc = "DataSourceExec: file_groups={2 groups: [[data/t/layout_1/part-0.parquet:0..1024, \
                    data/t/layout_1/part-1.parquet], [data/t/layout_1/part-2.parquet]]}, \
                    projection=[a], file_type=parquet";
        assert_eq!(
            first_file(desc).as_deref(),
            Some("data/t/layout_1/part-0.parquet")
        );
        let whole = "DataSourceExec: file_groups={1 group: [[/abs/x=1/f.parquet]]}";
        assert_eq!(first_file(whole).as_deref(), Some("/abs/x=1/f.parquet"));
        assert_eq!(first_file("DataSourceExec: partitions=1"), None);
    }

    #[test]
    fn a_scan_s_counters_sum_its_metrics() {
        let count = |name: &str, value| OperatorMetric {
            partition: None,
            metric: Some(Metric::Count(NamedCount {
                name: name.to_string(),
                value,
            })),
        };
        let pruning = |name: &str, pruned, matched| OperatorMetric {
            partition: None,
            metric: Some(Metric::PruningMetrics(NamedPruningMetrics {
                name: name.to_string(),
                pruned,
                matched,
            })),
        };
        let op = OperatorWithMetrics {
            depth: 2,
            operator_type: "DataSourceExec".to_string(),
            operator_desc: "DataSourceExec: file_groups={1 group: [[/d/f.parquet]]}".to_string(),
            metrics: vec![
                count("bytes_scanned", 100),
                count("bytes_scanned", 50),
                pruning("row_groups_pruned_bloom_filter", 1, 3),
                pruning("files_ranges_pruned_statistics", 2, 4),
                pruning("page_index_rows_pruned", 500, 10),
            ],
        };
        let (file, c) = scan_counters(&op).unwrap();
        assert_eq!(file, "/d/f.parquet");
        assert_eq!(
            (c.bytes, c.row_groups_read, c.files_read, c.page_rows_pruned),
            (150, 3, 4, 500)
        );
    }
}
