//! Terminal and pipe renderers: `Pretty` boxes for people, `Plain` columns for scripts.
//!
//! Every command's table goes through [`table_text`]; the status, jobs and history views
//! are built from it. Plain output is stable: a header line, one line per row, columns
//! left-aligned and separated by two spaces, `-` for missing values, no box drawing and no
//! escape codes. Cell text is flattened to one line in both styles.

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use crate::format::{self, NONE};
use crate::model::{DecisionRow, HistoryRow, JobRow, LayoutStatus, StatusReport};
use dbopt_core::text::one_line;

/// How tables are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Box-drawn tables that adapt to the terminal width.
    Pretty,
    /// Stable, pipe-friendly ASCII columns.
    Plain,
}

const COLUMN_GAP: &str = "  ";

/// Renders one table in the given style; every line ends with a newline.
pub fn table_text(header: &[&str], rows: &[Vec<String>], style: Style) -> String {
    render_table(header, rows, style, None)
}

/// Renders the `dbopt status` view of one table.
pub fn status_text(status: &StatusReport, style: Style) -> String {
    status_text_at(status, style, None)
}

/// Renders migration jobs, or a line saying there are none.
pub fn jobs_text(jobs: &[JobRow], style: Style) -> String {
    jobs_text_at(jobs, style, None)
}

/// Renders evaluation history, or a line saying there is none.
pub fn history_text(rows: &[HistoryRow], style: Style) -> String {
    history_text_at(rows, style, None)
}

/// Renders evaluation history as CSV: a header row with the JSON field names, then one
/// record per row with raw numbers (times in milliseconds, empty cells for missing values).
pub fn history_csv(rows: &[HistoryRow]) -> String {
    crate::csv_out::to_csv(crate::csv_out::HISTORY_HEADER, rows)
        .expect("serializing flat records into memory cannot fail")
}

/// Renders migration jobs as CSV: a header row with the JSON field names, then one record per
/// job with raw numbers (times in milliseconds, empty cells for missing values).
pub fn jobs_csv(jobs: &[JobRow]) -> String {
    crate::csv_out::to_csv(crate::csv_out::JOBS_HEADER, jobs)
        .expect("serializing flat records into memory cannot fail")
}

/// [`status_text`] with a fixed table width for Pretty (`None`: the terminal's).
pub(crate) fn status_text_at(status: &StatusReport, style: Style, width: Option<u16>) -> String {
    let sections = [
        status_header(status),
        layouts_section(&status.layouts, style, width),
        best_per_cluster_section(status, style, width),
        status_jobs_section(&status.jobs, style, width),
        last_decision_section(status.last_decision.as_ref()),
    ];
    sections.join("\n")
}

/// [`jobs_text`] with a fixed table width for Pretty.
pub(crate) fn jobs_text_at(jobs: &[JobRow], style: Style, width: Option<u16>) -> String {
    if jobs.is_empty() {
        return "no migration jobs\n".to_string();
    }
    let header = [
        "id",
        "table",
        "source",
        "target",
        "state",
        "progress",
        "attempts",
        "lease",
        "created",
        "finished",
        "read",
        "written",
        "rows",
        "duration",
        "peak memory",
        "last error",
    ];
    let rows: Vec<Vec<String>> = jobs.iter().map(job_row).collect();
    render_table(&header, &rows, style, width)
}

/// [`history_text`] with a fixed table width for Pretty.
pub(crate) fn history_text_at(rows: &[HistoryRow], style: Style, width: Option<u16>) -> String {
    if rows.is_empty() {
        return "no evaluations yet\n".to_string();
    }
    let header = [
        "window end",
        "layout",
        "cluster",
        "queries",
        "avg latency",
        "p95 latency",
        "avg bytes",
        "avg rows",
        "improvement",
        "reward",
        "regressed",
    ];
    let cells: Vec<Vec<String>> = rows.iter().map(history_row).collect();
    render_table(&header, &cells, style, width)
}

fn status_header(status: &StatusReport) -> String {
    format!(
        "table: {}\nactive layout: {}\nwindow: {} s\ngenerated: {} UTC\n",
        one_line(&status.table),
        one_line(&status.active_layout),
        status.window_sec,
        format::utc_time(status.generated_ms),
    )
}

fn section(
    title: &str,
    (header, rows): &(Vec<&str>, Vec<Vec<String>>),
    style: Style,
    width: Option<u16>,
) -> String {
    format!("{title}\n{}", render_table(header, rows, style, width))
}

fn layouts_section(layouts: &[LayoutStatus], style: Style, width: Option<u16>) -> String {
    if layouts.is_empty() {
        return "layouts\nno layouts registered\n".to_string();
    }
    section("layouts", &layouts_table(layouts), style, width)
}

/// The header and rows of the layouts table (shared with `summary.md`).
pub(crate) fn layouts_table(layouts: &[LayoutStatus]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "layout",
        "state",
        "spec",
        "size",
        "queries",
        "avg latency",
        "p95 latency",
        "avg bytes",
        "improvement",
        "reward",
        "traffic",
    ];
    (header, layouts.iter().map(layout_row).collect())
}

fn layout_row(layout: &LayoutStatus) -> Vec<String> {
    vec![
        layout.layout_id.clone(),
        layout.state.to_string(),
        layout.spec.clone(),
        format::bytes_u64(layout.size_bytes),
        layout.queries.to_string(),
        format::opt(layout.avg_latency_ms, format::latency),
        format::opt(layout.p95_latency_ms, format::latency),
        format::opt(layout.avg_bytes_scanned, format::bytes),
        format::opt(layout.improvement, format::percent),
        format::opt(layout.reward, format::reward),
        format::opt(layout.traffic_share, format::percent),
    ]
}

fn best_per_cluster_section(status: &StatusReport, style: Style, width: Option<u16>) -> String {
    if status.best_per_cluster.is_empty() {
        return "best layout per cluster\nno cluster has been evaluated yet\n".to_string();
    }
    let header = vec![
        "cluster",
        "best layout",
        "queries",
        "avg bytes",
        "avg latency",
    ];
    let rows = status
        .best_per_cluster
        .iter()
        .map(|best| {
            vec![
                best.cluster.clone(),
                best.layout_id.clone(),
                best.queries.to_string(),
                format::bytes(best.avg_bytes_scanned),
                format::latency(best.avg_latency_ms),
            ]
        })
        .collect();
    section("best layout per cluster", &(header, rows), style, width)
}

fn status_jobs_section(jobs: &[JobRow], style: Style, width: Option<u16>) -> String {
    if jobs.is_empty() {
        return "migration jobs\nno queued or running migration jobs\n".to_string();
    }
    let header = vec![
        "id", "source", "target", "state", "progress", "attempts", "lease",
    ];
    let rows = jobs
        .iter()
        .map(|job| {
            vec![
                job.id.to_string(),
                job.source_layout.clone(),
                job.target_layout.clone(),
                job.state.clone(),
                format::progress(job.units_done, job.units_total),
                job.attempts.to_string(),
                lease(job),
            ]
        })
        .collect();
    section("migration jobs", &(header, rows), style, width)
}

fn last_decision_section(decision: Option<&DecisionRow>) -> String {
    let Some(decision) = decision else {
        return "last autopilot decision\nno autopilot decisions yet\n".to_string();
    };
    format!(
        "last autopilot decision\n{} UTC  {}: {}\nreason: {}\n",
        format::utc_time(decision.at_ms),
        one_line(&decision.step),
        one_line(&decision.decision),
        one_line(&decision.reason),
    )
}

fn job_row(job: &JobRow) -> Vec<String> {
    vec![
        job.id.to_string(),
        job.table.clone(),
        job.source_layout.clone(),
        job.target_layout.clone(),
        job.state.clone(),
        format::progress(job.units_done, job.units_total),
        job.attempts.to_string(),
        lease(job),
        format::utc_time(job.created_ms),
        format::opt(job.finished_ms, format::utc_time),
        format::bytes_u64(job.bytes_read),
        format::bytes_u64(job.bytes_written),
        job.rows_written.to_string(),
        format::duration(job.duration_ms),
        format::bytes_u64(job.peak_memory_bytes),
        job.last_error.clone().unwrap_or_else(|| NONE.to_string()),
    ]
}

fn lease(job: &JobRow) -> String {
    match (&job.lease_owner, job.lease_expires_ms) {
        (Some(owner), Some(expires)) => format!("{owner} until {}", format::utc_time(expires)),
        (Some(owner), None) => owner.clone(),
        (None, _) => NONE.to_string(),
    }
}

fn history_row(row: &HistoryRow) -> Vec<String> {
    vec![
        format::utc_time(row.window_end_ms),
        row.layout_id.clone(),
        row.cluster.clone(),
        row.queries.to_string(),
        format::latency(row.avg_latency_ms),
        format::latency(row.p95_latency_ms),
        format::bytes(row.avg_bytes_scanned),
        format!("{:.1}", row.avg_rows_returned),
        format::opt(row.improvement, format::percent),
        format::opt(row.reward, format::reward),
        if row.regressed { "yes" } else { "no" }.to_string(),
    ]
}

fn render_table(header: &[&str], rows: &[Vec<String>], style: Style, width: Option<u16>) -> String {
    match style {
        Style::Pretty => pretty_table(header, rows, width),
        Style::Plain => plain_table(header, rows),
    }
}

fn pretty_table(header: &[&str], rows: &[Vec<String>], width: Option<u16>) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().map(|cell| one_line(cell)));
    if let Some(width) = width {
        table.set_width(width);
    }
    for row in rows {
        table.add_row(row.iter().map(|cell| one_line(cell)));
    }
    format!("{table}\n")
}

fn plain_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|cell| plain_cell(cell)).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| plain_cell(cell)).collect())
        .collect();
    let widths = column_widths(&header, &rows);
    let mut out = plain_line(&header, &widths);
    for row in &rows {
        out.push_str(&plain_line(row, &widths));
    }
    out
}

/// One line, and `-` for an empty cell so every column stays visible to `awk`-style splitting.
fn plain_cell(cell: &str) -> String {
    let line = one_line(cell);
    if line.trim().is_empty() {
        NONE.to_string()
    } else {
        line
    }
}

fn column_widths(header: &[String], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in rows {
        for (column, cell) in row.iter().enumerate() {
            let width = cell.chars().count();
            match widths.get_mut(column) {
                Some(current) => *current = (*current).max(width),
                None => widths.push(width),
            }
        }
    }
    widths
}

fn plain_line(cells: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(cell, width)| format!("{cell:<width$}"))
        .collect();
    let mut line = padded.join(COLUMN_GAP).trim_end().to_string();
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    /// Wide enough that nothing wraps, fixed so the snapshot does not depend on the terminal.
    const WIDTH: Option<u16> = Some(250);

    #[test]
    fn status_pretty() {
        let text = status_text_at(&fixtures::status_report(), Style::Pretty, WIDTH);
        assert!(!text.contains('\x1b'));
        insta::assert_snapshot!(text);
    }

    #[test]
    fn status_pretty_with_empty_sections() {
        let text = status_text_at(&fixtures::empty_status(), Style::Pretty, WIDTH);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn pretty_wraps_to_a_narrow_width() {
        let text = jobs_text_at(&fixtures::all_jobs(), Style::Pretty, Some(80));
        assert!(
            text.lines().all(|line| line.chars().count() <= 80),
            "{text}"
        );
    }
}
