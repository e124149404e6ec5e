//! `dbopt cluster scheduler|executor`: run an Apache Ballista scheduler or executor, so that
//! queries given `--ballista HOST:PORT` run on a cluster of dbopt processes.

use anyhow::Result;
use clap::{Args, Subcommand};
use dbopt::DbError;
use dbopt_cluster::{ClusterError, ExecutorOptions, SchedulerOptions};
use dbopt_core::Config;
use std::path::PathBuf;

/// `dbopt cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Run a Ballista scheduler: it plans each query into stages and hands their tasks to
    /// the executors that joined it.
    Scheduler(SchedulerArgs),
    /// Run a Ballista executor: it joins a scheduler and runs the tasks it is given.
    Executor(ExecutorArgs),
}

/// `dbopt cluster scheduler`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt cluster scheduler                         # 127.0.0.1:50050
  dbopt cluster scheduler --bind 0.0.0.0 --port 50050

Then start executors (`dbopt cluster executor`) and run queries with --ballista HOST:PORT
(or the config key `ballista`). Cluster state is kept in memory: a restarted scheduler
forgets its jobs, and queries running on it fail.")]
pub struct SchedulerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// gRPC port for clients and executors.
    #[arg(long, default_value_t = 50050)]
    pub port: u16,
}

/// `dbopt cluster executor`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt cluster executor                                       # joins 127.0.0.1:50050
  dbopt cluster executor --scheduler 127.0.0.1:50050 --port 50061 --grpc-port 50062 --tasks 2

Executors read the tables' Parquet files by the paths the scheduler plans with, so every
executor must see DATA_DIR at the same path (one machine, or a shared file system). Its
memory pool is the configuration's memory_limit.")]
pub struct ExecutorArgs {
    /// The scheduler to join, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:50050")]
    pub scheduler: String,
    /// Address to listen on and to advertise to the scheduler.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Arrow Flight port results and shuffles are fetched from.
    #[arg(long, default_value_t = 50051)]
    pub port: u16,
    /// gRPC port the scheduler sends tasks to.
    #[arg(long, default_value_t = 50052)]
    pub grpc_port: u16,
    /// Tasks run at once, 0 = number of cores.
    #[arg(long, default_value_t = 0)]
    pub tasks: usize,
    /// Where shuffle files go [default: a temporary directory]
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

/// Runs `dbopt cluster ...` until the process is stopped.
pub async fn run(config: &Config, cmd: ClusterCommand) -> Result<()> {
    let outcome = match cmd {
        ClusterCommand::Scheduler(args) => {
            eprintln!("Ballista scheduler on {}:{}", args.bind, args.port);
            dbopt_cluster::run_scheduler(&SchedulerOptions {
                bind_host: args.bind,
                port: args.port,
            })
            .await
        }
        ClusterCommand::Executor(args) => {
            let (host, port) = scheduler_address(&args.scheduler)?;
            eprintln!(
                "Ballista executor on {}:{} (tasks on {}), joining {host}:{port}",
                args.bind, args.port, args.grpc_port
            );
            dbopt_cluster::run_executor(&ExecutorOptions {
                scheduler_host: host,
                scheduler_port: port,
                bind_host: args.bind,
                flight_port: args.port,
                grpc_port: args.grpc_port,
                tasks: args.tasks,
                memory_limit: config.memory_limit(),
                work_dir: args.work_dir,
            })
            .await
        }
    };
    outcome.map_err(|e| match e {
        ClusterError::Config(m) => DbError::BadArgument(m).into(),
        ClusterError::Failed(m) => DbError::Internal(m).into(),
    })
}

/// `HOST:PORT` of `--scheduler`, in any form `--ballista` takes.
fn scheduler_address(given: &str) -> Result<(String, u16)> {
    Ok(dbopt::scheduler_host_port(given).map_err(DbError::from)?)
}
