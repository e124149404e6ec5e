//! Running one claimed job, in the steps `run_job` names: `preflight` (read the plan and the
//! source, prepare staging keeping finished units, check disk space, partition cardinality and
//! clustering boundaries), `rewrite_units` (unit by unit into staging, each unit's progress
//! recorded durably under the lease), `verify` (the staged rows against the source's count and
//! digest), writing the staged manifest, and `publish` (rename into place, fenced catalog
//! commit). A step that fails leaves the job resumable: finished units stay, a failed
//! verification removes staging, and nothing is visible to queries before the commit.
//!
//! With `DATA_DIR` on object storage the layout's own prefix is the staging area, since object
//! stores have no rename: preflight deletes what an earlier attempt left there beyond its
//! recorded units; each unit is written on local disk, verified there (its files read back:
//! every row decodes, as many as were written, and their digest), uploaded with its digest
//! beside it, removed locally and only then recorded (so local disk holds the units in flight,
//! not the table). Verification of the layout then needs no second pass over the bucket: the
//! files' footers must hold the source's row count and the units' digests must add up to the
//! source's digest. `upload_layout` puts the manifest last, then the same fenced commit. Until
//! that commit no layout row names the prefix, so no query reads it, and gc deletes it once no
//! live job builds it.

use crate::gc::job_staging_name;
use crate::{MigrateError, MigrationPlan};
use arrow::datatypes::{DataType, SchemaRef};
use dbopt_catalog::{Catalog, JobRecord, JobStats, LayoutRecord, LayoutStatus, Lease};
use dbopt_core::curve::ColumnBoundaries;
use dbopt_core::layout::MANIFEST_FILE;
use dbopt_core::{LayoutId, LayoutManifest, ManifestFile, RowDigest};
use dbopt_engine::footer::{describe_file, partition_types, table_schema_at};
use dbopt_engine::layout_dir::LayoutDir;
use dbopt_engine::rewrite::{
    UnitOutcome, UnitSource, UnitTarget, curve_boundaries, digest_layout, distinct_count,
    register_unit_source, rewrite_session, rewrite_unit, unrepresentable_partition_rows,
};
use dbopt_engine::store::RemoteDir;
use dbopt_engine::writer::{fsync_dir, read_manifest, write_manifest};
use dbopt_engine::{EngineError, EngineSettings, Session};
use futures::{StreamExt, stream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Free disk space required, as a multiple of the bytes to rewrite.
pub const DISK_HEADROOM: f64 = 1.2;

/// What a job needs from its surroundings.
pub struct JobContext<'a> {
    /// The catalog (jobs, layouts).
    pub catalog: &'a Catalog,
    /// The absolute data directory: the layouts', or, when `remote` is set, local work space
    /// (staging, locks, spill).
    pub data_dir: &'a Path,
    /// The data directory on object storage, when `DATA_DIR` is a URL: layouts are read from
    /// there and published there (uploaded, then committed).
    pub remote: Option<&'a RemoteDir>,
    /// Engine sizing (memory pool, spill dir) for the rewrite.
    pub settings: EngineSettings,
    /// Most hive partitions a layout may create.
    pub max_partitions: u64,
    /// Lease length.
    pub lease_ms: i64,
    /// Set to stop between units (the job then goes back to the queue).
    pub stop: &'a AtomicBool,
}

/// What a finished job did.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    /// The job id.
    pub job_id: i64,
    /// The published layout.
    pub layout: LayoutId,
    /// Measured cost of this attempt.
    pub stats: JobStats,
    /// Bytes the sort spilled to disk in this attempt.
    pub spilled_bytes: u64,
    /// Units of this attempt sorted in memory (the rest were sorted externally).
    pub units_sorted_in_memory: u64,
    /// Units rewritten in this attempt.
    pub units_rewritten: u64,
    /// Whether the layout became active on publish (else it is a routed candidate).
    pub activated: bool,
}

/// Runs a claimed job to its publish, step by step. Errors leave the job to the caller to
/// fail or retry.
#[tracing::instrument(name = "migration_job", skip_all, fields(job_id = job.id, table = %job.table, layout = %job.target_layout, attempt = job.attempt))]
pub async fn run_job(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    lease: &Lease,
) -> Result<JobOutcome, MigrateError> {
    let started = Instant::now();
    let prepared = preflight(ctx, job).await?;
    let (attempt_stats, sorts) = rewrite_units(ctx, job, lease, &prepared).await?;
    let manifest = verify(ctx, job, lease, &prepared).await?;
    write_manifest(&prepared.data, &manifest)?;
    fail_point("migrate.verified")?;
    if let Some((target, _)) = &prepared.target {
        with_heartbeat(ctx, lease, upload_layout(ctx, job, target, &prepared.data)).await?;
    }
    let activated = publish(
        ctx,
        job,
        lease,
        &prepared.data,
        &manifest,
        &attempt_stats,
        started,
    )?;
    let _ = std::fs::remove_dir_all(&prepared.staging);
    log_published(job, &manifest, activated);
    Ok(JobOutcome {
        job_id: job.id,
        layout: job.target_layout.clone(),
        stats: attempt_stats,
        spilled_bytes: sorts.spilled_bytes,
        units_sorted_in_memory: sorts.in_memory,
        units_rewritten: sorts.units,
        activated,
    })
}

/// The table name the whole source layout is registered under during preflight.
const WHOLE_SOURCE: &str = "__dbopt_whole";

/// What the steps after preflight share.
struct Prepared {
    /// The job's plan.
    plan: MigrationPlan,
    /// The source layout's manifest.
    source: LayoutManifest,
    /// The source layout read whole (each unit narrows its files).
    whole: UnitSource,
    /// The table schema.
    schema: SchemaRef,
    /// The target's partition columns with their types.
    target_parts: Vec<(String, DataType)>,
    /// The rewrite session.
    session: Session,
    /// The job's staging directory (removed after publish or a failed verification).
    staging: PathBuf,
    /// The staging data directory, renamed into place on publish.
    data: PathBuf,
    /// Clustering boundaries, when the spec clusters.
    bounds: Option<Arc<Vec<ColumnBoundaries>>>,
    /// With `DATA_DIR` on object storage: the layout's prefix, where each unit is uploaded
    /// before it is recorded, and a session in this process that verifies each unit's local
    /// files before they go (a cluster's executors may not see this disk).
    target: Option<(RemoteDir, Session)>,
}

/// Reads the plan and the source, prepares staging (keeping finished units) and checks,
/// before any unit runs, that the rewrite can finish: free disk, partition values and count,
/// clustering boundaries.
#[tracing::instrument(skip_all)]
async fn preflight(ctx: &JobContext<'_>, job: &JobRecord) -> Result<Prepared, MigrateError> {
    let plan = read_plan(job.id, &job.plan_json)?;
    let table = &job.table;
    let table_dir = ctx.data_dir.join(table.as_str());
    let source_dir = layout_location(ctx, table, &job.source_layout)?;
    let unreadable = |e| MigrateError::UnreadableSource {
        table: table.to_string(),
        layout: job.source_layout.to_string(),
        source: e,
    };
    let source = match &source_dir {
        LayoutDir::Local(dir) => read_manifest(dir).map_err(unreadable)?,
        LayoutDir::Remote(_) => source_dir.manifest().map_err(unreadable)?.ok_or_else(|| {
            unreadable(EngineError::Source(format!(
                "{source_dir} holds no layout manifest"
            )))
        })?,
    };
    let schema = table_schema_at(&layout_location(ctx, table, &LayoutId::initial())?, table)?;
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let source_parts = partition_types(&schema, &source.spec.partition_by)?;
    let target_parts = partition_types(&schema, &plan.spec.partition_by)?;
    let session = rewrite_session(&rewrite_settings(ctx, &plan)).await?;

    let staging = table_dir.join("_staging").join(job_staging_name(job.id));
    let data = staging.join("data");
    let target = match ctx.remote {
        Some(root) => {
            let mut local = ctx.settings.clone();
            local.ballista = None;
            Some((
                clear_unrecorded(ctx, job, root).await?,
                rewrite_session(&local).await?,
            ))
        }
        None => {
            reclaim_unpublished(ctx, job, &table_dir, &data)?;
            None
        }
    };
    std::fs::create_dir_all(&data)
        .map_err(|e| MigrateError::io(format!("creating {}", data.display()), e))?;
    drop_unfinished(&data, job.units_done)?;
    let in_flight = target.is_some().then(|| units_in_flight(ctx, &session));
    check_free_disk(
        ctx,
        &staging,
        staged_bytes(&plan, &source, job.units_done, in_flight),
    )?;

    let whole = UnitSource {
        dir: source_dir,
        manifest: source.clone(),
        partition_cols: source_parts,
        column_order: columns,
        files: None,
    };
    register_unit_source(&session, WHOLE_SOURCE, &whole).await?;
    check_partitions(ctx, job, &plan, &source.spec.partition_by, &session).await?;
    let bounds = clustering_bounds(job, &plan, &session, source.row_count).await?;
    session.deregister(WHOLE_SOURCE);
    tracing::info!(
        source = %job.source_layout,
        "job {}: {} -> {} ({}), units {}/{} done, attempt {}",
        job.id,
        job.source_layout,
        job.target_layout,
        plan.spec.describe(),
        job.units_done,
        plan.units.len(),
        job.attempt
    );
    Ok(Prepared {
        plan,
        source,
        whole,
        schema,
        target_parts,
        session,
        staging,
        data,
        bounds,
        target,
    })
}

/// The settings the rewrite runs with: on the Ballista cluster when one is configured, except
/// for a clustered (Z-order, Hilbert) spec, whose curve key is a function of dbopt's own that
/// the cluster's executors do not have: that sort runs in this process.
fn rewrite_settings(ctx: &JobContext<'_>, plan: &MigrationPlan) -> EngineSettings {
    let mut settings = ctx.settings.clone();
    if settings.ballista.is_some() && !plan.spec.cluster_by.is_empty() {
        tracing::info!(
            "the {:?} curve key is computed by dbopt, not by the Ballista executors: this rewrite sorts in this process",
            plan.spec.curve
        );
        settings.ballista = None;
    }
    settings
}

/// The job's plan, parsed from the JSON stored with the job.
fn read_plan(job_id: i64, plan_json: &str) -> Result<MigrationPlan, MigrateError> {
    serde_json::from_str(plan_json).map_err(|source| MigrateError::CorruptPlan {
        job: job_id,
        source,
    })
}

/// Source bytes of the units not yet done that local staging holds at once: all of them, or,
/// when units are uploaded as they finish (`in_flight` given), the largest `in_flight`.
fn staged_bytes(
    plan: &MigrationPlan,
    source: &LayoutManifest,
    units_done: u64,
    in_flight: Option<usize>,
) -> u64 {
    let mut left: Vec<u64> = plan
        .units
        .iter()
        .skip(units_done as usize)
        .map(|unit| {
            unit.iter()
                .filter_map(|p| source.files.iter().find(|f| &f.path == p))
                .map(|f| f.size_bytes)
                .sum()
        })
        .collect();
    if let Some(n) = in_flight {
        left.sort_unstable_by(|a, b| b.cmp(a));
        left.truncate(n);
    }
    left.iter().sum()
}

/// With `DATA_DIR` on object storage: the layout's prefix, cleared of every object an earlier
/// attempt left there beyond the units it recorded (a unit uploaded but not recorded, a
/// manifest uploaded but not committed), so nothing but this job's units is listed with it.
async fn clear_unrecorded(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    root: &RemoteDir,
) -> Result<RemoteDir, MigrateError> {
    refuse_if_published(ctx, job)?;
    let target = root.child(&job.target_layout.path_in(&job.table))?;
    let done = job.units_done;
    let cleared = target
        .delete_unless(|rel| {
            let name = rel.rsplit('/').next().unwrap_or(rel);
            let unit = if name.ends_with(".parquet") {
                unit_of(name)
            } else {
                unit_of_digest(name)
            };
            unit.is_some_and(|u| u < done)
        })
        .await?;
    if cleared > 0 {
        tracing::info!(
            "job {}: removed {cleared} objects an earlier attempt left at {} beyond its {done} recorded units",
            job.id,
            target.url
        );
    }
    Ok(target)
}

/// Refuses to start when the file system holding `staging` has less than `DISK_HEADROOM`
/// times the bytes left to rewrite.
fn check_free_disk(ctx: &JobContext<'_>, staging: &Path, left: u64) -> Result<(), MigrateError> {
    let need = (left as f64 * DISK_HEADROOM) as u64;
    let free = free_disk_bytes(staging)?;
    if free < need {
        return Err(MigrateError::NotEnoughDisk {
            need,
            free,
            data_dir: ctx.data_dir.to_path_buf(),
        });
    }
    Ok(())
}

/// Refuses a partitioning whose values hive directories cannot carry (null, empty) or that
/// would create more than `max_partitions` directories; a source partitioned the same way
/// (a layout re-sorted inside its partitions) already has its directories and is not counted.
async fn check_partitions(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    plan: &MigrationPlan,
    source_partitioning: &[String],
    session: &Session,
) -> Result<(), MigrateError> {
    let columns = &plan.spec.partition_by;
    if columns.is_empty() || columns == source_partitioning {
        return Ok(());
    }
    let bad = unrepresentable_partition_rows(session, WHOLE_SOURCE, columns).await?;
    if bad > 0 {
        return Err(MigrateError::NullPartitionValues {
            columns: columns.join(", "),
            count: bad,
        });
    }
    let n = distinct_count(session, WHOLE_SOURCE, columns).await?;
    if n > ctx.max_partitions {
        return Err(MigrateError::TooManyPartitions {
            columns: columns.join(", "),
            count: n,
            max: ctx.max_partitions,
        });
    }
    tracing::info!(
        partitions = n,
        "job {}: partitioning on ({}) into {n} partitions",
        job.id,
        columns.join(", ")
    );
    Ok(())
}

/// The curve's quantile boundaries over the whole source, when the spec clusters.
async fn clustering_bounds(
    job: &JobRecord,
    plan: &MigrationPlan,
    session: &Session,
    rows: u64,
) -> Result<Option<Arc<Vec<ColumnBoundaries>>>, MigrateError> {
    if plan.spec.cluster_by.is_empty() {
        return Ok(None);
    }
    let b = curve_boundaries(session, WHOLE_SOURCE, &plan.spec.cluster_by, rows).await?;
    tracing::info!(
        "job {}: clustering on ({}) with {:?} over {} buckets",
        job.id,
        plan.spec.cluster_by.join(", "),
        plan.spec.curve,
        b.iter()
            .map(|x| x.bucket_count().to_string())
            .collect::<Vec<_>>()
            .join("x")
    );
    Ok(Some(Arc::new(b)))
}

/// Rewrites the units not yet done, in order of their index. On a Ballista cluster up to
/// [`units_in_flight`] units run at once (their sorts are jobs the executors share); in this
/// process one at a time, since each sort already uses every core. Progress is recorded in
/// unit order, so a unit that finishes early waits for the ones before it: a crash never
/// leaves a recorded unit behind an unrecorded one.
#[tracing::instrument(skip_all, fields(units = p.plan.units.len()))]
async fn rewrite_units(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    lease: &Lease,
    p: &Prepared,
) -> Result<(JobStats, SortTally), MigrateError> {
    let total = p.plan.units.len();
    let in_flight = units_in_flight(ctx, &p.session);
    if in_flight > 1 && total > job.units_done as usize + 1 {
        tracing::info!(
            "job {}: up to {in_flight} units at once on the cluster",
            job.id
        );
    }
    let pending = p
        .plan
        .units
        .iter()
        .enumerate()
        .skip(job.units_done as usize)
        .map(|(k, files)| {
            let source = UnitSource {
                files: (total > 1).then(|| files.clone()),
                ..p.whole.clone()
            };
            write_unit(ctx, job, p, k, source)
        });
    let mut written = stream::iter(pending).buffered(in_flight);
    with_heartbeat(ctx, lease, async {
        let mut attempt_stats = JobStats::default();
        let mut sorts = SortTally::default();
        while let Some(unit) = written.next().await {
            let unit = unit?;
            sorts.add(&unit.outcome);
            fail_point("migrate.unit_written")?;
            if let Some((target, local)) = &p.target {
                upload_unit(job, p, target, local, &unit).await?;
            }
            attempt_stats.accumulate(&record_unit(ctx, job, lease, p, unit)?);
        }
        Ok((attempt_stats, sorts))
    })
    .await
}

/// How an attempt's units were sorted.
#[derive(Debug, Default)]
struct SortTally {
    units: u64,
    in_memory: u64,
    spilled_bytes: u64,
}

impl SortTally {
    fn add(&mut self, unit: &UnitOutcome) {
        self.units += 1;
        self.in_memory += u64::from(unit.sorted_in_memory);
        self.spilled_bytes += unit.spilled_bytes;
    }
}

/// Units rewritten at once: the worker's threads when the session runs on a cluster, else 1.
fn units_in_flight(ctx: &JobContext<'_>, session: &Session) -> usize {
    if session.scheduler().is_some() {
        ctx.settings.effective_threads()
    } else {
        1
    }
}

/// A unit written to staging, not yet recorded.
struct WrittenUnit {
    index: usize,
    outcome: UnitOutcome,
    elapsed: Duration,
}

/// Rewrites unit `index` (reading `source`) into staging.
#[tracing::instrument(name = "rewrite_unit", skip_all, fields(unit = index + 1, units = p.plan.units.len()))]
async fn write_unit(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    p: &Prepared,
    index: usize,
    source: UnitSource,
) -> Result<WrittenUnit, MigrateError> {
    if ctx.stop.load(Ordering::SeqCst) {
        return Err(MigrateError::Interrupted(format!(
            "stopped before unit {}/{} of job {}",
            index + 1,
            p.plan.units.len(),
            job.id
        )));
    }
    let started = Instant::now();
    let prefix = format!("u{index:05}-");
    let target = UnitTarget {
        dir: &p.data,
        file_prefix: &prefix,
        rows_per_file: p.plan.rows_per_file,
        encode_threads: ctx.settings.effective_threads(),
    };
    let outcome =
        rewrite_unit(&p.session, &source, &p.plan.spec, p.bounds.clone(), &target).await?;
    Ok(WrittenUnit {
        index,
        outcome,
        elapsed: started.elapsed(),
    })
}

/// Verifies a written unit's local files (see [`unit_digest`]), uploads them to the layout's
/// prefix and its digest after them, then removes them from local disk (the unit is recorded
/// after this, so a crash before the record leaves objects the next attempt's preflight
/// deletes).
async fn upload_unit(
    job: &JobRecord,
    p: &Prepared,
    target: &RemoteDir,
    local: &Session,
    unit: &WrittenUnit,
) -> Result<(), MigrateError> {
    let digest = unit_digest(job, p, local, unit).await?;
    let mut sent = 0;
    for file in &unit.outcome.files {
        sent += target
            .upload(&p.data.join(&file.path), &file.path, &|_| {})
            .await?;
    }
    target
        .put(&digest_name(unit.index), digest.to_string().into_bytes())
        .await?;
    fail_point("migrate.unit_uploaded")?;
    for file in &unit.outcome.files {
        let local = p.data.join(&file.path);
        std::fs::remove_file(&local)
            .map_err(|e| MigrateError::io(format!("removing {}", local.display()), e))?;
    }
    tracing::debug!(
        "job {}: unit {} uploaded ({sent} bytes) to {}",
        job.id,
        unit.index + 1,
        target.url
    );
    Ok(())
}

/// The digest of a written unit's files, read back from local disk: every row must decode, and
/// as many as the writer wrote. The scan reads the unit's files alone, linked into a directory
/// of their own: other units in flight write beside them in staging, and a session caches the
/// listings it made, so a directory it listed once is never listed again.
async fn unit_digest(
    job: &JobRecord,
    p: &Prepared,
    session: &Session,
    unit: &WrittenUnit,
) -> Result<RowDigest, MigrateError> {
    let files = unit
        .outcome
        .files
        .iter()
        .map(|f| describe_staged_file(&p.data, &f.path))
        .collect::<Result<Vec<_>, _>>()?;
    let written = staged_manifest(job, p, files, 0);
    let alone = link_unit(p, unit)?;
    let digest = digest_layout(
        session,
        &LayoutDir::Local(alone.clone()),
        &written,
        p.target_parts.clone(),
        &p.schema,
    )
    .await;
    std::fs::remove_dir_all(&alone)
        .map_err(|e| MigrateError::io(format!("removing {}", alone.display()), e))?;
    let digest = digest?;
    if digest.rows != unit.outcome.rows {
        return Err(MigrateError::Verify(format!(
            "unit {} of layout {}: the writer wrote {} rows, its files read back {}",
            unit.index + 1,
            job.target_layout,
            unit.outcome.rows,
            digest.rows
        )));
    }
    Ok(digest)
}

/// Hard-links unit `unit`'s files into `verify-uNNNNN` under staging (cleared first: a crashed
/// attempt may have left it), keeping their relative paths; returns that directory.
fn link_unit(p: &Prepared, unit: &WrittenUnit) -> Result<PathBuf, MigrateError> {
    let dir = p.staging.join(format!("verify-u{:05}", unit.index));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| MigrateError::io(format!("removing {}", dir.display()), e))?;
    }
    for file in &unit.outcome.files {
        let to = dir.join(&file.path);
        let parent = to.parent().unwrap_or(&dir);
        std::fs::create_dir_all(parent)
            .map_err(|e| MigrateError::io(format!("creating {}", parent.display()), e))?;
        std::fs::hard_link(p.data.join(&file.path), &to)
            .map_err(|e| MigrateError::io(format!("linking {}", to.display()), e))?;
    }
    Ok(dir)
}

/// The manifest of the job's target layout holding `files`, its digest not yet known.
fn staged_manifest(
    job: &JobRecord,
    p: &Prepared,
    files: Vec<ManifestFile>,
    created_at_ms: i64,
) -> LayoutManifest {
    LayoutManifest {
        layout_id: job.target_layout.clone(),
        table: job.table.to_string(),
        source_layout: Some(job.source_layout.clone()),
        spec: p.plan.spec.clone(),
        row_count: files.iter().map(|f| f.rows).sum(),
        files,
        digest: String::new(),
        created_at_ms,
        columns: Vec::new(),
    }
}

/// The object beside a layout's files holding unit `index`'s digest (a `_` name: listings and
/// scans pass over it).
fn digest_name(index: usize) -> String {
    format!("_dbopt_unit_{index:05}.digest")
}

/// The unit a digest object belongs to.
fn unit_of_digest(name: &str) -> Option<u64> {
    name.strip_prefix("_dbopt_unit_")?
        .strip_suffix(".digest")?
        .parse()
        .ok()
}

/// The sum of the uploaded units' digests; a unit without one fails verification.
async fn uploaded_digest(target: &RemoteDir, units: usize) -> Result<RowDigest, MigrateError> {
    let mut total = RowDigest::default();
    for index in 0..units {
        let name = digest_name(index);
        let text = target
            .get(&name)
            .await?
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let digest = text.as_deref().and_then(RowDigest::parse).ok_or_else(|| {
            MigrateError::Verify(format!(
                "unit {} at {} has no readable digest ({name})",
                index + 1,
                target.url
            ))
        })?;
        total.merge(&digest);
    }
    Ok(total)
}

/// Records a written unit's progress durably under the lease; returns its measured cost.
fn record_unit(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    lease: &Lease,
    p: &Prepared,
    unit: WrittenUnit,
) -> Result<JobStats, MigrateError> {
    let WrittenUnit {
        index,
        outcome,
        elapsed,
    } = unit;
    let unit_stats = JobStats {
        bytes_read: outcome.bytes_read,
        bytes_written: outcome.files.iter().map(|f| f.size_bytes).sum(),
        rows_written: outcome.rows,
        files_written: outcome.files.len() as u64,
        duration_ms: elapsed.as_millis() as u64,
        peak_memory_bytes: peak_rss_bytes(),
    };
    ctx.catalog
        .record_job_progress(lease, index as u64 + 1, &unit_stats)
        .map_err(|e| MigrateError::LeaseLost(e.to_string()))?;
    fail_point("migrate.unit_recorded")?;
    let sort = if outcome.sorted_in_memory {
        "sorted in memory".to_string()
    } else {
        format!("sorted externally, spilled {} bytes", outcome.spilled_bytes)
    };
    tracing::info!(
        rows = outcome.rows,
        spilled_bytes = outcome.spilled_bytes,
        sorted_in_memory = outcome.sorted_in_memory,
        "job {}: unit {}/{}: {} rows into {} files ({} partitions), {sort}",
        job.id,
        index + 1,
        p.plan.units.len(),
        outcome.rows,
        outcome.files.len(),
        outcome.partitions,
    );
    Ok(unit_stats)
}

/// Checks the staged files hold the source's rows (count and digest) and returns their
/// manifest, digest set; a mismatch removes the staging directory.
#[tracing::instrument(skip_all)]
async fn verify(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    lease: &Lease,
    p: &Prepared,
) -> Result<LayoutManifest, MigrateError> {
    let location = match &p.target {
        Some((target, _)) => LayoutDir::Remote(target.clone()),
        None => LayoutDir::Local(p.data.clone()),
    };
    let files = describe_staged_files(&location)?;
    let staged = staged_manifest(job, p, files, ctx.catalog.now_ms());
    let digest: RowDigest = with_heartbeat(ctx, lease, async {
        match &p.target {
            // Each unit's files were read back before they were uploaded.
            Some((target, _)) => uploaded_digest(target, p.plan.units.len()).await,
            None => Ok(digest_layout(
                &p.session,
                &location,
                &staged,
                p.target_parts.clone(),
                &p.schema,
            )
            .await?),
        }
    })
    .await?;
    let verified = matching_source(staged, digest, &p.source).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&p.staging);
    })?;
    tracing::debug!(rows = verified.row_count, digest = %verified.digest, "verified");
    Ok(verified)
}

/// The staged manifest with its `digest` set, when its row count and digest equal the
/// source's; a verification error naming both otherwise.
fn matching_source(
    mut staged: LayoutManifest,
    digest: RowDigest,
    source: &LayoutManifest,
) -> Result<LayoutManifest, MigrateError> {
    let expected = RowDigest::parse(&source.digest);
    if staged.row_count != source.row_count || Some(digest) != expected {
        return Err(MigrateError::Verify(format!(
            "layout {} holds {} rows with digest {digest}, the source holds {} rows with digest {}",
            staged.layout_id, staged.row_count, source.row_count, source.digest
        )));
    }
    staged.digest = digest.to_string();
    Ok(staged)
}

/// Renames the verified staging directory into `layout_<id>` (on local disk; on object storage
/// `upload_layout` has put it there) and commits the layout in one transaction that checks the
/// lease; true if it became active.
#[tracing::instrument(skip_all)]
fn publish(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    lease: &Lease,
    data: &Path,
    manifest: &LayoutManifest,
    stats: &JobStats,
    started: Instant,
) -> Result<bool, MigrateError> {
    // Fail early (before touching the layout directory) if the lease is already gone.
    ctx.catalog
        .heartbeat_job(lease, ctx.lease_ms)
        .map_err(|e| MigrateError::LeaseLost(e.to_string()))?;
    if ctx.remote.is_none() {
        rename_into_place(ctx, job, data)?;
    }
    let path = job.target_layout.path_in(&job.table);
    let record = LayoutRecord::from_manifest(manifest, path, LayoutStatus::Ready)?;
    let mut final_stats = JobStats {
        duration_ms: 0,
        peak_memory_bytes: peak_rss_bytes(),
        ..Default::default()
    };
    // Unit costs were recorded with progress; add only the verify/publish time.
    let unit_ms = stats.duration_ms;
    final_stats.duration_ms = (started.elapsed().as_millis() as u64).saturating_sub(unit_ms);
    let published = ctx
        .catalog
        .complete_job(lease, &record, &final_stats)
        .map_err(|e| MigrateError::LeaseLost(e.to_string()))?;
    fail_point("migrate.committed")?;
    Ok(published.activated)
}

/// Renames the verified staging directory into `layout_<id>` and fsyncs the table directory,
/// first removing a directory an earlier attempt renamed there but never committed.
fn rename_into_place(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    data: &Path,
) -> Result<(), MigrateError> {
    let table_dir = ctx.data_dir.join(job.table.as_str());
    let target: PathBuf = table_dir.join(job.target_layout.dir_name());
    if target.exists() {
        // Left by an earlier attempt that crashed between rename and commit; the catalog never
        // saw it, so no query reads it.
        refuse_if_published(ctx, job)?;
        std::fs::remove_dir_all(&target)
            .map_err(|e| MigrateError::io(format!("removing stale {}", target.display()), e))?;
    }
    std::fs::rename(data, &target)
        .map_err(|e| MigrateError::io(format!("renaming into {}", target.display()), e))?;
    fsync_dir(&table_dir)?;
    fail_point("migrate.renamed")?;
    debug_assert!(target.join(MANIFEST_FILE).exists());
    Ok(())
}

/// Uploads the verified layout's manifest to its prefix on object storage, where its units
/// already are (object stores have no atomic rename: the catalog commit, not the upload, makes
/// the layout visible).
async fn upload_layout(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    target: &RemoteDir,
    data: &Path,
) -> Result<(), MigrateError> {
    refuse_if_published(ctx, job)?;
    target
        .upload(&data.join(MANIFEST_FILE), MANIFEST_FILE, &|_| {})
        .await?;
    tracing::info!("job {}: layout uploaded to {}", job.id, target.url);
    fail_point("migrate.uploaded")?;
    Ok(())
}

/// Refuses to publish a layout the catalog already holds as ready.
fn refuse_if_published(ctx: &JobContext<'_>, job: &JobRecord) -> Result<(), MigrateError> {
    let published = ctx
        .catalog
        .get_layout(&job.table, &job.target_layout)?
        .is_some_and(|l| l.status == LayoutStatus::Ready);
    if published {
        return Err(MigrateError::AlreadyPublished(
            job.target_layout.to_string(),
        ));
    }
    Ok(())
}

/// Where a layout of `table` is: under the data directory, or its prefix on object storage
/// (the one the catalog records, see `Workspace::layout_location`).
fn layout_location(
    ctx: &JobContext<'_>,
    table: &dbopt_core::TableName,
    layout: &LayoutId,
) -> Result<LayoutDir, MigrateError> {
    let relative = layout.path_in(table);
    Ok(match ctx.remote {
        Some(root) => {
            let recorded = ctx.catalog.get_layout(table, layout)?.map(|l| l.path);
            LayoutDir::Remote(root.child(&recorded.unwrap_or(relative))?)
        }
        None => LayoutDir::Local(ctx.data_dir.join(relative)),
    })
}

/// Logs what the publish did: the layout's size and whether it is now active.
fn log_published(job: &JobRecord, manifest: &LayoutManifest, activated: bool) {
    tracing::info!(
        rows = manifest.row_count,
        bytes = manifest.total_bytes(),
        activated,
        "job {}: published layout {} ({} rows, {} files, {} bytes){}",
        job.id,
        job.target_layout,
        manifest.row_count,
        manifest.files.len(),
        manifest.total_bytes(),
        publish_note(job.activate, activated)
    );
}

/// How the publish log line ends: whether the layout is now active or a candidate.
fn publish_note(asked_to_activate: bool, activated: bool) -> &'static str {
    match (asked_to_activate, activated) {
        (true, true) => ", now active",
        (true, false) => ", kept as a candidate: the active layout changed meanwhile",
        (false, _) => ", a routed candidate until its canary promotes it",
    }
}

/// Free bytes on the file system holding `dir` (statvfs).
pub fn free_disk_bytes(dir: &Path) -> Result<u64, MigrateError> {
    let stat = rustix::fs::statvfs(dir)
        .map_err(|e| MigrateError::io(format!("statvfs {}", dir.display()), e.into()))?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// The process's peak resident memory (VmHWM) in bytes, if the OS reports it.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The unit index of a staged file name `part-uNNNNN-MMMMM.parquet`.
fn unit_of(file_name: &str) -> Option<u64> {
    file_name
        .strip_prefix("part-u")?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Every file under `dir`, relative paths, sorted.
fn list_files(dir: &Path) -> Result<Vec<String>, MigrateError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(MigrateError::io(format!("reading {}", d.display()), e)),
        };
        for entry in entries {
            let entry =
                entry.map_err(|e| MigrateError::io(format!("reading {}", d.display()), e))?;
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push(rel.to_string_lossy().to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Removes staged files of unfinished units (a crash mid-unit), keeping units `< done`.
fn drop_unfinished(data: &Path, done: u64) -> Result<(), MigrateError> {
    for rel in list_files(data)? {
        let name = rel.rsplit('/').next().unwrap_or(&rel);
        let keep = name.ends_with(".parquet") && unit_of(name).is_some_and(|u| u < done);
        if !keep {
            let p = data.join(&rel);
            std::fs::remove_file(&p)
                .map_err(|e| MigrateError::io(format!("removing {}", p.display()), e))?;
        }
    }
    Ok(())
}

/// Describes every staged Parquet file (rows, row groups, size) from its footer; an
/// unreadable one fails verification.
fn describe_staged_files(staged: &LayoutDir) -> Result<Vec<ManifestFile>, MigrateError> {
    staged.describe_files().map_err(unreadable_staged)
}

/// [`describe_staged_files`] for one local file.
fn describe_staged_file(data: &Path, relative: &str) -> Result<ManifestFile, MigrateError> {
    describe_file(data, relative).map_err(unreadable_staged)
}

/// A staged file that cannot be read fails verification; other errors stay what they are.
fn unreadable_staged(e: EngineError) -> MigrateError {
    match e {
        EngineError::CorruptParquet { path, message } => {
            MigrateError::Verify(format!("staged file {path} is unreadable: {message}"))
        }
        other => other.into(),
    }
}

/// Runs `future` while renewing the lease every third of its length; a lost lease aborts.
async fn with_heartbeat<T>(
    ctx: &JobContext<'_>,
    lease: &Lease,
    future: impl std::future::Future<Output = Result<T, MigrateError>>,
) -> Result<T, MigrateError> {
    let period = Duration::from_millis((ctx.lease_ms / 3).max(50) as u64);
    let mut ticker = tokio::time::interval(period);
    ticker.tick().await;
    tokio::pin!(future);
    loop {
        tokio::select! {
            out = &mut future => return out,
            _ = ticker.tick() => {
                ctx.catalog
                    .heartbeat_job(lease, ctx.lease_ms)
                    .map_err(|e| MigrateError::LeaseLost(e.to_string()))?;
            }
        }
    }
}

/// Takes back a layout directory an earlier attempt renamed into place but never committed
/// (it crashed between the rename and the catalog commit): it goes back to staging, so this
/// attempt verifies and publishes it instead of finding its finished units gone.
fn reclaim_unpublished(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    table_dir: &Path,
    data: &Path,
) -> Result<(), MigrateError> {
    let target = table_dir.join(job.target_layout.dir_name());
    if data.exists() || !target.join(MANIFEST_FILE).exists() {
        return Ok(());
    }
    let published = ctx
        .catalog
        .get_layout(&job.table, &job.target_layout)?
        .is_some_and(|l| l.status == LayoutStatus::Ready);
    if published {
        return Ok(());
    }
    let staging = data.parent().unwrap_or(table_dir);
    std::fs::create_dir_all(staging)
        .map_err(|e| MigrateError::io(format!("creating {}", staging.display()), e))?;
    std::fs::rename(&target, data).map_err(|e| {
        MigrateError::io(
            format!("moving unpublished {} back to staging", target.display()),
            e,
        )
    })?;
    fsync_dir(table_dir)?;
    tracing::info!(
        "job {}: took back layout {} left unpublished by an earlier attempt",
        job.id,
        job.target_layout
    );
    Ok(())
}

/// Reaches a named fail point (a no-op in normal builds; see `dbopt_core::failpoint`).
fn fail_point(name: &str) -> Result<(), MigrateError> {
    dbopt_core::fail_point(name).map_err(|e| MigrateError::io(format!("at {name}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_index_is_read_from_file_names() {
        assert_eq!(unit_of("part-u00003-00001.parquet"), Some(3));
        assert_eq!(unit_of("part-00001.parquet"), None);
        assert_eq!(unit_of("_dbopt_layout.json"), None);
    }

    #[test]
    fn unfinished_units_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("c=US");
        std::fs::create_dir_all(&sub).unwrap();
        for name in ["part-u00000-00000.parquet", "part-u00001-00000.parquet"] {
            std::fs::write(sub.join(name), b"x").unwrap();
        }
        std::fs::write(dir.path().join(MANIFEST_FILE), b"{}").unwrap();
        drop_unfinished(dir.path(), 1).unwrap();
        assert_eq!(
            list_files(dir.path()).unwrap(),
            vec!["c=US/part-u00000-00000.parquet"]
        );
        assert!(free_disk_bytes(dir.path()).unwrap() > 0);
    }

    fn manifest(files: &[(&str, u64)], rows: u64, digest: &str) -> LayoutManifest {
        LayoutManifest {
            layout_id: LayoutId::initial(),
            table: "t".into(),
            source_layout: None,
            spec: Default::default(),
            files: files
                .iter()
                .map(|(path, size)| ManifestFile {
                    path: path.to_string(),
                    size_bytes: *size,
                    rows: 1,
                    row_groups: 1,
                })
                .collect(),
            row_count: rows,
            digest: digest.into(),
            created_at_ms: 0,
            columns: Vec::new(),
        }
    }

    fn plan(units: &[&[&str]]) -> MigrationPlan {
        MigrationPlan {
            table: "t".into(),
            source_layout: LayoutId::initial(),
            target_layout: LayoutId::parse("ab12").unwrap(),
            spec: Default::default(),
            mode: dbopt_catalog::MigrationMode::Incremental,
            activate: false,
            units: units
                .iter()
                .map(|u| u.iter().map(std::string::ToString::to_string).collect())
                .collect(),
            files_to_rewrite: 0,
            bytes_to_rewrite: 0,
            rows: 0,
            rows_per_file: 10,
            expected_output_files: 1,
        }
    }

    #[test]
    fn plans_are_read_back_and_garbage_is_refused() {
        let p = plan(&[&["a"], &["b"]]);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(read_plan(7, &json).unwrap(), p);
        let err = read_plan(7, "{not json").unwrap_err();
        assert!(
            err.to_string().starts_with("job 7 has an unreadable plan"),
            "{err}"
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn disk_need_counts_only_the_units_left() {
        let source = manifest(&[("a", 100), ("b", 20), ("c", 3)], 3, "");
        let p = plan(&[&["a"], &["b", "c"]]);
        assert_eq!(staged_bytes(&p, &source, 0, None), 123);
        assert_eq!(staged_bytes(&p, &source, 1, None), 23);
        assert_eq!(staged_bytes(&p, &source, 2, None), 0);
        // Units uploaded as they finish: only the largest in flight count.
        assert_eq!(staged_bytes(&p, &source, 0, Some(1)), 100);
        assert_eq!(staged_bytes(&p, &source, 1, Some(1)), 23);
        assert_eq!(staged_bytes(&p, &source, 0, Some(2)), 123);
    }

    #[test]
    fn verification_needs_the_source_count_and_digest() {
        let rows = RowDigest { rows: 3, sum: 42 };
        let source = manifest(&[("a", 1)], 3, &rows.to_string());
        let staged = manifest(&[("x", 1)], 3, "");
        let verified = matching_source(staged.clone(), rows, &source).unwrap();
        assert_eq!(verified.digest, source.digest);
        let mut short = staged.clone();
        short.row_count = 2;
        let err = matching_source(short, rows, &source).unwrap_err();
        assert!(matches!(err, MigrateError::Verify(_)), "{err}");
        let other = RowDigest { rows: 4, ..rows };
        assert!(matching_source(staged, other, &source).is_err());
    }

    #[test]
    fn the_publish_note_says_where_the_layout_stands() {
        assert_eq!(publish_note(true, true), ", now active");
        assert!(publish_note(true, false).contains("active layout changed"));
        assert!(publish_note(false, false).contains("canary"));
    }
}
