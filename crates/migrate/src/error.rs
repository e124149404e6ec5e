//! The migration stage's error, with whether a retry can help.

use dbopt_catalog::CatalogError;
use dbopt_engine::EngineError;

/// Everything that can stop a migration.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The request or the data makes the rewrite impossible as asked (never retried).
    #[error("{0}")]
    Invalid(String),
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

    /// True when trying again later may succeed (machine trouble, not bad input).
    pub fn is_retryable(&self) -> bool {
        match self {
            MigrateError::Invalid(_) | MigrateError::Verify(_) => false,
            MigrateError::LeaseLost(_) | MigrateError::Interrupted(_) => true,
            MigrateError::Catalog(e) => !matches!(
                e,
                CatalogError::UnknownTable(_) | CatalogError::UnknownLayout { .. }
            ),
            MigrateError::Engine(e) => matches!(
                e,
                EngineError::Io { .. }
                    | EngineError::Write { .. }
                    | EngineError::Execution(_)
                    | EngineError::Resources(_)
            ),
            MigrateError::Io { .. } => true,
        }
    }

    /// True when the input is at fault (exit code 2 in the CLI): a refused request, a query
    /// that does not plan, or a table whose files cannot serve the spec (an unknown partition
    /// column, an initial layout without files, a damaged manifest).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            MigrateError::Invalid(_)
                | MigrateError::Engine(EngineError::Plan(_) | EngineError::Source(_))
        )
    }
}
