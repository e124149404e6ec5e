//! The one error type of evaluate.

/// A bad evaluation setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvaluateError {
    /// An objective name that does not exist.
    #[error("unknown objective '{0}': use bytes or latency")]
    UnknownObjective(String),
    /// A reward weight that is negative or not a number.
    #[error(
        "{name} must be a finite number >= 0, got {value}: set {name} (ALPHA/BETA) to e.g. 1.0 and 0.1"
    )]
    BadWeight {
        /// `alpha` or `beta`.
        name: &'static str,
        /// The value given.
        value: f64,
    },
}
