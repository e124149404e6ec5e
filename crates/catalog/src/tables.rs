//! Managed tables and their layouts.

use crate::error::SqlContext;
use crate::{
    Catalog, CatalogError, collect_rows, get, get_layout_id, get_opt_layout_id, get_table_name,
    get_u64, sql_int,
};
use dbopt_core::{LayoutId, LayoutManifest, LayoutSpec, TableName};
use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};

/// Where a layout is in its life: being built, queryable, retired, or abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutStatus {
    /// Being written to staging; never read by queries.
    Building,
    /// Published and verified; may be queried and activated.
    Ready,
    /// No longer used; its files may be garbage collected.
    Retired,
    /// The build failed; its files may be garbage collected.
    Failed,
}

stored_as_text!(LayoutStatus, "status" {
    Building => "building",
    Ready => "ready",
    Retired => "retired",
    Failed => "failed",
});

/// One managed table (a row of `tables`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRecord {
    /// The table name.
    pub name: TableName,
    /// When the table was registered, ms since the Unix epoch.
    pub created_at_ms: i64,
    /// The layout queries read unless routed elsewhere.
    pub active_layout: LayoutId,
    /// How the table was made, e.g. `generate events seed=42`.
    pub source: String,
    /// Rows in the table (every layout holds the same rows).
    pub row_count: u64,
}

/// One layout of a table (a row of `layouts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutRecord {
    /// The table.
    pub table: TableName,
    /// The content-addressed layout id.
    pub layout_id: LayoutId,
    /// The layout it was rewritten from (None for the initial layout).
    pub source_layout: Option<LayoutId>,
    /// What the layout asks for.
    pub spec: LayoutSpec,
    /// Where it is in its life.
    pub status: LayoutStatus,
    /// Directory relative to the data dir, e.g. `events/layout_initial`.
    pub path: String,
    /// Total rows.
    pub row_count: u64,
    /// Parquet files.
    pub file_count: u64,
    /// Row groups over all files.
    pub row_group_count: u64,
    /// Bytes over all files.
    pub total_bytes: u64,
    /// Order-insensitive row digest (`RowDigest` text form).
    pub digest: String,
    /// When the layout was created, ms since the Unix epoch.
    pub created_at_ms: i64,
    /// When it first became ready in the catalog (filled from the clock if left None).
    pub published_at_ms: Option<i64>,
}

impl LayoutRecord {
    /// The record describing the layout directory at `path` whose manifest is `manifest`.
    pub fn from_manifest(
        manifest: &LayoutManifest,
        path: String,
        status: LayoutStatus,
    ) -> Result<LayoutRecord, CatalogError> {
        let table = TableName::new(&manifest.table).map_err(|e| {
            CatalogError::Corrupt(format!("manifest of layout {}: {e}", manifest.layout_id))
        })?;
        Ok(LayoutRecord {
            table,
            layout_id: manifest.layout_id.clone(),
            source_layout: manifest.source_layout.clone(),
            spec: manifest.spec.clone(),
            status,
            path,
            row_count: manifest.row_count,
            file_count: manifest.files.len() as u64,
            row_group_count: manifest.total_row_groups(),
            total_bytes: manifest.total_bytes(),
            digest: manifest.digest.clone(),
            created_at_ms: manifest.created_at_ms,
            published_at_ms: None,
        })
    }
}

const TABLE_SELECT: &str =
    "SELECT name, created_at_ms, active_layout, source, row_count FROM tables";
const LAYOUT_SELECT: &str = "SELECT table_name, layout_id, source_layout, spec_json, status, \
     path, row_count, file_count, row_group_count, total_bytes, digest, created_at_ms, \
     published_at_ms FROM layouts";

fn table_from_row(row: &Row<'_>) -> Result<TableRecord, CatalogError> {
    Ok(TableRecord {
        name: get_table_name(row, "name")?,
        created_at_ms: get(row, "created_at_ms")?,
        active_layout: get_layout_id(row, "active_layout")?,
        source: get(row, "source")?,
        row_count: get_u64(row, "row_count")?,
    })
}

fn layout_from_row(row: &Row<'_>) -> Result<LayoutRecord, CatalogError> {
    let table = get_table_name(row, "table_name")?;
    let layout_id = get_layout_id(row, "layout_id")?;
    let spec_json: String = get(row, "spec_json")?;
    let spec = serde_json::from_str(&spec_json).map_err(|e| {
        CatalogError::Corrupt(format!("spec_json of layout {table}/{layout_id}: {e}"))
    })?;
    let status_text: String = get(row, "status")?;
    let status = LayoutStatus::parse(&status_text).ok_or_else(|| {
        CatalogError::Corrupt(format!(
            "layout {table}/{layout_id} has status '{status_text}'"
        ))
    })?;
    Ok(LayoutRecord {
        source_layout: get_opt_layout_id(row, "source_layout")?,
        spec,
        status,
        path: get(row, "path")?,
        row_count: get_u64(row, "row_count")?,
        file_count: get_u64(row, "file_count")?,
        row_group_count: get_u64(row, "row_group_count")?,
        total_bytes: get_u64(row, "total_bytes")?,
        digest: get(row, "digest")?,
        created_at_ms: get(row, "created_at_ms")?,
        published_at_ms: get(row, "published_at_ms")?,
        table,
        layout_id,
    })
}

fn find_table(conn: &Connection, name: &TableName) -> Result<Option<TableRecord>, CatalogError> {
    let sql = format!("{TABLE_SELECT} WHERE name = ?1");
    let rows = collect_rows(
        conn,
        "reading a table",
        &sql,
        [name.as_str()],
        table_from_row,
    )?;
    Ok(rows.into_iter().next())
}

pub(crate) fn require_table_in(
    conn: &Connection,
    name: &TableName,
) -> Result<TableRecord, CatalogError> {
    find_table(conn, name)?.ok_or_else(|| CatalogError::UnknownTable(name.to_string()))
}

pub(crate) fn find_layout_in(
    conn: &Connection,
    table: &TableName,
    id: &LayoutId,
) -> Result<Option<LayoutRecord>, CatalogError> {
    let sql = format!("{LAYOUT_SELECT} WHERE table_name = ?1 AND layout_id = ?2");
    let params = [table.as_str(), id.as_str()];
    let rows = collect_rows(conn, "reading a layout", &sql, params, layout_from_row)?;
    Ok(rows.into_iter().next())
}

fn require_layout_in(
    conn: &Connection,
    table: &TableName,
    id: &LayoutId,
) -> Result<LayoutRecord, CatalogError> {
    find_layout_in(conn, table, id)?.ok_or_else(|| CatalogError::UnknownLayout {
        table: table.to_string(),
        layout: id.to_string(),
    })
}

/// Inserts the layout row unless (table, id) exists; true if inserted. A ready layout without
/// `published_at_ms` is stamped `now_ms`.
pub(crate) fn insert_layout_row(
    conn: &Connection,
    layout: &LayoutRecord,
    now_ms: i64,
) -> Result<bool, CatalogError> {
    let spec_json = serde_json::to_string(&layout.spec)
        .map_err(|e| CatalogError::Corrupt(format!("cannot serialize layout spec: {e}")))?;
    let published = layout
        .published_at_ms
        .or((layout.status == LayoutStatus::Ready).then_some(now_ms));
    let inserted = conn
        .prepare_cached(
            "INSERT INTO layouts (table_name, layout_id, source_layout, spec_json, status, path, \
             row_count, file_count, row_group_count, total_bytes, digest, created_at_ms, \
             published_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
             ON CONFLICT (table_name, layout_id) DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                layout.table.as_str(),
                layout.layout_id.as_str(),
                layout.source_layout.as_ref().map(LayoutId::as_str),
                spec_json,
                layout.status.as_str(),
                layout.path,
                sql_int(layout.row_count),
                sql_int(layout.file_count),
                sql_int(layout.row_group_count),
                sql_int(layout.total_bytes),
                layout.digest,
                layout.created_at_ms,
                published,
            ])
        })
        .ctx("inserting a layout")?;
    Ok(inserted == 1)
}

impl Catalog {
    /// Registers `table` with its `initial` layout in one transaction. An existing table is
    /// `TableExists` unless `replace`, which drops its old layout rows (its query log stays).
    /// `lake` records where a lake table lives; a managed table (None) has no lake row.
    pub fn register_table(
        &self,
        table: &TableRecord,
        initial: &LayoutRecord,
        replace: bool,
        lake: Option<&crate::LakeSource>,
    ) -> Result<(), CatalogError> {
        if initial.table != table.name || initial.layout_id != table.active_layout {
            return Err(CatalogError::Conflict(format!(
                "table '{}' with active layout '{}' registered with layout {}/{}",
                table.name, table.active_layout, initial.table, initial.layout_id
            )));
        }
        let now = self.now_ms();
        self.write("registering a table", |tx| {
            if find_table(tx, &table.name)?.is_some() {
                if !replace {
                    return Err(CatalogError::TableExists(table.name.to_string()));
                }
                // Everything keyed by a layout id of the old rows goes: the new rows get the
                // same ids again (`initial`, then ids derived from it), and a queued or running
                // job planned from the old files must neither run nor block a new enqueue (a
                // running worker loses its lease at its next heartbeat).
                for sql in [
                    "DELETE FROM layouts WHERE table_name = ?1",
                    "DELETE FROM migration_jobs WHERE table_name = ?1",
                    "DELETE FROM route_stats WHERE table_name = ?1",
                    "DELETE FROM pushdown_stats WHERE table_name = ?1",
                    "DELETE FROM canaries WHERE table_name = ?1",
                    "DELETE FROM layout_evals WHERE table_name = ?1",
                    "DELETE FROM lake_tables WHERE table_name = ?1",
                ] {
                    tx.execute(sql, [table.name.as_str()])
                        .ctx("dropping the layouts and jobs of a replaced table")?;
                }
            }
            tx.execute(
                "INSERT INTO tables (name, created_at_ms, active_layout, source, row_count) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET \
                 created_at_ms = excluded.created_at_ms, active_layout = excluded.active_layout, \
                 source = excluded.source, row_count = excluded.row_count",
                params![
                    table.name.as_str(),
                    table.created_at_ms,
                    table.active_layout.as_str(),
                    table.source,
                    sql_int(table.row_count),
                ],
            )
            .ctx("inserting a table")?;
            insert_layout_row(tx, initial, now)?;
            if let Some(lake) = lake {
                crate::lake::upsert_lake_in(tx, lake)?;
            }
            Ok(())
        })
    }

    /// The table named `name`, if registered.
    pub fn get_table(&self, name: &TableName) -> Result<Option<TableRecord>, CatalogError> {
        self.read("reading a table", |tx| find_table(tx, name))
    }

    /// The table named `name`, or `UnknownTable`.
    pub fn require_table(&self, name: &TableName) -> Result<TableRecord, CatalogError> {
        self.read("reading a table", |tx| require_table_in(tx, name))
    }

    /// Every registered table, by name.
    pub fn list_tables(&self) -> Result<Vec<TableRecord>, CatalogError> {
        self.read("listing tables", |tx| {
            let sql = format!("{TABLE_SELECT} ORDER BY name");
            collect_rows(tx, "listing tables", &sql, [], table_from_row)
        })
    }

    /// Inserts a layout of a registered table; Ok(false) if (table, id) already exists.
    pub fn insert_layout(&self, layout: &LayoutRecord) -> Result<bool, CatalogError> {
        let now = self.now_ms();
        self.write("inserting a layout", |tx| {
            require_table_in(tx, &layout.table)?;
            insert_layout_row(tx, layout, now)
        })
    }

    /// The layout `id` of `table`, if registered.
    pub fn get_layout(
        &self,
        table: &TableName,
        id: &LayoutId,
    ) -> Result<Option<LayoutRecord>, CatalogError> {
        self.read("reading a layout", |tx| find_layout_in(tx, table, id))
    }

    /// Every layout of `table` (which must exist), oldest first.
    pub fn list_layouts(&self, table: &TableName) -> Result<Vec<LayoutRecord>, CatalogError> {
        self.read("listing layouts", |tx| {
            require_table_in(tx, table)?;
            let sql =
                format!("{LAYOUT_SELECT} WHERE table_name = ?1 ORDER BY created_at_ms, layout_id");
            collect_rows(
                tx,
                "listing layouts",
                &sql,
                [table.as_str()],
                layout_from_row,
            )
        })
    }

    /// Moves a layout to `status`; the active layout can only stay ready (`Conflict`).
    /// Becoming ready stamps `published_at_ms` if it was not set.
    pub fn set_layout_status(
        &self,
        table: &TableName,
        id: &LayoutId,
        status: LayoutStatus,
    ) -> Result<(), CatalogError> {
        let now = self.now_ms();
        self.write("setting a layout status", |tx| {
            require_layout_in(tx, table, id)?;
            let active = require_table_in(tx, table)?.active_layout;
            if status != LayoutStatus::Ready && &active == id {
                return Err(CatalogError::Conflict(format!(
                    "layout '{id}' is the active layout of table '{table}' and cannot become \
                     {status}: activate another layout first"
                )));
            }
            tx.execute(
                "UPDATE layouts SET status = ?3, published_at_ms = CASE WHEN ?3 = 'ready' \
                 THEN coalesce(published_at_ms, ?4) ELSE published_at_ms END, \
                 retired_at_ms = CASE WHEN ?3 = 'ready' THEN NULL \
                 WHEN status = 'ready' OR retired_at_ms IS NULL THEN ?4 \
                 ELSE retired_at_ms END \
                 WHERE table_name = ?1 AND layout_id = ?2",
                params![table.as_str(), id.as_str(), status.as_str(), now],
            )
            .ctx("setting a layout status")?;
            Ok(())
        })
    }

    /// Makes layout `id` the active layout of `table` by hand; it must exist and be ready.
    /// The change is recorded as an `activate` activation.
    pub fn set_active_layout(&self, table: &TableName, id: &LayoutId) -> Result<(), CatalogError> {
        let now = self.now_ms();
        self.write("setting the active layout", |tx| {
            let current = require_table_in(tx, table)?.active_layout;
            require_layout_in(tx, table, id)?;
            let swap = crate::ActiveSwap {
                table,
                expected: &current,
                to: id,
                kind: crate::ActivationKind::Activate,
                actor: "cli",
                reason: "activated by hand",
            };
            crate::serving::swap_active_in(tx, &swap, now)
        })
    }

    /// When each layout of `table` that could have served queries last stopped serving
    /// them: the later of when it stopped being the active layout (the `activations` log) and
    /// when it left the ready state (retired or failed). gc keeps a layout's files for a grace
    /// period after this moment, because a query that resolved the layout just before may
    /// still be reading them. Layouts that never stopped serving are absent.
    pub fn out_of_service_since(
        &self,
        table: &TableName,
    ) -> Result<std::collections::BTreeMap<LayoutId, i64>, CatalogError> {
        self.read("reading when layouts left service", |tx| {
            let rows = collect_rows(
                tx,
                "reading when layouts left service",
                "SELECT layout_id, max(at) AS at FROM ( \
                   SELECT from_layout AS layout_id, at_ms AS at FROM activations \
                     WHERE table_name = ?1 \
                   UNION ALL \
                   SELECT layout_id, retired_at_ms AS at FROM layouts \
                     WHERE table_name = ?1 AND retired_at_ms IS NOT NULL) \
                 GROUP BY layout_id",
                [table.as_str()],
                |row| Ok((get_layout_id(row, "layout_id")?, get::<i64>(row, "at")?)),
            )?;
            Ok(rows.into_iter().collect())
        })
    }

    /// Ready layouts of `table` that hold its rows (initial and rewritten), oldest first.
    pub fn ready_layouts(&self, table: &TableName) -> Result<Vec<LayoutRecord>, CatalogError> {
        Ok(self
            .list_layouts(table)?
            .into_iter()
            .filter(|l| l.status == LayoutStatus::Ready)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_round_trips() {
        for s in [
            LayoutStatus::Building,
            LayoutStatus::Ready,
            LayoutStatus::Retired,
            LayoutStatus::Failed,
        ] {
            assert_eq!(LayoutStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(LayoutStatus::parse("READY"), None);
    }

    #[test]
    fn from_manifest_sums_files() {
        let manifest = LayoutManifest {
            layout_id: LayoutId::initial(),
            table: "events".into(),
            source_layout: None,
            spec: LayoutSpec::default(),
            files: vec![
                dbopt_core::ManifestFile {
                    path: "a.parquet".into(),
                    size_bytes: 10,
                    rows: 3,
                    row_groups: 1,
                },
                dbopt_core::ManifestFile {
                    path: "b.parquet".into(),
                    size_bytes: 5,
                    rows: 2,
                    row_groups: 2,
                },
            ],
            row_count: 5,
            digest: "5:00".into(),
            created_at_ms: 42,
            columns: Vec::new(),
        };
        let rec = LayoutRecord::from_manifest(
            &manifest,
            "events/layout_initial".into(),
            LayoutStatus::Ready,
        )
        .unwrap();
        assert_eq!(
            (rec.file_count, rec.row_group_count, rec.total_bytes),
            (2, 3, 15)
        );
        assert_eq!(rec.table.as_str(), "events");
        let bad = LayoutManifest {
            table: "../x".into(),
            ..manifest
        };
        assert!(matches!(
            LayoutRecord::from_manifest(&bad, String::new(), LayoutStatus::Ready),
            Err(CatalogError::Corrupt(_))
        ));
    }
}
