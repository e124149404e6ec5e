//! A Parquet file writer that encodes the columns of a row group on several threads.
//!
//! Arrow's `ArrowWriter` encodes every column of a row group on the calling thread; encoding
//! (dictionary interning, statistics, ZSTD) is most of the cost of writing a layout. This
//! writer buffers up to `ENCODE_CHUNK_ROWS` rows, then hands each column to the next free
//! thread of a scoped pool, so one ordered file is written with all cores busy. The file is the
//! same as `ArrowWriter` writes with the same properties (Arrow schema in the footer, page
//! index, bloom filters, row groups of `max_row_group_row_count` rows).

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory,
    compute_leaves,
};
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use std::fs::File;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Rows buffered before the columns are encoded (one round of the thread pool).
pub const ENCODE_CHUNK_ROWS: usize = 65_536;

/// Writes one Parquet file, encoding columns in parallel on `threads` threads.
pub struct ColumnParallelWriter {
    file: SerializedFileWriter<File>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    columns: Vec<ArrowColumnWriter>,
    row_group_index: usize,
    rows_in_group: usize,
    max_group_rows: usize,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    threads: usize,
}

impl ColumnParallelWriter {
    /// A writer of `schema` batches into `file` with `props`, on `threads` encoding threads.
    pub fn try_new(
        file: File,
        schema: SchemaRef,
        props: WriterProperties,
        threads: usize,
    ) -> Result<Self> {
        let max_group_rows = props
            .max_row_group_row_count()
            .unwrap_or(1024 * 1024)
            .max(1);
        // ArrowWriter sets up the footer's Arrow schema and the Parquet schema; take its parts.
        let (file, factory) =
            ArrowWriter::try_new(file, schema.clone(), Some(props))?.into_serialized_writer()?;
        let columns = factory.create_column_writers(0)?;
        Ok(Self {
            file,
            factory,
            schema,
            columns,
            row_group_index: 0,
            rows_in_group: 0,
            max_group_rows,
            pending: Vec::new(),
            pending_rows: 0,
            threads: threads.max(1),
        })
    }

    /// Buffers `batch`, encoding and closing row groups as they fill.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let room = self.max_group_rows - self.rows_in_group - self.pending_rows;
            let take = room.min(batch.num_rows() - offset);
            self.pending.push(batch.slice(offset, take));
            self.pending_rows += take;
            offset += take;
            let group_full = self.rows_in_group + self.pending_rows == self.max_group_rows;
            if self.pending_rows >= ENCODE_CHUNK_ROWS || group_full {
                self.encode_pending()?;
            }
            if group_full {
                self.flush_row_group()?;
            }
        }
        Ok(())
    }

    /// Encodes the buffered rows into the open row group's column writers.
    fn encode_pending(&mut self) -> Result<()> {
        if self.pending_rows == 0 {
            return Ok(());
        }
        let mut leaves: Vec<Vec<ArrowLeafColumn>> = Vec::with_capacity(self.columns.len());
        leaves.resize_with(self.columns.len(), Vec::new);
        for batch in &self.pending {
            let mut leaf_index = 0;
            for (field, array) in self.schema.fields().iter().zip(batch.columns()) {
                for leaf in compute_leaves(field, array)? {
                    leaves
                        .get_mut(leaf_index)
                        .ok_or_else(|| {
                            ParquetError::General("more leaf columns than column writers".into())
                        })?
                        .push(leaf);
                    leaf_index += 1;
                }
            }
        }
        let work: Vec<(&mut ArrowColumnWriter, Vec<ArrowLeafColumn>)> =
            self.columns.iter_mut().zip(leaves).collect();
        for result in parallel_map(work, self.threads, |(writer, column)| {
            column.iter().try_for_each(|leaf| writer.write(leaf))
        }) {
            result?;
        }
        self.rows_in_group += self.pending_rows;
        self.pending.clear();
        self.pending_rows = 0;
        Ok(())
    }

    /// Closes the open row group (its column chunks are finished in parallel) and starts the next.
    fn flush_row_group(&mut self) -> Result<()> {
        if self.rows_in_group == 0 {
            return Ok(());
        }
        let next = self
            .factory
            .create_column_writers(self.row_group_index + 1)?;
        let writers = std::mem::replace(&mut self.columns, next);
        let chunks: Vec<Result<ArrowColumnChunk>> =
            parallel_map(writers, self.threads, ArrowColumnWriter::close);
        let mut row_group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk?.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.row_group_index += 1;
        self.rows_in_group = 0;
        Ok(())
    }

    /// Writes what is buffered and the footer; returns the file's metadata.
    pub fn finish(&mut self) -> Result<ParquetMetaData> {
        self.encode_pending()?;
        self.flush_row_group()?;
        self.file.finish()
    }

    /// The underlying file (for fsync and size once finished).
    pub fn inner(&self) -> &File {
        self.file.inner()
    }
}

/// Applies `f` to every item on up to `threads` scoped threads, each taking the next unclaimed
/// item, and returns the results in the items' order.
pub fn parallel_map<T, R, F>(items: Vec<T>, threads: usize, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    let threads = threads.min(items.len());
    if threads <= 1 {
        return items.into_iter().map(f).collect();
    }
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let results: Vec<Mutex<Option<R>>> = slots.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(slot) = slots.get(i) else { break };
                    let item = slot
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .take()
                        .expect("each item is claimed once");
                    let out = f(item);
                    *results[i]
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(out);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .expect("every item was mapped")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::sync::Arc;

    #[test]
    fn parallel_map_keeps_order() {
        let out = parallel_map((0..100).collect(), 4, |x: i32| x * 2);
        assert_eq!(out, (0..100).map(|x| x * 2).collect::<Vec<_>>());
        assert!(parallel_map(Vec::<i32>::new(), 4, |x| x).is_empty());
    }

    fn batch(start: i64, rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(start..start + rows));
        let names: ArrayRef = Arc::new(StringArray::from_iter(
            (start..start + rows).map(|i| (i % 7 != 0).then(|| format!("n{}", i % 13))),
        ));
        RecordBatch::try_new(schema, vec![ids, names]).unwrap()
    }

    #[test]
    fn nested_columns_map_their_leaves_to_their_writers() {
        use arrow::array::{Int32Builder, ListBuilder, StructArray};
        let mut list = ListBuilder::new(Int32Builder::new());
        for i in 0..10_000 {
            for j in 0..(i % 4) {
                list.values().append_value(i + j);
            }
            list.append(i % 9 != 0);
        }
        let list: ArrayRef = Arc::new(list.finish());
        let inner: ArrayRef = Arc::new(Int64Array::from_iter_values(0..10_000));
        let names: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..10_000).map(|i| format!("s{}", i % 17)),
        ));
        let nested: ArrayRef = Arc::new(StructArray::from(vec![
            (Arc::new(Field::new("x", DataType::Int64, false)), inner),
            (Arc::new(Field::new("y", DataType::Utf8, false)), names),
        ]));
        let schema = Arc::new(Schema::new(vec![
            Field::new("l", list.data_type().clone(), true),
            Field::new("st", nested.data_type().clone(), false),
        ]));
        let batch = RecordBatch::try_new(schema.clone(), vec![list, nested]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.parquet");
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(3_000))
            .build();
        let mut writer =
            ColumnParallelWriter::try_new(File::create(&path).unwrap(), schema, props, 2).unwrap();
        writer.write(&batch.slice(0, 4_000)).unwrap();
        writer.write(&batch.slice(4_000, 6_000)).unwrap();
        assert_eq!(writer.finish().unwrap().num_row_groups(), 4);
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let read: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(
            arrow::compute::concat_batches(&read[0].schema(), &read).unwrap(),
            batch
        );
    }

    #[test]
    fn writes_the_same_rows_and_row_groups_as_arrow_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(100_000))
            .build();
        let schema = batch(0, 1).schema();
        let mut writer =
            ColumnParallelWriter::try_new(File::create(&path).unwrap(), schema, props, 3).unwrap();
        let mut start = 0;
        for rows in [70_000, 50_000, 1, 129_999] {
            writer.write(&batch(start, rows)).unwrap();
            start += rows;
        }
        let meta = writer.finish().unwrap();
        assert_eq!(meta.file_metadata().num_rows(), 250_000);
        let groups: Vec<i64> = meta
            .row_groups()
            .iter()
            .map(parquet::file::metadata::RowGroupMetaData::num_rows)
            .collect();
        assert_eq!(groups, vec![100_000, 100_000, 50_000]);

        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let read: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        let all = arrow::compute::concat_batches(&read[0].schema(), &read).unwrap();
        assert_eq!(all, batch(0, 250_000));
    }
}
