//! Versioned schema migrations. Version N is `MIGRATIONS[N - 1]`; the applied version lives in
//! `PRAGMA user_version`. To change the schema, append a script; never edit a shipped one.

use crate::error::{CatalogError, SqlContext};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

/// Schema v1: managed tables, their layouts, and the query log with per-table scans.
const V1: &str = r#"
CREATE TABLE tables (
    name          TEXT PRIMARY KEY NOT NULL,
    created_at_ms INTEGER NOT NULL,
    active_layout TEXT NOT NULL,
    source        TEXT NOT NULL,
    row_count     INTEGER NOT NULL,
    FOREIGN KEY (name, active_layout) REFERENCES layouts (table_name, layout_id)
        DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE layouts (
    table_name      TEXT NOT NULL REFERENCES tables (name) ON DELETE CASCADE,
    layout_id       TEXT NOT NULL,
    source_layout   TEXT,
    spec_json       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('building', 'ready', 'retired', 'failed')),
    path            TEXT NOT NULL,
    row_count       INTEGER NOT NULL,
    file_count      INTEGER NOT NULL,
    row_group_count INTEGER NOT NULL,
    total_bytes     INTEGER NOT NULL,
    digest          TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    published_at_ms INTEGER,
    PRIMARY KEY (table_name, layout_id)
);

CREATE TABLE query_log (
    id                        INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms                     INTEGER NOT NULL,
    table_name                TEXT NOT NULL,
    layout_id                 TEXT,
    sql                       TEXT NOT NULL,
    fingerprint               TEXT NOT NULL,
    cluster_id                TEXT,
    latency_ms                REAL,
    rows_returned             INTEGER NOT NULL,
    bytes_scanned             INTEGER NOT NULL,
    row_groups_total          INTEGER NOT NULL,
    row_groups_pruned         INTEGER NOT NULL,
    files_total               INTEGER NOT NULL,
    files_pruned              INTEGER NOT NULL,
    rows_pruned_by_page_index INTEGER NOT NULL,
    result_digest             TEXT,
    error                     TEXT,
    origin                    TEXT NOT NULL CHECK (origin IN ('query', 'workload', 'imported')),
    workload                  TEXT
);
CREATE INDEX query_log_table_ts ON query_log (table_name, ts_ms);
CREATE INDEX query_log_fingerprint ON query_log (fingerprint);

CREATE TABLE query_scans (
    query_id                  INTEGER NOT NULL REFERENCES query_log (id) ON DELETE CASCADE,
    table_name                TEXT NOT NULL,
    layout_id                 TEXT NOT NULL,
    bytes_scanned             INTEGER NOT NULL,
    row_groups_total          INTEGER NOT NULL,
    row_groups_pruned         INTEGER NOT NULL,
    files_total               INTEGER NOT NULL,
    files_pruned              INTEGER NOT NULL,
    rows_pruned_by_page_index INTEGER NOT NULL
);
CREATE INDEX query_scans_query ON query_scans (query_id);
CREATE INDEX query_scans_table ON query_scans (table_name, query_id);
"#;

/// Every migration in order; index i brings the schema to version i + 1.
/// Version 2: workload analysis and proposals (column statistics cache, proposals).
const V2: &str = include_str!("migrations/v2_analysis.sql");

/// Version 3: migration jobs with leases and rewrite measurements.
const V3: &str = include_str!("migrations/v3_migrations.sql");

/// Version 4: the learning loop (route statistics, activations, canaries, evaluations,
/// autopilot decisions; the routing policy of each logged query).
const V4: &str = include_str!("migrations/v4_learning_loop.sql");

/// Version 5: `layouts.retired_at_ms`, when a layout left service (gc's grace period).
const V5: &str = include_str!("migrations/v5_gc_grace.sql");

/// Version 6: origin `sql` (the SQL endpoint) in `query_log` (the table rebuilt).
const V6: &str = include_str!("migrations/v6_sql_origin.sql");

/// Version 7: `query_log.source_*`, where an imported query ran and what its engine measured.
const V7: &str = include_str!("migrations/v7_query_source.sql");

/// Version 8: `lake_tables`, tables read through a Delta Lake log and published to by commits.
const V8: &str = include_str!("migrations/v8_lake_tables.sql");

/// Version 9: `query_log.pushdown` and `pushdown_stats`, filter pushdown chosen per query
/// shape and layout.
const V9: &str = include_str!("migrations/v9_pushdown_stats.sql");

pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9];

/// The schema version this build writes (the number of migrations).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Reads `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection) -> Result<i64, CatalogError> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .ctx("reading the catalog schema version")
}

/// Fails with `NewerSchema` if the file was migrated past `migrations`, without writing.
pub(crate) fn check_not_newer(
    conn: &Connection,
    migrations: &[&str],
    path: &Path,
) -> Result<(), CatalogError> {
    let found = user_version(conn)?;
    let supported = migrations.len() as i64;
    if found > supported {
        return Err(CatalogError::NewerSchema {
            found,
            supported,
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Applies every migration newer than the file's version, each in its own `BEGIN IMMEDIATE`
/// transaction that re-reads the version (another process may be migrating concurrently).
pub(crate) fn migrate(
    conn: &mut Connection,
    migrations: &[&str],
    path: &Path,
) -> Result<(), CatalogError> {
    for (index, script) in migrations.iter().enumerate() {
        let version = index as i64 + 1;
        let context = format!("applying catalog schema migration {version}");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx(&context)?;
        check_not_newer(&tx, migrations, path)?;
        if user_version(&tx)? >= version {
            continue;
        }
        tx.execute_batch(script).ctx(&context)?;
        tx.pragma_update(None, "user_version", version)
            .ctx(&context)?;
        tx.commit().ctx(&context)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "CREATE TABLE a (x INTEGER);";
    const B: &str = "CREATE TABLE b (y INTEGER);";

    fn has_table(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    }

    #[test]
    fn appended_migrations_apply_once_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        migrate(&mut conn, &[A], path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 1);
        // Re-running A would fail (no IF NOT EXISTS), so success proves it is skipped.
        migrate(&mut conn, &[A, B], path).unwrap();
        migrate(&mut conn, &[A, B], path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 2);
        assert!(has_table(&conn, "a") && has_table(&conn, "b"));
    }

    #[test]
    fn failed_migration_rolls_back_whole_script() {
        let mut conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        let broken = "CREATE TABLE c (z INTEGER); THIS IS NOT SQL;";
        let err = migrate(&mut conn, &[A, broken], path).unwrap_err();
        assert!(matches!(err, CatalogError::Sqlite { .. }), "{err}");
        assert_eq!(user_version(&conn).unwrap(), 1);
        assert!(!has_table(&conn, "c"));
    }

    #[test]
    fn newer_file_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 9).unwrap();
        let err = migrate(&mut conn, &[A], Path::new("x.db")).unwrap_err();
        assert!(matches!(
            err,
            CatalogError::NewerSchema {
                found: 9,
                supported: 1,
                ..
            }
        ));
        assert!(!has_table(&conn, "a"));
    }

    #[test]
    fn shipped_schema_applies_cleanly() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, MIGRATIONS, Path::new(":memory:")).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn version_6_keeps_logged_queries_and_their_scans_and_accepts_sql() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        migrate(&mut conn, &MIGRATIONS[..5], Path::new(":memory:")).unwrap();
        let row = "INSERT INTO query_log (ts_ms, table_name, sql, fingerprint, rows_returned, \
            bytes_scanned, row_groups_total, row_groups_pruned, files_total, files_pruned, \
            rows_pruned_by_page_index, origin, policy) VALUES (1, 't', 'SELECT 1', 'f', 1, 10, 2, 1, 1, 0, 0, ?1, 'thompson')";
        conn.execute(row, ["workload"]).unwrap();
        conn.execute(
            "INSERT INTO query_scans VALUES (1, 't', 'initial', 10, 2, 1, 1, 0, 0)",
            [],
        )
        .unwrap();
        assert!(conn.execute(row, ["sql"]).is_err(), "v5 refuses origin sql");
        migrate(&mut conn, MIGRATIONS, Path::new(":memory:")).unwrap();
        let kept: (i64, String, String, i64) = conn
            .query_row(
                "SELECT q.id, q.origin, q.policy, s.bytes_scanned FROM query_log q JOIN query_scans s ON s.query_id = q.id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(kept, (1, "workload".into(), "thompson".into(), 10));
        conn.execute(row, ["sql"]).unwrap();
        let next: i64 = conn
            .query_row("SELECT max(id) FROM query_log", [], |r| r.get(0))
            .unwrap();
        assert_eq!(next, 2, "ids keep counting after the rebuild");
        // The cascade from query_log to query_scans still holds.
        conn.execute("DELETE FROM query_log WHERE id = 1", [])
            .unwrap();
        let scans: i64 = conn
            .query_row("SELECT count(*) FROM query_scans", [], |r| r.get(0))
            .unwrap();
        assert_eq!(scans, 0);
    }
}
