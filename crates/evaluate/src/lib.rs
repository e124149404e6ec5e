//! dbopt-evaluate: is a layout paying off?
//!
//! Sits after migrate and before route in the data flow. Pure: it turns measured queries into
//! rolling-window figures per layout and cluster (percentiles, means, improvement against the
//! baseline layout, reward), turns a canary replay into a verdict, decides when a layout has
//! regressed long enough to roll back, and computes the reward statistics the router's bandit
//! policies consume. The facade (`dbopt::evaluate`, `dbopt::canary`) does the IO.
//!
//! The reward of a layout for one query is
//! `ALPHA * improvement - BETA * amortized_rewrite_cost`, where `improvement` is the relative
//! drop of the objective (bytes scanned or latency) against the baseline layout's mean for the
//! same cluster, and the rewrite cost is the layout's measured rewrite (bytes read + written)
//! in units of the table's size, spread over the queries the layout has served.

mod canary;
mod error;
mod regress;
mod reward;
mod window;

pub use canary::{CanaryQuery, CanarySummary, canary_verdict, summarize};
pub use error::EvaluateError;
pub use regress::{regressed, should_roll_back};
pub use reward::{
    ArmInput, ArmReward, ClusterSums, Moments, Objective, RewardWeights, amortized_rewrite_cost,
    arm_rewards, improvement, reward_moments,
};
pub use window::{Sample, WindowStats, percentile, window_stats};
