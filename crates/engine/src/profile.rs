//! Where a query's time went: DataFusion's per-operator metrics of the executed plan (what
//! `EXPLAIN ANALYZE` prints) summed over partitions and grouped into kinds a user can act on
//! (scan and decode, filter, join, aggregate, sort, exchange), with rows, spills and
//! per-partition skew. Read from the plan every query already ran, so it costs one walk of the
//! plan tree.

use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::{MetricValue, MetricsSet};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What kind of work an operator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OperatorKind {
    /// Reading files: opening, fetching, decompressing and decoding Parquet.
    Scan,
    /// Evaluating predicates over decoded rows.
    Filter,
    /// Hash, sort-merge and nested-loop joins (build and probe).
    Join,
    /// Grouping and aggregate functions.
    Aggregate,
    /// Sorting and merging sorted streams.
    Sort,
    /// Moving batches between partitions (repartition, coalesce).
    Exchange,
    /// Projections, limits and everything else.
    Other,
}

impl OperatorKind {
    /// The kind's name as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorKind::Scan => "scan and decode",
            OperatorKind::Filter => "filter",
            OperatorKind::Join => "join",
            OperatorKind::Aggregate => "aggregate",
            OperatorKind::Sort => "sort",
            OperatorKind::Exchange => "exchange",
            OperatorKind::Other => "other",
        }
    }

    fn of(name: &str) -> Self {
        match name {
            "DataSourceExec" | "ParquetExec" => OperatorKind::Scan,
            "FilterExec" => OperatorKind::Filter,
            "AggregateExec" => OperatorKind::Aggregate,
            "SortExec" | "SortPreservingMergeExec" | "PartialSortExec" => OperatorKind::Sort,
            "RepartitionExec" | "CoalescePartitionsExec" | "CoalesceBatchesExec" => {
                OperatorKind::Exchange
            }
            n if n.contains("Join") => OperatorKind::Join,
            _ => OperatorKind::Other,
        }
    }
}

/// One operator of the executed plan.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorProfile {
    /// Depth in the plan tree (0 = root).
    pub depth: usize,
    /// DataFusion's operator name, e.g. `HashJoinExec`.
    pub name: String,
    /// What kind of work it is.
    pub kind: OperatorKind,
    /// Its own time, summed over partitions (compute time; for a scan, opening plus decoding).
    pub time: Duration,
    /// Rows it produced.
    pub output_rows: u64,
    /// Partitions that reported rows.
    pub partitions: usize,
    /// Rows of its busiest partition.
    pub max_partition_rows: u64,
    /// Times it spilled to disk.
    pub spills: u64,
    /// Bytes it spilled.
    pub spilled_bytes: u64,
    /// Bytes it read from files (scans only).
    pub bytes_scanned: u64,
}

/// The operators of one executed query, root first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryProfile {
    /// Every operator, in plan order (pre-order).
    pub operators: Vec<OperatorProfile>,
    /// The session's target partitions (threads).
    pub target_partitions: usize,
}

impl QueryProfile {
    /// Reads the metrics of an executed `plan`.
    pub(crate) fn of_plan(plan: &Arc<dyn ExecutionPlan>, target_partitions: usize) -> Self {
        let mut operators = Vec::new();
        walk(plan, 0, &mut operators);
        Self {
            operators,
            target_partitions,
        }
    }

    /// Time per kind of work, largest first.
    pub fn time_by_kind(&self) -> Vec<(OperatorKind, Duration)> {
        let mut sums: BTreeMap<OperatorKind, Duration> = BTreeMap::new();
        for op in &self.operators {
            *sums.entry(op.kind).or_default() += op.time;
        }
        let mut sums: Vec<_> = sums.into_iter().collect();
        sums.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        sums
    }

    /// Time of every operator together.
    pub fn total_time(&self) -> Duration {
        self.operators.iter().map(|o| o.time).sum()
    }

    /// The kind of work that took the most time, with its share of the total (None when no
    /// operator reported any time).
    pub fn dominant(&self) -> Option<(OperatorKind, f64)> {
        let total = self.total_time().as_secs_f64();
        let (kind, time) = *self.time_by_kind().first()?;
        (total > 0.0).then(|| (kind, time.as_secs_f64() / total))
    }

    /// The operator that took the most time.
    pub fn slowest(&self) -> Option<&OperatorProfile> {
        self.operators.iter().max_by_key(|o| o.time)
    }
}

fn walk(plan: &Arc<dyn ExecutionPlan>, depth: usize, out: &mut Vec<OperatorProfile>) {
    let name = plan.name().to_string();
    let kind = OperatorKind::of(&name);
    let metrics = plan.metrics().unwrap_or_default();
    out.push(operator(&metrics, depth, name, kind));
    for child in plan.children() {
        walk(child, depth + 1, out);
    }
}

fn operator(
    metrics: &MetricsSet,
    depth: usize,
    name: String,
    kind: OperatorKind,
) -> OperatorProfile {
    let nanos = |metric: &str| match metrics.sum_by_name(metric) {
        Some(v) => v.as_usize() as u64,
        None => 0,
    };
    let mut time = metrics.elapsed_compute().unwrap_or(0) as u64;
    if kind == OperatorKind::Scan {
        time += nanos("time_elapsed_processing") + nanos("time_elapsed_opening");
    }
    let mut per_partition: BTreeMap<usize, u64> = BTreeMap::new();
    for m in metrics.iter() {
        if let (MetricValue::OutputRows(c), Some(p)) = (m.value(), m.partition()) {
            *per_partition.entry(p).or_default() += c.value() as u64;
        }
    }
    OperatorProfile {
        depth,
        name,
        kind,
        time: Duration::from_nanos(time),
        output_rows: metrics.output_rows().unwrap_or(0) as u64,
        partitions: per_partition.len(),
        max_partition_rows: per_partition.values().copied().max().unwrap_or(0),
        spills: metrics.spill_count().unwrap_or(0) as u64,
        spilled_bytes: metrics.spilled_bytes().unwrap_or(0) as u64,
        bytes_scanned: nanos("bytes_scanned"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: OperatorKind, ms: u64) -> OperatorProfile {
        OperatorProfile {
            depth: 0,
            name: format!("{kind:?}"),
            kind,
            time: Duration::from_millis(ms),
            output_rows: 0,
            partitions: 1,
            max_partition_rows: 0,
            spills: 0,
            spilled_bytes: 0,
            bytes_scanned: 0,
        }
    }

    #[test]
    fn the_dominant_kind_sums_its_operators() {
        let profile = QueryProfile {
            operators: vec![
                op(OperatorKind::Join, 30),
                op(OperatorKind::Scan, 25),
                op(OperatorKind::Scan, 20),
                op(OperatorKind::Other, 15),
            ],
            target_partitions: 2,
        };
        let (kind, share) = profile.dominant().unwrap();
        assert_eq!(kind, OperatorKind::Scan);
        assert!((share - 0.5).abs() < 1e-9);
        assert_eq!(profile.slowest().unwrap().kind, OperatorKind::Join);
        assert!(QueryProfile::default().dominant().is_none());
    }

    #[test]
    fn operator_names_map_to_kinds() {
        assert_eq!(OperatorKind::of("HashJoinExec"), OperatorKind::Join);
        assert_eq!(OperatorKind::of("NestedLoopJoinExec"), OperatorKind::Join);
        assert_eq!(OperatorKind::of("DataSourceExec"), OperatorKind::Scan);
        assert_eq!(OperatorKind::of("ProjectionExec"), OperatorKind::Other);
    }
}
