//! Plan summaries: what an optimized query plan asks of each table it scans (typed filter
//! predicates with their literals, join keys, group-by, order-by, projected columns), and the
//! per-column statistics of a table. Pure values shared by engine (which fills them from
//! DataFusion plans and Parquet footers), analyze and propose.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// A literal value of a predicate, normalized so values of one column compare with each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Lit {
    /// Any integer type.
    Int(i64),
    /// Any floating point or decimal type.
    Float(f64),
    /// Text.
    Str(String),
    /// A date as days since 1970-01-01.
    Date(i32),
    /// A timestamp as microseconds since the Unix epoch (UTC).
    Timestamp(i64),
    /// A boolean.
    Bool(bool),
}

impl Lit {
    /// Compares two literals; numbers compare across Int/Float/Date/Timestamp by value,
    /// text with text. None when the kinds cannot be compared.
    pub fn compare(&self, other: &Lit) -> Option<Ordering> {
        match (self, other) {
            (Lit::Str(a), Lit::Str(b)) => Some(a.cmp(b)),
            (Lit::Bool(a), Lit::Bool(b)) => Some(a.cmp(b)),
            (Lit::Int(a), Lit::Int(b)) => Some(a.cmp(b)),
            (Lit::Date(a), Lit::Date(b)) => Some(a.cmp(b)),
            (Lit::Timestamp(a), Lit::Timestamp(b)) => Some(a.cmp(b)),
            (a, b) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        }
    }

    /// The value as a number, for numeric, date and timestamp kinds.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Lit::Int(v) | Lit::Timestamp(v) => Some(*v as f64),
            Lit::Float(v) => Some(*v),
            Lit::Date(v) => Some(f64::from(*v)),
            Lit::Bool(b) => Some(f64::from(u8::from(*b))),
            Lit::Str(_) => None,
        }
    }
}

impl std::fmt::Display for Lit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lit::Int(v) => write!(f, "{v}"),
            Lit::Float(v) => write!(f, "{v}"),
            Lit::Str(v) => write!(f, "'{v}'"),
            Lit::Date(d) => match chrono::DateTime::from_timestamp(i64::from(*d) * 86_400, 0) {
                Some(t) => write!(f, "{}", t.format("%Y-%m-%d")),
                None => write!(f, "date({d})"),
            },
            Lit::Timestamp(us) => match chrono::DateTime::from_timestamp_micros(*us) {
                Some(t) => write!(f, "{}", t.format("%Y-%m-%d %H:%M:%S")),
                None => write!(f, "ts({us})"),
            },
            Lit::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// One end of a range predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bound {
    /// The literal.
    pub value: Lit,
    /// Whether the bound itself is included.
    pub inclusive: bool,
}

/// The kind of a filter predicate on one column, with its literal values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PredicateKind {
    /// `col = v`.
    Eq {
        /// The value.
        value: Lit,
    },
    /// `col IN (v1, v2, ...)`.
    In {
        /// The values.
        values: Vec<Lit>,
    },
    /// `col > / >= / < / <= / BETWEEN`, conjuncts on one column merged.
    Range {
        /// The lower bound, if any.
        low: Option<Bound>,
        /// The upper bound, if any.
        high: Option<Bound>,
    },
    /// `col LIKE 'prefix%'`.
    PrefixLike {
        /// The fixed prefix.
        prefix: String,
    },
    /// `col IS NULL`.
    IsNull,
    /// `col IS NOT NULL`.
    IsNotNull,
    /// Anything else that references the column (cannot be used for pruning).
    Other,
}

impl PredicateKind {
    /// A short stable name of the kind: eq, in, range, prefix, is_null, is_not_null, other.
    pub fn tag(&self) -> &'static str {
        match self {
            PredicateKind::Eq { .. } => "eq",
            PredicateKind::In { .. } => "in",
            PredicateKind::Range { .. } => "range",
            PredicateKind::PrefixLike { .. } => "prefix",
            PredicateKind::IsNull => "is_null",
            PredicateKind::IsNotNull => "is_not_null",
            PredicateKind::Other => "other",
        }
    }

    /// Whether min/max zone maps can prune on this predicate.
    pub fn prunable(&self) -> bool {
        !matches!(self, PredicateKind::Other)
    }
}

/// One conjunct of a scan's filter, on one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predicate {
    /// The column (unqualified).
    pub column: String,
    /// What the predicate asks.
    #[serde(flatten)]
    pub kind: PredicateKind,
}

/// What a query asks of one scanned table.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TableUsage {
    /// The table name (internal layout names already mapped back to it).
    pub table: String,
    /// Filter conjuncts on this table's columns (all conjuncts must hold).
    pub filters: Vec<Predicate>,
    /// Columns of this table used as join keys.
    pub join_keys: Vec<String>,
    /// Columns of this table grouped by.
    pub group_by: Vec<String>,
    /// Columns of this table ordered by.
    pub order_by: Vec<String>,
    /// Columns the scan reads (projection, including filter columns).
    pub projected: Vec<String>,
    /// Each scan of the table, when the query scans it more than once (a self-join, a
    /// subquery over the same table); empty when it scans it once. The fields above merge
    /// them (what the query asks of the table); the what-if model prices every scan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scans: Vec<ScanUsage>,
}

/// One scan of a table that a query scans more than once: the filters pushed into that scan
/// and the columns it reads.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScanUsage {
    /// Filter conjuncts pushed into this scan (all must hold).
    pub filters: Vec<Predicate>,
    /// Columns this scan reads.
    pub projected: Vec<String>,
}

impl TableUsage {
    /// The usage of each scan of the table, as a query of its own: one entry (this usage)
    /// when the table is scanned once; else one per scan, with that scan's filters and
    /// columns and the query's join, group and order keys.
    pub fn per_scan(&self) -> Vec<TableUsage> {
        if self.scans.len() <= 1 {
            return vec![self.clone()];
        }
        self.scans
            .iter()
            .map(|scan| TableUsage {
                table: self.table.clone(),
                filters: scan.filters.clone(),
                join_keys: self.join_keys.clone(),
                group_by: self.group_by.clone(),
                order_by: self.order_by.clone(),
                projected: scan.projected.clone(),
                scans: Vec::new(),
            })
            .collect()
    }

    /// Every column the scan has to read: the projection plus filter columns.
    pub fn columns_read(&self) -> Vec<String> {
        let mut cols = self.projected.clone();
        for p in &self.filters {
            if !cols.contains(&p.column) {
                cols.push(p.column.clone());
            }
        }
        cols
    }
}

/// The summary of one optimized logical plan: one entry per scanned table.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PlanSummary {
    /// Scanned tables in first-seen order (a table scanned twice is merged; its
    /// `TableUsage::scans` keeps the scans apart).
    pub tables: Vec<TableUsage>,
}

impl PlanSummary {
    /// The usage of `table`, if the plan scans it.
    pub fn table(&self, table: &str) -> Option<&TableUsage> {
        self.tables.iter().find(|t| t.table == table)
    }
}

/// Statistics of one column of a table's layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    /// The column.
    pub column: String,
    /// The Arrow data type, as text.
    pub data_type: String,
    /// Compressed bytes of the column over all files (Parquet footers).
    pub compressed_bytes: u64,
    /// Of which dictionary pages (read whole whenever any page of a row group is read).
    #[serde(default)]
    pub dictionary_bytes: u64,
    /// Nulls over all files (Parquet footers).
    pub null_count: u64,
    /// Estimated distinct values (from the sample).
    pub distinct_estimate: u64,
    /// Smallest value (from the sample), if any.
    pub min: Option<Lit>,
    /// Largest value (from the sample), if any.
    pub max: Option<Lit>,
    /// How clustered the column is in the current layout: 1 = each row group holds a narrow
    /// slice of the value range, 0 = every row group spans the whole range.
    pub clustering: f64,
}

/// Statistics of a table's layout: footer totals and per-column figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableStats {
    /// Rows in the layout.
    pub rows: u64,
    /// Files in the layout.
    pub files: u64,
    /// Row groups in the layout.
    pub row_groups: u64,
    /// Total file bytes.
    pub total_bytes: u64,
    /// Bytes outside column data (footers, page indexes, bloom filters), over all files.
    pub metadata_bytes: u64,
    /// Rows per row group (the largest in the layout).
    pub row_group_rows: u64,
    /// Rows per data page the layout was written with.
    pub page_rows: u64,
    /// One entry per column, in schema order.
    pub columns: Vec<ColumnStats>,
}

impl TableStats {
    /// The statistics of `column`.
    pub fn column(&self, column: &str) -> Option<&ColumnStats> {
        self.columns.iter().find(|c| c.column == column)
    }

    /// Null fraction of `column` (0 when unknown).
    pub fn null_fraction(&self, column: &str) -> f64 {
        match self.column(column) {
            Some(c) if self.rows > 0 => c.null_count as f64 / self.rows as f64,
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_compare_across_numeric_kinds() {
        assert_eq!(
            Lit::Int(3).compare(&Lit::Float(2.5)),
            Some(Ordering::Greater)
        );
        assert_eq!(Lit::Date(5).compare(&Lit::Date(5)), Some(Ordering::Equal));
        assert_eq!(Lit::Str("a".into()).compare(&Lit::Int(1)), None);
        assert_eq!(Lit::Date(0).to_string(), "1970-01-01");
    }

    #[test]
    fn predicates_round_trip_as_json() {
        let p = Predicate {
            column: "d".into(),
            kind: PredicateKind::Range {
                low: Some(Bound {
                    value: Lit::Date(10),
                    inclusive: true,
                }),
                high: None,
            },
        };
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.contains("\"kind\":\"range\""), "{text}");
        assert_eq!(serde_json::from_str::<Predicate>(&text).unwrap(), p);
    }
}
