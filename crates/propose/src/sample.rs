//! A row sample in comparable form: each needed column converted from Arrow to `Key`s, plus
//! the sample-based column statistics (distinct estimate, min/max, clustering).

use crate::ProposeError;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch,
};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type, TimeUnit};
use dbopt_core::plan_summary::{Lit, TableStats};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

/// A comparable cell value: numbers (ints, floats, dates as days, timestamps as micros) or text.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// A number.
    Num(f64),
    /// Text.
    Str(String),
}

impl Key {
    /// Orders two keys; None across kinds.
    pub fn compare(&self, other: &Key) -> Option<Ordering> {
        match (self, other) {
            (Key::Num(a), Key::Num(b)) => a.partial_cmp(b),
            (Key::Str(a), Key::Str(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// The key of a predicate literal.
    pub fn of_lit(lit: &Lit) -> Key {
        match lit {
            Lit::Str(s) => Key::Str(s.clone()),
            other => Key::Num(other.as_f64().unwrap_or(f64::NAN)),
        }
    }

    fn total_cmp(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::Num(a), Key::Num(b)) => a.total_cmp(b),
            (Key::Str(a), Key::Str(b)) => a.cmp(b),
            (Key::Num(_), Key::Str(_)) => Ordering::Less,
            (Key::Str(_), Key::Num(_)) => Ordering::Greater,
        }
    }
}

/// Orders optional keys with nulls first (a total order, for sorting the sample).
pub fn cmp_opt(a: &Option<Key>, b: &Option<Key>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.total_cmp(y),
    }
}

/// A sample of a table in its current physical order.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The sample rows as one Arrow batch (for curve keys).
    pub batch: RecordBatch,
    /// Rows in the full table.
    pub table_rows: u64,
    columns: HashMap<String, Vec<Option<Key>>>,
}

/// The comparable keys of an Arrow array; `None` for a type keys cannot hold.
pub(crate) fn keys_of(array: &ArrayRef) -> Option<Vec<Option<Key>>> {
    let num = |a: &dyn Array, f: &dyn Fn(usize) -> f64| -> Vec<Option<Key>> {
        (0..a.len())
            .map(|i| (!a.is_null(i)).then(|| Key::Num(f(i))))
            .collect()
    };
    Some(match array.data_type() {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => {
            let c = cast(array, &DataType::Int64).ok()?;
            let a: &Int64Array = c.as_primitive::<Int64Type>();
            num(a, &|i| a.value(i) as f64)
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::Decimal128(..) => {
            let c = cast(array, &DataType::Float64).ok()?;
            let a: &Float64Array = c.as_primitive::<Float64Type>();
            num(a, &|i| a.value(i))
        }
        DataType::Date32 | DataType::Date64 => {
            let c = cast(array, &DataType::Date32).ok()?;
            let a: &Date32Array = c.as_primitive::<Date32Type>();
            num(a, &|i| f64::from(a.value(i)))
        }
        DataType::Timestamp(_, tz) => {
            let micros = cast(
                array,
                &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
            )
            .ok()?;
            let c = cast(&micros, &DataType::Int64).ok()?;
            let a: &Int64Array = c.as_primitive::<Int64Type>();
            num(a, &|i| a.value(i) as f64)
        }
        DataType::Boolean => {
            let a: &BooleanArray = array.as_boolean();
            num(a, &|i| f64::from(u8::from(a.value(i))))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
            let c = cast(array, &DataType::Utf8).ok()?;
            let a = c.as_string::<i32>();
            (0..a.len())
                .map(|i| (!a.is_null(i)).then(|| Key::Str(a.value(i).to_string())))
                .collect()
        }
        _ => return None,
    })
}

impl Sample {
    /// A sample from `batches` (in the layout's physical order) of a table with `table_rows`.
    pub fn new(batches: &[RecordBatch], table_rows: u64) -> Result<Sample, ProposeError> {
        let Some(first) = batches.first() else {
            return Err(ProposeError::EmptySample);
        };
        let batch = concat_batches(&first.schema(), batches)
            .map_err(|e| ProposeError::Sample(e.to_string()))?;
        if batch.num_rows() == 0 {
            return Err(ProposeError::EmptySample);
        }
        let mut columns = HashMap::new();
        for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
            if let Some(keys) = keys_of(array) {
                columns.insert(field.name().clone(), keys);
            }
        }
        Ok(Sample {
            batch,
            table_rows: table_rows.max(1),
            columns,
        })
    }

    /// Rows in the sample.
    pub fn rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// Sampled share of the table (sample rows / table rows, at most 1).
    pub fn fraction(&self) -> f64 {
        (self.rows() as f64 / self.table_rows as f64).min(1.0)
    }

    /// The keys of `column`, if the sample has it in a comparable type.
    pub fn keys(&self, column: &str) -> Option<&[Option<Key>]> {
        self.columns.get(column).map(Vec::as_slice)
    }

    /// The Arrow column `column`.
    pub fn array(&self, column: &str) -> Option<&ArrayRef> {
        self.batch.column_by_name(column)
    }

    /// The table's distinct non-null values of `column`, estimated from the sample with GEE:
    /// values seen once scale by sqrt(table rows / sample rows), values seen more often count
    /// once. None for a column the sample does not hold.
    pub fn distinct_estimate(&self, column: &str) -> Option<u64> {
        let keys = self.keys(column)?;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for k in keys.iter().flatten() {
            let text = match k {
                Key::Num(v) => v.to_bits().to_string(),
                Key::Str(s) => s.clone(),
            };
            *counts.entry(text).or_default() += 1;
        }
        let singletons = counts.values().filter(|v| **v == 1).count() as f64;
        let repeated = counts.len() as f64 - singletons;
        let scale = (1.0 / self.fraction()).sqrt();
        Some((scale * singletons + repeated).round() as u64)
    }

    /// Fills the sample-based fields of `stats`: data type, distinct estimate (GEE), min/max
    /// and clustering (how narrow each row group's range is, at the layout's row-group size).
    pub fn complete_stats(&self, stats: &mut TableStats) {
        let rg = ((stats.row_group_rows.max(1) as f64) * self.fraction())
            .round()
            .max(1.0) as usize;
        let schema = self.batch.schema();
        for c in &mut stats.columns {
            if let Ok(f) = schema.field_with_name(&c.column) {
                c.data_type = f.data_type().to_string();
            }
            let is_date = c.data_type.starts_with("Date");
            let is_ts = c.data_type.starts_with("Timestamp");
            let is_int = c.data_type.contains("Int");
            let Some(keys) = self.keys(&c.column) else {
                continue;
            };
            let mut min: Option<&Key> = None;
            let mut max: Option<&Key> = None;
            for k in keys.iter().flatten() {
                if min.is_none_or(|m| k.total_cmp(m) == Ordering::Less) {
                    min = Some(k);
                }
                if max.is_none_or(|m| k.total_cmp(m) == Ordering::Greater) {
                    max = Some(k);
                }
            }
            c.distinct_estimate = self.distinct_estimate(&c.column).unwrap_or(0);
            let to_lit = |k: &Key| match k {
                Key::Str(s) => Lit::Str(s.clone()),
                Key::Num(v) if is_date => Lit::Date(*v as i32),
                Key::Num(v) if is_ts => Lit::Timestamp(*v as i64),
                Key::Num(v) if is_int => Lit::Int(*v as i64),
                Key::Num(v) => Lit::Float(*v),
            };
            c.min = min.map(to_lit);
            c.max = max.map(to_lit);
            c.clustering = clustering(keys, rg);
        }
    }
}

/// 1 - mean over row groups of (distinct values in the group / distinct values overall),
/// using rank positions so it works for text and numbers alike.
fn clustering(keys: &[Option<Key>], rg: usize) -> f64 {
    let mut sorted: Vec<&Key> = keys.iter().flatten().collect();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted.dedup_by(|a, b| a.total_cmp(b) == Ordering::Equal);
    let distinct = sorted.len();
    if distinct <= 1 {
        return 1.0;
    }
    let rank = |k: &Key| {
        sorted
            .binary_search_by(|p| p.total_cmp(k))
            .unwrap_or_else(|i| i)
    };
    let mut spans = 0.0;
    let mut groups = 0.0;
    for chunk in keys.chunks(rg) {
        let ranks: Vec<usize> = chunk.iter().flatten().map(rank).collect();
        let (Some(lo), Some(hi)) = (ranks.iter().min(), ranks.iter().max()) else {
            continue;
        };
        spans += (hi - lo) as f64 / (distinct - 1) as f64;
        groups += 1.0;
    }
    if groups == 0.0 {
        1.0
    } else {
        (1.0 - spans / groups).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use dbopt_core::plan_summary::ColumnStats;
    use std::sync::Arc;

    #[test]
    fn stats_from_sample() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("sorted", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let n = 1000;
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from((0..n).collect::<Vec<i64>>())),
                Arc::new(StringArray::from(
                    (0..n)
                        .map(|i| (i % 7 != 0).then(|| ["a", "b", "c"][(i % 3) as usize]))
                        .collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap();
        let sample = Sample::new(&[batch], 1000).unwrap();
        let col = |name: &str| ColumnStats {
            column: name.into(),
            data_type: String::new(),
            compressed_bytes: 0,
            dictionary_bytes: 0,
            null_count: 0,
            distinct_estimate: 0,
            min: None,
            max: None,
            clustering: 0.0,
        };
        let mut stats = TableStats {
            rows: 1000,
            files: 1,
            row_groups: 10,
            total_bytes: 0,
            metadata_bytes: 0,
            row_group_rows: 100,
            page_rows: 10,
            columns: vec![col("sorted"), col("s")],
        };
        sample.complete_stats(&mut stats);
        let sorted = stats.column("sorted").unwrap();
        assert_eq!(sorted.distinct_estimate, 1000);
        assert_eq!(sorted.min, Some(Lit::Int(0)));
        assert!(sorted.clustering > 0.85, "{}", sorted.clustering);
        let s = stats.column("s").unwrap();
        assert_eq!(s.distinct_estimate, 3);
        assert!(s.clustering < 0.1, "{}", s.clustering);
        assert_eq!(s.max, Some(Lit::Str("c".into())));
    }
}
