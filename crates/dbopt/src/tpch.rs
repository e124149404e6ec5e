//! TPC-H: `generate-tpch` streams the eight tables from tpchgen (parallel parts) into ZSTD
//! Parquet initial layouts; the TPC-H workload runs the 22 templates with parameters drawn
//! by the specification's rules and logs every query against `lineitem`; `validate_tpch` runs
//! queries with the validation parameters and compares them with the scale-factor-1 answers.

use crate::initial_layout::{InitialLayoutReport, InitialLayoutRequest};
use crate::workload::{Routing, Runner, WorkloadSummary, run_generated, run_logged};
use crate::{DbError, Progress, Workspace};
use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use dbopt_core::{LayoutSpec, TableName};
use dbopt_data::tpch::{
    DEFAULT_PART_ROWS, TpchBatches, TpchGenParams, TpchTable, check_scale_factor,
};
use dbopt_data::tpch_params::{TpchMix, TpchWorkload, tpch_validation_query};
use dbopt_data::tpch_queries::compare_answer;
use dbopt_engine::writer::DEFAULT_ROWS_PER_FILE;
use std::time::{Duration, Instant};

/// The prefix of the catalog `source` of a generated TPC-H table (followed by `sf=<SF>`).
pub const TPCH_SOURCE_PREFIX: &str = "tpchgen";

/// What `generate-tpch` should write.
#[derive(Debug, Clone)]
pub struct TpchGenerateOptions {
    /// TPC-H scale factor (1 = about 6 million lineitem rows).
    pub scale_factor: f64,
    /// The tables to generate (empty: all eight).
    pub tables: Vec<TpchTable>,
    /// Overwrite tables that exist.
    pub replace: bool,
    /// Generator threads (None: the configured `threads`, 0 there meaning every core).
    pub threads: Option<usize>,
}

/// What `generate-tpch` wrote.
#[derive(Debug, Clone)]
pub struct TpchGenerateReport {
    /// One report per table, in generation order.
    pub tables: Vec<InitialLayoutReport>,
    /// Wall time of the whole command.
    pub elapsed: Duration,
}

impl TpchGenerateReport {
    /// Rows written in all tables.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// What a TPC-H workload run should draw.
#[derive(Debug, Clone)]
pub struct TpchWorkloadOptions {
    /// How many queries.
    pub num_queries: u64,
    /// Seed of the parameter generator.
    pub seed: u64,
    /// Uniform over the 22 templates, or filter-heavy.
    pub mix: TpchMix,
    /// Route `lineitem` across its live layouts (None: the active layout).
    pub routing: Option<Routing>,
}

/// The outcome of one validated query.
#[derive(Debug, Clone)]
pub struct TpchCheck {
    /// Query number.
    pub query: u8,
    /// Rows returned.
    pub rows: usize,
    /// None when the result matches the reference answer, else what differs.
    pub mismatch: Option<String>,
}

/// Forwards progress but leaves `finish` to the caller (several tables share one bar).
struct Shared<'a>(&'a dyn Progress);

impl Progress for Shared<'_> {
    fn set_total(&self, total: u64) {
        self.0.set_total(total);
    }
    fn advance(&self, delta: u64) {
        self.0.advance(delta);
    }
    fn message(&self, text: &str) {
        self.0.message(text);
    }
    fn finish(&self) {}
}

fn table_name(table: TpchTable) -> TableName {
    TableName::new(table.name()).expect("TPC-H table names are valid")
}

/// Splits `tables` into at most `lanes` groups of about equal rows (largest first), each
/// written by one thread.
fn plan_lanes(tables: &[TpchTable], scale_factor: f64, lanes: usize) -> Vec<Vec<TpchTable>> {
    let mut sorted = tables.to_vec();
    sorted.sort_by_key(|t| std::cmp::Reverse(t.estimated_rows(scale_factor)));
    let mut plan: Vec<(u64, Vec<TpchTable>)> =
        vec![(0, Vec::new()); lanes.clamp(1, tables.len().max(1))];
    for table in sorted {
        let lightest = plan
            .iter_mut()
            .min_by_key(|(rows, _)| *rows)
            .expect("at least one lane");
        lightest.0 += table.estimated_rows(scale_factor);
        lightest.1.push(table);
    }
    plan.into_iter()
        .map(|(_, lane)| lane)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Parses the scale factor out of a catalog source written by `generate_tpch`.
fn scale_factor_of_source(source: &str) -> Option<f64> {
    let rest = source.strip_prefix(TPCH_SOURCE_PREFIX)?;
    rest.split_whitespace()
        .find_map(|w| w.strip_prefix("sf="))
        .and_then(|v| v.parse().ok())
}

/// Cells of `batches` as display text, row by row.
fn result_cells(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, DbError> {
    let options = FormatOptions::default();
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DbError::Internal(format!("cannot format a result: {e}")))?;
        for r in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    Ok(rows)
}

impl Workspace {
    /// Generates the TPC-H tables as managed tables, each in its own atomic initial layout.
    pub fn generate_tpch(
        &self,
        options: &TpchGenerateOptions,
        progress: &dyn Progress,
    ) -> Result<TpchGenerateReport, DbError> {
        let started = Instant::now();
        let sf = options.scale_factor;
        check_scale_factor(sf)?;
        let tables = if options.tables.is_empty() {
            TpchTable::ALL.to_vec()
        } else {
            options.tables.clone()
        };
        // Refuse before writing anything, so a refusal leaves every table as it was.
        for table in &tables {
            self.check_can_create(&table_name(*table), options.replace)?;
        }
        let threads = match options.threads.unwrap_or(self.config().threads()) {
            0 => std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            n => n,
        };
        progress.set_total(tables.iter().map(|t| t.estimated_rows(sf)).sum());
        let shared = Shared(progress);
        // Tables are independent: lanes of tables run side by side (each writer is one
        // thread), and each table's generation runs on `threads` workers.
        let lanes = plan_lanes(&tables, sf, threads);
        let results: Vec<Result<Vec<InitialLayoutReport>, DbError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = lanes
                .iter()
                .map(|lane| {
                    let shared = &shared;
                    scope.spawn(move || {
                        let mut reports = Vec::with_capacity(lane.len());
                        for table in lane {
                            let write = self.generate_tpch_table(*table, options, threads, shared);
                            reports.push(futures::executor::block_on(write)?);
                        }
                        Ok(reports)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(DbError::Internal(
                            "a TPC-H writer thread panicked".to_string(),
                        ))
                    })
                })
                .collect()
        });
        let mut reports = Vec::with_capacity(tables.len());
        for result in results {
            reports.extend(result?);
        }
        reports.sort_by_key(|r| TpchTable::parse(r.table.as_str()).ok());
        progress.finish();
        Ok(TpchGenerateReport {
            tables: reports,
            elapsed: started.elapsed(),
        })
    }

    /// Generates one table into its initial layout.
    async fn generate_tpch_table(
        &self,
        table: TpchTable,
        options: &TpchGenerateOptions,
        threads: usize,
        progress: &dyn Progress,
    ) -> Result<InitialLayoutReport, DbError> {
        let sf = options.scale_factor;
        progress.message(table.name());
        let batches = TpchBatches::start(TpchGenParams {
            table,
            scale_factor: sf,
            threads,
            batch_size: self.config().batch_size(),
            part_rows: DEFAULT_PART_ROWS,
        })?;
        let request = InitialLayoutRequest {
            table: table_name(table),
            source: format!("{TPCH_SOURCE_PREFIX} sf={sf}"),
            replace: options.replace,
            rows_per_file: DEFAULT_ROWS_PER_FILE,
            spec: LayoutSpec::default(),
            writers: crate::generate::parallel_writers(self, table.estimated_rows(sf)),
        };
        let stream = futures::stream::iter(batches.map(|b| b.map_err(DbError::from)));
        self.write_initial_layout(&request, table.schema(), stream, progress)
            .await
    }

    /// The scale factor of the generated TPC-H tables (from the catalog), or an error that
    /// says how to generate them when any of the eight is missing.
    pub fn tpch_scale_factor(&self) -> Result<f64, DbError> {
        let mut missing = Vec::new();
        let mut sf = None;
        for table in TpchTable::ALL {
            match self.catalog().get_table(&table_name(table))? {
                None => missing.push(table.name()),
                Some(record) => {
                    sf = sf.or(scale_factor_of_source(&record.source));
                    if table == TpchTable::Supplier && sf.is_none() {
                        sf = Some(record.row_count as f64 / 10_000.0);
                    }
                }
            }
        }
        if !missing.is_empty() {
            return Err(DbError::Tpch(format!(
                "the TPC-H tables {} are missing: run `dbopt generate-tpch --scale-factor 0.1` first",
                missing.join(", ")
            )));
        }
        Ok(sf.unwrap_or(1.0))
    }

    /// Runs a TPC-H workload (random parameters per the specification), logging every query
    /// against `lineitem` (and per scanned table in `query_scans`).
    pub async fn run_tpch_workload(
        &self,
        options: &TpchWorkloadOptions,
        progress: &dyn Progress,
    ) -> Result<WorkloadSummary, DbError> {
        let sf = self.tpch_scale_factor()?;
        let mut generator = TpchWorkload::new(options.seed, options.mix, sf);
        let lineitem = table_name(TpchTable::LineItem);
        let mut runner = Runner::open(self, &lineitem, options.routing.as_ref()).await?;
        Ok(run_generated(
            &mut runner,
            options.num_queries,
            || generator.next_query(),
            progress,
        )
        .await)
    }

    /// Runs queries `queries` (1..=22) with the validation parameters and compares each result
    /// with tpchgen's reference answer, which exists for scale factor 1 only.
    pub async fn validate_tpch(&self, queries: &[u8]) -> Result<Vec<TpchCheck>, DbError> {
        if let Some(bad) = queries.iter().find(|q| !(1..=22).contains(*q)) {
            return Err(DbError::Tpch(format!(
                "there is no TPC-H query {bad}: use numbers from 1 to 22"
            )));
        }
        let sf = self.tpch_scale_factor()?;
        if (sf - 1.0).abs() > 1e-9 {
            return Err(DbError::Tpch(format!(
                "the reference answers are for scale factor 1 and the tables have {sf}: run `dbopt generate-tpch --scale-factor 1 --replace` first"
            )));
        }
        let mut runner = Runner::open(self, &table_name(TpchTable::LineItem), None).await?;
        let mut checks = Vec::with_capacity(queries.len());
        for &n in queries {
            let sql = tpch_validation_query(n, sf).expect("checked above");
            let outcome = run_logged(&mut runner, &sql, &format!("validate-q{n}")).await?;
            let cells = result_cells(&outcome.batches)?;
            checks.push(TpchCheck {
                query: n,
                rows: cells.len(),
                mismatch: compare_answer(n, &cells).err(),
            });
        }
        Ok(checks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_balance_rows_with_lineitem_alone() {
        let lanes = plan_lanes(&TpchTable::ALL, 1.0, 2);
        assert_eq!(lanes[0], [TpchTable::LineItem]);
        assert_eq!(lanes[1].len(), 7);
        assert_eq!(
            plan_lanes(&[TpchTable::Nation], 1.0, 4),
            [[TpchTable::Nation]]
        );
        assert_eq!(plan_lanes(&TpchTable::ALL, 1.0, 1)[0].len(), 8);
    }

    #[test]
    fn scale_factor_round_trips_through_the_source() {
        assert_eq!(scale_factor_of_source("tpchgen sf=0.01"), Some(0.01));
        assert_eq!(scale_factor_of_source("tpchgen sf=1"), Some(1.0));
        assert_eq!(scale_factor_of_source("generate events"), None);
    }
}
