//! Iceberg's SQL catalog on SQLite (the `iceberg_tables` table that pyiceberg's `SqlCatalog`,
//! Java's `JdbcCatalog` and iceberg-rust's SQL catalog share): where a table's current metadata
//! file is, and the compare-and-swap that publishes a new one. The file is another program's;
//! dbopt reads one row and updates one row, and nothing else.

use crate::CatalogError;
use rusqlite::{Connection, OpenFlags, params};
use std::path::PathBuf;
use std::time::Duration;

/// A table in an Iceberg SQL catalog: `sqlite:///path/catalog.db` and `namespace.table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcebergSqlTable {
    /// The catalog's SQLite file.
    pub db: PathBuf,
    /// The namespace (dots inside it are kept: `a.b` in `a.b.t`).
    pub namespace: String,
    /// The table name.
    pub name: String,
}

impl IcebergSqlTable {
    /// Reads `sqlite:///path/catalog.db` and `namespace.table`.
    pub fn parse(uri: &str, identifier: &str) -> Result<Self, CatalogError> {
        let db = uri.strip_prefix("sqlite:///").map(|p| format!("/{p}")).ok_or_else(|| {
            CatalogError::IcebergCatalog(format!(
                "Iceberg catalog URI '{uri}' is not supported: give a SQL catalog on SQLite as sqlite:///absolute/path/catalog.db"
            ))
        })?;
        let (namespace, name) = identifier.rsplit_once('.').ok_or_else(|| {
            CatalogError::IcebergCatalog(format!(
                "Iceberg table identifier '{identifier}' has no namespace: write it as namespace.table"
            ))
        })?;
        Ok(IcebergSqlTable {
            db: PathBuf::from(db),
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    /// The form `parse` reads back: `sqlite:///path#namespace.table`.
    pub fn to_location(&self) -> String {
        format!(
            "sqlite://{}#{}.{}",
            self.db.display(),
            self.namespace,
            self.name
        )
    }

    /// Reads a location written by `to_location`.
    pub fn from_location(location: &str) -> Result<Self, CatalogError> {
        let (uri, ident) = location.split_once('#').ok_or_else(|| {
            CatalogError::Corrupt(format!(
                "Iceberg catalog location '{location}' has no table"
            ))
        })?;
        Self::parse(uri, ident)
    }

    fn open(&self) -> Result<Connection, CatalogError> {
        if !self.db.is_file() {
            return Err(CatalogError::IcebergCatalog(format!(
                "Iceberg SQL catalog {} does not exist: give the catalog's SQLite file",
                self.db.display()
            )));
        }
        let conn = Connection::open_with_flags(&self.db, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|e| self.sqlite("opening", e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| self.sqlite("opening", e))?;
        Ok(conn)
    }

    fn sqlite(&self, what: &str, source: rusqlite::Error) -> CatalogError {
        CatalogError::Sqlite {
            context: format!("{what} Iceberg SQL catalog {}", self.db.display()),
            source,
        }
    }

    /// The table's current metadata location (a URI as the catalog stores it).
    pub fn current_metadata(&self) -> Result<String, CatalogError> {
        let conn = self.open()?;
        let rows: Vec<(String, Option<String>)> = {
            let mut stmt = conn
                .prepare(
                    "SELECT catalog_name, metadata_location FROM iceberg_tables \
                     WHERE table_namespace = ?1 AND table_name = ?2",
                )
                .map_err(|e| self.not_a_catalog(e))?;
            stmt.query_map(params![self.namespace, self.name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.sqlite("reading", e))?
        };
        match rows.as_slice() {
            [(_, Some(location))] => Ok(location.clone()),
            [(_, None)] => Err(CatalogError::IcebergCatalog(format!(
                "Iceberg table {}.{} in {} has no metadata location (a view?)",
                self.namespace,
                self.name,
                self.db.display()
            ))),
            [] => Err(CatalogError::IcebergCatalog(format!(
                "Iceberg SQL catalog {} has no table {}.{}",
                self.db.display(),
                self.namespace,
                self.name
            ))),
            _ => Err(CatalogError::IcebergCatalog(format!(
                "Iceberg SQL catalog {} holds {}.{} under several catalog names: dbopt cannot tell which one is meant",
                self.db.display(),
                self.namespace,
                self.name
            ))),
        }
    }

    /// Points the table at `new` if it still points at `expected`; false when another writer
    /// committed first (nothing changed).
    pub fn swap_metadata(&self, expected: &str, new: &str) -> Result<bool, CatalogError> {
        let conn = self.open()?;
        let changed = conn
            .execute(
                "UPDATE iceberg_tables SET metadata_location = ?1, previous_metadata_location = ?2 \
                 WHERE table_namespace = ?3 AND table_name = ?4 AND metadata_location = ?2",
                params![new, expected, self.namespace, self.name],
            )
            .map_err(|e| self.sqlite("committing to", e))?;
        Ok(changed == 1)
    }

    fn not_a_catalog(&self, e: rusqlite::Error) -> CatalogError {
        CatalogError::IcebergCatalog(format!(
            "{} is not an Iceberg SQL catalog ({e})",
            self.db.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pointer_moves_only_from_the_expected_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("catalog.db");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE iceberg_tables (catalog_name TEXT, table_namespace TEXT, table_name TEXT, \
             metadata_location TEXT, previous_metadata_location TEXT, iceberg_type TEXT); \
             INSERT INTO iceberg_tables VALUES ('default', 'db', 'events', 'file:///m/1.json', NULL, 'TABLE');",
        )
        .unwrap();
        let uri = format!("sqlite://{}", db.display());
        let t = IcebergSqlTable::parse(&uri, "db.events").unwrap();
        assert_eq!(IcebergSqlTable::from_location(&t.to_location()).unwrap(), t);
        assert_eq!(t.current_metadata().unwrap(), "file:///m/1.json");
        assert!(
            !t.swap_metadata("file:///m/0.json", "file:///m/2.json")
                .unwrap()
        );
        assert!(
            t.swap_metadata("file:///m/1.json", "file:///m/2.json")
                .unwrap()
        );
        assert_eq!(t.current_metadata().unwrap(), "file:///m/2.json");
        let missing = IcebergSqlTable::parse(&uri, "db.other").unwrap();
        assert!(
            missing
                .current_metadata()
                .unwrap_err()
                .to_string()
                .contains("has no table db.other")
        );
        assert!(IcebergSqlTable::parse("thrift://x", "db.t").is_err());
    }
}
