//! `dbopt apply`: queue the migration a reviewed table spec file asks for.

use super::enqueue_migration::print_report;
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use std::path::PathBuf;

/// `dbopt apply`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt apply --spec tables/events.toml --dry-run
  dbopt apply --spec tables/events.toml

The spec file is what `dbopt propose --pr-dir DIR --git-repo REPO` commits for review:
the table and its [layout] (partition_by, cluster_by, curve, sort_by, row_group_rows,
page_rows, bloom_filter_columns). Once the pull request is merged, applying the merged file
queues the rewrite, so the reviewed file is the source of truth. Unknown keys and columns are
refused with the reason (exit 2); nothing is queued then.")]
pub struct ApplyArgs {
    /// The table spec file (`tables/<table>.toml`).
    #[arg(long)]
    pub spec: PathBuf,
    /// Make the new layout active when published (default: a routed candidate that a canary
    /// must promote).
    #[arg(long)]
    pub activate: bool,
    /// Print the plan without queueing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `dbopt apply`.
pub fn run(ws: Workspace, args: ApplyArgs) -> Result<()> {
    let report = ws.apply_spec(&args.spec, args.activate, args.dry_run)?;
    print_report(&report);
    Ok(())
}
