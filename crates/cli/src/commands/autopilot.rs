//! `dbopt autopilot`: one pass (or a loop of passes) of the whole learning loop for a table.

use super::{interval, next_round, table_name};
use crate::cli::{Format, RepeatArgs};
use crate::output::{Rows, print_rows};
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use dbopt::autopilot::PassReport;
use serde::Serialize;

/// `dbopt autopilot`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt autopilot --table-name events --once
  dbopt autopilot --table-name events --loop --interval-sec 300
  */10 * * * *  dbopt autopilot --table-name events --once     # from cron

A pass: propose and rewrite the best proposal when it pays back within max_payback_runs; give a
query cluster that every live layout serves badly a layout of its own when the bytes it saves
pay for its storage; canary new candidates and promote the best that passes; evaluate the
window and roll back an active layout that regressed for rollback_after_windows windows; retire
layouts beyond max_layouts that no cluster prefers. Every decision is stored with its reason.
One autopilot per table at a time (DATA_DIR/<table>/_autopilot.lock); a second one exits 2.

--format json prints one object per pass on one line (JSON lines with --loop); the README's
JSON output section lists its fields. Decisions also go to stderr as they are made (-q hides
them).")]
pub struct AutopilotArgs {
    /// The table.
    #[arg(long)]
    pub table_name: String,
    /// Once, or every --interval-sec.
    #[command(flatten)]
    pub repeat: RepeatArgs,
    /// Output format of each pass's summary: table, json (one object per pass and line) or
    /// csv (the steps).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `dbopt autopilot --format json`: one pass.
#[derive(Debug, Clone, Serialize)]
pub struct PassJson {
    /// The pass id, shared by the pass's rows in the catalog's decisions.
    pub pass_id: String,
    /// The table.
    pub table: String,
    /// The layout id active after the pass.
    pub active: String,
    /// The steps in the order they ran.
    pub steps: Vec<StepJson>,
}

/// One step of `dbopt autopilot --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct StepJson {
    /// `propose`, `migrate`, `cluster`, `canary`, `promote`, `evaluate`, `rollback` or `retire`.
    pub step: String,
    /// What was decided, e.g. `build`, `keep`, `skipped`, `published`, `promote`, `retired`.
    pub decision: String,
    /// Why, in one sentence.
    pub reason: String,
}

impl From<&PassReport> for PassJson {
    fn from(r: &PassReport) -> Self {
        PassJson {
            pass_id: r.pass_id.clone(),
            table: r.table.clone(),
            active: r.active.to_string(),
            steps: r
                .steps
                .iter()
                .map(|s| StepJson {
                    step: s.step.clone(),
                    decision: s.decision.clone(),
                    reason: s.reason.clone(),
                })
                .collect(),
        }
    }
}

/// Runs `dbopt autopilot`.
pub async fn run(ws: Workspace, args: AutopilotArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let settings = ws.loop_settings()?;
    let pause = interval(&args.repeat, 300.0)?;
    loop {
        let report = ws.autopilot_pass(&table, &settings).await?;
        print_pass(&report, args.format)?;
        if !next_round(&args.repeat, pause).await {
            return Ok(());
        }
    }
}

/// Prints a pass as a table of steps (or one line of JSON).
pub fn print_pass(report: &PassReport, format: Format) -> Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string(&PassJson::from(report))?);
        return Ok(());
    }
    let mut rows = Rows::new(&["step", "decision", "reason"]);
    for s in &report.steps {
        rows.push(vec![s.step.clone(), s.decision.clone(), s.reason.clone()]);
    }
    print_rows(&rows, format);
    println!(
        "{}: active layout {} (pass {})",
        report.table, report.active, report.pass_id
    );
    Ok(())
}
