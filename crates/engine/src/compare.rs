//! Compares two query results as multisets of rows, floating-point columns within a relative
//! tolerance (a sum over differently ordered rows can differ in its last bits), everything
//! else exactly. Used by the canary when the order-insensitive digests differ.

use crate::EngineError;
use arrow::array::{Array, Float64Array, RecordBatch};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, SortField};
use std::cmp::Ordering;

/// One row: the exact columns in arrow's row format, then the float columns.
type KeyedRow = (Vec<u8>, Vec<Option<f64>>);

/// None when `a` and `b` hold the same rows (floats within `rel_tol`), else why not.
pub fn results_differ(
    a: &[RecordBatch],
    b: &[RecordBatch],
    rel_tol: f64,
) -> Result<Option<String>, EngineError> {
    let (Some(first_a), Some(first_b)) = (a.first(), b.first()) else {
        let rows = |x: &[RecordBatch]| x.iter().map(RecordBatch::num_rows).sum::<usize>();
        let (ra, rb) = (rows(a), rows(b));
        return Ok((ra != rb).then(|| format!("{ra} rows against {rb}")));
    };
    let types = |batch: &RecordBatch| -> Vec<DataType> {
        batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect()
    };
    if types(first_a) != types(first_b) {
        return Ok(Some("the results have different column types".into()));
    }
    let rows_a = keyed_rows(a)?;
    let rows_b = keyed_rows(b)?;
    if rows_a.len() != rows_b.len() {
        return Ok(Some(format!(
            "{} rows against {}",
            rows_a.len(),
            rows_b.len()
        )));
    }
    for (i, (ra, rb)) in rows_a.iter().zip(&rows_b).enumerate() {
        if ra.0 != rb.0 {
            return Ok(Some(format!("row {i} of the sorted results differs")));
        }
        for (x, y) in ra.1.iter().zip(&rb.1) {
            if !floats_match(*x, *y, rel_tol) {
                return Ok(Some(format!(
                    "row {i}: {x:?} against {y:?} is beyond the relative tolerance {rel_tol:e}"
                )));
            }
        }
    }
    Ok(None)
}

fn floats_match(x: Option<f64>, y: Option<f64>, rel_tol: f64) -> bool {
    match (x, y) {
        (None, None) => true,
        (Some(x), Some(y)) if x.is_nan() || y.is_nan() => x.is_nan() && y.is_nan(),
        (Some(x), Some(y)) => x == y || (x - y).abs() <= rel_tol * x.abs().max(y.abs()),
        _ => false,
    }
}

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

/// The rows of `batches`, sorted by their exact columns and then their floats.
fn keyed_rows(batches: &[RecordBatch]) -> Result<Vec<KeyedRow>, EngineError> {
    let schema = batches[0].schema();
    let err = |e: arrow::error::ArrowError| {
        EngineError::Execution(format!("cannot compare results: {e}"))
    };
    let all = concat_batches(&schema, batches).map_err(err)?;
    let (float_cols, exact_cols): (Vec<usize>, Vec<usize>) =
        (0..all.num_columns()).partition(|&i| is_float(all.column(i).data_type()));
    let exact_rows = if exact_cols.is_empty() {
        None
    } else {
        let fields = exact_cols
            .iter()
            .map(|&i| SortField::new(all.column(i).data_type().clone()))
            .collect();
        let converter = RowConverter::new(fields).map_err(err)?;
        let columns: Vec<_> = exact_cols.iter().map(|&i| all.column(i).clone()).collect();
        Some(converter.convert_columns(&columns).map_err(err)?)
    };
    let floats: Vec<Float64Array> = float_cols
        .iter()
        .map(|&i| {
            let c = cast(all.column(i), &DataType::Float64).map_err(err)?;
            Ok(c.as_any()
                .downcast_ref::<Float64Array>()
                .expect("cast to Float64 gives a Float64Array")
                .clone())
        })
        .collect::<Result<_, EngineError>>()?;
    let mut rows: Vec<KeyedRow> = (0..all.num_rows())
        .map(|r| {
            let key = exact_rows
                .as_ref()
                .map(|rows| rows.row(r).as_ref().to_vec())
                .unwrap_or_default();
            let fs = floats
                .iter()
                .map(|f| (!f.is_null(r)).then(|| f.value(r)))
                .collect();
            (key, fs)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| cmp_floats(&a.1, &b.1)));
    Ok(rows)
}

fn cmp_floats(a: &[Option<f64>], b: &[Option<f64>]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => x.total_cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch(keys: &[&str], counts: &[i64], sums: &[f64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Float64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(keys.to_vec())),
                Arc::new(Int64Array::from(counts.to_vec())),
                Arc::new(Float64Array::from(sums.to_vec())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn rows_in_another_order_with_float_noise_match() {
        let a = batch(&["x", "y"], &[1, 2], &[0.1 + 0.2, 10.0]);
        let b = batch(&["y", "x"], &[2, 1], &[10.0, 0.3]);
        assert_eq!(results_differ(&[a], &[b], 1e-9).unwrap(), None);
    }

    #[test]
    fn a_changed_value_a_missing_row_or_a_large_float_gap_differ() {
        let a = batch(&["x", "y"], &[1, 2], &[1.0, 2.0]);
        let changed = batch(&["x", "y"], &[1, 3], &[1.0, 2.0]);
        assert!(
            results_differ(std::slice::from_ref(&a), &[changed], 1e-9)
                .unwrap()
                .is_some()
        );
        let missing = batch(&["x"], &[1], &[1.0]);
        let why = results_differ(std::slice::from_ref(&a), &[missing], 1e-9)
            .unwrap()
            .unwrap();
        assert!(why.contains("2 rows against 1"), "{why}");
        let far = batch(&["x", "y"], &[1, 2], &[1.0, 2.001]);
        assert!(results_differ(&[a], &[far], 1e-9).unwrap().is_some());
        assert_eq!(results_differ(&[], &[], 1e-9).unwrap(), None);
    }
}
