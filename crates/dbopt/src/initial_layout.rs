//! Writes a table's initial layout from a stream of batches: staging first, then a rename
//! into place and one catalog transaction, so a crash leaves the old state or the new one.

use crate::error::fail_point;
use crate::table_lock::{LOAD_LOCK_FILE, ReplaceIntent};
use crate::{DbError, Progress, Workspace};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use dbopt_catalog::{LakeSource, LayoutRecord, LayoutStatus, TableRecord};
use dbopt_core::{LayoutId, LayoutManifest, LayoutSpec, TableName};
use dbopt_engine::WriterPool;
use dbopt_engine::writer::{fsync_dir, write_manifest};
use futures::{Stream, StreamExt};
use std::time::{Duration, Instant};

/// How a new initial layout should be written.
#[derive(Debug, Clone)]
pub struct InitialLayoutRequest {
    /// The table to create or replace.
    pub table: TableName,
    /// How the data was made (kept in the catalog).
    pub source: String,
    /// Overwrite an existing table.
    pub replace: bool,
    /// Rows per file before rolling to the next one.
    pub rows_per_file: u64,
    /// Parquet sizing for the initial files.
    pub spec: LayoutSpec,
    /// Encoding threads (1 keeps one file sequence in source order; more write row-group-sized
    /// runs round-robin to that many file sequences, each still in source order).
    pub writers: usize,
}

/// What writing an initial layout did.
#[derive(Debug, Clone)]
pub struct InitialLayoutReport {
    /// The table.
    pub table: TableName,
    /// Rows written.
    pub rows: u64,
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl InitialLayoutReport {
    /// Rows written per second.
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl Workspace {
    /// Refuses early when the table exists and `replace` is off.
    pub fn check_can_create(&self, table: &TableName, replace: bool) -> Result<(), DbError> {
        if !replace && self.catalog().get_table(table)?.is_some() {
            return Err(DbError::TableExists(table.to_string()));
        }
        Ok(())
    }

    /// Writes `batches` as the initial layout of `request.table` and registers the table.
    #[tracing::instrument(name = "initial_layout", skip_all, fields(table = %request.table))]
    pub async fn write_initial_layout<S>(
        &self,
        request: &InitialLayoutRequest,
        schema: SchemaRef,
        mut batches: S,
        progress: &dyn Progress,
    ) -> Result<InitialLayoutReport, DbError>
    where
        S: Stream<Item = Result<RecordBatch, DbError>> + Unpin,
    {
        let table = &request.table;
        self.check_can_create(table, request.replace)?;
        let _lock = self.lock_for_initial_layout(table)?;
        let started = Instant::now();
        let now = self.clock().now_ms();
        let staging = self
            .staging_dir(table)
            .join(format!("initial-{now}-{}", std::process::id()));
        let mut pool = WriterPool::start(
            &staging,
            &schema,
            &request.spec,
            request.rows_per_file,
            request.writers,
        )?;
        let result: Result<(), DbError> = async {
            while let Some(batch) = batches.next().await {
                let batch = batch?;
                if batch.schema().fields() != schema.fields() {
                    return Err(DbError::BadSource(format!(
                        "source batch schema changed mid-stream for table '{table}'"
                    )));
                }
                pool.write(&batch);
                progress.advance(batch.num_rows() as u64);
            }
            Ok(())
        }
        .await;
        let finished = pool.finish().map_err(DbError::from);
        let (written, digest) = match result.and(finished) {
            Ok(done) => done,
            Err(e) => {
                self.discard_initial_staging(table, &staging);
                return Err(e);
            }
        };
        if written.rows == 0 {
            self.discard_initial_staging(table, &staging);
            return Err(DbError::BadSource(format!(
                "the source for table '{table}' has no rows: nothing to load"
            )));
        }
        let manifest = LayoutManifest {
            layout_id: LayoutId::initial(),
            table: table.to_string(),
            source_layout: None,
            spec: request.spec.clone(),
            files: written.files.clone(),
            row_count: written.rows,
            digest: digest.to_string(),
            created_at_ms: now,
            columns: Vec::new(),
        };
        write_manifest(&staging, &manifest)?;
        fail_point("publish.staged")?;
        self.publish_initial(request, &staging, &manifest, None)?;
        progress.finish();
        Ok(InitialLayoutReport {
            table: table.clone(),
            rows: written.rows,
            files: written.files.len(),
            bytes: manifest.total_bytes(),
            elapsed: started.elapsed(),
        })
    }

    /// Removes a failed load's staging directory, then `_staging/` and the table directory
    /// if that left them empty (a failed load of a new table leaves no files behind; an
    /// existing table's directories are not empty and stay).
    fn discard_initial_staging(&self, table: &TableName, staging: &std::path::Path) {
        let _ = std::fs::remove_dir_all(staging);
        let _ = std::fs::remove_dir(self.staging_dir(table));
        if matches!(self.catalog().get_table(table), Ok(None)) {
            // No table: the write lock file was this load's own.
            let _ = std::fs::remove_file(self.table_dir(table).join(LOAD_LOCK_FILE));
        }
        let _ = std::fs::remove_dir(self.table_dir(table));
    }

    /// Renames the staged layout into `layout_initial` and commits the table; with an existing
    /// directory (`--replace`, or one left by a crash before a first commit) the old layouts
    /// are moved aside under a recorded intent first (see `table_lock`). On object storage the
    /// layout is uploaded to its prefix (`new_initial_path`) and the catalog commit alone
    /// replaces the table. `lake` records where a lake table lives (None for a managed table).
    pub(crate) fn publish_initial(
        &self,
        request: &InitialLayoutRequest,
        staging: &std::path::Path,
        manifest: &LayoutManifest,
        lake: Option<&LakeSource>,
    ) -> Result<(), DbError> {
        let table = &request.table;
        if let Some(root) = self.remote_data() {
            let path = self.new_initial_path(table)?;
            upload_initial(root, &path, staging)?;
            return self.commit_initial(request, manifest, lake, &path);
        }
        let target = self.layout_dir(table, &LayoutId::initial());
        let intent = if target.exists() {
            Some(self.replace_intent(table, staging, manifest)?)
        } else {
            None
        };
        let published = self.rename_and_commit(request, staging, manifest, intent.as_ref(), lake);
        if intent.is_some() {
            // Committed: delete the old layouts. Failed: put them back.
            let repaired = self.repair_replace(table);
            published?;
            repaired?;
            return Ok(());
        }
        published
    }

    /// Moves the old layouts aside (when replacing), renames the staged layout in, fsyncs and
    /// commits the table in one catalog transaction.
    fn rename_and_commit(
        &self,
        request: &InitialLayoutRequest,
        staging: &std::path::Path,
        manifest: &LayoutManifest,
        intent: Option<&ReplaceIntent>,
        lake: Option<&LakeSource>,
    ) -> Result<(), DbError> {
        let table = &request.table;
        let table_dir = self.table_dir(table);
        let target = self.layout_dir(table, &LayoutId::initial());
        if let Some(intent) = intent {
            self.move_aside(table, intent)?;
        }
        std::fs::rename(staging, &target)
            .map_err(|e| DbError::io(format!("publishing {}", target.display()), e))?;
        fsync_dir(&table_dir)?;
        fail_point("publish.renamed")?;
        self.commit_initial(request, manifest, lake, &LayoutId::initial().path_in(table))
    }

    /// Where a new initial layout of `table` goes, relative to DATA_DIR:
    /// `<table>/layout_initial`, or, for a table that exists (`--replace`) on object storage,
    /// `<table>/layout_initial.<ms>` beside the live one: no rename replaces a prefix on an
    /// object store, so the catalog commit switches readers to it and gc deletes the old ones.
    pub(crate) fn new_initial_path(&self, table: &TableName) -> Result<String, DbError> {
        let path = LayoutId::initial().path_in(table);
        if self.remote_data().is_none() {
            return Ok(path);
        }
        let Some(live) = self.catalog().get_layout(table, &LayoutId::initial())? else {
            return Ok(path);
        };
        let mut generation = self.clock().now_ms();
        while live.path == format!("{path}.{generation}") {
            generation += 1;
        }
        Ok(format!("{path}.{generation}"))
    }

    /// Commits the table with its initial layout (whose files and manifest are in place at
    /// `path`, relative to DATA_DIR) in one catalog transaction: from here on queries read it.
    pub(crate) fn commit_initial(
        &self,
        request: &InitialLayoutRequest,
        manifest: &LayoutManifest,
        lake: Option<&LakeSource>,
        path: &str,
    ) -> Result<(), DbError> {
        let table = &request.table;
        let path = path.to_string();
        let layout = LayoutRecord::from_manifest(manifest, path, LayoutStatus::Ready)?;
        let record = TableRecord {
            name: table.clone(),
            created_at_ms: manifest.created_at_ms,
            active_layout: LayoutId::initial(),
            source: request.source.clone(),
            row_count: manifest.row_count,
        };
        self.catalog()
            .register_table(&record, &layout, request.replace, lake)?;
        fail_point("publish.committed")?;
        Ok(())
    }

    /// Records which old layout directories a replace moves aside, before it moves any.
    fn replace_intent(
        &self,
        table: &TableName,
        staging: &std::path::Path,
        manifest: &LayoutManifest,
    ) -> Result<ReplaceIntent, DbError> {
        let table_dir = self.table_dir(table);
        let mut moves = Vec::new();
        for entry in std::fs::read_dir(&table_dir)
            .map_err(|e| DbError::io(format!("reading {}", table_dir.display()), e))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("layout_") {
                let moved = format!("trash-{}-{name}", manifest.created_at_ms);
                moves.push((name, moved));
            }
        }
        moves.sort();
        let intent = ReplaceIntent {
            created_at_ms: manifest.created_at_ms,
            staging: staging
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            moves,
        };
        intent.write(&self.staging_dir(table))?;
        Ok(intent)
    }

    /// Moves every old layout directory of a replaced table aside, as the intent says.
    fn move_aside(&self, table: &TableName, intent: &ReplaceIntent) -> Result<(), DbError> {
        let table_dir = self.table_dir(table);
        let staging = self.staging_dir(table);
        for (name, moved) in &intent.moves {
            std::fs::rename(table_dir.join(name), staging.join(moved)).map_err(|e| {
                DbError::io(
                    format!("moving aside {}", table_dir.join(name).display()),
                    e,
                )
            })?;
        }
        fsync_dir(&table_dir)?;
        fail_point("publish.moved_aside")?;
        Ok(())
    }
}

/// Uploads the staged initial layout to `path` (relative to DATA_DIR) on object storage (the
/// manifest last), after clearing what a load that crashed before its commit left there, then
/// removes the local staging. Nothing is visible before the catalog commit that follows.
fn upload_initial(
    root: &dbopt_engine::store::RemoteDir,
    path: &str,
    staging: &std::path::Path,
) -> Result<(), DbError> {
    use dbopt_engine::store::block_on;
    let target = root.child(path)?;
    block_on(target.delete_all())?;
    let sent = block_on(target.upload_dir(staging, dbopt_core::layout::MANIFEST_FILE, &|_| {}))?;
    tracing::debug!("uploaded {sent} bytes to {}", target.url);
    fail_point("publish.uploaded")?;
    std::fs::remove_dir_all(staging)
        .map_err(|e| DbError::io(format!("removing {}", staging.display()), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbopt_core::Config;
    use dbopt_data::events::{EventsGenerator, EventsParams};

    fn write(ws: &Workspace, name: &str, writers: usize) -> LayoutManifest {
        let request = InitialLayoutRequest {
            table: TableName::new(name).unwrap(),
            source: "test".into(),
            replace: false,
            rows_per_file: 1_000_000,
            spec: LayoutSpec {
                row_group_rows: Some(1000),
                ..Default::default()
            },
            writers,
        };
        let batches = EventsGenerator::new(EventsParams {
            num_rows: 10_500,
            seed: 3,
            batch_size: 4096,
            ..Default::default()
        });
        futures::executor::block_on(ws.write_initial_layout(
            &request,
            EventsGenerator::schema(),
            futures::stream::iter(batches.map(Ok)),
            &crate::NoProgress,
        ))
        .unwrap();
        ws.layout_manifest(&request.table, &LayoutId::initial())
            .unwrap()
    }

    #[test]
    fn parallel_writers_keep_the_rows_and_whole_row_groups() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(Config::with_dirs(
            &dir.path().join("data"),
            &dir.path().join("metadata.db"),
        ))
        .unwrap();
        let one = write(&ws, "single", 1);
        let three = write(&ws, "parallel", 3);
        assert_eq!(one.digest, three.digest, "same multiset of rows");
        assert_eq!(three.row_count, 10_500);
        assert_eq!(one.files.len(), 1);
        assert_eq!(three.files.len(), 3);
        assert!(three.files.iter().all(|f| f.path.starts_with("part-w")));
        // Runs are one row group long, so no row group is split across writers.
        assert_eq!(one.total_row_groups(), 11);
        assert_eq!(three.total_row_groups(), 11);
    }
}
