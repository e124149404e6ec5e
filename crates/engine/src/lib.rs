//! dbopt-engine: the only DataFusion and Parquet glue.
//!
//! Sits between the facade and the files: it builds sessions (threads, memory pool, spill
//! directory), registers a table at one of its layouts, executes read-only SQL while reading
//! DataFusion's own scan metrics, digests results order-insensitively, writes Parquet with the
//! settings a `LayoutSpec` asks for (one writer or a pool of writer threads), reads Parquet
//! footers, and streams external CSV/Parquet sources. A session may also run its queries on an
//! Apache Ballista cluster (`distributed`), with the same scan metrics read back from it. Other crates reach DataFusion only
//! through the engine's own types (`Session`, `QueryOutcome`, `SourceRows`, ...).

pub mod avro;
pub mod chunk_cache;
pub mod column_stats;
pub(crate) mod column_writer;
pub mod compare;
pub mod delta;
pub mod distributed;
pub mod error;
pub mod execute;
pub mod file_bounds;
pub mod footer;
pub mod foreign_sql;
pub mod iceberg;
pub mod join_keys;
pub mod layout_dir;
pub mod memory_sort;
pub mod params;
pub mod plan_summary;
pub mod profile;
pub mod register;
pub mod result_digest;
pub mod rewrite;
pub mod session;
pub mod source;
pub mod sql_guard;
pub mod store;
pub mod writer;
pub mod writer_pool;

pub use chunk_cache::{ChunkCache, ChunkCacheStats, WarmReport};
pub use distributed::remote_session;
pub use error::EngineError;
pub use execute::{QueryOutcome, TableScanMetrics, execute_query};
pub use foreign_sql::{Dialect, ForeignQuery, summarize_syntax, translate};
pub use params::{ParamValue, StatementDescription, bind_parameters};
pub use profile::{OperatorKind, OperatorProfile, QueryProfile};
pub use register::{
    RegisteredLayout, parquet_files_under, register_hive_dir, register_layout, register_view,
};
pub use session::{
    EngineRuntime, EngineSettings, MetadataCacheStats, Session, StatementTimeout, new_session,
    new_session_in,
};
pub use sql_guard::{check_read_only, fingerprint, referenced_tables};
pub use writer::{LayoutWriter, WrittenLayout};
pub use writer_pool::WriterPool;
