//! Garbage collection through the facade: lists what a table's directory holds, plans with
//! `dbopt_migrate::plan_gc`, retires layouts that are not kept and deletes what the plan says.
//! A layout that left service less than `gc_grace` ago keeps its directory (queries that
//! resolved it may still read it); see `dbopt_migrate::gc` for the rule.

use crate::error::fail_point;
use crate::table_lock::{REPLACE_INTENT_FILE, TableWriteLock};
use crate::{DbError, Workspace};
use dbopt_catalog::LayoutStatus;
use dbopt_core::TableName;
use dbopt_migrate::{GcInput, GcPlan, plan_gc};

/// Lists entry names in `dir` (empty when it does not exist).
fn entry_names(dir: &std::path::Path, dirs_only: bool) -> Result<Vec<String>, DbError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(DbError::io(format!("reading {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        if dirs_only && !entry.path().is_dir() {
            continue;
        }
        out.push(entry.file_name().to_string_lossy().to_string());
    }
    out.sort();
    Ok(out)
}

impl Workspace {
    /// The configured gc grace period (`gc_grace`) in ms.
    pub fn gc_grace_ms(&self) -> i64 {
        self.config().gc_grace_ms()
    }

    /// Plans gc of `table`, keeping `keep` ready inactive layouts and the files of layouts out
    /// of service for less than the configured `gc_grace`; deletes unless `dry_run`.
    pub fn gc_table(
        &self,
        table: &TableName,
        keep: usize,
        dry_run: bool,
    ) -> Result<GcPlan, DbError> {
        let grace_ms = self.gc_grace_ms();
        self.gc_table_with_grace(table, keep, grace_ms, dry_run)
    }

    /// `gc_table` with an explicit grace period in ms (0: remove at once what is not kept).
    #[tracing::instrument(name = "gc", skip_all, fields(table = %table, keep, grace_ms, dry_run))]
    pub fn gc_table_with_grace(
        &self,
        table: &TableName,
        keep: usize,
        grace_ms: i64,
        dry_run: bool,
    ) -> Result<GcPlan, DbError> {
        let record = self.require_table(table)?;
        let staging_dir = self.staging_dir(table);
        // Holding the table's write lock keeps a load or replace from starting meanwhile; when
        // another process holds it, its staging, intent and moved-aside layouts are left alone.
        let lock = TableWriteLock::try_acquire(&self.table_dir(table))?;
        if lock.is_some() && !dry_run {
            self.repair_replace(table)?;
        }
        let writer_alive = lock.is_none();
        let staging: Vec<String> = entry_names(&staging_dir, false)?
            .into_iter()
            .filter(|n| {
                !(writer_alive
                    && (n.starts_with("initial-")
                        || n.starts_with("trash-")
                        || n.starts_with(REPLACE_INTENT_FILE)))
            })
            .collect();
        let layout_dirs: Vec<String> = self
            .layout_dir_names(table)?
            .into_iter()
            .filter(|d| d.starts_with("layout_"))
            .collect();
        let layouts = self.catalog().list_layouts(table)?;
        let jobs = self.catalog().list_jobs(Some(table))?;
        let out_of_service_since = self.catalog().out_of_service_since(table)?;
        let plan = plan_gc(&GcInput {
            staging_entries: &staging,
            layout_dirs: &layout_dirs,
            layouts: &layouts,
            active: &record.active_layout,
            jobs: &jobs,
            keep,
            out_of_service_since: &out_of_service_since,
            now_ms: self.clock().now_ms(),
            grace_ms: grace_ms.max(0),
        });
        if dry_run {
            return Ok(plan);
        }
        for id in &plan.retire {
            // Refused (Conflict) if it became active meanwhile; then it is simply kept.
            if self
                .catalog()
                .set_layout_status(table, id, LayoutStatus::Retired)
                .is_err()
            {
                continue;
            }
        }
        fail_point("gc.retired")?;
        let mut removed = 0;
        for name in &plan.remove_staging {
            let p = staging_dir.join(name);
            let res = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            res.map_err(|e| DbError::io(format!("removing {}", p.display()), e))?;
            removed += 1;
            if removed == 1 {
                fail_point("gc.removed_one")?;
            }
        }
        let active_now = self.require_table(table)?.active_layout;
        let active_dir = match self.catalog().get_layout(table, &active_now)? {
            Some(record) => record.path.rsplit('/').next().map(String::from),
            None => Some(active_now.dir_name()),
        };
        for (name, _) in &plan.remove_layout_dirs {
            if Some(name) == active_dir.as_ref() {
                continue;
            }
            self.remove_layout_dir(table, name)?;
            removed += 1;
            if removed == 1 {
                fail_point("gc.removed_one")?;
            }
        }
        Ok(plan)
    }

    /// The directory names under the table's directory (on object storage: its prefix).
    fn layout_dir_names(&self, table: &TableName) -> Result<Vec<String>, DbError> {
        match self.remote_data() {
            Some(root) => {
                let dir = root.child(table.as_str())?;
                Ok(dbopt_engine::store::block_on(dir.list_dirs())?)
            }
            None => entry_names(&self.table_dir(table), true),
        }
    }

    /// Deletes the layout directory `name` of `table` (on object storage: every object under
    /// its prefix).
    fn remove_layout_dir(&self, table: &TableName, name: &str) -> Result<(), DbError> {
        match self.remote_data() {
            Some(root) => {
                let dir = root.child(&format!("{table}/{name}"))?;
                dbopt_engine::store::block_on(dir.delete_all())?;
            }
            None => {
                let p = self.table_dir(table).join(name);
                std::fs::remove_dir_all(&p)
                    .map_err(|e| DbError::io(format!("removing {}", p.display()), e))?;
            }
        }
        Ok(())
    }
}
