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

    /// True when the input (a name, SQL, a path, a file) is at fault, not the machine.
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            DbError::Io { .. }
                | DbError::Engine(EngineError::Io { .. })
                | DbError::Catalog(CatalogError::Sqlite { .. })
        ) && !matches!(self, DbError::Report(e) if !e.is_user_error())
    }
}
