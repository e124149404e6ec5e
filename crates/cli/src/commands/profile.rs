//! `dbopt profile`: run one query and show where its time went, operator by operator, with
//! advice naming the bottleneck (also `dbopt query --profile`).

use super::query::open_runner;
use super::table_name;
use crate::cli::Format;
use crate::output::{Rows, human_bytes, print_rows};
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use dbopt::profile::Advice;
use dbopt_catalog::QueryOrigin;
use serde_json::json;

/// `dbopt profile`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt profile --table-name events \"SELECT count(*) FROM events WHERE event_date = DATE '2025-03-01'\"
  dbopt profile --table-name events --format json \"SELECT country, count(*) FROM events GROUP BY 1\"

The query runs once (routed and logged like `dbopt query`); its result is not printed. Shown:
time per kind of work (scan and decode, filter, join, aggregate, sort, exchange) summed over
partitions, each operator of the plan with its time, rows, partitions and spills, and advice:
IO-bound (a layout on the filtered columns would prune), decode-bound, join-, aggregate- or
sort-bound, spill (memory_limit), skew, or too few partitions for the threads.")]
pub struct ProfileArgs {
    /// The table the query is logged against.
    #[arg(long)]
    pub table_name: String,
    /// Read this layout of the table (no routing).
    #[arg(long)]
    pub layout: Option<String>,
    /// Read the active layout instead of routing across the table's live layouts.
    #[arg(long, conflicts_with = "layout")]
    pub no_route: bool,
    /// Output format (table or json).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The SQL (SELECT or WITH).
    pub sql: String,
}

/// Runs `dbopt profile`.
pub async fn run(ws: Workspace, args: ProfileArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let mut runner = open_runner(&ws, &table, args.layout.as_deref(), args.no_route).await?;
    let outcome = runner.run(&args.sql, QueryOrigin::Query, None).await?;
    let advice = ws.advice_for(&runner, &table, &args.sql, &outcome).await;
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&as_json(&outcome, &advice))?
        );
    } else {
        print_profile(&outcome, &advice, args.format);
    }
    Ok(())
}

/// Prints the profile of `outcome` and the advice, as tables.
pub fn print_profile(outcome: &dbopt::query::QueryOutcome, advice: &[Advice], format: Format) {
    let profile = &outcome.profile;
    let total = profile.total_time().as_secs_f64();
    println!(
        "{} rows in {:.1} ms; operator time {:.1} ms over {} threads",
        outcome.rows,
        outcome.latency.as_secs_f64() * 1000.0,
        total * 1000.0,
        profile.target_partitions
    );
    let mut kinds = Rows::new(&["work", "time", "share"]);
    for (kind, time) in profile.time_by_kind() {
        kinds.push(vec![
            kind.as_str().to_string(),
            format!("{:.2} ms", time.as_secs_f64() * 1000.0),
            share(time.as_secs_f64(), total),
        ]);
    }
    print_rows(&kinds, format);
    let mut ops = Rows::new(&["operator", "time", "rows", "partitions", "spilled", "read"]);
    for op in &profile.operators {
        ops.push(vec![
            format!("{}{}", "  ".repeat(op.depth), op.name),
            format!("{:.2} ms", op.time.as_secs_f64() * 1000.0),
            op.output_rows.to_string(),
            op.partitions.to_string(),
            human_bytes(op.spilled_bytes),
            human_bytes(op.bytes_scanned),
        ]);
    }
    print_rows(&ops, format);
    if advice.is_empty() {
        println!("advice: no single bottleneck stands out");
    }
    for a in advice {
        println!("advice: {}", a.text);
    }
}

fn share(part: f64, total: f64) -> String {
    if total > 0.0 {
        format!("{:.0}%", part / total * 100.0)
    } else {
        "-".into()
    }
}

fn as_json(outcome: &dbopt::query::QueryOutcome, advice: &[Advice]) -> serde_json::Value {
    let profile = &outcome.profile;
    json!({
        "rows": outcome.rows,
        "latency_ms": outcome.latency.as_secs_f64() * 1000.0,
        "threads": profile.target_partitions,
        "dominant": profile.dominant().map(|(k, s)| json!({"work": k.as_str(), "share": s})),
        "time_by_kind": profile.time_by_kind().into_iter().map(|(k, t)| json!({
            "work": k.as_str(), "ms": t.as_secs_f64() * 1000.0,
        })).collect::<Vec<_>>(),
        "operators": profile.operators.iter().map(|o| json!({
            "depth": o.depth,
            "name": o.name,
            "work": o.kind.as_str(),
            "ms": o.time.as_secs_f64() * 1000.0,
            "rows": o.output_rows,
            "partitions": o.partitions,
            "max_partition_rows": o.max_partition_rows,
            "spills": o.spills,
            "spilled_bytes": o.spilled_bytes,
            "bytes_scanned": o.bytes_scanned,
        })).collect::<Vec<_>>(),
        "scans": outcome.scans.iter().map(|s| json!({
            "table": s.table,
            "layout": s.layout_id.to_string(),
            "bytes_scanned": s.metrics.bytes_scanned,
            "row_groups_total": s.metrics.row_groups_total,
            "row_groups_pruned": s.metrics.row_groups_pruned,
        })).collect::<Vec<_>>(),
        "advice": advice,
    })
}
