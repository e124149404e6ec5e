//! `dbopt gc`: remove orphaned staging and layouts that were not kept.

use super::table_name;
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;

/// `dbopt gc`
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  dbopt gc --table-name events --keep 1 --dry-run")]
pub struct GcArgs {
    /// The table.
    #[arg(long)]
    pub table_name: String,
    /// Ready layouts to keep besides the active and initial ones, newest first
    /// [default: max_layouts, 3]
    #[arg(long)]
    pub keep: Option<usize>,
    /// Print what would be removed without removing it.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `dbopt gc`.
pub fn run(ws: Workspace, args: GcArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let keep = args
        .keep
        .unwrap_or(usize::try_from(ws.config().max_layouts()).unwrap_or(usize::MAX));
    let plan = ws.gc_table(&table, keep, args.dry_run)?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for s in &plan.remove_staging {
        println!("{verb} staging {table}/_staging/{s}");
    }
    for (d, why) in &plan.remove_layout_dirs {
        println!("{verb} {table}/{d} ({why})");
    }
    for id in &plan.retire {
        println!(
            "{} layout {id}",
            if args.dry_run {
                "would retire"
            } else {
                "retired"
            }
        );
    }
    if plan.is_empty() {
        println!("{table}: nothing to collect");
    }
    Ok(())
}
