//! `dbopt propose`: ranked candidate layouts with predicted bytes scanned, reduction, size
//! (compression in the new order) and payback, stored in the catalog.

use super::analyze::since_ms;
use super::table_name;
use crate::cli::Format;
use crate::output::{Rows, human_bytes, print_predicted_vs_measured, print_rows};
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;

/// `dbopt propose`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  dbopt propose --table-name events\n  dbopt propose --table-name events --top 3 --explain\n  dbopt propose --table-name events --format json"
)]
pub struct ProposeArgs {
    /// The table to propose layouts for.
    #[arg(long)]
    pub table_name: String,
    /// How many ranked candidates to print (all are stored).
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Print the reasons for each candidate.
    #[arg(long)]
    pub explain: bool,
    /// Only queries logged within this long ago, e.g. 24h or 7d [default: all]
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt propose`.
pub async fn run(ws: Workspace, args: ProposeArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let since = since_ms(&ws, args.since.as_deref())?;
    let mut outcome = ws.propose_layouts(&table, since, None).await?;
    outcome.proposals.truncate(args.top.max(1));
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
        return Ok(());
    }
    println!(
        "{}: {} queries analyzed ({} skipped), sample of {} rows, run {}",
        outcome.table,
        outcome.queries_analyzed,
        outcome.queries_skipped,
        outcome.sample_rows,
        outcome.run_id
    );
    if let Some(c) = &outcome.calibration {
        println!(
            "model check on the current layout: predicted {} vs measured {} over {} queries ({:.2}x)",
            human_bytes(c.predicted_bytes as u64),
            human_bytes(c.measured_bytes),
            c.queries,
            c.ratio
        );
    }
    println!();
    let mut rows = Rows::new(&[
        "rank",
        "id",
        "layout",
        "predicted scan",
        "reduction",
        "files",
        "row groups",
        "size",
        "payback runs",
        "recommended",
    ]);
    for s in &outcome.proposals {
        let p = &s.proposal;
        rows.push(vec![
            p.rank.to_string(),
            s.id.to_string(),
            p.description.clone(),
            human_bytes(p.predicted.bytes_scanned as u64),
            format!("{:.0}%", p.predicted_reduction * 100.0),
            format!("{:.0}", p.predicted.files_read),
            format!("{:.0}", p.predicted.row_groups_read),
            human_bytes(p.predicted.size_bytes.round() as u64),
            p.payback_runs
                .map_or("-".to_string(), |r| format!("{r:.2}")),
            if p.recommended { "yes" } else { "no" }.to_string(),
        ]);
    }
    print_rows(&rows, args.format);
    if args.explain {
        print_checked_predictions(&ws, &table, args.format)?;
        for s in &outcome.proposals {
            let p = &s.proposal;
            println!(
                "\n#{} {} (layout {}):",
                p.rank, p.description, p.target_layout
            );
            for r in &p.reasons {
                println!("  - {r}");
            }
        }
    }
    Ok(())
}

/// Earlier proposals whose layouts were built and measured by a canary: predicted beside
/// measured.
fn print_checked_predictions(
    ws: &Workspace,
    table: &dbopt_core::TableName,
    format: Format,
) -> Result<()> {
    let checked = ws.catalog().measured_proposals(table)?;
    if !checked.is_empty() {
        println!("\nearlier predictions checked by a canary:");
        print_predicted_vs_measured(&checked, format);
    }
    Ok(())
}
