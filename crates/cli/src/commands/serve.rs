//! `dbopt serve`: /metrics and /healthz, and when asked the PostgreSQL-wire SQL endpoint, the
//! autopilot loop and the migration worker in the same process.

use super::table_name;
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use dbopt::serve::{MetricsServer, ServeOptions};
use dbopt_wire::SqlServer;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// `dbopt serve`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt serve                                        # metrics on http://127.0.0.1:9090/metrics
  dbopt serve --sql-addr 127.0.0.1:5433              # and SQL: psql -h 127.0.0.1 -p 5433 -U dbopt
  DBOPT_SQL_PASSWORD=secret dbopt serve --sql-addr 0.0.0.0:5433   # off loopback a password is required
  dbopt serve --autopilot --worker --table-name events
  dbopt serve --metrics-addr 0.0.0.0:9090 --autopilot --worker   # one container runs everything

SQL clients run read-only queries; each is guarded, routed and logged like `dbopt query`.
Set sql_tls_cert and sql_tls_key to offer TLS. Metrics are read from the catalog at each scrape (README \"Metrics\" lists them). SIGTERM or
Ctrl+C stops cleanly: the worker finishes its current unit or hands the job back to the queue,
an autopilot pass stops after its current rewrite unit, the port is released.")]
pub struct ServeArgs {
    /// Address of the metrics endpoint; port 0 picks a free one (printed at start).
    #[arg(long, default_value = "127.0.0.1:9090", value_name = "IP:PORT")]
    pub metrics_addr: String,
    /// Serve SQL over the PostgreSQL wire protocol on this address (port 0 picks a free one).
    #[arg(long, value_name = "IP:PORT")]
    pub sql_addr: Option<String>,
    /// SQL statements read each table's active layout instead of being routed across its live
    /// layouts.
    #[arg(long, requires = "sql_addr")]
    pub no_route: bool,
    /// Run an autopilot pass over the tables every --interval-sec.
    #[arg(long)]
    pub autopilot: bool,
    /// Tables autopilot works on, comma separated [default: every managed table]
    #[arg(long, value_delimiter = ',', requires = "autopilot")]
    pub table_name: Vec<String>,
    /// Seconds between autopilot passes.
    #[arg(long, default_value_t = 300.0, value_name = "S")]
    pub interval_sec: f64,
    /// Run the migration worker, polling the job queue.
    #[arg(long)]
    pub worker: bool,
}

/// Runs `dbopt serve`.
pub async fn run(ws: Workspace, args: ServeArgs) -> Result<()> {
    let ws = ws.with_engine_runtime_from_config();
    let options = options(&args)?;
    let server = MetricsServer::bind(&args.metrics_addr)?;
    let sql = match &args.sql_addr {
        Some(addr) => Some(SqlServer::bind(addr, &ws)?),
        None => None,
    };
    let addr = server.local_addr();
    println!("serving http://{addr}/metrics and http://{addr}/healthz");
    if let Some(sql) = &sql {
        let a = sql.local_addr();
        let user = &ws.config().settings().sql_user;
        let auth = if sql.requires_password() {
            "password required"
        } else {
            "no password (loopback)"
        };
        let tls = if sql.offers_tls() { ", TLS" } else { "" };
        println!(
            "serving SQL on postgresql://{user}@{a}/dbopt ({auth}{tls}): psql -h {} -p {} -U {user}",
            a.ip(),
            a.port()
        );
    }
    std::io::stdout().flush()?;
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(stop.clone())?;
    let sql_loop = async {
        let Some(sql) = sql else { return Ok(()) };
        let served = sql.serve_until(&ws, !args.no_route, stop.clone()).await;
        // The SQL endpoint failing stops the rest of the process too.
        stop.store(true, Ordering::SeqCst);
        served
    };
    let (served, sql_served) = tokio::join!(ws.serve(server, &options, stop.clone()), sql_loop);
    served?;
    sql_served?;
    println!("stopped");
    Ok(())
}

fn options(args: &ServeArgs) -> Result<ServeOptions> {
    let interval = super::positive_seconds(args.interval_sec, "--interval-sec")?;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    Ok(ServeOptions {
        autopilot: args.autopilot,
        tables: args
            .table_name
            .iter()
            .map(|t| table_name(t))
            .collect::<Result<_>>()?,
        autopilot_interval: interval,
        worker: args.worker,
        worker_owner: format!("{host}:{}:serve", std::process::id()),
    })
}

/// Sets `stop` on the first SIGTERM or Ctrl+C; a second one exits at once.
fn stop_on_signals(stop: Arc<AtomicBool>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("stopping: the worker and autopilot finish their current unit");
        stop.store(true, Ordering::SeqCst);
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        std::process::exit(130);
    });
    Ok(())
}
