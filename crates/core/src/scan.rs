//! Scan counters: what one query read and skipped of one table, from the engine's metrics.

use serde::{Deserialize, Serialize};

/// Scan counters from DataFusion's execution metrics (per table, or summed per query).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScanMetrics {
    /// Bytes read from Parquet files.
    pub bytes_scanned: u64,
    /// Row groups in the layout.
    pub row_groups_total: u64,
    /// Row groups skipped (whole files skipped, statistics, bloom filters, limits).
    pub row_groups_pruned: u64,
    /// Files in the layout.
    pub files_total: u64,
    /// Files never read.
    pub files_pruned: u64,
    /// Rows skipped inside read row groups thanks to the page index.
    pub rows_pruned_by_page_index: u64,
}

impl ScanMetrics {
    /// Adds `other` into `self` (saturating), e.g. to total a query's per-table scans.
    pub fn accumulate(&mut self, other: &ScanMetrics) {
        self.bytes_scanned = self.bytes_scanned.saturating_add(other.bytes_scanned);
        self.row_groups_total = self.row_groups_total.saturating_add(other.row_groups_total);
        self.row_groups_pruned = self
            .row_groups_pruned
            .saturating_add(other.row_groups_pruned);
        self.files_total = self.files_total.saturating_add(other.files_total);
        self.files_pruned = self.files_pruned.saturating_add(other.files_pruned);
        self.rows_pruned_by_page_index = self
            .rows_pruned_by_page_index
            .saturating_add(other.rows_pruned_by_page_index);
    }
}
