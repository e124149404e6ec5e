//! Garbage collection, planned purely: which staging directories and layout directories of a
//! table can go. Never the active layout, the initial layout, or a layout a live job reads or
//! builds; a live job's staging is kept so it can resume.
//!
//! Grace period: a query resolves its layout from the catalog once and then opens that
//! layout's files, so a layout that just stopped being active (a publish with `--activate`, a
//! promote, a rollback) or just stopped being ready (retired by gc or autopilot) may still be
//! read by queries in flight, by a long-lived query session, or by another engine pointed at
//! the directory. Its directory is therefore removed only once it has been out of service
//! for `grace_ms` (config `gc_grace`, default 5 minutes); until then gc reports it as kept.
//! A layout gc retires in this very run starts its grace now. Orphan directories (never in
//! the catalog, so never queryable) and staging go at once.

use dbopt_catalog::{JobRecord, JobStatus, LayoutRecord, LayoutStatus};
use dbopt_core::LayoutId;
use serde::Serialize;
use std::collections::BTreeMap;

/// What gc sees of one table.
#[derive(Debug, Clone)]
pub struct GcInput<'a> {
    /// Entry names under `DATA_DIR/<table>/_staging/`.
    pub staging_entries: &'a [String],
    /// Directory names `layout_*` under `DATA_DIR/<table>/`.
    pub layout_dirs: &'a [String],
    /// The table's layouts in the catalog.
    pub layouts: &'a [LayoutRecord],
    /// The active layout.
    pub active: &'a LayoutId,
    /// The table's migration jobs.
    pub jobs: &'a [JobRecord],
    /// Ready, inactive layouts to keep (newest first).
    pub keep: usize,
    /// When each layout last stopped serving queries (stopped being active, or left the
    /// ready state), in ms; absent when it never did.
    pub out_of_service_since: &'a BTreeMap<LayoutId, i64>,
    /// The current time in ms.
    pub now_ms: i64,
    /// How long a layout's directory outlives its leaving service, in ms (0: no grace).
    pub grace_ms: i64,
}

/// What gc will remove, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcPlan {
    /// Staging entries to delete (names under `_staging/`).
    pub remove_staging: Vec<String>,
    /// Layout directories to delete, with the reason.
    pub remove_layout_dirs: Vec<(String, String)>,
    /// Ready layouts to mark retired in the catalog (not kept).
    pub retire: Vec<LayoutId>,
    /// Layout directories that would go but are still in their grace period, with the ms
    /// left (removed by a later gc).
    pub grace: Vec<(String, i64)>,
}

impl GcPlan {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.remove_staging.is_empty()
            && self.remove_layout_dirs.is_empty()
            && self.retire.is_empty()
    }
}

/// The staging directory name of a job.
pub fn job_staging_name(job_id: i64) -> String {
    format!("job-{job_id}")
}

/// Plans what gc removes.
pub fn plan_gc(input: &GcInput<'_>) -> GcPlan {
    let live: Vec<&JobRecord> = input
        .jobs
        .iter()
        .filter(|j| matches!(j.status, JobStatus::Queued | JobStatus::Running))
        .collect();
    let mut protected: Vec<LayoutId> = vec![input.active.clone(), LayoutId::initial()];
    for j in &live {
        protected.push(j.source_layout.clone());
        protected.push(j.target_layout.clone());
    }
    let live_staging: Vec<String> = live.iter().map(|j| job_staging_name(j.id)).collect();
    let mut plan = GcPlan {
        remove_staging: input
            .staging_entries
            .iter()
            .filter(|e| !live_staging.contains(e))
            .cloned()
            .collect(),
        ..Default::default()
    };
    let mut ready: Vec<&LayoutRecord> = input
        .layouts
        .iter()
        .filter(|l| l.status == LayoutStatus::Ready && !protected.contains(&l.layout_id))
        .collect();
    ready.sort_by(|a, b| {
        let ta = a.published_at_ms.unwrap_or(a.created_at_ms);
        let tb = b.published_at_ms.unwrap_or(b.created_at_ms);
        tb.cmp(&ta).then(b.layout_id.cmp(&a.layout_id))
    });
    plan.retire = ready
        .iter()
        .skip(input.keep)
        .map(|l| l.layout_id.clone())
        .collect();
    for dir in input.layout_dirs {
        let Some(id) = LayoutId::from_dir_name(dir) else {
            continue;
        };
        let record = input.layouts.iter().find(|l| l.layout_id == id);
        // The directory the catalog records for the layout (another one of the same layout is
        // one a `--replace` on object storage wrote beside it).
        let recorded = record.is_none_or(|l| l.path.rsplit('/').next() == Some(dir.as_str()));
        if protected.contains(&id) && recorded {
            continue;
        }
        let reason = match record {
            None => "orphan: not in the catalog (a crash between rename and commit)",
            Some(_) if !recorded => "replaced: the table was loaded again (--replace)",
            Some(l) if l.status == LayoutStatus::Retired => "retired",
            Some(l) if l.status == LayoutStatus::Failed => "failed",
            Some(_) if plan.retire.contains(&id) => "not kept (--keep)",
            Some(_) => continue,
        };
        if record.is_some() && recorded {
            // Retired in this run: out of service from now on. Otherwise since the catalog
            // says; a layout retired before that was recorded has no grace left.
            let since = if plan.retire.contains(&id) {
                Some(input.now_ms)
            } else {
                input.out_of_service_since.get(&id).copied()
            };
            let left = since.map_or(0, |t| t.saturating_add(input.grace_ms) - input.now_ms);
            if left > 0 {
                plan.grace.push((dir.clone(), left));
                continue;
            }
        }
        plan.remove_layout_dirs
            .push((dir.clone(), reason.to_string()));
    }
    plan.remove_staging.sort();
    plan.remove_layout_dirs.sort();
    plan.grace.sort();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbopt_catalog::{JobStats, MigrationMode};
    use dbopt_core::{LayoutSpec, TableName};

    fn layout(id: &str, status: LayoutStatus, t: i64) -> LayoutRecord {
        LayoutRecord {
            table: TableName::new("t").unwrap(),
            layout_id: LayoutId::parse(id).unwrap(),
            source_layout: None,
            spec: LayoutSpec::default(),
            status,
            path: format!("t/layout_{id}"),
            row_count: 1,
            file_count: 1,
            row_group_count: 1,
            total_bytes: 1,
            digest: String::new(),
            created_at_ms: t,
            published_at_ms: Some(t),
        }
    }

    fn job(id: i64, status: JobStatus, source: &str, target: &str) -> JobRecord {
        JobRecord {
            id,
            table: TableName::new("t").unwrap(),
            source_layout: LayoutId::parse(source).unwrap(),
            target_layout: LayoutId::parse(target).unwrap(),
            spec: LayoutSpec::default(),
            plan_json: String::new(),
            mode: MigrationMode::Full,
            activate: true,
            status,
            attempt: 1,
            lease_owner: None,
            lease_expires_ms: None,
            fencing_token: 1,
            units_total: 1,
            units_done: 0,
            error: None,
            retry_after_ms: None,
            created_at_ms: 0,
            started_at_ms: None,
            finished_at_ms: None,
            stats: JobStats::default(),
        }
    }

    #[test]
    fn keeps_active_initial_live_and_newest() {
        let layouts = vec![
            layout("initial", LayoutStatus::Ready, 0),
            layout("aa", LayoutStatus::Ready, 1),
            layout("bb", LayoutStatus::Ready, 2),
            layout("cc", LayoutStatus::Ready, 3),
            layout("dd", LayoutStatus::Retired, 4),
            layout("ee", LayoutStatus::Ready, 5),
        ];
        let dirs: Vec<String> = ["initial", "aa", "bb", "cc", "dd", "ee", "ff", "99"]
            .iter()
            .map(|d| format!("layout_{d}"))
            .collect();
        let staging = vec!["job-1".to_string(), "job-2".into(), "initial-5-6".into()];
        let jobs = vec![
            job(1, JobStatus::Running, "aa", "99"),
            job(2, JobStatus::Done, "initial", "ee"),
        ];
        let active = LayoutId::parse("ee").unwrap();
        let plan = plan_gc(&GcInput {
            staging_entries: &staging,
            layout_dirs: &dirs,
            layouts: &layouts,
            active: &active,
            jobs: &jobs,
            keep: 1,
            out_of_service_since: &BTreeMap::new(),
            now_ms: 100,
            grace_ms: 0,
        });
        assert_eq!(plan.remove_staging, vec!["initial-5-6", "job-2"]);
        // Live job protects aa (source) and 99 (target); ee is active; cc is the newest kept.
        assert_eq!(plan.retire, vec![LayoutId::parse("bb").unwrap()]);
        let removed: Vec<&str> = plan
            .remove_layout_dirs
            .iter()
            .map(|(d, _)| d.as_str())
            .collect();
        assert_eq!(removed, vec!["layout_bb", "layout_dd", "layout_ff"]);
        assert!(!plan.is_empty());
    }

    #[test]
    fn a_replaced_initial_layout_s_old_directories_go_and_its_recorded_one_stays() {
        let mut initial = layout("initial", LayoutStatus::Ready, 0);
        initial.path = "t/layout_initial.200".into();
        let dirs: Vec<String> = ["layout_initial", "layout_initial.100", "layout_initial.200"]
            .map(String::from)
            .to_vec();
        let plan = plan_gc(&GcInput {
            staging_entries: &[],
            layout_dirs: &dirs,
            layouts: &[initial],
            active: &LayoutId::initial(),
            jobs: &[],
            keep: 0,
            out_of_service_since: &BTreeMap::new(),
            now_ms: 300,
            grace_ms: 60_000,
        });
        assert_eq!(
            plan.remove_layout_dirs,
            [
                (
                    "layout_initial".to_string(),
                    "replaced: the table was loaded again (--replace)".to_string()
                ),
                (
                    "layout_initial.100".to_string(),
                    "replaced: the table was loaded again (--replace)".to_string()
                ),
            ]
        );
    }

    #[test]
    fn nothing_to_do_on_a_clean_table() {
        let layouts = vec![layout("initial", LayoutStatus::Ready, 0)];
        let dirs = vec!["layout_initial".to_string()];
        let plan = plan_gc(&GcInput {
            staging_entries: &[],
            layout_dirs: &dirs,
            layouts: &layouts,
            active: &LayoutId::initial(),
            jobs: &[],
            keep: 0,
            out_of_service_since: &BTreeMap::new(),
            now_ms: 100,
            grace_ms: 60_000,
        });
        assert!(plan.is_empty());
    }

    #[test]
    fn layouts_out_of_service_keep_their_files_for_the_grace_period() {
        let layouts = vec![
            layout("initial", LayoutStatus::Ready, 0),
            layout("aa", LayoutStatus::Retired, 1),
            layout("bb", LayoutStatus::Retired, 2),
            layout("cc", LayoutStatus::Ready, 3),
            layout("dd", LayoutStatus::Ready, 4),
            layout("ee", LayoutStatus::Retired, 5),
        ];
        let dirs: Vec<String> = ["initial", "aa", "bb", "cc", "dd", "ee", "ff"]
            .iter()
            .map(|d| format!("layout_{d}"))
            .collect();
        let id = |s: &str| LayoutId::parse(s).unwrap();
        // aa left service long ago, bb 10 s ago; ee has no record (retired before the
        // timestamp existed); cc is ready and not kept, so it is retired in this run.
        let since = BTreeMap::from([(id("aa"), 1_000), (id("bb"), 990_000)]);
        let plan = plan_gc(&GcInput {
            staging_entries: &[],
            layout_dirs: &dirs,
            layouts: &layouts,
            active: &id("dd"),
            jobs: &[],
            keep: 0,
            out_of_service_since: &since,
            now_ms: 1_000_000,
            grace_ms: 60_000,
        });
        assert_eq!(plan.retire, vec![id("cc")]);
        let removed: Vec<&str> = plan
            .remove_layout_dirs
            .iter()
            .map(|(d, _)| d.as_str())
            .collect();
        assert_eq!(removed, vec!["layout_aa", "layout_ee", "layout_ff"]);
        assert_eq!(
            plan.grace,
            vec![
                ("layout_bb".to_string(), 50_000),
                ("layout_cc".to_string(), 60_000)
            ]
        );
        // Without grace everything not protected goes at once.
        let plan = plan_gc(&GcInput {
            staging_entries: &[],
            layout_dirs: &dirs,
            layouts: &layouts,
            active: &id("dd"),
            jobs: &[],
            keep: 0,
            out_of_service_since: &since,
            now_ms: 1_000_000,
            grace_ms: 0,
        });
        assert_eq!(plan.remove_layout_dirs.len(), 5);
        assert!(plan.grace.is_empty());
    }
}
