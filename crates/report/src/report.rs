//! The shareable report directory: `summary.md`, CSV and JSON extracts, and SVG charts.
//!
//! [`write_report`] validates the target first and writes nothing when it refuses. It renders
//! every file in memory, writes them into a staging directory beside the target, and only
//! then moves the staging directory into place, so a failure never leaves a half-written
//! report. With `force`, an existing report is moved aside and removed only after the new one
//! is in place.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::ReportBundle;
use crate::{charts, csv_out, summary};

/// File names of the report directory, in the order they are written.
pub const REPORT_FILES: [&str; 9] = [
    "summary.md",
    "layout_eval.csv",
    "layout_eval.json",
    "query_routing_summary.csv",
    "proposals.csv",
    "latency_over_time.svg",
    "bytes_scanned.svg",
    "traffic_share.svg",
    "predicted_vs_measured.svg",
];

/// Staging and set-aside directories created by this process so far.
static SIBLINGS: AtomicU64 = AtomicU64::new(0);

/// How [`write_report`] treats an existing directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportOptions {
    /// Replace an existing non-empty directory.
    pub force: bool,
}

/// Where a report was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenReport {
    /// The report directory, as given.
    pub dir: PathBuf,
    /// Every file written, inside `dir`.
    pub files: Vec<PathBuf>,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The directory exists, holds files, and `force` was not given.
    #[error(
        "report directory '{}' exists and is not empty: choose another --out or pass --force",
        .0.display()
    )]
    DirNotEmpty(PathBuf),
    /// The path exists and is not a directory.
    #[error(
        "report path '{}' exists and is not a directory: choose another --out",
        .0.display()
    )]
    NotADirectory(PathBuf),
    /// Reading or writing the file system failed.
    #[error("cannot write report at '{}': {source}: check the path and permissions", path.display())]
    Io {
        /// The path being read or written.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Drawing a chart failed.
    #[error("cannot draw report chart: {0}: this is a bug, please report it")]
    Chart(String),
}

impl ReportError {
    /// Whether the user can fix this by choosing other arguments (as opposed to an
    /// environment or internal failure).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            ReportError::DirNotEmpty(_) | ReportError::NotADirectory(_)
        )
    }
}

/// Renders `bundle` into the report directory `dir` (see the module docs for the steps).
pub fn write_report(
    dir: &Path,
    bundle: &ReportBundle,
    options: &ReportOptions,
) -> Result<WrittenReport, ReportError> {
    let existing = validate_target(dir, options)?;
    let files = render_files(bundle)?;
    let staging = sibling(dir, "tmp")?;
    write_staging(&staging, &files).inspect_err(|_| remove_quietly(&staging))?;
    move_into_place(&staging, dir, existing).inspect_err(|_| remove_quietly(&staging))?;
    Ok(WrittenReport {
        dir: dir.to_path_buf(),
        files: files.iter().map(|(name, _)| dir.join(name)).collect(),
    })
}

/// What is at the target path before writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    Nothing,
    EmptyDir,
    /// A non-empty directory the caller asked to replace.
    ReplacedDir,
}

fn validate_target(dir: &Path, options: &ReportOptions) -> Result<Existing, ReportError> {
    let metadata = match fs::metadata(dir) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Existing::Nothing),
        Err(source) => return Err(io_error(dir, source)),
    };
    if !metadata.is_dir() {
        return Err(ReportError::NotADirectory(dir.to_path_buf()));
    }
    let mut entries = fs::read_dir(dir).map_err(|source| io_error(dir, source))?;
    match (entries.next().is_some(), options.force) {
        (false, _) => Ok(Existing::EmptyDir),
        (true, true) => Ok(Existing::ReplacedDir),
        (true, false) => Err(ReportError::DirNotEmpty(dir.to_path_buf())),
    }
}

/// Renders every file of the report in memory, in [`REPORT_FILES`] order.
fn render_files(bundle: &ReportBundle) -> Result<Vec<(&'static str, String)>, ReportError> {
    let csv = |name: &str, result: Result<String, csv::Error>| {
        result.map_err(|error| io_error(Path::new(name), io::Error::other(error)))
    };
    let history_json = serde_json::to_string_pretty(&bundle.history)
        .map_err(|error| io_error(Path::new("layout_eval.json"), io::Error::other(error)))?;
    let contents = [
        summary::summary_markdown(bundle),
        csv(
            "layout_eval.csv",
            csv_out::to_csv(csv_out::HISTORY_HEADER, &bundle.history),
        )?,
        history_json + "\n",
        csv(
            "query_routing_summary.csv",
            csv_out::to_csv(csv_out::ROUTING_HEADER, &bundle.routing),
        )?,
        csv(
            "proposals.csv",
            csv_out::to_csv(csv_out::PROPOSALS_HEADER, &bundle.proposals),
        )?,
        charts::latency_over_time(&bundle.queries)?,
        charts::bytes_scanned(&bundle.queries)?,
        charts::traffic_share(&bundle.queries)?,
        charts::predicted_vs_measured(&bundle.proposals)?,
    ];
    Ok(REPORT_FILES.into_iter().zip(contents).collect())
}

/// The path `.{name}.{kind}-{pid}-{n}` beside `dir` (`n` counts calls in this process, so
/// concurrent writers never share one), after removing any stale copy.
fn sibling(dir: &Path, kind: &str) -> Result<PathBuf, ReportError> {
    let absolute = absolute_dir(dir)?;
    let (Some(parent), Some(name)) = (absolute.parent(), absolute.file_name()) else {
        let message = "the report directory needs a name (not a root directory)";
        return Err(io_error(
            dir,
            io::Error::new(io::ErrorKind::InvalidInput, message),
        ));
    };
    fs::create_dir_all(parent).map_err(|source| io_error(parent, source))?;
    let n = SIBLINGS.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let path = parent.join(format!(".{}.{kind}-{pid}-{n}", name.to_string_lossy()));
    if fs::symlink_metadata(&path).is_ok() {
        fs::remove_dir_all(&path).map_err(|source| io_error(&path, source))?;
    }
    Ok(path)
}

/// `dir` made absolute without resolving symlinks; a path ending in `..` is resolved so it
/// has a name.
fn absolute_dir(dir: &Path) -> Result<PathBuf, ReportError> {
    let absolute = std::path::absolute(dir).map_err(|source| io_error(dir, source))?;
    if absolute.file_name().is_some() {
        return Ok(absolute);
    }
    fs::canonicalize(&absolute).map_err(|source| io_error(dir, source))
}

fn write_staging(staging: &Path, files: &[(&str, String)]) -> Result<(), ReportError> {
    fs::create_dir(staging).map_err(|source| io_error(staging, source))?;
    for (name, contents) in files {
        let path = staging.join(name);
        fs::write(&path, contents).map_err(|source| io_error(&path, source))?;
    }
    Ok(())
}

fn move_into_place(staging: &Path, dir: &Path, existing: Existing) -> Result<(), ReportError> {
    match existing {
        Existing::Nothing => rename(staging, dir),
        Existing::EmptyDir => {
            fs::remove_dir(dir).map_err(|source| io_error(dir, source))?;
            rename(staging, dir)
        }
        Existing::ReplacedDir => replace_dir(staging, dir),
    }
}

/// Moves the old report aside, the new one in, then removes the old one; puts the old one
/// back when the new one cannot be moved in.
fn replace_dir(staging: &Path, dir: &Path) -> Result<(), ReportError> {
    let old = sibling(dir, "old")?;
    rename(dir, &old)?;
    if let Err(error) = rename(staging, dir) {
        let _ = fs::rename(&old, dir);
        return Err(error);
    }
    fs::remove_dir_all(&old).map_err(|source| io_error(&old, source))
}

fn rename(from: &Path, to: &Path) -> Result<(), ReportError> {
    fs::rename(from, to).map_err(|source| io_error(to, source))
}

/// Best-effort cleanup after a failure; the original error is the one worth reporting.
fn remove_quietly(path: &Path) {
    let _ = fs::remove_dir_all(path);
}

fn io_error(path: &Path, source: io::Error) -> ReportError {
    ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}
