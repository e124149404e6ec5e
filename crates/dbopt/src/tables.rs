//! `tables`: managed tables with their rows, active layout size and layouts.

use crate::{DbError, Workspace};
use dbopt_catalog::LayoutStatus;
use serde::Serialize;

/// One managed table as `dbopt tables` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TableSummary {
    /// Table name.
    pub name: String,
    /// Rows.
    pub rows: u64,
    /// Bytes of the active layout.
    pub active_bytes: u64,
    /// Files of the active layout.
    pub active_files: u64,
    /// The active layout id.
    pub active_layout: String,
    /// Ready layouts (including the active one).
    pub layouts: Vec<String>,
    /// How the table was made.
    pub source: String,
}

impl Workspace {
    /// Summaries of every managed table, by name.
    pub fn table_summaries(&self) -> Result<Vec<TableSummary>, DbError> {
        let mut out = Vec::new();
        for table in self.catalog().list_tables()? {
            let layouts = self.catalog().list_layouts(&table.name)?;
            let active = layouts.iter().find(|l| l.layout_id == table.active_layout);
            out.push(TableSummary {
                name: table.name.to_string(),
                rows: table.row_count,
                active_bytes: active.map_or(0, |l| l.total_bytes),
                active_files: active.map_or(0, |l| l.file_count),
                active_layout: table.active_layout.to_string(),
                layouts: layouts
                    .iter()
                    .filter(|l| l.status == LayoutStatus::Ready)
                    .map(|l| l.layout_id.to_string())
                    .collect(),
                source: table.source,
            });
        }
        Ok(out)
    }
}
