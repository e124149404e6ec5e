//! `dbopt run-workload`: a generated workload, every query logged, then a summary.

use super::table_name;
use crate::cli::{Format, RunWorkloadArgs, WorkloadKind};
use crate::output::{Rows, human_bytes, print_rows};
use crate::progress::Bar;
use anyhow::Result;
use dbopt::Workspace;
use dbopt::tpch::TpchWorkloadOptions;
use dbopt::workload::{Routing, WorkloadOptions, WorkloadSummary};
use dbopt::workload_file::WorkloadFileOptions;
use dbopt_data::tpch_params::TpchMix;

/// The routing of a workload run: the configured policy when `explore`, else none.
pub(super) fn routing(ws: &Workspace, explore: bool, seed: u64) -> Result<Option<Routing>> {
    if !explore {
        return Ok(None);
    }
    let settings = ws.loop_settings()?;
    eprintln!(
        "routing with {} on {} (exploration rate {}, alpha {}, beta {})",
        settings.policy,
        settings.objective,
        settings.params.exploration_rate,
        settings.weights.alpha,
        settings.weights.beta
    );
    Ok(Some(Routing { settings, seed }))
}

/// Runs `dbopt run-workload`.
pub async fn run(ws: Workspace, args: RunWorkloadArgs) -> Result<()> {
    let routing = routing(&ws, args.explore, args.seed)?;
    if let Some(file) = &args.workload_file {
        let options = WorkloadFileOptions {
            table: table_name(&args.table_name)?,
            file: file.clone(),
            num_queries: args.num_queries,
            seed: args.seed,
            sample: args.sample,
            routing,
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
        routing: routing.clone(),
        exclude_templates: args.exclude_templates.clone(),
        layout: None,
    };
    if !args.exclude_templates.is_empty() && args.workload != WorkloadKind::Events {
        anyhow::bail!(dbopt::DbError::BadArgument(
            "--exclude-templates applies to the events workload only".into()
        ));
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
                routing,
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
    for (layout, n) in &summary.per_layout {
        rows.push(vec![format!("queries on {layout}"), n.to_string()]);
    }
    print_rows(&rows, format);
    for e in &summary.first_errors {
        eprintln!("error: {e}");
    }
    Ok(())
}
