//! `dbopt promote`: make a candidate layout the active one, by compare-and-swap.

use super::{layout_id, table_name};
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;

/// `dbopt promote`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt canary --table-name events --layout 3f2a9c0d11e4b7a2
  dbopt promote --table-name events --layout 3f2a9c0d11e4b7a2

The change names the layout it expects to replace: if another process promoted or rolled back
meanwhile, it fails and changes nothing. A layout whose canary rejected it is refused unless
--force.")]
pub struct PromoteArgs {
    /// The table.
    #[arg(long)]
    pub table_name: String,
    /// The ready layout to make active (`dbopt tables` lists them).
    #[arg(long)]
    pub layout: String,
    /// Promote even a layout whose canary rejected it.
    #[arg(long)]
    pub force: bool,
}

/// Runs `dbopt promote`.
pub fn run(ws: Workspace, args: PromoteArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let layout = layout_id(&args.layout)?;
    let reason = if args.force {
        "promoted by hand (--force)"
    } else {
        "promoted by hand"
    };
    let change = ws.promote(&table, &layout, args.force, "cli", reason)?;
    if change.changed {
        println!(
            "{table}: active layout {} -> {}{}",
            change.from,
            change.to,
            lake_note(&change)
        );
    } else {
        println!(
            "{table}: layout {} is already active: nothing changed",
            change.to
        );
    }
    Ok(())
}

/// How a change reached a Delta table's log (empty for a managed table).
pub(crate) fn lake_note(change: &dbopt::promote::ActiveChange) -> String {
    let Some(c) = change.lake_commit else {
        return String::new();
    };
    let at = match c.format {
        dbopt_catalog::LakeFormat::Delta => format!("Delta log version {}", c.version),
        dbopt_catalog::LakeFormat::Iceberg => format!("Iceberg snapshot {}", c.version),
    };
    if c.committed_now {
        format!(" ({at})")
    } else {
        format!(" (already committed: {at})")
    }
}
