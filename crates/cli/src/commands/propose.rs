//! `dbopt propose`: ranked candidate layouts with predicted bytes scanned, reduction, size
//! (compression in the new order) and payback, stored in the catalog.

use super::analyze::since_ms;
use super::table_name;
use crate::cli::Format;
use crate::output::{Rows, human_bytes, print_predicted_vs_measured, print_rows};
use anyhow::Result;
use clap::{Args, ValueEnum};
use dbopt::Workspace;
use dbopt::change::{
    Forge, ForgeTarget, commit_spec, open_pull_request, spec_file_text, write_pr_dir,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `dbopt propose`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt propose --table-name events
  dbopt propose --table-name events --top 3 --explain
  dbopt propose --table-name events --format json
  dbopt propose --table-name events --pr-dir ./pr
  dbopt propose --table-name events --pr-dir ./pr --git-repo ../data-platform --open-pr github

--pr-dir writes a reviewable change for the best recommended proposal: PR.md (the spec
delta, expected scan reduction, size and payback, the query clusters it serves, the canary
verdict when one ran, how to apply and roll back), proposal.json and tables/<table>.toml.
--git-repo also commits tables/<table>.toml on a new branch <prefix><table>-<layout> of that
repository, with the PR text as the commit message (the checkout itself is not touched);
`dbopt apply --spec tables/<table>.toml` queues the rewrite once it is merged. --open-pr
pushes the branch to --remote and opens the pull request: GitHub with GITHUB_TOKEN and
GITHUB_REPOSITORY (owner/name; GITHUB_API_URL for GitHub Enterprise), GitLab with
GITLAB_TOKEN and GITLAB_PROJECT (GITLAB_API_URL for a self-hosted instance).")]
pub struct ProposeArgs {
    /// The table to propose layouts for.
    #[arg(long)]
    pub table_name: String,
    /// How many ranked candidates to print (all are stored).
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Print the reasons for each candidate.
    #[arg(long)]
    pub explain: bool,
    /// Only queries logged within this long ago, e.g. 24h or 7d [default: all]
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write PR.md, proposal.json and tables/<table>.toml for the best proposal here.
    #[arg(long, value_name = "DIR")]
    pub pr_dir: Option<PathBuf>,
    /// Write the change of this stored proposal instead of this run's best (e.g. one a
    /// canary has already proven).
    #[arg(long, value_name = "ID", requires = "pr_dir")]
    pub pr_proposal: Option<i64>,
    /// Also commit tables/<table>.toml on a new branch of this git repository.
    #[arg(long, value_name = "PATH", requires = "pr_dir")]
    pub git_repo: Option<PathBuf>,
    /// Prefix of the new branch's name.
    #[arg(long, default_value = "dbopt/", requires = "git_repo")]
    pub branch_prefix: String,
    /// Branch the new one starts from and the pull request targets [default: the
    /// repository's current branch]
    #[arg(long, requires = "git_repo")]
    pub base: Option<String>,
    /// Push the branch and open the pull request on this forge.
    #[arg(long, value_enum, requires = "git_repo")]
    pub open_pr: Option<ForgeArg>,
    /// Remote the branch is pushed to for --open-pr.
    #[arg(long, default_value = "origin", requires = "open_pr")]
    pub remote: String,
}

/// `--open-pr`: the forge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ForgeArg {
    /// GitHub or GitHub Enterprise.
    Github,
    /// GitLab.
    Gitlab,
}

/// Runs `dbopt propose`.
pub async fn run(ws: Workspace, args: ProposeArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let since = since_ms(&ws, args.since.as_deref())?;
    let mut outcome = ws.propose_layouts(&table, since, None).await?;
    if let Some(dir) = &args.pr_dir {
        let best = args.pr_proposal.or_else(|| {
            outcome
                .proposals
                .iter()
                .find(|s| s.proposal.recommended && !s.proposal.is_current)
                .map(|s| s.id)
        });
        match best {
            Some(id) => write_change(&ws, &table, id, dir, &args)?,
            None => eprintln!(
                "no change to propose for {table}: no candidate other than the current layout is recommended; nothing written to {}",
                dir.display()
            ),
        }
    }
    outcome.proposals.truncate(args.top.max(1));
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
        return Ok(());
    }
    println!(
        "{}: {} queries analyzed ({} skipped), sample of {} rows, run {}",
        outcome.table,
        outcome.queries_analyzed,
        outcome.queries_skipped,
        outcome.sample_rows,
        outcome.run_id
    );
    if let Some(c) = &outcome.calibration {
        println!(
            "model check on the current layout: predicted {} vs measured {} over {} queries ({:.2}x)",
            human_bytes(c.predicted_bytes as u64),
            human_bytes(c.measured_bytes),
            c.queries,
            c.ratio
        );
    }
    println!();
    let mut rows = Rows::new(&[
        "rank",
        "id",
        "layout",
        "predicted scan",
        "reduction",
        "files",
        "row groups",
        "size",
        "payback runs",
        "recommended",
    ]);
    for s in &outcome.proposals {
        let p = &s.proposal;
        rows.push(vec![
            p.rank.to_string(),
            s.id.to_string(),
            p.description.clone(),
            human_bytes(p.predicted.bytes_scanned as u64),
            format!("{:.0}%", p.predicted_reduction * 100.0),
            format!("{:.0}", p.predicted.files_read),
            format!("{:.0}", p.predicted.row_groups_read),
            human_bytes(p.predicted.size_bytes.round() as u64),
            p.payback_runs
                .map_or("-".to_string(), |r| format!("{r:.2}")),
            if p.recommended { "yes" } else { "no" }.to_string(),
        ]);
    }
    print_rows(&rows, args.format);
    if args.explain {
        print_checked_predictions(&ws, &table, args.format)?;
        for s in &outcome.proposals {
            let p = &s.proposal;
            println!(
                "\n#{} {} (layout {}):",
                p.rank, p.description, p.target_layout
            );
            if !p.spec_change.is_empty() {
                println!("  change: {}", p.spec_change.join("; "));
            }
            for r in &p.reasons {
                println!("  - {r}");
            }
        }
    }
    Ok(())
}

/// Earlier proposals whose layouts were built and measured by a canary: predicted beside
/// measured.
fn print_checked_predictions(
    ws: &Workspace,
    table: &dbopt_core::TableName,
    format: Format,
) -> Result<()> {
    let checked = ws.catalog().measured_proposals(table)?;
    if !checked.is_empty() {
        println!("\nearlier predictions checked by a canary:");
        print_predicted_vs_measured(&checked, format);
    }
    Ok(())
}

/// `--pr-dir` (and `--git-repo`, `--open-pr`): the reviewable change of proposal `id`.
fn write_change(
    ws: &Workspace,
    table: &dbopt_core::TableName,
    id: i64,
    dir: &std::path::Path,
    args: &ProposeArgs,
) -> Result<()> {
    // The forge's credentials are checked before anything is written.
    let target = match args.open_pr {
        Some(forge) => {
            let forge = match forge {
                ForgeArg::Github => Forge::Github,
                ForgeArg::Gitlab => Forge::Gitlab,
            };
            let env: BTreeMap<String, String> = std::env::vars().collect();
            Some(ForgeTarget::from_env(forge, &env)?)
        }
        None => None,
    };
    let (request, record) = ws.change_request(table, id)?;
    let files = write_pr_dir(dir, &request, &record)?;
    eprintln!(
        "wrote {}, {} and {}",
        files.pr_md.display(),
        files.proposal_json.display(),
        files.spec_file.display()
    );
    let Some(repo) = &args.git_repo else {
        return Ok(());
    };

    let message = format!("{}\n\n{}", request.title(), request.markdown());
    let commit = commit_spec(
        repo,
        &args.branch_prefix,
        args.base.as_deref(),
        table,
        record.proposal.target_layout.as_str(),
        &spec_file_text(table, &record.proposal.spec, Some(record.id)),
        &message,
    )?;
    eprintln!(
        "committed tables/{table}.toml on branch {} (from {}) as {}",
        commit.branch,
        commit.base,
        &commit.commit[..commit.commit.len().min(12)]
    );
    if let Some(target) = &target {
        let url = open_pull_request(target, repo, &args.remote, &commit, &request)?;
        eprintln!("opened {url}");
    }
    Ok(())
}
