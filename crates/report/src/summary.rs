//! `summary.md`: what was observed, proposed, built, measured and decided, with the current
//! status and links to the charts and data files. Every string from the catalog is escaped.

use std::collections::BTreeMap;

use crate::format::{self, NONE};
use crate::markdown::{escape_markdown as esc, table};
use crate::model::{
    ActivationRow, CanaryRow, DecisionRow, HistoryRow, JobRow, LayoutStatus, Observed, ProposalRow,
    ReportBundle, RoutingRow, TemplateRow,
};

/// Renders `summary.md` for a bundle.
pub(crate) fn summary_markdown(bundle: &ReportBundle) -> String {
    let sections = [
        title(bundle),
        observed(&bundle.observed),
        proposed(&bundle.proposals),
        built(&bundle.jobs),
        measured(&bundle.history, &bundle.routing),
        decided(bundle),
        status(&bundle.status.layouts),
        files(),
    ];
    sections.join("\n")
}

fn title(bundle: &ReportBundle) -> String {
    let status = &bundle.status;
    format!(
        "# dbopt report: {}\n\nGenerated {} UTC. Active layout: {}. Evaluation window: {} s.\n",
        esc(&status.table),
        format::utc_time(status.generated_ms),
        esc(&status.active_layout),
        status.window_sec,
    )
}

fn observed(observed: &Observed) -> String {
    let span = match (observed.first_ms, observed.last_ms) {
        (Some(first), Some(last)) => format!(
            "{} to {} UTC ({})",
            format::utc_time(first),
            format::utc_time(last),
            format::duration(last.saturating_sub(first).max(0) as u64)
        ),
        _ => "no queries yet".to_string(),
    };
    format!(
        "## Observed\n\n- Queries: {} ({} errors)\n- Templates: {}\n- Clusters: {}\n- Time span: {span}\n\n{}{}",
        observed.queries,
        observed.errors,
        observed.templates,
        observed.clusters,
        top_templates(&observed.top_templates),
        template_sql(&observed.top_templates),
    )
}

fn top_templates(templates: &[TemplateRow]) -> String {
    if templates.is_empty() {
        return "No query templates observed.\n".to_string();
    }
    let header = [
        "fingerprint",
        "cluster",
        "queries",
        "avg bytes scanned",
        "avg latency",
    ];
    let rows: Vec<Vec<String>> = templates
        .iter()
        .map(|t| {
            vec![
                esc(&t.fingerprint),
                esc(&t.cluster),
                t.queries.to_string(),
                format::bytes(t.avg_bytes_scanned),
                format::latency(t.avg_latency_ms),
            ]
        })
        .collect();
    format!("Top templates:\n\n{}", table(&header, &rows))
}

fn template_sql(templates: &[TemplateRow]) -> String {
    let lines: Vec<String> = templates
        .iter()
        .filter_map(|t| {
            Some(format!(
                "- {}: {}\n",
                esc(&t.fingerprint),
                esc(t.sql.as_deref()?)
            ))
        })
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    format!("\nSample SQL:\n\n{}", lines.concat())
}

fn proposed(proposals: &[ProposalRow]) -> String {
    let chart = "![Predicted vs measured reduction](predicted_vs_measured.svg)\n";
    if proposals.is_empty() {
        return format!("## Proposed\n\nNo layouts proposed.\n\n{chart}");
    }
    let header = [
        "id",
        "rank",
        "layout",
        "spec",
        "recommended",
        "predicted reduction",
        "measured reduction",
        "rewrite",
        "predicted size",
        "built size",
        "payback runs",
        "reason",
    ];
    let rows: Vec<Vec<String>> = proposals.iter().map(proposal_row).collect();
    format!("## Proposed\n\n{}\n{chart}", table(&header, &rows))
}

fn proposal_row(p: &ProposalRow) -> Vec<String> {
    vec![
        p.id.to_string(),
        p.rank.to_string(),
        esc(&p.target_layout),
        esc(&p.spec),
        yes_no(p.recommended),
        format::percent(p.predicted_reduction),
        format::opt(p.measured_reduction, format::percent),
        format::bytes_u64(p.rewrite_bytes),
        format::bytes_u64(p.predicted_size_bytes),
        format::opt(p.built_size_bytes, format::bytes_u64),
        format::opt(p.payback_runs, |runs| format!("{runs:.1}")),
        esc(&p.reason),
    ]
}

fn built(jobs: &[JobRow]) -> String {
    if jobs.is_empty() {
        return "## Built\n\nNo migration jobs.\n".to_string();
    }
    let header = [
        "id",
        "source",
        "target",
        "state",
        "progress",
        "rows written",
        "bytes written",
        "duration",
        "attempts",
        "last error",
    ];
    let rows: Vec<Vec<String>> = jobs.iter().map(job_row).collect();
    format!("## Built\n\n{}", table(&header, &rows))
}

fn job_row(job: &JobRow) -> Vec<String> {
    vec![
        job.id.to_string(),
        esc(&job.source_layout),
        esc(&job.target_layout),
        esc(&job.state),
        format::progress(job.units_done, job.units_total),
        job.rows_written.to_string(),
        format::bytes_u64(job.bytes_written),
        format::duration(job.duration_ms),
        job.attempts.to_string(),
        job.last_error
            .as_deref()
            .map_or_else(|| NONE.to_string(), esc),
    ]
}

fn measured(history: &[HistoryRow], routing: &[RoutingRow]) -> String {
    let charts = "![Query latency over time](latency_over_time.svg)\n\n\
                  ![Bytes scanned per query](bytes_scanned.svg)\n\n\
                  ![Traffic share per layout](traffic_share.svg)\n";
    format!(
        "## Measured\n\nLatest evaluation per layout and cluster:\n\n{}\nRouting:\n\n{}\n{charts}",
        latest_evaluations(history),
        routing_table(routing),
    )
}

fn latest_evaluations(history: &[HistoryRow]) -> String {
    let mut latest: BTreeMap<(&str, &str), &HistoryRow> = BTreeMap::new();
    for row in history {
        let key = (row.layout_id.as_str(), row.cluster.as_str());
        let entry = latest.entry(key).or_insert(row);
        if row.window_end_ms > entry.window_end_ms {
            *entry = row;
        }
    }
    if latest.is_empty() {
        return "No evaluations yet.\n".to_string();
    }
    let header = [
        "layout",
        "cluster",
        "window end",
        "queries",
        "avg latency",
        "p95 latency",
        "avg bytes",
        "improvement",
        "reward",
        "regressed",
    ];
    let rows: Vec<Vec<String>> = latest.values().map(|row| evaluation_row(row)).collect();
    table(&header, &rows)
}

fn evaluation_row(row: &HistoryRow) -> Vec<String> {
    vec![
        esc(&row.layout_id),
        esc(&row.cluster),
        format::utc_time(row.window_end_ms),
        row.queries.to_string(),
        format::latency(row.avg_latency_ms),
        format::latency(row.p95_latency_ms),
        format::bytes(row.avg_bytes_scanned),
        format::opt(row.improvement, format::percent),
        format::opt(row.reward, format::reward),
        yes_no(row.regressed),
    ]
}

fn routing_table(routing: &[RoutingRow]) -> String {
    if routing.is_empty() {
        return "No routed queries yet.\n".to_string();
    }
    let header = [
        "cluster",
        "layout",
        "queries",
        "share",
        "explored",
        "avg latency",
        "avg bytes",
    ];
    let rows: Vec<Vec<String>> = routing
        .iter()
        .map(|r| {
            vec![
                esc(&r.cluster),
                esc(&r.layout_id),
                r.queries.to_string(),
                format::percent(r.share),
                r.explored.to_string(),
                format::latency(r.avg_latency_ms),
                format::bytes(r.avg_bytes_scanned),
            ]
        })
        .collect();
    table(&header, &rows)
}

fn decided(bundle: &ReportBundle) -> String {
    format!(
        "## Decided\n\n### Activations\n\n{}\n### Canaries\n\n{}\n### Autopilot decisions\n\n{}",
        activations(&bundle.activations),
        canaries(&bundle.canaries),
        decisions(&bundle.decisions),
    )
}

fn activations(rows: &[ActivationRow]) -> String {
    if rows.is_empty() {
        return "No layout activations.\n".to_string();
    }
    let header = ["time (UTC)", "from", "to", "action", "actor", "reason"];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|a| {
            vec![
                format::utc_time(a.at_ms),
                esc(&a.from_layout),
                esc(&a.to_layout),
                esc(&a.action),
                esc(&a.actor),
                esc(&a.reason),
            ]
        })
        .collect();
    table(&header, &cells)
}

fn canaries(rows: &[CanaryRow]) -> String {
    if rows.is_empty() {
        return "No canary replays.\n".to_string();
    }
    let header = [
        "time (UTC)",
        "layout",
        "baseline",
        "queries",
        "mismatches",
        "reduction",
        "verdict",
        "reason",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|c| {
            vec![
                format::utc_time(c.at_ms),
                esc(&c.layout_id),
                esc(&c.baseline_layout),
                c.queries.to_string(),
                c.mismatches.to_string(),
                format::percent(c.reduction),
                esc(&c.verdict),
                esc(&c.reason),
            ]
        })
        .collect();
    table(&header, &cells)
}

fn decisions(rows: &[DecisionRow]) -> String {
    if rows.is_empty() {
        return "No autopilot decisions.\n".to_string();
    }
    let header = ["time (UTC)", "step", "decision", "reason"];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|d| {
            vec![
                format::utc_time(d.at_ms),
                esc(&d.step),
                esc(&d.decision),
                esc(&d.reason),
            ]
        })
        .collect();
    table(&header, &cells)
}

fn status(layouts: &[LayoutStatus]) -> String {
    if layouts.is_empty() {
        return "## Status\n\nNo layouts.\n".to_string();
    }
    // The same columns as `dbopt status`, each cell escaped for Markdown.
    let (header, rows) = crate::text::layouts_table(layouts);
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| esc(cell)).collect())
        .collect();
    format!("## Status\n\n{}", table(&header, &rows))
}

fn files() -> String {
    "## Files\n\n\
     - [layout\\_eval.csv](layout_eval.csv) and [layout\\_eval.json](layout_eval.json): every evaluation\n\
     - [query\\_routing\\_summary.csv](query_routing_summary.csv): routing per cluster and layout\n\
     - [proposals.csv](proposals.csv): predicted beside measured reduction per proposal\n"
        .to_string()
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}
