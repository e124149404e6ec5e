//! Query-log writes off the answer path, for the SQL endpoint: each connection hands its
//! finished queries to one writer thread, which writes whatever has queued in one catalog
//! transaction. A client gets its answer without waiting for the catalog's fsync.
//!
//! Guarantees:
//! - Every entry handed over is written, in the order handed over, unless the process dies
//!   first: then at most the entries of the last few milliseconds are lost (they are
//!   telemetry; the data and layouts are untouched).
//! - [`QueryLogWriter::stop`] writes everything queued before it returns (`serve` calls it
//!   when it stops).
//! - A write that fails is reported in the server's log and the next batch is tried; it never
//!   fails a client's query.

use crate::{DbError, Workspace};
use dbopt_catalog::{Catalog, QueryLogEntry};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

/// Most entries written in one transaction.
const MAX_BATCH: usize = 512;

/// The writer thread and the channel to it.
pub struct QueryLogWriter {
    queue: Mutex<Option<Sender<QueryLogEntry>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl QueryLogWriter {
    /// Starts a writer on its own connection to `ws`'s catalog.
    pub fn start(ws: &Workspace) -> Result<QueryLogWriter, DbError> {
        let catalog = Catalog::open(&ws.config().metadata_db(), ws.clock().clone())?;
        let (queue, entries) = channel();
        let thread = std::thread::Builder::new()
            .name("dbopt-query-log".into())
            .spawn(move || write_batches(&catalog, &entries))
            .map_err(|e| DbError::io("starting the query-log writer", e))?;
        Ok(QueryLogWriter {
            queue: Mutex::new(Some(queue)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `entry`; written synchronously through `ws` when the writer has stopped.
    pub fn send(&self, ws: &Workspace, entry: QueryLogEntry) -> Result<(), DbError> {
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let unsent = match queue.as_ref() {
            Some(q) => q.send(entry).err().map(|e| e.0),
            None => Some(entry),
        };
        drop(queue);
        if let Some(entry) = unsent {
            ws.catalog().log_query(&entry)?;
        }
        Ok(())
    }

    /// Writes everything queued and stops the thread.
    pub fn stop(&self) {
        drop(
            self.queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = thread
            && t.join().is_err()
        {
            tracing::error!("the query-log writer panicked");
        }
    }
}

impl Drop for QueryLogWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_batches(catalog: &Catalog, entries: &Receiver<QueryLogEntry>) {
    while let Ok(first) = entries.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match entries.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        if let Err(e) = catalog.log_queries(&batch) {
            tracing::error!(error = %e, queries = batch.len(), "writing the query log failed");
        }
    }
}
