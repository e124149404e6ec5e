//! `adopt-layout` and `activate-layout`: bring a layout made by another tool (a Delta Lake
//! Z-order, a Spark job, a hand-sorted export) under dbopt, after proving it holds exactly the
//! table's rows, so it can be queried, measured and compared like dbopt's own layouts.

use crate::{DbError, Progress, Workspace};
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use dbopt_catalog::{LayoutRecord, LayoutStatus};
use dbopt_core::{LayoutId, LayoutManifest, LayoutSpec, RowDigest, TableName};
use dbopt_engine::footer::describe_file;
use dbopt_engine::layout_dir::LayoutDir;
use dbopt_engine::result_digest::BatchDigester;
use dbopt_engine::source::{
    SourceFormat, SourceInfo, inspect_remote_source, inspect_source, stream_source,
};
use dbopt_engine::store::{RemoteDir, is_remote};
use dbopt_engine::writer::{fsync_dir, write_manifest};
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;

/// What `adopt-layout` registered.
#[derive(Debug, Clone, Serialize)]
pub struct AdoptReport {
    /// The table.
    pub table: String,
    /// The new layout id.
    pub layout_id: String,
    /// Files adopted.
    pub files: usize,
    /// Bytes adopted.
    pub bytes: u64,
    /// Rows (equal to the table's).
    pub rows: u64,
    /// False when the same files were adopted before.
    pub newly_adopted: bool,
}

impl Workspace {
    /// Copies the unpartitioned Parquet files under `source` (a directory, or a prefix on
    /// object storage in DATA_DIR's bucket) into a new layout of `table`, after checking they
    /// hold exactly the table's rows (row count and digest).
    pub async fn adopt_layout(
        &self,
        table: &TableName,
        source: &str,
        progress: &dyn Progress,
    ) -> Result<AdoptReport, DbError> {
        let record = self.require_table(table)?;
        let info = self.adopt_source(source).await?;
        if info.format != SourceFormat::Parquet || !info.partition_cols.is_empty() {
            return Err(DbError::NotALayout(format!(
                "adopt-layout takes a directory of unpartitioned Parquet files; {source} is not one"
            )));
        }
        let initial = LayoutId::initial();
        let reference = self.layout_manifest(table, &initial)?;
        let reference_schema = self.layout_schema(table, &initial).await?;

        let files = source_files(&info)?;
        let mut hasher = Sha256::new();
        for (rel, size) in &files {
            hasher.update(rel.as_bytes());
            hasher.update(size.to_le_bytes());
        }
        let layout_id = LayoutId::parse(&hex_prefix(&hasher.finalize()))
            .expect("hex digits always parse as a layout id");
        let bytes = files.iter().map(|f| f.1).sum();
        if self.catalog().get_layout(table, &layout_id)?.is_some() {
            return Ok(AdoptReport {
                table: table.to_string(),
                layout_id: layout_id.to_string(),
                files: files.len(),
                bytes,
                rows: record.row_count,
                newly_adopted: false,
            });
        }

        let digest = self
            .digest_source(&info, record.row_count, Some(&reference_schema), progress)
            .await?;
        if digest.to_string() != reference.digest {
            return Err(DbError::NotALayout(format!(
                "the files under {source} do not hold the same rows as table '{table}' ({} rows, digest {} vs {}): adopt only a rewrite of this table's data",
                digest.rows, digest, reference.digest
            )));
        }

        let mut manifest = LayoutManifest {
            layout_id: layout_id.clone(),
            table: table.to_string(),
            source_layout: Some(record.active_layout.clone()),
            spec: LayoutSpec::default(),
            files: Vec::new(),
            row_count: digest.rows,
            digest: digest.to_string(),
            created_at_ms: self.clock().now_ms(),
            columns: Vec::new(),
        };
        match self.layout_location(table, &layout_id)? {
            LayoutDir::Local(target) => self.place_adopted(&info, &mut manifest, &target)?,
            LayoutDir::Remote(target) => copy_adopted(&info, &mut manifest, &target).await?,
        }
        let path = layout_id.path_in(table);
        let layout = LayoutRecord::from_manifest(&manifest, path, LayoutStatus::Ready)?;
        self.catalog().insert_layout(&layout)?;
        Ok(AdoptReport {
            table: table.to_string(),
            layout_id: layout_id.to_string(),
            files: manifest.files.len(),
            bytes: manifest.total_bytes(),
            rows: manifest.row_count,
            newly_adopted: true,
        })
    }

    /// The files to adopt: a local directory with DATA_DIR on local disk, a prefix of
    /// DATA_DIR's bucket with DATA_DIR on object storage (copied by the store, server-side), or
    /// a local directory uploaded to it.
    async fn adopt_source(&self, source: &str) -> Result<SourceInfo, DbError> {
        if !is_remote(source) {
            return Ok(inspect_source(Path::new(source))?);
        }
        let data = self.data_bucket_for("adopt-layout's source", source)?;
        let info = inspect_remote_source(source).await?;
        if let Some(remote) = &info.remote {
            Self::require_data_bucket("adopt-layout's source", &remote.dir, data)?;
        }
        Ok(info)
    }

    /// Links (or copies) the local files of `info` into a staging directory as
    /// `part-NNNNN.parquet`, writes `manifest` there and renames it to `target`.
    fn place_adopted(
        &self,
        info: &SourceInfo,
        manifest: &mut LayoutManifest,
        target: &Path,
    ) -> Result<(), DbError> {
        let table = TableName::new(&manifest.table)?;
        let staging = self.staging_dir(&table).join(format!(
            "adopt-{}-{}",
            manifest.created_at_ms,
            std::process::id()
        ));
        std::fs::create_dir_all(&staging)
            .map_err(|e| DbError::io(format!("creating {}", staging.display()), e))?;
        for (i, path) in info.files.iter().enumerate() {
            let name = format!("part-{i:05}.parquet");
            crate::lake::link_or_copy(path, &staging.join(&name))?;
            manifest.files.push(describe_file(&staging, &name)?);
        }
        fsync_dir(&staging)?;
        write_manifest(&staging, manifest)?;
        std::fs::rename(&staging, target)
            .map_err(|e| DbError::io(format!("publishing {}", target.display()), e))?;
        fsync_dir(&self.table_dir(&table))?;
        Ok(())
    }

    /// Makes a ready layout the one queries read by default (for a Delta table, by a commit
    /// of its log first, as promote does).
    pub fn activate_layout(&self, table: &TableName, layout: &LayoutId) -> Result<(), DbError> {
        let current = self.require_table(table)?.active_layout;
        if self.catalog().get_layout(table, layout)?.is_none() {
            return Err(DbError::UnknownLayout {
                table: table.to_string(),
                layout: layout.to_string(),
            });
        }
        if current != *layout {
            self.publish_to_lake(table, &current, layout, "OPTIMIZE")?;
        }
        Ok(self.catalog().set_active_layout(table, layout)?)
    }

    /// The order-insensitive digest of every row of `source` (each batch first aligned to
    /// `align`'s columns when given), with `total` rows shown as progress.
    pub(crate) async fn digest_source(
        &self,
        source: &SourceInfo,
        total: u64,
        align: Option<&SchemaRef>,
        progress: &dyn Progress,
    ) -> Result<RowDigest, DbError> {
        let session = self.engine_session();
        let mut rows = stream_source(&session, source).await?;
        let mut digester = BatchDigester::new();
        progress.set_total(total);
        while let Some(batch) = rows.batches.next().await {
            let batch = batch?;
            match align {
                Some(schema) => digester.update(&align_to(&batch, schema)?)?,
                None => digester.update(&batch)?,
            }
            progress.advance(batch.num_rows() as u64);
        }
        progress.finish();
        Ok(digester.finish())
    }

    /// The Arrow schema a table's layout exposes to queries.
    pub async fn layout_schema(
        &self,
        table: &TableName,
        layout: &LayoutId,
    ) -> Result<SchemaRef, DbError> {
        let session = self.engine_session();
        self.register_table_layout(&session, table, layout).await?;
        Ok(session.registered_schema(table.as_str()).await?)
    }
}

/// Each file of `info` as (its path relative to the source, its size), in order.
fn source_files(info: &SourceInfo) -> Result<Vec<(String, u64)>, DbError> {
    if let Some(remote) = &info.remote {
        return Ok(info
            .files
            .iter()
            .zip(&remote.objects)
            .map(|(f, o)| (f.to_string_lossy().into_owned(), o.size))
            .collect());
    }
    info.files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(&info.root).unwrap_or(f);
            let meta = std::fs::metadata(f)
                .map_err(|e| DbError::io(format!("reading {}", f.display()), e))?;
            Ok((rel.to_string_lossy().into_owned(), meta.len()))
        })
        .collect()
}

/// Puts the files of `info` under the prefix `target` as `part-NNNNN.parquet` (copied by the
/// store when they are in the bucket, uploaded from local disk otherwise) after clearing what
/// a crashed attempt left there, then the manifest, last.
async fn copy_adopted(
    info: &SourceInfo,
    manifest: &mut LayoutManifest,
    target: &RemoteDir,
) -> Result<(), DbError> {
    target.delete_all().await?;
    for (i, file) in info.files.iter().enumerate() {
        let name = format!("part-{i:05}.parquet");
        match &info.remote {
            Some(remote) => {
                let from = file.to_string_lossy();
                if !target.copy_from(&remote.dir, &from, &name).await? {
                    return Err(DbError::BadSource(format!(
                        "{}{from} was deleted while it was adopted",
                        remote.dir.url
                    )));
                }
            }
            None => {
                target.upload(file, &name, &|_| {}).await?;
            }
        }
    }
    manifest.files = LayoutDir::Remote(target.clone()).describe_files()?;
    target.put_manifest(manifest).await?;
    Ok(())
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Reorders and casts `batch` to `schema` (columns by name), so digests compare like for like.
fn align_to(
    batch: &arrow::array::RecordBatch,
    schema: &SchemaRef,
) -> Result<arrow::array::RecordBatch, DbError> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = batch.column_by_name(field.name()).ok_or_else(|| {
            DbError::NotALayout(format!(
                "the adopted files have no column '{}': they are not a layout of this table",
                field.name()
            ))
        })?;
        let column = if column.data_type() == field.data_type() {
            column.clone()
        } else {
            cast(column, field.data_type()).map_err(|e| {
                DbError::NotALayout(format!(
                    "column '{}' cannot be read as {}: {e}",
                    field.name(),
                    field.data_type()
                ))
            })?
        };
        columns.push(column);
    }
    if batch.num_columns() != schema.fields().len() {
        return Err(DbError::NotALayout(format!(
            "the adopted files have {} columns, the table has {}",
            batch.num_columns(),
            schema.fields().len()
        )));
    }
    arrow::array::RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| DbError::NotALayout(format!("cannot align adopted rows: {e}")))
}
