//! `run-workload --workload-file`: replays or samples a `.sql` file of queries, or draws from
//! a `.toml` file of weighted templates. Every statement or template is checked and planned
//! before the first query runs, so a bad file fails with its file and line and logs nothing.

use crate::query::QuerySession;
use crate::workload::{Routing, Runner, SummaryBuilder, WorkloadSummary, run_logged};
use crate::{DbError, Progress, Workspace};
use arrow::array::Array;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use dbopt_core::TableName;
use dbopt_data::sampling::{mix64, unit_f64};
use dbopt_data::workload_spec::{
    TemplateWorkload, WorkloadFileError, parse_template_file, quote_string, split_sql,
};
use dbopt_engine::{EngineError, check_read_only};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What to run from a workload file.
#[derive(Debug, Clone)]
pub struct WorkloadFileOptions {
    /// The table the queries are logged against.
    pub table: TableName,
    /// A `.sql` file of queries or a `.toml` file of templates.
    pub file: PathBuf,
    /// Queries to draw (templates, or `.sql` with `sample`); a replay runs the file once.
    pub num_queries: u64,
    /// Seed of the drawing.
    pub seed: u64,
    /// Sample `.sql` statements uniformly instead of replaying them in order.
    pub sample: bool,
    /// Route each query across the live layouts (None: the active layout).
    pub routing: Option<Routing>,
}

impl From<WorkloadFileError> for DbError {
    fn from(e: WorkloadFileError) -> Self {
        DbError::WorkloadFile(e)
    }
}

/// Reads a user file with a one-line error naming it.
/// Largest workload or query-log file read (memory stays bounded whatever is passed).
pub const MAX_USER_FILE_BYTES: u64 = 256 << 20;

pub(crate) fn read_user_file(path: &Path, what: &str) -> Result<String, DbError> {
    use std::io::Read;
    let cannot = |e: std::io::Error| {
        DbError::BadFile(format!(
            "cannot read {what} {}: {e}; check the path",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(MAX_USER_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_USER_FILE_BYTES {
        return Err(DbError::BadFile(format!(
            "{what} {} is larger than {} MiB: split it into smaller files",
            path.display(),
            MAX_USER_FILE_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        DbError::BadFile(format!(
            "{what} {} is not UTF-8 text (invalid byte at offset {}): save it as UTF-8",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// A statement of a `.sql` file: its line, its text and whether it is a read-only query.
pub(crate) type CheckedStatement = (usize, String, Result<(), EngineError>);

/// Splits a `.sql` file and refuses it, naming file and line, when a statement does not
/// parse or is not read-only.
pub(crate) fn checked_statements(
    path: &Path,
    text: &str,
) -> Result<Vec<CheckedStatement>, DbError> {
    let statements = split_sql(text);
    if statements.is_empty() {
        return Err(DbError::BadFile(format!(
            "{}: no SQL statements: separate queries with ';'",
            path.display()
        )));
    }
    Ok(statements
        .into_iter()
        .map(|s| {
            let check = check_read_only(&s.sql);
            (s.line, s.sql, check)
        })
        .collect())
}

/// Plans `sql` in `session` without running it.
async fn plan(session: &QuerySession<'_>, sql: &str) -> Result<(), EngineError> {
    check_read_only(sql)?;
    session.context().plan(sql).await
}

impl Workspace {
    /// Runs a user workload file against `options.table`, logging every query.
    pub async fn run_workload_file(
        &self,
        options: &WorkloadFileOptions,
        progress: &dyn Progress,
    ) -> Result<WorkloadSummary, DbError> {
        self.require_table(&options.table)?;
        let path = &options.file;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "sql" | "toml") {
            return Err(DbError::BadFile(format!(
                "workload file {} must end in .sql (queries separated by ';') or .toml (templates)",
                path.display()
            )));
        }
        let text = read_user_file(path, "workload file")?;
        let mut runner = Runner::open(self, &options.table, options.routing.as_ref()).await?;
        let queries = if ext == "sql" {
            self.sql_file_queries(runner.session(), options, &text)
                .await?
        } else {
            self.template_queries(runner.session(), options, &text)
                .await?
        };
        progress.set_total(queries.len() as u64);
        let mut builder = SummaryBuilder::default();
        for (label, sql) in &queries {
            let result = run_logged(&mut runner, sql, label).await;
            builder.record(label, &result);
            progress.advance(1);
        }
        progress.finish();
        Ok(builder.finish())
    }

    /// The (label, SQL) pairs of a `.sql` file: replayed in order or sampled.
    async fn sql_file_queries(
        &self,
        session: &QuerySession<'_>,
        options: &WorkloadFileOptions,
        text: &str,
    ) -> Result<Vec<(String, String)>, DbError> {
        let path = &options.file;
        let name = file_label(path);
        let mut statements = Vec::new();
        for (line, sql, check) in checked_statements(path, text)? {
            check
                .and(plan(session, &sql).await)
                .map_err(|e| DbError::BadFile(format!("{}:{line}: {e}", path.display())))?;
            statements.push((format!("{name}:{line}"), sql));
        }
        if !options.sample {
            return Ok(statements);
        }
        let n = statements.len();
        Ok((0..options.num_queries)
            .map(|i| {
                let u = unit_f64(mix64(options.seed ^ mix64(i)));
                statements[((u * n as f64) as usize).min(n - 1)].clone()
            })
            .collect())
    }

    /// `num_queries` queries drawn from a `.toml` template file, every template planned first.
    async fn template_queries(
        &self,
        session: &QuerySession<'_>,
        options: &WorkloadFileOptions,
        text: &str,
    ) -> Result<Vec<(String, String)>, DbError> {
        let path = &options.file;
        let file = path.display().to_string();
        let parsed = parse_template_file(&file, text)?;
        let table = options.table.as_str();
        let schema = session.context().registered_schema(table).await?;
        let mut values = BTreeMap::new();
        for column in parsed.zipf_columns() {
            if schema.field_with_name(&column).is_err() {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(DbError::BadFile(format!(
                    "{file}: zipf parameter column '{column}' is not a column of '{table}' (columns: {})",
                    names.join(", ")
                )));
            }
            let sql = format!(
                "SELECT \"{column}\" AS v, count(*) AS n FROM \"{table}\" WHERE \"{column}\" IS NOT NULL \
                 GROUP BY 1 ORDER BY n DESC, 1 LIMIT {}",
                parsed.zipf_max_values(&column).max(1)
            );
            let (data_type, texts) = first_column(session, &sql).await?;
            values.insert(column, sql_literals(&data_type, texts));
        }
        let mut workload =
            TemplateWorkload::new(&file, text, &parsed, table, &values, options.seed)?;
        for i in 0..workload.len() {
            let q = workload.render(i);
            plan(session, &q.sql).await.map_err(|e| {
                DbError::BadFile(format!(
                    "{file}: template '{}' does not plan with sample parameters: {e} (query: {})",
                    q.template, q.sql
                ))
            })?;
        }
        let mut workload =
            TemplateWorkload::new(&file, text, &parsed, table, &values, options.seed)?;
        Ok((0..options.num_queries)
            .map(|_| {
                let q = workload.next_query();
                (q.template, q.sql)
            })
            .collect())
    }
}

/// The file name used to label replayed statements (`name.sql:LINE`).
fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| path.display().to_string())
}

/// Runs an internal (unlogged) query and returns its first column's type and values as text,
/// nulls left out.
pub(crate) async fn first_column(
    session: &QuerySession<'_>,
    sql: &str,
) -> Result<(DataType, Vec<String>), DbError> {
    let batches = session.context().collect(sql).await?;
    let mut out = Vec::new();
    let mut data_type = DataType::Null;
    let options = FormatOptions::default();
    for batch in &batches {
        let column = batch.column(0);
        data_type = column.data_type().clone();
        let formatter = ArrayFormatter::try_new(column.as_ref(), &options)
            .map_err(|e| DbError::Internal(format!("cannot format column values: {e}")))?;
        out.extend(
            (0..column.len())
                .filter(|i| !column.is_null(*i))
                .map(|i| formatter.value(i).to_string()),
        );
    }
    Ok((data_type, out))
}

/// Column values as SQL literals (strings quoted, dates and timestamps typed).
fn sql_literals(data_type: &DataType, texts: Vec<String>) -> Vec<String> {
    texts
        .into_iter()
        .map(|text| match data_type {
            t if t.is_numeric() => text,
            DataType::Boolean => text,
            DataType::Date32 | DataType::Date64 => format!("DATE '{text}'"),
            DataType::Timestamp(_, _) => format!("TIMESTAMP '{}'", text.replace('T', " ")),
            _ => quote_string(&text),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_values_become_typed_literals() {
        let texts = |v: &[&str]| {
            v.iter()
                .map(std::string::ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            sql_literals(&DataType::Utf8, texts(&["US", "it's"])),
            ["'US'", "'it''s'"]
        );
        assert_eq!(sql_literals(&DataType::Int64, texts(&["42"])), ["42"]);
        assert_eq!(
            sql_literals(&DataType::Date32, texts(&["2025-03-01"])),
            ["DATE '2025-03-01'"]
        );
        assert_eq!(
            sql_literals(
                &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
                texts(&["2025-03-01T10:00:00"])
            ),
            ["TIMESTAMP '2025-03-01 10:00:00'"]
        );
        assert_eq!(file_label(Path::new("/a/b/q.sql")), "q.sql");
    }
}
