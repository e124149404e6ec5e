//! The worker loop: claim a job with a lease, run it, and record the result (done, queued
//! again under the retry policy of `dbopt_core::retry`, or failed with the reason). Stops
//! cleanly between units when asked.

use crate::{JobContext, JobOutcome, MigrateError, run_job};
use dbopt_catalog::{JobRecord, JobStats, Lease};
use dbopt_core::TableName;
use dbopt_core::retry::delay_after_attempt;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The lease owner name (e.g. `host:pid`).
    pub owner: String,
    /// Keep polling for jobs instead of stopping when the queue is empty.
    pub keep_polling: bool,
    /// Pause between polls of an empty queue.
    pub sleep: Duration,
    /// Stop after this many jobs were handled (done or failed).
    pub max_jobs: Option<usize>,
    /// Only take jobs of this table.
    pub table: Option<TableName>,
}

/// What a worker did.
#[derive(Debug, Clone, Default)]
pub struct WorkerReport {
    /// Jobs published.
    pub done: Vec<JobOutcome>,
    /// Jobs failed for good, with the reason.
    pub failed: Vec<(i64, String)>,
    /// The failed jobs whose input (spec, data) was at fault rather than the machine.
    pub failed_by_input: Vec<i64>,
    /// Jobs given back for a retry, with the reason.
    pub retried: Vec<(i64, String)>,
    /// The worker was stopped by request.
    pub interrupted: bool,
}

/// Claims and runs jobs until the queue is empty (or forever with `keep_polling`). Setting
/// `ctx.stop` ends the loop cleanly: an idle worker returns within 100 ms, a busy one after the
/// current unit, giving its job back to the queue with the finished units kept
/// (`WorkerReport::interrupted`).
#[tracing::instrument(name = "migration_worker", skip_all, fields(owner = %options.owner))]
pub async fn run_worker(
    ctx: &JobContext<'_>,
    options: &WorkerOptions,
) -> Result<WorkerReport, MigrateError> {
    // A Ballista scheduler that does not answer is a setting to fix, found before any job is
    // claimed (once a job runs, a cluster that goes away is a fault to retry).
    if let Some(scheduler) = &ctx.settings.ballista {
        dbopt_engine::distributed::probe_scheduler(scheduler)
            .await
            .map_err(|e| MigrateError::Cluster(e.to_string()))?;
    }
    let mut report = WorkerReport::default();
    loop {
        if ctx.stop.load(Ordering::SeqCst) {
            report.interrupted = true;
            return Ok(report);
        }
        let handled = report.done.len() + report.failed.len();
        if options.max_jobs.is_some_and(|m| handled >= m) {
            return Ok(report);
        }
        let Some((job, lease)) = claim(ctx, options)? else {
            if !options.keep_polling {
                return Ok(report);
            }
            tokio::select! {
                _ = tokio::time::sleep(options.sleep) => {}
                _ = wait_for_stop(ctx) => {}
            }
            continue;
        };
        match run_job(ctx, &job, &lease).await {
            Ok(outcome) => report.done.push(outcome),
            Err(MigrateError::LeaseLost(reason)) => {
                tracing::warn!(
                    job_id = job.id,
                    "job {}: {reason}; leaving it to its new owner",
                    job.id
                );
                report.retried.push((job.id, reason));
            }
            Err(MigrateError::Interrupted(reason)) => {
                ctx.catalog
                    .fail_job(&lease, &reason, Some(0), &JobStats::default())?;
                tracing::info!(
                    job_id = job.id,
                    "job {}: {reason}; it goes back to the queue",
                    job.id
                );
                report.interrupted = true;
                return Ok(report);
            }
            Err(e) => {
                let reason = e.to_string();
                let retry = retry_in_ms(&e, job.attempt);
                let recorded = ctx
                    .catalog
                    .fail_job(&lease, &reason, retry, &JobStats::default());
                if let Err(err) = recorded {
                    tracing::error!(
                        job_id = job.id,
                        "job {}: could not record failure: {err}",
                        job.id
                    );
                }
                match retry {
                    Some(ms) => {
                        tracing::warn!(
                            job_id = job.id,
                            retry_in_ms = ms,
                            "job {}: {reason}; retrying in {} s",
                            job.id,
                            ms / 1000
                        );
                        report.retried.push((job.id, reason));
                    }
                    None => {
                        tracing::warn!(job_id = job.id, "job {} failed: {reason}", job.id);
                        report.failed.push((job.id, reason));
                        if e.is_user_error() {
                            report.failed_by_input.push(job.id);
                        }
                    }
                }
            }
        }
    }
}

/// Claims the next runnable job with a lease, if any.
#[tracing::instrument(skip_all, fields(table = options.table.as_ref().map(TableName::as_str)))]
fn claim(
    ctx: &JobContext<'_>,
    options: &WorkerOptions,
) -> Result<Option<(JobRecord, Lease)>, MigrateError> {
    let claimed = ctx
        .catalog
        .claim_job(&options.owner, ctx.lease_ms, options.table.as_ref())?;
    match &claimed {
        Some((job, lease)) => tracing::info!(
            job_id = job.id,
            table = %job.table,
            layout = %job.target_layout,
            "claimed job {} ({} -> {}) attempt {} token {}",
            job.id,
            job.source_layout,
            job.target_layout,
            job.attempt,
            lease.token
        ),
        None => tracing::debug!("no runnable job"),
    }
    Ok(claimed)
}

/// When a failed attempt runs again: after the retry policy's delay (`dbopt_core::retry`)
/// if the error is retryable and attempts remain, else never (the job fails for good).
fn retry_in_ms(error: &MigrateError, attempt: u64) -> Option<i64> {
    if !error.is_retryable() {
        return None;
    }
    delay_after_attempt(attempt).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Resolves once the stop flag is set.
async fn wait_for_stop(ctx: &JobContext<'_>) {
    while !ctx.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_failures_wait_longer_each_attempt_then_fail() {
        let machine = || MigrateError::io("writing", std::io::Error::other("disk"));
        assert_eq!(retry_in_ms(&machine(), 1), Some(2000));
        assert_eq!(retry_in_ms(&machine(), 2), Some(4000));
        assert_eq!(retry_in_ms(&machine(), 4), Some(16_000));
        assert_eq!(retry_in_ms(&machine(), 5), None, "the last attempt");
        let bad_input = MigrateError::UnknownColumn {
            column: "nope".into(),
            table: "t".into(),
            columns: "a, b".into(),
        };
        assert_eq!(retry_in_ms(&bad_input, 1), None, "never retried");
    }
}
