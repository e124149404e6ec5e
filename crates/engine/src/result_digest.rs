//! Order-insensitive digests of Arrow data: each row is encoded with arrow's row format
//! (type-aware, null-aware) and hashed to 128 bits with xxh3; the hashes are summed.

use crate::EngineError;
use arrow::array::RecordBatch;
use arrow::row::{RowConverter, SortField};
use dbopt_core::RowDigest;
use xxhash_rust::xxh3::xxh3_128;

/// Accumulates a `RowDigest` over batches that share one schema.
pub struct BatchDigester {
    converter: Option<RowConverter>,
    digest: RowDigest,
}

impl Default for BatchDigester {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchDigester {
    /// An empty digester; the schema is taken from the first batch.
    pub fn new() -> Self {
        Self {
            converter: None,
            digest: RowDigest::default(),
        }
    }

    /// Folds every row of `batch` in.
    pub fn update(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if batch.num_columns() == 0 {
            for _ in 0..batch.num_rows() {
                self.digest.add_row_hash(0);
            }
            return Ok(());
        }
        if self.converter.is_none() {
            let fields = batch
                .schema()
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect();
            self.converter = Some(RowConverter::new(fields).map_err(|e| {
                EngineError::Execution(format!("cannot digest this result type: {e}"))
            })?);
        }
        let converter = self.converter.as_ref().expect("set above");
        let rows = converter
            .convert_columns(batch.columns())
            .map_err(|e| EngineError::Execution(format!("cannot digest result: {e}")))?;
        for row in &rows {
            self.digest.add_row_hash(xxh3_128(row.as_ref()));
        }
        Ok(())
    }

    /// The digest so far.
    pub fn finish(&self) -> RowDigest {
        self.digest
    }
}

/// The digest of a whole result.
pub fn digest_batches(batches: &[RecordBatch]) -> Result<RowDigest, EngineError> {
    let mut d = BatchDigester::new();
    for b in batches {
        d.update(b)?;
    }
    Ok(d.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(ids: Vec<i64>, names: Vec<Option<&str>>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn order_and_batching_do_not_matter() {
        let one =
            digest_batches(&[batch(vec![1, 2, 3], vec![Some("a"), None, Some("c")])]).unwrap();
        let split = digest_batches(&[
            batch(vec![3], vec![Some("c")]),
            batch(vec![2, 1], vec![None, Some("a")]),
        ])
        .unwrap();
        assert_eq!(one, split);
        assert_eq!(one.rows, 3);
    }

    #[test]
    fn duplicates_and_values_matter() {
        let base = digest_batches(&[batch(vec![1, 2], vec![Some("a"), Some("b")])]).unwrap();
        let dup =
            digest_batches(&[batch(vec![1, 2, 2], vec![Some("a"), Some("b"), Some("b")])]).unwrap();
        let swapped = digest_batches(&[batch(vec![1, 2], vec![Some("b"), Some("a")])]).unwrap();
        let null = digest_batches(&[batch(vec![1, 2], vec![Some("a"), None])]).unwrap();
        assert_ne!(base, dup);
        assert_ne!(
            base, swapped,
            "values move with their row, not their column"
        );
        assert_ne!(base, null);
    }
}
