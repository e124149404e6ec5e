//! dbopt-analyze: plan summaries of logged queries -> `WorkloadProfile`.
//!
//! Sits after the query log and before propose in the data flow. Pure: it takes each logged
//! query's `TableUsage` (from the engine's plan summary) and measured scan figures, and counts
//! per column how often it is filtered (and how), joined, grouped, ordered and projected; the
//! measured and estimated selectivity of its predicates; the hot columns; and the workload
//! clusters, each with a stable id derived from the query's shape.

use dbopt_core::plan_summary::{Lit, Predicate, PredicateKind, TableStats, TableUsage};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One analyzable logged query: its plan usage of the table and what it measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The `query_log` id.
    pub query_id: i64,
    /// The SQL text (for examples).
    pub sql: String,
    /// What the plan asks of the analyzed table.
    pub usage: TableUsage,
    /// Bytes the query scanned of the table when it ran (None if never run, e.g. imported).
    pub bytes_scanned: Option<u64>,
    /// Total bytes of the layout it ran on (to turn bytes into a measured selectivity).
    pub layout_bytes: Option<u64>,
    /// Read from the query's syntax tree because DataFusion could not plan it (an imported
    /// query with another engine's functions).
    #[serde(default)]
    pub from_syntax: bool,
}

/// How one column is used by the workload.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ColumnUsage {
    /// The column.
    pub column: String,
    /// Queries filtering on it (any kind).
    pub filtered: u64,
    /// Queries with an equality predicate on it.
    pub eq: u64,
    /// Queries with an IN predicate on it.
    pub in_list: u64,
    /// Queries with a range predicate on it.
    pub range: u64,
    /// Queries with a prefix LIKE on it.
    pub prefix: u64,
    /// Queries with IS NULL / IS NOT NULL on it.
    pub null_check: u64,
    /// Queries with another predicate on it (not prunable).
    pub other: u64,
    /// Queries joining on it.
    pub joined: u64,
    /// Queries grouping by it.
    pub grouped: u64,
    /// Queries ordering by it.
    pub ordered: u64,
    /// Queries reading it.
    pub projected: u64,
    /// Share of analyzed queries filtering on it.
    pub filter_share: f64,
    /// Mean measured scanned fraction (bytes scanned / layout bytes) of the queries filtering it.
    pub measured_selectivity: Option<f64>,
    /// Mean estimated selectivity of its predicates from column statistics.
    pub estimated_selectivity: Option<f64>,
}

/// A group of queries with the same shape (the same columns filtered the same way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// Stable id derived from the shape, e.g. `c3f9a01b2`.
    pub id: String,
    /// The shape: sorted `column:kind` entries (empty = no filter).
    pub shape: Vec<String>,
    /// Queries in the cluster.
    pub queries: u64,
    /// Share of analyzed queries.
    pub share: f64,
    /// Mean measured bytes scanned, when measured.
    pub mean_bytes_scanned: Option<f64>,
    /// One example SQL.
    pub example: String,
}

/// The workload profile of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadProfile {
    /// The table.
    pub table: String,
    /// Queries analyzed.
    pub queries_analyzed: u64,
    /// Queries skipped because they no longer plan or do not scan the table.
    pub queries_skipped: u64,
    /// Analyzed queries read from their syntax tree because DataFusion could not plan them.
    #[serde(default)]
    pub queries_from_syntax: u64,
    /// Per-column usage, most filtered first.
    pub columns: Vec<ColumnUsage>,
    /// Columns filtered by a notable share of queries, hottest first.
    pub hot_columns: Vec<String>,
    /// Clusters, largest first.
    pub clusters: Vec<Cluster>,
}

/// Share of queries above which a filtered column counts as hot.
pub const HOT_COLUMN_SHARE: f64 = 0.1;

/// The shape of a query: sorted unique `column:kind` of its filters.
pub fn shape(usage: &TableUsage) -> Vec<String> {
    let mut s: Vec<String> = usage
        .filters
        .iter()
        .map(|p| format!("{}:{}", p.column, p.kind.tag()))
        .collect();
    s.sort();
    s.dedup();
    s
}

/// The stable cluster id of a shape: `c` + 8 hex digits of SHA-256 over the shape.
pub fn cluster_id(shape: &[String]) -> String {
    let mut h = Sha256::new();
    for s in shape {
        h.update(s.as_bytes());
        h.update([0u8]);
    }
    format!("c{}", hex::encode(&h.finalize()[..4]))
}

/// Estimated selectivity of one predicate from column statistics (None when unknown).
pub fn estimated_selectivity(p: &Predicate, stats: &TableStats) -> Option<f64> {
    let col = stats.column(&p.column)?;
    let ndv = col.distinct_estimate.max(1) as f64;
    let sel = match &p.kind {
        PredicateKind::Eq { .. } => 1.0 / ndv,
        PredicateKind::In { values } => values.len() as f64 / ndv,
        PredicateKind::Range { low, high } => {
            let (min, max) = (col.min.as_ref()?.as_f64()?, col.max.as_ref()?.as_f64()?);
            if max <= min {
                return Some(1.0);
            }
            let lo = low.as_ref().and_then(|b| b.value.as_f64()).unwrap_or(min);
            let hi = high.as_ref().and_then(|b| b.value.as_f64()).unwrap_or(max);
            // Dates and integers are discrete: an inclusive upper bound covers one more unit.
            let unit = match low.as_ref().or(high.as_ref()).map(|b| &b.value) {
                Some(Lit::Date(_)) | Some(Lit::Int(_)) => 1.0,
                _ => 0.0,
            };
            ((hi.min(max) - lo.max(min) + unit) / (max - min + unit)).max(0.0)
        }
        PredicateKind::PrefixLike { .. } => 0.1,
        PredicateKind::IsNull => stats.null_fraction(&p.column),
        PredicateKind::IsNotNull => 1.0 - stats.null_fraction(&p.column),
        PredicateKind::Other => return None,
    };
    Some(sel.clamp(0.0, 1.0))
}

fn column_entry<'a>(cols: &'a mut BTreeMap<String, ColumnUsage>, c: &str) -> &'a mut ColumnUsage {
    cols.entry(c.to_string()).or_insert_with(|| ColumnUsage {
        column: c.to_string(),
        ..Default::default()
    })
}

/// Builds the profile of `table` from analyzable observations (`skipped` counts the rest).
pub fn profile(
    table: &str,
    observations: &[Observation],
    skipped: u64,
    stats: Option<&TableStats>,
) -> WorkloadProfile {
    let n = observations.len() as u64;
    let mut cols: BTreeMap<String, ColumnUsage> = BTreeMap::new();
    let mut measured: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    let mut estimated: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    let mut clusters: BTreeMap<String, Cluster> = BTreeMap::new();
    let mut cluster_bytes: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    for o in observations {
        let u = &o.usage;
        let mut filtered_cols: Vec<&str> = Vec::new();
        for p in &u.filters {
            let c = column_entry(&mut cols, &p.column);
            match p.kind {
                PredicateKind::Eq { .. } => c.eq += 1,
                PredicateKind::In { .. } => c.in_list += 1,
                PredicateKind::Range { .. } => c.range += 1,
                PredicateKind::PrefixLike { .. } => c.prefix += 1,
                PredicateKind::IsNull | PredicateKind::IsNotNull => c.null_check += 1,
                PredicateKind::Other => c.other += 1,
            }
            if !filtered_cols.contains(&p.column.as_str()) {
                filtered_cols.push(&p.column);
                c.filtered += 1;
                if let (Some(b), Some(t)) = (o.bytes_scanned, o.layout_bytes.filter(|t| *t > 0)) {
                    let m = measured.entry(p.column.clone()).or_default();
                    m.0 += (b as f64 / t as f64).min(1.0);
                    m.1 += 1;
                }
            }
            if let Some(sel) = stats.and_then(|s| estimated_selectivity(p, s)) {
                let e = estimated.entry(p.column.clone()).or_default();
                e.0 += sel;
                e.1 += 1;
            }
        }
        let mut bump = |list: &[String], f: fn(&mut ColumnUsage)| {
            let mut seen: Vec<&String> = Vec::new();
            for c in list {
                if seen.contains(&c) {
                    continue;
                }
                seen.push(c);
                f(column_entry(&mut cols, c));
            }
        };
        bump(&u.join_keys, |c| c.joined += 1);
        bump(&u.group_by, |c| c.grouped += 1);
        bump(&u.order_by, |c| c.ordered += 1);
        bump(&u.projected, |c| c.projected += 1);

        let sh = shape(u);
        let id = cluster_id(&sh);
        let cl = clusters.entry(id.clone()).or_insert_with(|| Cluster {
            id: id.clone(),
            shape: sh,
            queries: 0,
            share: 0.0,
            mean_bytes_scanned: None,
            example: o.sql.clone(),
        });
        cl.queries += 1;
        if let Some(b) = o.bytes_scanned {
            let e = cluster_bytes.entry(id).or_default();
            e.0 += b as f64;
            e.1 += 1;
        }
    }
    let share = |k: u64| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let mut columns: Vec<ColumnUsage> = cols
        .into_values()
        .map(|mut c| {
            c.filter_share = share(c.filtered);
            c.measured_selectivity = measured.get(&c.column).map(|(s, k)| s / *k as f64);
            c.estimated_selectivity = estimated.get(&c.column).map(|(s, k)| s / *k as f64);
            c
        })
        .collect();
    columns.sort_by(|a, b| {
        b.filtered
            .cmp(&a.filtered)
            .then(b.projected.cmp(&a.projected))
            .then(a.column.cmp(&b.column))
    });
    let hot_columns = columns
        .iter()
        .filter(|c| c.filtered > 0 && c.filter_share >= HOT_COLUMN_SHARE && c.other < c.filtered)
        .map(|c| c.column.clone())
        .collect();
    let mut clusters: Vec<Cluster> = clusters
        .into_values()
        .map(|mut c| {
            c.share = share(c.queries);
            c.mean_bytes_scanned = cluster_bytes.get(&c.id).map(|(s, k)| s / *k as f64);
            c
        })
        .collect();
    clusters.sort_by(|a, b| b.queries.cmp(&a.queries).then(a.id.cmp(&b.id)));
    WorkloadProfile {
        table: table.to_string(),
        queries_analyzed: n,
        queries_skipped: skipped,
        queries_from_syntax: observations.iter().filter(|o| o.from_syntax).count() as u64,
        columns,
        hot_columns,
        clusters,
    }
}

impl WorkloadProfile {
    /// The usage of `column`, if the workload touches it.
    pub fn column(&self, column: &str) -> Option<&ColumnUsage> {
        self.columns.iter().find(|c| c.column == column)
    }

    /// The clusters whose shape filters `column`, largest first.
    pub fn clusters_filtering(&self, column: &str) -> Vec<&Cluster> {
        let prefix = format!("{column}:");
        self.clusters
            .iter()
            .filter(|c| c.shape.iter().any(|s| s.starts_with(&prefix)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbopt_core::plan_summary::{Bound, ColumnStats};

    fn range(col: &str, lo: i32, hi: i32) -> Predicate {
        Predicate {
            column: col.into(),
            kind: PredicateKind::Range {
                low: Some(Bound {
                    value: Lit::Date(lo),
                    inclusive: true,
                }),
                high: Some(Bound {
                    value: Lit::Date(hi),
                    inclusive: false,
                }),
            },
        }
    }

    fn eq(col: &str, v: i64) -> Predicate {
        Predicate {
            column: col.into(),
            kind: PredicateKind::Eq { value: Lit::Int(v) },
        }
    }

    fn obs(id: i64, filters: Vec<Predicate>, bytes: u64) -> Observation {
        Observation {
            query_id: id,
            sql: format!("q{id}"),
            usage: TableUsage {
                table: "events".into(),
                filters,
                group_by: vec!["country".into()],
                projected: vec!["country".into(), "amount".into()],
                ..Default::default()
            },
            bytes_scanned: Some(bytes),
            layout_bytes: Some(1000),
            from_syntax: false,
        }
    }

    #[test]
    fn counts_kinds_hot_columns_and_clusters() {
        let o = vec![
            obs(1, vec![range("event_date", 1, 5)], 100),
            obs(2, vec![range("event_date", 9, 12)], 300),
            obs(3, vec![eq("customer_id", 7)], 1000),
            obs(4, vec![], 1000),
        ];
        let p = profile("events", &o, 2, None);
        assert_eq!(p.queries_analyzed, 4);
        assert_eq!(p.queries_skipped, 2);
        let d = p.column("event_date").unwrap();
        assert_eq!((d.filtered, d.range), (2, 2));
        assert_eq!(d.filter_share, 0.5);
        assert!((d.measured_selectivity.unwrap() - 0.2).abs() < 1e-9);
        assert_eq!(p.column("country").unwrap().grouped, 4);
        assert_eq!(p.hot_columns[0], "event_date");
        assert!(p.hot_columns.contains(&"customer_id".to_string()));
        assert_eq!(p.clusters.len(), 3);
        assert_eq!(p.clusters[0].queries, 2);
        assert_eq!(p.clusters[0].shape, vec!["event_date:range"]);
        assert_eq!(p.clusters_filtering("event_date").len(), 1);
    }

    const PINNED_D_RANGE: &str = "c79325284";

    #[test]
    fn cluster_ids_are_stable_and_ignore_literals() {
        let a = shape(&obs(1, vec![range("d", 1, 2), eq("c", 1)], 0).usage);
        let b = shape(&obs(2, vec![eq("c", 9), range("d", 5, 9)], 0).usage);
        assert_eq!(cluster_id(&a), cluster_id(&b));
        assert!(cluster_id(&a).starts_with('c'));
        assert_eq!(cluster_id(&a).len(), 9);
        assert_ne!(
            cluster_id(&a),
            cluster_id(&shape(&obs(3, vec![eq("c", 1)], 0).usage))
        );
        // Pinned so a refactor cannot silently renumber stored clusters.
        assert_eq!(cluster_id(&["d:range".to_string()]), PINNED_D_RANGE);
    }

    #[test]
    fn estimated_selectivity_from_stats() {
        let stats = TableStats {
            rows: 100,
            files: 1,
            row_groups: 1,
            total_bytes: 1,
            metadata_bytes: 0,
            row_group_rows: 100,
            page_rows: 10,
            columns: vec![
                ColumnStats {
                    column: "event_date".into(),
                    data_type: "Date32".into(),
                    compressed_bytes: 1,
                    dictionary_bytes: 0,
                    null_count: 0,
                    distinct_estimate: 100,
                    min: Some(Lit::Date(0)),
                    max: Some(Lit::Date(99)),
                    clustering: 0.0,
                },
                ColumnStats {
                    column: "customer_id".into(),
                    data_type: "Int64".into(),
                    compressed_bytes: 1,
                    dictionary_bytes: 0,
                    null_count: 10,
                    distinct_estimate: 50,
                    min: Some(Lit::Int(1)),
                    max: Some(Lit::Int(50)),
                    clustering: 0.0,
                },
            ],
        };
        let r = estimated_selectivity(&range("event_date", 0, 10), &stats).unwrap();
        assert!((r - 0.1).abs() < 0.02, "{r}");
        assert_eq!(
            estimated_selectivity(&eq("customer_id", 3), &stats),
            Some(0.02)
        );
        let isnull = Predicate {
            column: "customer_id".into(),
            kind: PredicateKind::IsNull,
        };
        assert_eq!(estimated_selectivity(&isnull, &stats), Some(0.1));
    }
}
