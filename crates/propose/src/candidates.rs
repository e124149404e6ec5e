//! Candidate generation: from the workload profile and column statistics to a bounded set
//! of candidate `LayoutSpec`s (sorts, hive partitions, Z-order/Hilbert clustering, row-group
//! sizing, bloom filters), each with the reason it was generated.

use dbopt_analyze::{ColumnUsage, WorkloadProfile};
use dbopt_core::layout::DEFAULT_ROW_GROUP_ROWS;
use dbopt_core::plan::TableStats;
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

/// Generates candidates (the current layout is not among them; the caller adds it).
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
    let mut out: Vec<Candidate> = Vec::new();
    let mut push = |spec: LayoutSpec, rationale: String| {
        if spec.validate().is_ok() && &spec != current && !out.iter().any(|c| c.spec == spec) {
            out.push(Candidate { spec, rationale });
        }
    };
    let share = |c: &ColumnUsage| format!("{:.0}%", c.filter_share * 100.0);

    // Sorts led by each qualifying column.
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
    // A compound sort: equality and IN columns first, then range columns.
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
    // Space-filling curve when several filters compete.
    let curve_cols: Vec<&str> = qualifying
        .iter()
        .take(4)
        .map(|c| c.column.as_str())
        .collect();
    if curve_cols.len() >= 2 {
        for curve in [Curve::ZOrder, Curve::Hilbert] {
            push(
                LayoutSpec {
                    cluster_by: curve_cols.iter().map(|c| c.to_string()).collect(),
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
    // Hive partitions on low-cardinality filtered columns, bounded in count and size.
    for c in &qualifying {
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
    // Smaller row groups under the best sort: finer pruning, more row groups to visit.
    if let Some(best) = qualifying.first() {
        push(
            LayoutSpec {
                sort_by: sort(&[&best.column]),
                row_group_rows: Some(DEFAULT_ROW_GROUP_ROWS / 4),
                ..Default::default()
            },
            format!("finer row groups under the {} sort", best.column),
        );
    }
    // Bloom filters on high-cardinality equality columns.
    for c in &qualifying {
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
