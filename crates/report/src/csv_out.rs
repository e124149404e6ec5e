//! CSV output: a header row with the model's JSON field names (also when there are no rows),
//! raw numbers, empty cells for missing values.

use serde::Serialize;

/// Columns of [`crate::HistoryRow`] in field order.
pub(crate) const HISTORY_HEADER: &[&str] = &[
    "window_end_ms",
    "layout_id",
    "cluster",
    "reward",
    "improvement",
    "queries",
    "avg_latency_ms",
    "p95_latency_ms",
    "avg_bytes_scanned",
    "avg_rows_returned",
    "regressed",
];

/// Columns of [`crate::JobRow`] in field order.
pub(crate) const JOBS_HEADER: &[&str] = &[
    "id",
    "table",
    "source_layout",
    "target_layout",
    "state",
    "units_done",
    "units_total",
    "lease_owner",
    "lease_expires_ms",
    "attempts",
    "last_error",
    "created_ms",
    "finished_ms",
    "bytes_read",
    "bytes_written",
    "rows_written",
    "duration_ms",
    "peak_memory_bytes",
];

/// Columns of [`crate::RoutingRow`] in field order.
pub(crate) const ROUTING_HEADER: &[&str] = &[
    "cluster",
    "layout_id",
    "queries",
    "share",
    "explored",
    "avg_latency_ms",
    "avg_bytes_scanned",
];

/// Columns of [`crate::ProposalRow`] in field order.
pub(crate) const PROPOSALS_HEADER: &[&str] = &[
    "id",
    "created_ms",
    "rank",
    "target_layout",
    "spec",
    "recommended",
    "predicted_bytes",
    "predicted_reduction",
    "measured_bytes",
    "measured_reduction",
    "rewrite_bytes",
    "predicted_size_bytes",
    "built_size_bytes",
    "payback_runs",
    "reason",
];

/// Serializes flat records to CSV text under `header`, which must list the fields in order.
pub(crate) fn to_csv<T: Serialize>(header: &[&str], rows: &[T]) -> Result<String, csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    writer.write_record(header)?;
    for row in rows {
        writer.serialize(row)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(csv::IntoInnerError::into_error)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    /// The header serde derives for the first row.
    fn derived_header<T: Serialize>(rows: &[T]) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.serialize(&rows[0]).expect("fixture row serializes");
        let bytes = writer.into_inner().expect("in-memory writer flushes");
        let text = String::from_utf8(bytes).expect("csv output is UTF-8");
        text.lines().next().unwrap_or_default().to_string()
    }

    #[test]
    fn headers_match_the_serde_field_order() {
        let bundle = fixtures::bundle();
        assert_eq!(derived_header(&bundle.history), HISTORY_HEADER.join(","));
        assert_eq!(derived_header(&bundle.jobs), JOBS_HEADER.join(","));
        assert_eq!(derived_header(&bundle.routing), ROUTING_HEADER.join(","));
        assert_eq!(
            derived_header(&bundle.proposals),
            PROPOSALS_HEADER.join(",")
        );
    }

    #[test]
    fn empty_input_still_has_a_header() {
        let empty: Vec<crate::HistoryRow> = Vec::new();
        let text = to_csv(HISTORY_HEADER, &empty).expect("in-memory CSV");
        assert_eq!(text, format!("{}\n", HISTORY_HEADER.join(",")));
    }
}
