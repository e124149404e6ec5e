//! A pool of Parquet writer threads filling one layout directory: each thread owns a
//! `LayoutWriter` and a digester. Batches are cut into runs of `run_rows` rows dealt
//! round-robin, so every row group holds consecutive source rows and each file sequence keeps
//! source order; the digests add up to the digest of every row sent.

use crate::EngineError;
use crate::result_digest::BatchDigester;
use crate::writer::{LayoutWriter, WrittenLayout};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use dbopt_core::{LayoutSpec, RowDigest};
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;

/// Batches queued per writer thread before `write` waits for it.
const QUEUE_DEPTH: usize = 4;

/// Writer threads encoding one layout in parallel (see the module docs).
pub struct WriterPool {
    dir: PathBuf,
    senders: Vec<SyncSender<RecordBatch>>,
    handles: Vec<JoinHandle<Result<(WrittenLayout, RowDigest), EngineError>>>,
    run_rows: usize,
    current: usize,
    filled: usize,
}

impl WriterPool {
    /// Starts `writers` threads writing batches of `schema` into `dir` with `spec`'s Parquet
    /// settings, rolling files after `rows_per_file` rows. With more than one writer, files
    /// are named `part-w<i>-NNNNN.parquet`. Runs are one row group of `spec` long.
    pub fn start(
        dir: &Path,
        schema: &SchemaRef,
        spec: &LayoutSpec,
        rows_per_file: u64,
        writers: usize,
    ) -> Result<Self, EngineError> {
        let writers = writers.max(1);
        let mut senders = Vec::with_capacity(writers);
        let mut handles = Vec::with_capacity(writers);
        for i in 0..writers {
            let mut writer = LayoutWriter::create(dir, schema.clone(), spec, rows_per_file)?;
            if writers > 1 {
                writer = writer.with_file_prefix(&format!("w{i}-"));
            }
            // Plain threads: callers may drive their batches from any executor.
            let (tx, rx) = std::sync::mpsc::sync_channel::<RecordBatch>(QUEUE_DEPTH);
            handles.push(std::thread::spawn(move || {
                let mut digester = BatchDigester::new();
                while let Ok(batch) = rx.recv() {
                    digester.update(&batch)?;
                    writer.write(&batch)?;
                }
                Ok((writer.finish()?, digester.finish()))
            }));
            senders.push(tx);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            senders,
            handles,
            run_rows: spec.effective_row_group_rows().max(1),
            current: 0,
            filled: 0,
        })
    }

    /// Queues `batch`, cut into runs dealt round-robin. A writer that stopped on an error
    /// takes no more; `finish` reports the error.
    pub fn write(&mut self, batch: &RecordBatch) {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (self.run_rows - self.filled).min(batch.num_rows() - offset);
            let piece = batch.slice(offset, take);
            if self.senders[self.current].send(piece).is_err() {
                return;
            }
            offset += take;
            self.filled += take;
            if self.filled == self.run_rows {
                self.filled = 0;
                self.current = (self.current + 1) % self.senders.len();
            }
        }
    }

    /// Waits for every writer to close its files (fsynced) and returns what they wrote, files
    /// sorted by path, with the digest of all rows; the first writer error if any.
    pub fn finish(self) -> Result<(WrittenLayout, RowDigest), EngineError> {
        drop(self.senders);
        let mut files = Vec::new();
        let mut rows = 0;
        let mut digest = RowDigest::default();
        for handle in self.handles {
            let (written, d) = handle.join().map_err(|_| EngineError::Write {
                path: self.dir.display().to_string(),
                message: "a Parquet writer thread panicked".to_string(),
            })??;
            files.extend(written.files);
            rows += written.rows;
            digest.merge(&d);
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok((WrittenLayout { files, rows }, digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn write(dir: &Path, writers: usize) -> (WrittenLayout, RowDigest) {
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let spec = LayoutSpec {
            row_group_rows: Some(100),
            ..Default::default()
        };
        let mut pool = WriterPool::start(dir, &schema, &spec, 1_000_000, writers).unwrap();
        for start in (0..1050).step_by(300) {
            let end = (start + 300).min(1050);
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from_iter_values(start..end))],
            )
            .unwrap();
            pool.write(&batch);
        }
        pool.finish().unwrap()
    }

    #[test]
    fn parallel_writers_keep_the_rows_and_whole_row_groups() {
        let one_dir = tempfile::tempdir().unwrap();
        let three_dir = tempfile::tempdir().unwrap();
        let (one, one_digest) = write(one_dir.path(), 1);
        let (three, three_digest) = write(three_dir.path(), 3);
        assert_eq!(one_digest, three_digest, "same multiset of rows");
        assert_eq!((one.rows, three.rows), (1050, 1050));
        assert_eq!(one.files.len(), 1);
        assert_eq!(three.files.len(), 3);
        assert!(three.files.iter().all(|f| f.path.starts_with("part-w")));
        let groups = |w: &WrittenLayout| w.files.iter().map(|f| f.row_groups).sum::<u64>();
        // Runs are one row group long, so no row group is split across writers.
        assert_eq!((groups(&one), groups(&three)), (11, 11));
    }
}
