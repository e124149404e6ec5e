//! dbopt-route: per-query choice of a table's layout by a multi-armed bandit policy.
//!
//! Sits after evaluate in the data flow: for each live layout ("arm") of a table, the facade
//! computes reward statistics in the incoming query's workload cluster and table-wide, and this
//! crate picks the layout the next query runs on (epsilon-greedy, UCB1 or Thompson sampling).
//! Rewards are roughly in [-1, 1] (relative improvement against a baseline layout minus an
//! amortized cost) and are treated as Gaussian.
//!
//! Pure: no IO, no clock; randomness only through the `rand::Rng` the caller passes in, so a
//! decision is deterministic for a given seed.
//!
//! By convention arm index 0 is the baseline / currently active layout: when no arm has any
//! data, it is the "best" arm.

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Errors of the routing policies.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouteError {
    /// The policy name is not one of [`Policy::NAMES`].
    #[error("unknown routing policy `{name}` (expected one of: {})", Policy::NAMES.join(", "))]
    UnknownPolicy {
        /// The name that was given.
        name: String,
    },
    /// The exploration rate is not a finite number in [0, 1].
    #[error("invalid exploration rate {0}: must be a finite number in [0, 1]")]
    InvalidRate(f64),
    /// A policy parameter is negative or not finite.
    #[error("invalid policy parameter {name} = {value}: must be finite and >= 0")]
    InvalidParam {
        /// The parameter's name.
        name: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// There is no arm to choose from.
    #[error("no layout to route to: the arm list is empty")]
    NoArms,
}

/// A routing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Exploit the best arm, explore the others uniformly with probability `exploration_rate`.
    EpsilonGreedy,
    /// Upper confidence bound: mean plus `ucb_c * sqrt(2 ln N / n)`.
    Ucb1,
    /// Thompson sampling from a Gaussian posterior of each arm's mean.
    Thompson,
}

impl Policy {
    /// The policies' names, in the order of the enum's variants.
    pub const NAMES: [&'static str; 3] = ["epsilon-greedy", "ucb1", "thompson"];

    /// The policy's name (one of [`Policy::NAMES`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::EpsilonGreedy => Self::NAMES[0],
            Policy::Ucb1 => Self::NAMES[1],
            Policy::Thompson => Self::NAMES[2],
        }
    }

    /// Parses a policy name (surrounding whitespace and ASCII case are ignored).
    pub fn parse(text: &str) -> Result<Policy, RouteError> {
        let wanted = text.trim().to_ascii_lowercase();
        [Policy::EpsilonGreedy, Policy::Ucb1, Policy::Thompson]
            .into_iter()
            .find(|p| p.as_str() == wanted)
            .ok_or_else(|| RouteError::UnknownPolicy {
                name: text.to_string(),
            })
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Policy {
    type Err = RouteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::parse(s)
    }
}

/// Reward statistics of one arm in one context: count, mean reward, and variance of the per-query reward.
///
/// `var` is the population variance (sum of squared deviations divided by `n`); it is 0 when
/// `n <= 1`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RewardStats {
    /// Number of rewarded queries.
    pub n: u64,
    /// Mean reward (0 when `n == 0`).
    pub mean: f64,
    /// Population variance of the reward (0 when `n <= 1`).
    pub var: f64,
}

impl RewardStats {
    /// Statistics of a sample (two-pass mean and population variance; empty -> all zero).
    pub fn from_samples(xs: &[f64]) -> Self {
        if xs.is_empty() {
            return Self::default();
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        Self {
            n: xs.len() as u64,
            mean,
            var,
        }
    }

    /// Statistics from running sums (count, sum of rewards, sum of squared rewards).
    pub fn from_sums(n: u64, sum: f64, sum_sq: f64) -> Self {
        if n == 0 {
            return Self::default();
        }
        let nf = n as f64;
        let mean = sum / nf;
        let var = (sum_sq / nf - mean * mean).max(0.0);
        Self { n, mean, var }
    }

    /// Statistics of the union of both samples (exact pooled mean and population variance).
    pub fn merge(&self, other: &Self) -> Self {
        if self.n == 0 {
            return *other;
        }
        if other.n == 0 {
            return *self;
        }
        let (n1, n2) = (self.n as f64, other.n as f64);
        let n = n1 + n2;
        let delta = other.mean - self.mean;
        let mean = self.mean + delta * n2 / n;
        let m2 = self.var * n1 + other.var * n2 + delta * delta * n1 * n2 / n;
        Self {
            n: self.n + other.n,
            mean,
            var: (m2 / n).max(0.0),
        }
    }
}

/// One candidate layout for a query: its id, its statistics in the query's cluster, and table-wide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    /// The layout's id.
    pub id: String,
    /// Reward statistics of this layout in the query's workload cluster.
    pub cluster: RewardStats,
    /// Reward statistics of this layout over all of the table's queries.
    pub table: RewardStats,
}

/// Tuning of the policies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyParams {
    /// Epsilon of epsilon-greedy: the share of traffic sent to non-best arms, in [0, 1].
    pub exploration_rate: f64,
    /// UCB1 exploration constant (>= 0).
    pub ucb_c: f64,
    /// Thompson prior variance of an unknown arm, and floor of every arm's variance (>= 0).
    pub prior_var: f64,
    /// Maximum pseudo-count borrowed from table-wide statistics for an arm unseen in the cluster.
    pub table_prior_weight: u64,
}

impl Default for PolicyParams {
    fn default() -> Self {
        Self {
            exploration_rate: 0.2,
            ucb_c: 1.0,
            prior_var: 0.25,
            table_prior_weight: 2,
        }
    }
}

impl PolicyParams {
    /// Checks the rate is a finite number in [0, 1] and `ucb_c` / `prior_var` are finite and >= 0.
    pub fn validate(&self) -> Result<(), RouteError> {
        let rate = self.exploration_rate;
        if !rate.is_finite() || !(0.0..=1.0).contains(&rate) {
            return Err(RouteError::InvalidRate(rate));
        }
        for (name, value) in [("ucb_c", self.ucb_c), ("prior_var", self.prior_var)] {
            if !value.is_finite() || value < 0.0 {
                return Err(RouteError::InvalidParam { name, value });
            }
        }
        Ok(())
    }
}

/// What the policy chose and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Index into the arms of the chosen layout.
    pub arm: usize,
    /// Whether the chosen arm is not the arm with the best effective mean.
    pub explored: bool,
    /// Index of the arm with the best effective mean (0 when no arm has data).
    pub best: usize,
    /// The score each arm got: effective mean (epsilon-greedy), UCB index (UCB1; `f64::MAX` for
    /// an untried arm, finite so the decision serializes), or posterior sample (Thompson).
    pub scores: Vec<f64>,
    /// One short human-readable line explaining the choice.
    pub reason: String,
}

/// Effective statistics of an arm for its cluster: the cluster's own when it has samples; otherwise the table-wide mean with a pseudo-count of min(table.n, table_prior_weight) (a cluster no layout has seen starts from the table-wide figures); otherwise unknown (n = 0).
pub fn effective(arm: &Arm, params: &PolicyParams) -> RewardStats {
    if arm.cluster.n > 0 {
        return arm.cluster;
    }
    let n = arm.table.n.min(params.table_prior_weight);
    if n == 0 {
        return RewardStats::default();
    }
    RewardStats {
        n,
        mean: arm.table.mean,
        var: arm.table.var,
    }
}

/// Index of the arm with the highest effective mean among those with data (ties: lowest index; none: 0).
pub fn best_arm(stats: &[RewardStats]) -> usize {
    let mut best: Option<usize> = None;
    for (i, s) in stats.iter().enumerate() {
        if s.n == 0 {
            continue;
        }
        if best.is_none_or(|b| s.mean > stats[b].mean) {
            best = Some(i);
        }
    }
    best.unwrap_or(0)
}

/// Picks an arm. arms must be non-empty (else RouteError::NoArms).
pub fn choose(
    policy: Policy,
    arms: &[Arm],
    params: &PolicyParams,
    rng: &mut impl Rng,
) -> Result<Decision, RouteError> {
    params.validate()?;
    if arms.is_empty() {
        return Err(RouteError::NoArms);
    }
    let stats: Vec<RewardStats> = arms.iter().map(|a| effective(a, params)).collect();
    let best = best_arm(&stats);
    let (arm, scores, reason) = match policy {
        Policy::EpsilonGreedy => epsilon_greedy(arms, &stats, best, params, rng),
        Policy::Ucb1 => ucb1(arms, &stats, params),
        Policy::Thompson => thompson(arms, &stats, params, rng),
    };
    Ok(Decision {
        arm,
        explored: arm != best,
        best,
        scores,
        reason,
    })
}

/// Epsilon-greedy: best with probability 1 - rate, else uniform among the other arms.
fn epsilon_greedy(
    arms: &[Arm],
    stats: &[RewardStats],
    best: usize,
    params: &PolicyParams,
    rng: &mut impl Rng,
) -> (usize, Vec<f64>, String) {
    let scores: Vec<f64> = stats.iter().map(|s| s.mean).collect();
    if arms.len() == 1 {
        let reason = format!("epsilon-greedy: {} is the only arm", label(arms, 0));
        return (0, scores, reason);
    }
    if rng.random::<f64>() < params.exploration_rate {
        let pick = rng.random_range(0..arms.len() - 1);
        let arm = if pick >= best { pick + 1 } else { pick };
        let reason = format!(
            "epsilon-greedy: explore {} (best is {}, mean {:.3})",
            label(arms, arm),
            label(arms, best),
            stats[best].mean
        );
        (arm, scores, reason)
    } else {
        let reason = if stats[best].n == 0 {
            format!(
                "epsilon-greedy: no arm has data, exploit baseline {}",
                label(arms, best)
            )
        } else {
            format!(
                "epsilon-greedy: exploit {} with best mean {:.3}",
                label(arms, best),
                stats[best].mean
            )
        };
        (best, scores, reason)
    }
}

/// UCB1: first untried arm, else argmax of clipped mean + c * sqrt(2 ln N / n).
fn ucb1(arms: &[Arm], stats: &[RewardStats], params: &PolicyParams) -> (usize, Vec<f64>, String) {
    let total: u64 = stats.iter().map(|s| s.n).sum();
    let ln_total = if total > 0 { (total as f64).ln() } else { 0.0 };
    let scores: Vec<f64> = stats
        .iter()
        .map(|s| {
            if s.n == 0 {
                f64::MAX
            } else {
                s.mean.clamp(-1.0, 1.0) + params.ucb_c * (2.0 * ln_total / s.n as f64).sqrt()
            }
        })
        .collect();
    if let Some(untried) = stats.iter().position(|s| s.n == 0) {
        let reason = format!("ucb1: {} never tried in this cluster", label(arms, untried));
        return (untried, scores, reason);
    }
    let arm = argmax(&scores);
    let reason = match runner_up(&scores, arm) {
        Some(other) => format!(
            "ucb1: index {:.3} of {} beat {:.3}",
            scores[arm],
            label(arms, arm),
            scores[other]
        ),
        None => format!("ucb1: {} is the only arm", label(arms, arm)),
    };
    (arm, scores, reason)
}

/// Thompson: sample each arm's mean from its Gaussian posterior and take the argmax.
fn thompson(
    arms: &[Arm],
    stats: &[RewardStats],
    params: &PolicyParams,
    rng: &mut impl Rng,
) -> (usize, Vec<f64>, String) {
    let scores: Vec<f64> = stats
        .iter()
        .map(|s| {
            let (mean, var) = if s.n == 0 {
                (0.0, params.prior_var)
            } else {
                (s.mean, s.var.max(params.prior_var) / (s.n as f64 + 1.0))
            };
            mean + var.sqrt() * standard_normal(rng)
        })
        .collect();
    let arm = argmax(&scores);
    let reason = match runner_up(&scores, arm) {
        Some(other) => format!(
            "thompson sample {:.3} of {} beat {:.3}",
            scores[arm],
            label(arms, arm),
            scores[other]
        ),
        None => format!(
            "thompson sample {:.3} of {} (only arm)",
            scores[arm],
            label(arms, arm)
        ),
    };
    (arm, scores, reason)
}

/// One standard normal draw by the Box-Muller transform.
fn standard_normal(rng: &mut impl Rng) -> f64 {
    // 1 - U lies in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Index of the highest score (ties: lowest index; NaN never wins over a number).
fn argmax(scores: &[f64]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate().skip(1) {
        if s > scores[best] || scores[best].is_nan() {
            best = i;
        }
    }
    best
}

/// Index of the highest score other than `skip`, if any.
fn runner_up(scores: &[f64], skip: usize) -> Option<usize> {
    (0..scores.len())
        .filter(|&i| i != skip)
        .reduce(|a, b| if scores[b] > scores[a] { b } else { a })
}

/// "arm i (id)" for reasons.
fn label(arms: &[Arm], i: usize) -> String {
    format!("arm {i} ({})", arms[i].id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn stats(n: u64, mean: f64, var: f64) -> RewardStats {
        RewardStats { n, mean, var }
    }

    fn arm(id: &str, cluster: RewardStats, table: RewardStats) -> Arm {
        Arm {
            id: id.to_string(),
            cluster,
            table,
        }
    }

    #[test]
    fn policy_names_round_trip() {
        for (i, name) in Policy::NAMES.iter().enumerate() {
            let p = Policy::parse(name).unwrap();
            assert_eq!(p.as_str(), *name);
            assert_eq!(p.to_string(), *name);
            assert_eq!(name.parse::<Policy>().unwrap(), p);
            assert_eq!(
                p,
                [Policy::EpsilonGreedy, Policy::Ucb1, Policy::Thompson][i]
            );
        }
        assert_eq!(Policy::parse(" UCB1 ").unwrap(), Policy::Ucb1);
    }

    #[test]
    fn unknown_policy_error_names_bad_name_and_valid_ones() {
        let err = Policy::parse("softmax").unwrap_err();
        assert_eq!(
            err,
            RouteError::UnknownPolicy {
                name: "softmax".into()
            }
        );
        let msg = err.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.contains("softmax"), "{msg}");
        for name in Policy::NAMES {
            assert!(msg.contains(name), "{msg} lacks {name}");
        }
    }

    #[test]
    fn validate_rejects_bad_params() {
        assert_eq!(PolicyParams::default().validate(), Ok(()));
        for rate in [0.0, 1.0, 0.5] {
            let p = PolicyParams {
                exploration_rate: rate,
                ..Default::default()
            };
            assert_eq!(p.validate(), Ok(()));
        }
        for rate in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let p = PolicyParams {
                exploration_rate: rate,
                ..Default::default()
            };
            match p.validate() {
                Err(RouteError::InvalidRate(r)) => assert!(r.to_bits() == rate.to_bits()),
                other => panic!("rate {rate}: {other:?}"),
            }
        }
        let p = PolicyParams {
            ucb_c: -1.0,
            ..Default::default()
        };
        assert_eq!(
            p.validate(),
            Err(RouteError::InvalidParam {
                name: "ucb_c",
                value: -1.0
            })
        );
        let p = PolicyParams {
            prior_var: f64::INFINITY,
            ..Default::default()
        };
        assert!(matches!(
            p.validate(),
            Err(RouteError::InvalidParam {
                name: "prior_var",
                ..
            })
        ));
        // choose refuses invalid params too.
        let mut rng = StdRng::seed_from_u64(1);
        let arms = [arm("a", stats(1, 0.0, 0.0), stats(1, 0.0, 0.0))];
        let bad = PolicyParams {
            exploration_rate: 1.5,
            ..Default::default()
        };
        assert_eq!(
            choose(Policy::EpsilonGreedy, &arms, &bad, &mut rng),
            Err(RouteError::InvalidRate(1.5))
        );
    }

    #[test]
    fn merge_equals_stats_of_concatenation() {
        let mut rng = StdRng::seed_from_u64(7);
        for (la, lb) in [(0, 5), (5, 0), (1, 1), (3, 17), (100, 41)] {
            let a: Vec<f64> = (0..la).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
            let b: Vec<f64> = (0..lb).map(|_| rng.random::<f64>() * 3.0 - 0.5).collect();
            let merged = RewardStats::from_samples(&a).merge(&RewardStats::from_samples(&b));
            let all: Vec<f64> = a.iter().chain(&b).copied().collect();
            let direct = RewardStats::from_samples(&all);
            assert_eq!(merged.n, direct.n);
            assert!(
                (merged.mean - direct.mean).abs() < 1e-9,
                "{merged:?} {direct:?}"
            );
            assert!(
                (merged.var - direct.var).abs() < 1e-9,
                "{merged:?} {direct:?}"
            );
        }
        let s = RewardStats::from_samples(&[1.0, 3.0]);
        assert_eq!(s, stats(2, 2.0, 1.0));
        let sums = RewardStats::from_sums(2, 4.0, 10.0);
        assert!((sums.mean - 2.0).abs() < 1e-12 && (sums.var - 1.0).abs() < 1e-12);
    }

    #[test]
    fn empty_cluster_starts_from_table_figures() {
        let params = PolicyParams::default();
        let empty = RewardStats::default();
        // Cluster has data: its own figures win.
        let own = arm("a", stats(3, 0.1, 0.2), stats(50, 0.9, 0.01));
        assert_eq!(effective(&own, &params), stats(3, 0.1, 0.2));
        // Cluster empty: table mean with pseudo-count min(table.n, weight).
        let borrowed = arm("b", empty, stats(50, 0.4, 0.05));
        assert_eq!(effective(&borrowed, &params), stats(2, 0.4, 0.05));
        let few = arm("c", empty, stats(1, -0.3, 0.0));
        assert_eq!(effective(&few, &params), stats(1, -0.3, 0.0));
        // Nothing anywhere: unknown.
        assert_eq!(effective(&arm("d", empty, empty), &params), empty);
        // Weight 0 disables borrowing.
        let no_prior = PolicyParams {
            table_prior_weight: 0,
            ..params
        };
        assert_eq!(effective(&borrowed, &no_prior).n, 0);

        // Epsilon-greedy's best for an empty cluster is the table-wide best.
        let arms = [
            arm("base", empty, stats(40, 0.0, 0.1)),
            arm("x", empty, stats(30, 0.2, 0.1)),
            arm("y", empty, stats(20, 0.6, 0.1)),
            arm("z", empty, empty),
        ];
        let greedy = PolicyParams {
            exploration_rate: 0.0,
            ..params
        };
        let mut rng = StdRng::seed_from_u64(3);
        let d = choose(Policy::EpsilonGreedy, &arms, &greedy, &mut rng).unwrap();
        assert_eq!((d.arm, d.best, d.explored), (2, 2, false));
        assert_eq!(d.scores, vec![0.0, 0.2, 0.6, 0.0]);
    }

    #[test]
    fn no_data_anywhere_best_is_baseline() {
        let empty = RewardStats::default();
        let arms = [arm("base", empty, empty), arm("other", empty, empty)];
        let params = PolicyParams {
            exploration_rate: 0.0,
            ..Default::default()
        };
        let mut rng = StdRng::seed_from_u64(0);
        let d = choose(Policy::EpsilonGreedy, &arms, &params, &mut rng).unwrap();
        assert_eq!((d.arm, d.best), (0, 0));
    }

    #[test]
    fn epsilon_greedy_explores_at_the_rate() {
        let rate = 0.2;
        let params = PolicyParams {
            exploration_rate: rate,
            ..Default::default()
        };
        let empty = RewardStats::default();
        let arms = [
            arm("base", stats(10, 0.1, 0.1), empty),
            arm("best", stats(10, 0.5, 0.1), empty),
            arm("mid", stats(10, 0.3, 0.1), empty),
            arm("new", empty, empty),
        ];
        let mut rng = StdRng::seed_from_u64(42);
        let draws = 20_000;
        let mut counts = [0usize; 4];
        let mut explored = 0usize;
        for _ in 0..draws {
            let d = choose(Policy::EpsilonGreedy, &arms, &params, &mut rng).unwrap();
            assert_eq!(d.best, 1);
            assert_eq!(d.explored, d.arm != d.best);
            counts[d.arm] += 1;
            explored += usize::from(d.explored);
        }
        let share = explored as f64 / draws as f64;
        assert!((share - rate).abs() < 0.02, "explored share {share}");
        assert_eq!(explored, draws - counts[1]);
        // The others (including the one without data) share exploration uniformly.
        for i in [0, 2, 3] {
            let s = counts[i] as f64 / draws as f64;
            assert!((s - rate / 3.0).abs() < 0.015, "arm {i} share {s}");
        }
        // One arm: always it, never explored.
        let single = [arms[0].clone()];
        let all_explore = PolicyParams {
            exploration_rate: 1.0,
            ..params
        };
        let d = choose(Policy::EpsilonGreedy, &single, &all_explore, &mut rng).unwrap();
        assert_eq!((d.arm, d.explored), (0, false));
        // Rate 1 with two arms always explores.
        let two = [arms[0].clone(), arms[1].clone()];
        for _ in 0..100 {
            let d = choose(Policy::EpsilonGreedy, &two, &all_explore, &mut rng).unwrap();
            assert_eq!((d.arm, d.explored), (0, true));
        }
    }

    #[test]
    fn ucb1_tries_untried_arms_first_then_uses_index() {
        let params = PolicyParams::default();
        let empty = RewardStats::default();
        let mut rng = StdRng::seed_from_u64(0);
        let arms = [
            arm("a", stats(5, 0.9, 0.0), empty),
            arm("b", empty, empty),
            arm("c", empty, empty),
        ];
        let d = choose(Policy::Ucb1, &arms, &params, &mut rng).unwrap();
        assert_eq!((d.arm, d.best, d.explored), (1, 0, true));
        assert!(d.reason.contains("never tried"), "{}", d.reason);

        // All tried: the index with N = 10 (mean clipped to 1).
        let arms = [
            arm("a", stats(8, 2.0, 0.0), empty),
            arm("b", stats(2, 0.5, 0.0), empty),
        ];
        let d = choose(Policy::Ucb1, &arms, &params, &mut rng).unwrap();
        let ln_n = 10f64.ln();
        let expect = [
            1.0 + (2.0 * ln_n / 8.0).sqrt(),
            0.5 + (2.0 * ln_n / 2.0).sqrt(),
        ];
        assert!((d.scores[0] - expect[0]).abs() < 1e-12);
        assert!((d.scores[1] - expect[1]).abs() < 1e-12);
        assert_eq!(d.arm, if expect[1] > expect[0] { 1 } else { 0 });
        assert_eq!(d.best, 0);

        // Ties go to the lowest index.
        let arms = [
            arm("a", stats(4, 0.3, 0.0), empty),
            arm("b", stats(4, 0.3, 0.0), empty),
        ];
        let d = choose(Policy::Ucb1, &arms, &params, &mut rng).unwrap();
        assert_eq!((d.arm, d.best), (0, 0));
    }

    #[test]
    fn thompson_is_deterministic_per_seed_and_follows_posterior() {
        let params = PolicyParams::default();
        let empty = RewardStats::default();
        let arms = [
            arm("a", stats(1000, 0.0, 0.05), empty),
            arm("b", stats(1000, 0.3, 0.05), empty),
            arm("c", empty, empty),
        ];
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..50)
                .map(|_| choose(Policy::Thompson, &arms, &params, &mut rng).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
        // Sample sd of a well-known arm is sqrt(0.25 / 1001) ~ 0.016: scores stay near the mean.
        for d in run(11) {
            assert!((d.scores[1] - 0.3).abs() < 0.1, "{:?}", d.scores);
            assert_eq!(d.best, 1);
            assert_eq!(d.explored, d.arm != 1);
        }
        // Box-Muller draws are standard normal.
        let mut rng = StdRng::seed_from_u64(5);
        let xs: Vec<f64> = (0..20_000).map(|_| standard_normal(&mut rng)).collect();
        let s = RewardStats::from_samples(&xs);
        assert!(s.mean.abs() < 0.03 && (s.var - 1.0).abs() < 0.05, "{s:?}");
    }

    #[test]
    fn no_arms_is_an_error() {
        let mut rng = StdRng::seed_from_u64(0);
        for policy in [Policy::EpsilonGreedy, Policy::Ucb1, Policy::Thompson] {
            assert_eq!(
                choose(policy, &[], &PolicyParams::default(), &mut rng),
                Err(RouteError::NoArms)
            );
        }
    }
}
