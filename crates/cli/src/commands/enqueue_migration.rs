//! `dbopt enqueue-migration`: plan a rewrite of a table into a new layout and queue it.

use super::spec_flags::SpecFlags;
use super::table_name;
use anyhow::Result;
use clap::{Args, ValueEnum};
use dbopt::Workspace;
use dbopt::migrate::EnqueueRequest;
use dbopt_catalog::{Enqueued, MigrationMode};

/// Full or incremental rewrite.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum ModeArg {
    /// One unit over every source file (one global sort).
    #[default]
    Full,
    /// Units of --batch-files source files; a restart resumes after the last finished unit.
    Incremental,
}

/// `dbopt enqueue-migration`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt enqueue-migration --table-name events --sort-by event_date,customer_id --row-group-rows 65536
  dbopt enqueue-migration --table-name events --partition-by country --zorder-by user_id,event_ts --dry-run
  dbopt enqueue-migration --table-name events --mode incremental --batch-files 2 --sort-by event_ts
  dbopt enqueue-migration --table-name events               # the best stored proposal
  dbopt enqueue-migration --table-name events --proposal 12")]
pub struct EnqueueMigrationArgs {
    /// The table.
    #[arg(long)]
    pub table_name: String,
    /// Full or incremental.
    #[arg(long, value_enum, default_value_t = ModeArg::Full)]
    pub mode: ModeArg,
    /// The target layout.
    #[command(flatten)]
    pub spec: SpecFlags,
    /// Source files per unit in incremental mode.
    #[arg(long, default_value_t = 4)]
    pub batch_files: usize,
    /// Rows per output file before rolling to the next [default: 4194304]
    #[arg(long)]
    pub rows_per_file: Option<u64>,
    /// Make the new layout active when it is published (if the layout it was planned from is
    /// still active); by default it is published as a routed candidate that a canary must
    /// promote.
    #[arg(long)]
    pub activate: bool,
    /// Publish as a candidate (the default; kept for older scripts).
    #[arg(long, hide = true, conflicts_with = "activate")]
    pub no_activate: bool,
    /// Print the plan without queueing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `dbopt enqueue-migration`.
pub fn run(ws: Workspace, args: EnqueueMigrationArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let spec = args.spec.source()?;
    let req = EnqueueRequest {
        table,
        spec,
        mode: match args.mode {
            ModeArg::Full => MigrationMode::Full,
            ModeArg::Incremental => MigrationMode::Incremental,
        },
        batch_files: Some(args.batch_files),
        rows_per_file: args.rows_per_file,
        activate: args.activate,
        dry_run: args.dry_run,
    };
    let report = ws.enqueue_migration(&req)?;
    print_report(&report);
    Ok(())
}

/// Prints a migration plan and what the queue did with it.
pub fn print_report(report: &dbopt::migrate::EnqueueReport) {
    println!("MigrationPlan");
    for line in report.plan.describe() {
        println!("  {line}");
    }
    match &report.enqueued {
        None => println!("dry run: nothing queued"),
        Some(Enqueued::New(job)) => println!(
            "queued job {} for layout {}: run `dbopt migration-worker`",
            job.id, job.target_layout
        ),
        Some(Enqueued::Requeued(job)) => println!(
            "job {} for layout {} had failed and is queued again",
            job.id, job.target_layout
        ),
        Some(Enqueued::Existing(job)) => println!(
            "layout {} is already queued as job {} ({}): nothing to do",
            job.target_layout, job.id, job.status
        ),
    }
}
