//! The facade's error: every stage's error plus the workspace's own, each one line.

use dbopt_catalog::CatalogError;
use dbopt_core::CoreError;
use dbopt_engine::EngineError;

/// An error from any stage, with whether the user can fix it by changing the input.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A name, spec or configuration value is wrong.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The catalog refused or failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Planning, execution, reading or writing failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A generator failed.
    #[error(transparent)]
    Data(#[from] dbopt_data::DataError),
    /// A report could not be written.
    #[error(transparent)]
    Report(#[from] dbopt_report::ReportError),
    /// The table is already managed.
    #[error(
        "table '{0}' already exists: pass --replace to overwrite it, or choose another --table-name"
    )]
    TableExists(String),
    /// A migration failed or was refused.
    #[error(transparent)]
    Migrate(#[from] dbopt_migrate::MigrateError),
    /// A migration job failed for good (`user_error` when its input was at fault).
    #[error("migration job {job} failed: {reason}")]
    JobFailed {
        /// The job id.
        job: i64,
        /// Why.
        reason: String,
        /// True when the input (spec, data) was at fault, not the machine.
        user_error: bool,
    },
    /// The network failed after retries.
    #[error("{0}")]
    Network(String),
    /// A bug or a crashed helper thread: not the user's fault.
    #[error("internal error: {0}")]
    Internal(String),
    /// The input is not usable as given.
    #[error("{0}")]
    Invalid(String),
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

impl DbError {
    /// Wraps an IO error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DbError::Io {
            context: context.into(),
            source,
        }
    }

    /// True when the input (a name, SQL, a path, a file) is at fault, not the machine: exit
    /// code 2 in the CLI, 1 otherwise.
    pub fn is_user_error(&self) -> bool {
        match self {
            DbError::Io { .. } | DbError::Network(_) | DbError::Internal(_) => false,
            DbError::Engine(e) => engine_user_error(e),
            DbError::Catalog(e) => {
                !matches!(e, CatalogError::Sqlite { .. } | CatalogError::Corrupt(_))
            }
            DbError::Report(e) => e.is_user_error(),
            DbError::Migrate(e) => e.is_user_error(),
            DbError::JobFailed { user_error, .. } => *user_error,
            DbError::Core(_) | DbError::Data(_) | DbError::TableExists(_) | DbError::Invalid(_) => {
                true
            }
        }
    }
}

/// Whether an engine error is the input's fault: IO, a failed write and exhausted resources
/// are the machine's.
fn engine_user_error(e: &EngineError) -> bool {
    !matches!(
        e,
        EngineError::Io { .. } | EngineError::Write { .. } | EngineError::Resources(_)
    )
}

/// Reaches a named fail point (a no-op in normal builds; see `dbopt_core::failpoint`).
pub(crate) fn fail_point(name: &str) -> Result<(), DbError> {
    dbopt_core::fail_point(name).map_err(|e| DbError::io(format!("at {name}"), e))
}
