//! Putting a proposal's reasons into words: one English sentence per `Reason`, as shown by
//! `dbopt propose` and stored with the proposal.

use crate::Proposal;
use crate::rank::{Loss, Ranked, Reason};
use std::fmt;

/// The ranked proposals with their reasons rendered as text.
pub fn explain(ranked: Vec<Ranked>) -> Vec<Proposal> {
    ranked
        .into_iter()
        .map(
            |Ranked {
                 mut proposal,
                 reasons,
             }| {
                proposal.reasons = reasons.iter().map(Reason::to_string).collect();
                proposal
            },
        )
        .collect()
}

/// Bytes with a binary unit and one decimal, e.g. `1.5 MiB`.
fn human(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", units[i])
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Generated { rationale } => write!(f, "generated because {rationale}"),
            Reason::AsItIs { predicted_bytes } => write!(
                f,
                "the layout as it is: no rewrite, {} predicted for the logged workload",
                human(*predicted_bytes)
            ),
            Reason::ClusterDrops {
                cluster_id,
                share,
                shape,
                current_bytes,
                predicted_bytes,
            } => write!(
                f,
                "cluster {cluster_id} ({:.0}% of queries, {}) drops from {} to {}",
                share * 100.0,
                if shape.is_empty() { "no filter" } else { shape },
                human(*current_bytes),
                human(*predicted_bytes)
            ),
            Reason::ClusterWorse {
                cluster_id,
                current_bytes,
                predicted_bytes,
            } => write!(
                f,
                "cluster {cluster_id} gets worse: {} -> {}",
                human(*current_bytes),
                human(*predicted_bytes)
            ),
            Reason::BelowMinReduction {
                reduction,
                min_reduction,
            } => write!(
                f,
                "not recommended: predicted reduction {:.0}% is below min_predicted_reduction {:.0}%",
                reduction * 100.0,
                min_reduction * 100.0
            ),
            Reason::SizeGrowth {
                current_size,
                predicted_size,
                max_growth,
            } => write!(
                f,
                "not recommended: the table would grow from {} to a predicted {}, more than max_size_growth {:.0}%",
                human(*current_size),
                human(*predicted_size),
                max_growth * 100.0
            ),
            Reason::FixedCostsOutweighSavings {
                files_read,
                row_groups_read,
            } => write!(
                f,
                "not recommended: {files_read:.0} files and {row_groups_read:.0} row groups opened cost more than the bytes saved"
            ),
            Reason::LosesToBest {
                best,
                cost,
                best_cost,
                why,
            } => write!(
                f,
                "loses to #1 {best} on predicted cost ({} vs {}): {why}",
                human(*cost),
                human(*best_cost)
            ),
            Reason::KeepCurrent { min_reduction } => write!(
                f,
                "no candidate is predicted to cut bytes scanned by at least {:.0}% at a lower cost: leave the layout as it is",
                min_reduction * 100.0
            ),
            Reason::BeatsRunnerUp {
                runner_up,
                reduction,
            } => write!(
                f,
                "beats the runner-up {runner_up} ({:.0}% reduction) on predicted cost",
                reduction * 100.0
            ),
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loss::MoreVisits {
                row_groups,
                pages,
                best_row_groups,
                best_pages,
            } => write!(
                f,
                "scans fewer bytes but visits {row_groups:.0} row groups and {pages:.0} pages against {best_row_groups:.0} and {best_pages:.0}"
            ),
            Loss::MoreBytes => f.write_str("scans more bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_in_binary_units() {
        assert_eq!(human(0.0), "0.0 B");
        assert_eq!(human(1536.0), "1.5 KiB");
        assert_eq!(
            human(3.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
            "3072.0 TiB"
        );
    }

    #[test]
    fn every_reason_is_one_sentence() {
        let cases = [
            (
                Reason::Generated {
                    rationale: "day is filtered".into(),
                },
                "generated because day is filtered",
            ),
            (
                Reason::AsItIs {
                    predicted_bytes: 2048.0,
                },
                "the layout as it is: no rewrite, 2.0 KiB predicted for the logged workload",
            ),
            (
                Reason::ClusterDrops {
                    cluster_id: "c1".into(),
                    share: 0.25,
                    shape: String::new(),
                    current_bytes: 4096.0,
                    predicted_bytes: 512.0,
                },
                "cluster c1 (25% of queries, no filter) drops from 4.0 KiB to 512.0 B",
            ),
            (
                Reason::ClusterWorse {
                    cluster_id: "c2".into(),
                    current_bytes: 10.0,
                    predicted_bytes: 20.0,
                },
                "cluster c2 gets worse: 10.0 B -> 20.0 B",
            ),
            (
                Reason::BelowMinReduction {
                    reduction: 0.12,
                    min_reduction: 0.3,
                },
                "not recommended: predicted reduction 12% is below min_predicted_reduction 30%",
            ),
            (
                Reason::SizeGrowth {
                    current_size: 100.0 * 1024.0 * 1024.0,
                    predicted_size: 150.0 * 1024.0 * 1024.0,
                    max_growth: 0.25,
                },
                "not recommended: the table would grow from 100.0 MiB to a predicted 150.0 MiB, more than max_size_growth 25%",
            ),
            (
                Reason::FixedCostsOutweighSavings {
                    files_read: 40.0,
                    row_groups_read: 120.4,
                },
                "not recommended: 40 files and 120 row groups opened cost more than the bytes saved",
            ),
            (
                Reason::LosesToBest {
                    best: "sort by day".into(),
                    cost: 2048.0,
                    best_cost: 1024.0,
                    why: Loss::MoreVisits {
                        row_groups: 8.0,
                        pages: 64.0,
                        best_row_groups: 2.0,
                        best_pages: 16.0,
                    },
                },
                "loses to #1 sort by day on predicted cost (2.0 KiB vs 1.0 KiB): scans fewer bytes but visits 8 row groups and 64 pages against 2 and 16",
            ),
            (
                Reason::KeepCurrent { min_reduction: 0.3 },
                "no candidate is predicted to cut bytes scanned by at least 30% at a lower cost: leave the layout as it is",
            ),
            (
                Reason::BeatsRunnerUp {
                    runner_up: "sort by x".into(),
                    reduction: 0.5,
                },
                "beats the runner-up sort by x (50% reduction) on predicted cost",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
        }
        assert_eq!(Loss::MoreBytes.to_string(), "scans more bytes");
    }
}
