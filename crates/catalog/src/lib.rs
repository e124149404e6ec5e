//! dbopt-catalog: the only SQLite code of dbopt.
//!
//! Sits under every stage of the data flow: the engine's executed queries land in
//! `query_log` (with one `query_scans` row per managed table scanned), analyze reads them
//! back, migrate registers and publishes layouts, and the facade resolves each table's
//! active layout here. One `metadata.db` file, WAL, `synchronous=FULL`, every write in a
//! `BEGIN IMMEDIATE` transaction, schema versioned by appending to `schema::MIGRATIONS`.

/// Gives an enum stored as text in a column `as_str`, `parse` (None for unknown text) and
/// `Display`, from one list of variants and their stored texts.
macro_rules! stored_as_text {
    ($name:ident, $column:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            #[doc = concat!("The text stored in the `", $column, "` column.")]
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Parses the stored text.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod analysis;
mod error;
pub mod iceberg_sql;
mod jobs;
mod lake;
mod observe;
mod pushdown;
mod queries;
mod routes;
mod schema;
mod serving;
mod tables;

pub use analysis::{CachedStats, NewProposal, ProposalRecord};
pub use error::CatalogError;
pub use jobs::{Enqueued, JobRecord, JobStats, JobStatus, Lease, MigrationMode, NewJob, Published};
pub use lake::{LakeFormat, LakeSource};
pub use observe::{AutopilotCounts, LayoutTotals, LogTotals, QueryPointRecord, TemplateStat};
pub use pushdown::PushdownStat;
pub use queries::{
    LoggedQuery, QueryLogEntry, QueryOrigin, QuerySource, RouteChoice, ScanMetrics, TableScan,
};
pub use routes::RouteStat;
pub use schema::SCHEMA_VERSION;
pub use serving::{
    Activation, ActivationKind, ActiveSwap, CanaryRecord, CanarySummary, DecisionRecord,
    EvalRecord, LayoutEval, NewCanary, Verdict,
};
pub use tables::{LayoutRecord, LayoutStatus, TableRecord};

use dbopt_core::{Clock, LayoutId, TableName};
use error::SqlContext;
use rusqlite::types::FromSql;
use rusqlite::{Connection, Params, Row, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long a write waits for another connection's write lock before failing.
pub const BUSY_TIMEOUT_MS: u64 = 10_000;

/// An open catalog: one SQLite connection (behind a mutex, so `&self` suffices) and a clock.
#[derive(Debug)]
pub struct Catalog {
    conn: Mutex<Connection>,
    clock: Arc<dyn Clock>,
    path: PathBuf,
}

impl Catalog {
    /// Opens or creates the catalog at `path` and brings its schema up to date; a file from
    /// a newer dbopt is refused with `NewerSchema` and left unmodified.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Catalog, CatalogError> {
        let conn = Connection::open(path).ctx(&format!("opening {}", path.display()))?;
        Self::init(conn, path, clock)
    }

    /// A private in-memory catalog (no WAL), for tests of other crates.
    pub fn open_in_memory(clock: Arc<dyn Clock>) -> Result<Catalog, CatalogError> {
        let conn = Connection::open_in_memory().ctx("opening an in-memory catalog")?;
        Self::init(conn, Path::new(":memory:"), clock)
    }

    fn init(
        mut conn: Connection,
        path: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Catalog, CatalogError> {
        let context = format!("configuring {}", path.display());
        conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
            .ctx(&context)?;
        // Checked before any pragma that could write to the file.
        schema::check_not_newer(&conn, schema::MIGRATIONS, path)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .ctx(&context)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .ctx(&context)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .ctx(&context)?;
        schema::migrate(&mut conn, schema::MIGRATIONS, path)?;
        Ok(Catalog {
            conn: Mutex::new(conn),
            clock,
            path: path.to_path_buf(),
        })
    }

    /// The schema version stored in the file (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64, CatalogError> {
        schema::user_version(&self.lock())
    }

    /// The catalog file this handle was opened on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a consistent copy of the whole catalog to `dest` (`VACUUM INTO`), e.g. a scratch
    /// catalog for timing writes without touching the real one.
    pub fn backup_to(&self, dest: &Path) -> Result<(), CatalogError> {
        let context = format!("copying the catalog to {}", dest.display());
        self.lock()
            .execute("VACUUM INTO ?1", [dest.display().to_string()])
            .ctx(&context)?;
        Ok(())
    }

    /// The current time according to the catalog's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-transaction rolled it back on unwind; the connection is still usable.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits it if `f` succeeds.
    pub(crate) fn write<T>(
        &self,
        context: &str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, CatalogError>,
    ) -> Result<T, CatalogError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx(context)?;
        let out = f(&tx)?;
        tx.commit().ctx(context)?;
        Ok(out)
    }

    /// Runs `f` in one read transaction, so multi-statement reads see one snapshot.
    pub(crate) fn read<T>(
        &self,
        context: &str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, CatalogError>,
    ) -> Result<T, CatalogError> {
        let mut conn = self.lock();
        let tx = conn.transaction().ctx(context)?;
        f(&tx)
    }
}

/// Runs `sql` and maps every row with `map`.
pub(crate) fn collect_rows<T, P: Params>(
    conn: &Connection,
    context: &str,
    sql: &str,
    params: P,
    mut map: impl FnMut(&Row<'_>) -> Result<T, CatalogError>,
) -> Result<Vec<T>, CatalogError> {
    let mut stmt = conn.prepare_cached(sql).ctx(context)?;
    let mut rows = stmt.query(params).ctx(context)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().ctx(context)? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// Stores a count as SQLite INTEGER, saturating at `i64::MAX`.
pub(crate) fn sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Reads column `col` of `row`.
pub(crate) fn get<T: FromSql>(row: &Row<'_>, col: &str) -> Result<T, CatalogError> {
    row.get(col).map_err(|source| CatalogError::Sqlite {
        context: format!("reading column {col}"),
        source,
    })
}

/// Reads a non-negative count; a negative value is `Corrupt`.
pub(crate) fn get_u64(row: &Row<'_>, col: &str) -> Result<u64, CatalogError> {
    let value: i64 = get(row, col)?;
    u64::try_from(value)
        .map_err(|_| CatalogError::Corrupt(format!("column {col} holds negative count {value}")))
}

/// Reads a table name column.
pub(crate) fn get_table_name(row: &Row<'_>, col: &str) -> Result<TableName, CatalogError> {
    let text: String = get(row, col)?;
    TableName::new(&text).map_err(|e| CatalogError::Corrupt(format!("column {col}: {e}")))
}

/// Reads a nullable layout id column.
pub(crate) fn get_opt_layout_id(
    row: &Row<'_>,
    col: &str,
) -> Result<Option<LayoutId>, CatalogError> {
    let text: Option<String> = get(row, col)?;
    text.map(|t| {
        LayoutId::parse(&t)
            .ok_or_else(|| CatalogError::Corrupt(format!("column {col}: invalid layout id '{t}'")))
    })
    .transpose()
}

/// Reads a non-null layout id column.
pub(crate) fn get_layout_id(row: &Row<'_>, col: &str) -> Result<LayoutId, CatalogError> {
    get_opt_layout_id(row, col)?
        .ok_or_else(|| CatalogError::Corrupt(format!("column {col} is NULL")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbopt_core::ManualClock;

    #[test]
    fn catalog_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Catalog>();
    }

    #[test]
    fn in_memory_catalog_is_migrated() {
        let cat = Catalog::open_in_memory(Arc::new(ManualClock::new(5))).unwrap();
        assert_eq!(cat.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(cat.now_ms(), 5);
    }

    #[test]
    fn counts_saturate_and_negative_reads_are_corrupt() {
        assert_eq!(sql_int(u64::MAX), i64::MAX);
        assert_eq!(sql_int(7), 7);
        let conn = Connection::open_in_memory().unwrap();
        let err = conn
            .query_row("SELECT -1 AS n", [], |r| Ok(get_u64(r, "n")))
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, CatalogError::Corrupt(_)), "{err}");
    }
}
