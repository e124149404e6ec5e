//! `calibrate`: fits the what-if model's per-file and per-row-group prices to this machine
//! from the latencies in the query log (`dbopt_propose::calibrate` does the fitting).
//!
//! Only successful queries that scanned the table alone count: a join's latency holds the
//! other tables' work, which the table's figures do not explain.

use crate::tune::{Knob, write_config};
use crate::{DbError, Workspace};
use dbopt_core::TableName;
use dbopt_propose::Prices;
use dbopt_propose::calibrate::{Fit, Point, fit};
use serde::Serialize;
use std::path::Path;

/// What one calibration found.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationReport {
    /// The table whose queries were fitted.
    pub table: String,
    /// Logged queries left out: failed, never run, or scanning other tables too.
    pub queries_skipped: usize,
    /// The fitted latency model.
    pub fit: Fit,
    /// The prices in use before.
    pub current: Prices,
    /// The prices the fit implies (the page price is kept).
    pub calibrated: Prices,
}

impl Workspace {
    /// Fits the model's prices to the single-table queries of `table` logged at or after
    /// `since_ms`.
    pub fn calibrate(
        &self,
        table: &TableName,
        since_ms: Option<i64>,
    ) -> Result<CalibrationReport, DbError> {
        self.require_table(table)?;
        let logged = self.catalog().queries_for_table(table, since_ms, None)?;
        let points: Vec<Point> = logged
            .iter()
            .map(|q| &q.entry)
            .filter(|e| e.error.is_none() && e.latency_ms.is_finite())
            .filter(|e| e.scans.len() == 1 && &e.scans[0].table == table)
            .map(|e| {
                let m = &e.metrics;
                Point {
                    latency_ms: e.latency_ms,
                    bytes: m.bytes_scanned as f64,
                    row_groups: m.row_groups_total.saturating_sub(m.row_groups_pruned) as f64,
                    files: m.files_total.saturating_sub(m.files_pruned) as f64,
                }
            })
            .collect();
        let fitted = fit(&points)?;
        let current = self.model_prices();
        Ok(CalibrationReport {
            table: table.to_string(),
            queries_skipped: logged.len() - points.len(),
            fit: fitted,
            current,
            calibrated: fitted.prices(current),
        })
    }
}

/// Stores `prices` in the configuration file at `path` (its other keys kept; checked before
/// it replaces the file).
pub fn write_prices(path: &Path, prices: &Prices) -> Result<(), DbError> {
    let knob = |key: &'static str, value: f64| Knob {
        key,
        value: format!("{}", value.round().max(0.0) as u64),
    };
    write_config(
        path,
        &[
            knob("file_price_bytes", prices.file),
            knob("row_group_price_bytes", prices.row_group),
            knob("page_price_bytes", prices.page),
        ],
    )
}
