//! `dbopt rollback`: make the previously active layout (or `--to`) active again.

use super::{layout_id, table_name};
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;

/// `dbopt rollback`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt rollback --table-name events
  dbopt rollback --table-name events --to initial

Without --to, the layout the current one replaced (from the activation history) becomes active
again. Like promote, it is a compare-and-swap: a concurrent change makes it fail cleanly.")]
pub struct RollbackArgs {
    /// The table.
    #[arg(long)]
    pub table_name: String,
    /// The ready layout to go back to [default: the one the active layout replaced]
    #[arg(long)]
    pub to: Option<String>,
}

/// Runs `dbopt rollback`.
pub fn run(ws: Workspace, args: RollbackArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let to = args.to.as_deref().map(layout_id).transpose()?;
    let change = ws.rollback(&table, to.as_ref(), "cli", "rolled back by hand")?;
    if change.changed {
        println!(
            "{table}: active layout {} -> {} (rolled back){}",
            change.from,
            change.to,
            super::promote::lake_note(&change)
        );
    } else {
        println!(
            "{table}: layout {} is already active: nothing changed",
            change.to
        );
    }
    Ok(())
}
