//! The objective, the reward and the reward statistics the router consumes.

use crate::EvaluateError;
use serde::{Deserialize, Serialize};

/// What a layout is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Bytes scanned: stable on a noisy shared machine.
    Bytes,
    /// Wall-clock latency: what users feel.
    Latency,
}

impl Objective {
    /// The accepted names.
    pub const NAMES: [&'static str; 2] = ["bytes", "latency"];

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Objective::Bytes => "bytes",
            Objective::Latency => "latency",
        }
    }

    /// Parses `bytes` or `latency`.
    pub fn parse(text: &str) -> Result<Objective, EvaluateError> {
        match text.trim() {
            "bytes" => Ok(Objective::Bytes),
            "latency" => Ok(Objective::Latency),
            other => Err(EvaluateError::UnknownObjective(other.to_string())),
        }
    }
}

impl std::fmt::Display for Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `ALPHA` (weight of the improvement) and `BETA` (weight of the amortized rewrite cost).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RewardWeights {
    /// Weight of the improvement against the baseline.
    pub alpha: f64,
    /// Weight of the amortized rewrite cost.
    pub beta: f64,
}

impl RewardWeights {
    /// Checked weights: both finite and non-negative.
    pub fn new(alpha: f64, beta: f64) -> Result<RewardWeights, EvaluateError> {
        for (name, value) in [("alpha", alpha), ("beta", beta)] {
            if !value.is_finite() || value < 0.0 {
                return Err(EvaluateError::BadWeight { name, value });
            }
        }
        Ok(RewardWeights { alpha, beta })
    }
}

/// Count, sum and sum of squares of one measured quantity.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Moments {
    /// Observations.
    pub n: u64,
    /// Their sum.
    pub sum: f64,
    /// The sum of their squares.
    pub sum_sq: f64,
}

impl Moments {
    /// The mean (None without observations).
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// The population variance (0 with fewer than two observations).
    pub fn var(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let n = self.n as f64;
        let mean = self.sum / n;
        (self.sum_sq / n - mean * mean).max(0.0)
    }

    /// The moments of both sets together.
    pub fn merge(&self, other: &Moments) -> Moments {
        Moments {
            n: self.n + other.n,
            sum: self.sum + other.sum,
            sum_sq: self.sum_sq + other.sum_sq,
        }
    }
}

/// Relative improvement of `candidate` over `baseline` (1 - candidate / baseline mean); None
/// when either has no observations. A baseline that scanned nothing counts as 0 improvement
/// when the candidate also scanned nothing, else as the candidate being worse by its mean.
pub fn improvement(candidate: &Moments, baseline: &Moments) -> Option<f64> {
    let c = candidate.mean()?;
    let b = baseline.mean()?;
    if b <= 0.0 {
        return Some(if c <= 0.0 { 0.0 } else { -1.0 });
    }
    Some(1.0 - c / b)
}

/// A layout's rewrite cost in table sizes (bytes read + written over the table's bytes),
/// spread over the `served` queries it has answered plus the next one. The initial layout and
/// adopted layouts cost nothing.
pub fn amortized_rewrite_cost(rewrite_bytes: u64, table_bytes: u64, served: u64) -> f64 {
    if rewrite_bytes == 0 || table_bytes == 0 {
        return 0.0;
    }
    (rewrite_bytes as f64 / table_bytes as f64) / (served as f64 + 1.0)
}

/// Mean and variance of the per-query reward of a layout with objective `arm` moments against
/// the baseline's, where each query's reward is `alpha * (1 - x / baseline_mean) - beta * cost`.
/// None when either side has no observations.
pub fn reward_moments(
    arm: &Moments,
    baseline: &Moments,
    weights: RewardWeights,
    cost: f64,
) -> Option<(f64, f64)> {
    let imp = improvement(arm, baseline)?;
    let b = baseline.mean()?;
    let var = if b > 0.0 {
        weights.alpha * weights.alpha * arm.var() / (b * b)
    } else {
        0.0
    };
    Some((weights.alpha * imp - weights.beta * cost, var))
}

/// The objective's sums of one layout in one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSums {
    /// The cluster id.
    pub cluster: String,
    /// The layout id.
    pub layout: String,
    /// The objective's moments (bytes or latency) over the queries it answered.
    pub moments: Moments,
}

/// One layout competing for queries, with its measured rewrite bytes (0 for the initial or an
/// adopted layout).
#[derive(Debug, Clone, PartialEq)]
pub struct ArmInput {
    /// The layout id.
    pub layout: String,
    /// Bytes read + written by the rewrite that built it.
    pub rewrite_bytes: u64,
}

/// Reward count, mean and variance of one layout in one context.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ArmReward {
    /// Queries behind the figures.
    pub n: u64,
    /// Mean per-query reward.
    pub mean: f64,
    /// Variance of the per-query reward.
    pub var: f64,
}

/// For each arm, its reward in `cluster` (zero count when the cluster has no figures for it or
/// for the baseline) and table-wide (pooled over the clusters where both have figures), each
/// query's reward measured against the `baseline` layout's mean in the same cluster.
pub fn arm_rewards(
    sums: &[ClusterSums],
    arms: &[ArmInput],
    baseline: &str,
    cluster: Option<&str>,
    weights: RewardWeights,
    table_bytes: u64,
) -> Vec<(ArmReward, ArmReward)> {
    let find = |c: &str, l: &str| {
        sums.iter()
            .find(|s| s.cluster == c && s.layout == l)
            .map(|s| s.moments)
    };
    arms.iter()
        .map(|arm| {
            let served: u64 = sums
                .iter()
                .filter(|s| s.layout == arm.layout)
                .map(|s| s.moments.n)
                .sum();
            let cost = amortized_rewrite_cost(arm.rewrite_bytes, table_bytes, served);
            let in_cluster = |c: &str| -> Option<ArmReward> {
                let m = find(c, &arm.layout)?;
                let (mean, var) = reward_moments(&m, &find(c, baseline)?, weights, cost)?;
                Some(ArmReward { n: m.n, mean, var })
            };
            let own = cluster.and_then(in_cluster).unwrap_or_default();
            let mut pooled = ArmReward::default();
            let (mut sum, mut sum_sq) = (0.0, 0.0);
            for s in sums.iter().filter(|s| s.layout == arm.layout) {
                if let Some(r) = in_cluster(&s.cluster) {
                    let n = r.n as f64;
                    pooled.n += r.n;
                    sum += n * r.mean;
                    sum_sq += n * (r.var + r.mean * r.mean);
                }
            }
            if pooled.n > 0 {
                let n = pooled.n as f64;
                pooled.mean = sum / n;
                pooled.var = (sum_sq / n - pooled.mean * pooled.mean).max(0.0);
            }
            (own, pooled)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(xs: &[f64]) -> Moments {
        Moments {
            n: xs.len() as u64,
            sum: xs.iter().sum(),
            sum_sq: xs.iter().map(|x| x * x).sum(),
        }
    }

    #[test]
    fn objective_names() {
        for name in Objective::NAMES {
            assert_eq!(Objective::parse(name).unwrap().as_str(), name);
        }
        let err = Objective::parse("speed").unwrap_err().to_string();
        assert!(err.contains("speed") && err.contains("latency"), "{err}");
    }

    #[test]
    fn weights_must_be_finite_and_non_negative() {
        assert!(RewardWeights::new(1.0, 0.1).is_ok());
        assert!(RewardWeights::new(-1.0, 0.1).is_err());
        assert!(RewardWeights::new(1.0, f64::NAN).is_err());
        assert!(RewardWeights::new(f64::INFINITY, 0.0).is_err());
    }

    #[test]
    fn improvement_is_relative_to_the_baseline() {
        let base = moments(&[100.0, 300.0]);
        assert_eq!(improvement(&moments(&[50.0]), &base), Some(0.75));
        assert_eq!(improvement(&moments(&[400.0]), &base), Some(-1.0));
        assert_eq!(improvement(&Moments::default(), &base), None);
        assert_eq!(improvement(&moments(&[0.0]), &moments(&[0.0])), Some(0.0));
    }

    #[test]
    fn the_rewrite_cost_is_amortized_over_served_queries() {
        assert_eq!(amortized_rewrite_cost(0, 100, 0), 0.0);
        assert_eq!(amortized_rewrite_cost(200, 100, 0), 2.0);
        assert_eq!(amortized_rewrite_cost(200, 100, 9), 0.2);
    }

    #[test]
    fn reward_mean_and_variance_follow_the_formula() {
        let w = RewardWeights::new(1.0, 0.1).unwrap();
        let base = moments(&[100.0, 100.0]);
        let arm = moments(&[20.0, 40.0]);
        let (mean, var) = reward_moments(&arm, &base, w, 2.0).unwrap();
        // improvement 0.7, cost term 0.2
        assert!((mean - 0.5).abs() < 1e-12, "{mean}");
        // per-query rewards 0.8 - 0.2 and 0.6 - 0.2: variance 0.01
        assert!((var - 0.01).abs() < 1e-12, "{var}");
        assert!(reward_moments(&Moments::default(), &base, w, 0.0).is_none());
    }

    #[test]
    fn arm_rewards_compare_each_cluster_with_its_own_baseline() {
        let w = RewardWeights::new(1.0, 0.0).unwrap();
        let sums = vec![
            ClusterSums {
                cluster: "a".into(),
                layout: "initial".into(),
                moments: moments(&[100.0, 100.0]),
            },
            ClusterSums {
                cluster: "a".into(),
                layout: "sorted".into(),
                moments: moments(&[10.0]),
            },
            ClusterSums {
                cluster: "b".into(),
                layout: "initial".into(),
                moments: moments(&[1000.0]),
            },
            ClusterSums {
                cluster: "b".into(),
                layout: "sorted".into(),
                moments: moments(&[1500.0]),
            },
        ];
        let arms = [
            ArmInput {
                layout: "initial".into(),
                rewrite_bytes: 0,
            },
            ArmInput {
                layout: "sorted".into(),
                rewrite_bytes: 0,
            },
        ];
        let r = arm_rewards(&sums, &arms, "initial", Some("a"), w, 1000);
        assert_eq!((r[0].0.n, r[0].0.mean), (2, 0.0));
        assert_eq!(r[1].0.n, 1);
        assert!((r[1].0.mean - 0.9).abs() < 1e-12);
        // Cluster b prefers the initial layout: the sorted one is 50% worse there.
        let b = arm_rewards(&sums, &arms, "initial", Some("b"), w, 1000);
        assert!((b[1].0.mean + 0.5).abs() < 1e-12);
        // Pooled over both clusters: (0.9 - 0.5) / 2.
        assert_eq!(r[1].1.n, 2);
        assert!((r[1].1.mean - 0.2).abs() < 1e-12);
        // An unseen cluster has no figures of its own.
        let new = arm_rewards(&sums, &arms, "initial", Some("zzz"), w, 1000);
        assert_eq!(new[1].0.n, 0);
        // A rewrite cost lowers the reward while few queries have been served.
        let costly = [
            arms[0].clone(),
            ArmInput {
                layout: "sorted".into(),
                rewrite_bytes: 2000,
            },
        ];
        let wc = RewardWeights::new(1.0, 0.1).unwrap();
        let c = arm_rewards(&sums, &costly, "initial", Some("a"), wc, 1000);
        // cost = 2 table sizes over 2 served + 1 queries
        assert!(
            (c[1].0.mean - (0.9 - 0.1 * 2.0 / 3.0)).abs() < 1e-12,
            "{}",
            c[1].0.mean
        );
    }

    #[test]
    fn merged_moments_equal_the_concatenation() {
        let a = moments(&[1.0, 2.0]);
        let b = moments(&[3.0]);
        assert_eq!(a.merge(&b), moments(&[1.0, 2.0, 3.0]));
        assert!((moments(&[1.0, 3.0]).var() - 1.0).abs() < 1e-12);
    }
}
