//! `dbopt exp run`: a sweep of dbopt itself (dataset sizes x layouts x workloads x engine
//! settings x seeds), each run stored in the experiment store under its grid id.
//!
//! Each (grid, seed) runs in a scratch workspace of its own under `BASE/_work`: generate the
//! events table, build the grid's layout (the migration worker, as `apply` would), run the
//! seeded events workload pinned to it, then store one event row per query (from the run's
//! own query log) and one seed summary. A (grid, seed) whose events and summary are both in
//! the store is complete and skipped, so an interrupted sweep resumes where it stopped.

use crate::change::LayoutSection;
use crate::exp::{Kind, Rows, StoreOptions, write_run};
use crate::migrate::{EnqueueRequest, SpecSource};
use crate::workload::WorkloadOptions;
use crate::{DbError, NoProgress, Workspace};
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use dbopt_catalog::MigrationMode;
use dbopt_core::{Config, LayoutId, TableName};
use dbopt_engine::parquet_files_under;
use dbopt_exp::store::Store;
use dbopt_migrate::WorkerOptions;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// A sweep as `grid.toml` describes it: every list is an axis, the sweep is their product.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// The dataset: `events` (the generated events table).
    #[serde(default = "default_dataset")]
    pub dataset: String,
    /// Rows of the generated table.
    pub rows: Vec<u64>,
    /// Row order of the generated table: `arrival` or `shuffled`.
    #[serde(default = "default_order")]
    pub order: Vec<String>,
    /// Queries a run executes.
    #[serde(default = "default_queries")]
    pub queries: Vec<u64>,
    /// Engine threads (0 = every core).
    #[serde(default = "default_threads")]
    pub threads: Vec<usize>,
    /// Seeds: each grid runs once per seed (data and queries drawn from it).
    pub seeds: Vec<u64>,
    /// Workload templates left out of every run.
    #[serde(default)]
    pub exclude_templates: Vec<String>,
    /// Named layouts, each an axis value; `{}` is the table as generated.
    pub layouts: BTreeMap<String, LayoutSection>,
}

fn default_dataset() -> String {
    "events".into()
}
fn default_order() -> Vec<String> {
    vec!["arrival".into()]
}
fn default_queries() -> Vec<u64> {
    vec![100]
}
fn default_threads() -> Vec<usize> {
    vec![0]
}

/// One grid of a sweep: its parameters as stored.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    /// The dataset.
    pub dataset: String,
    /// Rows generated.
    pub rows: u64,
    /// Row order generated.
    pub order: String,
    /// The layout's name in grid.toml.
    pub layout_name: String,
    /// The layout.
    pub layout: LayoutSection,
    /// Queries run.
    pub queries: u64,
    /// Engine threads.
    pub threads: usize,
    /// Templates left out.
    pub exclude_templates: Vec<String>,
}

impl SweepFile {
    /// Reads and checks a grid file.
    pub fn read(path: &Path) -> Result<Self, DbError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            DbError::BadArgument(format!("cannot read --grid {}: {e}", path.display()))
        })?;
        let sweep: SweepFile = toml::from_str(&text).map_err(|e| {
            DbError::BadFile(format!(
                "{} is not a sweep file: {}",
                path.display(),
                dbopt_core::text::one_line(&e.to_string())
            ))
        })?;
        sweep.check(path)?;
        Ok(sweep)
    }

    fn check(&self, path: &Path) -> Result<(), DbError> {
        let bad = |what: String| DbError::BadFile(format!("{}: {what}", path.display()));
        if self.dataset != "events" {
            return Err(bad(format!(
                "dataset '{}' is not one exp run generates: use \"events\"",
                self.dataset
            )));
        }
        for (name, len) in [
            ("rows", self.rows.len()),
            ("order", self.order.len()),
            ("queries", self.queries.len()),
            ("threads", self.threads.len()),
            ("seeds", self.seeds.len()),
            ("layouts", self.layouts.len()),
        ] {
            if len == 0 {
                return Err(bad(format!("`{name}` is empty: give at least one value")));
            }
        }
        if self.rows.contains(&0) {
            return Err(bad("`rows` holds 0: a table needs at least one row".into()));
        }
        for o in &self.order {
            o.parse::<dbopt_data::events::RowOrder>()
                .map_err(|_| bad(format!("order '{o}': use arrival or shuffled")))?;
        }
        for (name, layout) in &self.layouts {
            layout
                .spec()
                .map_err(|e| bad(format!("layout '{name}': {e}")))?;
        }
        Ok(())
    }

    /// Every grid of the sweep, in file order of the axes.
    pub fn points(&self) -> Vec<SweepPoint> {
        let mut out = Vec::new();
        for &rows in &self.rows {
            for order in &self.order {
                for (layout_name, layout) in &self.layouts {
                    for &queries in &self.queries {
                        for &threads in &self.threads {
                            out.push(SweepPoint {
                                dataset: self.dataset.clone(),
                                rows,
                                order: order.clone(),
                                layout_name: layout_name.clone(),
                                layout: layout.clone(),
                                queries,
                                threads,
                                exclude_templates: self.exclude_templates.clone(),
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

/// What happened to one (grid, seed) of a sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepRun {
    /// The grid id.
    pub grid_id: String,
    /// The layout's name.
    pub layout_name: String,
    /// The seed.
    pub seed: u64,
    /// `ran` or `skipped` (already complete in the store).
    pub status: &'static str,
    /// Queries run (0 when skipped).
    pub queries: u64,
    /// Seconds the run took (0 when skipped).
    pub seconds: f64,
}

/// Runs every (grid, seed) of `sweep` not yet complete in the store at `base`; `config` gives
/// the engine settings each run starts from (its threads replaced by the grid's).
pub async fn run_sweep(
    base: &Path,
    options: &StoreOptions,
    sweep: &SweepFile,
    config: &Config,
) -> Result<Vec<SweepRun>, DbError> {
    let store = Store::open_or_create(base, options.partition_by.as_deref(), options.id_chars)?;
    let mut out = Vec::new();
    let points = sweep.points();
    let total = points.len() * sweep.seeds.len();
    for point in points {
        let params = serde_json::to_value(&point).expect("a sweep point serializes");
        for &seed in &sweep.seeds {
            // Resolved per run: the store may have grown a colliding grid meanwhile.
            let slot = Store::open(base)?.resolve_grid(&params, &options.extra_volatile)?;
            let done = slot.exists
                && store.data_file(Kind::Events, &slot, seed).exists()
                && store.data_file(Kind::Seeds, &slot, seed).exists();
            let n = out.len() + 1;
            if done {
                tracing::info!(
                    "run {n}/{total}: grid {} ({}) seed {seed} is complete, skipped",
                    slot.id,
                    point.layout_name
                );
                out.push(SweepRun {
                    grid_id: slot.id,
                    layout_name: point.layout_name.clone(),
                    seed,
                    status: "skipped",
                    queries: 0,
                    seconds: 0.0,
                });
                continue;
            }
            tracing::info!(
                "run {n}/{total}: grid {} ({}, {} rows, {} threads) seed {seed}",
                slot.id,
                point.layout_name,
                point.rows,
                point.threads
            );
            let started = Instant::now();
            let scratch = base.join("_work").join(format!("{}-s{seed}", slot.id));
            let measured = run_point(&scratch, &point, seed, config).await;
            let _ = std::fs::remove_dir_all(&scratch);
            let (events, summary) = measured?;
            let queries = events.num_rows() as u64;
            let report = write_run(
                base,
                options,
                &params,
                Some(seed),
                Some(Rows::from_batches(events.schema(), vec![events])),
                Some(Rows::from_batches(summary.schema(), vec![summary])),
            )
            .await?;
            out.push(SweepRun {
                grid_id: report.grid_id,
                layout_name: point.layout_name.clone(),
                seed,
                status: "ran",
                queries,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
    }
    let _ = std::fs::remove_dir(base.join("_work"));
    Ok(out)
}

/// One run in a fresh scratch workspace: its events (one row per query) and summary row.
async fn run_point(
    scratch: &Path,
    point: &SweepPoint,
    seed: u64,
    config: &Config,
) -> Result<(RecordBatch, RecordBatch), DbError> {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch)
        .map_err(|e| DbError::io(format!("creating {}", scratch.display()), e))?;
    let ws = Workspace::open(scratch_config(scratch, point, config)?)?;
    let table = TableName::new("events").map_err(DbError::from)?;
    let customers = TableName::new("customers").map_err(DbError::from)?;
    let generated = ws
        .generate_events(
            &crate::generate::GenerateOptions {
                table: table.clone(),
                customers_table: customers.clone(),
                num_rows: point.rows,
                seed,
                order: point.order.parse()?,
                replace: false,
                rows_per_file: None,
                row_group_rows: None,
            },
            &NoProgress,
        )
        .await?;
    let (layout, build) = build_layout(&ws, &table, &point.layout).await?;
    let layout_bytes = if layout == LayoutId::initial() {
        generated.events.bytes
    } else {
        parquet_files_under(&ws.layout_dir(&table, &layout)).1
    };
    let summary = ws
        .run_events_workload(
            &WorkloadOptions {
                table: table.clone(),
                customers_table: customers,
                num_queries: point.queries,
                seed,
                routing: None,
                exclude_templates: point.exclude_templates.clone(),
                layout: Some(layout.clone()),
            },
            &NoProgress,
        )
        .await?;
    let log = ws.query_log(Some(&table), 0, None)?;
    let events = events_batch(&log)?;
    let latencies: Vec<f64> = log.iter().filter_map(|q| q.latency_ms).collect();
    let mean_ms = latencies.iter().sum::<f64>() / latencies.len().max(1) as f64;
    let summary_row = serde_json::json!({
        "queries_run": summary.queries,
        "queries_failed": summary.errors,
        "mean_ms": mean_ms,
        "p50_ms": summary.p50_ms,
        "p95_ms": summary.p95_ms,
        "bytes_scanned": summary.total_bytes_scanned,
        "table_rows": generated.events.rows,
        "layout_id": layout.to_string(),
        "layout_bytes": layout_bytes,
        "build_ms": build.as_secs_f64() * 1000.0,
        "dbopt_version": env!("CARGO_PKG_VERSION"),
    });
    let summary = rows_batch(seeds_schema(), &[summary_row])?;
    Ok((events, summary))
}

/// The scratch workspace's configuration: the caller's settings, its own data directory and
/// catalog, and the grid's threads.
fn scratch_config(scratch: &Path, point: &SweepPoint, config: &Config) -> Result<Config, DbError> {
    let scratch = std::path::absolute(scratch)
        .map_err(|e| DbError::io(format!("resolving {}", scratch.display()), e))?;
    let flags = [
        (
            "data_dir",
            scratch.join("data").display().to_string(),
            "exp run",
        ),
        (
            "metadata_db",
            scratch.join("metadata.db").display().to_string(),
            "exp run",
        ),
        ("threads", point.threads.to_string(), "grid.toml threads"),
    ];
    config.with_flags(&flags).map_err(DbError::from)
}

/// Builds `layout` of `table` with the migration worker; the initial layout when the section
/// is empty. Returns the layout and how long the build took.
async fn build_layout(
    ws: &Workspace,
    table: &TableName,
    layout: &LayoutSection,
) -> Result<(LayoutId, Duration), DbError> {
    let spec = layout.spec().map_err(DbError::BadArgument)?;
    if spec == dbopt_core::LayoutSpec::default() {
        return Ok((LayoutId::initial(), Duration::ZERO));
    }
    let started = Instant::now();
    let report = ws.enqueue_migration(&EnqueueRequest {
        table: table.clone(),
        spec: SpecSource::Given(spec),
        mode: MigrationMode::Full,
        batch_files: None,
        rows_per_file: None,
        activate: true,
        dry_run: false,
    })?;
    let stop = AtomicBool::new(false);
    let worker = ws
        .run_migration_worker(
            &WorkerOptions {
                owner: format!("exp-run:{}", std::process::id()),
                keep_polling: false,
                sleep: Duration::from_millis(100),
                max_jobs: None,
                table: Some(table.clone()),
            },
            &stop,
        )
        .await?;
    if let Some((job, error)) = worker.failed.first() {
        return Err(DbError::JobFailed {
            job: *job,
            reason: error.clone(),
            user_error: false,
        });
    }
    Ok((report.plan.target_layout, started.elapsed()))
}

/// The columns of an event row of `exp run`: one per query executed.
fn events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("query", DataType::Int64, false),
        Field::new("template", DataType::Utf8, true),
        Field::new("cluster_id", DataType::Utf8, true),
        Field::new("layout_id", DataType::Utf8, true),
        Field::new("latency_ms", DataType::Float64, true),
        Field::new("rows_returned", DataType::Int64, true),
        Field::new("bytes_scanned", DataType::Int64, true),
        Field::new("files_total", DataType::Int64, true),
        Field::new("files_pruned", DataType::Int64, true),
        Field::new("row_groups_total", DataType::Int64, true),
        Field::new("row_groups_pruned", DataType::Int64, true),
        Field::new("error", DataType::Utf8, true),
        Field::new("sql", DataType::Utf8, true),
    ]))
}

/// The columns of an `exp run` seed summary.
fn seeds_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("queries_run", DataType::Int64, true),
        Field::new("queries_failed", DataType::Int64, true),
        Field::new("mean_ms", DataType::Float64, true),
        Field::new("p50_ms", DataType::Float64, true),
        Field::new("p95_ms", DataType::Float64, true),
        Field::new("bytes_scanned", DataType::Int64, true),
        Field::new("table_rows", DataType::Int64, true),
        Field::new("layout_id", DataType::Utf8, true),
        Field::new("layout_bytes", DataType::Int64, true),
        Field::new("build_ms", DataType::Float64, true),
        Field::new("dbopt_version", DataType::Utf8, true),
    ]))
}

/// One event row per logged query of the run.
fn events_batch(log: &[crate::query_log::QueryLogRow]) -> Result<RecordBatch, DbError> {
    let rows: Vec<serde_json::Value> = log
        .iter()
        .enumerate()
        .map(|(i, q)| {
            serde_json::json!({
                "query": i,
                "template": q.workload,
                "cluster_id": q.cluster_id,
                "layout_id": q.layout_id,
                "latency_ms": q.latency_ms,
                "rows_returned": q.rows_returned,
                "bytes_scanned": q.metrics.bytes_scanned,
                "files_total": q.metrics.files_total,
                "files_pruned": q.metrics.files_pruned,
                "row_groups_total": q.metrics.row_groups_total,
                "row_groups_pruned": q.metrics.row_groups_pruned,
                "error": q.error,
                "sql": q.sql,
            })
        })
        .collect();
    rows_batch(events_schema(), &rows)
}

/// JSON objects as a batch of `schema`.
fn rows_batch(schema: SchemaRef, rows: &[serde_json::Value]) -> Result<RecordBatch, DbError> {
    let internal = |e: arrow::error::ArrowError| DbError::Internal(format!("building rows: {e}"));
    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
        .build_decoder()
        .map_err(internal)?;
    decoder.serialize(rows).map_err(internal)?;
    Ok(decoder
        .flush()
        .map_err(internal)?
        .unwrap_or_else(|| RecordBatch::new_empty(schema)))
}
