//! Tables that stay in a lakehouse format: where a Delta Lake table lives, the log version its
//! initial layout was read at, and the files that layout came from.

use crate::error::SqlContext;
use crate::{Catalog, CatalogError, collect_rows, get, get_table_name, get_u64, sql_int};
use dbopt_core::TableName;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

/// The lakehouse format of a registered table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LakeFormat {
    /// A Delta Lake table, read through its `_delta_log`.
    Delta,
    /// An Apache Iceberg table, read through its metadata file and manifests.
    Iceberg,
}

impl LakeFormat {
    /// The format's name as written in prose: `Delta` or `Iceberg`.
    pub fn title(self) -> &'static str {
        match self {
            LakeFormat::Delta => "Delta",
            LakeFormat::Iceberg => "Iceberg",
        }
    }
}

stored_as_text!(LakeFormat, "format" {
    Delta => "delta",
    Iceberg => "iceberg",
});

/// Where a lake table lives and what its initial layout was read from (a row of `lake_tables`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LakeSource {
    /// The dbopt table.
    pub table: TableName,
    /// The table's format.
    pub format: LakeFormat,
    /// Delta: the table root; Iceberg: the metadata file read (absolute paths).
    pub location: String,
    /// Delta: the log version the initial layout was read at; Iceberg: the snapshot id.
    pub read_version: u64,
    /// The schema the log declared at that version (a commit against another one gives up).
    pub schema_string: String,
    /// The log paths of the initial layout's files, in its manifest's order.
    pub initial_files: Vec<String>,
}

/// Inserts or replaces the lake row of `source.table` inside a transaction.
pub(crate) fn upsert_lake_in(conn: &Connection, source: &LakeSource) -> Result<(), CatalogError> {
    let files = serde_json::to_string(&source.initial_files)
        .map_err(|e| CatalogError::Corrupt(format!("encoding the files of a lake table: {e}")))?;
    conn.execute(
        "INSERT INTO lake_tables (table_name, format, location, read_version, schema_string, \
         initial_files) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (table_name) DO UPDATE SET \
         format = excluded.format, location = excluded.location, \
         read_version = excluded.read_version, schema_string = excluded.schema_string, \
         initial_files = excluded.initial_files",
        params![
            source.table.as_str(),
            source.format.as_str(),
            source.location,
            sql_int(source.read_version),
            source.schema_string,
            files,
        ],
    )
    .ctx("recording a lake table")?;
    Ok(())
}

impl Catalog {
    /// Where `table` lives when it is a lake table (None for a managed table).
    pub fn lake_source(&self, table: &TableName) -> Result<Option<LakeSource>, CatalogError> {
        self.read("reading a lake table", |tx| {
            let rows = collect_rows(
                tx,
                "reading a lake table",
                "SELECT table_name, format, location, read_version, schema_string, initial_files \
                 FROM lake_tables WHERE table_name = ?1",
                [table.as_str()],
                |row| {
                    let format: String = get(row, "format")?;
                    let files: String = get(row, "initial_files")?;
                    Ok(LakeSource {
                        table: get_table_name(row, "table_name")?,
                        format: LakeFormat::parse(&format).ok_or_else(|| {
                            CatalogError::Corrupt(format!("unknown lake format '{format}'"))
                        })?,
                        location: get(row, "location")?,
                        read_version: get_u64(row, "read_version")?,
                        schema_string: get(row, "schema_string")?,
                        initial_files: serde_json::from_str(&files).map_err(|e| {
                            CatalogError::Corrupt(format!("the files of lake table {table}: {e}"))
                        })?,
                    })
                },
            )?;
            Ok(rows.into_iter().next())
        })
    }
}
