//! `dbopt migration-worker`: claim queued migration jobs and rewrite, verify and publish them.

use anyhow::{Result, bail};
use clap::Args;
use dbopt::{DbError, Workspace};
use dbopt_migrate::WorkerOptions;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// `dbopt migration-worker`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt migration-worker --once
  dbopt migration-worker --max-jobs 1
  dbopt --memory-limit 256MiB migration-worker --loop --sleep-sec 5

The global --memory-limit bounds the rewrite's sort (it spills to DATA_DIR/_spill beyond it).
Ctrl+C stops the worker after the current unit; the job goes back to the queue.")]
pub struct MigrationWorkerArgs {
    /// Handle every job that can run now, then stop (the default; --max-jobs stops earlier).
    #[arg(long, conflicts_with = "keep_polling")]
    pub once: bool,
    /// Keep polling for new jobs until stopped.
    #[arg(long = "loop")]
    pub keep_polling: bool,
    /// Seconds between polls of an empty queue with --loop.
    #[arg(long, default_value_t = 2.0)]
    pub sleep_sec: f64,
    /// Stop after this many jobs were published or failed.
    #[arg(long)]
    pub max_jobs: Option<usize>,
    /// Only take jobs of this table.
    #[arg(long)]
    pub table_name: Option<String>,
    /// Write checkpoints, samples (memory, CPU, IO, disk) and a closing report to FILE (JSON lines).
    #[arg(long, value_name = "FILE")]
    pub monitor: Option<std::path::PathBuf>,
}

/// Runs `dbopt migration-worker`.
pub async fn run(ws: Workspace, args: MigrationWorkerArgs) -> Result<()> {
    let sleep = super::seconds(args.sleep_sec, "--sleep-sec", true)?;
    let table = args
        .table_name
        .as_deref()
        .map(super::table_name)
        .transpose()?;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    let options = WorkerOptions {
        owner: format!("{host}:{}", std::process::id()),
        keep_polling: args.keep_polling,
        sleep,
        max_jobs: args.max_jobs,
        table,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("stopping after the current unit (Ctrl+C again to abort)");
            flag.store(true, Ordering::SeqCst);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let monitor = super::start_monitor(&ws, args.monitor.as_deref())?;
    let report = ws.run_migration_worker(&options, &stop).await;
    super::finish_monitor(&ws, monitor);
    let report = report?;
    for done in &report.done {
        let s = &done.stats;
        println!(
            "job {}: published layout {}: read {} bytes, wrote {} bytes in {} files, {} rows, {} ms, peak memory {} bytes, spilled {} bytes, {} of {} units sorted in memory",
            done.job_id,
            done.layout,
            s.bytes_read,
            s.bytes_written,
            s.files_written,
            s.rows_written,
            s.duration_ms,
            s.peak_memory_bytes,
            done.spilled_bytes,
            done.units_sorted_in_memory,
            done.units_rewritten
        );
    }
    if report.interrupted {
        println!("stopped on request");
    } else if report.done.is_empty() && report.failed.is_empty() && report.retried.is_empty() {
        println!("no migration job to run");
    }
    if let Some((id, reason)) = report.failed.first() {
        bail!(DbError::JobFailed {
            job: *id,
            reason: reason.clone(),
            user_error: report.failed_by_input.contains(id),
        });
    }
    Ok(())
}
