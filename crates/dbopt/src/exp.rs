//! The experiment store (`dbopt exp`): runs written once under content-addressed grid ids as
//! hive-partitioned Parquet, read in place by DuckDB views or by DataFusion.
//!
//! Plan, then write: a run's files are written and fsynced in `BASE/_staging`, the store's
//! column types are checked and saved, then the grid's parameters (once per grid) and each
//! (grid, seed) file are renamed into place. A crash leaves the old (grid, seed) file or the
//! new one, never a mix; staging leftovers are never read. Parquet IO goes through the engine.

use crate::DbError;
use crate::error::fail_point;
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use dbopt_core::LayoutSpec;
use dbopt_engine::source::{SourceFormat, inspect_source, stream_source};
use dbopt_engine::{
    LayoutWriter, QueryOutcome, Session, execute_query, new_session, parquet_files_under,
    register_hive_dir, register_view,
};
use dbopt_exp::columns::{Column, conform, file_schema, params_batch, reconcile};
use dbopt_exp::store::{DATA_FILE, GridSlot, Store};

pub use dbopt_engine::EngineSettings;
pub use dbopt_exp::store::Kind;
use dbopt_exp::views::{duckdb_views, filtered, hive_keys, raw_table, view_name, view_query};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How a store is opened or created.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Parameters that become hive partition keys above grid_id (only when creating).
    pub partition_by: Option<Vec<String>>,
    /// Minimum grid id length (only when creating) [default: 8].
    pub id_chars: Option<usize>,
    /// Keys dropped from the parameters besides the documented volatile ones.
    pub extra_volatile: Vec<String>,
}

/// What writing one run did.
#[derive(Debug, Clone, Serialize)]
pub struct WriteReport {
    /// The grid id.
    pub grid_id: String,
    /// The seed.
    pub seed: u64,
    /// True when this write created the grid.
    pub new_grid: bool,
    /// Event rows written (None: no events given).
    pub event_rows: Option<u64>,
    /// Seed-summary rows written (None: none given).
    pub seed_rows: Option<u64>,
    /// True when an earlier run of the same (grid, seed) was replaced.
    pub replaced: bool,
    /// Bytes of Parquet written.
    pub bytes: u64,
}

/// One kind's rows of a run, staged and ready to publish.
struct Staged {
    kind: Kind,
    file: PathBuf,
    rows: u64,
    bytes: u64,
    columns: Vec<Column>,
}

/// A stream of batches with its schema.
pub struct Rows {
    /// The schema of every batch.
    pub schema: SchemaRef,
    /// The batches.
    pub batches: BoxStream<'static, Result<RecordBatch, DbError>>,
}

impl Rows {
    /// Rows from batches in memory.
    pub fn from_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Self {
            schema,
            batches: futures::stream::iter(batches.into_iter().map(Ok)).boxed(),
        }
    }

    /// Rows of a CSV or Parquet file, read as they stream.
    pub async fn from_file(settings: &EngineSettings, path: &Path) -> Result<Self, DbError> {
        let info = inspect_source(path)?;
        let rows = stream_source(&new_session(settings), &info).await?;
        Ok(Self {
            schema: rows.schema,
            batches: rows.batches.map(|b| b.map_err(DbError::from)).boxed(),
        })
    }
}

/// Writes one run: its parameters (seed taken from `seed`, else from the parameters' `seed`
/// key), its events and optionally its seed summary, into the store at `base` (created when
/// missing).
pub async fn write_run(
    base: &Path,
    options: &StoreOptions,
    params: &serde_json::Value,
    seed: Option<u64>,
    events: Option<Rows>,
    seeds: Option<Rows>,
) -> Result<WriteReport, DbError> {
    let mut params = params.clone();
    let from_params = dbopt_exp::take_seed(&mut params)?;
    let seed = seed.or(from_params).ok_or_else(|| {
        DbError::BadArgument(
            "the run has no seed: pass --seed N or put \"seed\": N in the parameters".into(),
        )
    })?;
    if events.is_none() && seeds.is_none() {
        return Err(DbError::BadArgument(
            "nothing to write: give --events FILE, --seeds FILE or both".into(),
        ));
    }
    undo_new_store_on_error(base, async {
        let mut store =
            Store::open_or_create(base, options.partition_by.as_deref(), options.id_chars)?;
        let _lock = store.lock()?;
        let slot = store.resolve_grid(&params, &options.extra_volatile)?;
        let mut staged = Vec::new();
        for (kind, rows) in [(Kind::Events, events), (Kind::Seeds, seeds)] {
            if let Some(rows) = rows {
                staged.push(stage(&store, &slot, kind, rows).await?);
            }
        }
        commit(&mut store, &slot, seed, staged)
    })
    .await
}

/// Runs `work` on the store at `base`; when `base` held no store before and `work` fails,
/// removes what it created, so a failed first write or import leaves no half-made store.
async fn undo_new_store_on_error<T>(
    base: &Path,
    work: impl std::future::Future<Output = Result<T, DbError>>,
) -> Result<T, DbError> {
    let existed = base.exists();
    if base.join(dbopt_exp::store::MARKER_FILE).exists() {
        return work.await;
    }
    let result = work.await;
    if result.is_err() && base.join(dbopt_exp::store::MARKER_FILE).exists() {
        // Opening refuses a directory that is neither empty nor a store, so everything in
        // `base` now was created by this call.
        let _ = std::fs::remove_dir_all(base);
        if existed {
            let _ = std::fs::create_dir(base);
        }
    }
    result
}

/// Writes `rows` of `kind` into a fresh staging file with the store's column types.
async fn stage(store: &Store, slot: &GridSlot, kind: Kind, rows: Rows) -> Result<Staged, DbError> {
    let (target, columns) = reconcile(store.meta(), kind, &rows.schema)?;
    let dir = store.new_staging(&format!("{}-{}", kind.name(), slot.id))?;
    let mut writer = LayoutWriter::create(&dir, target.clone(), &LayoutSpec::default(), u64::MAX)?;
    let mut batches = rows.batches;
    while let Some(batch) = batches.next().await {
        let batch = conform(&batch?, &target)?;
        if batch.num_rows() > 0 {
            writer.write(&batch)?;
        }
    }
    let written = writer.finish()?;
    let Some(file) = written.files.first() else {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(DbError::BadArgument(format!(
            "the run's {} have no rows: a run stores at least one row",
            kind.name()
        )));
    };
    Ok(Staged {
        kind,
        file: dir.join(&file.path),
        rows: written.rows,
        bytes: file.size_bytes,
        columns,
    })
}

/// Saves the column types, publishes the grid's parameters when new, then renames each
/// staged file over its (grid, seed) file.
fn commit(
    store: &mut Store,
    slot: &GridSlot,
    seed: u64,
    staged: Vec<Staged>,
) -> Result<WriteReport, DbError> {
    let mut meta = store.meta().clone();
    for s in &staged {
        *meta.columns_mut(s.kind) = s.columns.clone();
    }
    let params_file = if slot.exists {
        None
    } else {
        let (batch, params) = params_batch(&meta, &slot.canonical.params)?;
        meta.params = params;
        let dir = store.new_staging(&format!("grid-{}", slot.id))?;
        let mut writer =
            LayoutWriter::create(&dir, batch.schema(), &LayoutSpec::default(), u64::MAX)?;
        writer.write(&batch)?;
        let written = writer.finish()?;
        let file = written
            .files
            .first()
            .ok_or_else(|| DbError::Internal("a one-row parameter table wrote no file".into()))?;
        Some(dir.join(&file.path))
    };
    store.update_meta(meta)?;
    fail_point("exp.staged")?;
    if let Some(file) = params_file {
        store.publish(&file, &store.grid_dir(&slot.id).join("params.parquet"))?;
        store.write_params(slot)?;
    }
    let mut report = WriteReport {
        grid_id: slot.id.clone(),
        seed,
        new_grid: !slot.exists,
        event_rows: None,
        seed_rows: None,
        replaced: false,
        bytes: 0,
    };
    for s in staged {
        let dest = store.data_file(s.kind, slot, seed);
        report.replaced |= dest.exists();
        store.publish(&s.file, &dest)?;
        report.bytes += s.bytes;
        match s.kind {
            Kind::Events => report.event_rows = Some(s.rows),
            Kind::Seeds => report.seed_rows = Some(s.rows),
        }
    }
    Ok(report)
}

/// True when the store has at least one file of `kind`.
fn has_files(store: &Store, kind: Kind) -> bool {
    fn any_parquet(dir: &Path) -> bool {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let p = e.path();
                if p.is_dir() {
                    any_parquet(&p)
                } else {
                    p.file_name().is_some_and(|n| n == DATA_FILE)
                }
            })
    }
    any_parquet(&store.kind_dir(kind))
}

/// The DuckDB statements that expose the store at `base` as views `grids`, `events`, `seeds`.
pub fn views(base: &Path) -> Result<String, DbError> {
    let store = Store::open(base)?;
    // Components drop a trailing slash, so the globs read `BASE/grids/...`, not `BASE//grids`.
    let abs: PathBuf = std::path::absolute(base)
        .map_err(|e| DbError::io("resolving the base", e))?
        .components()
        .collect();
    Ok(duckdb_views(&abs, store.meta(), |k| has_files(&store, k)))
}

/// Which view a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One row per event, with its grid's parameters.
    Events,
    /// One row per seed summary, with its grid's parameters.
    Seeds,
    /// One row per grid: its id and parameters.
    Grids,
}

impl Target {
    fn kind(self) -> Option<Kind> {
        match self {
            Target::Events => Some(Kind::Events),
            Target::Seeds => Some(Kind::Seeds),
            Target::Grids => None,
        }
    }
}

/// The answer of `exp query`: the rows, and what the scan of the target's files read.
pub struct ExpAnswer {
    /// Rows, schema and latency.
    pub outcome: QueryOutcome,
    /// Files of the target the scan opened.
    pub files_read: u64,
    /// Files of the target in the store.
    pub files_total: u64,
    /// Bytes the scan read from them.
    pub bytes_scanned: u64,
}

/// Registers the store's tables in a new session: the grids and every kind with files.
async fn open_tables(
    settings: &EngineSettings,
    store: &Store,
) -> Result<(Session, Vec<dbopt_engine::RegisteredLayout>), DbError> {
    let session = new_session(settings);
    let meta = store.meta();
    let mut tables = Vec::new();
    if store.grid_ids()?.is_empty() {
        return Err(DbError::BadArgument(format!(
            "the experiment store {} holds no runs yet: write one with `dbopt exp write`",
            store.base().display()
        )));
    }
    for kind in [None, Some(Kind::Events), Some(Kind::Seeds)] {
        if kind.is_some_and(|k| !has_files(store, k)) {
            continue;
        }
        let dir = kind.map_or(store.grids_dir(), |k| store.kind_dir(k));
        let partitions: Vec<(String, DataType)> = hive_keys(meta, kind)
            .into_iter()
            .map(|(k, t)| {
                let dt = if t == "BIGINT" {
                    DataType::Int64
                } else {
                    DataType::Utf8
                };
                (k, dt)
            })
            .collect();
        let schema = file_schema(meta, kind)?;
        tables.push(register_hive_dir(&session, raw_table(kind), &dir, schema, partitions).await?);
        register_view(&session, view_name(kind), &view_query(meta, kind)).await?;
    }
    Ok((session, tables))
}

/// Runs a query over one view of the store: `filter` is an SQL boolean expression over its
/// columns, `limit` caps the rows.
pub async fn query(
    settings: &EngineSettings,
    base: &Path,
    target: Target,
    filter: Option<&str>,
    limit: Option<u64>,
) -> Result<ExpAnswer, DbError> {
    let store = Store::open(base)?;
    let kind = target.kind();
    if let Some(k) = kind
        && !has_files(&store, k)
    {
        return Err(DbError::BadArgument(format!(
            "the experiment store {} has no {} yet: query {} instead, or write some",
            base.display(),
            k.name(),
            if k == Kind::Events { "seeds" } else { "events" }
        )));
    }
    if let Some(f) = filter
        && f.trim().is_empty()
    {
        return Err(DbError::BadArgument(
            "--where is empty: give a boolean SQL expression, e.g. --where \"latency_ms < 5\""
                .into(),
        ));
    }
    let (session, tables) = open_tables(settings, &store).await?;
    let sql = filtered(kind, filter, limit);
    let outcome = execute_query(&session, &sql, &tables)
        .await
        .map_err(|e| where_error(e, filter))?;
    let scan = outcome
        .scans
        .iter()
        .find(|s| s.table == raw_table(kind))
        .map(|s| s.metrics)
        .unwrap_or_default();
    Ok(ExpAnswer {
        files_read: scan.files_total.saturating_sub(scan.files_pruned),
        files_total: scan.files_total,
        bytes_scanned: scan.bytes_scanned,
        outcome,
    })
}

/// A planning error of a query with `--where` names the expression.
fn where_error(e: dbopt_engine::EngineError, filter: Option<&str>) -> DbError {
    use dbopt_engine::EngineError as E;
    match (e, filter) {
        (E::Plan(m) | E::Syntax(m) | E::NotReadOnly(m), Some(f)) => DbError::BadArgument(format!(
            "--where \"{f}\" is not a boolean expression over the store's columns ({}): see `dbopt exp info` for the columns",
            m.lines().next().unwrap_or_default()
        )),
        (e, _) => e.into(),
    }
}

/// One parameter column of the store and the values its grids take.
#[derive(Debug, Clone, Serialize)]
pub struct ParamInfo {
    /// Column name (nested keys joined by '.').
    pub name: String,
    /// Arrow type.
    pub data_type: String,
    /// Distinct values as canonical JSON text, sorted.
    pub values: Vec<String>,
}

/// What `exp info` shows.
#[derive(Debug, Clone, Serialize)]
pub struct StoreInfo {
    /// The base directory.
    pub base: String,
    /// Grids stored.
    pub grids: u64,
    /// (grid, seed) runs with events.
    pub event_runs: u64,
    /// (grid, seed) runs with a seed summary.
    pub seed_runs: u64,
    /// Event rows.
    pub event_rows: u64,
    /// Seed-summary rows.
    pub seed_rows: u64,
    /// Bytes of Parquet in the store.
    pub bytes: u64,
    /// Hive partition keys above grid_id.
    pub partition_by: Vec<String>,
    /// Parameter columns and their values.
    pub params: Vec<ParamInfo>,
    /// Event columns.
    pub event_columns: Vec<Column>,
    /// Seed-summary columns.
    pub seed_columns: Vec<Column>,
}

/// Counts, sizes, columns and parameter values of the store at `base`.
pub async fn info(settings: &EngineSettings, base: &Path) -> Result<StoreInfo, DbError> {
    let store = Store::open(base)?;
    let ids = store.grid_ids()?;
    let mut values: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for id in &ids {
        for (name, value) in dbopt_exp::flatten_params(&store.params_of(id)?) {
            values.entry(name).or_default().insert(value_text(&value));
        }
    }
    let params = store
        .meta()
        .params
        .iter()
        .map(|c| ParamInfo {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            values: values
                .get(&c.name)
                .map(|v| v.iter().cloned().collect())
                .unwrap_or_default(),
        })
        .collect();
    let (mut event_rows, mut seed_rows) = (0, 0);
    if !ids.is_empty() {
        let (session, _) = open_tables(settings, &store).await?;
        for (kind, rows) in [
            (Kind::Events, &mut event_rows),
            (Kind::Seeds, &mut seed_rows),
        ] {
            if has_files(&store, kind) {
                *rows = session
                    .count(&format!("SELECT count(*) FROM {}", raw_table(Some(kind))))
                    .await?;
            }
        }
    }
    let (event_runs, mut bytes) = parquet_files_under(&store.kind_dir(Kind::Events));
    let (seed_runs, seed_bytes) = parquet_files_under(&store.kind_dir(Kind::Seeds));
    let (_, grid_bytes) = parquet_files_under(&store.grids_dir());
    bytes += seed_bytes + grid_bytes;
    Ok(StoreInfo {
        base: base.display().to_string(),
        grids: ids.len() as u64,
        event_runs,
        seed_runs,
        event_rows,
        seed_rows,
        bytes,
        partition_by: store.meta().partition_by.clone(),
        params,
        event_columns: store.meta().events.clone(),
        seed_columns: store.meta().seeds.clone(),
    })
}

/// A parameter value as `info` lists it: text as is, numbers in canonical form.
fn value_text(value: &dbopt_exp::ParamValue) -> String {
    use dbopt_exp::ParamValue as P;
    match value {
        P::Null => "null".into(),
        P::Bool(b) => b.to_string(),
        P::Number(x) => serde_json::Number::from_f64(*x)
            .and_then(|n| dbopt_exp::canonical_json(&serde_json::Value::Number(n)).ok())
            .unwrap_or_else(|| x.to_string()),
        P::Text(s) | P::Json(s) => s.clone(),
    }
}

/// What `exp convert` does with each CSV file.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Whether the rows are events or seed summaries.
    pub granularity: Kind,
    /// Columns that hold parameters (constant within a run).
    pub param_columns: Vec<String>,
    /// Report what would be written, write nothing.
    pub dry_run: bool,
    /// How the store is opened or created.
    pub store: StoreOptions,
}

/// One run found in the CSV files.
#[derive(Debug, Clone, Serialize)]
pub struct ConvertedRun {
    /// The CSV file.
    pub file: String,
    /// Its grid id.
    pub grid_id: String,
    /// The seed.
    pub seed: u64,
    /// Rows.
    pub rows: u64,
    /// True when the grid is new to the store.
    pub new_grid: bool,
    /// True when an earlier (grid, seed) file is (or would be) replaced.
    pub replaces: bool,
}

/// What `exp convert` did (or would do, under `--dry-run`).
#[derive(Debug, Clone, Serialize)]
pub struct ConvertReport {
    /// CSV files read.
    pub files: u64,
    /// Runs, in file order.
    pub runs: Vec<ConvertedRun>,
    /// Bytes of CSV read.
    pub csv_bytes: u64,
    /// Bytes of Parquet written (0 under `--dry-run`).
    pub parquet_bytes: u64,
    /// Rows a second of a full scan of the CSV files (None under `--dry-run`).
    pub csv_rows_per_s: Option<f64>,
    /// Rows a second of a full scan of the converted runs in the store.
    pub parquet_rows_per_s: Option<f64>,
    /// True under `--dry-run`.
    pub dry_run: bool,
}

/// One (grid, seed) being written by a conversion.
struct OpenRun {
    slot: GridSlot,
    seed: u64,
    writer: Option<LayoutWriter>,
    dir: Option<PathBuf>,
    rows: u64,
}

/// Imports a directory of CSV results (one file per run, or several runs a file told apart
/// by their parameter columns and `seed`), parameters from `--param-columns` or a sidecar
/// `<file>.json` next to each CSV.
pub async fn convert(
    settings: &EngineSettings,
    csv_dir: &Path,
    base: &Path,
    options: &ConvertOptions,
) -> Result<ConvertReport, DbError> {
    let files = csv_files(csv_dir)?;
    let session = new_session(settings);
    // Every file's header and parameters are checked before the store is touched.
    for file in &files {
        open_csv(&session, file, options).await?;
    }
    if options.dry_run {
        return convert_files(settings, &session, &files, base, options).await;
    }
    undo_new_store_on_error(
        base,
        convert_files(settings, &session, &files, base, options),
    )
    .await
}

/// Converts the checked `files` into the store at `base` (or, under `--dry-run`, reports).
async fn convert_files(
    settings: &EngineSettings,
    session: &Session,
    files: &[PathBuf],
    base: &Path,
    options: &ConvertOptions,
) -> Result<ConvertReport, DbError> {
    let mut store = if options.dry_run && !base.join(dbopt_exp::store::MARKER_FILE).exists() {
        // A dry run creates nothing: resolve ids against an empty store in a temp dir.
        let tmp = std::env::temp_dir().join(format!("dbopt-exp-dry-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let s = Store::open_or_create(
            &tmp,
            options.store.partition_by.as_deref(),
            options.store.id_chars,
        )?;
        let _ = std::fs::remove_dir_all(&tmp);
        s
    } else {
        Store::open_or_create(
            base,
            options.store.partition_by.as_deref(),
            options.store.id_chars,
        )?
    };
    let _lock = if options.dry_run {
        None
    } else {
        Some(store.lock()?)
    };
    let mut report = ConvertReport {
        files: files.len() as u64,
        runs: Vec::new(),
        csv_bytes: 0,
        parquet_bytes: 0,
        csv_rows_per_s: None,
        parquet_rows_per_s: None,
        dry_run: options.dry_run,
    };
    let mut converted = false;
    for file in files {
        report.csv_bytes += std::fs::metadata(file).map_or(0, |m| m.len());
        let runs = convert_file(session, &mut store, file, options).await?;
        for (run, staged) in runs {
            // Resolved again: a grid written earlier in this conversion exists now.
            let slot = store.resolve_grid(&run.slot.canonical.params, &[])?;
            report.runs.push(ConvertedRun {
                file: file.display().to_string(),
                grid_id: slot.id.clone(),
                seed: run.seed,
                rows: run.rows,
                new_grid: !run.slot.exists,
                replaces: store
                    .data_file(options.granularity, &slot, run.seed)
                    .exists(),
            });
            if let Some(staged) = staged {
                let written = commit(&mut store, &slot, run.seed, vec![staged])?;
                report.parquet_bytes += written.bytes;
                converted = true;
            }
        }
    }
    if converted {
        let (csv_rows, csv_time) = scan_csv(session, files).await?;
        let (pq_rows, pq_time) = scan_store(settings, &store, options.granularity).await?;
        report.csv_rows_per_s = Some(csv_rows as f64 / csv_time.max(1e-9));
        report.parquet_rows_per_s = Some(pq_rows as f64 / pq_time.max(1e-9));
    }
    Ok(report)
}

/// The `.csv` files directly in `dir`, sorted.
fn csv_files(dir: &Path) -> Result<Vec<PathBuf>, DbError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DbError::BadArgument(format!(
                "{} does not exist: give the directory of the sweep's CSV files",
                dir.display()
            ))
        } else {
            DbError::io(format!("reading {}", dir.display()), e)
        }
    })?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DbError::BadArgument(format!(
            "{} holds no .csv files: give the directory of the sweep's CSV files",
            dir.display()
        )));
    }
    Ok(files)
}

/// Reads one CSV file and stages each (grid, seed) it holds (nothing under `--dry-run`).
async fn convert_file(
    session: &Session,
    store: &mut Store,
    file: &Path,
    options: &ConvertOptions,
) -> Result<Vec<(OpenRun, Option<Staged>)>, DbError> {
    let (sidecar, rows) = open_csv(session, file, options).await?;
    let schema = rows.schema.clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let seed_col = names.iter().position(|n| *n == dbopt_exp::SEED_KEY);
    let param_idx: Vec<usize> = options
        .param_columns
        .iter()
        .filter_map(|p| names.iter().position(|n| n == p))
        .collect();
    let data_idx: Vec<usize> = (0..names.len())
        .filter(|i| Some(*i) != seed_col && !param_idx.contains(i))
        .collect();
    let data_schema = std::sync::Arc::new(
        schema
            .project(&data_idx)
            .map_err(|e| DbError::Internal(format!("projecting {}: {e}", file.display())))?,
    );
    let (target, columns) = reconcile(store.meta(), options.granularity, &data_schema)?;
    let mut open: BTreeMap<(String, u64), OpenRun> = BTreeMap::new();
    let mut order = Vec::new();
    let mut batches = rows.batches;
    while let Some(batch) = batches.next().await {
        let batch = batch?;
        let mut groups: BTreeMap<(String, u64), (serde_json::Value, Vec<u32>)> = BTreeMap::new();
        for row in 0..batch.num_rows() {
            let mut params = sidecar.clone().unwrap_or_else(|| serde_json::json!({}));
            for &i in &param_idx {
                params[names[i]] = json_value(batch.column(i), row);
            }
            let seed = match seed_col {
                Some(i) => {
                    let mut v = serde_json::json!({ "seed": json_value(batch.column(i), row) });
                    dbopt_exp::take_seed(&mut v)?
                }
                None => dbopt_exp::take_seed(&mut params)?,
            }
            .ok_or_else(|| {
                DbError::BadArgument(format!(
                    "{} has no seed: add a `seed` column or a \"seed\" key in its sidecar JSON",
                    file.display()
                ))
            })?;
            let key = (dbopt_exp::canonical_json(&params)?, seed);
            groups
                .entry(key)
                .or_insert_with(|| (params, Vec::new()))
                .1
                .push(u32::try_from(row).unwrap_or(u32::MAX));
        }
        for ((key, seed), (params, rows_of)) in groups {
            let run = match open.entry((key.clone(), seed)) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    order.push((key, seed));
                    let slot = store.resolve_grid(&params, &options.store.extra_volatile)?;
                    let (writer, dir) = if options.dry_run {
                        (None, None)
                    } else {
                        let dir = store.new_staging(&format!("convert-{}", slot.id))?;
                        let w = LayoutWriter::create(
                            &dir,
                            target.clone(),
                            &LayoutSpec::default(),
                            u64::MAX,
                        )?;
                        (Some(w), Some(dir))
                    };
                    e.insert(OpenRun {
                        slot,
                        seed,
                        writer,
                        dir,
                        rows: 0,
                    })
                }
            };
            run.rows += rows_of.len() as u64;
            if let Some(w) = run.writer.as_mut() {
                let indices = arrow::array::UInt32Array::from(rows_of);
                let taken = arrow::compute::take_record_batch(&batch, &indices)
                    .and_then(|b| b.project(&data_idx))
                    .map_err(|e| DbError::Internal(format!("grouping rows: {e}")))?;
                w.write(&conform(&taken, &target)?)?;
            }
        }
    }
    let mut out = Vec::new();
    for key in order {
        let mut run = open.remove(&key).expect("every key opened a run");
        let staged = match (run.writer.take(), run.dir.take()) {
            (Some(w), Some(dir)) => {
                let written = w.finish()?;
                let f = written.files.first().ok_or_else(|| {
                    DbError::Internal(format!("run {} wrote no file", run.slot.id))
                })?;
                Some(Staged {
                    kind: options.granularity,
                    file: dir.join(&f.path),
                    rows: written.rows,
                    bytes: f.size_bytes,
                    columns: columns.clone(),
                })
            }
            _ => None,
        };
        out.push((run, staged));
    }
    if out.is_empty() {
        return Err(DbError::BadArgument(format!(
            "{} has a header but no rows",
            file.display()
        )));
    }
    Ok(out)
}

/// Opens a CSV file of a sweep and checks it names its parameters (`--param-columns` that
/// are all in its header, or a sidecar); returns the sidecar's parameters and the rows.
async fn open_csv(
    session: &Session,
    file: &Path,
    options: &ConvertOptions,
) -> Result<(Option<serde_json::Value>, dbopt_engine::source::SourceRows), DbError> {
    let sidecar = read_sidecar(file)?;
    let info = inspect_source(file)?;
    if info.format != SourceFormat::Csv {
        return Err(DbError::BadArgument(format!(
            "{} is not a CSV file",
            file.display()
        )));
    }
    let rows = stream_source(session, &info).await?;
    let names: Vec<&str> = rows
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    for p in &options.param_columns {
        if !names.contains(&p.as_str()) {
            return Err(DbError::BadArgument(format!(
                "{} has no column `{p}` named by --param-columns (its columns: {})",
                file.display(),
                names.join(", ")
            )));
        }
    }
    if sidecar.is_none() && options.param_columns.is_empty() {
        return Err(DbError::BadArgument(format!(
            "{} has no parameters: name the parameter columns with --param-columns, or put them in a sidecar {}",
            file.display(),
            file.with_extension("json").display()
        )));
    }
    Ok((sidecar, rows))
}

/// The sidecar `<file>.json` next to a CSV file, if there is one: a JSON object of parameters.
fn read_sidecar(file: &Path) -> Result<Option<serde_json::Value>, DbError> {
    let path = file.with_extension("json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DbError::io(format!("reading {}", path.display()), e)),
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        DbError::BadFile(format!(
            "{} is not JSON ({e}): a sidecar holds the run's parameters as one object",
            path.display()
        ))
    })?;
    if !value.is_object() {
        return Err(DbError::BadFile(format!(
            "{} is not a JSON object: a sidecar holds the run's parameters as {{\"name\": value}}",
            path.display()
        )));
    }
    Ok(Some(value))
}

/// The value of `array[row]` as JSON: numbers, text, booleans, null.
fn json_value(array: &arrow::array::ArrayRef, row: usize) -> serde_json::Value {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, Int64Type};
    if array.is_null(row) {
        return serde_json::Value::Null;
    }
    match array.data_type() {
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::Float64 => {
            serde_json::Number::from_f64(array.as_primitive::<Float64Type>().value(row))
                .map_or(serde_json::Value::Null, serde_json::Value::Number)
        }
        DataType::Boolean => array.as_boolean().value(row).into(),
        _ => arrow::util::display::array_value_to_string(array, row)
            .unwrap_or_default()
            .into(),
    }
}

/// Rows and seconds of a full scan of the CSV files (every column decoded).
async fn scan_csv(session: &Session, files: &[PathBuf]) -> Result<(u64, f64), DbError> {
    let started = Instant::now();
    let mut rows = 0;
    for file in files {
        let info = inspect_source(file)?;
        let mut stream = stream_source(session, &info).await?.batches;
        while let Some(b) = stream.next().await {
            rows += b?.num_rows() as u64;
        }
    }
    Ok((rows, started.elapsed().as_secs_f64()))
}

/// Rows and seconds of a full scan of the store's `kind` files (every column decoded).
async fn scan_store(
    settings: &EngineSettings,
    store: &Store,
    kind: Kind,
) -> Result<(u64, f64), DbError> {
    let (session, _) = open_tables(settings, store).await?;
    let started = Instant::now();
    let batches = session
        .collect(&format!("SELECT * FROM {}", raw_table(Some(kind))))
        .await?;
    let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
    Ok((rows, started.elapsed().as_secs_f64()))
}
