//! `dbopt activate-layout`: choose the layout queries read by default.

use super::table_name;
use anyhow::{Result, bail};
use clap::Args;
use dbopt::{DbError, Workspace};
use dbopt_core::LayoutId;

/// `dbopt activate-layout`
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  dbopt activate-layout --table-name events --layout initial")]
pub struct ActivateLayoutArgs {
    /// The table.
    #[arg(long)]
    pub table_name: String,
    /// A ready layout of the table (`dbopt tables` lists them).
    #[arg(long)]
    pub layout: String,
}

/// Runs `dbopt activate-layout`.
pub fn run(ws: Workspace, args: ActivateLayoutArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let Some(layout) = LayoutId::parse(&args.layout) else {
        bail!(DbError::BadArgument(format!(
            "invalid layout id '{}': use 'initial' or the hex id shown by `dbopt tables`",
            args.layout
        )));
    };
    ws.activate_layout(&table, &layout)?;
    println!("{table}: active layout is now {layout}");
    Ok(())
}
