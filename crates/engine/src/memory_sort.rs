//! The in-memory sort of a rewrite unit: when the unit's decoded rows fit in the session's
//! memory pool, sort only the order keys to row indices and gather every column once, in
//! output order, straight into the writer.
//!
//! Guarantees:
//! - The rows come out in the order DataFusion's `ORDER BY` over the same keys gives (ties in
//!   any order, as there), so the layout is the one the external sort would write.
//! - Memory stays within the session's pool: every decoded buffer is reserved as it arrives
//!   (shared buffers counted once); when a reservation fails the rows read so far are dropped
//!   and the caller sorts with the external (spilling) sort instead. Nothing is written before
//!   the rows are all in memory, so a fallback leaves no partial output.
//!
//! Why: DataFusion's external sort copies each row three times (sort each batch, merge the
//! sorted runs, merge the streams); here each row is copied once, by the gather.

use crate::EngineError;
use crate::column_writer::parallel_map;
use arrow::array::{Array, ArrayData, ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{SortColumn, SortOptions, concat, interleave, lexsort_to_indices};
use arrow::datatypes::SchemaRef;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit, MemoryReservation};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;

/// Rows gathered into each output batch.
pub const GATHER_ROWS: usize = 64 * 1024;
/// Rows read before the unit's whole size is projected from them.
const PROJECT_AFTER_ROWS: usize = 256 * 1024;

/// One key of the order: a column of the plan's output and its direction.
#[derive(Debug, Clone)]
pub struct OrderKey {
    /// The column name in the plan's output.
    pub column: String,
    /// Direction and null placement.
    pub options: SortOptions,
}

/// A unit's rows held in memory with the permutation that sorts them.
pub struct SortedInMemory {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    starts: Vec<usize>,
    order: UInt32Array,
    threads: usize,
    _reservation: MemoryReservation,
}

/// Reads every row `plan` produces into memory and sorts them by `keys`. Returns `None` when
/// the rows (plus the sort's keys and indices) do not fit in the session's memory pool, having
/// released what it read; it gives up early when the first rows, scaled to `expected_rows`,
/// already would not fit.
pub async fn sort_in_memory(
    ctx: &SessionContext,
    plan: Arc<dyn ExecutionPlan>,
    keys: &[OrderKey],
    expected_rows: u64,
    threads: usize,
) -> Result<Option<SortedInMemory>, EngineError> {
    if expected_rows > u64::from(u32::MAX) {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let schema = plan.schema();
    let pool = ctx.runtime_env().memory_pool.clone();
    let reservation = MemoryConsumer::new("dbopt rewrite: in-memory sort").register(&pool);
    let mut seen = HashSet::new();
    let mut batches = Vec::new();
    let mut rows = 0usize;
    let mut stream = execute_stream(plan, ctx.task_ctx()).map_err(EngineError::from_exec)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(EngineError::from_exec)?;
        if batch.num_rows() == 0 {
            continue;
        }
        rows += batch.num_rows();
        if reservation
            .try_grow(new_buffer_bytes(&batch, &mut seen))
            .is_err()
            || rows > u32::MAX as usize
        {
            return Ok(None);
        }
        batches.push(batch);
        if rows >= PROJECT_AFTER_ROWS
            && let MemoryLimit::Finite(limit) = pool.memory_limit()
        {
            let expected = u128::from(expected_rows);
            let projected = reservation.size() as u128 * expected / rows as u128 + expected * 8;
            let others = pool.reserved().saturating_sub(reservation.size());
            if projected > limit.saturating_sub(others) as u128 {
                return Ok(None);
            }
        }
    }
    let key_columns = keys
        .iter()
        .map(|k| {
            let idx = schema
                .index_of(&k.column)
                .map_err(|e| EngineError::Plan(format!("sort key {}: {e}", k.column)))?;
            let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(idx).as_ref()).collect();
            Ok((parts, k.options))
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    // The concatenated keys and the permutation live beside the rows until the gather ends.
    let key_bytes: usize = key_columns
        .iter()
        .flat_map(|(parts, _)| parts.iter().map(|a| a.get_array_memory_size()))
        .sum();
    if reservation.try_grow(key_bytes + rows * 8).is_err() {
        return Ok(None);
    }
    let read_ms = started.elapsed().as_millis();
    let order = if keys.is_empty() || rows == 0 {
        UInt32Array::from_iter_values(0..rows as u32)
    } else {
        let sort_columns = key_columns
            .into_iter()
            .map(|(parts, options)| {
                let values = concat(&parts).map_err(|e| EngineError::Execution(e.to_string()))?;
                Ok(SortColumn {
                    values,
                    options: Some(options),
                })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        lexsort_to_indices(&sort_columns, None)
            .map_err(|e| EngineError::Execution(format!("sorting the unit's keys: {e}")))?
    };
    tracing::debug!(
        "in-memory sort: read {rows} rows ({} MiB) in {read_ms} ms, sorted their keys in {} ms",
        reservation.size() >> 20,
        started.elapsed().as_millis() - read_ms
    );
    let mut starts = Vec::with_capacity(batches.len());
    let mut at = 0;
    for b in &batches {
        starts.push(at);
        at += b.num_rows();
    }
    Ok(Some(SortedInMemory {
        schema,
        batches,
        starts,
        order,
        threads: threads.max(1),
        _reservation: reservation,
    }))
}

impl SortedInMemory {
    /// The rows' schema (the plan's output).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.order.len()
    }

    /// The rows in sorted order, [`GATHER_ROWS`] at a time; each column of a batch is gathered
    /// on its own thread.
    pub fn batches(&self) -> impl Iterator<Item = Result<RecordBatch, EngineError>> + '_ {
        (0..self.rows())
            .step_by(GATHER_ROWS)
            .map(move |start| self.gather(start, GATHER_ROWS.min(self.rows() - start)))
    }

    /// Gathers sorted rows `start..start + len` of every column.
    fn gather(&self, start: usize, len: usize) -> Result<RecordBatch, EngineError> {
        let picks: Vec<(usize, usize)> = self.order.values()[start..start + len]
            .iter()
            .map(|&row| {
                let row = row as usize;
                let batch = self.starts.partition_point(|&s| s <= row) - 1;
                (batch, row - self.starts[batch])
            })
            .collect();
        let columns: Vec<usize> = (0..self.schema.fields().len()).collect();
        let gathered = parallel_map(columns, self.threads, |c| {
            let parts: Vec<&dyn Array> =
                self.batches.iter().map(|b| b.column(c).as_ref()).collect();
            interleave(&parts, &picks)
        });
        let columns = gathered
            .into_iter()
            .collect::<Result<Vec<ArrayRef>, _>>()
            .map_err(|e| EngineError::Execution(format!("gathering sorted rows: {e}")))?;
        RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| EngineError::Execution(e.to_string()))
    }
}

/// Bytes of `batch`'s buffers not yet counted in `seen` (decoders share buffers between the
/// batches of a page, so summing each batch's size would count them many times over).
fn new_buffer_bytes(batch: &RecordBatch, seen: &mut HashSet<usize>) -> usize {
    fn walk(data: &ArrayData, seen: &mut HashSet<usize>) -> usize {
        let mut bytes = 0;
        let buffers = data
            .buffers()
            .iter()
            .chain(data.nulls().map(arrow::buffer::NullBuffer::buffer));
        for buffer in buffers {
            if seen.insert(buffer.data_ptr().as_ptr() as usize) {
                bytes += buffer.capacity();
            }
        }
        bytes
            + data
                .child_data()
                .iter()
                .map(|c| walk(c, seen))
                .sum::<usize>()
    }
    batch
        .columns()
        .iter()
        .map(|c| walk(&c.to_data(), seen))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::SessionConfig;

    fn table(ctx: &SessionContext, batches: usize, rows: i64) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("s", DataType::Utf8, false),
        ]));
        let parts: Vec<RecordBatch> = (0..batches as i64)
            .map(|b| {
                let k: Vec<Option<i64>> = (0..rows)
                    .map(|i| {
                        let v = (b * rows + i) * 7919 % 1000;
                        (v % 13 != 0).then_some(v)
                    })
                    .collect();
                let s: Vec<String> = (0..rows).map(|i| format!("row-{b}-{i}")).collect();
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(k)),
                        Arc::new(StringArray::from(s)),
                    ],
                )
                .unwrap()
            })
            .collect();
        let mem = MemTable::try_new(schema, vec![parts]).unwrap();
        ctx.register_table("t", Arc::new(mem)).unwrap();
    }

    async fn plan(ctx: &SessionContext, sql: &str) -> Arc<dyn ExecutionPlan> {
        ctx.sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap()
    }

    fn collect(sorted: &SortedInMemory) -> RecordBatch {
        let out: Vec<RecordBatch> = sorted.batches().map(Result::unwrap).collect();
        arrow::compute::concat_batches(&sorted.schema, &out).unwrap()
    }

    #[tokio::test]
    async fn sorts_like_order_by_across_batches_with_nulls_and_descending() {
        let ctx = SessionContext::new();
        table(&ctx, 5, 30_000);
        let keys = [OrderKey {
            column: "k".into(),
            options: SortOptions {
                descending: true,
                nulls_first: true,
            },
        }];
        let sorted = sort_in_memory(
            &ctx,
            plan(&ctx, "SELECT k, s FROM t").await,
            &keys,
            150_000,
            2,
        )
        .await
        .unwrap()
        .expect("fits in an unbounded pool");
        assert_eq!(sorted.rows(), 150_000);
        let got = collect(&sorted);
        let want = ctx
            .sql("SELECT k, s FROM t ORDER BY k DESC NULLS FIRST, s")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let want = arrow::compute::concat_batches(&got.schema(), &want).unwrap();
        // Same keys in the same order; ties (equal k) may come in any order, so compare the
        // rows of each key as sets via a sort on (k, s).
        assert_eq!(got.column(0).as_ref(), want.column(0).as_ref());
        assert_eq!(got.column(0).null_count(), want.column(0).null_count());
        let resorted = ctx
            .read_batch(got)
            .unwrap()
            .sort(vec![
                datafusion::prelude::col("k").sort(false, true),
                datafusion::prelude::col("s").sort(true, true),
            ])
            .unwrap()
            .collect()
            .await
            .unwrap();
        let resorted = arrow::compute::concat_batches(&want.schema(), &resorted).unwrap();
        assert_eq!(resorted, want);
    }

    #[tokio::test]
    async fn gives_up_when_the_rows_do_not_fit_the_pool() {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(1 << 20, 1.0)
            .build_arc()
            .unwrap();
        let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
        table(&ctx, 4, 50_000);
        let keys = [OrderKey {
            column: "k".into(),
            options: SortOptions::default(),
        }];
        let sorted = sort_in_memory(
            &ctx,
            plan(&ctx, "SELECT k, s FROM t").await,
            &keys,
            200_000,
            1,
        )
        .await
        .unwrap();
        assert!(sorted.is_none(), "4 MB of rows cannot fit a 1 MiB pool");
        assert_eq!(
            ctx.runtime_env().memory_pool.reserved(),
            0,
            "what was read is released"
        );
    }

    #[test]
    fn shared_buffers_are_counted_once() {
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(0..1000));
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![a]).unwrap();
        let mut seen = HashSet::new();
        let first = new_buffer_bytes(&batch.slice(0, 500), &mut seen);
        assert!(first >= 8000);
        assert_eq!(new_buffer_bytes(&batch.slice(500, 500), &mut seen), 0);
    }
}
