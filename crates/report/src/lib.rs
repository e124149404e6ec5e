//! dbopt-report: status and history models and their renderers.
//!
//! Pure: the facade fills the models in [`model`] from the catalog; this crate turns them
//! into terminal tables ([`text`]), JSON (serde of the models, whose field names are the
//! stable JSON names), CSV, the shareable report directory with Markdown and SVG charts
//! ([`report`], [`charts`]), and the Prometheus text exposition format ([`exposition`]).
//! Of the dbopt crates it depends only on dbopt-core (the shared `text::one_line`), and on
//! neither DataFusion nor SQLite.

#![warn(missing_docs)]

pub mod change_request;
pub mod charts;
mod csv_out;
pub mod exposition;
pub mod format;
pub mod markdown;
pub mod model;
pub mod report;
mod summary;
pub mod text;

#[cfg(test)]
extern crate self as dbopt_report;
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod fixtures;

pub use change_request::{CanaryLine, ChangeRequest, ClusterChange};
pub use exposition::{
    HistogramSample, MetricFamily, MetricKind, Sample, histogram_from_values, render_exposition,
};
pub use markdown::escape_markdown;
pub use model::{
    ActivationRow, CanaryRow, ClusterBest, DecisionRow, HistoryRow, JobRow, LayoutState,
    LayoutStatus, Observed, ProposalRow, QueryPoint, ReportBundle, RoutingRow, StatusReport,
    TemplateRow,
};
pub use report::{ReportError, ReportOptions, WrittenReport, write_report};
pub use text::{Style, history_csv, history_text, jobs_csv, jobs_text, status_text, table_text};
