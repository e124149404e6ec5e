//! Publishing a loaded or generated table safely: one writer per table at a time, and a
//! `--replace` that a crash at any step undoes or completes.
//!
//! Guarantees:
//! - A process that loads, generates or replaces a table holds an exclusive lock on
//!   `DATA_DIR/<table>/_dbopt_load.lock` for the whole write; a second writer of the same
//!   table is refused at once, and `gc` leaves that writer's staging alone.
//! - `--replace` first records an intent (`_staging/replace.json`, written atomically) naming
//!   every directory it will move aside, then moves the old layouts aside, renames the new
//!   initial layout in and commits the catalog. Whoever next opens the workspace finds the
//!   intent with its lock free and repairs the table: if the catalog commit happened, the moved
//!   layouts are deleted; if not, the new directory is moved back to staging and the old
//!   layouts are moved back, so the table answers exactly the rows it answered before.

use crate::{DbError, Workspace};
use dbopt_core::layout::MANIFEST_FILE;
use dbopt_core::{LayoutId, TableName};
use dbopt_engine::writer::fsync_dir;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::Path;

/// The lock file a table writer holds.
pub const LOAD_LOCK_FILE: &str = "_dbopt_load.lock";
/// The intent a `--replace` leaves until it is complete.
pub const REPLACE_INTENT_FILE: &str = "replace.json";

/// An exclusive, process-wide lock on writing a table's initial layout (released on drop, and
/// by the OS when the process dies).
#[derive(Debug)]
pub struct TableWriteLock {
    _file: File,
}

/// What a `--replace` is about to do, written before it moves anything.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplaceIntent {
    /// The new layout's `created_at_ms`, which the catalog's table row carries once committed.
    pub created_at_ms: i64,
    /// The staging directory (under `_staging/`) holding the new initial layout.
    pub staging: String,
    /// (directory under the table, name under `_staging/`) for every old layout moved aside.
    pub moves: Vec<(String, String)>,
}

/// What a repair did to a table left by a crashed `--replace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// The catalog commit had happened: the old layouts were deleted.
    Completed,
    /// It had not: the old layouts were put back.
    RolledBack,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> DbError {
    move |e| DbError::io(context, e)
}

impl TableWriteLock {
    /// Takes the write lock of the table whose directory is `table_dir`; `None` when another
    /// live process holds it.
    pub fn try_acquire(table_dir: &Path) -> Result<Option<Self>, DbError> {
        std::fs::create_dir_all(table_dir)
            .map_err(io(format!("creating {}", table_dir.display())))?;
        let path = table_dir.join(LOAD_LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(DbError::io(format!("locking {}", path.display()), e))
            }
        }
    }
}

impl ReplaceIntent {
    /// Writes the intent atomically (temp file, fsync, rename, fsync the directory).
    pub fn write(&self, staging: &Path) -> Result<(), DbError> {
        let text = serde_json::to_string_pretty(self).expect("an intent always serializes");
        let tmp = staging.join(format!("{REPLACE_INTENT_FILE}.tmp"));
        let target = staging.join(REPLACE_INTENT_FILE);
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &target)
        };
        write().map_err(io(format!("writing {}", target.display())))?;
        fsync_dir(staging)?;
        Ok(())
    }

    /// Reads the intent left in `staging`, if any.
    pub fn read(staging: &Path) -> Result<Option<Self>, DbError> {
        let path = staging.join(REPLACE_INTENT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DbError::io(format!("reading {}", path.display()), e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            DbError::BadFile(format!(
                "{} is not a replace intent ({e}): remove it by hand after checking the table's layouts",
                path.display()
            ))
        })
    }

    /// Removes the intent: the replace is finished or undone.
    pub fn remove(staging: &Path) -> Result<(), DbError> {
        let path = staging.join(REPLACE_INTENT_FILE);
        match std::fs::remove_file(&path) {
            Ok(()) => fsync_dir(staging).map_err(DbError::from),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DbError::io(format!("removing {}", path.display()), e)),
        }
    }
}

/// Moves `from` to `to` when `from` exists and `to` does not.
fn move_if_present(from: &Path, to: &Path) -> Result<(), DbError> {
    if from.exists() && !to.exists() {
        std::fs::rename(from, to).map_err(io(format!(
            "moving {} back to {}",
            from.display(),
            to.display()
        )))?;
    }
    Ok(())
}

/// The `created_at_ms` of the manifest in `dir`, if it has a readable one.
fn manifest_created_at(dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join(MANIFEST_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("created_at_ms")?.as_i64()
}

impl Workspace {
    /// Repairs every table a crashed `--replace` left half done (see the module docs); tables
    /// whose writer is still alive are left to it. Called when a workspace opens.
    pub fn repair_interrupted_replaces(&self) -> Result<Vec<(TableName, Repair)>, DbError> {
        let mut repaired = Vec::new();
        let entries = match std::fs::read_dir(self.data_dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(repaired),
            Err(e) => {
                return Err(DbError::io(
                    format!("reading {}", self.data_dir().display()),
                    e,
                ));
            }
        };
        for entry in entries.flatten() {
            let Ok(table) = TableName::new(&entry.file_name().to_string_lossy()) else {
                continue;
            };
            let staging = self.staging_dir(&table);
            if !staging.join(REPLACE_INTENT_FILE).exists() {
                continue;
            }
            let Some(_lock) = TableWriteLock::try_acquire(&self.table_dir(&table))? else {
                continue;
            };
            if let Some(r) = self.repair_replace(&table)? {
                tracing::warn!(table = %table, repair = ?r, "repaired an interrupted --replace");
                repaired.push((table, r));
            }
        }
        Ok(repaired)
    }

    /// Takes `table`'s write lock for writing its initial layout (refused at once when another
    /// process holds it) and repairs a `--replace` an earlier writer left half done.
    pub(crate) fn lock_for_initial_layout(
        &self,
        table: &TableName,
    ) -> Result<TableWriteLock, DbError> {
        let lock = TableWriteLock::try_acquire(&self.table_dir(table))?.ok_or_else(|| {
            DbError::Busy(format!(
                "table '{table}' is being loaded or replaced by another dbopt process: wait for it to finish"
            ))
        })?;
        self.repair_replace(table)?;
        Ok(lock)
    }

    /// Completes or undoes the `--replace` of `table` an intent records; the caller holds the
    /// table's write lock.
    pub(crate) fn repair_replace(&self, table: &TableName) -> Result<Option<Repair>, DbError> {
        let staging = self.staging_dir(table);
        let Some(intent) = ReplaceIntent::read(&staging)? else {
            return Ok(None);
        };
        let table_dir = self.table_dir(table);
        let committed = self
            .catalog()
            .get_table(table)?
            .is_some_and(|t| t.created_at_ms == intent.created_at_ms);
        let repair = if committed {
            for (_, moved) in &intent.moves {
                let p = staging.join(moved);
                if p.exists() {
                    std::fs::remove_dir_all(&p).map_err(io(format!("removing {}", p.display())))?;
                }
            }
            Repair::Completed
        } else {
            let initial = self.layout_dir(table, &LayoutId::initial());
            if manifest_created_at(&initial) == Some(intent.created_at_ms) {
                move_if_present(&initial, &staging.join(&intent.staging))?;
            }
            for (original, moved) in &intent.moves {
                move_if_present(&staging.join(moved), &table_dir.join(original))?;
            }
            fsync_dir(&table_dir)?;
            Repair::RolledBack
        };
        ReplaceIntent::remove(&staging)?;
        Ok(Some(repair))
    }
}
