//! Routing: each query of a table goes to one of its live layouts, chosen by a bandit policy
//! from the per-(cluster, layout) sums the catalog keeps, and is logged with the policy and
//! whether it explored. The layouts in play are the table's ready layouts minus those whose
//! latest canary rejected them, the active layout first (the baseline rewards are measured
//! against).

use crate::loop_settings::LoopSettings;
use crate::query::{Attempt, QuerySession};
use crate::{DbError, Workspace};
use dbopt_catalog::{QueryOrigin, RouteChoice, Verdict};
use dbopt_core::{LayoutId, TableName};
use dbopt_engine::QueryOutcome;
use dbopt_evaluate::{ArmInput, ClusterSums, Moments, Objective, arm_rewards};
use dbopt_route::{Arm, Decision, RewardStats, choose};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// How often a long-running router re-reads the table's layouts (another process may have
/// published, promoted or rolled back).
const LAYOUT_REFRESH: Duration = Duration::from_secs(5);

/// One layout in play with what its rewrite cost and what it was predicted to do.
#[derive(Debug, Clone)]
pub struct LiveLayout {
    /// The layout.
    pub id: LayoutId,
    /// Bytes read + written by the migration that built it (0: initial or adopted).
    pub rewrite_bytes: u64,
    /// Per cluster, the improvement in bytes the what-if model predicted for this layout
    /// against the layout it was proposed from (empty when no proposal named it).
    pub predicted: BTreeMap<String, f64>,
}

/// The layouts routing may choose for `table`, the active one first.
pub fn live_layouts(ws: &Workspace, table: &TableName) -> Result<Vec<LiveLayout>, DbError> {
    let record = ws.require_table(table)?;
    let jobs = ws.catalog().list_jobs(Some(table))?;
    let mut live = Vec::new();
    for layout in ws.catalog().ready_layouts(table)? {
        let is_active = layout.layout_id == record.active_layout;
        let rejected = ws
            .catalog()
            .latest_canary(table, &layout.layout_id)?
            .is_some_and(|c| c.canary.verdict == Verdict::Reject);
        if rejected && !is_active {
            continue;
        }
        let rewrite_bytes = jobs
            .iter()
            .filter(|j| j.target_layout == layout.layout_id)
            .map(|j| j.stats.bytes_read + j.stats.bytes_written)
            .max()
            .unwrap_or(0);
        let predicted = predicted_improvements(ws, table, &layout.layout_id)?;
        let entry = LiveLayout {
            id: layout.layout_id,
            rewrite_bytes,
            predicted,
        };
        if is_active {
            live.insert(0, entry);
        } else {
            live.push(entry);
        }
    }
    Ok(live)
}

/// The per-cluster improvement the proposal that named `layout` predicted (1 - predicted /
/// current bytes of each cluster's queries).
pub(crate) fn predicted_improvements(
    ws: &Workspace,
    table: &TableName,
    layout: &LayoutId,
) -> Result<BTreeMap<String, f64>, DbError> {
    let Some(p) = ws.catalog().proposal_for_target(table, layout)? else {
        return Ok(BTreeMap::new());
    };
    let Ok(proposal) = serde_json::from_str::<dbopt_propose::Proposal>(&p.proposal.detail_json)
    else {
        return Ok(BTreeMap::new());
    };
    Ok(proposal
        .clusters
        .iter()
        .filter(|c| c.current_bytes > 0.0)
        .map(|c| {
            (
                c.cluster_id.clone(),
                1.0 - c.predicted_bytes / c.current_bytes,
            )
        })
        .collect())
}

/// The objective's sums per (cluster, layout) of `table`, from the catalog's route statistics.
pub fn cluster_sums(
    ws: &Workspace,
    table: &TableName,
    objective: Objective,
) -> Result<Vec<ClusterSums>, DbError> {
    Ok(ws
        .catalog()
        .route_stats(table)?
        .into_iter()
        .map(|s| ClusterSums {
            cluster: s.cluster_id,
            layout: s.layout_id.to_string(),
            moments: match objective {
                Objective::Bytes => Moments {
                    n: s.n,
                    sum: s.sum_bytes,
                    sum_sq: s.sum_sq_bytes,
                },
                Objective::Latency => Moments {
                    n: s.n,
                    sum: s.sum_latency_ms,
                    sum_sq: s.sum_sq_latency_ms,
                },
            },
        })
        .collect())
}

/// Routes queries of one table across its live layouts and runs them.
pub struct Router<'a> {
    ws: &'a Workspace,
    table: TableName,
    settings: LoopSettings,
    table_bytes: u64,
    live: Vec<LiveLayout>,
    sessions: HashMap<LayoutId, QuerySession<'a>>,
    rng: StdRng,
    refreshed: Instant,
}

impl<'a> Router<'a> {
    /// A router for `table` with the workspace's settings; `seed` makes its choices repeatable.
    pub fn new(
        ws: &'a Workspace,
        table: &TableName,
        settings: LoopSettings,
        seed: u64,
    ) -> Result<Router<'a>, DbError> {
        let initial = ws
            .catalog()
            .get_layout(table, &LayoutId::initial())?
            .map_or(0, |l| l.total_bytes);
        let mut router = Router {
            ws,
            table: table.clone(),
            settings,
            table_bytes: initial,
            live: Vec::new(),
            sessions: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
            refreshed: Instant::now(),
        };
        router.refresh()?;
        Ok(router)
    }

    /// The layouts in play, the active one first.
    pub fn live(&self) -> &[LiveLayout] {
        &self.live
    }

    fn refresh(&mut self) -> Result<(), DbError> {
        let live = live_layouts(self.ws, &self.table)?;
        if live.is_empty() {
            return Err(DbError::NoReadyLayout(self.table.to_string()));
        }
        self.live = live;
        self.refreshed = Instant::now();
        Ok(())
    }

    /// Chooses a layout for a query of `cluster` (None: a query that does not scan the table
    /// by a known shape; it goes to the active layout).
    pub fn decide(
        &mut self,
        cluster: Option<&str>,
    ) -> Result<(LayoutId, Option<Decision>), DbError> {
        if self.refreshed.elapsed() > LAYOUT_REFRESH {
            self.refresh()?;
        }
        let Some(cluster) = cluster.filter(|_| self.live.len() > 1) else {
            return Ok((self.live[0].id.clone(), None));
        };
        let sums = cluster_sums(self.ws, &self.table, self.settings.objective)?;
        let inputs: Vec<ArmInput> = self
            .live
            .iter()
            .map(|l| ArmInput {
                layout: l.id.to_string(),
                rewrite_bytes: l.rewrite_bytes,
            })
            .collect();
        let rewards = arm_rewards(
            &sums,
            &inputs,
            &inputs[0].layout,
            Some(cluster),
            self.settings.weights,
            self.table_bytes,
        );
        // Figures of other clusters say little about a layout in a cluster that another layout
        // has already been measured in (a layout built for one cluster is poor for the rest):
        // there, an untried layout starts from its predicted improvement for this cluster, or
        // from nothing (so the policy tries it), not from its table-wide figures.
        let cluster_known = rewards.iter().any(|(own, _)| own.n > 0);
        let alpha = self.settings.weights.alpha;
        let arms: Vec<Arm> = self
            .live
            .iter()
            .zip(rewards)
            .map(|(live, (own, table))| {
                let prior = if !cluster_known || own.n > 0 {
                    RewardStats {
                        n: table.n,
                        mean: table.mean,
                        var: table.var,
                    }
                } else {
                    live.predicted
                        .get(cluster)
                        .map(|imp| RewardStats {
                            n: 1,
                            mean: alpha * imp,
                            var: 0.0,
                        })
                        .unwrap_or_default()
                };
                Arm {
                    id: live.id.to_string(),
                    cluster: RewardStats {
                        n: own.n,
                        mean: own.mean,
                        var: own.var,
                    },
                    table: prior,
                }
            })
            .collect();
        let decision = choose(
            self.settings.policy,
            &arms,
            &self.settings.params,
            &mut self.rng,
        )?;
        Ok((self.live[decision.arm].id.clone(), Some(decision)))
    }

    async fn session(&mut self, layout: &LayoutId) -> Result<&QuerySession<'a>, DbError> {
        if !self.sessions.contains_key(layout) {
            let session = self.ws.query_session(&self.table, Some(layout)).await?;
            self.sessions.insert(layout.clone(), session);
        }
        Ok(&self.sessions[layout])
    }

    /// Plans `sql` for its cluster, routes it, runs it on the chosen layout and logs it.
    pub async fn run(
        &mut self,
        sql: &str,
        origin: QueryOrigin,
        workload: Option<&str>,
    ) -> Result<QueryOutcome, DbError> {
        match self.attempt(sql, origin, workload, false).await {
            Attempt::Finished(result) => result,
            Attempt::LayoutGone(e) => Err(e),
        }
    }

    /// `run`; with `retry_if_gone`, a layout that left service under the query (or before its
    /// session opened) is reported as `Attempt::LayoutGone` without logging, for `reset`.
    pub(crate) async fn attempt(
        &mut self,
        sql: &str,
        origin: QueryOrigin,
        workload: Option<&str>,
        retry_if_gone: bool,
    ) -> Attempt {
        let gone = |ws: &Workspace, table: &TableName, layout: &LayoutId, e: DbError| {
            if retry_if_gone && ws.layout_left_service(table, layout) {
                Attempt::LayoutGone(e)
            } else {
                Attempt::Finished(Err(e))
            }
        };
        let active = self.live[0].id.clone();
        let shape = match self.session(&active).await {
            Ok(session) => session.shape_of(sql).await,
            Err(e) => return gone(self.ws, &self.table, &active, e),
        };
        let (layout, decision) = match self.decide(shape.cluster.as_deref()) {
            Ok(d) => d,
            Err(e) => return Attempt::Finished(Err(e)),
        };
        let route = decision.map(|d| RouteChoice {
            policy: self.settings.policy.as_str().to_string(),
            explored: d.explored,
        });
        match self.session(&layout).await {
            Ok(session) => {
                session
                    .attempt(sql, origin, workload, shape, route, retry_if_gone)
                    .await
            }
            Err(e) => gone(self.ws, &self.table, &layout, e),
        }
    }

    /// Forgets every session and re-reads the live layouts (after a layout left service).
    pub(crate) fn reset(&mut self) -> Result<(), DbError> {
        self.sessions.clear();
        self.refresh()
    }
}
