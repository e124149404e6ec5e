//! The learning loop's settings, parsed once from the configuration: routing policy and its
//! parameters, objective, reward weights, evaluation window and thresholds.

use crate::{DbError, Workspace};
use dbopt_core::Config;
use dbopt_evaluate::{Objective, RewardWeights};
use dbopt_route::{Policy, PolicyParams};

/// Settings of routing, evaluation, canary and autopilot.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    /// The routing policy.
    pub policy: Policy,
    /// Policy parameters (epsilon from `exploration_rate`).
    pub params: PolicyParams,
    /// What routing and evaluation optimize.
    pub objective: Objective,
    /// `ALPHA` and `BETA`.
    pub weights: RewardWeights,
    /// The rolling evaluation window, ms.
    pub window_ms: i64,
    /// Fewest queries to score a layout in a window.
    pub min_samples: u64,
    /// Most ready layouts besides the initial one.
    pub max_layouts: u64,
    /// Bytes reduction a canary needs to promote.
    pub min_canary_reduction: f64,
    /// Query shapes a canary replays.
    pub canary_queries: u64,
    /// Regressed windows before autopilot rolls back.
    pub rollback_after_windows: u64,
    /// How much worse than its predecessor a window may be before it counts as regressed.
    pub regression_margin: f64,
    /// Payback horizon of autopilot's rewrites, in workload runs.
    pub max_payback_runs: f64,
}

impl LoopSettings {
    /// Parses the loop's keys of `config`; a bad name or value is a one-line `Invalid` error.
    pub fn from_config(config: &Config) -> Result<LoopSettings, DbError> {
        let setting = |key: &'static str| {
            move |e: DbError| DbError::Setting {
                key,
                source: Box::new(e),
            }
        };
        let policy = Policy::parse(config.policy()).map_err(|e| setting("policy")(e.into()))?;
        let objective =
            Objective::parse(config.objective()).map_err(|e| setting("objective")(e.into()))?;
        let weights = RewardWeights::new(config.alpha(), config.beta())?;
        let params = PolicyParams {
            exploration_rate: config.exploration_rate(),
            ..PolicyParams::default()
        };
        params.validate()?;
        let window_ms = config.eval_window_ms();
        Ok(LoopSettings {
            policy,
            params,
            objective,
            weights,
            window_ms,
            min_samples: config.min_samples().max(1),
            max_layouts: config.max_layouts(),
            min_canary_reduction: config.min_canary_reduction(),
            canary_queries: config.canary_queries().max(1),
            rollback_after_windows: config.rollback_after_windows(),
            regression_margin: config.regression_margin(),
            max_payback_runs: config.max_payback_runs(),
        })
    }
}

impl Workspace {
    /// The learning loop's settings from this workspace's configuration.
    pub fn loop_settings(&self) -> Result<LoopSettings, DbError> {
        LoopSettings::from_config(self.config())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, dbopt_core::CoreError> {
        let flags: Vec<(&str, String, &str)> = pairs
            .iter()
            .map(|(k, v)| (*k, v.to_string(), "test"))
            .collect();
        Config::resolve(Path::new("/nonexistent"), None, &BTreeMap::new(), &flags)
    }

    #[test]
    fn defaults_parse() {
        let s = LoopSettings::from_config(&config(&[]).unwrap()).unwrap();
        assert_eq!(s.policy, Policy::Thompson);
        assert_eq!(s.objective, Objective::Bytes);
        assert_eq!((s.weights.alpha, s.weights.beta), (1.0, 0.1));
        assert_eq!(s.params.exploration_rate, 0.2);
        assert_eq!(s.window_ms, 3_600_000);
        assert_eq!(s.max_layouts, 3);
    }

    #[test]
    fn bad_names_and_values_are_one_line_errors() {
        for (key, value, needle) in [
            ("policy", "greedy", "greedy"),
            ("objective", "speed", "speed"),
        ] {
            let err = LoopSettings::from_config(&config(&[(key, value)]).unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle) && !err.contains('\n'), "{err}");
            assert!(
                err.starts_with(&format!("configuration key {key}: ")),
                "{err}"
            );
        }
        // Windows are checked when the configuration resolves, naming the key and the value.
        for (value, needle) in [
            ("soon", "'soon' is not a duration"),
            ("0s", "longer than 0s"),
        ] {
            let err = config(&[("eval_window", value)]).unwrap_err().to_string();
            assert!(err.contains("eval_window") && err.contains(needle), "{err}");
        }
        // Out-of-range rates and negative weights are refused when the configuration resolves.
        assert!(config(&[("exploration_rate", "1.5")]).is_err());
        assert!(config(&[("alpha", "-1")]).is_err());
        assert!(config(&[("beta", "NaN")]).is_err());
    }
}
