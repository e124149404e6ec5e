//! `run-workload`: draws generated queries, runs each through a shared query session, logs
//! them, and summarizes latency and bytes.

use crate::loop_settings::LoopSettings;
use crate::query::{Attempt, LAYOUT_GONE_RETRIES, QuerySession};
use crate::route::Router;
use crate::{DbError, Progress, Workspace};
use dbopt_catalog::QueryOrigin;
use dbopt_core::LayoutId;
use dbopt_core::TableName;
use dbopt_data::workload::{EventsDomain, EventsWorkload};
pub use dbopt_evaluate::percentile;
use serde::Serialize;
use std::collections::BTreeMap;

/// What to run.
#[derive(Debug, Clone)]
pub struct WorkloadOptions {
    /// The events table the workload targets.
    pub table: TableName,
    /// The customers table joins go to.
    pub customers_table: TableName,
    /// How many queries.
    pub num_queries: u64,
    /// Seed of the query generator.
    pub seed: u64,
    /// Route each query across the live layouts (None: every query reads the active layout).
    pub routing: Option<Routing>,
    /// Templates never drawn (to hold query shapes out of a training run).
    pub exclude_templates: Vec<String>,
    /// Read this layout for every query (no routing).
    pub layout: Option<LayoutId>,
}

/// How to route a workload's queries.
#[derive(Debug, Clone)]
pub struct Routing {
    /// Policy, objective, weights.
    pub settings: LoopSettings,
    /// Seed of the policy's random choices.
    pub seed: u64,
}

/// Runs a workload's queries: all on the active layout, or routed across the live layouts.
/// Unless pinned to a layout, a query whose layout left service under it (promoted away,
/// retired and removed by gc) is run again on freshly resolved layouts, up to
/// `LAYOUT_GONE_RETRIES` times; only the final attempt is logged.
pub struct Runner<'a> {
    ws: &'a Workspace,
    table: TableName,
    session: QuerySession<'a>,
    router: Option<Router<'a>>,
    pinned: bool,
}

impl<'a> Runner<'a> {
    /// A runner for queries logged against `table`: routed, or all on its active layout.
    pub async fn open(
        ws: &'a Workspace,
        table: &dbopt_core::TableName,
        routing: Option<&Routing>,
    ) -> Result<Runner<'a>, DbError> {
        let session = ws.query_session(table, None).await?;
        let router = match routing {
            Some(r) => Some(Router::new(ws, table, r.settings.clone(), r.seed)?),
            None => None,
        };
        Ok(Runner {
            ws,
            table: table.clone(),
            session,
            router,
            pinned: false,
        })
    }

    /// A runner whose queries all read `layout` of `table`.
    pub async fn pinned(
        ws: &'a Workspace,
        table: &dbopt_core::TableName,
        layout: &LayoutId,
    ) -> Result<Runner<'a>, DbError> {
        let session = ws.query_session(table, Some(layout)).await?;
        Ok(Runner {
            ws,
            table: table.clone(),
            session,
            router: None,
            pinned: true,
        })
    }

    /// The session on the active layout (for planning and schema look-ups).
    pub fn session(&self) -> &QuerySession<'a> {
        &self.session
    }

    /// The layouts queries may be routed to (just the active one without routing).
    pub fn layouts(&self) -> Vec<LayoutId> {
        match &self.router {
            Some(r) => r.live().iter().map(|l| l.id.clone()).collect(),
            None => self.session.primary_layout().cloned().into_iter().collect(),
        }
    }

    /// Runs and logs one query.
    pub async fn run(
        &mut self,
        sql: &str,
        origin: QueryOrigin,
        workload: Option<&str>,
    ) -> Result<dbopt_engine::QueryOutcome, DbError> {
        let mut retries = 0;
        loop {
            let retry_if_gone = !self.pinned && retries < LAYOUT_GONE_RETRIES;
            let attempt = match &mut self.router {
                Some(router) => router.attempt(sql, origin, workload, retry_if_gone).await,
                None => {
                    let shape = self.session.shape_of(sql).await;
                    self.session
                        .attempt(sql, origin, workload, shape, None, retry_if_gone)
                        .await
                }
            };
            match attempt {
                Attempt::Finished(result) => return result,
                Attempt::LayoutGone(e) => {
                    retries += 1;
                    tracing::info!(
                        table = %self.table,
                        "a layout left service under a query ({e}); re-resolving and running it again"
                    );
                    self.session = self.ws.query_session(&self.table, None).await?;
                    if let Some(router) = &mut self.router {
                        router.reset()?;
                    }
                }
            }
        }
    }
}

/// Summary of a workload run.
#[derive(Debug, Clone, Serialize, Default)]
pub struct WorkloadSummary {
    /// Queries run.
    pub queries: u64,
    /// Queries that failed.
    pub errors: u64,
    /// Median latency in ms.
    pub p50_ms: f64,
    /// 95th percentile latency in ms.
    pub p95_ms: f64,
    /// Bytes scanned by all queries.
    pub total_bytes_scanned: u64,
    /// Queries per `table@layout` they scanned (a join counts for both tables).
    pub per_layout: BTreeMap<String, u64>,
    /// Queries per template.
    pub per_template: BTreeMap<String, u64>,
    /// The first few error messages.
    pub first_errors: Vec<String>,
}

/// Accumulates per-query results into a `WorkloadSummary`.
#[derive(Debug, Default)]
pub struct SummaryBuilder {
    latencies: Vec<f64>,
    summary: WorkloadSummary,
}

impl SummaryBuilder {
    /// Records one query.
    pub fn record(&mut self, template: &str, result: &Result<dbopt_engine::QueryOutcome, DbError>) {
        self.summary.queries += 1;
        *self
            .summary
            .per_template
            .entry(template.to_string())
            .or_default() += 1;
        match result {
            Ok(o) => {
                self.latencies.push(o.latency.as_secs_f64() * 1000.0);
                for scan in &o.scans {
                    *self
                        .summary
                        .per_layout
                        .entry(format!("{}@{}", scan.table, scan.layout_id))
                        .or_default() += 1;
                }
                self.summary.total_bytes_scanned +=
                    o.scans.iter().map(|s| s.metrics.bytes_scanned).sum::<u64>();
            }
            Err(e) => {
                self.summary.errors += 1;
                if self.summary.first_errors.len() < 5 {
                    self.summary.first_errors.push(format!("{template}: {e}"));
                }
            }
        }
    }

    /// The summary with percentiles computed.
    pub fn finish(mut self) -> WorkloadSummary {
        self.latencies.sort_by(f64::total_cmp);
        self.summary.p50_ms = percentile(&self.latencies, 0.50);
        self.summary.p95_ms = percentile(&self.latencies, 0.95);
        self.summary
    }
}

impl Workspace {
    /// Runs the generated events workload and logs every query.
    pub async fn run_events_workload(
        &self,
        options: &WorkloadOptions,
        progress: &dyn Progress,
    ) -> Result<WorkloadSummary, DbError> {
        let table = self.require_table(&options.table)?;
        let mut domain = EventsDomain::for_rows(table.row_count);
        domain.table = options.table.to_string();
        domain.customers_table = options.customers_table.to_string();
        let known = dbopt_data::workload::template_names();
        let known_names: Vec<String> = known.iter().map(std::string::ToString::to_string).collect();
        crate::workload_sql::check_templates(&options.exclude_templates, &known_names)?;
        if known
            .iter()
            .all(|t| options.exclude_templates.iter().any(|x| x == t))
        {
            return Err(DbError::NoTemplates(
                "every template is excluded: leave at least one out of --exclude-templates",
            ));
        }
        let mut generator = EventsWorkload::new(options.seed, domain);
        let mut runner = match &options.layout {
            Some(layout) => Runner::pinned(self, &options.table, layout).await?,
            None => Runner::open(self, &options.table, options.routing.as_ref()).await?,
        };
        let excluded = &options.exclude_templates;
        let next = || loop {
            let q = generator.next_query();
            if !excluded.iter().any(|t| t == q.template) {
                return q;
            }
        };
        Ok(run_generated(&mut runner, options.num_queries, next, progress).await)
    }
}

/// Runs `num_queries` queries drawn from `next` in `session`, logging each under its
/// template, and summarizes them (failed queries are logged and counted, not fatal).
pub async fn run_generated(
    runner: &mut Runner<'_>,
    num_queries: u64,
    mut next: impl FnMut() -> dbopt_data::workload::GeneratedQuery,
    progress: &dyn Progress,
) -> WorkloadSummary {
    progress.set_total(num_queries);
    let mut builder = SummaryBuilder::default();
    for _ in 0..num_queries {
        let q = next();
        let result = run_logged(runner, &q.sql, q.template).await;
        builder.record(q.template, &result);
        progress.advance(1);
    }
    progress.finish();
    builder.finish()
}

/// Runs one workload query, logging it under `template`.
pub async fn run_logged(
    runner: &mut Runner<'_>,
    sql: &str,
    template: &str,
) -> Result<dbopt_engine::QueryOutcome, DbError> {
    runner.run(sql, QueryOrigin::Workload, Some(template)).await
}
