//! Registers a table at one of its layouts as a DataFusion table.

use crate::layout_dir::LayoutDir;
use crate::{EngineError, Session};
use arrow::datatypes::DataType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig};
use datafusion::execution::SessionState;
use dbopt_core::{LayoutId, LayoutManifest};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A table registered in a session at a given layout, with the totals pruning is measured against.
#[derive(Debug, Clone)]
pub struct RegisteredLayout {
    /// The SQL name of the table.
    pub table: String,
    /// The layout it reads.
    pub layout_id: LayoutId,
    /// Absolute layout directory.
    pub dir: PathBuf,
    /// Files in the layout.
    pub files_total: u64,
    /// Row groups in the layout.
    pub row_groups_total: u64,
}

/// Registers the layout in `dir` (a local directory or an object-storage prefix, described by
/// `manifest`) under the SQL name `table`.
///
/// Hive partition columns (`partition_cols`, with their types) are appended by DataFusion; when
/// `column_order` is given the table is exposed through a view with that column order, so a
/// partitioned layout answers `SELECT *` exactly like the unpartitioned one.
pub async fn register_layout(
    session: &Session,
    table: &str,
    dir: &LayoutDir,
    manifest: &LayoutManifest,
    partition_cols: Vec<(String, DataType)>,
    column_order: Option<&[String]>,
) -> Result<RegisteredLayout, EngineError> {
    let ctx = session.ctx();
    let (scan_dir, config) = parquet_listing(session, dir, partition_cols.clone())?;
    let config = infer_file_schema(config, &ctx.state(), &partition_cols)
        .await
        .map_err(|e| match EngineError::from_exec(e) {
            EngineError::CorruptParquet { message, .. } => EngineError::CorruptParquet {
                path: dir.to_string(),
                message,
            },
            other => other,
        })?;
    let provider = ListingTable::try_new(config).map_err(EngineError::from_plan)?;
    let needs_view = !partition_cols.is_empty() && column_order.is_some();
    let register_err = |e| EngineError::Plan(format!("registering table {table}: {e}"));
    if needs_view {
        let internal = format!("__{table}_{}", manifest.layout_id);
        ctx.register_table(internal.as_str(), Arc::new(provider))
            .map_err(register_err)?;
        let order: Vec<&str> = column_order
            .unwrap_or_default()
            .iter()
            .map(String::as_str)
            .collect();
        let view = ctx
            .table(internal.as_str())
            .await
            .map_err(EngineError::from_plan)?
            .select_columns(&order)
            .map_err(EngineError::from_plan)?
            .into_view();
        ctx.register_table(table, view).map_err(register_err)?;
    } else {
        ctx.register_table(table, Arc::new(provider))
            .map_err(register_err)?;
    }
    Ok(RegisteredLayout {
        table: table.to_string(),
        layout_id: manifest.layout_id.clone(),
        dir: scan_dir,
        files_total: manifest.files.len() as u64,
        row_groups_total: manifest.total_row_groups(),
    })
}

/// Registers every Parquet file under `dir` (hive directories `key=value`, keys
/// `partition_cols` outermost first) under the SQL name `table`, read with the declared
/// `schema` (a file missing a column reads it as null), and describes it for scan attribution.
///
/// Used for directory trees dbopt does not manage as layouts, such as the experiment store.
pub async fn register_hive_dir(
    session: &Session,
    table: &str,
    dir: &Path,
    schema: arrow::datatypes::SchemaRef,
    partition_cols: Vec<(String, DataType)>,
) -> Result<RegisteredLayout, EngineError> {
    let ctx = session.ctx();
    let (dir, config) = parquet_listing(session, &LayoutDir::from(dir), partition_cols)?;
    let config = config.with_schema(schema);
    let provider = ListingTable::try_new(config).map_err(EngineError::from_plan)?;
    ctx.register_table(table, Arc::new(provider))
        .map_err(|e| EngineError::Plan(format!("registering table {table}: {e}")))?;
    let (files, _) = parquet_files_under(&dir);
    Ok(RegisteredLayout {
        table: table.to_string(),
        layout_id: LayoutId::initial(),
        dir,
        files_total: files,
        row_groups_total: 0,
    })
}

/// Registers the result of the read-only query `sql` as the view `name` (inlined into every
/// query that reads it, so filters still reach the scans below).
pub async fn register_view(session: &Session, name: &str, sql: &str) -> Result<(), EngineError> {
    crate::check_read_only(sql)?;
    let ctx = session.ctx();
    let view = ctx
        .sql(sql)
        .await
        .map_err(EngineError::from_plan)?
        .into_view();
    ctx.register_table(name, view)
        .map(|_| ())
        .map_err(|e| EngineError::Plan(format!("registering view {name}: {e}")))
}

/// Infers the files' schema, leaving out the columns that are also hive keys: files that hold
/// their partition's column too (an Iceberg table's, whose identity partitions keep it) are
/// read with it from the directory name, once, like files that do not.
pub(crate) async fn infer_file_schema(
    config: ListingTableConfig,
    state: &SessionState,
    partition_cols: &[(String, DataType)],
) -> datafusion::error::Result<ListingTableConfig> {
    let config = config.infer_schema(state).await?;
    let Some(schema) = config.file_schema.clone() else {
        return Ok(config);
    };
    if !partition_cols
        .iter()
        .any(|(name, _)| schema.field_with_name(name).is_ok())
    {
        return Ok(config);
    }
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .filter(|f| !partition_cols.iter().any(|(name, _)| name == f.name()))
        .cloned()
        .collect();
    Ok(config.with_schema(Arc::new(arrow::datatypes::Schema::new(fields))))
}

/// The Parquet format a session's tables are read with. Strings are read as views
/// (`Utf8View`) unless the session turns `schema_force_view_types` off, as a Ballista session
/// does: the format's own options, not the session's, decide the inferred schema.
pub(crate) fn parquet_format(session: &Session) -> ParquetFormat {
    // Read under the lock: `ctx().state()` would clone the whole session state, and tables
    // are registered for every query.
    let views = session
        .ctx()
        .state_ref()
        .read()
        .config_options()
        .execution
        .parquet
        .schema_force_view_types;
    ParquetFormat::default().with_force_view_types(views)
}

/// The path scans name `dir`'s files under and a listing of its `.parquet` files with hive
/// keys `partition_cols`.
fn parquet_listing(
    session: &Session,
    dir: &LayoutDir,
    partition_cols: Vec<(String, DataType)>,
) -> Result<(PathBuf, ListingTableConfig), EngineError> {
    let (scan_dir, url) = dir.listing(session.ctx())?;
    let options = ListingOptions::new(Arc::new(parquet_format(session)))
        .with_file_extension(".parquet")
        .with_table_partition_cols(partition_cols);
    Ok((
        scan_dir,
        ListingTableConfig::new(url).with_listing_options(options),
    ))
}

/// The `.parquet` files under `dir` (at any depth) and their bytes; an unreadable entry counts
/// nothing.
pub fn parquet_files_under(dir: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            let (f, b) = parquet_files_under(&path);
            files += f;
            bytes += b;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            files += 1;
            bytes += entry.metadata().map_or(0, |m| m.len());
        }
    }
    (files, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EngineSettings, new_session};

    #[test]
    fn the_session_decides_whether_strings_are_read_as_views() {
        let session = new_session(&EngineSettings::default());
        assert!(parquet_format(&session).force_view_types());
        // A Ballista session turns views off: each shuffled view array would carry every data
        // buffer it points into (a 12 MB table became a 641 MB shuffle file).
        let mut state = session.ctx().state();
        state
            .config_mut()
            .options_mut()
            .execution
            .parquet
            .schema_force_view_types = false;
        let remote_like =
            Session::from_context(datafusion::prelude::SessionContext::new_with_state(state));
        assert!(!parquet_format(&remote_like).force_view_types());
    }

    /// `Session::set_pushdown_filters` applies to the next statement planned in the same
    /// session: with pushdown the scan evaluates the filter (no `FilterExec` above it),
    /// without it a `FilterExec` does.
    #[tokio::test]
    async fn pushdown_is_chosen_per_statement() {
        use arrow::array::{Int64Array, RecordBatch};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let batch = RecordBatch::try_from_iter([(
            "x",
            Arc::new(Int64Array::from_iter_values(0..1000)) as _,
        )])
        .unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            batch.schema(),
            None,
        )
        .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let session = new_session(&EngineSettings::default());
        // Registered as dbopt registers layouts: the format's own options leave pushdown to
        // the session (`register_parquet` would copy the session's setting into the table).
        let options = ListingOptions::new(Arc::new(parquet_format(&session)));
        session
            .ctx()
            .register_listing_table("t", path.to_str().unwrap(), options, None, None)
            .await
            .unwrap();
        let plan = |on: bool| {
            session.set_pushdown_filters(on);
            assert_eq!(session.pushdown_filters(), on);
            let ctx = session.ctx().clone();
            async move {
                let df = ctx
                    .sql("EXPLAIN SELECT x FROM t WHERE x % 7 = 3")
                    .await
                    .unwrap();
                let batches = df.collect().await.unwrap();
                arrow::util::pretty::pretty_format_batches(&batches)
                    .unwrap()
                    .to_string()
            }
        };
        let pushed = plan(true).await;
        assert!(!pushed.contains("FilterExec"), "{pushed}");
        let kept = plan(false).await;
        assert!(kept.contains("FilterExec"), "{kept}");
    }
}
