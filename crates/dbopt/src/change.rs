//! Reviewable layout changes: a proposal as a pull request.
//!
//! Steps, each usable alone: [`Workspace::change_request`] turns a stored proposal into the
//! model of `PR.md` (spec delta, predicted figures, clusters served, canary verdict);
//! [`write_pr_dir`] writes `PR.md` and `proposal.json`; [`spec_file_text`] is the declarative
//! `tables/<table>.toml` a team keeps in git, which [`commit_spec`] commits on a new branch
//! (through a temporary worktree, so the user's checkout is never touched) and
//! [`Workspace::apply_spec`] turns back into a queued migration once merged;
//! [`open_pull_request`] pushes the branch and opens the pull request on GitHub or GitLab.
//!
//! Guarantees: a path that is not a git repository, a branch that exists, a spec file with
//! unknown keys or columns, or a missing forge token is a one-line error (exit code 2) and
//! nothing is committed or queued; a commit that fails half-way removes its branch.

use crate::fetch::{TextFailure, TextRequest, request_text};
use crate::migrate::{EnqueueReport, EnqueueRequest, SpecSource};
use crate::{DbError, Workspace};
use dbopt_catalog::{MigrationMode, ProposalRecord};
use dbopt_core::{Curve, LayoutSpec, SortKey, TableName};
use dbopt_report::{CanaryLine, ChangeRequest, ClusterChange};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The declarative spec file of one table, as kept in a repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpecFile {
    /// The managed table.
    pub table: String,
    /// The proposal it came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<i64>,
    /// The layout.
    pub layout: LayoutSection,
}

/// The `[layout]` section of a spec file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutSection {
    /// Hive partition columns, outermost first.
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// Columns clustered with a space-filling curve (2 to 4).
    #[serde(default)]
    pub cluster_by: Vec<String>,
    /// `zorder` or `hilbert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
    /// Sort keys, `col` or `col:desc`.
    #[serde(default)]
    pub sort_by: Vec<String>,
    /// Rows per row group (writer default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_group_rows: Option<usize>,
    /// Rows per data page (writer default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_rows: Option<usize>,
    /// Columns with a bloom filter.
    #[serde(default)]
    pub bloom_filter_columns: Vec<String>,
}

impl LayoutSection {
    /// The section of `spec`.
    pub fn of(spec: &LayoutSpec) -> LayoutSection {
        LayoutSection {
            partition_by: spec.partition_by.clone(),
            cluster_by: spec.cluster_by.clone(),
            curve: (!spec.cluster_by.is_empty()).then(|| {
                match spec.curve {
                    Curve::ZOrder => "zorder",
                    Curve::Hilbert => "hilbert",
                }
                .to_string()
            }),
            sort_by: spec
                .sort_by
                .iter()
                .map(|k| {
                    if k.descending {
                        format!("{}:desc", k.column)
                    } else {
                        k.column.clone()
                    }
                })
                .collect(),
            row_group_rows: spec.row_group_rows,
            page_rows: spec.page_rows,
            bloom_filter_columns: spec.bloom_filter_columns.clone(),
        }
    }

    /// The layout spec this section describes.
    pub fn spec(&self) -> Result<LayoutSpec, String> {
        let curve = match self.curve.as_deref() {
            None | Some("zorder") => Curve::ZOrder,
            Some("hilbert") => Curve::Hilbert,
            Some(other) => return Err(format!("curve '{other}': use zorder or hilbert")),
        };
        let sort_by = self
            .sort_by
            .iter()
            .map(|key| SortKey::parse(key))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LayoutSpec {
            partition_by: self.partition_by.clone(),
            sort_by,
            cluster_by: self.cluster_by.clone(),
            curve,
            row_group_rows: self.row_group_rows,
            page_rows: self.page_rows,
            bloom_filter_columns: self.bloom_filter_columns.clone(),
        })
    }
}

/// The text of `tables/<table>.toml` for `spec`, with a header saying how to use it.
pub fn spec_file_text(table: &TableName, spec: &LayoutSpec, proposal: Option<i64>) -> String {
    let file = TableSpecFile {
        table: table.to_string(),
        proposal,
        layout: LayoutSection::of(spec),
    };
    let body = toml::to_string(&file).unwrap_or_default();
    format!(
        "# The physical layout of table `{table}`, managed by dbopt.\n# Apply after review: dbopt apply --spec tables/{table}.toml\n{body}"
    )
}

/// Reads a spec file: its table and layout (unknown keys are an error naming them).
pub fn read_spec_file(path: &Path) -> Result<(TableName, LayoutSpec), DbError> {
    let text = crate::workload_file::read_user_file(path, "spec file")?;
    let file: TableSpecFile = toml::from_str(&text).map_err(|e| {
        DbError::BadFile(format!(
            "{}: {}",
            path.display(),
            dbopt_core::text::one_line(&e.to_string())
        ))
    })?;
    let table = TableName::new(&file.table).map_err(DbError::from)?;
    let spec = file
        .layout
        .spec()
        .map_err(|e| DbError::BadFile(format!("{}: {e}", path.display())))?;
    Ok((table, spec))
}

/// The files a pull request directory holds.
#[derive(Debug, Clone, Serialize)]
pub struct PrFiles {
    /// `PR.md`.
    pub pr_md: PathBuf,
    /// `proposal.json`.
    pub proposal_json: PathBuf,
    /// `tables/<table>.toml`.
    pub spec_file: PathBuf,
}

/// Writes `PR.md`, `proposal.json` and `tables/<table>.toml` into `dir` (created if needed).
pub fn write_pr_dir(
    dir: &Path,
    request: &ChangeRequest,
    record: &ProposalRecord,
) -> Result<PrFiles, DbError> {
    let io = |what: &str, e: std::io::Error| {
        DbError::io(format!("writing {what} in {}", dir.display()), e)
    };
    let spec_dir = dir.join("tables");
    std::fs::create_dir_all(&spec_dir).map_err(|e| io("tables/", e))?;
    let files = PrFiles {
        pr_md: dir.join("PR.md"),
        proposal_json: dir.join("proposal.json"),
        spec_file: spec_dir.join(format!("{}.toml", record.table)),
    };
    std::fs::write(&files.pr_md, request.markdown()).map_err(|e| io("PR.md", e))?;
    let json = serde_json::json!({ "change": request, "proposal": record });
    std::fs::write(
        &files.proposal_json,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .map_err(|e| io("proposal.json", e))?;
    std::fs::write(
        &files.spec_file,
        spec_file_text(&record.table, &record.proposal.spec, Some(record.id)),
    )
    .map_err(|e| io("the spec file", e))?;
    Ok(files)
}

impl Workspace {
    /// The change request of stored proposal `id`: its spec delta against the current
    /// layout, predicted figures, clusters served and the layout's canary, if one ran.
    pub fn change_request(
        &self,
        table: &TableName,
        id: i64,
    ) -> Result<(ChangeRequest, ProposalRecord), DbError> {
        let record = self
            .catalog()
            .get_proposal(id)?
            .ok_or_else(|| DbError::UnknownProposal {
                id,
                table: table.to_string(),
            })?;
        if &record.table != table {
            return Err(DbError::ProposalOfOtherTable {
                id,
                table: table.to_string(),
                owner: record.table.to_string(),
            });
        }
        let p = &record.proposal;
        let current_spec = self.layout_manifest(table, &p.source_layout)?.spec;
        let current_size = self
            .catalog()
            .get_layout(table, &p.source_layout)?
            .map_or(0, |l| l.total_bytes);
        let detail: Option<dbopt_propose::Proposal> = serde_json::from_str(&p.detail_json).ok();
        let mut clusters: Vec<ClusterChange> = detail
            .map(|d| d.clusters)
            .unwrap_or_default()
            .into_iter()
            .map(|c| ClusterChange {
                cluster_id: c.cluster_id,
                current_bytes: c.current_bytes,
                predicted_bytes: c.predicted_bytes,
            })
            .collect();
        clusters.sort_by(|a, b| {
            (b.current_bytes - b.predicted_bytes).total_cmp(&(a.current_bytes - a.predicted_bytes))
        });
        let canary = self
            .catalog()
            .latest_canary(table, &p.target_layout)?
            .map(|c| CanaryLine {
                verdict: format!("{:?}", c.canary.verdict).to_lowercase(),
                queries: c.canary.summary.queries,
                mismatches: c.canary.summary.mismatches,
                reduction: c.canary.summary.reduction,
                latency_change: c.canary.summary.latency_change,
                reason: c.canary.reason.clone(),
            });
        let request = ChangeRequest {
            table: table.to_string(),
            proposal_id: record.id,
            target_layout: p.target_layout.to_string(),
            current: current_spec.describe(),
            proposed: p.description.clone(),
            delta: current_spec
                .delta(&p.spec)
                .iter()
                .map(ToString::to_string)
                .collect(),
            queries_analyzed: p.queries,
            current_bytes: p.current_bytes,
            predicted_bytes: p.predicted_bytes,
            predicted_reduction: p.predicted_reduction,
            current_size_bytes: current_size,
            predicted_size_bytes: p.rewrite_write_bytes,
            payback_runs: p.payback_runs,
            reasons: p.reasons.clone(),
            clusters,
            canary,
            spec_path: format!("tables/{table}.toml"),
        };
        Ok((request, record))
    }

    /// Queues the migration a reviewed spec file asks for (`dbopt apply`).
    pub fn apply_spec(
        &self,
        path: &Path,
        activate: bool,
        dry_run: bool,
    ) -> Result<EnqueueReport, DbError> {
        let (table, spec) = read_spec_file(path)?;
        self.enqueue_migration(&EnqueueRequest {
            table,
            spec: SpecSource::Given(spec),
            mode: MigrationMode::Full,
            batch_files: None,
            rows_per_file: None,
            activate,
            dry_run,
        })
    }
}

/// A commit of a spec file on a new branch.
#[derive(Debug, Clone, Serialize)]
pub struct SpecCommit {
    /// The new branch.
    pub branch: String,
    /// The branch it starts from.
    pub base: String,
    /// The commit id.
    pub commit: String,
}

/// Runs `git` with `args` in `dir`; its trimmed stdout, or its first error line.
fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        // git's first line is often only context (`To <remote>`): keep every line.
        Err(dbopt_core::text::one_line(
            String::from_utf8_lossy(&out.stderr).trim(),
        ))
    }
}

/// Commits `text` as `tables/<table>.toml` on a new branch `<prefix><table>-<layout>` of the
/// repository at `repo`, starting from `base` (its current branch when None), with `message`
/// as the commit message. The user's checkout and index are not touched.
pub fn commit_spec(
    repo: &Path,
    prefix: &str,
    base: Option<&str>,
    table: &TableName,
    layout_tag: &str,
    text: &str,
    message: &str,
) -> Result<SpecCommit, DbError> {
    let bad = |why: String| DbError::BadArgument(format!("--git-repo {}: {why}", repo.display()));
    git(repo, &["rev-parse", "--show-toplevel"]).map_err(|e| {
        bad(format!(
            "not a git repository ({e}); give the path of a clone"
        ))
    })?;
    let base = match base {
        Some(b) => b.to_string(),
        None => git(repo, &["symbolic-ref", "--short", "HEAD"])
            .map_err(|_| bad("HEAD is not on a branch; pass --base".into()))?,
    };
    git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{base}^{{commit}}"),
        ],
    )
    .map_err(|_| bad(format!("base branch '{base}' has no commit")))?;
    let short: String = layout_tag.chars().take(8).collect();
    let branch = format!("{prefix}{table}-{short}");
    if git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
    )
    .is_ok()
    {
        return Err(bad(format!(
            "branch '{branch}' exists: review or delete it, or pass another --branch-prefix"
        )));
    }
    let work = tempfile::Builder::new()
        .prefix("dbopt-pr-")
        .tempdir()
        .map_err(|e| DbError::io("creating a temporary worktree", e))?;
    let tree = work.path().join("tree");
    let tree_arg = tree.display().to_string();
    git(
        repo,
        &["worktree", "add", "-q", "-b", &branch, &tree_arg, &base],
    )
    .map_err(|e| DbError::Internal(format!("git worktree add: {e}")))?;
    let committed = write_and_commit(&tree, table, text, message);
    let _ = git(repo, &["worktree", "remove", "--force", &tree_arg]);
    match committed {
        Ok(commit) => Ok(SpecCommit {
            branch,
            base,
            commit,
        }),
        Err(e) => {
            let _ = git(repo, &["branch", "-D", &branch]);
            Err(DbError::Internal(format!("committing the spec file: {e}")))
        }
    }
}

fn write_and_commit(
    tree: &Path,
    table: &TableName,
    text: &str,
    message: &str,
) -> Result<String, String> {
    let rel = format!("tables/{table}.toml");
    std::fs::create_dir_all(tree.join("tables")).map_err(|e| e.to_string())?;
    std::fs::write(tree.join(&rel), text).map_err(|e| e.to_string())?;
    git(tree, &["add", &rel])?;
    let message_file = tree.join(".git-dbopt-message");
    std::fs::write(&message_file, message).map_err(|e| e.to_string())?;
    let file_arg = message_file.display().to_string();
    let mut args = Vec::new();
    // A repository without an identity still gets a commit, authored by dbopt.
    if git(tree, &["config", "user.email"]).is_err() {
        args.extend(["-c", "user.name=dbopt", "-c", "user.email=dbopt@localhost"]);
    }
    args.extend(["commit", "-q", "-F", &file_arg]);
    let result = git(tree, &args);
    let _ = std::fs::remove_file(&message_file);
    result?;
    git(tree, &["rev-parse", "HEAD"])
}

/// Where a pull request is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    /// GitHub (`GITHUB_TOKEN`, `GITHUB_REPOSITORY`, `GITHUB_API_URL`).
    Github,
    /// GitLab (`GITLAB_TOKEN`, `GITLAB_PROJECT`, `GITLAB_API_URL`).
    Gitlab,
}

/// A forge's API address and credentials, read from the environment before anything is
/// committed (a missing token must not leave a branch behind).
#[derive(Debug, Clone)]
pub struct ForgeTarget {
    forge: Forge,
    /// The endpoint that creates pull (merge) requests.
    url: String,
    /// The authentication header.
    auth: (String, String),
}

impl ForgeTarget {
    /// The target of `forge` from `env`: token, repository or project, API address.
    pub fn from_env(forge: Forge, env: &BTreeMap<String, String>) -> Result<ForgeTarget, DbError> {
        let need = |key: &str, what: &str| {
            env.get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| {
                    DbError::BadArgument(format!(
                        "--open-pr: {key} is not set; export {what} (nothing was committed)"
                    ))
                })
        };
        let api = |key: &str, default: &str| {
            env.get(key)
                .cloned()
                .unwrap_or_else(|| default.to_string())
                .trim_end_matches('/')
                .to_string()
        };
        Ok(match forge {
            Forge::Github => {
                let token = need("GITHUB_TOKEN", "a token that may open pull requests")?;
                let repository = need("GITHUB_REPOSITORY", "owner/name of the repository")?;
                ForgeTarget {
                    forge,
                    url: format!(
                        "{}/repos/{repository}/pulls",
                        api("GITHUB_API_URL", "https://api.github.com")
                    ),
                    auth: ("Authorization".into(), format!("Bearer {token}")),
                }
            }
            Forge::Gitlab => {
                let token = need("GITLAB_TOKEN", "a token with the api scope")?;
                let project = need("GITLAB_PROJECT", "the project id or group/name path")?;
                ForgeTarget {
                    forge,
                    url: format!(
                        "{}/projects/{}/merge_requests",
                        api("GITLAB_API_URL", "https://gitlab.com/api/v4"),
                        project.replace('/', "%2F")
                    ),
                    auth: ("PRIVATE-TOKEN".into(), token),
                }
            }
        })
    }
}

/// Pushes `commit.branch` to `remote` and opens a pull (merge) request for it on `target`;
/// returns its web address.
pub fn open_pull_request(
    target: &ForgeTarget,
    repo: &Path,
    remote: &str,
    commit: &SpecCommit,
    request: &ChangeRequest,
) -> Result<String, DbError> {
    let url = target.url.clone();
    let (body, link) = match target.forge {
        Forge::Github => (
            serde_json::json!({
                "title": request.title(),
                "head": commit.branch,
                "base": commit.base,
                "body": request.markdown(),
            }),
            "html_url",
        ),
        Forge::Gitlab => (
            serde_json::json!({
                "title": request.title(),
                "source_branch": commit.branch,
                "target_branch": commit.base,
                "description": request.markdown(),
            }),
            "web_url",
        ),
    };
    let mut headers = vec![target.auth.clone()];
    if target.forge == Forge::Github {
        headers.push(("Accept".into(), "application/vnd.github+json".into()));
    }
    git(repo, &["push", "-q", remote, &commit.branch])
        .map_err(|e| DbError::BadArgument(format!("pushing {} to {remote}: {e}", commit.branch)))?;
    headers.push(("Content-Type".to_string(), "application/json".to_string()));
    headers.push(("User-Agent".to_string(), "dbopt".to_string()));
    let (status, answer) = request_text(&TextRequest {
        body: Some(body.to_string()),
        url: url.clone(),
        headers,
        timeout: Duration::from_secs(30),
    })
    .map_err(|f| match f {
        TextFailure::Unreachable(e) => DbError::BadArgument(format!("cannot reach {url}: {e}")),
        TextFailure::TimedOut(e) | TextFailure::Broken(e) => {
            DbError::Network(format!("{url}: {e}"))
        }
    })?;
    if !(200..300).contains(&status) {
        let text = format!(
            "the forge refused the pull request (HTTP {status}): {}",
            dbopt_core::text::first_line(answer.trim())
        );
        return Err(if (400..500).contains(&status) {
            DbError::BadArgument(text)
        } else {
            DbError::Network(text)
        });
    }
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
    Ok(answer
        .get(link)
        .and_then(|v| v.as_str())
        .unwrap_or(&url)
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_files_round_trip_and_refuse_unknown_keys() {
        let spec = LayoutSpec {
            partition_by: vec!["country".into()],
            cluster_by: vec!["a".into(), "b".into()],
            curve: Curve::Hilbert,
            sort_by: vec![SortKey {
                column: "ts".into(),
                descending: true,
            }],
            row_group_rows: Some(65_536),
            page_rows: None,
            bloom_filter_columns: vec!["user_id".into()],
        };
        let table = TableName::new("events").unwrap();
        let text = spec_file_text(&table, &spec, Some(3));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.toml");
        std::fs::write(&path, &text).unwrap();
        let (t, back) = read_spec_file(&path).unwrap();
        assert_eq!((t.as_str(), back), ("events", spec));
        std::fs::write(
            &path,
            text.replace("page_rows", "pages")
                .replace("row_group_rows", "rows_per_group"),
        )
        .unwrap();
        let err = read_spec_file(&path).unwrap_err().to_string();
        assert!(err.contains("unknown field `rows_per_group`"), "{err}");
        std::fs::write(&path, "table = \"events\"\n[layout]\ncurve = \"peano\"\n").unwrap();
        assert!(
            read_spec_file(&path)
                .unwrap_err()
                .to_string()
                .contains("curve 'peano'")
        );
    }
}
