//! Instrumented queries: register every managed table, run read-only SQL through DataFusion,
//! and log what it cost (or why it failed) to the catalog's query_log.
//!
//! A session resolves each table's layout from the catalog once. gc keeps a layout's files
//! for `gc_grace` after it leaves service, but a session can outlive that (a long workload
//! run, a server): a query whose layout was retired and removed under it fails, and
//! `QuerySession::attempt` reports that as `Attempt::LayoutGone` (not logged) so the caller
//! (`Runner`) re-resolves the layouts and runs it again. Every layout holds the same rows, so
//! the answer is the one the old layout would have given.

use crate::{DbError, Workspace};
use dbopt_analyze::{cluster_id, shape};
use dbopt_catalog::{LayoutStatus, QueryLogEntry, QueryOrigin, RouteChoice, TableScan};
use dbopt_core::ScanMetrics;
use dbopt_core::{LayoutId, TableName};
pub use dbopt_engine::QueryOutcome;
use dbopt_engine::footer::partition_types;
use dbopt_engine::join_keys::join_key_sets;
use dbopt_engine::plan_summary::summarize_sql;
use dbopt_engine::{RegisteredLayout, Session, execute_query, fingerprint, register_layout};
use dbopt_propose::JoinKeys;

/// A query's template fingerprint (literals stripped; empty when it does not parse) and its
/// workload cluster on the session's primary table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryShape {
    /// The fingerprint hash.
    pub fingerprint: String,
    /// The `analyze` cluster id, when the query plans and scans the primary table.
    pub cluster: Option<String>,
}

/// One try at a query.
pub(crate) enum Attempt {
    /// It ran (or failed for a reason re-resolving cannot fix) and was logged.
    Finished(Result<QueryOutcome, DbError>),
    /// It failed and a layout it read has left service (retired, removed): not logged; the
    /// caller re-resolves the layouts and runs it again.
    LayoutGone(DbError),
}

/// Build rows past which a join's keys are not collected for the what-if model (about 8
/// bytes each for numeric keys): its filter is then not priced.
pub(crate) const MAX_JOIN_KEYS: usize = 4_000_000;

/// How many times a `Runner` re-resolves layouts for one query before it gives up.
pub(crate) const LAYOUT_GONE_RETRIES: usize = 3;

/// A session with every managed table registered, reused across many queries.
pub struct QuerySession<'a> {
    workspace: &'a Workspace,
    ctx: Session,
    primary: TableName,
    registered: Vec<RegisteredLayout>,
}

impl Workspace {
    /// Opens a query session where `primary` reads `layout` (or its active layout) and every
    /// other managed table reads its active layout.
    pub async fn query_session(
        &self,
        primary: &TableName,
        layout: Option<&LayoutId>,
    ) -> Result<QuerySession<'_>, DbError> {
        // Following the active layout: if it is replaced and removed between reading the
        // catalog and registering its files, resolve again.
        let mut tries = 0;
        loop {
            let primary_layout = match layout {
                Some(l) => l.clone(),
                None => self.require_table(primary)?.active_layout,
            };
            let ctx = self.query_engine_session().await?;
            match self
                .query_session_at(primary, primary_layout.clone(), ctx)
                .await
            {
                Err(e)
                    if layout.is_none()
                        && tries < LAYOUT_GONE_RETRIES
                        && self.layout_left_service(primary, &primary_layout) =>
                {
                    tracing::debug!(table = %primary, layout = %primary_layout, "the active layout left service while opening a session: {e}");
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// True when `layout` of `table` is no longer ready or its directory is gone (gc retired
    /// and removed it): a query that read it can be answered by re-resolving the layouts.
    pub(crate) fn layout_left_service(&self, table: &TableName, layout: &LayoutId) -> bool {
        let unready = match self.catalog().get_layout(table, layout) {
            Ok(Some(l)) => l.status != LayoutStatus::Ready,
            Ok(None) => true,
            Err(_) => false,
        };
        unready || !self.layout_present(table, layout)
    }

    /// A session like [`Self::query_session`] on `primary`'s active layout, opened with
    /// `settings` in `runtime` instead of the configuration's (for `tune`).
    pub async fn query_session_with(
        &self,
        primary: &TableName,
        runtime: &dbopt_engine::EngineRuntime,
        settings: &dbopt_engine::EngineSettings,
    ) -> Result<QuerySession<'_>, DbError> {
        let layout = self.require_table(primary)?.active_layout;
        let ctx = dbopt_engine::new_session_in(runtime, settings);
        self.query_session_at(primary, layout, ctx).await
    }

    async fn query_session_at(
        &self,
        primary: &TableName,
        primary_layout: LayoutId,
        ctx: dbopt_engine::Session,
    ) -> Result<QuerySession<'_>, DbError> {
        if self
            .catalog()
            .get_layout(primary, &primary_layout)?
            .is_none()
        {
            return Err(DbError::UnknownLayout {
                table: primary.to_string(),
                layout: primary_layout.to_string(),
            });
        }
        let mut registered = Vec::new();
        for table in self.catalog().list_tables()? {
            let is_primary = &table.name == primary;
            let layout = if is_primary {
                primary_layout.clone()
            } else {
                table.active_layout.clone()
            };
            match self.register_table_layout(&ctx, &table.name, &layout).await {
                Ok(r) => registered.push(r),
                // Another table that cannot be read must not stop queries on this one.
                Err(e) if !is_primary => {
                    tracing::warn!(table = %table.name, "table '{}' skipped: {e}", table.name);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(QuerySession {
            workspace: self,
            ctx,
            primary: primary.clone(),
            registered,
        })
    }

    /// Registers one table at one layout in `ctx`.
    pub async fn register_table_layout(
        &self,
        ctx: &Session,
        table: &TableName,
        layout: &LayoutId,
    ) -> Result<RegisteredLayout, DbError> {
        let manifest = self.layout_manifest(table, layout)?;
        let dir = self.layout_location(table, layout)?;
        if manifest.spec.partition_by.is_empty() {
            return Ok(
                register_layout(ctx, table.as_str(), &dir, &manifest, Vec::new(), None).await?,
            );
        }
        // Hive files lack the partition columns: take their types and the column order from
        // the table's canonical (initial layout) schema.
        let schema = self.table_schema(table)?;
        let parts = partition_types(&schema, &manifest.spec.partition_by)?;
        let order: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        Ok(register_layout(ctx, table.as_str(), &dir, &manifest, parts, Some(&order)).await?)
    }
}

/// The time `propose` and `whatif` may spend running join build sides (`join_keys_seconds`):
/// once it is spent, the remaining queries are priced on their own filters, and `finish` says
/// how many. It is checked between queries: one build side already running finishes (or
/// stops at `MAX_JOIN_KEYS` rows).
pub(crate) struct JoinKeyBudget {
    budget: std::time::Duration,
    started: std::time::Instant,
    priced: usize,
    skipped: usize,
}

impl JoinKeyBudget {
    /// A budget of `budget` from now.
    pub(crate) fn new(budget: std::time::Duration) -> Self {
        Self {
            budget,
            started: std::time::Instant::now(),
            priced: 0,
            skipped: 0,
        }
    }

    /// The join keys of `sql` on `session`'s primary table, while time is left.
    pub(crate) async fn keys(&mut self, session: &QuerySession<'_>, sql: &str) -> Vec<JoinKeys> {
        if self.started.elapsed() >= self.budget {
            self.skipped += 1;
            return Vec::new();
        }
        self.priced += 1;
        session.join_keys(sql).await
    }

    /// Warns when the budget ran out before every query that joins was priced.
    pub(crate) fn finish(&self, table: &TableName) {
        if self.skipped > 0 {
            tracing::warn!(
                "{table}: the filters joins carry into the scan were priced for {} of {} queries that join; \
                 the rest are priced on their own filters (join_keys_seconds = {} s: raise it to price them all)",
                self.priced,
                self.priced + self.skipped,
                self.budget.as_secs()
            );
        }
    }
}

impl QuerySession<'_> {
    /// The keys the hash joins of `sql` carry into the primary table's scan, for the what-if
    /// model to price as filters (see `dbopt_engine::join_keys`). Empty when the statement
    /// does not plan here (an imported query in another dialect) or a build side fails: the
    /// query is then priced on its own filters.
    pub async fn join_keys(&self, sql: &str) -> Vec<JoinKeys> {
        let Some(primary) = self
            .registered
            .iter()
            .find(|r| r.table == self.primary.as_str())
        else {
            return Vec::new();
        };
        match join_key_sets(&self.ctx, sql, primary, MAX_JOIN_KEYS).await {
            Ok(sets) => sets
                .into_iter()
                .map(|s| JoinKeys {
                    column: s.column,
                    keys: s.keys,
                })
                .collect(),
            Err(e) => {
                tracing::debug!(table = %self.primary, "join keys not collected: {e}");
                Vec::new()
            }
        }
    }

    /// The layouts registered in this session.
    pub fn registered(&self) -> &[RegisteredLayout] {
        &self.registered
    }

    /// The engine session the tables are registered in (for planning and plan inspection).
    pub fn context(&self) -> &Session {
        &self.ctx
    }

    /// The layout the primary table reads in this session.
    pub fn primary_layout(&self) -> Option<&LayoutId> {
        self.registered
            .iter()
            .find(|r| r.table == self.primary.as_str())
            .map(|r| &r.layout_id)
    }

    /// The fingerprint of `sql` and its workload cluster on the primary table (the `analyze`
    /// shape id of its optimized plan), planned once per fingerprint; no cluster when it does
    /// not parse, plan or scan the primary table.
    pub async fn shape_of(&self, sql: &str) -> QueryShape {
        let Ok(fp) = fingerprint(sql).map(|f| f.hash) else {
            return QueryShape::default();
        };
        if let Some(hit) = self.workspace.cached_cluster(&self.primary, &fp) {
            return QueryShape {
                fingerprint: fp,
                cluster: hit,
            };
        }
        let cluster = summarize_sql(&self.ctx, sql).await.ok().and_then(|s| {
            s.table(self.primary.as_str())
                .map(|usage| cluster_id(&shape(usage)))
        });
        self.workspace
            .cache_cluster(&self.primary, &fp, cluster.clone());
        QueryShape {
            fingerprint: fp,
            cluster,
        }
    }

    /// Runs `sql` without logging it (canary replays measure, they are not workload).
    pub async fn execute_unlogged(&self, sql: &str) -> Result<QueryOutcome, DbError> {
        Ok(execute_query(&self.ctx, sql, &self.registered).await?)
    }

    /// Runs `sql`, logs it (success or failure) with its cluster and returns the outcome.
    pub async fn run(
        &self,
        sql: &str,
        origin: QueryOrigin,
        workload: Option<&str>,
    ) -> Result<QueryOutcome, DbError> {
        let shape = self.shape_of(sql).await;
        self.run_as(sql, origin, workload, shape, None).await
    }

    /// Runs `sql` and logs it under its `shape`, with the routing choice that sent it here.
    pub async fn run_as(
        &self,
        sql: &str,
        origin: QueryOrigin,
        workload: Option<&str>,
        shape: QueryShape,
        route: Option<RouteChoice>,
    ) -> Result<QueryOutcome, DbError> {
        match self
            .attempt(sql, origin, workload, shape, route, false)
            .await
        {
            Attempt::Finished(result) => result,
            Attempt::LayoutGone(e) => Err(e),
        }
    }

    /// True when a layout this session reads has left service (see
    /// `Workspace::layout_left_service`).
    pub fn layouts_left_service(&self) -> bool {
        self.registered.iter().any(|r| {
            TableName::new(&r.table)
                .is_ok_and(|t| self.workspace.layout_left_service(&t, &r.layout_id))
        })
    }

    /// Runs `sql` like `run_as`; with `retry_if_gone`, a failure while a layout it read has
    /// left service is returned as `Attempt::LayoutGone` without being logged.
    pub(crate) async fn attempt(
        &self,
        sql: &str,
        origin: QueryOrigin,
        workload: Option<&str>,
        shape: QueryShape,
        route: Option<RouteChoice>,
        retry_if_gone: bool,
    ) -> Attempt {
        let pushdown = match self.workspace.pushdown_for(
            &self.primary,
            &shape.fingerprint,
            self.primary_layout(),
        ) {
            Ok(choice) => choice,
            Err(e) => return Attempt::Finished(Err(e)),
        };
        if let Some(on) = pushdown {
            self.ctx.set_pushdown_filters(on);
        }
        let started_ms = self.workspace.clock().now_ms();
        let result = execute_query(&self.ctx, sql, &self.registered).await;
        if pushdown.is_some() {
            // Back to the configured setting for whatever else runs in this session.
            let configured = self.workspace.config().settings().pushdown_filters;
            self.ctx.set_pushdown_filters(configured);
        }
        match result {
            Err(e) if retry_if_gone && self.layouts_left_service() => {
                tracing::debug!(
                    table = %self.primary,
                    "a layout left service under a query; re-resolving: {e}"
                );
                Attempt::LayoutGone(e.into())
            }
            result => Attempt::Finished(self.log_result(
                sql, origin, workload, shape, route, pushdown, started_ms, result,
            )),
        }
    }

    /// Logs one finished query (success or failure) and returns its outcome.
    #[allow(clippy::too_many_arguments)]
    fn log_result(
        &self,
        sql: &str,
        origin: QueryOrigin,
        workload: Option<&str>,
        shape: QueryShape,
        route: Option<RouteChoice>,
        pushdown: Option<bool>,
        started_ms: i64,
        result: Result<QueryOutcome, dbopt_engine::EngineError>,
    ) -> Result<QueryOutcome, DbError> {
        let primary_layout = self.primary_layout().cloned();
        let mut entry = QueryLogEntry {
            ts_ms: started_ms,
            table: self.primary.clone(),
            layout_id: primary_layout,
            sql: sql.to_string(),
            fingerprint: shape.fingerprint,
            cluster_id: shape.cluster,
            latency_ms: 0.0,
            rows_returned: 0,
            metrics: ScanMetrics::default(),
            result_digest: None,
            error: None,
            origin,
            workload: workload.map(str::to_string),
            scans: Vec::new(),
            route,
            source: None,
            pushdown,
        };
        match &result {
            Ok(outcome) => {
                entry.latency_ms = outcome.latency.as_secs_f64() * 1000.0;
                entry.rows_returned = outcome.rows;
                entry.result_digest = Some(outcome.digest.to_string());
                for scan in &outcome.scans {
                    entry.metrics.accumulate(&scan.metrics);
                    entry.scans.push(TableScan {
                        table: TableName::new(&scan.table)?,
                        layout_id: scan.layout_id.clone(),
                        metrics: scan.metrics,
                    });
                }
            }
            Err(e) => {
                entry.latency_ms = (self.workspace.clock().now_ms() - started_ms).max(0) as f64;
                entry.error = Some(e.to_string());
            }
        }
        self.workspace.record_query(entry)?;
        Ok(result?)
    }
}
