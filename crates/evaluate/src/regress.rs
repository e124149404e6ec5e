//! When a layout in service has stopped paying: regression per window and the rollback rule.

/// Whether one window regressed: the layout's improvement against its reference (the layout
/// it replaced, measured in the same window, or that layout's canary figures) is below
/// `-margin`. No reference figure means no verdict (false).
pub fn regressed(improvement_vs_reference: Option<f64>, margin: f64) -> bool {
    improvement_vs_reference.is_some_and(|imp| imp < -margin)
}

/// True when the newest `windows` evaluations (oldest first in `recent`) all regressed.
pub fn should_roll_back(recent: &[bool], windows: usize) -> bool {
    windows > 0 && recent.len() >= windows && recent[recent.len() - windows..].iter().all(|r| *r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_needs_a_reference_and_a_margin() {
        assert!(!regressed(None, 0.05));
        assert!(!regressed(Some(-0.01), 0.05));
        assert!(regressed(Some(-0.2), 0.05));
        assert!(!regressed(Some(0.4), 0.05));
    }

    #[test]
    fn rollback_needs_consecutive_regressed_windows() {
        assert!(!should_roll_back(&[true, true], 3));
        assert!(should_roll_back(&[false, true, true, true], 3));
        assert!(!should_roll_back(&[true, true, false, true, true], 3));
        assert!(!should_roll_back(&[true, true, true], 0));
    }
}
