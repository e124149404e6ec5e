//! dbopt-data: synthetic datasets and workloads for dbopt.
//!
//! Sits at the very start of the data flow: it generates the `events` and `customers`
//! tables as streams of Arrow RecordBatches (which the engine crate writes to Parquet as a
//! table's `layout_initial`) and the SQL workload that is run against them, whose queries
//! then feed the query log, analysis and proposals. Pure generation: no file IO.
//!
//! Every generator is deterministic for its parameters and produces rows block by block
//! (O(batch) memory); row content does not depend on the batch size.
//!
//! TPC-H (`tpch`, `tpch_queries`, `tpch_params`): the eight tables from tpchgen on parallel
//! worker threads, the 22 query templates and their specification-rule parameters.

pub mod customers;
pub mod events;
pub mod sampling;
pub mod taxi;
pub mod tpch;
pub mod tpch_params;
pub mod tpch_queries;
pub mod workload;
pub mod workload_spec;

mod blocks;

pub use blocks::{BLOCK_ROWS, DEFAULT_BATCH_SIZE};
pub use customers::{CustomersGenerator, CustomersParams};
pub use events::{EventsGenerator, EventsParams, RowOrder, num_customers, num_users};
pub use workload::{EventsDomain, EventsWorkload, GeneratedQuery, Template, template_names};

/// Errors of dataset and workload generation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// A row order name other than "arrival" or "shuffled".
    #[error("unknown row order '{0}': use 'arrival' or 'shuffled'")]
    UnknownRowOrder(String),
    /// A TPC-H table name that does not exist.
    #[error(
        "unknown TPC-H table '{0}': use a comma-separated list of nation,region,part,supplier,partsupp,customer,orders,lineitem"
    )]
    UnknownTpchTable(String),
    /// A TPC-H scale factor that is not a number above 0 (or so small that a table is empty).
    #[error(
        "invalid scale factor '{0}': use a number from 0.001 to 100000, e.g. --scale-factor 0.1"
    )]
    InvalidScaleFactor(String),
    /// A generator worker failed.
    #[error("{0}")]
    Generator(String),
}
