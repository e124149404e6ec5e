//! Ranking priced candidates: the figures of each proposal (reduction, payback, per-cluster
//! bytes), whether it is recommended, its place in the order, and the reasons for all of it
//! as plain values (`Reason`); `explain` puts the reasons into words.

use crate::candidates::{Candidate, Thresholds};
use crate::whatif::Estimate;
use crate::{ClusterFigure, Proposal};
use dbopt_analyze::WorkloadProfile;
use dbopt_core::{LayoutId, LayoutSpec};

/// A fact behind a proposal's rank, in numbers; rendered as one English sentence.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// A generated candidate, with the generator's rationale.
    Generated {
        /// Why candidate generation produced it.
        rationale: String,
    },
    /// The current layout: nothing to rewrite.
    AsItIs {
        /// Predicted bytes of the logged workload on it.
        predicted_bytes: f64,
    },
    /// A cluster of queries that reads fewer bytes on the candidate.
    ClusterDrops {
        /// The cluster id.
        cluster_id: String,
        /// Its share of the queries (0..1; 0 when the profile does not know it).
        share: f64,
        /// Its filter shape, words joined by spaces (empty: no filter).
        shape: String,
        /// Bytes on the current layout.
        current_bytes: f64,
        /// Bytes on the candidate.
        predicted_bytes: f64,
    },
    /// The cluster that reads notably more bytes on the candidate.
    ClusterWorse {
        /// The cluster id.
        cluster_id: String,
        /// Bytes on the current layout.
        current_bytes: f64,
        /// Bytes on the candidate.
        predicted_bytes: f64,
    },
    /// Not recommended: the predicted reduction is under the configured minimum.
    BelowMinReduction {
        /// Predicted reduction of bytes scanned (0..1).
        reduction: f64,
        /// `min_predicted_reduction` (0..1).
        min_reduction: f64,
    },
    /// Not recommended: the new layout is predicted to grow the table beyond the limit.
    SizeGrowth {
        /// The table's size now.
        current_size: f64,
        /// The candidate's predicted size.
        predicted_size: f64,
        /// `max_size_growth` (a fraction).
        max_growth: f64,
    },
    /// Not recommended: the fixed prices of files and row groups outweigh the bytes saved.
    FixedCostsOutweighSavings {
        /// Files opened by the workload.
        files_read: f64,
        /// Row groups visited by the workload.
        row_groups_read: f64,
    },
    /// A recommended candidate that ranks below the best one.
    LosesToBest {
        /// The best proposal's description.
        best: String,
        /// This candidate's predicted cost.
        cost: f64,
        /// The best proposal's predicted cost.
        best_cost: f64,
        /// Where the difference comes from.
        why: Loss,
    },
    /// The best proposal is the current layout: no candidate is worth a rewrite.
    KeepCurrent {
        /// `min_predicted_reduction` (0..1).
        min_reduction: f64,
    },
    /// The best proposal is a candidate and beats the runner-up.
    BeatsRunnerUp {
        /// The runner-up's description.
        runner_up: String,
        /// The runner-up's predicted reduction (0..1).
        reduction: f64,
    },
}

/// Why a recommended candidate costs more than the best one.
#[derive(Debug, Clone, PartialEq)]
pub enum Loss {
    /// It scans fewer bytes but visits more row groups and pages.
    MoreVisits {
        /// Its row groups visited.
        row_groups: f64,
        /// Its pages decoded.
        pages: f64,
        /// The best one's row groups visited.
        best_row_groups: f64,
        /// The best one's pages decoded.
        best_pages: f64,
    },
    /// It scans more bytes.
    MoreBytes,
}

/// A proposal whose `reasons` are still values (its `proposal.reasons` is empty).
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// The proposal with its figures, rank and recommendation.
    pub proposal: Proposal,
    /// Why, in order.
    pub reasons: Vec<Reason>,
}

/// What ranking needs besides the estimates.
pub struct RankContext<'a> {
    /// The current layout id.
    pub current_layout: &'a LayoutId,
    /// The current layout's spec.
    pub current_spec: &'a LayoutSpec,
    /// Bytes a rewrite reads (the table's size now).
    pub rewrite_bytes: u64,
    /// The workload profile (cluster shares and shapes).
    pub profile: &'a WorkloadProfile,
    /// Thresholds from the configuration.
    pub thresholds: &'a Thresholds,
}

/// Ranks the current layout (`current`) and the priced candidates: recommended candidates
/// first (cheapest first), then the current layout, then the rest.
pub fn rank(
    ctx: &RankContext<'_>,
    current: &Estimate,
    candidates: Vec<(Candidate, Estimate)>,
) -> Vec<Ranked> {
    let mut ranked = vec![judge(ctx, current, None, current.clone())];
    ranked.extend(
        candidates
            .into_iter()
            .map(|(c, e)| judge(ctx, current, Some(c), e)),
    );
    order(&mut ranked);
    compare_with_best(&mut ranked, ctx.thresholds);
    ranked
}

/// The figures and own reasons of one proposal (`candidate` None: the current layout).
fn judge(
    ctx: &RankContext<'_>,
    current: &Estimate,
    candidate: Option<Candidate>,
    e: Estimate,
) -> Ranked {
    let base = current.bytes_scanned.max(1.0);
    let is_current = candidate.is_none();
    let reduction = 1.0 - e.bytes_scanned / base;
    let saved = current.bytes_scanned - e.bytes_scanned;
    let (read, written) = if is_current {
        (0, 0)
    } else {
        (ctx.rewrite_bytes, e.size_bytes.round() as u64)
    };
    let min_reduction = ctx.thresholds.min_predicted_reduction;
    let current_size = ctx.rewrite_bytes as f64;
    let too_big = e.size_bytes > current_size * (1.0 + ctx.thresholds.max_size_growth);
    let recommended =
        !is_current && reduction >= min_reduction && e.cost < current.cost && !too_big;
    let clusters = cluster_figures(current, &e);
    let mut reasons = vec![match &candidate {
        Some(c) => Reason::Generated {
            rationale: c.rationale.clone(),
        },
        None => Reason::AsItIs {
            predicted_bytes: e.bytes_scanned,
        },
    }];
    reasons.extend(cluster_reasons(&clusters, base, ctx.profile));
    if !is_current && !recommended {
        reasons.push(if reduction < min_reduction {
            Reason::BelowMinReduction {
                reduction,
                min_reduction,
            }
        } else if too_big {
            Reason::SizeGrowth {
                current_size,
                predicted_size: e.size_bytes,
                max_growth: ctx.thresholds.max_size_growth,
            }
        } else {
            Reason::FixedCostsOutweighSavings {
                files_read: e.files_read,
                row_groups_read: e.row_groups_read,
            }
        });
    }
    let spec = candidate.map_or(ctx.current_spec.clone(), |c| c.spec);
    Ranked {
        proposal: Proposal {
            rank: 0,
            description: if is_current {
                format!("keep current ({})", spec.describe())
            } else {
                spec.describe()
            },
            target_layout: if is_current {
                ctx.current_layout.clone()
            } else {
                LayoutId::derive(ctx.current_layout, &spec)
            },
            source_layout: ctx.current_layout.clone(),
            spec_change: ctx
                .current_spec
                .delta(&spec)
                .iter()
                .map(ToString::to_string)
                .collect(),
            spec,
            is_current,
            predicted: e,
            current_bytes: current.bytes_scanned,
            predicted_reduction: reduction,
            rewrite_read_bytes: read,
            rewrite_write_bytes: written,
            payback_runs: (!is_current && saved > 0.0).then(|| written as f64 / saved),
            recommended,
            reasons: Vec::new(),
            clusters,
        },
        reasons,
    }
}

/// Each cluster's bytes on the current layout and on `e`.
fn cluster_figures(current: &Estimate, e: &Estimate) -> Vec<ClusterFigure> {
    current
        .cluster_bytes
        .iter()
        .map(|(id, cur)| ClusterFigure {
            cluster_id: id.clone(),
            current_bytes: *cur,
            predicted_bytes: e.cluster_bytes.get(id).copied().unwrap_or(0.0),
        })
        .collect()
}

/// The two clusters that save most (each above 1% of `base`), and the one that gets worst
/// (above 5% and 1% of `base` more).
fn cluster_reasons(
    clusters: &[ClusterFigure],
    base: f64,
    profile: &WorkloadProfile,
) -> Vec<Reason> {
    let mut drivers: Vec<&ClusterFigure> = clusters
        .iter()
        .filter(|c| c.current_bytes - c.predicted_bytes > 0.01 * base)
        .collect();
    drivers.sort_by(|a, b| {
        (b.current_bytes - b.predicted_bytes).total_cmp(&(a.current_bytes - a.predicted_bytes))
    });
    let mut reasons: Vec<Reason> = drivers
        .iter()
        .take(2)
        .map(|d| {
            let (share, shape) = profile
                .clusters
                .iter()
                .find(|c| c.id == d.cluster_id)
                .map_or((0.0, String::new()), |c| (c.share, c.shape.join(" ")));
            Reason::ClusterDrops {
                cluster_id: d.cluster_id.clone(),
                share,
                shape,
                current_bytes: d.current_bytes,
                predicted_bytes: d.predicted_bytes,
            }
        })
        .collect();
    if let Some(worse) = clusters
        .iter()
        .filter(|c| c.predicted_bytes > c.current_bytes * 1.05 + 0.01 * base)
        .max_by(|a, b| {
            (a.predicted_bytes - a.current_bytes).total_cmp(&(b.predicted_bytes - b.current_bytes))
        })
    {
        reasons.push(Reason::ClusterWorse {
            cluster_id: worse.cluster_id.clone(),
            current_bytes: worse.current_bytes,
            predicted_bytes: worse.predicted_bytes,
        });
    }
    reasons
}

/// Sorts recommended candidates first (cheapest first), then the current layout, then the
/// rest (ties by description), and numbers the ranks from 1.
fn order(ranked: &mut [Ranked]) {
    let class = |p: &Proposal| {
        if p.recommended {
            0
        } else if p.is_current {
            1
        } else {
            2
        }
    };
    ranked.sort_by(|a, b| {
        let (a, b) = (&a.proposal, &b.proposal);
        class(a)
            .cmp(&class(b))
            .then(a.predicted.cost.total_cmp(&b.predicted.cost))
            .then(a.description.cmp(&b.description))
    });
    for (i, r) in ranked.iter_mut().enumerate() {
        r.proposal.rank = i + 1;
    }
}

/// Adds the reasons that compare with the best: why each other recommended candidate loses
/// to it, and why the best wins (or why the layout stays as it is).
fn compare_with_best(ranked: &mut [Ranked], thresholds: &Thresholds) {
    let Some((first, rest)) = ranked.split_first_mut() else {
        return;
    };
    let best = &first.proposal;
    for r in rest.iter_mut().filter(|r| r.proposal.recommended) {
        let p = &r.proposal.predicted;
        let why = if p.bytes_scanned < best.predicted.bytes_scanned {
            Loss::MoreVisits {
                row_groups: p.row_groups_read,
                pages: p.pages_read,
                best_row_groups: best.predicted.row_groups_read,
                best_pages: best.predicted.pages_read,
            }
        } else {
            Loss::MoreBytes
        };
        r.reasons.push(Reason::LosesToBest {
            best: best.description.clone(),
            cost: p.cost,
            best_cost: best.predicted.cost,
            why,
        });
    }
    let last = if best.is_current {
        Some(Reason::KeepCurrent {
            min_reduction: thresholds.min_predicted_reduction,
        })
    } else {
        rest.first().map(|runner_up| Reason::BeatsRunnerUp {
            runner_up: runner_up.proposal.description.clone(),
            reduction: runner_up.proposal.predicted_reduction,
        })
    };
    first.reasons.extend(last);
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbopt_analyze::Cluster;
    use dbopt_core::SortKey;
    use std::collections::BTreeMap;

    /// An estimate of `bytes` (split 60/40 over clusters c1 and c2 unless given) at `cost`.
    fn est(bytes: f64, cost: f64, clusters: Option<(f64, f64)>) -> Estimate {
        let (c1, c2) = clusters.unwrap_or((bytes * 0.6, bytes * 0.4));
        Estimate {
            bytes_scanned: bytes,
            cost,
            files_read: 4.0,
            row_groups_read: bytes / 10.0,
            pages_read: bytes / 2.0,
            cluster_bytes: BTreeMap::from([("c1".to_string(), c1), ("c2".to_string(), c2)]),
            // The 5000-byte table rewritten 10% smaller.
            size_bytes: 4500.0,
            ..Default::default()
        }
    }

    fn candidate(column: &str) -> Candidate {
        Candidate {
            spec: LayoutSpec {
                sort_by: vec![SortKey {
                    column: column.into(),
                    descending: false,
                }],
                ..Default::default()
            },
            rationale: format!("{column} is filtered"),
        }
    }

    fn profile() -> WorkloadProfile {
        WorkloadProfile {
            table: "t".into(),
            queries_analyzed: 10,
            queries_skipped: 0,
            queries_from_syntax: 0,
            columns: Vec::new(),
            hot_columns: Vec::new(),
            clusters: vec![Cluster {
                id: "c1".into(),
                shape: vec!["a:range".into()],
                queries: 6,
                share: 0.6,
                mean_bytes_scanned: None,
                example: String::new(),
            }],
        }
    }

    fn ranked(candidates: Vec<(Candidate, Estimate)>) -> Vec<Ranked> {
        let layout = LayoutId::initial();
        let spec = LayoutSpec::default();
        let profile = profile();
        let thresholds = Thresholds {
            max_partitions: 256,
            min_partition_rows: 100_000,
            partition_min_query_share: 0.3,
            sort_min_query_share: 0.2,
            min_predicted_reduction: 0.3,
            max_size_growth: 0.25,
        };
        let ctx = RankContext {
            current_layout: &layout,
            current_spec: &spec,
            rewrite_bytes: 5000,
            profile: &profile,
            thresholds: &thresholds,
        };
        rank(&ctx, &est(1000.0, 2000.0, None), candidates)
    }

    fn by_column(r: &[Ranked], column: &str) -> Ranked {
        r.iter()
            .find(|r| {
                r.proposal
                    .spec
                    .sort_by
                    .first()
                    .is_some_and(|k| k.column == column)
            })
            .cloned()
            .unwrap()
    }

    #[test]
    fn recommended_candidates_rank_first_by_cost_then_the_current_layout_then_the_rest() {
        let r = ranked(vec![
            (candidate("b"), est(800.0, 1500.0, None)),
            (candidate("c"), est(50.0, 3000.0, None)),
            (candidate("d"), est(200.0, 900.0, None)),
            (candidate("a"), est(100.0, 500.0, None)),
            (candidate("e"), est(80.0, 600.0, None)),
        ]);
        let order: Vec<(usize, String, bool)> = r
            .iter()
            .map(|r| {
                let p = &r.proposal;
                let lead = p
                    .spec
                    .sort_by
                    .first()
                    .map_or("current", |k| k.column.as_str());
                (p.rank, lead.to_string(), p.recommended)
            })
            .collect();
        let expected = [
            (1, "a", true),
            (2, "e", true),
            (3, "d", true),
            (4, "current", false),
            (5, "b", false),
            (6, "c", false),
        ];
        let expected: Vec<(usize, String, bool)> = expected
            .iter()
            .map(|(n, c, rec)| (*n, c.to_string(), *rec))
            .collect();
        assert_eq!(order, expected);
        let a = by_column(&r, "a");
        assert_eq!(a.proposal.predicted_reduction, 1.0 - 100.0 / 1000.0);
        // Payback: the predicted bytes written over the bytes saved per run.
        assert_eq!(a.proposal.payback_runs, Some(4500.0 / 900.0));
        assert_eq!(a.proposal.rewrite_read_bytes, 5000);
        assert_eq!(a.proposal.rewrite_write_bytes, 4500);
        assert_eq!(r[3].proposal.rewrite_read_bytes, 0);
        assert_eq!(r[3].proposal.payback_runs, None);
    }

    #[test]
    fn a_candidate_that_grows_the_table_beyond_max_size_growth_is_not_recommended() {
        let mut grows = est(100.0, 500.0, None);
        grows.size_bytes = 6300.0; // 26% over 5000, the limit is 25%
        let mut within = est(110.0, 510.0, None);
        within.size_bytes = 6200.0;
        let r = ranked(vec![(candidate("a"), grows), (candidate("b"), within)]);
        let (a, b) = (by_column(&r, "a"), by_column(&r, "b"));
        assert!(!a.proposal.recommended && b.proposal.recommended);
        assert_eq!(
            a.reasons.last(),
            Some(&Reason::SizeGrowth {
                current_size: 5000.0,
                predicted_size: 6300.0,
                max_growth: 0.25
            })
        );
        assert_eq!(r[0].proposal.description, "sort(b)");
    }

    #[test]
    fn reasons_name_clusters_thresholds_and_the_comparison_with_the_best() {
        let r = ranked(vec![
            (candidate("a"), est(100.0, 500.0, Some((50.0, 50.0)))),
            (candidate("b"), est(800.0, 1500.0, Some((300.0, 500.0)))),
            (candidate("c"), est(50.0, 3000.0, None)),
            (candidate("d"), est(200.0, 900.0, None)),
            (candidate("e"), est(80.0, 600.0, None)),
        ]);
        let a = by_column(&r, "a");
        assert_eq!(
            a.reasons,
            vec![
                Reason::Generated {
                    rationale: "a is filtered".into()
                },
                Reason::ClusterDrops {
                    cluster_id: "c1".into(),
                    share: 0.6,
                    shape: "a:range".into(),
                    current_bytes: 600.0,
                    predicted_bytes: 50.0
                },
                Reason::ClusterDrops {
                    cluster_id: "c2".into(),
                    share: 0.0,
                    shape: String::new(),
                    current_bytes: 400.0,
                    predicted_bytes: 50.0
                },
                Reason::BeatsRunnerUp {
                    runner_up: "sort(e)".into(),
                    reduction: 1.0 - 80.0 / 1000.0
                },
            ]
        );
        let b = by_column(&r, "b");
        assert_eq!(
            b.reasons[1..],
            [
                Reason::ClusterDrops {
                    cluster_id: "c1".into(),
                    share: 0.6,
                    shape: "a:range".into(),
                    current_bytes: 600.0,
                    predicted_bytes: 300.0
                },
                Reason::ClusterWorse {
                    cluster_id: "c2".into(),
                    current_bytes: 400.0,
                    predicted_bytes: 500.0
                },
                Reason::BelowMinReduction {
                    reduction: 1.0 - 800.0 / 1000.0,
                    min_reduction: 0.3
                },
            ]
        );
        assert!(matches!(
            by_column(&r, "c").reasons.last(),
            Some(Reason::FixedCostsOutweighSavings { .. })
        ));
        let loss = |column: &str| match by_column(&r, column).reasons.last() {
            Some(Reason::LosesToBest { why, best, .. }) => {
                assert_eq!(best, "sort(a)");
                why.clone()
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            loss("e"),
            Loss::MoreVisits {
                row_groups: 8.0,
                pages: 40.0,
                best_row_groups: 10.0,
                best_pages: 50.0
            }
        );
        assert_eq!(loss("d"), Loss::MoreBytes);
    }

    #[test]
    fn without_a_worthwhile_candidate_the_layout_stays_as_it_is() {
        let r = ranked(vec![(candidate("b"), est(800.0, 1500.0, None))]);
        assert!(r[0].proposal.is_current);
        assert_eq!(r[0].proposal.target_layout, LayoutId::initial());
        assert_eq!(
            r[0].reasons,
            vec![
                Reason::AsItIs {
                    predicted_bytes: 1000.0
                },
                Reason::KeepCurrent { min_reduction: 0.3 },
            ]
        );
        assert!(r[0].proposal.reasons.is_empty(), "words come from explain");
    }
}
