//! `dbopt profile`: a query run (routed and logged like `dbopt query`) with DataFusion's
//! per-operator metrics, and advice that names the bottleneck and the lever that moves it:
//!
//! - IO-bound: the scan dominates and reads most of the table's row groups although the query
//!   filters; a layout ordered on the filtered columns would prune (`dbopt propose`).
//! - decode-bound: the scan dominates but pruning already skipped most of the table; the time
//!   is decompressing and decoding the columns read (read fewer columns, lighter compression).
//! - join-, aggregate-, sort- or filter-bound: that operator kind dominates.
//! - spill: an operator spilled to disk; `memory_limit` is too small for it.
//! - skew: one partition of an operator produced far more rows than the others.
//! - too few partitions: the scan ran on fewer partitions than there are threads.
//!
//! [`advise`] is pure: it reads a profile, the scan metrics and the filtered columns.

use crate::Workspace;
use crate::workload::Runner;
use dbopt_core::TableName;
use dbopt_engine::plan_summary::summarize_sql;
use dbopt_engine::{OperatorKind, QueryOutcome, QueryProfile, TableScanMetrics};
use serde::Serialize;

/// The bottleneck a piece of advice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bottleneck {
    /// The scan reads much of the table although the query filters.
    Io,
    /// The scan dominates with pruning already effective: decoding is the work.
    Decode,
    /// Joins dominate.
    Join,
    /// Aggregation dominates.
    Aggregate,
    /// Sorting dominates.
    Sort,
    /// Predicate evaluation dominates.
    Filter,
    /// Operators spilled to disk.
    Spill,
    /// One partition did most of an operator's work.
    Skew,
    /// Fewer scan partitions than threads.
    FewPartitions,
}

/// One finding with what to do about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    /// What it is about.
    pub bottleneck: Bottleneck,
    /// The finding and the lever, in one sentence.
    pub text: String,
}

/// What `advise` reads besides the profile.
#[derive(Debug, Clone, Default)]
pub struct AdviceInputs {
    /// The primary table.
    pub table: String,
    /// Columns of the primary table the query filters on.
    pub filtered_columns: Vec<String>,
    /// The configured memory pool, bytes.
    pub memory_limit: u64,
}

/// A kind of work "dominates" above this share of the operators' time.
const DOMINANT_SHARE: f64 = 0.4;
/// A scan is selective when it reads at most this share of the row groups.
const SELECTIVE_READ: f64 = 0.5;
/// Skew: the busiest partition produced this many times the mean or more (see `skew`).
const SKEW_RATIO: f64 = 3.0;

impl Workspace {
    /// The advice for `outcome`, a run of `sql` on `table` through `runner`.
    pub async fn advice_for(
        &self,
        runner: &Runner<'_>,
        table: &TableName,
        sql: &str,
        outcome: &QueryOutcome,
    ) -> Vec<Advice> {
        let filtered_columns = match summarize_sql(runner.session().context(), sql).await {
            Ok(summary) => summary
                .table(table.as_str())
                .map(|usage| {
                    let mut cols: Vec<String> =
                        usage.filters.iter().map(|p| p.column.clone()).collect();
                    cols.sort();
                    cols.dedup();
                    cols
                })
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let inputs = AdviceInputs {
            table: table.to_string(),
            filtered_columns,
            memory_limit: self.config().memory_limit(),
        };
        advise(&outcome.profile, &outcome.scans, &inputs)
    }
}

/// The findings for one executed query, most important first (empty when nothing stands out).
pub fn advise(
    profile: &QueryProfile,
    scans: &[TableScanMetrics],
    inputs: &AdviceInputs,
) -> Vec<Advice> {
    let mut advice = Vec::new();
    advice.extend(spill(profile, inputs));
    if let Some((kind, share)) = profile.dominant().filter(|(_, s)| *s >= DOMINANT_SHARE) {
        advice.push(dominant(kind, share, scans, inputs));
    }
    advice.extend(skew(profile));
    advice.extend(few_partitions(profile));
    advice
}

fn spill(profile: &QueryProfile, inputs: &AdviceInputs) -> Option<Advice> {
    let spilled: u64 = profile.operators.iter().map(|o| o.spilled_bytes).sum();
    let spills: u64 = profile.operators.iter().map(|o| o.spills).sum();
    (spills > 0).then(|| Advice {
        bottleneck: Bottleneck::Spill,
        text: format!(
            "spill: operators spilled {spills} time(s), {} to disk: raise memory_limit (now {}) so they fit in memory",
            human(spilled),
            human(inputs.memory_limit)
        ),
    })
}

fn dominant(
    kind: OperatorKind,
    share: f64,
    scans: &[TableScanMetrics],
    inputs: &AdviceInputs,
) -> Advice {
    let pct = share * 100.0;
    match kind {
        OperatorKind::Scan => scan_advice(pct, scans, inputs),
        OperatorKind::Join => Advice {
            bottleneck: Bottleneck::Join,
            text: format!(
                "join-bound: joins took {pct:.0}% of the time: filter both sides before the join, sort or cluster the joined tables on the join key, or give more threads"
            ),
        },
        OperatorKind::Aggregate => Advice {
            bottleneck: Bottleneck::Aggregate,
            text: format!(
                "aggregate-bound: grouping took {pct:.0}% of the time: fewer or lower-cardinality group keys, or a layout sorted on the group keys"
            ),
        },
        OperatorKind::Sort => Advice {
            bottleneck: Bottleneck::Sort,
            text: format!(
                "sort-bound: sorting took {pct:.0}% of the time: a layout already sorted on the ORDER BY columns, or a LIMIT, avoids it"
            ),
        },
        OperatorKind::Filter => Advice {
            bottleneck: Bottleneck::Filter,
            text: format!(
                "filter-bound: predicate evaluation took {pct:.0}% of the time: a layout that prunes on {} skips rows before they are decoded",
                columns(inputs)
            ),
        },
        OperatorKind::Exchange | OperatorKind::Other => Advice {
            bottleneck: Bottleneck::FewPartitions,
            text: format!(
                "{}: {pct:.0}% of the time moving or projecting batches: fewer threads may do as well",
                kind.as_str()
            ),
        },
    }
}

fn scan_advice(pct: f64, scans: &[TableScanMetrics], inputs: &AdviceInputs) -> Advice {
    let primary = scans
        .iter()
        .find(|s| s.table == inputs.table)
        .or(scans.first());
    let (read, total) = primary.map_or((0, 0), |s| {
        let m = &s.metrics;
        (
            m.row_groups_total.saturating_sub(m.row_groups_pruned),
            m.row_groups_total,
        )
    });
    let read_share = if total == 0 {
        1.0
    } else {
        read as f64 / total as f64
    };
    if !inputs.filtered_columns.is_empty() && read_share > SELECTIVE_READ {
        Advice {
            bottleneck: Bottleneck::Io,
            text: format!(
                "IO-bound: the scan took {pct:.0}% of the time and read {read} of {total} row groups although the query filters on {}: a layout sorted or partitioned on them would prune (`dbopt propose --table-name {}`)",
                columns(inputs),
                inputs.table
            ),
        }
    } else {
        Advice {
            bottleneck: Bottleneck::Decode,
            text: format!(
                "decode-bound: the scan took {pct:.0}% of the time reading {read} of {total} row groups{}: the work is decompressing and decoding the columns read; select fewer columns, or use a lighter compression level for them",
                if inputs.filtered_columns.is_empty() {
                    " with no filter to prune on"
                } else {
                    " (pruning already skips the rest)"
                }
            ),
        }
    }
}

fn skew(profile: &QueryProfile) -> Option<Advice> {
    profile
        .operators
        .iter()
        .filter(|o| o.partitions >= 2 && o.output_rows >= 10_000)
        .map(|o| {
            let mean = o.output_rows as f64 / o.partitions as f64;
            (o, o.max_partition_rows as f64 / mean)
        })
        // With few partitions the ratio cannot reach SKEW_RATIO: there, three quarters of the
        // rows in one partition count as skew.
        .filter(|(o, ratio)| *ratio >= SKEW_RATIO.min(0.75 * o.partitions as f64))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(o, ratio)| Advice {
            bottleneck: Bottleneck::Skew,
            text: format!(
                "skew: one partition of {} produced {ratio:.1}x the mean rows of its {} partitions: its thread did most of the work (a key with many rows, or files of very different sizes)",
                o.name, o.partitions
            ),
        })
}

fn few_partitions(profile: &QueryProfile) -> Option<Advice> {
    let scan = profile
        .operators
        .iter()
        .filter(|o| o.kind == OperatorKind::Scan)
        .max_by_key(|o| o.time)?;
    let threads = profile.target_partitions;
    let busy = profile
        .dominant()
        .is_some_and(|(k, s)| k == OperatorKind::Scan && s >= DOMINANT_SHARE);
    (busy && scan.partitions >= 1 && scan.partitions < threads).then(|| Advice {
        bottleneck: Bottleneck::FewPartitions,
        text: format!(
            "too few partitions: the scan ran on {} partition(s) for {threads} threads: more row groups or files would let every thread decode",
            scan.partitions
        ),
    })
}

fn columns(inputs: &AdviceInputs) -> String {
    if inputs.filtered_columns.is_empty() {
        "its filter columns".to_string()
    } else {
        inputs.filtered_columns.join(", ")
    }
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbopt_core::{LayoutId, ScanMetrics};
    use dbopt_engine::OperatorProfile;
    use std::time::Duration;

    fn op(name: &str, kind: OperatorKind, ms: u64) -> OperatorProfile {
        OperatorProfile {
            depth: 0,
            name: name.into(),
            kind,
            time: Duration::from_millis(ms),
            output_rows: 0,
            partitions: 2,
            max_partition_rows: 0,
            spills: 0,
            spilled_bytes: 0,
            bytes_scanned: 0,
        }
    }

    fn scan(read: u64, total: u64) -> Vec<TableScanMetrics> {
        vec![TableScanMetrics {
            table: "events".into(),
            layout_id: LayoutId::initial(),
            metrics: ScanMetrics {
                row_groups_total: total,
                row_groups_pruned: total - read,
                ..Default::default()
            },
        }]
    }

    fn inputs(filters: &[&str]) -> AdviceInputs {
        AdviceInputs {
            table: "events".into(),
            filtered_columns: filters.iter().map(ToString::to_string).collect(),
            memory_limit: 1 << 30,
        }
    }

    fn profile(ops: Vec<OperatorProfile>) -> QueryProfile {
        QueryProfile {
            operators: ops,
            target_partitions: 2,
        }
    }

    #[test]
    fn a_scan_reading_most_row_groups_under_a_filter_is_io_bound() {
        let p = profile(vec![
            op("DataSourceExec", OperatorKind::Scan, 90),
            op("x", OperatorKind::Other, 10),
        ]);
        let advice = advise(&p, &scan(9, 10), &inputs(&["event_date"]));
        assert_eq!(advice[0].bottleneck, Bottleneck::Io);
        assert!(advice[0].text.contains("event_date") && advice[0].text.contains("9 of 10"));
    }

    #[test]
    fn a_pruned_scan_or_one_without_filters_is_decode_bound() {
        let p = profile(vec![op("DataSourceExec", OperatorKind::Scan, 90)]);
        assert_eq!(
            advise(&p, &scan(1, 10), &inputs(&["event_date"]))[0].bottleneck,
            Bottleneck::Decode
        );
        assert_eq!(
            advise(&p, &scan(10, 10), &inputs(&[]))[0].bottleneck,
            Bottleneck::Decode
        );
    }

    #[test]
    fn joins_spills_and_skew_are_named() {
        let mut join = op("HashJoinExec", OperatorKind::Join, 80);
        join.output_rows = 40_000;
        join.max_partition_rows = 39_000;
        join.spills = 2;
        join.spilled_bytes = 5 << 20;
        let p = profile(vec![join, op("DataSourceExec", OperatorKind::Scan, 20)]);
        let kinds: Vec<_> = advise(&p, &scan(10, 10), &inputs(&[]))
            .into_iter()
            .map(|a| a.bottleneck)
            .collect();
        assert_eq!(
            kinds,
            vec![Bottleneck::Spill, Bottleneck::Join, Bottleneck::Skew]
        );
    }

    #[test]
    fn nothing_dominant_gives_no_advice() {
        let p = profile(vec![
            op("a", OperatorKind::Scan, 30),
            op("b", OperatorKind::Join, 30),
            op("c", OperatorKind::Aggregate, 30),
            op("d", OperatorKind::Sort, 10),
        ]);
        assert!(advise(&p, &scan(1, 10), &inputs(&[])).is_empty());
    }
}
