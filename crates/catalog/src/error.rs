//! The one error type of the catalog.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// SQLite failed while the catalog was doing `context`.
    #[error("catalog error while {context}: {source}")]
    Sqlite {
        /// What the catalog was doing.
        context: String,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was migrated by a newer dbopt; it is left untouched.
    #[error(
        "catalog {} was written by a newer dbopt (schema version {found}, this build supports {supported}): upgrade dbopt or point METADATA_DB elsewhere",
        path.display()
    )]
    NewerSchema {
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
        /// The catalog file.
        path: PathBuf,
    },
    /// A table with this name is already registered.
    #[error("table '{0}' already exists: choose another name or ask to replace it")]
    TableExists(String),
    /// No table with this name is registered.
    #[error("unknown table '{0}': run `dbopt tables` to list managed tables")]
    UnknownTable(String),
    /// No layout with this id is registered for the table.
    #[error(
        "unknown layout '{layout}' of table '{table}': it was never registered or the table was replaced"
    )]
    UnknownLayout {
        /// The table.
        table: String,
        /// The layout id asked for.
        layout: String,
    },
    /// The active layout is not the one the caller expected: another process changed it.
    #[error(
        "the active layout of table '{table}' is '{found}', not '{expected}': another process changed it; re-read the state (`dbopt status --table-name {table}`) and try again"
    )]
    ActiveChanged {
        /// The table.
        table: String,
        /// The layout the caller expected to replace.
        expected: String,
        /// The layout that is active.
        found: String,
    },
    /// A write was refused because the catalog state does not allow it (fencing, leases,
    /// status checks); retrying after re-reading the state may help.
    #[error("catalog conflict: {0}")]
    Conflict(String),
    /// An Iceberg SQL catalog (another program's SQLite file) that cannot be used as asked.
    #[error("{0}")]
    IcebergCatalog(String),
    /// A stored row cannot be read back (bad JSON, bad id, negative count).
    #[error("corrupt catalog row: {0}")]
    Corrupt(String),
}

/// Attaches "what was being done" to a rusqlite error.
pub(crate) trait SqlContext<T> {
    /// Wraps the error as `CatalogError::Sqlite` with `context`.
    fn ctx(self, context: &str) -> Result<T, CatalogError>;
}

impl<T> SqlContext<T> for Result<T, rusqlite::Error> {
    fn ctx(self, context: &str) -> Result<T, CatalogError> {
        self.map_err(|source| CatalogError::Sqlite {
            context: context.to_string(),
            source,
        })
    }
}
