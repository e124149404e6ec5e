//! `export-layout`: copies a layout (its Parquet files, then its manifest) to an
//! object-storage prefix (`s3://bucket/prefix/`, `gs://`, `az://`), where engines that read
//! the lake from object storage (Spark, Trino, DuckDB, pyarrow) find the adapted layout.
//!
//! Guarantees:
//! - **The manifest makes it whole.** Object stores have no atomic directory rename, so the
//!   files are uploaded first and the manifest (`_dbopt_layout.json`) last: a prefix holding
//!   the manifest holds every file it lists. An export killed half-way leaves files without a
//!   manifest, which running it again overwrites (tested by killing a real process at the fail
//!   point `export.files_uploaded`).
//! - **Never mixed with other data.** A prefix that holds anything but this layout's files
//!   (another layout's manifest, other objects) is refused before anything is written.
//! - **Bounded memory.** Each file goes up as a multipart upload of 8 MiB parts, four in flight.

use crate::error::fail_point;
use crate::{DbError, Progress, Workspace};
use dbopt_core::layout::MANIFEST_FILE;
use dbopt_core::{LayoutId, LayoutManifest, TableName};
use dbopt_engine::store::open_dir;
use serde::Serialize;
use std::collections::BTreeSet;

/// What `export-layout` copied.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// The table.
    pub table: String,
    /// The layout exported.
    pub layout: String,
    /// The prefix it was copied to.
    pub to: String,
    /// Files uploaded.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Rows they hold.
    pub rows: u64,
}

impl Workspace {
    /// Uploads `layout` of `table` (the active layout when None) under the object-storage
    /// prefix `to`: its files in their relative paths, then its manifest.
    pub async fn export_layout(
        &self,
        table: &TableName,
        layout: Option<&LayoutId>,
        to: &str,
        progress: &dyn Progress,
    ) -> Result<ExportReport, DbError> {
        self.require_local_data("export-layout (the layouts are already on object storage)")?;
        let layout = match layout {
            Some(l) => l.clone(),
            None => self.require_table(table)?.active_layout,
        };
        let manifest = self.layout_manifest(table, &layout)?;
        let dir = open_dir(to).await?;
        check_prefix_free(
            &dir.list_all().await?,
            &manifest,
            to,
            &dir.get(MANIFEST_FILE).await?,
        )?;
        let source = self.layout_dir(table, &layout);
        progress.set_total(manifest.total_bytes());
        let mut bytes = 0;
        for file in &manifest.files {
            progress.message(&file.path);
            bytes += dir
                .upload(&source.join(&file.path), &file.path, &|n| {
                    progress.advance(n);
                })
                .await?;
        }
        fail_point("export.files_uploaded")?;
        dir.put_manifest(&manifest).await?;
        progress.finish();
        Ok(ExportReport {
            table: table.to_string(),
            layout: layout.to_string(),
            to: dir.url.to_string(),
            files: manifest.files.len(),
            bytes,
            rows: manifest.row_count,
        })
    }
}

/// Refuses a prefix that holds anything but `manifest`'s files and, if any, its own manifest.
fn check_prefix_free(
    present: &[String],
    manifest: &LayoutManifest,
    to: &str,
    existing_manifest: &Option<Vec<u8>>,
) -> Result<(), DbError> {
    if let Some(bytes) = existing_manifest {
        let theirs: Option<LayoutManifest> = serde_json::from_slice(bytes).ok();
        let same =
            theirs.is_some_and(|m| m.layout_id == manifest.layout_id && m.table == manifest.table);
        if !same {
            return Err(DbError::BadArgument(format!(
                "{to} already holds another layout (its {MANIFEST_FILE}): export to an empty prefix"
            )));
        }
    }
    let ours: BTreeSet<&str> = manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain([MANIFEST_FILE])
        .collect();
    if let Some(other) = present.iter().find(|p| !ours.contains(p.as_str())) {
        return Err(DbError::BadArgument(format!(
            "{to} holds other objects ({other}): export to an empty prefix"
        )));
    }
    Ok(())
}
