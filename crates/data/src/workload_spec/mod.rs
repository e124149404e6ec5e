//! User workload files: a `.sql` file of concrete queries, or a `.toml` file of weighted
//! templates with typed parameters. Pure parsing and parameter drawing; the facade reads the
//! file, supplies column values for Zipf parameters, plans and runs the queries.
//!
//! TOML format (see `examples/events_workload.toml`):
//!
//! ```toml
//! [[template]]
//! name = "customer_daily"          # unique; logged as the query's workload
//! weight = 3.0                     # relative frequency [default: 1]
//! sql = "SELECT event_date, count(*) FROM {table} WHERE customer_id = {customer} GROUP BY 1"
//! [template.params]
//! customer = { type = "zipf", column = "customer_id", exponent = 1.1 }
//! ```
//!
//! Placeholders: `{table}` (the table name), `{p}` for a scalar parameter, `{p.start}` and
//! `{p.end}` for a range parameter; `{{` and `}}` are literal braces.
//!
//! The parts: `statements` splits a `.sql` file with sqlparser's tokenizer; `toml_file`
//! parses and checks a `.toml` file and draws queries from it; `template` is the placeholder
//! language of a template's `sql`; `params` the typed parameters and their samplers.

mod params;
mod statements;
mod template;
mod toml_file;

pub use params::{ParamSpec, quote_string, sql_literal};
pub use statements::{SqlStatement, split_sql};
pub use toml_file::{
    DrawnQuery, QueryTemplate, TemplateFile, TemplateWorkload, parse_template_file,
};

/// A problem in a workload file, with the file and (when known) the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct WorkloadFileError {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl WorkloadFileError {
    /// An error at `line` of `file`.
    pub fn at(file: &str, line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }
}
