//! `generate`: the synthetic events table and its customers dimension, streamed to Parquet.

use crate::initial_layout::{InitialLayoutReport, InitialLayoutRequest};
use crate::{DbError, Progress, Workspace};
use dbopt_core::{LayoutSpec, TableName};
use dbopt_data::customers::{CustomersGenerator, CustomersParams};
use dbopt_data::events::{EventsGenerator, EventsParams, RowOrder, num_customers};
use dbopt_engine::writer::DEFAULT_ROWS_PER_FILE;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// The events table name.
    pub table: TableName,
    /// The customers dimension table name.
    pub customers_table: TableName,
    /// Event rows.
    pub num_rows: u64,
    /// Random seed (same seed, same data).
    pub seed: u64,
    /// Arrival (roughly time-ordered) or shuffled.
    pub order: RowOrder,
    /// Overwrite existing tables.
    pub replace: bool,
    /// Rows per file (default 4 Mi).
    pub rows_per_file: Option<u64>,
    /// Rows per row group of the initial files.
    pub row_group_rows: Option<usize>,
}

/// What `generate` wrote.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    /// The events table.
    pub events: InitialLayoutReport,
    /// The customers table.
    pub customers: InitialLayoutReport,
}

/// Rows from which a new initial layout is encoded by several threads.
pub const PARALLEL_WRITE_MIN_ROWS: u64 = 1_000_000;

/// Encoding threads for a table of `rows` rows: one per engine thread for large tables, one
/// otherwise (small tables keep a single file sequence).
pub fn parallel_writers(ws: &Workspace, rows: u64) -> usize {
    if rows >= PARALLEL_WRITE_MIN_ROWS {
        ws.engine_settings().effective_threads()
    } else {
        1
    }
}

impl Workspace {
    /// Generates the events table and the customers table it joins to.
    pub async fn generate_events(
        &self,
        options: &GenerateOptions,
        progress: &dyn Progress,
    ) -> Result<GenerateReport, DbError> {
        if options.num_rows == 0 {
            return Err(DbError::BadArgument(
                "--num-rows must be at least 1".to_string(),
            ));
        }
        if options.table == options.customers_table {
            return Err(DbError::BadArgument(
                "the events table and the customers table need different names".to_string(),
            ));
        }
        self.check_can_create(&options.table, options.replace)?;
        self.check_can_create(&options.customers_table, options.replace)?;
        let batch_size = self.config().batch_size();
        let spec = LayoutSpec {
            row_group_rows: options.row_group_rows,
            ..Default::default()
        };
        let rows_per_file = options.rows_per_file.unwrap_or(DEFAULT_ROWS_PER_FILE);

        let n_customers = num_customers(options.num_rows);
        let customers = CustomersGenerator::new(CustomersParams {
            num_customers: n_customers,
            seed: options.seed,
            batch_size,
        });
        let request = InitialLayoutRequest {
            table: options.customers_table.clone(),
            source: format!(
                "generate customers rows={n_customers} seed={}",
                options.seed
            ),
            replace: options.replace,
            rows_per_file,
            spec: spec.clone(),
            writers: 1,
        };
        let customers = self
            .write_initial_layout(
                &request,
                CustomersGenerator::schema(),
                futures::stream::iter(customers.map(Ok)),
                &crate::NoProgress,
            )
            .await?;

        progress.set_total(options.num_rows);
        let events = EventsGenerator::new(EventsParams {
            num_rows: options.num_rows,
            seed: options.seed,
            order: options.order,
            batch_size,
        });
        let request = InitialLayoutRequest {
            table: options.table.clone(),
            source: format!(
                "generate events rows={} seed={} order={}",
                options.num_rows, options.seed, options.order
            ),
            replace: options.replace,
            rows_per_file,
            spec,
            writers: parallel_writers(self, options.num_rows),
        };
        let events = self
            .write_initial_layout(
                &request,
                EventsGenerator::schema(),
                futures::stream::iter(events.map(Ok)),
                progress,
            )
            .await?;
        Ok(GenerateReport { events, customers })
    }
}
