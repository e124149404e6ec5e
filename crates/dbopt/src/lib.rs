//! dbopt: the library facade. Opens a workspace (configuration, SQLite catalog, data
//! directory, engine settings) and drives the stages: generate and load tables, run and log
//! queries and workloads, and (in later stages) analyze, propose, migrate, evaluate and route.
//!
//! The `dbopt` binary is a thin layer over this crate; everything it does is callable here.

pub mod adopt;
pub mod analyze;
pub mod autopilot;
pub mod cache;
pub mod calibrate;
pub mod canary;
pub mod change;
pub mod demo;
pub mod error;
pub mod evaluate;
pub mod exp;
pub mod exp_run;
pub mod export;
pub mod fetch;
pub mod gc;
pub mod generate;
pub mod import;
pub mod initial_layout;
pub mod lake;
pub mod load;
pub mod local_fs;
pub mod log_writer;
pub mod loop_settings;
pub mod metrics;
pub mod migrate;
pub mod monitor;
pub mod nyc_taxi;
pub mod profile;
pub mod progress;
pub mod promote;
pub mod propose;
pub mod pull;
pub mod pushdown;
pub mod query;
pub mod query_log;
pub mod report;
pub mod route;
pub mod serve;
pub mod sql_session;
pub mod status;
pub mod table_lock;
pub mod tables;
pub mod tpch;
pub mod tune;
pub mod whatif;
pub mod workload;
pub mod workload_file;
pub mod workload_sql;
pub mod workspace;

/// The host and port of a Ballista scheduler address as `--ballista` takes it.
pub use dbopt_engine::distributed::scheduler_host_port;
pub use error::DbError;
pub use progress::{NoProgress, Progress};
pub use workspace::Workspace;
