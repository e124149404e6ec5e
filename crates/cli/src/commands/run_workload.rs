//! `dbopt run-workload`: a generated workload, every query logged, then a summary.

use super::table_name;
use crate::cli::{Format, RunWorkloadArgs, WorkloadKind};
use crate::output::{Rows, human_bytes, print_rows};
use crate::progress::Bar;
use anyhow::Result;
use dbopt::Workspace;
use dbopt::tpch::TpchWorkloadOptions;
use dbopt::workload::WorkloadOptions;
use dbopt::workload::WorkloadSummary;
use dbopt::workload_file::WorkloadFileOptions;
use dbopt_data::tpch_params::TpchMix;

/// Runs `dbopt run-workload`.
pub async fn run(ws: Workspace, args: RunWorkloadArgs) -> Result<()> {
    if let Some(file) = &args.workload_file {
        let options = WorkloadFileOptions {
            table: table_name(&args.table_name)?,
            file: file.clone(),
            num_queries: args.num_queries,
            seed: args.seed,
            sample: args.sample,
        };
        let summary = ws
            .run_workload_file(&options, &Bar::queries("queries"))
            .await?;
        return print_summary(&summary, args.format);
    }
    let options = WorkloadOptions {
        table: table_name(&args.table_name)?,
        customers_table: table_name(&args.customers_table)?,
        num_queries: args.num_queries,
        seed: args.seed,
    };
    if args.explore {
        eprintln!(
            "note: --explore (rate {}) takes effect once layouts are routed; every query now uses the active layout",
            ws.config().exploration_rate()
        );
    }
    let bar = Bar::queries("queries");
    let summary = match args.workload {
        WorkloadKind::Events => ws.run_events_workload(&options, &bar).await?,
        WorkloadKind::Tpch | WorkloadKind::TpchFilter => {
            let mix = if args.workload == WorkloadKind::Tpch {
                TpchMix::Uniform
            } else {
                TpchMix::FilterHeavy
            };
            let tpch = TpchWorkloadOptions {
                num_queries: args.num_queries,
                seed: args.seed,
                mix,
            };
            ws.run_tpch_workload(&tpch, &bar).await?
        }
    };
    print_summary(&summary, args.format)
}

/// Prints a workload summary (also used by `run-nyc-taxi-workload`).
pub(super) fn print_summary(summary: &WorkloadSummary, format: Format) -> Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(summary)?);
        return Ok(());
    }
    let mut rows = Rows::new(&["metric", "value"]);
    rows.push(vec!["queries".into(), summary.queries.to_string()]);
    rows.push(vec!["errors".into(), summary.errors.to_string()]);
    rows.push(vec![
        "p50 latency".into(),
        format!("{:.1} ms", summary.p50_ms),
    ]);
    rows.push(vec![
        "p95 latency".into(),
        format!("{:.1} ms", summary.p95_ms),
    ]);
    rows.push(vec![
        "bytes scanned".into(),
        human_bytes(summary.total_bytes_scanned),
    ]);
    print_rows(&rows, format);
    for e in &summary.first_errors {
        eprintln!("error: {e}");
    }
    Ok(())
}
