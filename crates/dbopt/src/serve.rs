//! `serve`: one long-running process that serves `/metrics` (Prometheus text format) and
//! `/healthz`, and can run the autopilot loop and the migration worker beside them.
//!
//! Guarantees:
//! - Every scrape reads the catalog afresh, so `/metrics` agrees with `dbopt status`.
//! - The listener binds before anything else starts; a bad or busy address is a bad-input
//!   error and nothing runs.
//! - Stopping (SIGTERM, Ctrl+C, or the caller's flag) lets the worker finish its current unit
//!   (or hand the job back to the queue), stops an autopilot pass after its current rewrite
//!   unit (the job requeued, the remaining steps skipped), and closes the listener before
//!   `run` returns.

use crate::{DbError, Workspace};
use dbopt_core::TableName;
use dbopt_migrate::WorkerOptions;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the HTTP thread and the loops look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// What `serve` runs besides the metrics endpoint.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Run an autopilot pass over `tables` every `autopilot_interval`.
    pub autopilot: bool,
    /// The tables autopilot works on (empty: every managed table at each pass).
    pub tables: Vec<TableName>,
    /// Pause between autopilot passes.
    pub autopilot_interval: Duration,
    /// Run the migration worker (polling the queue) in the same process.
    pub worker: bool,
    /// The worker's lease owner name.
    pub worker_owner: String,
}

/// The bound metrics listener.
pub struct MetricsServer {
    server: tiny_http::Server,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` (e.g. `127.0.0.1:9090`; port 0 picks a free one).
    pub fn bind(addr: &str) -> Result<MetricsServer, DbError> {
        let parsed: SocketAddr = addr.parse().map_err(|_| {
            DbError::BadAddress(format!(
                "--metrics-addr '{addr}' is not an address: use IP:PORT, e.g. 127.0.0.1:9090"
            ))
        })?;
        let listener =
            TcpListener::bind(parsed).map_err(|e| bind_error(parsed, "--metrics-addr", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| DbError::io("reading the metrics listener's address", e))?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| DbError::BadAddress(format!("cannot serve on {addr}: {e}")))?;
        Ok(MetricsServer { server, addr })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers requests with `ws`'s figures until `stop` is set.
    pub fn serve_until(&self, ws: &Workspace, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            match self.server.recv_timeout(POLL) {
                Ok(Some(request)) => respond(ws, request),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "metrics listener failed to accept"),
            }
        }
    }
}

/// The error for a listener on `addr` that cannot bind: a busy or forbidden address is the
/// caller's to change (`flag` names the option that set it); anything else is the machine's.
pub fn bind_error(addr: SocketAddr, flag: &str, e: std::io::Error) -> DbError {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => DbError::BadAddress(format!(
            "address {addr} is already in use: choose another {flag} (port 0 picks a free one)"
        )),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::AddrNotAvailable => {
            DbError::BadAddress(format!("cannot bind {addr}: {e}: choose another {flag}"))
        }
        _ => DbError::io(format!("binding {addr}"), e),
    }
}

fn respond(ws: &Workspace, request: tiny_http::Request) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let post = *request.method() == tiny_http::Method::Post;
    let (status, content_type, body) = match (path, post) {
        ("/metrics", _) => match ws.metrics_text() {
            Ok(text) => (200, "text/plain; version=0.0.4; charset=utf-8", text),
            Err(e) => {
                tracing::error!(error = %e, "reading metrics from the catalog failed");
                (500, "text/plain; charset=utf-8", format!("error: {e}\n"))
            }
        },
        ("/healthz", _) => (200, "text/plain; charset=utf-8", "ok\n".to_string()),
        ("/cache", false) => json_answer(ws.cache_stats()),
        ("/cache/clear", true) => json_answer(
            table_param(query)
                .map_err(DbError::BadArgument)
                .and_then(|t| ws.cache_clear(t.as_ref())),
        ),
        ("/cache/warm", true) => json_answer(warm(ws, query)),
        ("/cache/clear" | "/cache/warm", false) => (
            405,
            "text/plain; charset=utf-8",
            "use POST for /cache/clear and /cache/warm\n".to_string(),
        ),
        _ => (
            404,
            "text/plain; charset=utf-8",
            "not found: try /metrics, /healthz or /cache\n".to_string(),
        ),
    };
    let header = tiny_http::Header::from_bytes("Content-Type", content_type)
        .expect("a static ASCII header is valid");
    let response = tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header);
    if let Err(e) = request.respond(response) {
        tracing::debug!(error = %e, "a metrics client went away");
    }
}

/// The `table=T` parameter of a query string (None when absent).
fn table_param(query: &str) -> Result<Option<TableName>, String> {
    let Some(raw) = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("table="))
    else {
        return Ok(None);
    };
    TableName::new(raw).map(Some).map_err(|e| e.to_string())
}

/// `cache warm` on the HTTP thread, which has no async runtime of its own.
fn warm(ws: &Workspace, query: &str) -> Result<crate::cache::Warmed, DbError> {
    let table = table_param(query)
        .map_err(DbError::BadArgument)?
        .ok_or_else(|| DbError::BadArgument("POST /cache/warm needs ?table=NAME".into()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DbError::io("starting a runtime to warm the cache", e))?;
    runtime.block_on(ws.cache_warm(&table))
}

/// A JSON answer, or the error as text with 400 (the request's fault) or 500.
fn json_answer<T: serde::Serialize>(result: Result<T, DbError>) -> (u16, &'static str, String) {
    match result {
        Ok(value) => (
            200,
            "application/json",
            serde_json::to_string(&value).expect("cache answers serialize"),
        ),
        Err(e) => {
            let status = if e.is_user_error() { 400 } else { 500 };
            (status, "text/plain; charset=utf-8", format!("{e}\n"))
        }
    }
}

impl Workspace {
    /// Serves `server` and runs what `options` asks for until `stop` is set; returns after
    /// every part has stopped.
    pub async fn serve(
        &self,
        server: MetricsServer,
        options: &ServeOptions,
        stop: Arc<AtomicBool>,
    ) -> Result<(), DbError> {
        let http = self.spawn_http(server, stop.clone())?;
        let (autopilot, worker) = tokio::join!(
            self.autopilot_loop(options, &stop),
            self.worker_loop(options, &stop)
        );
        stop.store(true, Ordering::SeqCst);
        if http.join().is_err() {
            tracing::error!("the metrics thread panicked");
        }
        autopilot.and(worker)
    }

    fn spawn_http(
        &self,
        server: MetricsServer,
        stop: Arc<AtomicBool>,
    ) -> Result<std::thread::JoinHandle<()>, DbError> {
        // The HTTP thread reads through its own catalog connection.
        let ws = Workspace::open_with_clock(self.config().clone(), self.clock().clone())?
            .with_engine_runtime(self.shared_engine_runtime());
        std::thread::Builder::new()
            .name("dbopt-metrics".into())
            .spawn(move || server.serve_until(&ws, &stop))
            .map_err(|e| DbError::io("starting the metrics thread", e))
    }

    async fn autopilot_loop(
        &self,
        options: &ServeOptions,
        stop: &AtomicBool,
    ) -> Result<(), DbError> {
        if !options.autopilot {
            wait_for(stop, None).await;
            return Ok(());
        }
        let settings = self.loop_settings()?;
        loop {
            for table in self.autopilot_tables(options)? {
                if stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                match self.autopilot_pass_with_stop(&table, &settings, stop).await {
                    Ok(pass) => {
                        tracing::info!(table = %table, active = %pass.active, "autopilot pass done");
                    }
                    Err(e) => tracing::warn!(table = %table, error = %e, "autopilot pass failed"),
                }
            }
            wait_for(stop, Some(options.autopilot_interval)).await;
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
        }
    }

    fn autopilot_tables(&self, options: &ServeOptions) -> Result<Vec<TableName>, DbError> {
        if !options.tables.is_empty() {
            return Ok(options.tables.clone());
        }
        Ok(self
            .catalog()
            .list_tables()?
            .into_iter()
            .map(|t| t.name)
            .collect())
    }

    async fn worker_loop(&self, options: &ServeOptions, stop: &AtomicBool) -> Result<(), DbError> {
        if !options.worker {
            wait_for(stop, None).await;
            return Ok(());
        }
        let worker = WorkerOptions {
            owner: options.worker_owner.clone(),
            keep_polling: true,
            sleep: Duration::from_secs(2),
            max_jobs: None,
            table: None,
        };
        let report = self.run_migration_worker(&worker, stop).await?;
        tracing::info!(
            published = report.done.len(),
            failed = report.failed.len(),
            "migration worker stopped"
        );
        Ok(())
    }
}

/// Waits until `stop` is set, or `limit` passes.
async fn wait_for(stop: &AtomicBool, limit: Option<Duration>) {
    let start = std::time::Instant::now();
    while !stop.load(Ordering::SeqCst) && limit.is_none_or(|l| start.elapsed() < l) {
        tokio::time::sleep(POLL).await;
    }
}
