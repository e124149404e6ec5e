//! Errors raised by the engine, each one line that names the problem.

use datafusion::error::DataFusionError;
use dbopt_core::text::first_line;

/// An error while planning, executing, reading or writing.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The statement is not a read-only query.
    #[error("refused: {0}")]
    NotReadOnly(String),
    /// The SQL does not parse.
    #[error("SQL syntax error: {0}")]
    Syntax(String),
    /// The SQL parses but does not plan (unknown table or column, type mismatch).
    #[error("cannot plan query: {0}")]
    Plan(String),
    /// The query failed while running.
    #[error("query failed: {0}")]
    Execution(String),
    /// The query ran longer than the configured statement_timeout and was cancelled.
    #[error(
        "query cancelled: it ran longer than statement_timeout {}: raise it with --statement-timeout or statement_timeout in dbopt.toml (0 = no limit)",
        format_timeout(*.0)
    )]
    Timeout(std::time::Duration),
    /// A Parquet file is unreadable or corrupt.
    #[error("corrupt or unreadable Parquet file {path}: {message}")]
    CorruptParquet {
        /// The file.
        path: String,
        /// What the reader said.
        message: String,
    },
    /// The machine failed while a query ran: an IO error, memory or disk exhausted.
    #[error("query failed on this machine: {0}")]
    Resources(String),
    /// A source path given by the user is unusable.
    #[error("{0}")]
    Source(String),
    /// A lakehouse table (Delta Lake, Iceberg) that cannot be read or written as asked: not
    /// such a table, a feature dbopt does not support, corrupt metadata.
    #[error("{0}")]
    Lake(String),
    /// Another writer committed the version (Delta) or snapshot (Iceberg) this commit was
    /// going to write, or changed the files it was going to replace.
    #[error("table {table} changed at version {version}: {message}")]
    LakeConflict {
        /// The table root or metadata file.
        table: String,
        /// The Delta version or Iceberg snapshot id the conflict was found at.
        version: u64,
        /// What changed, and what to do.
        message: String,
    },
    /// An object-storage location that cannot be used as given: an endpoint that does not
    /// answer, refused credentials, a bucket or prefix that does not exist.
    #[error("{0}")]
    Store(String),
    /// A request to object storage failed during work, after its retries.
    #[error("{0}")]
    StoreFailed(String),
    /// A Ballista scheduler that cannot be used as given: it does not answer, or what answers
    /// is not a Ballista scheduler.
    #[error("{0}")]
    Scheduler(String),
    /// The Ballista cluster failed a query during work (an executor lost, a task failed).
    #[error("{0}")]
    ClusterFailed(String),
    /// File system error with context.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Parquet writer error with context.
    #[error("writing {path}: {message}")]
    Write {
        /// The file being written.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl EngineError {
    /// Wraps an IO error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        EngineError::Io {
            context: context.into(),
            source,
        }
    }

    /// Classifies a DataFusion error from planning.
    pub(crate) fn from_plan(err: DataFusionError) -> Self {
        match err.find_root() {
            DataFusionError::SQL(e, _) => EngineError::Syntax(first_line(&e.to_string())),
            DataFusionError::ParquetError(e) => EngineError::CorruptParquet {
                path: "(in table)".into(),
                message: first_line(&e.to_string()),
            },
            other => EngineError::Plan(first_line(&strip_prefixes(&other.to_string()))),
        }
    }

    /// Classifies a DataFusion error from execution by the typed errors in its cause chain:
    /// a Parquet error anywhere in it means a corrupt or unreadable file; an IO, object-store
    /// or resources error at its root means the machine; anything else is the query's.
    pub(crate) fn from_exec(err: DataFusionError) -> Self {
        let text = err.to_string();
        if let Some(message) = parquet_cause(&err) {
            return EngineError::CorruptParquet {
                path: extract_path(&text).unwrap_or_else(|| "(in table)".into()),
                message: first_line(&message),
            };
        }
        if matches!(
            err.find_root(),
            DataFusionError::IoError(_)
                | DataFusionError::ResourcesExhausted(_)
                | DataFusionError::ObjectStore(_)
        ) {
            return EngineError::Resources(first_line(&strip_prefixes(&text)));
        }
        EngineError::Execution(first_line(&strip_prefixes(&text)))
    }
}

/// The message of the first Parquet error in `err`'s cause chain (through DataFusion's
/// external, context and shared wrappers and Arrow's external errors).
fn parquet_cause(err: &DataFusionError) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(p) = e.downcast_ref::<parquet::errors::ParquetError>() {
            return Some(p.to_string());
        }
        if let Some(arrow::error::ArrowError::ParquetError(m)) =
            e.downcast_ref::<arrow::error::ArrowError>()
        {
            return Some(m.clone());
        }
        if let Some(DataFusionError::ParquetError(p)) = e.downcast_ref::<DataFusionError>() {
            return Some(p.to_string());
        }
        cause = e.source();
    }
    None
}

fn format_timeout(d: std::time::Duration) -> String {
    if d.subsec_millis() != 0 || d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

/// The message a caught panic carried (empty when it was not a string).
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| {
            panic
                .downcast_ref::<&str>()
                .map(std::string::ToString::to_string)
        })
        .unwrap_or_default()
}

fn strip_prefixes(text: &str) -> String {
    let mut t = text.trim();
    for prefix in [
        "Error during planning: ",
        "Schema error: ",
        "Execution error: ",
        "External error: ",
        "Arrow error: ",
        "Internal error: ",
        "Optimizer rule 'optimize_projections' failed\ncaused by\n",
    ] {
        while let Some(rest) = t.strip_prefix(prefix) {
            t = rest;
        }
    }
    t.to_string()
}

fn extract_path(text: &str) -> Option<String> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| c == '"' || c == '\'' || c == ',' || c == ':'))
        .find(|w| w.ends_with(".parquet"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::errors::ParquetError;

    #[test]
    fn parquet_errors_are_found_by_type_anywhere_in_the_chain() {
        let wrapped = [
            DataFusionError::ParquetError(Box::new(ParquetError::General("bad footer".into()))),
            DataFusionError::External(Box::new(ParquetError::EOF("short file".into()))),
            DataFusionError::Context(
                "reading /t/part-0.parquet".into(),
                Box::new(DataFusionError::ArrowError(
                    Box::new(arrow::error::ArrowError::ParquetError("bad page".into())),
                    None,
                )),
            ),
        ];
        for err in wrapped {
            let classified = EngineError::from_exec(err);
            assert!(
                matches!(classified, EngineError::CorruptParquet { .. }),
                "{classified:?}"
            );
        }
    }

    #[test]
    fn message_text_alone_does_not_make_a_corrupt_file() {
        let err = DataFusionError::Execution("Parquet error: magic bytes in a string".into());
        assert!(matches!(
            EngineError::from_exec(err),
            EngineError::Execution(_)
        ));
        let io = DataFusionError::IoError(std::io::Error::other("disk gone"));
        assert!(matches!(
            EngineError::from_exec(io),
            EngineError::Resources(_)
        ));
    }
}
