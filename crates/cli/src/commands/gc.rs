//! `dbopt gc`: remove orphaned staging and layouts that were not kept.

use super::table_name;
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;

/// `dbopt gc`
#[derive(Debug, Args)]
#[command(
    after_help = "A layout that stopped being active or ready keeps its files for the grace period\n(config gc_grace, default 5m) so queries that resolved it before can finish; a later gc\nremoves them. --grace 0s removes them at once.\n\nExamples:\n  dbopt gc --table-name events --keep 1 --dry-run\n  dbopt gc --table-name events --keep 0 --grace 0s"
)]
pub struct GcArgs {
    /// The table.
    #[arg(long)]
    pub table_name: String,
    /// Ready layouts to keep besides the active and initial ones, newest first
    /// [default: max_layouts, 3]
    #[arg(long)]
    pub keep: Option<usize>,
    /// Keep the files of layouts that left service less than this long ago, e.g. 0s, 90s, 5m
    /// [default: gc_grace, 5m]
    #[arg(long)]
    pub grace: Option<String>,
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
    let grace_ms = match &args.grace {
        Some(text) => dbopt::analyze::parse_duration_ms(text)
            .map_err(|e| dbopt::DbError::BadArgument(format!("--grace: {e}")))?,
        None => ws.gc_grace_ms(),
    };
    let plan = ws.gc_table_with_grace(&table, keep, grace_ms, args.dry_run)?;
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
    for (d, left_ms) in &plan.grace {
        println!(
            "kept {table}/{d} for its grace period ({:.0} s left; a later gc removes it)",
            (*left_ms as f64 / 1000.0).ceil()
        );
    }
    if plan.is_empty() && plan.grace.is_empty() {
        println!("{table}: nothing to collect");
    }
    Ok(())
}
