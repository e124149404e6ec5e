//! `dbopt jobs`: migration jobs with their state, progress, lease and measured cost.

use super::table_name;
use crate::cli::Format;
use crate::output::text_style;
use anyhow::Result;
use clap::{Args, ValueEnum};
use dbopt::Workspace;
use dbopt_catalog::JobStatus;

/// `dbopt jobs`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt jobs
  dbopt jobs --table-name events --state running
  dbopt jobs --state failed --format json")]
pub struct JobsArgs {
    /// Only the jobs of this table [default: every table]
    #[arg(long)]
    pub table_name: Option<String>,
    /// Only jobs in this state [default: every state]
    #[arg(long, value_enum)]
    pub state: Option<StateArg>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// A migration job state.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StateArg {
    /// Waiting for a worker.
    Queued,
    /// Claimed by a worker.
    Running,
    /// Published.
    Done,
    /// Failed for good.
    Failed,
}

impl From<StateArg> for JobStatus {
    fn from(s: StateArg) -> JobStatus {
        match s {
            StateArg::Queued => JobStatus::Queued,
            StateArg::Running => JobStatus::Running,
            StateArg::Done => JobStatus::Done,
            StateArg::Failed => JobStatus::Failed,
        }
    }
}

/// Runs `dbopt jobs`.
pub fn run(ws: Workspace, args: JobsArgs) -> Result<()> {
    let table = args.table_name.as_deref().map(table_name).transpose()?;
    let jobs = ws.jobs(table.as_ref(), args.state.map(JobStatus::from))?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&jobs)?),
        Format::Csv => print!("{}", dbopt_report::jobs_csv(&jobs)),
        Format::Table => print!("{}", dbopt_report::jobs_text(&jobs, text_style())),
    }
    Ok(())
}
