//! Why a log could not be read.

/// Why a log could not be read; each message names the problem and the fix.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The text holds no records.
    #[error("the log is empty: export the query log with its header row (or as JSON lines)")]
    Empty,
    /// A line is not a record of the format.
    #[error(
        "line {line} is not a {format} log record: {reason} (fix the line, or pass --skip-bad-lines to skip and count it)"
    )]
    BadLine {
        /// The format read.
        format: &'static str,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}
