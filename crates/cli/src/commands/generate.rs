//! `dbopt generate`: the synthetic events table and its customers dimension.

use super::table_name;
use crate::cli::{GenerateArgs, OrderArg};
use crate::output::print_initial_layout;
use crate::progress::Bar;
use anyhow::Result;
use dbopt::Workspace;
use dbopt::generate::GenerateOptions;
use dbopt::monitor::Monitored;
use dbopt_data::events::RowOrder;

/// Runs `dbopt generate`.
pub async fn run(ws: Workspace, args: GenerateArgs) -> Result<()> {
    let options = GenerateOptions {
        table: table_name(&args.table_name)?,
        customers_table: table_name(&args.customers_table)?,
        num_rows: args.num_rows,
        seed: args.seed,
        order: match args.order {
            OrderArg::Arrival => RowOrder::Arrival,
            OrderArg::Shuffled => RowOrder::Shuffled,
        },
        replace: args.replace,
        rows_per_file: args.rows_per_file,
        row_group_rows: args.row_group_rows,
    };
    let bar = Bar::rows("generating");
    let monitor = super::start_monitor(&ws, args.monitor.as_deref())?;
    let progress = Monitored {
        inner: &bar,
        monitor: monitor.as_ref(),
    };
    let report = ws.generate_events(&options, &progress).await;
    super::finish_monitor(&ws, monitor);
    let report = report?;
    for r in [&report.customers, &report.events] {
        print_initial_layout(r);
    }
    Ok(())
}
