//! Running one claimed job: preflight checks, unit-by-unit rewrite into staging with durable
//! progress, verification against the source digest, rename into place and the fenced publish.

use crate::gc::job_staging_name;
use crate::{MigrateError, MigrationPlan};
use arrow::datatypes::{DataType, SchemaRef};
use dbopt_catalog::{Catalog, JobRecord, JobStats, LayoutRecord, LayoutStatus, Lease};
use dbopt_core::curve::ColumnBoundaries;
use dbopt_core::layout::MANIFEST_FILE;
use dbopt_core::{LayoutId, LayoutManifest, ManifestFile, RowDigest, TableName};
use dbopt_engine::EngineSettings;
use dbopt_engine::datafusion::prelude::SessionContext;
use dbopt_engine::rewrite::{
    UnitSource, UnitTarget, curve_boundaries, digest_layout, distinct_count, parquet_file_schema,
    register_unit_source, rewrite_session, rewrite_unit, unrepresentable_partition_rows,
};
use dbopt_engine::writer::{fsync_dir, read_manifest, write_manifest};
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
    /// The absolute data directory.
    pub data_dir: &'a Path,
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
    /// Whether the layout became active on publish (else it is a routed candidate).
    pub activated: bool,
}

/// The table's canonical schema: the footer schema of its initial layout's first file.
pub fn table_schema(data_dir: &Path, table: &TableName) -> Result<SchemaRef, MigrateError> {
    let dir = data_dir
        .join(table.as_str())
        .join(LayoutId::initial().dir_name());
    let manifest = read_manifest(&dir)?;
    let first = manifest.files.first().ok_or_else(|| {
        MigrateError::Invalid(format!(
            "the initial layout of table '{table}' has no files"
        ))
    })?;
    Ok(parquet_file_schema(&dir.join(&first.path))?)
}

/// The partition columns of `cols` with their types in `schema`.
pub fn partition_types(
    schema: &SchemaRef,
    cols: &[String],
) -> Result<Vec<(String, DataType)>, MigrateError> {
    cols.iter()
        .map(|c| {
            schema
                .field_with_name(c)
                .map(|f| (c.clone(), f.data_type().clone()))
                .map_err(|_| MigrateError::Invalid(format!("unknown partition column '{c}'")))
        })
        .collect()
}

/// Free bytes on the file system holding `dir` (statvfs).
pub fn free_disk_bytes(dir: &Path) -> Result<u64, MigrateError> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| MigrateError::Invalid(format!("bad path {}", dir.display())))?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid NUL-terminated string and `stat` a valid out pointer.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(MigrateError::io(
            format!("statvfs {}", dir.display()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
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

/// Describes every staged Parquet file (rows, row groups, size) from its footer.
fn describe_files(data: &Path) -> Result<Vec<ManifestFile>, MigrateError> {
    let mut out = Vec::new();
    for rel in list_files(data)? {
        if !rel.ends_with(".parquet") {
            continue;
        }
        let path = data.join(&rel);
        let file = std::fs::File::open(&path)
            .map_err(|e| MigrateError::io(format!("opening {}", path.display()), e))?;
        let size = file
            .metadata()
            .map_err(|e| MigrateError::io(format!("stat {}", path.display()), e))?
            .len();
        let reader = parquet::file::reader::SerializedFileReader::new(file).map_err(|e| {
            MigrateError::Verify(format!("staged file {} is unreadable: {e}", path.display()))
        })?;
        let meta = parquet::file::reader::FileReader::metadata(&reader);
        out.push(ManifestFile {
            path: rel,
            size_bytes: size,
            rows: meta.file_metadata().num_rows() as u64,
            row_groups: meta.num_row_groups() as u64,
        });
    }
    Ok(out)
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

/// One unit of a job's rewrite: which source files, into which staging directory.
struct Unit<'a> {
    /// The unit's index (0-based).
    index: usize,
    /// Units in the plan.
    total: usize,
    /// The rewrite session.
    session: &'a SessionContext,
    /// The unit's source files.
    source: &'a UnitSource,
    /// The job's plan.
    plan: &'a MigrationPlan,
    /// Clustering boundaries, when the spec clusters.
    bounds: Option<Arc<Vec<ColumnBoundaries>>>,
    /// The staging data directory.
    data: &'a Path,
}

/// Rewrites one unit into staging and records its progress durably under the lease; returns
/// its measured cost and the bytes its sort spilled.
#[tracing::instrument(name = "rewrite_unit", skip_all, fields(unit = unit.index + 1, units = unit.total))]
async fn rewrite_one_unit(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    lease: &Lease,
    unit: &Unit<'_>,
) -> Result<(JobStats, u64), MigrateError> {
    let unit_started = Instant::now();
    let prefix = format!("u{:05}-", unit.index);
    let outcome = with_heartbeat(ctx, lease, async {
        let target = UnitTarget {
            dir: unit.data,
            file_prefix: &prefix,
            rows_per_file: unit.plan.rows_per_file,
            encode_threads: ctx.settings.effective_threads(),
        };
        Ok(rewrite_unit(
            unit.session,
            unit.source,
            &unit.plan.spec,
            unit.bounds.clone(),
            &target,
        )
        .await?)
    })
    .await?;
    let unit_stats = JobStats {
        bytes_read: outcome.bytes_read,
        bytes_written: outcome.files.iter().map(|f| f.size_bytes).sum(),
        rows_written: outcome.rows,
        files_written: outcome.files.len() as u64,
        duration_ms: unit_started.elapsed().as_millis() as u64,
        peak_memory_bytes: peak_rss_bytes(),
    };
    fail_point("migrate.unit_written")?;
    ctx.catalog
        .record_job_progress(lease, unit.index as u64 + 1, &unit_stats)
        .map_err(|e| MigrateError::LeaseLost(e.to_string()))?;
    fail_point("migrate.unit_recorded")?;
    tracing::info!(
        rows = outcome.rows,
        spilled_bytes = outcome.spilled_bytes,
        "job {}: unit {}/{}: {} rows into {} files ({} partitions), spilled {} bytes",
        job.id,
        unit.index + 1,
        unit.total,
        outcome.rows,
        outcome.files.len(),
        outcome.partitions,
        outcome.spilled_bytes
    );
    Ok((unit_stats, outcome.spilled_bytes))
}

/// What verification compares: the staged rewrite against its source.
struct VerifyInput<'a> {
    /// The rewrite session.
    session: &'a SessionContext,
    /// The staging data directory.
    data: &'a Path,
    /// The job's staging directory (removed when verification fails).
    staging: &'a Path,
    /// The job's plan.
    plan: &'a MigrationPlan,
    /// The source layout's manifest.
    source: &'a LayoutManifest,
    /// The target's partition columns with their types.
    partition_types: Vec<(String, DataType)>,
    /// The table schema.
    schema: &'a SchemaRef,
}

/// Checks the staged files hold the source's rows (count and digest) and writes their
/// manifest; a mismatch removes the staging directory.
#[tracing::instrument(skip_all)]
async fn verify(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    lease: &Lease,
    v: &VerifyInput<'_>,
) -> Result<LayoutManifest, MigrateError> {
    let files = describe_files(v.data)?;
    let mut manifest = LayoutManifest {
        layout_id: job.target_layout.clone(),
        table: job.table.to_string(),
        source_layout: Some(job.source_layout.clone()),
        spec: v.plan.spec.clone(),
        row_count: files.iter().map(|f| f.rows).sum(),
        files,
        digest: String::new(),
        created_at_ms: ctx.catalog.now_ms(),
    };
    let digest: RowDigest = with_heartbeat(ctx, lease, async {
        Ok(digest_layout(
            v.session,
            v.data,
            &manifest,
            v.partition_types.clone(),
            v.schema,
        )
        .await?)
    })
    .await?;
    let expected = RowDigest::parse(&v.source.digest);
    if manifest.row_count != v.source.row_count || Some(digest) != expected {
        let _ = std::fs::remove_dir_all(v.staging);
        return Err(MigrateError::Verify(format!(
            "layout {} holds {} rows with digest {digest}, the source holds {} rows with digest {}",
            job.target_layout, manifest.row_count, v.source.row_count, v.source.digest
        )));
    }
    manifest.digest = digest.to_string();
    write_manifest(v.data, &manifest)?;
    tracing::debug!(rows = manifest.row_count, digest = %manifest.digest, "verified");
    Ok(manifest)
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

/// Runs a claimed job to its publish. Errors leave the job to the caller to fail or retry.
#[tracing::instrument(name = "migration_job", skip_all, fields(job_id = job.id, table = %job.table, layout = %job.target_layout, attempt = job.attempt))]
pub async fn run_job(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    lease: &Lease,
) -> Result<JobOutcome, MigrateError> {
    let started = Instant::now();
    let plan: MigrationPlan = serde_json::from_str(&job.plan_json).map_err(|e| {
        MigrateError::Invalid(format!("job {} has an unreadable plan: {e}", job.id))
    })?;
    let table = &job.table;
    let table_dir = ctx.data_dir.join(table.as_str());
    let source_dir = table_dir.join(job.source_layout.dir_name());
    let source_manifest = read_manifest(&source_dir).map_err(|e| {
        MigrateError::Invalid(format!(
            "source layout '{}' of table '{table}' cannot be read: {e}",
            job.source_layout
        ))
    })?;
    let schema = table_schema(ctx.data_dir, table)?;
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let source_parts = partition_types(&schema, &source_manifest.spec.partition_by)?;
    let target_parts = partition_types(&schema, &plan.spec.partition_by)?;
    let session = rewrite_session(&ctx.settings)
        .await
        .map_err(|e| MigrateError::Invalid(e.to_string()))?;

    // Preflight: disk, partition cardinality, clustering boundaries.
    let staging = table_dir.join("_staging").join(job_staging_name(job.id));
    let data = staging.join("data");
    reclaim_unpublished(ctx, job, &table_dir, &data)?;
    std::fs::create_dir_all(&data)
        .map_err(|e| MigrateError::io(format!("creating {}", data.display()), e))?;
    drop_unfinished(&data, job.units_done)?;
    let remaining: u64 = plan
        .units
        .iter()
        .skip(job.units_done as usize)
        .flat_map(|u| u.iter())
        .filter_map(|p| source_manifest.files.iter().find(|f| &f.path == p))
        .map(|f| f.size_bytes)
        .sum();
    let need = (remaining as f64 * DISK_HEADROOM) as u64;
    let free = free_disk_bytes(&staging)?;
    if free < need {
        return Err(MigrateError::Invalid(format!(
            "not enough free disk for the rewrite: {need} bytes needed (1.2x the source), {free} free under {}: free space or move DATA_DIR",
            ctx.data_dir.display()
        )));
    }
    let whole = UnitSource {
        dir: source_dir.clone(),
        manifest: source_manifest.clone(),
        partition_cols: source_parts.clone(),
        column_order: columns.clone(),
        files: None,
    };
    register_unit_source(&session, "__dbopt_whole", &whole).await?;
    if !plan.spec.partition_by.is_empty() {
        let bad =
            unrepresentable_partition_rows(&session, "__dbopt_whole", &plan.spec.partition_by)
                .await?;
        if bad > 0 {
            return Err(MigrateError::Invalid(format!(
                "partition column(s) ({}) hold {bad} null or empty values, which hive directories cannot carry losslessly: partition on columns without nulls",
                plan.spec.partition_by.join(", ")
            )));
        }
        let n = distinct_count(&session, "__dbopt_whole", &plan.spec.partition_by).await?;
        if n > ctx.max_partitions {
            return Err(MigrateError::Invalid(format!(
                "partitioning on ({}) would create {n} partitions, more than max_partitions = {}: choose a coarser column or raise max_partitions",
                plan.spec.partition_by.join(", "),
                ctx.max_partitions
            )));
        }
        tracing::info!(
            partitions = n,
            "job {}: partitioning on ({}) into {n} partitions",
            job.id,
            plan.spec.partition_by.join(", ")
        );
    }
    let bounds = if plan.spec.cluster_by.is_empty() {
        None
    } else {
        let b = curve_boundaries(
            &session,
            "__dbopt_whole",
            &plan.spec.cluster_by,
            source_manifest.row_count,
        )
        .await?;
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
        Some(Arc::new(b))
    };
    let _ = session.deregister_table("__dbopt_whole");
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

    let mut attempt_stats = JobStats::default();
    let mut spilled = 0;
    for (k, files) in plan.units.iter().enumerate().skip(job.units_done as usize) {
        if ctx.stop.load(Ordering::SeqCst) {
            return Err(MigrateError::Interrupted(format!(
                "stopped before unit {}/{} of job {}",
                k + 1,
                plan.units.len(),
                job.id
            )));
        }
        let source = UnitSource {
            files: (plan.units.len() > 1).then(|| files.clone()),
            ..whole.clone()
        };
        let unit = Unit {
            index: k,
            total: plan.units.len(),
            session: &session,
            source: &source,
            plan: &plan,
            bounds: bounds.clone(),
            data: &data,
        };
        let (unit_stats, unit_spilled) = rewrite_one_unit(ctx, job, lease, &unit).await?;
        spilled += unit_spilled;
        attempt_stats.accumulate(&unit_stats);
    }

    // Verify, then publish.
    let verified = VerifyInput {
        session: &session,
        data: &data,
        staging: &staging,
        plan: &plan,
        source: &source_manifest,
        partition_types: target_parts,
        schema: &schema,
    };
    let manifest = verify(ctx, job, lease, &verified).await?;
    fail_point("migrate.verified")?;
    let activated = publish(ctx, job, lease, &data, &manifest, &attempt_stats, started)?;
    let _ = std::fs::remove_dir_all(&staging);
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
        match (job.activate, activated) {
            (true, true) => ", now active",
            (true, false) => ", kept as a candidate: the active layout changed meanwhile",
            (false, _) => ", a routed candidate until its canary promotes it",
        }
    );
    Ok(JobOutcome {
        job_id: job.id,
        layout: job.target_layout.clone(),
        stats: attempt_stats,
        spilled_bytes: spilled,
        activated,
    })
}

/// Renames the verified staging directory into `layout_<id>`, fsyncs the table directory and
/// commits the layout in one transaction that checks the lease; true if it became active.
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
    let table_dir = ctx.data_dir.join(job.table.as_str());
    let target: PathBuf = table_dir.join(job.target_layout.dir_name());
    if target.exists() {
        // Left by an earlier attempt that crashed between rename and commit; the catalog never
        // saw it, so no query reads it.
        let published = ctx
            .catalog
            .get_layout(&job.table, &job.target_layout)?
            .is_some_and(|l| l.status == LayoutStatus::Ready);
        if published {
            return Err(MigrateError::Invalid(format!(
                "layout {} is already published",
                job.target_layout
            )));
        }
        std::fs::remove_dir_all(&target)
            .map_err(|e| MigrateError::io(format!("removing stale {}", target.display()), e))?;
    }
    std::fs::rename(data, &target)
        .map_err(|e| MigrateError::io(format!("renaming into {}", target.display()), e))?;
    fsync_dir(&table_dir)?;
    fail_point("migrate.renamed")?;
    debug_assert!(target.join(MANIFEST_FILE).exists());
    let path = format!("{}/{}", job.table, job.target_layout.dir_name());
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
}
