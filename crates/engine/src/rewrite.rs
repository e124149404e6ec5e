//! The layout rewrite pipeline: scan source files, add a Z-order/Hilbert key when asked, sort
//! (in memory when the unit fits in the session's memory pool, see [`crate::memory_sort`];
//! else with DataFusion's external, spilling sort under the pool), and write ZSTD Parquet with
//! the spec's sizing into hive directories when partitioned.

use crate::memory_sort::{OrderKey, SortedInMemory, sort_in_memory};
use crate::result_digest::BatchDigester;
use crate::writer::LayoutWriter;
use crate::{EngineError, EngineSettings, Session, new_session, register_layout};
use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::compute::{SortOptions, cast, concat};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::Result as DfResult;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use dbopt_core::curve::{CURVE_BUCKETS, ColumnBoundaries, curve_keys};
use dbopt_core::{Curve, LayoutManifest, LayoutSpec, ManifestFile, RowDigest};
use futures::StreamExt;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The temporary column holding the curve key while sorting; dropped before writing.
pub const KEY_COLUMN: &str = "__dbopt_curve_key";
/// The directory value written for a null partition value (Hive convention).
pub const HIVE_NULL: &str = "__HIVE_DEFAULT_PARTITION__";
/// Rows sampled (at most) to compute the curve's quantile boundaries.
pub const CURVE_SAMPLE_ROWS: u64 = 200_000;
/// The smallest memory limit a rewrite accepts.
pub const MIN_MEMORY_LIMIT: u64 = 4 << 20;

/// Quotes an identifier for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Escapes a partition value for a directory name: keeps `[A-Za-z0-9_.-]`, percent-encodes
/// every other byte (so `/`, `=` and `%` are never taken literally), encodes a value made only
/// of dots (`.`, `..`), and writes the empty string as `__EMPTY__`.
pub fn escape_partition_value(value: &str) -> String {
    if value.is_empty() {
        return "__EMPTY__".to_string();
    }
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        let safe = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.';
        if safe {
            out.push(b as char);
        } else {
            let _ = std::fmt::Write::write_fmt(&mut out, format_args!("%{b:02X}"));
        }
    }
    if out.chars().all(|c| c == '.') {
        out = out.replace('.', "%2E");
    }
    out
}

/// The hive directory of one file's partition values, outermost first: `a=1/b=x` (values
/// escaped by `escape_partition_value`, nulls as `HIVE_NULL`).
pub fn hive_dir(values: &[(String, Option<String>)]) -> String {
    values
        .iter()
        .map(|(name, value)| {
            let value = value
                .as_deref()
                .map_or_else(|| HIVE_NULL.to_string(), escape_partition_value);
            format!("{name}={value}")
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The partition values the directories of `path` name (`a=1/b=x/part-0.parquet`, as
/// `hive_dir` writes them), outermost first; components without `=` are skipped.
pub fn parse_hive_dir(path: &str) -> Vec<(String, Option<String>)> {
    let dirs = path.rsplit_once('/').map_or("", |(dirs, _)| dirs);
    dirs.split('/')
        .filter_map(|c| c.split_once('='))
        .map(|(name, value)| {
            let value = match value {
                HIVE_NULL => None,
                "__EMPTY__" => Some(String::new()),
                v => Some(crate::delta::percent_decode(v)),
            };
            (name.to_string(), value)
        })
        .collect()
}

/// The hive directory of one row: `a=1/b=x` (values escaped, nulls as `HIVE_NULL`).
pub fn hive_path(columns: &[(String, ArrayRef)], row: usize) -> Result<String, EngineError> {
    let mut parts = Vec::with_capacity(columns.len());
    for (name, array) in columns {
        let value = if array.is_null(row) {
            HIVE_NULL.to_string()
        } else {
            let text = cast(&array.slice(row, 1), &DataType::Utf8).map_err(|e| {
                EngineError::Execution(format!("cannot name partition of column {name}: {e}"))
            })?;
            let text = text
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .expect("cast to Utf8 gives a StringArray")
                .value(0)
                .to_string();
            escape_partition_value(&text)
        };
        parts.push(format!("{name}={value}"));
    }
    Ok(parts.join("/"))
}

/// A scalar UDF computing the curve key from the clustering columns.
#[derive(Debug)]
struct CurveKeyUdf {
    signature: Signature,
    bounds: Arc<Vec<ColumnBoundaries>>,
    curve: Curve,
}

impl PartialEq for CurveKeyUdf {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.bounds, &other.bounds) && self.curve == other.curve
    }
}
impl Eq for CurveKeyUdf {}
impl Hash for CurveKeyUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.bounds) as usize).hash(state);
        self.curve.hash(state);
    }
}

impl ScalarUDFImpl for CurveKeyUdf {
    fn name(&self) -> &str {
        "dbopt_curve_key"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::UInt64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let keys = curve_keys(&arrays, &self.bounds, self.curve)?;
        Ok(ColumnarValue::Array(Arc::new(keys)))
    }
}

/// Where a rewrite unit reads from: a whole layout, or some files of an unpartitioned one.
#[derive(Debug, Clone)]
pub struct UnitSource {
    /// The source layout directory (local or on object storage).
    pub dir: crate::layout_dir::LayoutDir,
    /// Its manifest.
    pub manifest: LayoutManifest,
    /// Partition columns of the source (empty when unpartitioned), with their types.
    pub partition_cols: Vec<(String, DataType)>,
    /// The table's columns in canonical order.
    pub column_order: Vec<String>,
    /// Files to read, relative to `dir`; None reads the whole layout.
    pub files: Option<Vec<String>>,
}

impl UnitSource {
    /// The manifest entries of the files this unit reads.
    pub fn unit_files(&self) -> impl Iterator<Item = &ManifestFile> {
        self.manifest.files.iter().filter(|f| {
            self.files
                .as_ref()
                .is_none_or(|files| files.contains(&f.path))
        })
    }
}

/// What one rewrite unit wrote and read.
#[derive(Debug, Clone, Default)]
pub struct UnitOutcome {
    /// Files written.
    pub files: Vec<ManifestFile>,
    /// Rows written.
    pub rows: u64,
    /// Source bytes read.
    pub bytes_read: u64,
    /// Bytes the sort spilled to disk.
    pub spilled_bytes: u64,
    /// Partition directories written.
    pub partitions: u64,
    /// Whether the rows were sorted in memory (else by the external, spilling sort).
    pub sorted_in_memory: bool,
}

/// The memory each parallel sort stream of a rewrite gets at least.
pub const SORT_STREAM_MEMORY: u64 = 256 << 20;

/// How many sort streams a rewrite under `settings` runs: one per core, as long as each gets
/// `SORT_STREAM_MEMORY` of the pool.
pub fn sort_streams(settings: &EngineSettings) -> usize {
    let by_memory = (settings.memory_limit / SORT_STREAM_MEMORY).max(1) as usize;
    settings.effective_threads().min(by_memory)
}

/// Where one rewrite unit writes.
#[derive(Debug, Clone)]
pub struct UnitTarget<'a> {
    /// The staging data directory.
    pub dir: &'a Path,
    /// Files are named `part-<prefix>NNNNN.parquet`.
    pub file_prefix: &'a str,
    /// Rows per file before rolling to the next.
    pub rows_per_file: u64,
    /// Threads encoding the columns of each row group.
    pub encode_threads: usize,
}

/// Opens a session sized by `settings` that lets the sort spill even under a small pool.
pub async fn rewrite_session(settings: &EngineSettings) -> Result<Session, EngineError> {
    if settings.memory_limit < MIN_MEMORY_LIMIT {
        return Err(EngineError::Plan(format!(
            "memory limit of {} bytes is too small to run a rewrite: give at least {} bytes (--memory-limit 4MiB)",
            settings.memory_limit, MIN_MEMORY_LIMIT
        )));
    }
    if let Some(dir) = &settings.spill_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
    }
    // Sort in parallel only when every sort stream gets at least SORT_STREAM_MEMORY of the
    // pool (the streams are merged in order afterwards); small pools get one stream and small
    // batches so the merge of its spill files fits.
    let mut settings = settings.clone();
    settings.threads = sort_streams(&settings);
    if settings.memory_limit < (256 << 20) {
        settings.batch_size = settings.batch_size.min(1024);
    }
    let session = match &settings.ballista {
        Some(scheduler) => {
            crate::remote_session(&crate::EngineRuntime::new(&settings), &settings, scheduler)
                .await?
        }
        None => new_session(&settings),
    };
    let reserve = (settings.memory_limit / 8).min(10 << 20);
    session
        .ctx()
        .sql(&format!(
            "SET datafusion.execution.sort_spill_reservation_bytes = {reserve}"
        ))
        .await
        .map_err(EngineError::from_plan)?;
    Ok(session)
}

/// Registers the unit's source as table `name` in `session`.
pub async fn register_unit_source(
    session: &Session,
    name: &str,
    source: &UnitSource,
) -> Result<(), EngineError> {
    let ctx = session.ctx();
    match &source.files {
        None => {
            let order = (!source.partition_cols.is_empty()).then_some(&source.column_order[..]);
            register_layout(
                session,
                name,
                &source.dir,
                &source.manifest,
                source.partition_cols.clone(),
                order,
            )
            .await?;
        }
        Some(files) => {
            if !source.partition_cols.is_empty() {
                return Err(EngineError::Plan(
                    "a partitioned source layout is rewritten in one unit (use --mode full)".into(),
                ));
            }
            let urls = files
                .iter()
                .map(|f| source.dir.file_url(ctx, f))
                .collect::<Result<Vec<_>, _>>()?;
            let options = ListingOptions::new(Arc::new(crate::register::parquet_format(session)))
                .with_file_extension(".parquet");
            let config = ListingTableConfig::new_with_multi_paths(urls)
                .with_listing_options(options)
                .infer_schema(&ctx.state())
                .await
                .map_err(EngineError::from_exec)?;
            let provider = ListingTable::try_new(config).map_err(EngineError::from_plan)?;
            ctx.register_table(name, Arc::new(provider))
                .map_err(|e| EngineError::Plan(format!("registering {name}: {e}")))?;
        }
    }
    Ok(())
}

/// Counts distinct value combinations of `columns` in table `name`.
pub async fn distinct_count(
    session: &Session,
    name: &str,
    columns: &[String],
) -> Result<u64, EngineError> {
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let sql = format!(
        "SELECT count(*) FROM (SELECT DISTINCT {} FROM {})",
        cols.join(", "),
        quote_ident(name)
    );
    session.count(&sql).await
}

/// Counts rows of table `name` where any of `columns` is null or an empty string: values a
/// hive directory name cannot carry losslessly through DataFusion's partition parsing.
pub async fn unrepresentable_partition_rows(
    session: &Session,
    name: &str,
    columns: &[String],
) -> Result<u64, EngineError> {
    let conds: Vec<String> = columns
        .iter()
        .map(|c| {
            let q = quote_ident(c);
            format!("{q} IS NULL OR CAST({q} AS VARCHAR) = ''")
        })
        .collect();
    let sql = format!(
        "SELECT count(*) FROM {} WHERE {}",
        quote_ident(name),
        conds.join(" OR ")
    );
    session.count(&sql).await
}

/// Quantile boundaries of the clustering columns from (a sample of) table `name`.
pub async fn curve_boundaries(
    session: &Session,
    name: &str,
    columns: &[String],
    rows: u64,
) -> Result<Vec<ColumnBoundaries>, EngineError> {
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let filter = if rows > CURVE_SAMPLE_ROWS {
        format!(
            " WHERE random() < {}",
            CURVE_SAMPLE_ROWS as f64 / rows as f64
        )
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT {} FROM {}{filter}",
        cols.join(", "),
        quote_ident(name)
    );
    let batches = session.collect(&sql).await?;
    let mut out = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
        let values = if arrays.is_empty() {
            arrow::array::new_empty_array(&DataType::Null)
        } else {
            concat(&arrays).map_err(|e| EngineError::Execution(format!("sampling {c}: {e}")))?
        };
        out.push(
            ColumnBoundaries::from_values(&values, CURVE_BUCKETS).map_err(|e| {
                EngineError::Plan(format!("column {c} cannot be clustered on: {e}"))
            })?,
        );
    }
    Ok(out)
}

/// The order a unit's rows are written in: partition columns, curve key, then the sort keys
/// (nulls first everywhere).
pub fn order_keys(spec: &LayoutSpec, with_key: bool) -> Vec<OrderKey> {
    let nulls_first = |descending| SortOptions {
        descending,
        nulls_first: true,
    };
    let mut keys: Vec<OrderKey> = spec
        .partition_by
        .iter()
        .map(|c| OrderKey {
            column: c.clone(),
            options: nulls_first(false),
        })
        .collect();
    if with_key {
        keys.push(OrderKey {
            column: KEY_COLUMN.to_string(),
            options: nulls_first(false),
        });
    }
    keys.extend(spec.sort_by.iter().map(|k| OrderKey {
        column: k.column.clone(),
        options: nulls_first(k.descending),
    }));
    keys
}

/// The query of a unit's rows, unsorted: every source column in canonical order (plus the
/// curve key when `with_key`).
pub fn select_sql(spec: &LayoutSpec, columns: &[String], source: &str, with_key: bool) -> String {
    let mut select: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    if with_key {
        let args: Vec<String> = spec.cluster_by.iter().map(|c| quote_ident(c)).collect();
        select.push(format!(
            "dbopt_curve_key({}) AS {KEY_COLUMN}",
            args.join(", ")
        ));
    }
    format!("SELECT {} FROM {}", select.join(", "), quote_ident(source))
}

/// The sort query of a unit: [`select_sql`] ordered by [`order_keys`].
pub fn sort_sql(spec: &LayoutSpec, columns: &[String], source: &str, with_key: bool) -> String {
    let mut sql = select_sql(spec, columns, source, with_key);
    let order: Vec<String> = order_keys(spec, with_key)
        .iter()
        .map(|k| {
            let column = if k.column == KEY_COLUMN {
                KEY_COLUMN.to_string()
            } else {
                quote_ident(&k.column)
            };
            let dir = if k.options.descending { "DESC" } else { "ASC" };
            let nulls = if k.options.nulls_first {
                "FIRST"
            } else {
                "LAST"
            };
            format!("{column} {dir} NULLS {nulls}")
        })
        .collect();
    if !order.is_empty() {
        sql.push_str(" ORDER BY ");
        sql.push_str(&order.join(", "));
    }
    sql
}

/// Bytes spilled to disk anywhere in the executed plan.
fn spilled_bytes(plan: &Arc<dyn ExecutionPlan>) -> u64 {
    use datafusion::physical_plan::metrics::MetricValue;
    let own = plan
        .metrics()
        .and_then(|m| m.sum(|m| matches!(m.value(), MetricValue::SpilledBytes(_))))
        .map_or(0, |v| v.as_usize() as u64);
    own + plan
        .children()
        .iter()
        .map(|c| spilled_bytes(c))
        .sum::<u64>()
}

/// Rewrites one unit: scans `source`, sorts as `spec` asks (spilling under the pool) and
/// writes files into `target` (hive subdirectories when partitioned). `bounds` are the curve
/// boundaries when `spec.cluster_by` is set.
pub async fn rewrite_unit(
    session: &Session,
    source: &UnitSource,
    spec: &LayoutSpec,
    bounds: Option<Arc<Vec<ColumnBoundaries>>>,
    target: &UnitTarget<'_>,
) -> Result<UnitOutcome, EngineError> {
    let ctx = session.ctx();
    let src_name = format!("__dbopt_src_{}", target.file_prefix);
    register_unit_source(session, &src_name, source).await?;
    let with_key = !spec.cluster_by.is_empty();
    if with_key {
        let bounds = bounds.ok_or_else(|| {
            EngineError::Plan("clustering needs curve boundaries computed first".into())
        })?;
        ctx.register_udf(ScalarUDF::from(CurveKeyUdf {
            signature: Signature::variadic_any(Volatility::Immutable),
            bounds,
            curve: spec.curve,
        }));
    }
    let (written, partitions, spilled_bytes, sorted_in_memory) =
        match sort_unit_in_memory(session, source, spec, &src_name, with_key, target).await? {
            Some(sorted) => {
                let sink = UnitSink::new(sorted.schema(), spec, target)?;
                let (written, partitions) = write_gathered(&sorted, sink)?;
                (written, partitions, 0, true)
            }
            None => {
                let sql = sort_sql(spec, &source.column_order, &src_name, with_key);
                let plan = physical_plan(session, &sql).await?;
                let mut stream =
                    execute_stream(plan.clone(), ctx.task_ctx()).map_err(EngineError::from_exec)?;
                let mut sink = UnitSink::new(&plan.schema(), spec, target)?;
                while let Some(batch) = stream.next().await {
                    sink.write(&batch.map_err(EngineError::from_exec)?)?;
                }
                let (written, partitions) = sink.finish()?;
                (written, partitions, spilled_bytes(&plan), false)
            }
        };
    let bytes_read = source
        .unit_files()
        .fold(0u64, |sum, f| sum.saturating_add(f.size_bytes));
    session.deregister(&src_name);
    Ok(UnitOutcome {
        rows: written.rows,
        files: written.files,
        bytes_read,
        spilled_bytes,
        partitions,
        sorted_in_memory,
    })
}

/// Writes the rows sorted in memory through `sink`, gathering the next batch on its own thread
/// while the writer encodes the current one.
fn write_gathered(
    sorted: &SortedInMemory,
    mut sink: UnitSink<'_>,
) -> Result<(crate::writer::WrittenLayout, u64), EngineError> {
    let started = Instant::now();
    let mut writing = Duration::ZERO;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        scope.spawn(move || {
            for batch in sorted.batches() {
                if tx.send(batch).is_err() {
                    break;
                }
            }
        });
        // Returning early drops `rx`, which stops the gathering thread at its next send.
        for batch in rx {
            let batch = batch?;
            let started = Instant::now();
            sink.write(&batch)?;
            writing += started.elapsed();
        }
        Ok::<(), EngineError>(())
    })?;
    let closing = Instant::now();
    let out = sink.finish()?;
    writing += closing.elapsed();
    tracing::debug!(
        "in-memory sort: gathered and wrote {} rows in {} ms ({} ms of it writing)",
        out.0.rows,
        started.elapsed().as_millis(),
        writing.as_millis()
    );
    Ok(out)
}

/// Plans `sql` in `session`.
async fn physical_plan(
    session: &Session,
    sql: &str,
) -> Result<Arc<dyn ExecutionPlan>, EngineError> {
    session
        .ctx()
        .sql(sql)
        .await
        .map_err(EngineError::from_plan)?
        .create_physical_plan()
        .await
        .map_err(EngineError::from_plan)
}

/// Sorts the unit's rows in memory when they fit in the session's pool (see
/// [`crate::memory_sort`]); `None` when they do not, or when the session runs on a cluster
/// (whose executors sort where the data is).
async fn sort_unit_in_memory(
    session: &Session,
    source: &UnitSource,
    spec: &LayoutSpec,
    src_name: &str,
    with_key: bool,
    target: &UnitTarget<'_>,
) -> Result<Option<SortedInMemory>, EngineError> {
    if session.scheduler().is_some() {
        return Ok(None);
    }
    let expected_rows = source
        .unit_files()
        .fold(0u64, |sum, f| sum.saturating_add(f.rows));
    let plan = physical_plan(
        session,
        &select_sql(spec, &source.column_order, src_name, with_key),
    )
    .await?;
    let keys = order_keys(spec, with_key);
    let sorted = sort_in_memory(
        session.ctx(),
        plan,
        &keys,
        expected_rows,
        target.encode_threads,
    )
    .await?;
    if sorted.is_none() {
        tracing::info!(
            "the unit's rows do not fit in the memory pool: sorting with the external (spilling) sort"
        );
    }
    Ok(sorted)
}

/// Writes a unit's sorted batches: drops the partition columns and the curve key, and starts a
/// new hive directory (and file) whenever the partition values change.
struct UnitSink<'a> {
    spec: &'a LayoutSpec,
    writer: LayoutWriter,
    part_idx: Vec<usize>,
    keep_idx: Vec<usize>,
    current_partition: Option<String>,
    partitions: u64,
}

impl<'a> UnitSink<'a> {
    /// A sink for batches of `full_schema` (the sort query's output) into `target`.
    fn new(
        full_schema: &SchemaRef,
        spec: &'a LayoutSpec,
        target: &UnitTarget<'_>,
    ) -> Result<Self, EngineError> {
        let part_idx: Vec<usize> = spec
            .partition_by
            .iter()
            .map(|c| {
                full_schema
                    .index_of(c)
                    .map_err(|e| EngineError::Plan(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let keep_idx: Vec<usize> = (0..full_schema.fields().len())
            .filter(|i| !part_idx.contains(i) && full_schema.field(*i).name() != KEY_COLUMN)
            .collect();
        let out_schema: SchemaRef = Arc::new(Schema::new(
            keep_idx
                .iter()
                .map(|i| full_schema.field(*i).clone())
                .collect::<Vec<_>>(),
        ));
        let writer = LayoutWriter::create(target.dir, out_schema, spec, target.rows_per_file)?
            .with_file_prefix(target.file_prefix)
            .with_encode_threads(target.encode_threads);
        Ok(Self {
            spec,
            writer,
            part_idx,
            keep_idx,
            current_partition: None,
            partitions: 0,
        })
    }

    /// Writes one sorted batch.
    fn write(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let body = batch
            .project(&self.keep_idx)
            .map_err(|e| EngineError::Execution(e.to_string()))?;
        if self.part_idx.is_empty() {
            return self.writer.write(&body);
        }
        let part_cols: Vec<ArrayRef> = self
            .part_idx
            .iter()
            .map(|i| batch.column(*i).clone())
            .collect();
        let named: Vec<(String, ArrayRef)> = self
            .spec
            .partition_by
            .iter()
            .cloned()
            .zip(part_cols.iter().cloned())
            .collect();
        let ranges = arrow::compute::partition(&part_cols)
            .map_err(|e| EngineError::Execution(e.to_string()))?
            .ranges();
        for range in ranges {
            let path = hive_path(&named, range.start)?;
            if self.current_partition.as_deref() != Some(path.as_str()) {
                if let Some(prev) = self.current_partition.take() {
                    self.writer.close_file(&prev)?;
                }
                self.partitions += 1;
                self.current_partition = Some(path.clone());
            }
            self.writer
                .write_partition(&path, &body.slice(range.start, range.end - range.start))?;
        }
        Ok(())
    }

    /// Closes every file; returns what was written and the partition directories (at least 1).
    fn finish(self) -> Result<(crate::writer::WrittenLayout, u64), EngineError> {
        Ok((self.writer.finish()?, self.partitions.max(1)))
    }
}

/// Reads the layout in `dir` back (partition columns restored with their source types, columns
/// in `column_order`, each cast to `schema`'s type) and returns its order-insensitive digest.
pub async fn digest_layout(
    session: &Session,
    dir: &crate::layout_dir::LayoutDir,
    manifest: &LayoutManifest,
    partition_cols: Vec<(String, DataType)>,
    schema: &SchemaRef,
) -> Result<RowDigest, EngineError> {
    let name = format!("__dbopt_verify_{}", manifest.layout_id);
    let order: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let view = (!partition_cols.is_empty()).then_some(&order[..]);
    register_layout(session, &name, dir, manifest, partition_cols, view).await?;
    let cols: Vec<String> = order.iter().map(|c| quote_ident(c)).collect();
    let sql = format!("SELECT {} FROM {}", cols.join(", "), quote_ident(&name));
    // Each scan partition is digested on its own task; digests are sums, so they add up.
    let streams = session
        .ctx()
        .sql(&sql)
        .await
        .map_err(EngineError::from_plan)?
        .execute_stream_partitioned()
        .await
        .map_err(EngineError::from_exec)?;
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            let schema = schema.clone();
            let label = dir.to_string();
            tokio::spawn(async move {
                let mut digester = BatchDigester::new();
                while let Some(batch) = stream.next().await {
                    let batch = batch.map_err(EngineError::from_exec)?;
                    let columns = batch
                        .columns()
                        .iter()
                        .zip(schema.fields())
                        .map(|(c, f)| cast(c, f.data_type()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| EngineError::Execution(format!("verifying {label}: {e}")))?;
                    let batch = RecordBatch::try_new(schema.clone(), columns)
                        .map_err(|e| EngineError::Execution(format!("verifying {label}: {e}")))?;
                    digester.update(&batch)?;
                }
                Ok::<RowDigest, EngineError>(digester.finish())
            })
        })
        .collect();
    let mut digest = RowDigest::default();
    for task in tasks {
        let part = task
            .await
            .map_err(|e| EngineError::Execution(format!("digest task failed: {e}")))??;
        digest.merge(&part);
    }
    session.deregister(&name);
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbopt_core::SortKey;

    #[test]
    fn partition_values_are_escaped() {
        assert_eq!(escape_partition_value("US"), "US");
        assert_eq!(escape_partition_value("2025-03-01"), "2025-03-01");
        assert_eq!(escape_partition_value("a/b"), "a%2Fb");
        assert_eq!(escape_partition_value("k=v"), "k%3Dv");
        assert_eq!(escape_partition_value(".."), "%2E%2E");
        assert_eq!(escape_partition_value("50%"), "50%25");
        assert_eq!(escape_partition_value(""), "__EMPTY__");
    }

    #[test]
    fn sort_streams_get_at_least_their_share_of_memory() {
        let settings = |threads, memory_limit| EngineSettings {
            threads,
            memory_limit,
            ..Default::default()
        };
        assert_eq!(sort_streams(&settings(4, 2 << 30)), 4);
        assert_eq!(sort_streams(&settings(4, 512 << 20)), 2);
        assert_eq!(sort_streams(&settings(4, 16 << 20)), 1);
        assert_eq!(sort_streams(&settings(1, 8 << 30)), 1);
    }

    #[test]
    fn sort_sql_orders_partition_key_then_sort() {
        let spec = LayoutSpec {
            partition_by: vec!["p".into()],
            cluster_by: vec!["a".into(), "b".into()],
            sort_by: vec![SortKey {
                column: "t".into(),
                descending: true,
            }],
            ..Default::default()
        };
        let cols = vec!["a".to_string(), "b".into(), "p".into(), "t".into()];
        let sql = sort_sql(&spec, &cols, "src", true);
        assert!(sql.contains("dbopt_curve_key(\"a\", \"b\") AS __dbopt_curve_key"));
        assert!(sql.ends_with(
            "ORDER BY \"p\" ASC NULLS FIRST, __dbopt_curve_key ASC NULLS FIRST, \"t\" DESC NULLS FIRST"
        ));
        let plain = sort_sql(&LayoutSpec::default(), &cols, "src", false);
        assert!(!plain.contains("ORDER BY"));
    }
    /// Writes `rows` rows in a scrambled order (`id` unique, `g` one of 3 groups with some
    /// nulls, `s` a string of the id) as a layout of several files, with its manifest.
    fn scrambled_layout(dir: &Path, rows: i64) -> UnitSource {
        use arrow::array::{Int64Array, StringArray};
        use arrow::datatypes::Field;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("g", DataType::Utf8, true),
            Field::new("s", DataType::Utf8, false),
        ]));
        let spec = LayoutSpec {
            row_group_rows: Some(5_000),
            ..Default::default()
        };
        let mut writer = LayoutWriter::create(dir, schema.clone(), &spec, 20_000).unwrap();
        let ids: Vec<i64> = (0..rows).map(|i| i * 7919 % rows).collect();
        let groups: Vec<Option<&str>> = ids
            .iter()
            .map(|i| ["a", "b", "c", ""].get((i % 5) as usize).copied())
            .collect();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.clone())),
                Arc::new(StringArray::from(groups)),
                Arc::new(StringArray::from_iter_values(
                    ids.iter().map(|i| format!("s{i}")),
                )),
            ],
        )
        .unwrap();
        writer.write(&batch).unwrap();
        let written = writer.finish().unwrap();
        let manifest = LayoutManifest {
            layout_id: dbopt_core::LayoutId::initial(),
            table: "t".into(),
            source_layout: None,
            spec,
            files: written.files,
            row_count: written.rows,
            digest: String::new(),
            created_at_ms: 0,
            columns: Vec::new(),
        };
        UnitSource {
            dir: crate::layout_dir::LayoutDir::Local(dir.to_path_buf()),
            manifest,
            partition_cols: Vec::new(),
            column_order: vec!["id".into(), "g".into(), "s".into()],
            files: None,
        }
    }

    /// Every file a rewrite wrote, in path order, as one batch per file.
    fn read_files(dir: &Path, files: &[ManifestFile]) -> Vec<(String, RecordBatch)> {
        files
            .iter()
            .map(|f| {
                let file = std::fs::File::open(dir.join(&f.path)).unwrap();
                let reader =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                        .unwrap()
                        .build()
                        .unwrap();
                let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
                let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
                (f.path.clone(), all)
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_in_memory_sort_writes_the_files_the_external_sort_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let source = scrambled_layout(&tmp.path().join("src"), 60_000);
        let spec = LayoutSpec {
            partition_by: vec!["g".into()],
            sort_by: vec![SortKey {
                column: "id".into(),
                descending: true,
            }],
            row_group_rows: Some(4_000),
            ..Default::default()
        };
        let mut written = Vec::new();
        for (name, memory_limit) in [("big", 1u64 << 30), ("small", 4 << 20)] {
            let settings = EngineSettings {
                threads: 2,
                memory_limit,
                batch_size: 2048,
                ..Default::default()
            };
            let session = rewrite_session(&settings).await.unwrap();
            let dir = tmp.path().join(name);
            let target = UnitTarget {
                dir: &dir,
                file_prefix: "u00000-",
                rows_per_file: 7_000,
                encode_threads: 2,
            };
            let outcome = rewrite_unit(&session, &source, &spec, None, &target)
                .await
                .unwrap();
            assert_eq!(outcome.rows, 60_000);
            assert_eq!(outcome.partitions, 5, "a, b, c, the empty string and null");
            written.push((outcome.sorted_in_memory, read_files(&dir, &outcome.files)));
        }
        assert!(written[0].0, "60k rows fit in a 1 GiB pool");
        assert!(!written[1].0, "they do not fit in 4 MiB");
        assert_eq!(written[0].1.len(), written[1].1.len());
        for ((path_a, a), (path_b, b)) in written[0].1.iter().zip(&written[1].1) {
            assert_eq!(path_a, path_b);
            assert_eq!(a, b, "{path_a}: the same rows in the same order");
        }
        let first = &written[0].1[0].1;
        let ids = first
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap();
        assert!(
            ids.values().windows(2).all(|w| w[0] > w[1]),
            "each file is sorted by id descending"
        );
    }
}
