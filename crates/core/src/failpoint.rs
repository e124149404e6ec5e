//! Named fail points for crash and IO-error tests.
//!
//! Every multi-step write (a migration, `gc`, publishing a loaded or generated table, `--replace`,
//! promote and rollback) calls [`fail_point`] between its steps. In a normal build the call
//! compiles to nothing. Built with the `failpoints` feature (the CLI's integration tests turn it
//! on), the environment variable `DBOPT_FAILPOINT` arms points:
//!
//! ```text
//! DBOPT_FAILPOINT=name[:action][@n][,name[:action][@n]...]
//! ```
//!
//! * `action` is `abort` (the default: the process dies on the spot with SIGABRT, no unwinding,
//!   no destructors, as if killed), `enospc` or `eio` (the call returns that OS error, as a full
//!   disk or a failing device would), or `sleepMS` (the process stalls MS milliseconds, as a
//!   paused or descheduled one would, then goes on).
//! * `@n` fires only on the n-th time the point is reached in this process (1-based); without
//!   it the point fires the first time.
//!
//! [`FAIL_POINTS`] lists every point with the step it interrupts; the crash tests run one
//! process per point and RELIABILITY.md reports them.

/// Every fail point: its name and the step it follows.
pub const FAIL_POINTS: &[(&str, &str)] = &[
    (
        "migrate.unit_written",
        "a unit's files are written and fsynced in staging, its progress not yet recorded",
    ),
    (
        "migrate.unit_uploaded",
        "with DATA_DIR on object storage, a unit's files are verified and uploaded to the layout's prefix with its digest, its progress not yet recorded",
    ),
    (
        "migrate.unit_recorded",
        "a unit's progress is committed in the catalog",
    ),
    (
        "migrate.verified",
        "the staged layout is verified and its manifest written",
    ),
    (
        "migrate.renamed",
        "the staged layout is renamed into place, the catalog commit not yet made",
    ),
    (
        "migrate.uploaded",
        "the verified layout's manifest is uploaded to object storage (DATA_DIR=s3://...), the catalog commit not yet made",
    ),
    (
        "migrate.committed",
        "the layout is committed in the catalog, staging not yet removed",
    ),
    (
        "gc.retired",
        "gc has retired layouts in the catalog, nothing deleted yet",
    ),
    (
        "gc.removed_one",
        "gc has deleted its first staging entry or layout directory",
    ),
    (
        "publish.staged",
        "a loaded or generated table is written and verified in staging",
    ),
    (
        "publish.moved_aside",
        "--replace has moved the old layouts aside, the new one not yet renamed in",
    ),
    (
        "publish.uploaded",
        "the new initial layout is uploaded to object storage, the catalog commit not yet made",
    ),
    (
        "publish.renamed",
        "the new initial layout is renamed into place, the catalog commit not yet made",
    ),
    (
        "publish.committed",
        "the table is committed in the catalog, the old layouts not yet deleted",
    ),
    (
        "serving.before_swap",
        "promote or rollback is about to commit its compare-and-swap",
    ),
    (
        "serving.swapped",
        "promote or rollback has committed, its caller not yet told",
    ),
    (
        "lake.before_commit",
        "a layout's files are placed in a Delta table's directory, the log commit not yet written",
    ),
    (
        "lake.planned",
        "a Delta commit is planned on the table's newest snapshot, its log entry not yet written (where another writer can take its version)",
    ),
    (
        "lake.committed",
        "the Delta log commit is written, the catalog's swap not yet made",
    ),
    (
        "export.files_uploaded",
        "an exported layout's files are uploaded to object storage, its manifest not yet",
    ),
    (
        "exp.staged",
        "an experiment run is written in staging and the store's column types saved, nothing renamed in",
    ),
    (
        "write.file",
        "a Parquet file's footer is about to be written (abort, enospc, eio)",
    ),
    (
        "write.fsync",
        "a written file or directory is about to be fsynced (abort, enospc, eio)",
    ),
];

/// Reaches the named fail point: a no-op unless built with `failpoints` and armed by
/// `DBOPT_FAILPOINT`; then it aborts the process or returns the injected IO error.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn fail_point(_name: &str) -> std::io::Result<()> {
    Ok(())
}

/// Reaches the named fail point: a no-op unless built with `failpoints` and armed by
/// `DBOPT_FAILPOINT`; then it aborts the process or returns the injected IO error.
#[cfg(feature = "failpoints")]
pub fn fail_point(name: &str) -> std::io::Result<()> {
    armed::reach(name)
}

#[cfg(feature = "failpoints")]
mod armed {
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// How many times each point was reached in this process.
    static HITS: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);

    /// One armed point parsed from `DBOPT_FAILPOINT`.
    pub(super) struct Armed<'a> {
        pub name: &'a str,
        pub action: &'a str,
        pub nth: u64,
    }

    /// Parses `name[:action][@n]`.
    pub(super) fn parse(item: &str) -> Armed<'_> {
        let (rest, nth) = match item.rsplit_once('@') {
            Some((r, n)) => (r, n.trim().parse().unwrap_or(1)),
            None => (item, 1),
        };
        let (name, action) = rest.split_once(':').unwrap_or((rest, "abort"));
        Armed {
            name: name.trim(),
            action: action.trim(),
            nth,
        }
    }

    pub(super) fn reach(name: &str) -> std::io::Result<()> {
        debug_assert!(
            super::FAIL_POINTS.iter().any(|(n, _)| *n == name),
            "fail point '{name}' is not listed in FAIL_POINTS"
        );
        let Ok(spec) = std::env::var("DBOPT_FAILPOINT") else {
            return Ok(());
        };
        let hit = {
            let mut guard = HITS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let counts = guard.get_or_insert_with(HashMap::new);
            let n = counts.entry(name.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        for armed in spec.split(',').map(parse) {
            if armed.name != name || armed.nth != hit {
                continue;
            }
            eprintln!("dbopt: fail point {name}: {}", armed.action);
            return match armed.action {
                "enospc" => Err(std::io::Error::from_raw_os_error(28)),
                "eio" => Err(std::io::Error::from_raw_os_error(5)),
                a if a.starts_with("sleep") => {
                    let ms = a["sleep".len()..].parse().unwrap_or(1000);
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    Ok(())
                }
                _ => std::process::abort(),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = FAIL_POINTS.iter().map(|(n, _)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FAIL_POINTS.len());
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn specs_parse() {
        let a = armed::parse("migrate.renamed");
        assert_eq!((a.name, a.action, a.nth), ("migrate.renamed", "abort", 1));
        let b = armed::parse("write.file:enospc@3");
        assert_eq!((b.name, b.action, b.nth), ("write.file", "enospc", 3));
    }

    #[test]
    fn unarmed_points_pass() {
        // No test sets DBOPT_FAILPOINT in this process.
        assert!(fail_point("migrate.renamed").is_ok());
    }
}
