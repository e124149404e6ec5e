//! Parquet writing with the settings a `LayoutSpec` asks for: ZSTD, page-level statistics
//! (column and offset index), row-group and page sizes, bloom filters, rolling files, hive
//! directories, and fsync of every file and directory before a layout can be published.

use crate::EngineError;
use crate::column_writer::ColumnParallelWriter;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use dbopt_core::layout::{BLOOM_FPP, DICTIONARY_PAGE_BYTES, MANIFEST_FILE, ZSTD_LEVEL};
use dbopt_core::{LayoutManifest, LayoutSpec, ManifestFile};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Rows per file before the writer rolls to a new one, when the caller does not say.
pub const DEFAULT_ROWS_PER_FILE: u64 = dbopt_core::layout::ROWS_PER_FILE;

/// Writer properties for a layout spec.
pub(crate) fn writer_properties(spec: &LayoutSpec) -> WriterProperties {
    let page_rows = spec.effective_page_rows();
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(ZSTD_LEVEL).expect("ZSTD_LEVEL is a valid zstd level"),
        ))
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(spec.effective_row_group_rows()))
        .set_data_page_row_count_limit(page_rows)
        .set_write_batch_size(page_rows.clamp(1, 1024))
        .set_created_by(format!("dbopt {}", env!("CARGO_PKG_VERSION")));

    for column in &spec.bloom_filter_columns {
        let path = ColumnPath::from(column.as_str());
        builder = builder
            .set_column_bloom_filter_enabled(path.clone(), true)
            .set_column_bloom_filter_fpp(path, BLOOM_FPP);
    }
    builder.build()
}

struct OpenFile {
    relative_path: String,
    writer: ColumnParallelWriter,
    rows: u64,
}

/// What a finished `LayoutWriter` wrote.
#[derive(Debug, Clone)]
pub struct WrittenLayout {
    /// Files written, sorted by path.
    pub files: Vec<ManifestFile>,
    /// Total rows written.
    pub rows: u64,
}

/// Writes batches into Parquet files under one layout directory.
pub struct LayoutWriter {
    dir: PathBuf,
    schema: SchemaRef,
    props: WriterProperties,
    rows_per_file: u64,
    open: BTreeMap<String, OpenFile>,
    next_file_number: BTreeMap<String, usize>,
    finished: Vec<ManifestFile>,
    dirs_created: Vec<PathBuf>,
    file_prefix: String,
    encode_threads: usize,
}

impl LayoutWriter {
    /// A writer into `dir` (created if missing) for batches of `schema`.
    pub fn create(
        dir: &Path,
        schema: SchemaRef,
        spec: &LayoutSpec,
        rows_per_file: u64,
    ) -> Result<Self, EngineError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            schema,
            props: writer_properties(spec),
            rows_per_file: rows_per_file.max(1),
            open: BTreeMap::new(),
            next_file_number: BTreeMap::new(),
            finished: Vec::new(),
            dirs_created: vec![dir.to_path_buf()],
            file_prefix: String::new(),
            encode_threads: 1,
        })
    }

    /// Names files `part-<prefix><n>.parquet`, so several writers can share one directory.
    pub fn with_file_prefix(mut self, prefix: &str) -> Self {
        self.file_prefix = prefix.to_string();
        self
    }

    /// Encodes the columns of each row group on `threads` threads (1 encodes on the caller's).
    pub fn with_encode_threads(mut self, threads: usize) -> Self {
        self.encode_threads = threads.max(1);
        self
    }

    /// Writes a batch into the unpartitioned layout.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        self.write_partition("", batch)
    }

    /// Writes a batch into the partition directory `partition` (e.g. `country=US`; "" for none).
    pub fn write_partition(
        &mut self,
        partition: &str,
        batch: &RecordBatch,
    ) -> Result<(), EngineError> {
        let mut offset = 0;
        let rows_per_file = self.rows_per_file;
        while offset < batch.num_rows() {
            let file = self.file_for(partition)?;
            let room = (rows_per_file - file.rows) as usize;
            let take = room.min(batch.num_rows() - offset);
            let slice = batch.slice(offset, take);
            let path = file.relative_path.clone();
            file.writer.write(&slice).map_err(|e| EngineError::Write {
                path: path.clone(),
                message: e.to_string(),
            })?;
            file.rows += take as u64;
            offset += take;
            if file.rows >= rows_per_file {
                self.close_file(partition)?;
            }
        }
        Ok(())
    }

    fn file_for(&mut self, partition: &str) -> Result<&mut OpenFile, EngineError> {
        if !self.open.contains_key(partition) {
            let number = self
                .next_file_number
                .entry(partition.to_string())
                .or_insert(0);
            let name = format!("part-{}{number:05}.parquet", self.file_prefix);
            *number += 1;
            let relative_path = if partition.is_empty() {
                name
            } else {
                format!("{partition}/{name}")
            };
            let full = self.dir.join(&relative_path);
            if let Some(parent) = full.parent()
                && !self.dirs_created.iter().any(|d| d == parent)
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| EngineError::io(format!("creating {}", parent.display()), e))?;
                self.dirs_created.push(parent.to_path_buf());
            }
            let handle = File::create(&full)
                .map_err(|e| EngineError::io(format!("creating {}", full.display()), e))?;
            let writer = ColumnParallelWriter::try_new(
                handle,
                self.schema.clone(),
                self.props.clone(),
                self.encode_threads,
            )
            .map_err(|e| EngineError::Write {
                path: relative_path.clone(),
                message: e.to_string(),
            })?;
            self.open.insert(
                partition.to_string(),
                OpenFile {
                    relative_path,
                    writer,
                    rows: 0,
                },
            );
        }
        Ok(self.open.get_mut(partition).expect("inserted above"))
    }

    /// Closes the open file of `partition`, if any (call when a sorted input moves on).
    pub fn close_file(&mut self, partition: &str) -> Result<(), EngineError> {
        let Some(file) = self.open.remove(partition) else {
            return Ok(());
        };
        let path = file.relative_path;
        let write_err = |e: parquet::errors::ParquetError| EngineError::Write {
            path: path.clone(),
            message: e.to_string(),
        };
        dbopt_core::fail_point("write.file")
            .map_err(|e| EngineError::io(format!("writing {path}"), e))?;
        let mut writer = file.writer;
        let metadata = writer.finish().map_err(write_err)?;
        let handle = writer.inner();
        dbopt_core::fail_point("write.fsync")
            .and_then(|()| handle.sync_all())
            .map_err(|e| EngineError::io(format!("syncing {path}"), e))?;
        let size_bytes = handle
            .metadata()
            .map_err(|e| EngineError::io(format!("stat {path}"), e))?
            .len();
        self.finished.push(ManifestFile {
            path: path.clone(),
            size_bytes,
            rows: metadata.file_metadata().num_rows() as u64,
            row_groups: metadata.num_row_groups() as u64,
        });
        Ok(())
    }

    /// Closes every file, fsyncs every directory written, and returns what was written.
    pub fn finish(mut self) -> Result<WrittenLayout, EngineError> {
        let partitions: Vec<String> = self.open.keys().cloned().collect();
        for p in partitions {
            self.close_file(&p)?;
        }
        for dir in self.dirs_created.iter().rev() {
            fsync_dir(dir)?;
        }
        let mut files = self.finished;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let rows = files.iter().map(|f| f.rows).sum();
        Ok(WrittenLayout { files, rows })
    }
}

/// Fsyncs a directory so renames and new entries in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<(), EngineError> {
    dbopt_core::fail_point("write.fsync")
        .and_then(|()| File::open(dir))
        .and_then(|d| d.sync_all())
        .map_err(|e| EngineError::io(format!("syncing directory {}", dir.display()), e))
}

/// Writes `_dbopt_layout.json` into `dir` durably (temp file, fsync, rename, fsync dir).
pub fn write_manifest(dir: &Path, manifest: &LayoutManifest) -> Result<(), EngineError> {
    let text = serde_json::to_string_pretty(manifest).expect("a manifest always serializes");
    let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
    let target = dir.join(MANIFEST_FILE);
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    };
    write().map_err(|e| EngineError::io(format!("writing {}", target.display()), e))?;
    fsync_dir(dir)
}

/// Reads the manifest of the layout directory `dir`.
pub fn read_manifest(dir: &Path) -> Result<LayoutManifest, EngineError> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        // A manifest deleted by hand is a damaged layout the user can reload, not a disk fault.
        std::io::ErrorKind::NotFound => EngineError::Source(format!(
            "layout manifest {} is missing: the layout directory was edited; reload the table or drop this layout",
            path.display()
        )),
        _ => EngineError::io(format!("reading {}", path.display()), e),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        EngineError::Source(format!(
            "layout manifest {} is not UTF-8 JSON: it was damaged; reload the table or drop this layout",
            path.display()
        ))
    })?;
    LayoutManifest::from_json(&path.display().to_string(), &text)
        .map_err(|e| EngineError::Source(e.to_string()))
}
