//! dbopt-propose: candidate layouts and the what-if cost model (arrow only, no DataFusion).
//!
//! Sits after analyze and before migrate in the data flow: from a `WorkloadProfile`, the
//! table's column statistics, a row sample and the logged queries (with their literals), it
//! generates candidate `LayoutSpec`s, predicts each one's bytes scanned, files and row groups
//! without rewriting anything, and ranks them as `Proposal`s (plain serde values) against the
//! current layout, which stays a candidate and often wins.

pub mod candidates;
pub mod sample;
pub mod whatif;

pub use candidates::{Candidate, Thresholds};
pub use sample::Sample;
pub use whatif::{Estimate, Geometry, WhatIfQuery};

use dbopt_analyze::WorkloadProfile;
use dbopt_core::plan::TableStats;
use dbopt_core::{LayoutId, LayoutSpec};
use serde::{Deserialize, Serialize};

/// An error of candidate generation or the what-if model.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// The sample holds no rows.
    #[error("the table sample is empty: the table has no rows to lay out")]
    EmptySample,
    /// A spec names a column the table does not have.
    #[error("column '{0}' is not in the table: check the spec against the table's columns")]
    UnknownColumn(String),
    /// The sample could not be processed.
    #[error("processing the table sample: {0}")]
    Sample(String),
    /// There is nothing to propose from.
    #[error("{0}")]
    NoWorkload(String),
}

/// Predicted figures of one cluster on one candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterFigure {
    /// The cluster id.
    pub cluster_id: String,
    /// Predicted bytes on the current layout.
    pub current_bytes: f64,
    /// Predicted bytes on the candidate.
    pub predicted_bytes: f64,
}

/// One ranked candidate with its predicted figures and reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// 1 = best.
    pub rank: usize,
    /// The layout asked for (the current spec for the "leave as is" candidate).
    pub spec: LayoutSpec,
    /// Short description of the spec.
    pub description: String,
    /// The layout it would be built from.
    pub source_layout: LayoutId,
    /// The content-addressed id of the layout it would produce (the source for "as is").
    pub target_layout: LayoutId,
    /// Whether this is "leave the layout as it is".
    pub is_current: bool,
    /// Predicted cost of one run of the logged workload.
    pub predicted: Estimate,
    /// Predicted cost of the workload on the current layout.
    pub current_bytes: f64,
    /// 1 - predicted bytes / current bytes.
    pub predicted_reduction: f64,
    /// Bytes the rewrite reads.
    pub rewrite_read_bytes: u64,
    /// Bytes the rewrite writes (about the table size).
    pub rewrite_write_bytes: u64,
    /// Workload runs until saved bytes repay the rewrite (None when it saves nothing).
    pub payback_runs: Option<f64>,
    /// Whether it passes the thresholds and beats the current layout.
    pub recommended: bool,
    /// Reasons in words.
    pub reasons: Vec<String>,
    /// Per-cluster predicted bytes.
    pub clusters: Vec<ClusterFigure>,
}

/// Everything `propose` needs, gathered by the facade.
pub struct ProposeInput<'a> {
    /// The current layout id.
    pub current_layout: LayoutId,
    /// The current layout's spec.
    pub current_spec: LayoutSpec,
    /// Current geometry (row-group and page rows as written).
    pub current_geometry: Geometry,
    /// Column statistics of the current layout (sample fields filled).
    pub stats: &'a TableStats,
    /// The workload profile.
    pub profile: &'a WorkloadProfile,
    /// The logged queries with literals.
    pub queries: &'a [WhatIfQuery],
    /// The sample in current physical order.
    pub sample: &'a Sample,
    /// Thresholds from the configuration.
    pub thresholds: Thresholds,
}

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

/// Generates, prices and ranks candidates; the current layout is always among them.
pub fn propose(input: &ProposeInput<'_>) -> Result<Vec<Proposal>, ProposeError> {
    if input.queries.is_empty() {
        return Err(ProposeError::NoWorkload(
            "no analyzable queries to propose from".into(),
        ));
    }
    let workload = whatif::Workload::new(input.sample, input.queries);
    let current = whatif::estimate(
        input.sample,
        input.stats,
        &input.current_spec,
        true,
        input.current_geometry,
        &workload,
    )?;
    let generated = candidates::generate(
        input.profile,
        input.stats,
        &input.current_spec,
        &input.thresholds,
    );
    let mut priced: Vec<(Option<Candidate>, Estimate)> = vec![(None, current.clone())];
    for c in generated {
        let geometry = Geometry {
            row_group_rows: c.spec.effective_row_group_rows() as u64,
            page_rows: c.spec.effective_page_rows() as u64,
        };
        let e = whatif::estimate(
            input.sample,
            input.stats,
            &c.spec,
            false,
            geometry,
            &workload,
        )?;
        priced.push((Some(c), e));
    }
    let base = current.bytes_scanned.max(1.0);
    let cluster_share = |id: &str| {
        input
            .profile
            .clusters
            .iter()
            .find(|c| c.id == id)
            .map(|c| (c.share, c.shape.join(" ")))
    };
    let mut proposals: Vec<Proposal> = priced
        .into_iter()
        .map(|(cand, e)| {
            let is_current = cand.is_none();
            let spec = cand
                .as_ref()
                .map_or(input.current_spec.clone(), |c| c.spec.clone());
            let reduction = 1.0 - e.bytes_scanned / base;
            let saved = current.bytes_scanned - e.bytes_scanned;
            let rewrite = if is_current { 0 } else { input.stats.total_bytes };
            let payback = (!is_current && saved > 0.0).then(|| rewrite as f64 / saved);
            let recommended = !is_current
                && reduction >= input.thresholds.min_predicted_reduction
                && e.cost < current.cost;
            let clusters: Vec<ClusterFigure> = current
                .cluster_bytes
                .iter()
                .map(|(id, cur)| ClusterFigure {
                    cluster_id: id.clone(),
                    current_bytes: *cur,
                    predicted_bytes: e.cluster_bytes.get(id).copied().unwrap_or(0.0),
                })
                .collect();
            let mut reasons = Vec::new();
            match &cand {
                Some(c) => reasons.push(format!("generated because {}", c.rationale)),
                None => reasons.push(format!(
                    "the layout as it is: no rewrite, {} predicted for the logged workload",
                    human(e.bytes_scanned)
                )),
            }
            let mut drivers: Vec<&ClusterFigure> = clusters
                .iter()
                .filter(|c| c.current_bytes - c.predicted_bytes > 0.01 * base)
                .collect();
            drivers.sort_by(|a, b| {
                (b.current_bytes - b.predicted_bytes).total_cmp(&(a.current_bytes - a.predicted_bytes))
            });
            for d in drivers.iter().take(2) {
                let (share, shape) = cluster_share(&d.cluster_id).unwrap_or((0.0, String::new()));
                reasons.push(format!(
                    "cluster {} ({:.0}% of queries, {}) drops from {} to {}",
                    d.cluster_id,
                    share * 100.0,
                    if shape.is_empty() { "no filter" } else { &shape },
                    human(d.current_bytes),
                    human(d.predicted_bytes)
                ));
            }
            if let Some(worse) = clusters
                .iter()
                .filter(|c| c.predicted_bytes > c.current_bytes * 1.05 + 0.01 * base)
                .max_by(|a, b| {
                    (a.predicted_bytes - a.current_bytes).total_cmp(&(b.predicted_bytes - b.current_bytes))
                })
            {
                reasons.push(format!(
                    "cluster {} gets worse: {} -> {}",
                    worse.cluster_id,
                    human(worse.current_bytes),
                    human(worse.predicted_bytes)
                ));
            }
            if !is_current && !recommended {
                if reduction < input.thresholds.min_predicted_reduction {
                    reasons.push(format!(
                        "not recommended: predicted reduction {:.0}% is below min_predicted_reduction {:.0}%",
                        reduction * 100.0,
                        input.thresholds.min_predicted_reduction * 100.0
                    ));
                } else {
                    reasons.push(format!(
                        "not recommended: {:.0} files and {:.0} row groups opened cost more than the bytes saved",
                        e.files_read, e.row_groups_read
                    ));
                }
            }
            Proposal {
                rank: 0,
                description: if is_current {
                    format!("keep current ({})", spec.describe())
                } else {
                    spec.describe()
                },
                target_layout: if is_current {
                    input.current_layout.clone()
                } else {
                    LayoutId::derive(&input.current_layout, &spec)
                },
                source_layout: input.current_layout.clone(),
                spec,
                is_current,
                predicted: e,
                current_bytes: current.bytes_scanned,
                predicted_reduction: reduction,
                rewrite_read_bytes: rewrite,
                rewrite_write_bytes: rewrite,
                payback_runs: payback,
                recommended,
                reasons,
                clusters,
            }
        })
        .collect();
    // Recommended candidates first (cheapest first), then the current layout, then the rest.
    proposals.sort_by(|a, b| {
        let class = |p: &Proposal| {
            if p.recommended {
                0
            } else if p.is_current {
                1
            } else {
                2
            }
        };
        class(a)
            .cmp(&class(b))
            .then(a.predicted.cost.total_cmp(&b.predicted.cost))
            .then(a.description.cmp(&b.description))
    });
    let runner_up = proposals
        .get(1)
        .map(|p| (p.description.clone(), p.predicted_reduction));
    for (i, p) in proposals.iter_mut().enumerate() {
        p.rank = i + 1;
    }
    if let Some(best) = proposals.first().cloned() {
        for p in proposals.iter_mut().skip(1).filter(|p| p.recommended) {
            let why = if p.predicted.bytes_scanned < best.predicted.bytes_scanned {
                format!(
                    "scans fewer bytes but visits {:.0} row groups and {:.0} pages against {:.0} and {:.0}",
                    p.predicted.row_groups_read,
                    p.predicted.pages_read,
                    best.predicted.row_groups_read,
                    best.predicted.pages_read
                )
            } else {
                "scans more bytes".to_string()
            };
            p.reasons.push(format!(
                "loses to #1 {} on predicted cost ({} vs {}): {why}",
                best.description,
                human(p.predicted.cost),
                human(best.predicted.cost)
            ));
        }
    }
    if let Some(best) = proposals.first_mut() {
        if best.is_current {
            best.reasons.push(format!(
                "no candidate is predicted to cut bytes scanned by at least {:.0}% at a lower cost: leave the layout as it is",
                input.thresholds.min_predicted_reduction * 100.0
            ));
        } else if let Some((desc, red)) = runner_up {
            best.reasons.push(format!(
                "beats the runner-up {desc} ({:.0}% reduction) on predicted cost",
                red * 100.0
            ));
        }
    }
    Ok(proposals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Float64Array, Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use dbopt_analyze::{Observation, cluster_id, profile, shape};
    use dbopt_core::plan::{Bound, ColumnStats, Lit, Predicate, PredicateKind, TableUsage};
    use std::sync::Arc;

    const ROWS: usize = 40_000;

    /// A shuffled table: day, customer (many values), x and y uniform.
    fn sample() -> (Sample, TableStats) {
        let mut s = 12345u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut day = Vec::new();
        let mut cust = Vec::new();
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..ROWS {
            day.push((next() % 365) as i32);
            cust.push((next() % 5000) as i64);
            x.push((next() % 10_000) as f64);
            y.push((next() % 10_000) as f64);
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("day", DataType::Date32, false),
            Field::new("customer_id", DataType::Int64, false),
            Field::new("x", DataType::Float64, false),
            Field::new("y", DataType::Float64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Date32Array::from(day)),
                Arc::new(Int64Array::from(cust)),
                Arc::new(Float64Array::from(x)),
                Arc::new(Float64Array::from(y)),
            ],
        )
        .unwrap();
        let sample = Sample::new(&[batch], ROWS as u64 * 10).unwrap();
        let col = |name: &str| ColumnStats {
            column: name.into(),
            data_type: String::new(),
            compressed_bytes: ROWS as u64 * 10 * 4,
            dictionary_bytes: 0,
            null_count: 0,
            distinct_estimate: 0,
            min: None,
            max: None,
            clustering: 0.0,
        };
        let mut stats = TableStats {
            rows: ROWS as u64 * 10,
            files: 1,
            row_groups: 4,
            total_bytes: ROWS as u64 * 10 * 16,
            metadata_bytes: 4096,
            row_group_rows: 100_000,
            page_rows: 8192,
            columns: ["day", "customer_id", "x", "y"]
                .iter()
                .map(|c| col(c))
                .collect(),
        };
        sample.complete_stats(&mut stats);
        (sample, stats)
    }

    fn range(col: &str, lo: Lit, hi: Lit) -> Predicate {
        Predicate {
            column: col.into(),
            kind: PredicateKind::Range {
                low: Some(Bound {
                    value: lo,
                    inclusive: true,
                }),
                high: Some(Bound {
                    value: hi,
                    inclusive: false,
                }),
            },
        }
    }

    fn usage(filters: Vec<Predicate>) -> TableUsage {
        TableUsage {
            table: "t".into(),
            filters,
            projected: vec!["x".into(), "day".into()],
            ..Default::default()
        }
    }

    fn run(workload: Vec<TableUsage>) -> Vec<Proposal> {
        let (sample, stats) = sample();
        let observations: Vec<Observation> = workload
            .iter()
            .enumerate()
            .map(|(i, u)| Observation {
                query_id: i as i64,
                sql: format!("q{i}"),
                usage: u.clone(),
                bytes_scanned: None,
                layout_bytes: None,
            })
            .collect();
        let prof = profile("t", &observations, 0, Some(&stats));
        let queries: Vec<WhatIfQuery> = workload
            .iter()
            .map(|u| WhatIfQuery {
                cluster_id: cluster_id(&shape(u)),
                usage: u.clone(),
                weight: 1.0,
            })
            .collect();
        let input = ProposeInput {
            current_layout: LayoutId::initial(),
            current_spec: LayoutSpec::default(),
            current_geometry: Geometry {
                row_group_rows: 100_000,
                page_rows: 8192,
            },
            stats: &stats,
            profile: &prof,
            queries: &queries,
            sample: &sample,
            thresholds: Thresholds {
                max_partitions: 256,
                min_partition_rows: 100_000,
                partition_min_query_share: 0.3,
                sort_min_query_share: 0.2,
                min_predicted_reduction: 0.3,
            },
        };
        propose(&input).unwrap()
    }

    #[test]
    fn date_ranges_yield_a_date_led_layout() {
        let w: Vec<TableUsage> = (0..20)
            .map(|i| usage(vec![range("day", Lit::Date(i * 15), Lit::Date(i * 15 + 7))]))
            .collect();
        let p = run(w);
        let best = &p[0];
        assert!(best.recommended, "{:#?}", best);
        let leads_date = best.spec.sort_by.first().is_some_and(|k| k.column == "day")
            || best.spec.partition_by.first().is_some_and(|c| c == "day");
        assert!(leads_date, "{}", best.description);
        assert!(
            best.predicted_reduction > 0.8,
            "{}",
            best.predicted_reduction
        );
        assert!(p.iter().any(|x| x.is_current));
        assert!(best.payback_runs.is_some());
    }

    #[test]
    fn customer_lookups_yield_customer_sort_or_bloom() {
        let w: Vec<TableUsage> = (0..20)
            .map(|i| {
                usage(vec![Predicate {
                    column: "customer_id".into(),
                    kind: PredicateKind::Eq {
                        value: Lit::Int(i * 37),
                    },
                }])
            })
            .collect();
        let p = run(w);
        let best = &p[0];
        let ok = best
            .spec
            .sort_by
            .first()
            .is_some_and(|k| k.column == "customer_id")
            || best
                .spec
                .bloom_filter_columns
                .contains(&"customer_id".to_string());
        assert!(ok && best.recommended, "{}", best.description);
    }

    #[test]
    fn competing_ranges_yield_a_curve_candidate() {
        let w: Vec<TableUsage> = (0..20)
            .map(|i| {
                let lo = (i * 457 % 9000) as f64;
                if i % 2 == 0 {
                    usage(vec![range("x", Lit::Float(lo), Lit::Float(lo + 500.0))])
                } else {
                    usage(vec![range("y", Lit::Float(lo), Lit::Float(lo + 500.0))])
                }
            })
            .collect();
        let p = run(w);
        let curve = p
            .iter()
            .find(|x| x.spec.cluster_by.len() == 2)
            .expect("a curve candidate");
        let sort_x = p
            .iter()
            .find(|x| {
                x.spec.sort_by.len() == 1
                    && x.spec.sort_by[0].column == "x"
                    && x.spec.row_group_rows.is_none()
            })
            .unwrap();
        assert!(
            curve.predicted.bytes_scanned < sort_x.predicted.bytes_scanned,
            "curve {} vs sort {}",
            curve.predicted.bytes_scanned,
            sort_x.predicted.bytes_scanned
        );
        assert!(p[0].spec.cluster_by.len() == 2, "{}", p[0].description);
    }

    #[test]
    fn sorting_on_a_column_makes_it_compress_better() {
        let (sample, _) = sample();
        let spec = LayoutSpec {
            sort_by: vec![dbopt_core::SortKey {
                column: "day".into(),
                descending: false,
            }],
            ..Default::default()
        };
        let parts = whatif::arrange(&sample, &spec, false).unwrap();
        let ratios = whatif::compression_ratios(&sample, &parts, 8192).unwrap();
        assert!(
            ratios["day"] < 0.5,
            "sorted days compress far better: {ratios:?}"
        );
        assert!(
            ratios["x"] > 0.8,
            "an unrelated uniform column does not: {ratios:?}"
        );
        let kept = whatif::arrange(&sample, &spec, true).unwrap();
        let same = whatif::compression_ratios(&sample, &kept, 8192).unwrap();
        assert!(same.values().all(|r| (r - 1.0).abs() < 1e-9), "{same:?}");
    }

    #[test]
    fn unfiltered_workload_keeps_the_layout() {
        let w: Vec<TableUsage> = (0..5).map(|_| usage(vec![])).collect();
        let p = run(w);
        assert!(p[0].is_current, "{}", p[0].description);
        assert!(!p.iter().any(|x| x.recommended));
        assert!(p[0].reasons.iter().any(|r| r.contains("leave the layout")));
    }
}
