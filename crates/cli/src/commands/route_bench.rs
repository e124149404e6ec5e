//! `dbopt route-bench` (hidden): times routing on a scratch copy of the catalog, for the
//! benchmark. One routing step is the policy decision (reading the table's route sums and
//! choosing a layout) plus the catalog write routing adds to a query's log transaction (its
//! route-sum update), measured as the difference between logging a routed query and logging
//! the same query without a cluster.

use super::table_name;
use anyhow::Result;
use clap::Args;
use dbopt::route::Router;
use dbopt::workload::percentile;
use dbopt::{DbError, Workspace};
use dbopt_catalog::{QueryOrigin, RouteChoice};
use serde::Serialize;
use std::time::Instant;

/// `dbopt route-bench`
#[derive(Debug, Args)]
pub struct RouteBenchArgs {
    /// The table whose layouts and route sums are used.
    #[arg(long)]
    pub table_name: String,
    /// Routing decisions to time.
    #[arg(long, default_value_t = 2000)]
    pub decisions: u64,
}

/// Timings in microseconds.
#[derive(Debug, Serialize)]
struct Timings {
    policy: String,
    layouts: usize,
    decisions: u64,
    decide_mean_us: f64,
    decide_p99_us: f64,
    log_routed_mean_us: f64,
    log_plain_mean_us: f64,
    overhead_mean_us: f64,
}

/// Runs `dbopt route-bench`.
pub fn run(ws: Workspace, args: RouteBenchArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    // A scratch copy, so the timed writes never touch the real query log.
    let scratch = tempfile::tempdir().map_err(|e| DbError::io("creating a scratch dir", e))?;
    let copy = scratch.path().join("metadata.db");
    ws.catalog().backup_to(&copy)?;
    let config = ws
        .config()
        .with_paths(&ws.config().data_dir(), &copy, "route-bench");
    let scratch_ws = Workspace::open(config)?;
    let settings = scratch_ws.loop_settings()?;
    let policy = settings.policy.to_string();
    let mut router = Router::new(&scratch_ws, &table, settings, 7)?;
    let clusters: Vec<String> = scratch_ws
        .catalog()
        .route_stats(&table)?
        .into_iter()
        .map(|s| s.cluster_id)
        .collect();
    if clusters.is_empty() {
        anyhow::bail!(DbError::BadArgument(format!(
            "table '{table}' has no route statistics yet: run a workload on it first"
        )));
    }
    let template = scratch_ws
        .catalog()
        .queries_for_table(&table, None, Some(1))?
        .pop()
        .map(|q| q.entry)
        .ok_or_else(|| DbError::NoLoggedQueries {
            table: table.to_string(),
            window: String::new(),
        })?;
    let mut decide = Vec::new();
    let (mut routed, mut plain) = (0.0, 0.0);
    for i in 0..args.decisions {
        let cluster = &clusters[i as usize % clusters.len()];
        let t = Instant::now();
        let (layout, decision) = router.decide(Some(cluster))?;
        decide.push(t.elapsed().as_secs_f64() * 1e6);
        let mut entry = template.clone();
        entry.origin = QueryOrigin::Workload;
        entry.layout_id = Some(layout);
        entry.cluster_id = Some(cluster.clone());
        entry.route = decision.map(|d| RouteChoice {
            policy: policy.clone(),
            explored: d.explored,
        });
        let t = Instant::now();
        scratch_ws.catalog().log_query(&entry)?;
        routed += t.elapsed().as_secs_f64() * 1e6;
        entry.cluster_id = None;
        entry.route = None;
        let t = Instant::now();
        scratch_ws.catalog().log_query(&entry)?;
        plain += t.elapsed().as_secs_f64() * 1e6;
    }
    let n = args.decisions.max(1) as f64;
    decide.sort_by(f64::total_cmp);
    let mean = decide.iter().sum::<f64>() / n;
    let timings = Timings {
        policy,
        layouts: router.live().len(),
        decisions: args.decisions,
        decide_mean_us: mean,
        decide_p99_us: percentile(&decide, 0.99),
        log_routed_mean_us: routed / n,
        log_plain_mean_us: plain / n,
        overhead_mean_us: mean + (routed - plain).max(0.0) / n,
    };
    println!("{}", serde_json::to_string_pretty(&timings)?);
    Ok(())
}
