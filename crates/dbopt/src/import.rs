//! `import-queries`: logs the queries of a `.sql` file without running them, marked as
//! imported, so a workload that runs elsewhere can be analyzed here.
//!
//! A statement that does not parse refuses the whole file (file and line named, nothing
//! logged); a statement that is not read-only (DDL, DML) is skipped and counted, because
//! query logs exported from other engines routinely hold them.

use crate::workload_file::{checked_statements, read_user_file};
use crate::{DbError, Workspace};
use dbopt_catalog::{QueryLogEntry, QueryOrigin};
use dbopt_core::{ScanMetrics, TableName};
use dbopt_engine::{EngineError, fingerprint};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;

/// A statement that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedStatement {
    /// 1-based line where it starts.
    pub line: usize,
    /// Why it was skipped.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The file imported.
    pub file: String,
    /// The table the queries were logged against.
    pub table: String,
    /// Queries logged.
    pub imported: u64,
    /// Distinct template fingerprints among them.
    pub fingerprints: u64,
    /// Statements skipped (DDL and DML), with their lines.
    pub skipped: Vec<SkippedStatement>,
}

impl Workspace {
    /// Logs every read-only query of the `.sql` file at `path` against `table`, unexecuted.
    pub fn import_queries(&self, table: &TableName, path: &Path) -> Result<ImportReport, DbError> {
        self.require_table(table)?;
        let text = read_user_file(path, "query file")?;
        let mut accepted = Vec::new();
        let mut skipped = Vec::new();
        for (line, sql, check) in checked_statements(path, &text)? {
            match check {
                Ok(()) => accepted.push(sql),
                Err(EngineError::NotReadOnly(reason)) => {
                    skipped.push(SkippedStatement { line, reason });
                }
                Err(e) => {
                    return Err(DbError::BadFile(format!(
                        "{}:{line}: {e}; fix the statement and import again (nothing was imported)",
                        path.display()
                    )));
                }
            }
        }
        let label = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut fingerprints = BTreeSet::new();
        let mut entries = Vec::with_capacity(accepted.len());
        for sql in &accepted {
            let fp = fingerprint(sql)?.hash;
            fingerprints.insert(fp.clone());
            entries.push(QueryLogEntry {
                ts_ms: self.clock().now_ms(),
                table: table.clone(),
                layout_id: None,
                sql: sql.clone(),
                fingerprint: fp,
                cluster_id: None,
                latency_ms: f64::NAN,
                rows_returned: 0,
                metrics: ScanMetrics::default(),
                result_digest: None,
                error: None,
                origin: QueryOrigin::Imported,
                workload: Some(label.clone()),
                scans: Vec::new(),
                route: None,
            });
        }
        // One transaction: an interrupted import leaves nothing half-imported.
        self.catalog().log_queries(&entries)?;
        Ok(ImportReport {
            file: path.display().to_string(),
            table: table.to_string(),
            imported: accepted.len() as u64,
            fingerprints: fingerprints.len() as u64,
            skipped,
        })
    }
}
