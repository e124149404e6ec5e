//! Migration jobs: an idempotent queue keyed by target layout, leases with fencing tokens,
//! resumable unit progress, and the publish commit that only the current lease holder can make.

use crate::error::SqlContext;
use crate::tables::insert_layout_row;
use crate::{
    Catalog, CatalogError, LayoutRecord, collect_rows, get, get_layout_id, get_table_name, get_u64,
    sql_int,
};
use dbopt_core::{LayoutId, LayoutSpec, TableName};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::{Deserialize, Serialize};

/// How a migration rewrites the source: all at once, or in resumable batches of files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MigrationMode {
    /// One unit over every source file (one global sort).
    #[default]
    Full,
    /// One unit per batch of source files; a restart resumes after the last finished batch.
    Incremental,
}

stored_as_text!(MigrationMode, "mode" {
    Full => "full",
    Incremental => "incremental",
});

/// Where a job is: waiting, held by a worker, finished, or given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for a worker (possibly until `retry_after_ms`).
    Queued,
    /// Claimed by a worker with a lease.
    Running,
    /// Published.
    Done,
    /// Failed with a non-retryable error (see `error`).
    Failed,
}

stored_as_text!(JobStatus, "status" {
    Queued => "queued",
    Running => "running",
    Done => "done",
    Failed => "failed",
});

/// What a rewrite cost, measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JobStats {
    /// Source bytes read.
    pub bytes_read: u64,
    /// Parquet bytes written.
    pub bytes_written: u64,
    /// Rows written.
    pub rows_written: u64,
    /// Files written.
    pub files_written: u64,
    /// Wall time spent working on the job, summed over attempts.
    pub duration_ms: u64,
    /// Peak memory seen (bytes).
    pub peak_memory_bytes: u64,
}

impl JobStats {
    /// Adds the counters of `other` and keeps the larger peak.
    pub fn accumulate(&mut self, other: &JobStats) {
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        self.rows_written += other.rows_written;
        self.files_written += other.files_written;
        self.duration_ms += other.duration_ms;
        self.peak_memory_bytes = self.peak_memory_bytes.max(other.peak_memory_bytes);
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The table.
    pub table: TableName,
    /// The layout to read.
    pub source_layout: LayoutId,
    /// The layout to build (content hash of source and spec).
    pub target_layout: LayoutId,
    /// What to build.
    pub spec: LayoutSpec,
    /// The printed plan, as JSON.
    pub plan_json: String,
    /// Full or incremental.
    pub mode: MigrationMode,
    /// Make the new layout active when it is published.
    pub activate: bool,
    /// Units of work the plan has.
    pub units_total: u64,
}

/// One row of `migration_jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job id.
    pub id: i64,
    /// The table.
    pub table: TableName,
    /// The layout read.
    pub source_layout: LayoutId,
    /// The layout built.
    pub target_layout: LayoutId,
    /// What to build.
    pub spec: LayoutSpec,
    /// The plan as JSON.
    pub plan_json: String,
    /// Full or incremental.
    pub mode: MigrationMode,
    /// Activate on publish.
    pub activate: bool,
    /// Where the job is.
    pub status: JobStatus,
    /// How many times it was claimed.
    pub attempt: u64,
    /// The worker holding the lease.
    pub lease_owner: Option<String>,
    /// When the lease runs out.
    pub lease_expires_ms: Option<i64>,
    /// Incremented on every claim; a write must present the current value.
    pub fencing_token: u64,
    /// Units in the plan.
    pub units_total: u64,
    /// Units finished and durable.
    pub units_done: u64,
    /// Why it failed (or why the last attempt failed).
    pub error: Option<String>,
    /// Not claimable before this time.
    pub retry_after_ms: Option<i64>,
    /// Enqueued at.
    pub created_at_ms: i64,
    /// First claimed at.
    pub started_at_ms: Option<i64>,
    /// Done or failed at.
    pub finished_at_ms: Option<i64>,
    /// Measured cost so far.
    pub stats: JobStats,
}

/// What publishing a job did.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The job, now done.
    pub job: JobRecord,
    /// Whether the new layout became active (the job asked and its source was still active).
    pub activated: bool,
}

/// A held lease: present it on every write about the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The job.
    pub job_id: i64,
    /// The worker.
    pub owner: String,
    /// The fencing token of this claim.
    pub token: u64,
}

/// What enqueueing did.
#[derive(Debug, Clone, PartialEq)]
pub enum Enqueued {
    /// A new job was queued.
    New(JobRecord),
    /// A job for the same target layout already exists (queued, running or done); nothing changed.
    Existing(JobRecord),
    /// A failed job for this target was queued again.
    Requeued(JobRecord),
}

impl Enqueued {
    /// The job, whichever case.
    pub fn job(&self) -> &JobRecord {
        match self {
            Enqueued::New(j) | Enqueued::Existing(j) | Enqueued::Requeued(j) => j,
        }
    }
}

const JOB_SELECT: &str = "SELECT id, table_name, source_layout, target_layout, spec_json, \
    plan_json, mode, activate, status, attempt, lease_owner, lease_expires_ms, fencing_token, \
    units_total, units_done, error, retry_after_ms, created_at_ms, started_at_ms, \
    finished_at_ms, bytes_read, bytes_written, rows_written, files_written, duration_ms, \
    peak_memory_bytes FROM migration_jobs";

fn job_from_row(row: &Row<'_>) -> Result<JobRecord, CatalogError> {
    let id: i64 = get(row, "id")?;
    let spec_json: String = get(row, "spec_json")?;
    let spec = serde_json::from_str(&spec_json)
        .map_err(|e| CatalogError::Corrupt(format!("spec_json of migration job {id}: {e}")))?;
    let mode_text: String = get(row, "mode")?;
    let status_text: String = get(row, "status")?;
    let activate: i64 = get(row, "activate")?;
    Ok(JobRecord {
        id,
        table: get_table_name(row, "table_name")?,
        source_layout: get_layout_id(row, "source_layout")?,
        target_layout: get_layout_id(row, "target_layout")?,
        spec,
        plan_json: get(row, "plan_json")?,
        mode: MigrationMode::parse(&mode_text)
            .ok_or_else(|| CatalogError::Corrupt(format!("job {id} has mode '{mode_text}'")))?,
        activate: activate != 0,
        status: JobStatus::parse(&status_text)
            .ok_or_else(|| CatalogError::Corrupt(format!("job {id} has status '{status_text}'")))?,
        attempt: get_u64(row, "attempt")?,
        lease_owner: get(row, "lease_owner")?,
        lease_expires_ms: get(row, "lease_expires_ms")?,
        fencing_token: get_u64(row, "fencing_token")?,
        units_total: get_u64(row, "units_total")?,
        units_done: get_u64(row, "units_done")?,
        error: get(row, "error")?,
        retry_after_ms: get(row, "retry_after_ms")?,
        created_at_ms: get(row, "created_at_ms")?,
        started_at_ms: get(row, "started_at_ms")?,
        finished_at_ms: get(row, "finished_at_ms")?,
        stats: JobStats {
            bytes_read: get_u64(row, "bytes_read")?,
            bytes_written: get_u64(row, "bytes_written")?,
            rows_written: get_u64(row, "rows_written")?,
            files_written: get_u64(row, "files_written")?,
            duration_ms: get_u64(row, "duration_ms")?,
            peak_memory_bytes: get_u64(row, "peak_memory_bytes")?,
        },
    })
}

fn find_job(conn: &Connection, id: i64) -> Result<Option<JobRecord>, CatalogError> {
    let sql = format!("{JOB_SELECT} WHERE id = ?1");
    let rows = collect_rows(conn, "reading a migration job", &sql, [id], job_from_row)?;
    Ok(rows.into_iter().next())
}

/// Fails with `Conflict` unless `lease` is the job's current, unexpired lease.
fn check_lease(
    tx: &Transaction<'_>,
    lease: &Lease,
    now_ms: i64,
) -> Result<JobRecord, CatalogError> {
    let job = find_job(tx, lease.job_id)?.ok_or_else(|| {
        CatalogError::Conflict(format!("migration job {} does not exist", lease.job_id))
    })?;
    if job.status != JobStatus::Running || job.fencing_token != lease.token {
        return Err(CatalogError::Conflict(format!(
            "migration job {} lease lost: fencing token {} is stale (now {}, status {})",
            job.id, lease.token, job.fencing_token, job.status
        )));
    }
    if job.lease_expires_ms.is_none_or(|t| t < now_ms) {
        return Err(CatalogError::Conflict(format!(
            "migration job {} lease of {} expired: another worker may take it over",
            job.id, lease.owner
        )));
    }
    Ok(job)
}

fn add_stats(tx: &Transaction<'_>, id: i64, s: &JobStats) -> Result<(), CatalogError> {
    tx.execute(
        "UPDATE migration_jobs SET bytes_read = bytes_read + ?2, \
         bytes_written = bytes_written + ?3, rows_written = rows_written + ?4, \
         files_written = files_written + ?5, duration_ms = duration_ms + ?6, \
         peak_memory_bytes = max(peak_memory_bytes, ?7) WHERE id = ?1",
        params![
            id,
            sql_int(s.bytes_read),
            sql_int(s.bytes_written),
            sql_int(s.rows_written),
            sql_int(s.files_written),
            sql_int(s.duration_ms),
            sql_int(s.peak_memory_bytes),
        ],
    )
    .ctx("recording migration measurements")?;
    Ok(())
}

impl Catalog {
    /// Queues a job unless one for the same (table, target layout) exists; a failed one is
    /// queued again (its finished units are kept).
    pub fn enqueue_job(&self, job: &NewJob) -> Result<Enqueued, CatalogError> {
        let now = self.now_ms();
        let spec_json = serde_json::to_string(&job.spec)
            .map_err(|e| CatalogError::Corrupt(format!("cannot serialize layout spec: {e}")))?;
        self.write("enqueueing a migration job", |tx| {
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT id FROM migration_jobs WHERE table_name = ?1 AND target_layout = ?2",
                    [job.table.as_str(), job.target_layout.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .ctx("looking up a migration job")?;
            if let Some(id) = existing {
                let record = find_job(tx, id)?.expect("row found above");
                if record.status != JobStatus::Failed {
                    return Ok(Enqueued::Existing(record));
                }
                tx.execute(
                    "UPDATE migration_jobs SET status = 'queued', error = NULL, \
                     retry_after_ms = NULL, lease_owner = NULL, lease_expires_ms = NULL, \
                     finished_at_ms = NULL, activate = ?2 WHERE id = ?1",
                    params![id, i64::from(job.activate)],
                )
                .ctx("requeueing a migration job")?;
                return Ok(Enqueued::Requeued(find_job(tx, id)?.expect("row exists")));
            }
            tx.execute(
                "INSERT INTO migration_jobs (table_name, source_layout, target_layout, \
                 spec_json, plan_json, mode, activate, status, units_total, created_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?9)",
                params![
                    job.table.as_str(),
                    job.source_layout.as_str(),
                    job.target_layout.as_str(),
                    spec_json,
                    job.plan_json,
                    job.mode.as_str(),
                    i64::from(job.activate),
                    sql_int(job.units_total),
                    now,
                ],
            )
            .ctx("inserting a migration job")?;
            let id = tx.last_insert_rowid();
            Ok(Enqueued::New(find_job(tx, id)?.expect("just inserted")))
        })
    }

    /// Claims the oldest claimable job (queued and due, or running with an expired lease) for
    /// `owner` with a lease of `lease_ms`; the attempt and fencing token go up by one.
    pub fn claim_job(
        &self,
        owner: &str,
        lease_ms: i64,
        table: Option<&TableName>,
    ) -> Result<Option<(JobRecord, Lease)>, CatalogError> {
        let now = self.now_ms();
        self.write("claiming a migration job", |tx| {
            let id: Option<i64> = tx
                .query_row(
                    "SELECT id FROM migration_jobs WHERE (?2 IS NULL OR table_name = ?2) AND \
                     ((status = 'queued' AND coalesce(retry_after_ms, 0) <= ?1) OR \
                      (status = 'running' AND coalesce(lease_expires_ms, 0) < ?1)) \
                     ORDER BY created_at_ms, id LIMIT 1",
                    params![now, table.map(TableName::as_str)],
                    |r| r.get(0),
                )
                .optional()
                .ctx("finding a claimable migration job")?;
            let Some(id) = id else { return Ok(None) };
            tx.execute(
                "UPDATE migration_jobs SET status = 'running', attempt = attempt + 1, \
                 fencing_token = fencing_token + 1, lease_owner = ?2, lease_expires_ms = ?3, \
                 started_at_ms = coalesce(started_at_ms, ?4) WHERE id = ?1",
                params![id, owner, now + lease_ms, now],
            )
            .ctx("claiming a migration job")?;
            let job = find_job(tx, id)?.expect("row exists");
            let lease = Lease {
                job_id: id,
                owner: owner.to_string(),
                token: job.fencing_token,
            };
            Ok(Some((job, lease)))
        })
    }

    /// Extends a held lease by `lease_ms` from now; `Conflict` if it was lost.
    pub fn heartbeat_job(&self, lease: &Lease, lease_ms: i64) -> Result<i64, CatalogError> {
        let now = self.now_ms();
        self.write("renewing a migration lease", |tx| {
            check_lease(tx, lease, now)?;
            tx.execute(
                "UPDATE migration_jobs SET lease_expires_ms = ?2 WHERE id = ?1",
                params![lease.job_id, now + lease_ms],
            )
            .ctx("renewing a migration lease")?;
            Ok(now + lease_ms)
        })
    }

    /// Records that units `0..units_done` are finished and durable, adding their measured cost.
    pub fn record_job_progress(
        &self,
        lease: &Lease,
        units_done: u64,
        stats: &JobStats,
    ) -> Result<(), CatalogError> {
        let now = self.now_ms();
        self.write("recording migration progress", |tx| {
            check_lease(tx, lease, now)?;
            tx.execute(
                "UPDATE migration_jobs SET units_done = ?2 WHERE id = ?1",
                params![lease.job_id, sql_int(units_done)],
            )
            .ctx("recording migration progress")?;
            add_stats(tx, lease.job_id, stats)
        })
    }

    /// The publish commit: checks the lease, registers `layout` as ready, activates it if the
    /// job asks to and its source layout is still active (compare-and-swap), and marks the job
    /// done with its final measurements, in one transaction.
    pub fn complete_job(
        &self,
        lease: &Lease,
        layout: &LayoutRecord,
        stats: &JobStats,
    ) -> Result<Published, CatalogError> {
        let now = self.now_ms();
        self.write("publishing a migration", |tx| {
            let job = check_lease(tx, lease, now)?;
            if !insert_layout_row(tx, layout, now)? {
                tx.execute(
                    "UPDATE layouts SET status = 'ready', path = ?3, row_count = ?4, \
                     file_count = ?5, row_group_count = ?6, total_bytes = ?7, digest = ?8, \
                     published_at_ms = ?9 WHERE table_name = ?1 AND layout_id = ?2",
                    params![
                        layout.table.as_str(),
                        layout.layout_id.as_str(),
                        layout.path,
                        sql_int(layout.row_count),
                        sql_int(layout.file_count),
                        sql_int(layout.row_group_count),
                        sql_int(layout.total_bytes),
                        layout.digest,
                        now,
                    ],
                )
                .ctx("marking a layout ready")?;
            }
            // Activation is a compare-and-swap against the layout the job was planned from:
            // if someone promoted or rolled back meanwhile, the new layout stays a candidate.
            let activated = job.activate && {
                let swap = crate::ActiveSwap {
                    table: &layout.table,
                    expected: &job.source_layout,
                    to: &layout.layout_id,
                    kind: crate::ActivationKind::Publish,
                    actor: "worker",
                    reason: "published by a migration asked to activate it",
                };
                match crate::serving::swap_active_in(tx, &swap, now) {
                    Ok(()) => true,
                    Err(CatalogError::ActiveChanged { .. }) => false,
                    Err(e) => return Err(e),
                }
            };
            add_stats(tx, job.id, stats)?;
            tx.execute(
                "UPDATE migration_jobs SET status = 'done', error = NULL, lease_owner = NULL, \
                 lease_expires_ms = NULL, finished_at_ms = ?2, units_done = units_total \
                 WHERE id = ?1",
                params![job.id, now],
            )
            .ctx("marking a migration job done")?;
            let job = find_job(tx, job.id)?.expect("row exists");
            Ok(Published { job, activated })
        })
    }

    /// Gives the job back after an error: queued again after `retry_after_ms` when `retryable`
    /// (ms from now), otherwise failed with `error`. Measurements of the attempt are kept.
    pub fn fail_job(
        &self,
        lease: &Lease,
        error: &str,
        retry_in_ms: Option<i64>,
        stats: &JobStats,
    ) -> Result<(), CatalogError> {
        let now = self.now_ms();
        self.write("failing a migration job", |tx| {
            check_lease(tx, lease, now)?;
            add_stats(tx, lease.job_id, stats)?;
            let (status, retry, finished) = match retry_in_ms {
                Some(ms) => ("queued", Some(now + ms), None),
                None => ("failed", None, Some(now)),
            };
            tx.execute(
                "UPDATE migration_jobs SET status = ?2, error = ?3, retry_after_ms = ?4, \
                 finished_at_ms = ?5, lease_owner = NULL, lease_expires_ms = NULL WHERE id = ?1",
                params![lease.job_id, status, error, retry, finished],
            )
            .ctx("failing a migration job")?;
            Ok(())
        })
    }

    /// Every job (of `table`, if given), oldest first.
    pub fn list_jobs(&self, table: Option<&TableName>) -> Result<Vec<JobRecord>, CatalogError> {
        self.read("listing migration jobs", |tx| {
            let sql = format!(
                "{JOB_SELECT} WHERE (?1 IS NULL OR table_name = ?1) ORDER BY created_at_ms, id"
            );
            collect_rows(
                tx,
                "listing migration jobs",
                &sql,
                [table.map(TableName::as_str)],
                job_from_row,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_mode_text_round_trip() {
        for s in [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Failed,
        ] {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
        for m in [MigrationMode::Full, MigrationMode::Incremental] {
            assert_eq!(MigrationMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(MigrationMode::parse("FULL"), None);
    }

    use crate::{LayoutStatus, TableRecord};
    use dbopt_core::ManualClock;
    use std::sync::Arc;

    fn layout(id: &LayoutId) -> LayoutRecord {
        LayoutRecord {
            table: TableName::new("t").unwrap(),
            layout_id: id.clone(),
            source_layout: None,
            spec: LayoutSpec::default(),
            status: LayoutStatus::Ready,
            path: format!("t/{}", id.dir_name()),
            row_count: 1,
            file_count: 1,
            row_group_count: 1,
            total_bytes: 1,
            digest: "1:0".into(),
            created_at_ms: 0,
            published_at_ms: None,
        }
    }

    fn setup() -> (Catalog, ManualClock, NewJob) {
        let clock = ManualClock::new(1_000);
        let cat = Catalog::open_in_memory(Arc::new(clock.clone())).unwrap();
        let table = TableName::new("t").unwrap();
        let record = TableRecord {
            name: table.clone(),
            created_at_ms: 0,
            active_layout: LayoutId::initial(),
            source: "test".into(),
            row_count: 1,
        };
        cat.register_table(&record, &layout(&LayoutId::initial()), false, None)
            .unwrap();
        let spec = LayoutSpec {
            row_group_rows: Some(10),
            ..Default::default()
        };
        let job = NewJob {
            table,
            source_layout: LayoutId::initial(),
            target_layout: LayoutId::derive(&LayoutId::initial(), &spec),
            spec,
            plan_json: "{}".into(),
            mode: MigrationMode::Incremental,
            activate: true,
            units_total: 3,
        };
        (cat, clock, job)
    }

    #[test]
    fn enqueueing_the_same_target_twice_gives_one_job() {
        let (cat, _clock, job) = setup();
        let first = cat.enqueue_job(&job).unwrap();
        assert!(matches!(first, Enqueued::New(_)));
        let second = cat.enqueue_job(&job).unwrap();
        assert!(matches!(second, Enqueued::Existing(_)));
        assert_eq!(first.job().id, second.job().id);
        assert_eq!(cat.list_jobs(None).unwrap().len(), 1);
    }

    #[test]
    fn a_worker_paused_past_its_lease_cannot_publish() {
        let (cat, clock, job) = setup();
        cat.enqueue_job(&job).unwrap();
        let (_, slow) = cat.claim_job("slow", 1_000, None).unwrap().unwrap();
        cat.record_job_progress(&slow, 1, &JobStats::default())
            .unwrap();
        // Nobody else may take a live lease.
        assert!(cat.claim_job("fast", 1_000, None).unwrap().is_none());
        // The slow worker pauses past its lease; even before a takeover it cannot write.
        clock.advance(1_500);
        let target = layout(&job.target_layout);
        let err = cat
            .complete_job(&slow, &target, &JobStats::default())
            .unwrap_err();
        assert!(matches!(err, CatalogError::Conflict(_)), "{err}");
        // Another worker takes over, resuming after the finished unit with a new token.
        let (taken, fast) = cat.claim_job("fast", 1_000, None).unwrap().unwrap();
        assert_eq!((taken.attempt, taken.units_done), (2, 1));
        assert!(fast.token > slow.token);
        // The old lease stays fenced even with a fresh heartbeat attempt.
        assert!(cat.heartbeat_job(&slow, 1_000).is_err());
        assert!(
            cat.record_job_progress(&slow, 2, &JobStats::default())
                .is_err()
        );
        let done = cat
            .complete_job(&fast, &target, &JobStats::default())
            .unwrap();
        assert_eq!(done.job.status, JobStatus::Done);
        assert!(done.activated);
        let table = cat.require_table(&job.table).unwrap();
        assert_eq!(table.active_layout, job.target_layout);
        // A done job is not queued again.
        assert!(matches!(
            cat.enqueue_job(&job).unwrap(),
            Enqueued::Existing(_)
        ));
    }

    #[test]
    fn failures_retry_with_backoff_or_fail_for_good() {
        let (cat, clock, job) = setup();
        cat.enqueue_job(&job).unwrap();
        let (_, lease) = cat.claim_job("w", 1_000, None).unwrap().unwrap();
        cat.fail_job(&lease, "disk hiccup", Some(5_000), &JobStats::default())
            .unwrap();
        assert!(cat.claim_job("w", 1_000, None).unwrap().is_none());
        clock.advance(5_000);
        let (_, lease) = cat.claim_job("w", 1_000, None).unwrap().unwrap();
        cat.fail_job(&lease, "unknown column x", None, &JobStats::default())
            .unwrap();
        let j = cat.list_jobs(None).unwrap().remove(0);
        assert_eq!(j.status, JobStatus::Failed);
        assert_eq!(j.error.as_deref(), Some("unknown column x"));
        assert!(matches!(
            cat.enqueue_job(&job).unwrap(),
            Enqueued::Requeued(_)
        ));
    }

    #[test]
    fn stats_accumulate_and_keep_peak() {
        let mut a = JobStats {
            bytes_read: 1,
            peak_memory_bytes: 10,
            ..Default::default()
        };
        a.accumulate(&JobStats {
            bytes_read: 2,
            peak_memory_bytes: 5,
            ..Default::default()
        });
        assert_eq!((a.bytes_read, a.peak_memory_bytes), (3, 10));
    }
}
