//! `dbopt analyze`: the workload profile of a table (column usage, selectivity, hot columns,
//! clusters) and its column statistics.

use super::table_name;
use crate::cli::Format;
use crate::output::{Rows, human_bytes, print_rows};
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use dbopt::analyze::parse_duration_ms;

/// `dbopt analyze`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  dbopt analyze --table-name events\n  dbopt analyze --table-name events --since 24h --format json"
)]
pub struct AnalyzeArgs {
    /// The table whose logged queries are analyzed.
    #[arg(long)]
    pub table_name: String,
    /// Only queries logged within this long ago, e.g. 30m, 24h, 7d [default: all]
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Resolves `--since` to a lower bound on query time.
pub fn since_ms(ws: &Workspace, since: Option<&str>) -> Result<Option<i64>> {
    Ok(match since {
        Some(text) => Some(ws.clock().now_ms() - parse_duration_ms(text)?),
        None => None,
    })
}

fn pct(v: Option<f64>) -> String {
    match v {
        None => "-".to_string(),
        Some(v) if v > 0.0 && v < 0.001 => format!("{:.3}%", v * 100.0),
        Some(v) => format!("{:.1}%", v * 100.0),
    }
}

/// Runs `dbopt analyze`.
pub async fn run(ws: Workspace, args: AnalyzeArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let since = since_ms(&ws, args.since.as_deref())?;
    let (analysis, _) = ws.analyze_workload(&table, since, false).await?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&analysis)?);
        return Ok(());
    }
    let p = &analysis.profile;
    let syntax = if p.queries_from_syntax > 0 {
        format!(
            " ({} read from their syntax tree: functions DataFusion does not have)",
            p.queries_from_syntax
        )
    } else {
        String::new()
    };
    println!(
        "{}@{}: {} queries analyzed{syntax}, {} skipped",
        analysis.table, analysis.layout, p.queries_analyzed, p.queries_skipped
    );
    for s in analysis.skipped.iter().take(3) {
        println!("  skipped query {}: {}", s.query_id, s.reason);
    }
    println!();
    let mut rows = Rows::new(&[
        "column",
        "filtered",
        "share",
        "eq",
        "in",
        "range",
        "prefix",
        "null",
        "join",
        "group",
        "order",
        "read",
        "measured sel",
        "est. sel",
    ]);
    for c in &p.columns {
        rows.push(vec![
            c.column.clone(),
            c.filtered.to_string(),
            pct(Some(c.filter_share)),
            c.eq.to_string(),
            c.in_list.to_string(),
            c.range.to_string(),
            c.prefix.to_string(),
            c.null_check.to_string(),
            c.joined.to_string(),
            c.grouped.to_string(),
            c.ordered.to_string(),
            c.projected.to_string(),
            pct(c.measured_selectivity),
            pct(c.estimated_selectivity),
        ]);
    }
    print_rows(&rows, args.format);
    println!("\nhot columns: {}", p.hot_columns.join(", "));
    println!();
    let mut rows = Rows::new(&["cluster", "queries", "share", "shape", "mean scanned"]);
    for c in &p.clusters {
        rows.push(vec![
            c.id.clone(),
            c.queries.to_string(),
            pct(Some(c.share)),
            if c.shape.is_empty() {
                "(no filter)".to_string()
            } else {
                c.shape.join(" ")
            },
            c.mean_bytes_scanned
                .map_or("-".to_string(), |b| human_bytes(b as u64)),
        ]);
    }
    print_rows(&rows, args.format);
    println!();
    let s = &analysis.stats;
    println!(
        "column statistics ({} rows, {} files, {} row groups, {}):",
        s.rows,
        s.files,
        s.row_groups,
        human_bytes(s.total_bytes)
    );
    let mut rows = Rows::new(&[
        "column",
        "type",
        "size",
        "nulls",
        "distinct",
        "min",
        "max",
        "clustering",
    ]);
    for c in &s.columns {
        rows.push(vec![
            c.column.clone(),
            c.data_type.clone(),
            human_bytes(c.compressed_bytes),
            pct(Some(s.null_fraction(&c.column))),
            format!("~{}", c.distinct_estimate),
            c.min
                .as_ref()
                .map_or("-".into(), std::string::ToString::to_string),
            c.max
                .as_ref()
                .map_or("-".into(), std::string::ToString::to_string),
            format!("{:.2}", c.clustering),
        ]);
    }
    print_rows(&rows, args.format);
    Ok(())
}
