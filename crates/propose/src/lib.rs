//! dbopt-propose: candidate layouts and the what-if cost model (arrow only, no DataFusion).
//!
//! Sits after analyze and before migrate in the data flow: from a `WorkloadProfile`, the
//! table's column statistics, a row sample and the logged queries (with their literals), it
//! generates candidate `LayoutSpec`s, predicts each one's bytes scanned, files and row groups
//! without rewriting anything, and ranks them as `Proposal`s (plain serde values) against the
//! current layout, which stays a candidate and often wins.
//!
//! `propose` reads as its steps: `candidates::generate`, `whatif::estimate` for each (and
//! for the layout as it is), `rank::rank` (figures, order and reasons as values), then
//! `explain::explain` (the reasons in words).

pub mod calibrate;
pub mod candidates;
pub mod explain;
pub mod rank;
pub mod sample;
pub mod whatif;

pub use calibrate::Prices;
pub use candidates::{Candidate, Thresholds};
pub use rank::{Loss, RankContext, Ranked, Reason};
pub use sample::Sample;
pub use whatif::{Estimate, Geometry, JoinKeys, WhatIfQuery};

use dbopt_analyze::WorkloadProfile;
use dbopt_core::plan_summary::TableStats;
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
    /// What changes against the current layout's declared spec, part by part
    /// (`sort: [] -> [event_date]`); empty for "leave as is".
    #[serde(default)]
    pub spec_change: Vec<String>,
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
    /// Bytes the rewrite writes: the new layout's predicted size (`predicted.size_bytes`),
    /// shown beside the size measured once it is built.
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
    /// The table declares its partitioning (a Delta or Iceberg table, whose replace commits
    /// cannot change it): every candidate keeps `current_spec.partition_by`.
    pub keep_partitioning: bool,
    /// The model's fixed prices (calibrated per machine, or the defaults).
    pub prices: Prices,
}

/// Generates, prices and ranks candidates; the current layout is always among them.
pub fn propose(input: &ProposeInput<'_>) -> Result<Vec<Proposal>, ProposeError> {
    if input.queries.is_empty() {
        return Err(ProposeError::NoWorkload(
            "no analyzable queries to propose from".into(),
        ));
    }
    let (current, candidates) = price(input)?;
    let ctx = RankContext {
        current_layout: &input.current_layout,
        current_spec: &input.current_spec,
        rewrite_bytes: input.stats.total_bytes,
        profile: input.profile,
        thresholds: &input.thresholds,
    };
    Ok(explain::explain(rank::rank(&ctx, &current, candidates)))
}

/// The what-if estimate of the current layout (kept as it is) and of each generated
/// candidate (rewritten at its own geometry).
fn price(input: &ProposeInput<'_>) -> Result<(Estimate, Vec<(Candidate, Estimate)>), ProposeError> {
    let workload = whatif::Workload::new(input.sample, input.queries).with_prices(input.prices);
    let current = whatif::estimate(
        input.sample,
        input.stats,
        &input.current_spec,
        true,
        input.current_geometry,
        &workload,
    )?;
    let mut generated = candidates::generate(
        input.profile,
        input.stats,
        &input.current_spec,
        &input.thresholds,
    );
    if input.keep_partitioning {
        generated = candidates::keep_partitioning(generated, &input.current_spec);
    }
    let mut priced = Vec::with_capacity(generated.len());
    for c in generated {
        let e = whatif::estimate(
            input.sample,
            input.stats,
            &c.spec,
            false,
            Geometry::of_spec(&c.spec),
            &workload,
        )?;
        priced.push((c, e));
    }
    Ok((current, priced))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Float64Array, Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use dbopt_analyze::{Observation, cluster_id, profile, shape};
    use dbopt_core::plan_summary::{Bound, ColumnStats, Lit, Predicate, PredicateKind, TableUsage};
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
                from_syntax: false,
            })
            .collect();
        let prof = profile("t", &observations, 0, Some(&stats));
        let queries: Vec<WhatIfQuery> = workload
            .iter()
            .map(|u| WhatIfQuery {
                cluster_id: cluster_id(&shape(u)),
                usage: u.clone(),
                weight: 1.0,
                join_keys: Vec::new(),
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
                max_size_growth: 0.25,
            },
            keep_partitioning: false,
            prices: Prices::default(),
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
        assert!(best.recommended, "{best:#?}");
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
                let lo = f64::from(i * 457 % 9000);
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
