//! Progress reporting for long work; the CLI draws a bar, tests and libraries stay silent.

/// Receives progress of a long operation.
pub trait Progress: Send + Sync {
    /// The total amount of work (rows, queries), once known.
    fn set_total(&self, total: u64);
    /// `delta` more units are done.
    fn advance(&self, delta: u64);
    /// A short status message.
    fn message(&self, _text: &str) {}
    /// The work is over.
    fn finish(&self);
}

/// Progress that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn set_total(&self, _total: u64) {}
    fn advance(&self, _delta: u64) {}
    fn finish(&self) {}
}
