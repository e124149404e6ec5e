//! Candidate generation: from the workload profile and column statistics to a bounded set
//! of candidate `LayoutSpec`s (sorts, hive partitions, Z-order/Hilbert clustering, row-group
//! sizing, bloom filters), each with the reason it was generated.

use dbopt_analyze::{ColumnUsage, WorkloadProfile};
use dbopt_core::layout::{DEFAULT_PAGE_ROWS, DEFAULT_ROW_GROUP_ROWS};
use dbopt_core::plan_summary::TableStats;
use dbopt_core::{Curve, LayoutSpec, SortKey};
use serde::{Deserialize, Serialize};

/// The configuration thresholds candidate generation obeys.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Most hive partitions a candidate may create.
    pub max_partitions: u64,
    /// Fewest average rows per partition.
    pub min_partition_rows: u64,
    /// Partition only on columns filtered by more than this share of queries.
    pub partition_min_query_share: f64,
    /// Sort or cluster only on columns filtered by more than this share of queries.
    pub sort_min_query_share: f64,
    /// Recommend only above this predicted reduction of bytes scanned.
    pub min_predicted_reduction: f64,
    /// Recommend only when the predicted size grows the table by at most this fraction.
    pub max_size_growth: f64,
}

/// Distinct values above which an equality-filtered column is worth a bloom filter.
pub const BLOOM_MIN_DISTINCT: u64 = 1000;

/// A candidate layout and why it was generated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The layout it asks for.
    pub spec: LayoutSpec,
    /// Why it was generated.
    pub rationale: String,
}

/// How much filtering on the column can save: share of queries times (1 - selectivity).
pub fn benefit(c: &ColumnUsage) -> f64 {
    let sel = c
        .estimated_selectivity
        .or(c.measured_selectivity)
        .unwrap_or(0.5);
    c.filter_share * (1.0 - sel).max(0.05)
}

fn prunable_uses(c: &ColumnUsage) -> u64 {
    c.eq + c.in_list + c.range + c.prefix
}

fn is_point(c: &ColumnUsage) -> bool {
    c.eq + c.in_list > c.range + c.prefix
}

fn sort(cols: &[&str]) -> Vec<SortKey> {
    cols.iter()
        .map(|c| SortKey {
            column: c.to_string(),
            descending: false,
        })
        .collect()
}

/// Generates candidates (the current layout is not among them; the caller adds it), family
/// by family, dropping specs that do not validate and repeats.
pub fn generate(
    profile: &WorkloadProfile,
    stats: &TableStats,
    current: &LayoutSpec,
    t: &Thresholds,
) -> Vec<Candidate> {
    let mut qualifying: Vec<&ColumnUsage> = profile
        .columns
        .iter()
        .filter(|c| {
            prunable_uses(c) > 0
                && c.filter_share > t.sort_min_query_share
                && stats.column(&c.column).is_some()
        })
        .collect();
    qualifying.sort_by(|a, b| {
        benefit(b)
            .total_cmp(&benefit(a))
            .then(a.column.cmp(&b.column))
    });
    let qualifying = &qualifying;
    let families = [
        single_sorts(qualifying),
        compound_sort(qualifying),
        curves(qualifying),
        partitions(qualifying, stats, t),
        finer_sizes(qualifying),
        blooms(qualifying, stats, current),
    ];
    let mut out: Vec<Candidate> = Vec::new();
    for (spec, rationale) in families.into_iter().flatten() {
        if spec.validate().is_ok() && &spec != current && !out.iter().any(|c| c.spec == spec) {
            out.push(Candidate { spec, rationale });
        }
    }
    out
}

/// The candidates made to keep `current`'s partitioning (for a table that declares its own):
/// each takes `current.partition_by`, and those that then repeat another or `current` go.
pub fn keep_partitioning(generated: Vec<Candidate>, current: &LayoutSpec) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::with_capacity(generated.len());
    for mut c in generated {
        c.spec.partition_by = current.partition_by.clone();
        if c.spec.validate().is_ok() && &c.spec != current && !out.iter().any(|o| o.spec == c.spec)
        {
            out.push(c);
        }
    }
    out
}

/// The share of queries filtering on `c`, as a percentage.
fn share(c: &ColumnUsage) -> String {
    format!("{:.0}%", c.filter_share * 100.0)
}

/// Sorts led by each of the three most useful filter columns.
fn single_sorts(qualifying: &[&ColumnUsage]) -> Vec<(LayoutSpec, String)> {
    let mut out = Vec::new();
    let mut push = |spec: LayoutSpec, rationale: String| out.push((spec, rationale));
    for c in qualifying.iter().take(3) {
        push(
            LayoutSpec {
                sort_by: sort(&[&c.column]),
                ..Default::default()
            },
            format!(
                "{} is filtered by {} of queries ({} eq, {} in, {} range)",
                c.column,
                share(c),
                c.eq,
                c.in_list,
                c.range
            ),
        );
    }
    out
}

/// A compound sort: equality and IN columns first, then range columns.
fn compound_sort(qualifying: &[&ColumnUsage]) -> Vec<(LayoutSpec, String)> {
    let mut out = Vec::new();
    let mut push = |spec: LayoutSpec, rationale: String| out.push((spec, rationale));
    let points: Vec<&str> = qualifying
        .iter()
        .filter(|c| is_point(c))
        .map(|c| c.column.as_str())
        .collect();
    let ranges: Vec<&str> = qualifying
        .iter()
        .filter(|c| !is_point(c))
        .map(|c| c.column.as_str())
        .collect();
    let compound: Vec<&str> = points.iter().chain(&ranges).take(3).copied().collect();
    if compound.len() >= 2 {
        push(
            LayoutSpec {
                sort_by: sort(&compound),
                ..Default::default()
            },
            format!(
                "equality/IN columns before range columns: {}",
                compound.join(", ")
            ),
        );
    }
    out
}

/// Z-order and Hilbert clustering when several filters compete; with three or more, also a
/// curve on the two most useful and a sort on the third inside its cells.
fn curves(qualifying: &[&ColumnUsage]) -> Vec<(LayoutSpec, String)> {
    let mut out = Vec::new();
    let mut push = |spec: LayoutSpec, rationale: String| out.push((spec, rationale));
    let curve_cols: Vec<&str> = qualifying
        .iter()
        .take(4)
        .map(|c| c.column.as_str())
        .collect();
    if curve_cols.len() >= 2 {
        for curve in [Curve::ZOrder, Curve::Hilbert] {
            push(
                LayoutSpec {
                    cluster_by: curve_cols
                        .iter()
                        .map(std::string::ToString::to_string)
                        .collect(),
                    curve,
                    ..Default::default()
                },
                format!(
                    "{} filters compete ({}); a curve keeps each of them selective",
                    curve_cols.len(),
                    curve_cols.join(", ")
                ),
            );
        }
    }
    // With three or more, the two most useful on a Hilbert curve (finer cells than a curve
    // over all of them) and, inside each cell, a sort on the third: its ranges stay narrow
    // in every page the curve leaves to read.
    if let [first, second, third, ..] = curve_cols[..] {
        push(
            LayoutSpec {
                cluster_by: vec![first.to_string(), second.to_string()],
                curve: Curve::Hilbert,
                sort_by: sort(&[third]),
                ..Default::default()
            },
            format!(
                "a curve on the two most useful filters ({first}, {second}) and a sort on {third} inside each of its cells"
            ),
        );
    }
    out
}

/// Hive partitions on low-cardinality filtered columns, bounded in count and size.
fn partitions(
    qualifying: &[&ColumnUsage],
    stats: &TableStats,
    t: &Thresholds,
) -> Vec<(LayoutSpec, String)> {
    let mut out = Vec::new();
    let mut push = |spec: LayoutSpec, rationale: String| out.push((spec, rationale));
    for c in qualifying {
        if c.filter_share <= t.partition_min_query_share {
            continue;
        }
        let Some(cs) = stats.column(&c.column) else {
            continue;
        };
        let ndv = cs.distinct_estimate.max(1);
        if ndv > t.max_partitions || stats.rows / ndv < t.min_partition_rows {
            continue;
        }
        let inner: Vec<&str> = qualifying
            .iter()
            .map(|o| o.column.as_str())
            .filter(|o| *o != c.column)
            .take(1)
            .collect();
        push(
            LayoutSpec {
                partition_by: vec![c.column.clone()],
                sort_by: sort(&inner),
                ..Default::default()
            },
            format!(
                "{} has about {ndv} values and is filtered by {} of queries",
                c.column,
                share(c)
            ),
        );
    }
    out
}

/// Smaller row groups or pages under the best sort: finer pruning, more to visit.
fn finer_sizes(qualifying: &[&ColumnUsage]) -> Vec<(LayoutSpec, String)> {
    let mut out = Vec::new();
    let mut push = |spec: LayoutSpec, rationale: String| out.push((spec, rationale));
    if let Some(best) = qualifying.first() {
        push(
            LayoutSpec {
                sort_by: sort(&[&best.column]),
                row_group_rows: Some(DEFAULT_ROW_GROUP_ROWS / 4),
                ..Default::default()
            },
            format!("finer row groups under the {} sort", best.column),
        );
        push(
            LayoutSpec {
                sort_by: sort(&[&best.column]),
                page_rows: Some(DEFAULT_PAGE_ROWS / 4),
                ..Default::default()
            },
            format!("finer data pages under the {} sort", best.column),
        );
    }
    out
}

/// Bloom filters on high-cardinality equality columns, alone or under a sort.
fn blooms(
    qualifying: &[&ColumnUsage],
    stats: &TableStats,
    current: &LayoutSpec,
) -> Vec<(LayoutSpec, String)> {
    let mut out = Vec::new();
    let mut push = |spec: LayoutSpec, rationale: String| out.push((spec, rationale));
    for c in qualifying {
        let ndv = stats.column(&c.column).map_or(0, |s| s.distinct_estimate);
        if !is_point(c) || ndv < BLOOM_MIN_DISTINCT {
            continue;
        }
        let mut with_bloom = current.clone();
        with_bloom.bloom_filter_columns.push(c.column.clone());
        push(
            with_bloom,
            format!(
                "{} is looked up by equality in {} of queries and has about {ndv} values",
                c.column,
                share(c)
            ),
        );
        if let Some(lead) = qualifying.iter().find(|o| o.column != c.column) {
            push(
                LayoutSpec {
                    sort_by: sort(&[&lead.column]),
                    bloom_filter_columns: vec![c.column.clone()],
                    ..Default::default()
                },
                format!(
                    "sort on {} and a bloom filter for {} lookups",
                    lead.column, c.column
                ),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbopt_analyze::ColumnUsage;
    use dbopt_core::plan_summary::ColumnStats;

    fn usage(column: &str, share: f64, eq: u64, range: u64) -> ColumnUsage {
        ColumnUsage {
            column: column.into(),
            filtered: eq + range,
            eq,
            range,
            filter_share: share,
            estimated_selectivity: Some(0.05),
            ..Default::default()
        }
    }

    fn stats(rows: u64, ndv: &[(&str, u64)]) -> TableStats {
        TableStats {
            rows,
            files: 1,
            row_groups: 8,
            total_bytes: 1,
            metadata_bytes: 0,
            row_group_rows: 131072,
            page_rows: 8192,
            columns: ndv
                .iter()
                .map(|(c, n)| ColumnStats {
                    column: c.to_string(),
                    data_type: String::new(),
                    compressed_bytes: 1,
                    dictionary_bytes: 0,
                    null_count: 0,
                    distinct_estimate: *n,
                    min: None,
                    max: None,
                    clustering: 0.0,
                })
                .collect(),
        }
    }

    fn thresholds() -> Thresholds {
        Thresholds {
            max_partitions: 256,
            min_partition_rows: 100_000,
            partition_min_query_share: 0.3,
            sort_min_query_share: 0.2,
            min_predicted_reduction: 0.3,
            max_size_growth: 0.25,
        }
    }

    fn profile(columns: Vec<ColumnUsage>) -> WorkloadProfile {
        WorkloadProfile {
            table: "t".into(),
            queries_analyzed: 10,
            queries_skipped: 0,
            queries_from_syntax: 0,
            columns,
            hot_columns: Vec::new(),
            clusters: Vec::new(),
        }
    }

    #[test]
    fn partitions_are_bounded_by_count_and_size() {
        let p = profile(vec![usage("country", 0.5, 5, 0), usage("day", 0.4, 0, 4)]);
        let ok = generate(
            &p,
            &stats(10_000_000, &[("country", 20), ("day", 365)]),
            &LayoutSpec::default(),
            &thresholds(),
        );
        let parts: Vec<&Vec<String>> = ok
            .iter()
            .filter(|c| !c.spec.partition_by.is_empty())
            .map(|c| &c.spec.partition_by)
            .collect();
        assert_eq!(
            parts,
            vec![&vec!["country".to_string()]],
            "day has > max_partitions values"
        );
        // Too few rows per partition: no partitioning at all.
        let small = generate(
            &p,
            &stats(1_000_000, &[("country", 20), ("day", 365)]),
            &LayoutSpec::default(),
            &thresholds(),
        );
        assert!(small.iter().all(|c| c.spec.partition_by.is_empty()));
    }

    #[test]
    fn a_declared_partitioning_is_kept_by_every_candidate() {
        let p = profile(vec![usage("country", 0.5, 5, 0), usage("day", 0.4, 0, 4)]);
        let current = LayoutSpec {
            partition_by: vec!["region".into()],
            ..LayoutSpec::default()
        };
        let generated = generate(
            &p,
            &stats(10_000_000, &[("country", 20), ("day", 365)]),
            &current,
            &thresholds(),
        );
        // The country partition candidate becomes the current spec once it keeps region.
        assert!(
            generated
                .iter()
                .any(|c| c.spec.partition_by == vec!["country".to_string()])
        );
        let kept = keep_partitioning(generated.clone(), &current);
        assert!(!kept.is_empty());
        assert!(
            kept.len() < generated.len(),
            "the partition candidates collapse"
        );
        assert!(
            kept.iter()
                .all(|c| c.spec.partition_by == current.partition_by)
        );
        assert!(kept.iter().all(|c| c.spec != current));
        assert!(
            kept.iter()
                .any(|c| c.spec.sort_by.first().is_some_and(|k| k.column == "day"))
        );
    }

    #[test]
    fn equality_columns_lead_the_compound_sort_and_rare_columns_are_ignored() {
        let p = profile(vec![
            usage("day", 0.6, 0, 6),
            usage("customer_id", 0.3, 3, 0),
            usage("rare", 0.1, 1, 0),
        ]);
        let c = generate(
            &p,
            &stats(
                1_000_000,
                &[("day", 365), ("customer_id", 50_000), ("rare", 9)],
            ),
            &LayoutSpec::default(),
            &thresholds(),
        );
        let compound = c.iter().find(|c| c.spec.sort_by.len() == 2).unwrap();
        assert_eq!(compound.spec.sort_by[0].column, "customer_id");
        assert_eq!(compound.spec.sort_by[1].column, "day");
        assert!(
            c.iter()
                .all(|c| !c.spec.referenced_columns().contains(&"rare"))
        );
        assert!(c.iter().any(|c| c.spec.cluster_by.len() == 2));
        assert!(
            c.iter()
                .any(|c| c.spec.bloom_filter_columns == vec!["customer_id".to_string()])
        );
        assert!(
            c.iter()
                .any(|c| c.spec.page_rows == Some(DEFAULT_PAGE_ROWS / 4))
        );
        assert!(c.iter().all(|c| c.spec.validate().is_ok()));
    }

    #[test]
    fn three_competing_filters_also_get_a_curve_on_two_and_a_sort_inside_its_cells() {
        let p = profile(vec![
            usage("day", 0.6, 0, 6),
            usage("customer_id", 0.4, 4, 0),
            usage("amount", 0.3, 0, 3),
        ]);
        let ndv = [("day", 365), ("customer_id", 50_000), ("amount", 10_000)];
        let c = generate(
            &p,
            &stats(1_000_000, &ndv),
            &LayoutSpec::default(),
            &thresholds(),
        );
        let all_three = c.iter().filter(|c| c.spec.cluster_by.len() == 3).count();
        assert_eq!(all_three, 2, "Z-order and Hilbert on all three");
        let nested = c
            .iter()
            .find(|c| c.spec.cluster_by.len() == 2 && !c.spec.sort_by.is_empty())
            .expect("a curve on two with a sort inside");
        assert_eq!(nested.spec.curve, Curve::Hilbert);
        let sorted: Vec<&str> = nested
            .spec
            .sort_by
            .iter()
            .map(|k| k.column.as_str())
            .collect();
        assert_eq!(sorted.len(), 1);
        assert!(!nested.spec.cluster_by.iter().any(|c| c == sorted[0]));
        assert!(
            nested.rationale.contains("inside each of its cells"),
            "{}",
            nested.rationale
        );
    }
}
