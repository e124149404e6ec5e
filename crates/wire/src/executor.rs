//! A connection's own query thread. The workspace (its SQLite connection, its runners and the
//! tables they registered) lives on that thread for as long as the client stays connected, and
//! statements reach it over a channel. The thread drives each statement on a tokio runtime of
//! the connection's own (`threads` workers), so DataFusion's CPU-bound partitions of one
//! client's slow query compete with other clients' queries in the operating system's
//! scheduler instead of holding the server's worker threads. Memory is still shared: every
//! connection's sessions draw on one `EngineRuntime` pool.
//!
//! Cancelling: the caller drops the reply receiver (a cancel request, a client that hung up);
//! the thread sees the reply channel close and drops the statement's future, which stops its
//! DataFusion execution.

use dbopt::sql_session::SqlSession;
use dbopt::{DbError, Workspace};
use dbopt_core::{Clock, Config};
use dbopt_engine::{EngineRuntime, QueryOutcome, StatementDescription};
use std::sync::Arc;
use tokio::sync::oneshot;

/// What every connection's query thread is opened with.
#[derive(Clone)]
pub struct ExecutorFactory {
    /// The server's configuration.
    pub config: Config,
    /// The server's clock.
    pub clock: Arc<dyn Clock>,
    /// The runtime all sessions share (memory pool, metadata caches).
    pub runtime: EngineRuntime,
    /// Route statements across the live layouts (false: the active layout).
    pub routed: bool,
    /// Writes every connection's query log, off the answer path.
    pub log: Arc<dbopt::log_writer::QueryLogWriter>,
}

impl ExecutorFactory {
    /// Opens a workspace for one connection and starts its query thread.
    pub fn start(&self, seed: u64) -> Result<Executor, DbError> {
        let ws = Workspace::open_with_clock(self.config.clone(), self.clock.clone())?
            .with_engine_runtime(self.runtime.clone())
            .with_log_writer(self.log.clone());
        Executor::start(ws, self.routed, seed)
    }
}

/// A request to the query thread.
enum Job {
    Describe {
        sql: String,
        reply: oneshot::Sender<Result<StatementDescription, DbError>>,
    },
    Run {
        sql: String,
        reply: oneshot::Sender<Result<QueryOutcome, DbError>>,
    },
}

/// The handle a connection keeps on its query thread; dropping it ends the thread.
pub struct Executor {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Executor {
    /// Starts the query thread for `ws`; `seed` seeds the session's routing.
    pub fn start(ws: Workspace, routed: bool, seed: u64) -> Result<Executor, DbError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(ws.engine_settings().effective_threads())
            .thread_name("dbopt-sql-worker")
            .enable_all()
            .build()
            .map_err(|e| DbError::io("starting a connection's query runtime", e))?;
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("dbopt-sql".into())
            .spawn(move || {
                serve_jobs(&ws, &runtime, routed, seed, &queue);
                // A cancelled query may still hold a worker in one long poll: do not wait.
                runtime.shutdown_background();
            })
            .map_err(|e| DbError::io("starting a connection's query thread", e))?;
        Ok(Executor { jobs })
    }

    /// Plans `sql`: its parameter types and result columns.
    pub async fn describe(&self, sql: String) -> Result<StatementDescription, DbError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Describe { sql, reply })?;
        answer.await.map_err(|_| gone())?
    }

    /// Runs `sql` routed and logged; dropping the returned future cancels it.
    pub async fn run(&self, sql: String) -> Result<QueryOutcome, DbError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Run { sql, reply })?;
        answer.await.map_err(|_| gone())?
    }

    fn send(&self, job: Job) -> Result<(), DbError> {
        self.jobs.send(job).map_err(|_| gone())
    }
}

fn gone() -> DbError {
    DbError::Internal("the connection's query thread stopped".into())
}

fn serve_jobs(
    ws: &Workspace,
    runtime: &tokio::runtime::Runtime,
    routed: bool,
    seed: u64,
    queue: &std::sync::mpsc::Receiver<Job>,
) {
    let mut session = match SqlSession::new(ws, routed, seed) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!("cannot open a SQL session: {e}");
            None
        }
    };
    while let Ok(job) = queue.recv() {
        let Some(session) = session.as_mut() else {
            refuse(job);
            continue;
        };
        runtime.block_on(run_job(session, job));
    }
}

/// Answers a job when the session could not open (its error was logged).
fn refuse(job: Job) {
    let error = || DbError::Internal("the SQL session could not open: see the server log".into());
    match job {
        Job::Describe { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
        Job::Run { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
    }
}

async fn run_job(session: &mut SqlSession<'_>, job: Job) {
    match job {
        Job::Describe { sql, reply } => {
            let _ = reply.send(session.describe(&sql).await);
        }
        Job::Run { sql, mut reply } => {
            tokio::select! {
                result = session.run(&sql) => {
                    let _ = reply.send(result);
                }
                () = reply.closed() => {
                    tracing::info!("a query was cancelled by its client: {}", dbopt_core::text::one_line(&sql));
                }
            }
        }
    }
}
