//! The migration stage's error, with whether a retry can help.

use dbopt_catalog::CatalogError;
use dbopt_engine::EngineError;

/// Everything that can stop a migration.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The source layout's manifest cannot be read.
    #[error("source layout '{layout}' of table '{table}' cannot be read: {source}")]
    UnreadableSource {
        /// The table.
        table: String,
        /// The source layout.
        layout: String,
        /// Why.
        #[source]
        source: EngineError,
    },
    /// A job whose stored plan does not parse (the catalog was damaged).
    #[error("job {job} has an unreadable plan: {source}")]
    CorruptPlan {
        /// The job id.
        job: i64,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Too little free disk for the rewrite.
    #[error(
        "not enough free disk for the rewrite: {need} bytes needed (1.2x the source), {free} free under {}: free space or move DATA_DIR",
        data_dir.display()
    )]
    NotEnoughDisk {
        /// Bytes needed.
        need: u64,
        /// Bytes free.
        free: u64,
        /// The data directory.
        data_dir: std::path::PathBuf,
    },
    /// Partition columns holding values a hive directory cannot carry.
    #[error(
        "partition column(s) ({columns}) hold {count} null or empty values, which hive directories cannot carry losslessly: partition on columns without nulls"
    )]
    NullPartitionValues {
        /// The partition columns, comma-separated.
        columns: String,
        /// Rows with such values.
        count: u64,
    },
    /// A partitioning with more partitions than allowed.
    #[error(
        "partitioning on ({columns}) would create {count} partitions, more than max_partitions = {max}: choose a coarser column or raise max_partitions"
    )]
    TooManyPartitions {
        /// The partition columns, comma-separated.
        columns: String,
        /// Partitions it would create.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// The job's target layout is already published by another run.
    #[error("layout {0} is already published")]
    AlreadyPublished(String),
    /// A layout spec that cannot be built as asked.
    #[error("{0}: fix the spec flags")]
    Spec(#[source] dbopt_core::CoreError),
    /// A spec naming a column the table does not have.
    #[error(
        "the spec names unknown column '{column}' of table '{table}': its columns are {columns}"
    )]
    UnknownColumn {
        /// The column named.
        column: String,
        /// The table.
        table: String,
        /// Its columns, comma-separated.
        columns: String,
    },
    /// A spec that partitions, sorts, clusters or bloom-filters on a nested column.
    #[error(
        "column '{column}' of table '{table}' is nested (a struct, list or map): it cannot be a partition, sort, cluster or bloom-filter column; name a scalar column"
    )]
    NestedColumn {
        /// The column named.
        column: String,
        /// The table.
        table: String,
    },
    /// A source layout without rows.
    #[error("layout '{layout}' of table '{table}' has no rows: nothing to migrate")]
    EmptySource {
        /// The table.
        table: String,
        /// The source layout.
        layout: String,
    },
    /// A file shape with zero rows per file.
    #[error("rows per file must be positive")]
    ZeroRowsPerFile,
    /// Units of zero source files.
    #[error("--batch-files must be at least 1 (source files per unit of an incremental rewrite)")]
    ZeroBatchFiles,
    /// The configured Ballista cluster cannot be used (checked before any job is claimed).
    #[error("{0}")]
    Cluster(String),
    /// Incremental mode asked of a partitioned source.
    #[error("layout '{0}' is partitioned: rewrite it with --mode full")]
    IncrementalOnPartitioned(String),
    /// The rewritten data does not match the source (never retried; staging is removed).
    #[error("verification failed: {0}")]
    Verify(String),
    /// The worker lost its lease (another worker took over); it must stop without publishing.
    #[error("lease lost: {0}")]
    LeaseLost(String),
    /// Stopped on request between units; the job goes back to the queue.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The engine failed (reading, sorting, writing).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// File system error with context.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl MigrateError {
    /// Wraps an IO error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        MigrateError::Io {
            context: context.into(),
            source,
        }
    }

    /// Whose fault the error is, which decides both retry and exit code.
    pub fn fault(&self) -> Fault {
        match self {
            MigrateError::UnreadableSource { .. }
            | MigrateError::NotEnoughDisk { .. }
            | MigrateError::NullPartitionValues { .. }
            | MigrateError::TooManyPartitions { .. }
            | MigrateError::AlreadyPublished(_)
            | MigrateError::Spec(_)
            | MigrateError::UnknownColumn { .. }
            | MigrateError::NestedColumn { .. }
            | MigrateError::EmptySource { .. }
            | MigrateError::ZeroRowsPerFile
            | MigrateError::ZeroBatchFiles
            | MigrateError::Cluster(_)
            | MigrateError::IncrementalOnPartitioned(_)
            | MigrateError::Engine(EngineError::Plan(_) | EngineError::Source(_)) => Fault::Input,
            MigrateError::LeaseLost(_)
            | MigrateError::Interrupted(_)
            | MigrateError::Io { .. }
            | MigrateError::Engine(
                EngineError::Io { .. }
                | EngineError::Write { .. }
                | EngineError::Execution(_)
                | EngineError::Resources(_)
                | EngineError::StoreFailed(_)
                | EngineError::Scheduler(_)
                | EngineError::ClusterFailed(_),
            ) => Fault::Transient,
            MigrateError::Catalog(e) => match e {
                CatalogError::UnknownTable(_) | CatalogError::UnknownLayout { .. } => Fault::Fatal,
                _ => Fault::Transient,
            },
            MigrateError::Verify(_)
            | MigrateError::CorruptPlan { .. }
            | MigrateError::Engine(_) => Fault::Fatal,
        }
    }

    /// True when trying again later may succeed (machine trouble, not bad input).
    pub fn is_retryable(&self) -> bool {
        self.fault() == Fault::Transient
    }

    /// True when the input is at fault (exit code 2 in the CLI): a refused request, a query
    /// that does not plan, or a table whose files cannot serve the spec (an unknown partition
    /// column, an initial layout without files, a damaged manifest).
    pub fn is_user_error(&self) -> bool {
        self.fault() == Fault::Input
    }
}

/// Whose fault a migration error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request or the data: never retried, exit code 2.
    Input,
    /// The machine for a while (IO, a lost lease, a busy catalog): the job is retried later.
    Transient,
    /// Neither the input nor worth retrying (a failed verification, a damaged job): the job
    /// fails for good, exit code 1.
    Fatal,
}
