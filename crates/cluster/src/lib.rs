//! dbopt-cluster: Apache Ballista's scheduler and executor, run as dbopt processes.
//!
//! `dbopt cluster scheduler` and `dbopt cluster executor` start the real Ballista processes
//! (the `ballista-scheduler` and `ballista-executor` crates at the workspace's DataFusion
//! major), so a cluster needs no second build of DataFusion and reads the same Parquet. The
//! client side, a session whose queries run on the cluster, is the engine's
//! (`dbopt_engine::remote_session`).
//!
//! Each function here runs until its process is stopped; a port that cannot be bound or a
//! scheduler the executor cannot reach ends it with a [`ClusterError`].
//!
//! Both processes resolve object-storage URLs (`s3://`, `gs://`, `az://`) through
//! [`EnvStoreRegistry`]: a scheduler lists a remote `DATA_DIR`'s files when it plans and an
//! executor reads them, each with the credentials and endpoint of its own environment.

use ballista_core::error::BallistaError;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use dbopt_engine::store::EnvStoreRegistry;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Largest gRPC message a scheduler or executor sends or accepts (plans naming many files,
/// Flight batches of a sorted rewrite). Clients set the same through `dbopt_engine`.
pub const GRPC_MESSAGE_BYTES: u32 = 256 << 20;

/// Why a cluster process could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Settings that cannot work (a bad address, a port in use, a scheduler that does not
    /// answer): the user's to fix.
    #[error("{0}")]
    Config(String),
    /// The process failed while serving.
    #[error("{0}")]
    Failed(String),
}

impl ClusterError {
    /// Whether the user can fix it by changing the settings (exit code 2) rather than a
    /// failure of the machine (exit code 1).
    pub fn is_user_error(&self) -> bool {
        matches!(self, ClusterError::Config(_))
    }
}

/// Where a scheduler listens.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address to bind (e.g. 127.0.0.1).
    pub bind_host: String,
    /// gRPC port clients and executors connect to.
    pub port: u16,
}

/// Runs a Ballista scheduler (in-memory cluster state, one process) until stopped.
pub async fn run_scheduler(options: &SchedulerOptions) -> Result<(), ClusterError> {
    let addr: SocketAddr = format!("{}:{}", options.bind_host, options.port)
        .parse()
        .map_err(|e| {
            ClusterError::Config(format!(
                "bad scheduler address {}:{}: {e} (--bind takes an IP address)",
                options.bind_host, options.port
            ))
        })?;
    check_port_free(addr, "--port")?;
    let config = SchedulerConfig {
        grpc_server_max_decoding_message_size: GRPC_MESSAGE_BYTES,
        grpc_server_max_encoding_message_size: GRPC_MESSAGE_BYTES,
        grpc_client_max_message_size: GRPC_MESSAGE_BYTES,
        // Executors drop a finished job's shuffle files a minute after it ends (Ballista's
        // default is five), long enough for a rewrite to stream its sorted result back.
        finished_job_data_clean_up_interval_seconds: 60,
        bind_host: options.bind_host.clone(),
        bind_port: options.port,
        external_host: options.bind_host.clone(),
        override_session_builder: Some(Arc::new(session_with_object_stores(Arc::new(
            EnvStoreRegistry::new(),
        )))),
        ..SchedulerConfig::default()
    };
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(failed("starting the scheduler"))?;
    tracing::info!(%addr, "Ballista scheduler listening");
    start_server(cluster, addr, Arc::new(config))
        .await
        .map_err(failed("serving as the scheduler"))
}

/// Where an executor listens, which scheduler it serves and how much it takes on.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// Scheduler host.
    pub scheduler_host: String,
    /// Scheduler port.
    pub scheduler_port: u16,
    /// Address to bind and to advertise to the scheduler.
    pub bind_host: String,
    /// Arrow Flight port the scheduler and other executors fetch results from.
    pub flight_port: u16,
    /// gRPC port the scheduler sends tasks to.
    pub grpc_port: u16,
    /// Tasks run at once (0 = number of cores).
    pub tasks: usize,
    /// Memory pool of the executor's queries, in bytes.
    pub memory_limit: u64,
    /// Where shuffle files go (None = a temporary directory).
    pub work_dir: Option<PathBuf>,
}

/// Runs a Ballista executor until stopped; it registers with the scheduler and runs the
/// tasks it is given.
pub async fn run_executor(options: &ExecutorOptions) -> Result<(), ClusterError> {
    for (port, flag) in [
        (options.flight_port, "--port"),
        (options.grpc_port, "--grpc-port"),
    ] {
        let addr: SocketAddr = format!("{}:{port}", options.bind_host)
            .parse()
            .map_err(|e| {
                ClusterError::Config(format!(
                    "bad executor address {}:{port}: {e} (--bind takes an IP address)",
                    options.bind_host
                ))
            })?;
        check_port_free(addr, flag)?;
    }
    if options.flight_port == options.grpc_port {
        return Err(ClusterError::Config(format!(
            "--port and --grpc-port are both {}: give the executor two ports",
            options.grpc_port
        )));
    }
    // Ballista makes a temporary work directory itself when given none; the runtime below
    // needs its path, so it is made here and lives as long as the executor.
    let temporary = match &options.work_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(|e| {
            ClusterError::Failed(format!("cannot create the executor's work directory: {e}"))
        })?),
    };
    let work_dir = options
        .work_dir
        .clone()
        .or_else(|| temporary.as_ref().map(|t| t.path().to_path_buf()))
        .unwrap_or_default();
    let tasks = if options.tasks == 0 {
        std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
    } else {
        options.tasks
    };
    let config = ExecutorProcessConfig {
        bind_host: options.bind_host.clone(),
        external_host: Some(options.bind_host.clone()),
        port: options.flight_port,
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler_host.clone(),
        scheduler_port: options.scheduler_port,
        scheduler_connect_timeout_seconds: 10,
        vcores: tasks,
        work_dir: Some(work_dir.display().to_string()),
        override_runtime_producer: Some(runtime_with_object_stores(
            work_dir.clone(),
            Arc::new(EnvStoreRegistry::new()),
        )),
        memory_pool_size: Some(options.memory_limit),
        // A rewrite streams whole sorted batches back: Ballista's 16 MiB default refuses
        // the wide ones.
        grpc_max_encoding_message_size: GRPC_MESSAGE_BYTES,
        grpc_max_decoding_message_size: GRPC_MESSAGE_BYTES,
        executor_heartbeat_interval_seconds: 5,
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| match e {
            BallistaError::Configuration(_) | BallistaError::GrpcConnectionError(_) => {
                ClusterError::Config(format!(
                    "the executor could not join the scheduler at {}:{}: {e} (start it first: \
                     `dbopt cluster scheduler`, or fix --scheduler)",
                    options.scheduler_host, options.scheduler_port
                ))
            }
            other => ClusterError::Failed(format!("executor failed: {other}")),
        })
}

/// The scheduler's sessions: Ballista's default, with a runtime that opens buckets through
/// `stores` (shared by every session, so each bucket's store is built once).
fn session_with_object_stores(
    stores: Arc<EnvStoreRegistry>,
) -> impl Fn(
    datafusion::prelude::SessionConfig,
) -> datafusion::error::Result<datafusion::execution::SessionState>
+ Send
+ Sync {
    move |config| {
        let state = ballista_core::utils::default_session_builder(config)?;
        let runtime = RuntimeEnvBuilder::new()
            .with_object_store_registry(stores.clone())
            .build_arc()?;
        Ok(SessionStateBuilder::new_from_existing(state)
            .with_runtime_env(runtime)
            .build())
    }
}

/// The executor's task runtimes: spill files under `work_dir` (as Ballista's default) and
/// buckets opened through `stores`. Ballista applies the memory pool on top.
fn runtime_with_object_stores(
    work_dir: PathBuf,
    stores: Arc<EnvStoreRegistry>,
) -> ballista_core::RuntimeProducer {
    Arc::new(move |_config| {
        RuntimeEnvBuilder::new()
            .with_temp_file_path(work_dir.clone())
            .with_object_store_registry(stores.clone())
            .build_arc()
    })
}

/// A clear error now, rather than Ballista's after it has started half its services.
fn check_port_free(addr: SocketAddr, flag: &str) -> Result<(), ClusterError> {
    std::net::TcpListener::bind(addr).map(drop).map_err(|e| {
        ClusterError::Config(format!(
            "cannot listen on {addr}: {e} (choose another {flag})"
        ))
    })
}

fn failed(doing: &'static str) -> impl Fn(BallistaError) -> ClusterError {
    move |e| ClusterError::Failed(format!("{doing}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_in_use_is_refused_with_the_flag_to_change() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let e = run_scheduler(&SchedulerOptions {
            bind_host: "127.0.0.1".into(),
            port,
        })
        .await
        .unwrap_err();
        assert!(e.is_user_error());
        assert!(e.to_string().contains("choose another --port"), "{e}");
        let e = run_executor(&ExecutorOptions {
            scheduler_host: "127.0.0.1".into(),
            scheduler_port: 1,
            bind_host: "127.0.0.1".into(),
            flight_port: 0,
            grpc_port: port,
            tasks: 1,
            memory_limit: 64 << 20,
            work_dir: None,
        })
        .await
        .unwrap_err();
        assert!(e.to_string().contains("--grpc-port"), "{e}");
    }

    #[tokio::test]
    async fn a_bad_bind_address_names_the_flag() {
        let e = run_scheduler(&SchedulerOptions {
            bind_host: "not-an-ip".into(),
            port: 1,
        })
        .await
        .unwrap_err();
        assert!(e.to_string().contains("--bind"), "{e}");
    }
}
