//! A canary replay turned into figures and a verdict.

pub use dbopt_catalog::CanarySummary;
use dbopt_catalog::Verdict;
use serde::{Deserialize, Serialize};

/// One replayed query shape: its most recent logged SQL run on the baseline and on the candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryQuery {
    /// The template fingerprint.
    pub fingerprint: String,
    /// The cluster of the shape.
    pub cluster_id: Option<String>,
    /// How often the shape was logged (its weight in the totals).
    pub weight: u64,
    /// The SQL replayed (a logged query with its literal values).
    pub sql: String,
    /// Whether both results are the same rows (floats within the tolerance).
    pub matched: bool,
    /// Why they differ, or why one side failed.
    pub mismatch: Option<String>,
    /// Bytes the baseline scanned of the table.
    pub baseline_bytes: f64,
    /// Bytes the candidate scanned of the table.
    pub candidate_bytes: f64,
    /// Baseline latency.
    pub baseline_latency_ms: f64,
    /// Candidate latency.
    pub candidate_latency_ms: f64,
}

/// Totals of a replay.
pub fn summarize(queries: &[CanaryQuery]) -> CanarySummary {
    let weight: f64 = queries.iter().map(|q| q.weight.max(1) as f64).sum();
    let sum = |f: fn(&CanaryQuery) -> f64| -> f64 {
        queries.iter().map(|q| q.weight.max(1) as f64 * f(q)).sum()
    };
    let baseline_bytes = sum(|q| q.baseline_bytes);
    let candidate_bytes = sum(|q| q.candidate_bytes);
    let (baseline_latency_ms, candidate_latency_ms) = if weight > 0.0 {
        (
            sum(|q| q.baseline_latency_ms) / weight,
            sum(|q| q.candidate_latency_ms) / weight,
        )
    } else {
        (0.0, 0.0)
    };
    CanarySummary {
        queries: queries.len() as u64,
        mismatches: queries.iter().filter(|q| !q.matched).count() as u64,
        baseline_bytes,
        candidate_bytes,
        reduction: 0.0 - CanarySummary::change(baseline_bytes, candidate_bytes),
        baseline_latency_ms,
        candidate_latency_ms,
        latency_change: CanarySummary::change(baseline_latency_ms, candidate_latency_ms),
    }
}

/// Promote when every result matched and bytes fell by at least `min_reduction`; reject on
/// any mismatch or an empty replay; otherwise hold. The reason is one line.
pub fn canary_verdict(summary: &CanarySummary, min_reduction: f64) -> (Verdict, String) {
    if summary.queries == 0 {
        return (
            Verdict::Reject,
            "no logged query shapes to replay: run queries on the table first".into(),
        );
    }
    if summary.mismatches > 0 {
        return (
            Verdict::Reject,
            format!(
                "{} of {} query shapes returned different results",
                summary.mismatches, summary.queries
            ),
        );
    }
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    if summary.reduction >= min_reduction {
        (
            Verdict::Promote,
            format!(
                "identical results on {} shapes, {} fewer bytes (needs {}), latency {:+.0}%",
                summary.queries,
                pct(summary.reduction),
                pct(min_reduction),
                summary.latency_change * 100.0
            ),
        )
    } else {
        let change = if summary.reduction >= 0.0 {
            format!("only {} fewer bytes", pct(summary.reduction))
        } else {
            format!("{} more bytes", pct(-summary.reduction))
        };
        (
            Verdict::Hold,
            format!(
                "identical results on {} shapes but {change} (promotion needs {} fewer); it stays a routed candidate",
                summary.queries,
                pct(min_reduction)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(weight: u64, base: f64, cand: f64, matched: bool) -> CanaryQuery {
        CanaryQuery {
            fingerprint: "f".into(),
            cluster_id: None,
            weight,
            sql: "SELECT 1".into(),
            matched,
            mismatch: None,
            baseline_bytes: base,
            candidate_bytes: cand,
            baseline_latency_ms: 10.0,
            candidate_latency_ms: 5.0,
        }
    }

    #[test]
    fn totals_are_weighted_by_frequency() {
        let s = summarize(&[q(3, 100.0, 10.0, true), q(1, 100.0, 100.0, true)]);
        assert_eq!(s.baseline_bytes, 400.0);
        assert_eq!(s.candidate_bytes, 130.0);
        assert!((s.reduction - 0.675).abs() < 1e-12);
        assert!((s.latency_change + 0.5).abs() < 1e-12);
    }

    #[test]
    fn verdicts() {
        let good = summarize(&[q(1, 100.0, 10.0, true)]);
        assert_eq!(canary_verdict(&good, 0.3).0, Verdict::Promote);
        assert_eq!(canary_verdict(&good, 0.95).0, Verdict::Hold);
        let broken = summarize(&[q(1, 100.0, 10.0, true), q(1, 100.0, 10.0, false)]);
        let (v, reason) = canary_verdict(&broken, 0.3);
        assert_eq!(v, Verdict::Reject);
        assert!(reason.contains("1 of 2"), "{reason}");
        assert_eq!(canary_verdict(&summarize(&[]), 0.3).0, Verdict::Reject);
    }
}
