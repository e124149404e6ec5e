//! External sources for `load-dataset`: a Parquet or CSV file, or a directory of them
//! (hive-partitioned or not), on local disk or under an object-storage prefix (`s3://...`,
//! see `store`), checked up front and streamed batch by batch.

use crate::footer::file_schema;
use crate::store::RemoteDir;
use crate::{EngineError, Session};
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::ObjectMeta;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The kind of files a source holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// Apache Parquet.
    Parquet,
    /// Comma-separated values with a header row.
    Csv,
}

/// What `inspect_source` found: files, format and hive partition keys.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    /// The path (or object-storage URL) given.
    pub root: PathBuf,
    /// Data files, sorted (for a remote source: paths relative to its prefix).
    pub files: Vec<PathBuf>,
    /// Their format.
    pub format: SourceFormat,
    /// Hive partition columns found in directory names (`key=value`), outermost first.
    pub partition_cols: Vec<(String, DataType)>,
    /// The object-storage prefix the files are under, with their sizes; None on local disk.
    pub remote: Option<RemoteSource>,
}

/// A source on object storage.
#[derive(Debug, Clone)]
pub struct RemoteSource {
    /// The prefix, opened and checked.
    pub dir: RemoteDir,
    /// Each file's object (location and size), in `files` order.
    pub objects: Vec<ObjectMeta>,
}

impl SourceInfo {
    /// The bytes of all its files.
    pub fn total_bytes(&self) -> Result<u64, EngineError> {
        match &self.remote {
            Some(remote) => Ok(remote.objects.iter().map(|o| o.size).sum()),
            None => self
                .files
                .iter()
                .map(|f| {
                    std::fs::metadata(f).map(|m| m.len()).map_err(|e| {
                        EngineError::io(format!("reading the size of {}", f.display()), e)
                    })
                })
                .sum(),
        }
    }

    /// The Arrow schema in the footer of its first file (a Parquet source's files agree, as
    /// inspecting it checked).
    pub fn first_schema(&self) -> Result<SchemaRef, EngineError> {
        let Some(first) = self.files.first() else {
            return Err(EngineError::Source(format!(
                "{} holds no data files",
                self.root.display()
            )));
        };
        match &self.remote {
            Some(remote) => {
                let name = format!("{}{}", remote.dir.url, first.display());
                crate::store::block_on(remote_schema(&remote.dir, &remote.objects[0], &name))
            }
            None => crate::footer::file_schema(first),
        }
    }
}

fn format_of(path: &Path) -> Option<SourceFormat> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "parquet" | "parq" => Some(SourceFormat::Parquet),
        "csv" => Some(SourceFormat::Csv),
        _ => None,
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), EngineError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| EngineError::io(format!("reading directory {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::io(format!("reading {}", dir.display()), e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Checks a source path: exists, holds one supported format, consistent hive keys and schemas.
pub fn inspect_source(root: &Path) -> Result<SourceInfo, EngineError> {
    if !root.exists() {
        return Err(EngineError::Source(format!(
            "source path {} does not exist: give a Parquet or CSV file or a directory of them",
            root.display()
        )));
    }
    let mut files = Vec::new();
    if root.is_dir() {
        walk(root, &mut files)?;
    } else {
        files.push(root.to_path_buf());
    }
    files.sort();
    let format = one_format(root, &files)?;
    let partition_cols = hive_keys(root, &files)?;
    let info = SourceInfo {
        root: root.to_path_buf(),
        files,
        format,
        partition_cols,
        remote: None,
    };
    check_local_files_agree(&info)?;
    Ok(info)
}

/// Checks the object-storage prefix `location` (`s3://bucket/prefix/`) as `inspect_source`
/// checks a directory: one supported format, consistent hive keys, and schemas (read from the
/// Parquet footers and CSV headers by range requests).
pub async fn inspect_remote_source(location: &str) -> Result<SourceInfo, EngineError> {
    let dir = crate::store::open_dir(location).await?;
    let objects = dir.list().await?;
    let root = PathBuf::from(location);
    let files: Vec<PathBuf> = objects
        .iter()
        .map(|o| PathBuf::from(dir.relative(&o.location)))
        .collect();
    let format = one_format(&root, &files)?;
    let partition_cols = hive_keys(Path::new(""), &files)?;
    let mut named = Vec::with_capacity(files.len());
    for (file, object) in files.iter().zip(&objects) {
        let name = format!("{}{}", dir.url, file.display());
        let header = match format {
            SourceFormat::Parquet => Header::Columns(remote_schema(&dir, object, &name).await?),
            SourceFormat::Csv => Header::Line(remote_header(&dir, object, &name).await?),
        };
        named.push((name, header));
    }
    check_agree(&named)?;
    Ok(SourceInfo {
        root,
        files,
        format,
        partition_cols,
        remote: Some(RemoteSource { dir, objects }),
    })
}

/// A file's schema (Parquet footer) or header row (CSV), to check that a source's files agree.
enum Header {
    Columns(SchemaRef),
    Line(String),
}

/// The Arrow schema in the footer of the Parquet object `object` (named `name` in errors),
/// read by range requests.
async fn remote_schema(
    dir: &RemoteDir,
    object: &ObjectMeta,
    name: &str,
) -> Result<SchemaRef, EngineError> {
    use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
    let schema = DFParquetMetadata::new(dir.store.as_ref(), object)
        .fetch_schema()
        .await
        .map_err(|e| match e {
            datafusion::error::DataFusionError::ObjectStore(store_error) => {
                dir.error(*store_error, false)
            }
            other => EngineError::CorruptParquet {
                path: name.to_string(),
                message: dbopt_core::text::first_line(&other.to_string()),
            },
        })?;
    Ok(Arc::new(schema))
}

/// The header row of the CSV object `object` (read from its first 64 KiB).
async fn remote_header(
    dir: &RemoteDir,
    object: &ObjectMeta,
    name: &str,
) -> Result<String, EngineError> {
    use object_store::ObjectStoreExt;
    let bytes = dir
        .store
        .get_range(&object.location, 0..object.size.min(64 << 10))
        .await
        .map_err(|e| dir.error(e, false))?;
    csv_header_line(&String::from_utf8_lossy(&bytes), name)
}

/// Refuses files whose schemas (or CSV headers) differ from the first file's.
fn check_agree(named: &[(String, Header)]) -> Result<(), EngineError> {
    let Some((first_name, first)) = named.first() else {
        return Ok(());
    };
    for (name, header) in &named[1..] {
        let differ = match (first, header) {
            (Header::Columns(a), Header::Columns(b)) => (!same_fields(a, b)).then(|| {
                (
                    format!("columns [{}]", describe(a)),
                    format!("[{}]", describe(b)),
                )
            }),
            (Header::Line(a), Header::Line(b)) => {
                (a != b).then(|| (format!("header '{a}'"), format!("'{b}'")))
            }
            _ => Some(("one format".into(), "another".into())),
        };
        if let Some((theirs, these)) = differ {
            return Err(EngineError::Source(format!(
                "schemas disagree: {first_name} has {theirs} but {name} has {these}; load files with one schema"
            )));
        }
    }
    Ok(())
}

/// The one supported format of `files` (refusing an empty source, other extensions, a mix).
fn one_format(root: &Path, files: &[PathBuf]) -> Result<SourceFormat, EngineError> {
    if files.is_empty() {
        return Err(EngineError::Source(format!(
            "source {} is empty: no .parquet or .csv files in it",
            root.display()
        )));
    }
    let mut format = None;
    for f in files {
        let this = format_of(f).ok_or_else(|| {
            EngineError::Source(format!(
                "unsupported file {}: dbopt loads .parquet and .csv files",
                f.display()
            ))
        })?;
        match format {
            None => format = Some(this),
            Some(prev) if prev != this => {
                return Err(EngineError::Source(format!(
                    "source {} mixes Parquet and CSV files: load them as separate tables",
                    root.display()
                )));
            }
            _ => {}
        }
    }
    Ok(format.expect("at least one file"))
}

fn hive_keys(root: &Path, files: &[PathBuf]) -> Result<Vec<(String, DataType)>, EngineError> {
    let mut keys: Option<Vec<String>> = None;
    let mut values: Vec<Vec<String>> = Vec::new();
    for f in files {
        let rel = f.strip_prefix(root).unwrap_or(f);
        let dirs: Vec<(String, String)> = rel
            .parent()
            .map(|p| {
                p.components()
                    .filter_map(|c| {
                        let s = c.as_os_str().to_string_lossy();
                        s.split_once('=')
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let these: Vec<String> = dirs.iter().map(|(k, _)| k.clone()).collect();
        match &keys {
            None => {
                keys = Some(these);
                values = vec![Vec::new(); dirs.len()];
            }
            Some(k) if *k != these => {
                return Err(EngineError::Source(format!(
                    "inconsistent hive partition directories: {} has keys {:?}, others have {:?}",
                    f.display(),
                    these,
                    k
                )));
            }
            _ => {}
        }
        for (i, (_, v)) in dirs.into_iter().enumerate() {
            values[i].push(v);
        }
    }
    let keys = keys.unwrap_or_default();
    Ok(keys
        .into_iter()
        .zip(values)
        .map(|(k, vals)| {
            let all_int = vals.iter().all(|v| v.parse::<i64>().is_ok());
            (
                k,
                if all_int {
                    DataType::Int64
                } else {
                    DataType::Utf8
                },
            )
        })
        .collect())
}

fn same_fields(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

/// Refuses local files whose schemas (or CSV headers) differ from the first file's.
fn check_local_files_agree(info: &SourceInfo) -> Result<(), EngineError> {
    let mut named = Vec::with_capacity(info.files.len());
    for f in &info.files {
        let name = f.display().to_string();
        let header = match info.format {
            SourceFormat::Parquet => Header::Columns(file_schema(f)?),
            SourceFormat::Csv => {
                let text = std::fs::read_to_string(f)
                    .map_err(|e| EngineError::io(format!("reading {name}"), e))?;
                Header::Line(csv_header_line(&text, &name)?)
            }
        };
        named.push((name, header));
    }
    check_agree(&named)
}

fn describe(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The header row of a CSV file's `text`, refusing a file without one.
fn csv_header_line(text: &str, name: &str) -> Result<String, EngineError> {
    let line = text.lines().next().unwrap_or("").trim().to_string();
    if line.is_empty() {
        return Err(EngineError::Source(format!(
            "CSV file {name} is empty: it needs a header row"
        )));
    }
    Ok(line)
}

/// The rows of a source as they stream: their schema and the batches, in file order.
pub struct SourceRows {
    /// The schema of every batch: columns in file order, then partition keys.
    pub schema: SchemaRef,
    /// The batches; a read failure (a corrupt page, a decoder panic) is an error naming the
    /// source.
    pub batches: BoxStream<'static, Result<RecordBatch, EngineError>>,
}

/// Streams the rows of an inspected source, columns in file order then partition keys.
pub async fn stream_source(
    session: &Session,
    info: &SourceInfo,
) -> Result<SourceRows, EngineError> {
    let ctx = session.ctx();
    let root = match &info.remote {
        Some(_) => info.root.clone(),
        None => std::path::absolute(&info.root)
            .map_err(|e| EngineError::io(format!("resolving {}", info.root.display()), e))?,
    };
    let (format, ext): (Arc<dyn FileFormat>, String) = match info.format {
        SourceFormat::Parquet => (
            Arc::new(crate::register::parquet_format(session)),
            info.files[0]
                .extension()
                .map(|e| format!(".{}", e.to_string_lossy()))
                .unwrap_or_default(),
        ),
        SourceFormat::Csv => (
            Arc::new(CsvFormat::default().with_has_header(true)),
            info.files[0]
                .extension()
                .map(|e| format!(".{}", e.to_string_lossy()))
                .unwrap_or_default(),
        ),
    };
    let url = match &info.remote {
        Some(remote) => {
            remote.dir.register(ctx);
            remote.dir.listing_url()?
        }
        None => {
            let url_text = if root.is_dir() {
                format!("{}/", root.display())
            } else {
                root.display().to_string()
            };
            ListingTableUrl::parse(url_text).map_err(|e| {
                EngineError::Source(format!("bad source path {}: {e}", root.display()))
            })?
        }
    };
    let options = ListingOptions::new(format)
        .with_file_extension(ext)
        .with_table_partition_cols(info.partition_cols.clone());
    let config = ListingTableConfig::new(url).with_listing_options(options);
    let config = crate::register::infer_file_schema(config, &ctx.state(), &info.partition_cols)
        .await
        .map_err(EngineError::from_exec)?;
    let table = ListingTable::try_new(config).map_err(EngineError::from_plan)?;
    let df = ctx
        .read_table(Arc::new(table))
        .map_err(EngineError::from_plan)?;
    let stream = in_source_order(df).await?;
    let stream = catch_decoder_panics(stream, &root);
    Ok(SourceRows {
        schema: stream.schema(),
        batches: stream.map(|b| b.map_err(EngineError::from_exec)).boxed(),
    })
}

/// The source's rows in the order they are stored: the scan's partitions one after the other.
///
/// DataFusion splits the files (and byte ranges of large files) into contiguous runs, one per
/// partition, in path order; merging the partitions as they come would interleave them, and a
/// table that arrives ordered by time (as real tables often do) would be loaded shuffled in
/// blocks of a batch. Reading them in sequence keeps the order: a load is bound by encoding
/// and compressing the new files, which the writer pool spreads over the cores.
async fn in_source_order(
    df: datafusion::dataframe::DataFrame,
) -> Result<SendableRecordBatchStream, EngineError> {
    let planned: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let partitions = df
        .execute_stream_partitioned()
        .await
        .map_err(EngineError::from_exec)?;
    let schema = partitions.first().map_or(planned, |p| p.schema());
    let chained = futures::stream::iter(partitions).flatten();
    Ok(Box::pin(
        datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, chained),
    ))
}

/// The Parquet/arrow decoders assert on some corrupt pages (e.g. "offset + len out of
/// bounds") instead of returning an error, and a load polls the scan on the caller's task: a
/// panic while reading ends the stream with an error naming the source instead.
fn catch_decoder_panics(
    stream: SendableRecordBatchStream,
    root: &Path,
) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let root = root.display().to_string();
    let guarded = std::panic::AssertUnwindSafe(stream)
        .catch_unwind()
        .map(move |item| match item {
            Ok(batch) => batch,
            Err(panic) => {
                let what = crate::error::panic_text(&*panic);
                Err(datafusion::error::DataFusionError::Execution(format!(
                    "corrupt or unreadable source {root}: the reader failed on its data ({})",
                    dbopt_core::text::first_line(&what)
                )))
            }
        });
    Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, guarded))
}
