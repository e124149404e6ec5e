//! Where a layout's files are: a directory on local disk, or a prefix on object storage
//! (`DATA_DIR` given as `s3://bucket/prefix/`, see `store`). Everything that reads a layout
//! (registration for queries and rewrites, manifests, footers, samples) goes through
//! [`LayoutDir`], so the callers above do not care which.
//!
//! Guarantees on object storage:
//! - **Range reads only for footers.** A footer is read with one range request of the file's
//!   last 64 KiB (a second one when the metadata is longer); queries read through
//!   DataFusion's object-store scans (range requests for the pages they need).
//! - **A sample reads whole files**, one at a time (a Bernoulli sample needs every row): its
//!   memory is one file plus the kept rows.
//! - **Listing is the layout.** Queries list the layout's prefix as they list a local
//!   directory; a publish therefore clears the prefix of every object an earlier, crashed
//!   attempt left and its own progress does not account for, so none is listed with the
//!   layout's own.

use crate::EngineError;
use crate::store::{RemoteDir, block_on};
use bytes::Bytes;
use datafusion::datasource::listing::ListingTableUrl;
use dbopt_core::layout::MANIFEST_FILE;
use dbopt_core::{LayoutManifest, ManifestFile};
use object_store::ObjectStoreExt;
use parquet::file::metadata::{FooterTail, ParquetMetaData, ParquetMetaDataReader};
use std::path::{Path, PathBuf};

/// Bytes of a file's end read first for its footer.
const FOOTER_READ_BYTES: u64 = 64 << 10;

/// The location of one layout directory.
#[derive(Debug, Clone)]
pub enum LayoutDir {
    /// A directory on local disk.
    Local(PathBuf),
    /// A prefix on object storage.
    Remote(RemoteDir),
}

impl From<&Path> for LayoutDir {
    fn from(dir: &Path) -> Self {
        LayoutDir::Local(dir.to_path_buf())
    }
}

impl From<PathBuf> for LayoutDir {
    fn from(dir: PathBuf) -> Self {
        LayoutDir::Local(dir)
    }
}

impl std::fmt::Display for LayoutDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutDir::Local(dir) => write!(f, "{}", dir.display()),
            LayoutDir::Remote(dir) => write!(f, "{}", dir.url),
        }
    }
}

impl LayoutDir {
    /// True on object storage.
    pub fn is_remote(&self) -> bool {
        matches!(self, LayoutDir::Remote(_))
    }

    /// The layout's manifest, or None when it has none (the directory or prefix is not there).
    pub fn manifest(&self) -> Result<Option<LayoutManifest>, EngineError> {
        match self {
            LayoutDir::Local(dir) => {
                if dir.is_dir() {
                    crate::writer::read_manifest(dir).map(Some)
                } else {
                    Ok(None)
                }
            }
            LayoutDir::Remote(dir) => {
                let Some(bytes) = block_on(dir.get(MANIFEST_FILE))? else {
                    return Ok(None);
                };
                let name = format!("{}{MANIFEST_FILE}", dir.url);
                let text = String::from_utf8(bytes).map_err(|_| {
                    EngineError::Source(format!(
                        "layout manifest {name} is not UTF-8 JSON: it was damaged; reload the table or drop this layout"
                    ))
                })?;
                LayoutManifest::from_json(&name, &text)
                    .map(Some)
                    .map_err(|e| EngineError::Source(e.to_string()))
            }
        }
    }

    /// The directory as a DataFusion listing location, its store registered in `ctx`, and the
    /// path the scans of its files are named under (for attributing scan metrics).
    pub(crate) fn listing(
        &self,
        ctx: &datafusion::prelude::SessionContext,
    ) -> Result<(PathBuf, ListingTableUrl), EngineError> {
        match self {
            LayoutDir::Local(dir) => {
                let dir = std::path::absolute(dir)
                    .map_err(|e| EngineError::io(format!("resolving {}", dir.display()), e))?;
                let url = ListingTableUrl::parse(format!("{}/", dir.display()))
                    .map_err(|e| EngineError::Source(format!("bad path {}: {e}", dir.display())))?;
                Ok((dir, url))
            }
            LayoutDir::Remote(dir) => {
                dir.register(ctx);
                Ok((remote_scan_dir(dir), dir.listing_url()?))
            }
        }
    }

    /// The file `relative` (under the directory) as a DataFusion listing location.
    pub(crate) fn file_url(
        &self,
        ctx: &datafusion::prelude::SessionContext,
        relative: &str,
    ) -> Result<ListingTableUrl, EngineError> {
        let text = match self {
            LayoutDir::Local(dir) => std::path::absolute(dir)
                .map_err(|e| EngineError::io(format!("resolving {}", dir.display()), e))?
                .join(relative)
                .display()
                .to_string(),
            LayoutDir::Remote(dir) => {
                dir.register(ctx);
                format!("{}{relative}", dir.url)
            }
        };
        ListingTableUrl::parse(&text)
            .map_err(|e| EngineError::Source(format!("bad source file {relative}: {e}")))
    }

    /// The footer of the Parquet file `relative`, `size` bytes long, and the file's size.
    pub fn footer(&self, relative: &str, size: u64) -> Result<(u64, ParquetMetaData), EngineError> {
        match self {
            LayoutDir::Local(dir) => {
                let path = dir.join(relative);
                let file = std::fs::File::open(&path)
                    .map_err(|e| EngineError::io(format!("opening {}", path.display()), e))?;
                let size = file
                    .metadata()
                    .map_err(|e| EngineError::io(format!("reading {}", path.display()), e))?
                    .len();
                let meta = ParquetMetaDataReader::new()
                    .parse_and_finish(&file)
                    .map_err(|e| self.corrupt(relative, &e))?;
                Ok((size, meta))
            }
            LayoutDir::Remote(dir) => Ok((size, block_on(remote_footer(dir, relative, size))?)),
        }
    }

    /// Every Parquet file the directory holds, described from its footer (size, rows, row
    /// groups), sorted by path: what a manifest lists. On object storage this is one listing
    /// and a range read per footer.
    pub fn describe_files(&self) -> Result<Vec<ManifestFile>, EngineError> {
        let mut files: Vec<(String, u64)> = match self {
            LayoutDir::Local(dir) => crate::store::local_files(dir)?
                .into_iter()
                .map(|rel| (rel, 0))
                .collect(),
            LayoutDir::Remote(dir) => block_on(dir.list())?
                .iter()
                .map(|o| (dir.relative(&o.location), o.size))
                .collect(),
        };
        files.retain(|(rel, _)| rel.ends_with(".parquet"));
        files.sort();
        files
            .into_iter()
            .map(|(rel, size)| {
                let (size_bytes, meta) = self.footer(&rel, size)?;
                Ok(ManifestFile {
                    rows: meta.file_metadata().num_rows() as u64,
                    row_groups: meta.num_row_groups() as u64,
                    path: rel,
                    size_bytes,
                })
            })
            .collect()
    }

    /// The whole Parquet file `relative`, for a reader of every row (a sample).
    pub fn file_bytes(&self, relative: &str) -> Result<FileBytes, EngineError> {
        match self {
            LayoutDir::Local(dir) => {
                let path = dir.join(relative);
                std::fs::File::open(&path)
                    .map(FileBytes::Local)
                    .map_err(|e| EngineError::io(format!("opening {}", path.display()), e))
            }
            LayoutDir::Remote(dir) => match block_on(dir.get(relative))? {
                Some(bytes) => Ok(FileBytes::Remote(Bytes::from(bytes))),
                None => Err(EngineError::Source(format!(
                    "{}{relative} is listed in the layout's manifest but is not in the store: the layout was edited; reload the table or drop this layout",
                    dir.url
                ))),
            },
        }
    }

    /// The file `relative` under the directory as a user reads its name: a path, or a URL.
    pub fn label(&self, relative: &str) -> String {
        match self {
            LayoutDir::Local(dir) => dir.join(relative).display().to_string(),
            LayoutDir::Remote(dir) => format!("{}{relative}", dir.url),
        }
    }

    /// The error for the file `relative` whose Parquet cannot be read.
    pub fn corrupt(&self, relative: &str, e: &dyn std::fmt::Display) -> EngineError {
        EngineError::CorruptParquet {
            path: self.label(relative),
            message: dbopt_core::text::first_line(&e.to_string()),
        }
    }
}

/// A Parquet file opened for reading every row: a local file, or a remote one's bytes.
pub enum FileBytes {
    /// On local disk.
    Local(std::fs::File),
    /// Fetched from object storage.
    Remote(Bytes),
}

/// The path scans name a remote layout's files under: the store's object path, rooted.
fn remote_scan_dir(dir: &RemoteDir) -> PathBuf {
    PathBuf::from(format!("/{}", dir.prefix.as_ref()))
}

/// Reads the footer of the object `relative` (`size` bytes) by range requests: the file's
/// last 64 KiB, then the rest of the metadata when it is longer.
async fn remote_footer(
    dir: &RemoteDir,
    relative: &str,
    size: u64,
) -> Result<ParquetMetaData, EngineError> {
    let location = dir.object(relative);
    let corrupt = |e: &dyn std::fmt::Display| EngineError::CorruptParquet {
        path: format!("{}{relative}", dir.url),
        message: dbopt_core::text::first_line(&e.to_string()),
    };
    if size < 12 {
        return Err(corrupt(&"the file is too short to be Parquet"));
    }
    let first = size.min(FOOTER_READ_BYTES);
    let tail = dir
        .store
        .get_range(&location, size - first..size)
        .await
        .map_err(|e| dir.error(e, false))?;
    let end: [u8; 8] = tail[tail.len() - 8..]
        .try_into()
        .map_err(|_| corrupt(&"short read of the footer"))?;
    let footer = FooterTail::try_new(&end).map_err(|e| corrupt(&e))?;
    let meta_len = footer.metadata_length() as u64;
    if meta_len + 8 > size {
        return Err(corrupt(&"the footer's metadata length exceeds the file"));
    }
    let metadata = if meta_len + 8 <= first {
        let start = (first - 8 - meta_len) as usize;
        tail.slice(start..tail.len() - 8)
    } else {
        dir.store
            .get_range(&location, size - 8 - meta_len..size - 8)
            .await
            .map_err(|e| dir.error(e, false))?
    };
    ParquetMetaDataReader::decode_metadata(&metadata).map_err(|e| corrupt(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column_stats::{footer_stats, read_sample};
    use crate::footer::table_schema_at;
    use crate::session::{EngineSettings, new_session};
    use crate::writer::{LayoutWriter, write_manifest};
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use dbopt_core::{LayoutId, LayoutSpec, TableName};
    use object_store::memory::InMemory;
    use std::sync::Arc;

    /// Writes 10,000 rows (`id` 0..10,000 in order, `v` = id % 7) as a local layout of 10 row
    /// groups, with its manifest.
    fn local_layout(dir: &Path) -> LayoutManifest {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]));
        let spec = LayoutSpec {
            row_group_rows: Some(1000),
            ..Default::default()
        };
        let mut writer = LayoutWriter::create(dir, schema.clone(), &spec, 1_000_000).unwrap();
        let ids: Vec<i64> = (0..10_000).collect();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.clone())),
                Arc::new(Int64Array::from_iter_values(ids.iter().map(|i| i % 7))),
            ],
        )
        .unwrap();
        writer.write(&batch).unwrap();
        let written = writer.finish().unwrap();
        let manifest = LayoutManifest {
            layout_id: LayoutId::initial(),
            table: "t".into(),
            source_layout: None,
            spec,
            files: written.files,
            row_count: written.rows,
            digest: String::new(),
            created_at_ms: 0,
            columns: Vec::new(),
        };
        write_manifest(dir, &manifest).unwrap();
        manifest
    }

    /// A data directory `s3://lake/ws/` held by an in-memory store.
    fn remote_root() -> RemoteDir {
        RemoteDir {
            url: url::Url::parse("s3://lake/ws/").unwrap(),
            store: Arc::new(InMemory::new()),
            prefix: object_store::path::Path::from("ws"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_layout_uploaded_manifest_last_reads_back_as_the_local_one() {
        let tmp = tempfile::tempdir().unwrap();
        let local_dir = tmp.path().join("layout_initial");
        let manifest = local_layout(&local_dir);
        let root = remote_root();
        let remote = root.child("t/layout_initial").unwrap();
        assert_eq!(remote.url.as_str(), "s3://lake/ws/t/layout_initial/");
        remote
            .upload_dir(&local_dir, MANIFEST_FILE, &|_| {})
            .await
            .unwrap();
        assert_eq!(root.list_dirs().await.unwrap(), vec!["t".to_string()]);
        let local = LayoutDir::Local(local_dir);
        let remote = LayoutDir::Remote(remote);

        let read = remote.manifest().unwrap().unwrap();
        assert_eq!(read.files, manifest.files);
        let missing = LayoutDir::Remote(root.child("t/layout_00").unwrap());
        assert!(missing.manifest().unwrap().is_none());

        // Footers by range requests, samples and the schema: the same as read from disk.
        let (from_disk, from_store) = (
            footer_stats(&local, &manifest).unwrap(),
            footer_stats(&remote, &manifest).unwrap(),
        );
        assert_eq!(from_store.rows, 10_000);
        assert_eq!(from_store.row_groups, 10);
        assert_eq!(from_store.total_bytes, from_disk.total_bytes);
        assert_eq!(from_store.metadata_bytes, from_disk.metadata_bytes);
        let sample = |dir: &LayoutDir| read_sample(dir, &manifest, 0.1, 7).unwrap();
        assert_eq!(sample(&remote), sample(&local));
        let table = TableName::new("t").unwrap();
        assert_eq!(
            table_schema_at(&remote, &table).unwrap(),
            table_schema_at(&local, &table).unwrap()
        );

        // A query on the remote layout prunes row groups by their statistics.
        let session = new_session(&EngineSettings::default());
        let registered =
            crate::register_layout(&session, "t", &remote, &manifest, Vec::new(), None)
                .await
                .unwrap();
        let out = crate::execute_query(
            &session,
            "SELECT count(*) AS n, sum(v) AS s FROM t WHERE id >= 2000 AND id < 3000",
            std::slice::from_ref(&registered),
        )
        .await
        .unwrap();
        let n = out.batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(n, 1000);
        let scan = &out.scans[0].metrics;
        assert_eq!(scan.row_groups_total, 10);
        assert!(scan.row_groups_pruned >= 8, "{scan:?}");
        assert!(scan.bytes_scanned > 0 && scan.bytes_scanned < from_disk.total_bytes / 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_remote_layout_is_read_through_the_column_chunk_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let local_dir = tmp.path().join("layout_initial");
        let manifest = local_layout(&local_dir);
        let root = remote_root();
        let remote = root.child("t/layout_initial").unwrap();
        remote
            .upload_dir(&local_dir, MANIFEST_FILE, &|_| {})
            .await
            .unwrap();
        let settings = EngineSettings {
            chunk_cache_bytes: 64 << 20,
            ..EngineSettings::default()
        };
        let runtime = crate::EngineRuntime::new(&settings);
        runtime.register_store(&root);
        let cache = runtime.chunk_cache().unwrap().clone();
        let dir = LayoutDir::Remote(remote.clone());
        let sum = || async {
            // A session per query, as a server opens one per statement: the cache is the
            // runtime's, and registering the layout keeps the caching store of the bucket.
            let session = crate::new_session_in(&runtime, &settings);
            let registered =
                crate::register_layout(&session, "t", &dir, &manifest, Vec::new(), None)
                    .await
                    .unwrap();
            let out = crate::execute_query(
                &session,
                "SELECT sum(v) AS s FROM t WHERE id < 5000",
                std::slice::from_ref(&registered),
            )
            .await
            .unwrap();
            out.batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0)
        };
        let expected: i64 = (0..5000i64).map(|i| i % 7).sum();
        assert_eq!(sum().await, expected);
        let first = cache.stats();
        assert!(first.misses > 0 && first.entries > 0, "{first:?}");
        assert_eq!(sum().await, expected);
        let second = cache.stats();
        assert!(
            second.hits > first.hits,
            "the second query hits: {second:?}"
        );
        assert_eq!(second.misses, first.misses, "and reads no chunk again");

        // Warming reads by range requests, keyed as the caching store reads: a cleared cache
        // warmed with `v` and `id` answers the query without a miss.
        let (cleared, _) = cache.clear_prefix(Some(&root.child("t").unwrap().prefix));
        assert_eq!(
            cleared, second.entries,
            "clearing the table's prefix releases all"
        );
        let files: Vec<_> = manifest
            .files
            .iter()
            .map(|f| (f.path.clone(), f.size_bytes))
            .collect();
        let warmed = cache
            .warm_objects(&remote, &files, &["id".to_string(), "v".to_string()])
            .unwrap();
        assert_eq!(warmed.chunks, 20, "10 row groups, 2 columns: {warmed:?}");
        assert_eq!(
            cache.release_missing().0,
            0,
            "remote entries are not 'missing'"
        );
        let before = cache.stats();
        assert_eq!(sum().await, expected);
        let after = cache.stats();
        assert_eq!(after.misses, before.misses, "{after:?}");
        assert!(after.hits > before.hits);
    }

    #[test]
    fn a_truncated_remote_file_is_a_corrupt_parquet_error_not_a_panic() {
        let root = remote_root();
        let dir = root.child("t/layout_x").unwrap();
        block_on(dir.put("part-0.parquet", b"PAR1 not really parquet".to_vec())).unwrap();
        let dir = LayoutDir::Remote(dir);
        let err = dir.footer("part-0.parquet", 23).unwrap_err();
        assert!(
            matches!(&err, EngineError::CorruptParquet { path, .. } if path.ends_with("layout_x/part-0.parquet")),
            "{err}"
        );
    }
}
