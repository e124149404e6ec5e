//! Writes a table's initial layout from a stream of batches: staging first, then a rename
//! into place and one catalog transaction, so a crash leaves the old state or the new one.

use crate::{DbError, Progress, Workspace};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use dbopt_catalog::{LayoutRecord, LayoutStatus, TableRecord};
use dbopt_core::{LayoutId, LayoutManifest, LayoutSpec, TableName};
use dbopt_engine::digest::BatchDigester;
use dbopt_engine::writer::{LayoutWriter, fsync_dir, write_manifest};
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
        let started = Instant::now();
        let now = self.clock().now_ms();
        let staging = self
            .staging_dir(table)
            .join(format!("initial-{now}-{}", std::process::id()));
        let mut writer = LayoutWriter::create(
            &staging,
            schema.clone(),
            &request.spec,
            request.rows_per_file,
        )?;
        let mut digester = BatchDigester::new();
        let result: Result<(), DbError> = async {
            while let Some(batch) = batches.next().await {
                let batch = batch?;
                if batch.schema().fields() != schema.fields() {
                    return Err(DbError::Invalid(format!(
                        "source batch schema changed mid-stream for table '{table}'"
                    )));
                }
                digester.update(&batch)?;
                writer.write(&batch)?;
                progress.advance(batch.num_rows() as u64);
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        let written = writer.finish()?;
        if written.rows == 0 {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(DbError::Invalid(format!(
                "the source for table '{table}' has no rows: nothing to load"
            )));
        }
        let digest = digester.finish();
        let manifest = LayoutManifest {
            layout_id: LayoutId::initial(),
            table: table.to_string(),
            source_layout: None,
            spec: request.spec.clone(),
            files: written.files.clone(),
            row_count: written.rows,
            digest: digest.to_string(),
            created_at_ms: now,
        };
        write_manifest(&staging, &manifest)?;
        self.publish_initial(request, &staging, &manifest)?;
        progress.finish();
        Ok(InitialLayoutReport {
            table: table.clone(),
            rows: written.rows,
            files: written.files.len(),
            bytes: manifest.total_bytes(),
            elapsed: started.elapsed(),
        })
    }

    fn publish_initial(
        &self,
        request: &InitialLayoutRequest,
        staging: &std::path::Path,
        manifest: &LayoutManifest,
    ) -> Result<(), DbError> {
        let table = &request.table;
        let table_dir = self.table_dir(table);
        let target = self.layout_dir(table, &LayoutId::initial());
        let mut trash = Vec::new();
        if target.exists() {
            // A replaced table loses every layout: they were built from the old rows.
            for entry in std::fs::read_dir(&table_dir)
                .map_err(|e| DbError::io(format!("reading {}", table_dir.display()), e))?
                .flatten()
            {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.starts_with("layout_") {
                    let moved = self
                        .staging_dir(table)
                        .join(format!("trash-{}-{name}", manifest.created_at_ms));
                    std::fs::rename(entry.path(), &moved).map_err(|e| {
                        DbError::io(format!("moving aside {}", entry.path().display()), e)
                    })?;
                    trash.push(moved);
                }
            }
        }
        std::fs::rename(staging, &target)
            .map_err(|e| DbError::io(format!("publishing {}", target.display()), e))?;
        fsync_dir(&table_dir)?;
        let path = format!("{}/{}", table, LayoutId::initial().dir_name());
        let layout = LayoutRecord::from_manifest(manifest, path, LayoutStatus::Ready)?;
        let record = TableRecord {
            name: table.clone(),
            created_at_ms: manifest.created_at_ms,
            active_layout: LayoutId::initial(),
            source: request.source.clone(),
            row_count: manifest.row_count,
        };
        self.catalog()
            .register_table(&record, &layout, request.replace)?;
        for t in trash {
            let _ = std::fs::remove_dir_all(t);
        }
        Ok(())
    }
}
