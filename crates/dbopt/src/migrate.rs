//! Migrations through the facade: plan and enqueue a rewrite of a table into a new layout,
//! and run a worker that claims, rewrites, verifies and publishes queued jobs.

use crate::{DbError, Workspace};
use dbopt_catalog::{Enqueued, MigrationMode, NewJob};
use dbopt_core::{LayoutId, LayoutSpec, TableName};
use dbopt_engine::writer::DEFAULT_ROWS_PER_FILE;
use dbopt_migrate::plan::DEFAULT_BATCH_FILES;
use dbopt_migrate::{
    JobContext, MigrateError, MigrationPlan, PlanRequest, WorkerOptions, WorkerReport, run_worker,
};
use std::sync::atomic::AtomicBool;

/// Where the target spec of a migration comes from.
#[derive(Debug, Clone)]
pub enum SpecSource {
    /// The spec typed on the command line.
    Given(LayoutSpec),
    /// A stored proposal by id.
    Proposal(i64),
    /// The table's best current proposal.
    Best,
}

/// What `enqueue-migration` asks for.
#[derive(Debug, Clone)]
pub struct EnqueueRequest {
    /// The table.
    pub table: TableName,
    /// Where the spec comes from.
    pub spec: SpecSource,
    /// Full or incremental.
    pub mode: MigrationMode,
    /// Source files per unit in incremental mode.
    pub batch_files: Option<usize>,
    /// Rows per output file.
    pub rows_per_file: Option<u64>,
    /// Make the layout active when published.
    pub activate: bool,
    /// Only print the plan.
    pub dry_run: bool,
}

/// What enqueueing did.
#[derive(Debug, Clone)]
pub struct EnqueueReport {
    /// The plan.
    pub plan: MigrationPlan,
    /// The queue result (None on a dry run).
    pub enqueued: Option<Enqueued>,
}

/// Maps a migration error onto the facade's error, keeping its class (user or machine).
pub fn migrate_error(e: MigrateError) -> DbError {
    match e {
        MigrateError::Catalog(c) => DbError::Catalog(c),
        MigrateError::Engine(en) => DbError::Engine(en),
        MigrateError::Io { context, source } => DbError::Io { context, source },
        other => DbError::Migrate(other),
    }
}

impl Workspace {
    /// Resolves the spec and plans the migration of the table's active layout (no IO beyond
    /// reading manifests and the schema).
    pub fn plan_migration(&self, req: &EnqueueRequest) -> Result<MigrationPlan, DbError> {
        let table = &req.table;
        let (source, spec) = self.resolve_spec(table, &req.spec)?;
        self.check_lake_spec(table, &spec)?;
        if req.activate && self.catalog().lake_source(table)?.is_some() {
            return Err(DbError::BadArgument(format!(
                "table '{table}' is a Delta table: its layouts become active by `dbopt promote`, which commits them to the table's log; drop --activate"
            )));
        }
        let manifest = self.layout_manifest(table, &source)?;
        let schema = self.table_schema(table)?;
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let nested: Vec<String> = schema
            .fields()
            .iter()
            .filter(|f| f.data_type().is_nested())
            .map(|f| f.name().clone())
            .collect();
        MigrationPlan::build(&PlanRequest {
            table: table.as_str(),
            source: &manifest,
            columns: &columns,
            nested_columns: &nested,
            spec: &spec,
            mode: req.mode,
            batch_files: req.batch_files.unwrap_or(DEFAULT_BATCH_FILES),
            rows_per_file: req.rows_per_file.unwrap_or(DEFAULT_ROWS_PER_FILE),
            activate: req.activate,
        })
        .map_err(migrate_error)
    }

    /// The layout a spec would be built from and the spec itself: a typed spec starts from
    /// the active layout, a stored proposal from the layout it was proposed for.
    pub(crate) fn resolve_spec(
        &self,
        table: &TableName,
        source: &SpecSource,
    ) -> Result<(LayoutId, LayoutSpec), DbError> {
        let record = self.require_table(table)?;
        Ok(match source {
            SpecSource::Given(spec) => (record.active_layout.clone(), spec.clone()),
            SpecSource::Proposal(id) => {
                let p =
                    self.catalog()
                        .get_proposal(*id)?
                        .ok_or_else(|| DbError::UnknownProposal {
                            id: *id,
                            table: table.to_string(),
                        })?;
                if &p.table != table {
                    return Err(DbError::ProposalOfOtherTable {
                        id: *id,
                        table: table.to_string(),
                        owner: p.table.to_string(),
                    });
                }
                (p.proposal.source_layout, p.proposal.spec)
            }
            SpecSource::Best => {
                let p = self
                    .catalog()
                    .best_proposal(table)?
                    .ok_or_else(|| DbError::NoProposal(table.to_string()))?;
                if p.proposal.is_current {
                    return Err(DbError::NothingToMigrate(format!(
                        "the best proposal for table {table} is to keep the current layout"
                    )));
                }
                (p.proposal.source_layout, p.proposal.spec)
            }
        })
    }

    /// Plans the migration and queues it (unless `dry_run`); the same target twice is queued once.
    pub fn enqueue_migration(&self, req: &EnqueueRequest) -> Result<EnqueueReport, DbError> {
        let plan = self.plan_migration(req)?;
        if plan.target_layout == plan.source_layout {
            return Err(DbError::NothingToMigrate(
                "the target layout equals the source layout".into(),
            ));
        }
        if req.dry_run {
            return Ok(EnqueueReport {
                plan,
                enqueued: None,
            });
        }
        if let Some(existing) = self.catalog().get_layout(&req.table, &plan.target_layout)?
            && existing.status == dbopt_catalog::LayoutStatus::Ready
            && self.layout_present(&req.table, &plan.target_layout)
            && self
                .catalog()
                .list_jobs(Some(&req.table))?
                .iter()
                .all(|j| j.target_layout != plan.target_layout)
        {
            return Err(DbError::LayoutExists {
                table: req.table.to_string(),
                layout: plan.target_layout.to_string(),
            });
        }
        let plan_json = serde_json::to_string(&plan)
            .map_err(|e| DbError::Internal(format!("cannot serialize the plan: {e}")))?;
        let enqueued = self.catalog().enqueue_job(&NewJob {
            table: req.table.clone(),
            source_layout: plan.source_layout.clone(),
            target_layout: plan.target_layout.clone(),
            spec: plan.spec.clone(),
            plan_json,
            mode: plan.mode,
            activate: plan.activate,
            units_total: plan.units.len() as u64,
        })?;
        Ok(EnqueueReport {
            plan,
            enqueued: Some(enqueued),
        })
    }

    /// Runs a migration worker until the queue is empty (or until stopped, with
    /// `options.keep_polling`); the rewrite's memory pool is the configured `memory_limit`.
    /// Setting `stop` (from another task or a signal handler) ends it cleanly: an idle worker
    /// returns within 100 ms, a busy one after its current unit, its job back in the queue with
    /// the finished units kept (`WorkerReport::interrupted`). Progress goes to `tracing`.
    pub async fn run_migration_worker(
        &self,
        options: &WorkerOptions,
        stop: &AtomicBool,
    ) -> Result<WorkerReport, DbError> {
        let ctx = JobContext {
            catalog: self.catalog(),
            data_dir: self.data_dir(),
            remote: self.remote_data(),
            settings: self.engine_settings(),
            max_partitions: self.config().max_partitions(),
            lease_ms: (self.config().lease_seconds() as i64 * 1000).max(1000),
            stop,
        };
        run_worker(&ctx, options).await.map_err(migrate_error)
    }
}
