//! Fixed-size generation blocks re-cut into caller-sized batches.
//!
//! Every generator produces rows in blocks of [`BLOCK_ROWS`] rows, each from its own RNG
//! seeded by (seed, stream, block index). Row content therefore depends only on the
//! parameters, never on the batch size, and memory stays O(block + batch).

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::sampling::mix64;

/// Rows per generation block.
pub const BLOCK_ROWS: usize = 8192;

/// Default number of rows per emitted batch.
pub const DEFAULT_BATCH_SIZE: usize = BLOCK_ROWS;

/// A source of fixed-size generation blocks.
pub(crate) trait BlockSource {
    /// Schema of every block.
    fn schema(&self) -> SchemaRef;
    /// Generates `rows` rows starting at global row `first_row` (block `index`).
    fn block(&self, index: u64, first_row: u64, rows: usize) -> RecordBatch;
}

/// The RNG of one block: independent per (seed, stream, index).
pub(crate) fn block_rng(seed: u64, stream: u64, index: u64) -> StdRng {
    StdRng::seed_from_u64(mix64(seed ^ mix64(stream ^ mix64(index))))
}

/// Pulls blocks from a [`BlockSource`] and emits batches of `batch_size` rows.
pub(crate) struct Rebatcher<S> {
    source: S,
    num_rows: u64,
    batch_size: usize,
    next_block: u64,
    current: Option<RecordBatch>,
    offset: usize,
    emitted: u64,
}

impl<S: BlockSource> Rebatcher<S> {
    /// Emits `num_rows` rows of `source` in batches of `batch_size` (at least 1).
    pub(crate) fn new(source: S, num_rows: u64, batch_size: usize) -> Self {
        Self {
            source,
            num_rows,
            batch_size: batch_size.max(1),
            next_block: 0,
            current: None,
            offset: 0,
            emitted: 0,
        }
    }

    /// The wrapped block source.
    pub(crate) fn source(&self) -> &S {
        &self.source
    }

    fn remaining(&self) -> u64 {
        self.num_rows - self.emitted
    }

    /// The next piece of at most `want` rows from the current (or a fresh) block.
    fn take(&mut self, want: usize) -> RecordBatch {
        let exhausted = self
            .current
            .as_ref()
            .is_none_or(|b| self.offset == b.num_rows());
        if exhausted {
            let first_row = self.next_block * BLOCK_ROWS as u64;
            let rows = (self.num_rows - first_row).min(BLOCK_ROWS as u64) as usize;
            self.current = Some(self.source.block(self.next_block, first_row, rows));
            self.next_block += 1;
            self.offset = 0;
        }
        let block = self.current.as_ref().expect("a block was just generated");
        let len = want.min(block.num_rows() - self.offset);
        let piece = block.slice(self.offset, len);
        self.offset += len;
        piece
    }
}

impl<S: BlockSource> Iterator for Rebatcher<S> {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        let want = self.remaining().min(self.batch_size as u64) as usize;
        if want == 0 {
            return None;
        }
        let mut pieces = Vec::new();
        let mut got = 0;
        while got < want {
            let piece = self.take(want - got);
            got += piece.num_rows();
            pieces.push(piece);
        }
        self.emitted += want as u64;
        if pieces.len() == 1 {
            return pieces.pop();
        }
        Some(concat_batches(&self.source.schema(), &pieces).expect("blocks share one schema"))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let batches = self.remaining().div_ceil(self.batch_size as u64) as usize;
        (batches, Some(batches))
    }
}

impl<S: BlockSource> ExactSizeIterator for Rebatcher<S> {}
