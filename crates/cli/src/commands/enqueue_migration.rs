//! `dbopt enqueue-migration`: plan a rewrite of a table into a new layout and queue it.

use super::table_name;
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use dbopt::migrate::{EnqueueRequest, SpecSource};
use dbopt::{DbError, Workspace};
use dbopt_catalog::{Enqueued, MigrationMode};
use dbopt_core::{Curve, LayoutSpec, SortKey};

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
    /// A stored proposal id (`dbopt propose` lists them) [default: the best proposal]
    #[arg(long, conflicts_with_all = ["partition_by", "sort_by", "zorder_by", "hilbert_by"])]
    pub proposal: Option<i64>,
    /// Hive partition columns, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub partition_by: Vec<String>,
    /// Sort keys, comma separated; `col:desc` sorts descending.
    #[arg(long, value_delimiter = ',')]
    pub sort_by: Vec<String>,
    /// Cluster on 2-4 columns with a Z-order curve, comma separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "hilbert_by")]
    pub zorder_by: Vec<String>,
    /// Cluster on 2-4 columns with a Hilbert curve, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub hilbert_by: Vec<String>,
    /// Rows per Parquet row group [default: 131072]
    #[arg(long)]
    pub row_group_rows: Option<usize>,
    /// Rows per data page [default: 8192]
    #[arg(long)]
    pub page_rows: Option<usize>,
    /// Columns that get a bloom filter, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub bloom: Vec<String>,
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

/// The spec typed on the command line, or None when no spec flag was given.
fn typed_spec(args: &EnqueueMigrationArgs) -> Result<Option<LayoutSpec>> {
    let mut sort_by = Vec::new();
    for key in &args.sort_by {
        let (column, descending) = match key.rsplit_once(':') {
            Some((c, "desc")) => (c, true),
            Some((c, "asc")) => (c, false),
            Some(_) => bail!(DbError::BadArgument(format!(
                "bad sort key '{key}': use `col`, `col:asc` or `col:desc`"
            ))),
            None => (key.as_str(), false),
        };
        sort_by.push(SortKey {
            column: column.to_string(),
            descending,
        });
    }
    let (cluster_by, curve) = if args.hilbert_by.is_empty() {
        (args.zorder_by.clone(), Curve::ZOrder)
    } else {
        (args.hilbert_by.clone(), Curve::Hilbert)
    };
    let spec = LayoutSpec {
        partition_by: args.partition_by.clone(),
        sort_by,
        cluster_by,
        curve,
        row_group_rows: args.row_group_rows,
        page_rows: args.page_rows,
        bloom_filter_columns: args.bloom.clone(),
    };
    Ok((spec != LayoutSpec::default()).then_some(spec))
}

/// Runs `dbopt enqueue-migration`.
pub fn run(ws: Workspace, args: EnqueueMigrationArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let spec = match (typed_spec(&args)?, args.proposal) {
        (Some(spec), _) => SpecSource::Given(spec),
        (None, Some(id)) => SpecSource::Proposal(id),
        (None, None) => SpecSource::Best,
    };
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
    println!("MigrationPlan");
    for line in report.plan.describe() {
        println!("  {line}");
    }
    match report.enqueued {
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
    Ok(())
}
