//! `dbopt demo`: the whole loop on the embedded default, in a fresh directory.
//!
//! 1. generate a shuffled events table;
//! 2. run a workload that leaves one query shape out (`user_sessions`) on the initial layout;
//! 3. autopilot: propose, rewrite, canary, promote;
//! 4. run the full workload pinned to the initial layout (the "before" figures; the held-out
//!    shape appears), then the same queries routed across the live layouts;
//! 5. autopilot again: the new shape is served by no live layout, so it gets its own layout;
//! 6. run the same queries routed once more (the "after" figures).

use crate::autopilot::PassReport;
use crate::generate::GenerateOptions;
use crate::loop_settings::LoopSettings;
use crate::workload::{Routing, WorkloadOptions, WorkloadSummary};
use crate::{DbError, NoProgress, Progress, Workspace};
use dbopt_catalog::{CanaryRecord, ProposalRecord};
use dbopt_core::{LayoutId, TableName};
use dbopt_data::events::RowOrder;
use serde::Serialize;

/// The template the first run leaves out, so a later pass meets a new query shape.
pub const HELD_OUT_TEMPLATE: &str = "user_sessions";

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Event rows.
    pub num_rows: u64,
    /// Queries per workload run.
    pub queries: u64,
    /// Seed of data, queries and routing.
    pub seed: u64,
}

/// What the demo measured.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// Training run on the initial layout (held-out shape excluded).
    pub training: WorkloadSummary,
    /// The full workload pinned to the initial layout (the "before" figures).
    pub before: WorkloadSummary,
    /// The full workload routed after the first autopilot pass.
    pub routed_once: WorkloadSummary,
    /// The same queries routed after the second pass.
    pub after: WorkloadSummary,
    /// The autopilot passes.
    pub passes: Vec<PassReport>,
    /// Every canary run.
    pub canaries: Vec<CanaryRecord>,
    /// Proposals that were built, with predicted and measured figures.
    pub proposals: Vec<ProposalRecord>,
    /// The active layout at the end.
    pub active: LayoutId,
}

impl Workspace {
    /// Runs the demo in this (fresh) workspace; each step is an info event on `tracing`.
    #[tracing::instrument(skip_all, fields(rows = options.num_rows, queries = options.queries))]
    pub async fn demo(
        &self,
        options: &DemoOptions,
        progress: &dyn Progress,
    ) -> Result<DemoReport, DbError> {
        let events = TableName::new("events")?;
        let settings = self.loop_settings()?;
        tracing::info!("generating {} shuffled events", options.num_rows);
        self.generate_events(
            &GenerateOptions {
                table: events.clone(),
                customers_table: TableName::new("customers")?,
                num_rows: options.num_rows,
                seed: options.seed,
                order: RowOrder::Shuffled,
                replace: false,
                rows_per_file: None,
                // About 16 row groups, so pruning has something to work with at any size.
                row_group_rows: Some((options.num_rows / 16).clamp(2048, 131_072) as usize),
            },
            &NoProgress,
        )
        .await?;
        let run = |seed: u64,
                   routing: Option<&LoopSettings>,
                   exclude: &[&str],
                   layout: Option<LayoutId>| WorkloadOptions {
            table: events.clone(),
            customers_table: TableName::new("customers").expect("valid name"),
            num_queries: options.queries,
            seed,
            routing: routing.map(|s| Routing {
                settings: s.clone(),
                seed: options.seed,
            }),
            exclude_templates: exclude
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            layout,
        };
        tracing::info!(
            "training workload: {} queries on the initial layout, without {HELD_OUT_TEMPLATE}",
            options.queries
        );
        let training = self
            .run_events_workload(
                &run(options.seed + 1, None, &[HELD_OUT_TEMPLATE], None),
                progress,
            )
            .await?;
        let mut passes = vec![self.autopilot_pass(&events, &settings).await?];
        tracing::info!("full workload pinned to the initial layout (the before figures)");
        let before = self
            .run_events_workload(
                &run(options.seed + 2, None, &[], Some(LayoutId::initial())),
                progress,
            )
            .await?;
        tracing::info!("the same workload, routed (the held-out shape is new to the live layouts)");
        let routed_once = self
            .run_events_workload(&run(options.seed + 2, Some(&settings), &[], None), progress)
            .await?;
        passes.push(self.autopilot_pass(&events, &settings).await?);
        tracing::info!("full workload, routed again");
        let after = self
            .run_events_workload(&run(options.seed + 2, Some(&settings), &[], None), progress)
            .await?;
        let mut proposals = Vec::new();
        for layout in self.catalog().list_layouts(&events)? {
            if let Some(p) = self
                .catalog()
                .proposal_for_target(&events, &layout.layout_id)?
            {
                proposals.push(p);
            }
        }
        Ok(DemoReport {
            training,
            before,
            routed_once,
            after,
            passes,
            canaries: self.catalog().canaries(&events, None)?,
            proposals,
            active: self.require_table(&events)?.active_layout,
        })
    }
}
