//! `dbopt import-queries`: log the queries of a SQL file without running them.

use super::table_name;
use crate::cli::Format;
use crate::output::{Rows, print_rows};
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use std::path::PathBuf;

/// `dbopt import-queries`
#[derive(Debug, Args)]
#[command(after_help = "Example:
  dbopt import-queries --table-name events --file ./queries_from_trino.sql

Statements are separated by ';'. Each read-only query (SELECT, WITH, EXPLAIN) is logged with
origin 'imported' and its template fingerprint, and is not executed. DDL and DML statements are
skipped and counted (listed with their line). A statement that does not parse refuses the
whole file with its line; nothing is imported then.")]
pub struct ImportQueriesArgs {
    /// The table the queries are logged against.
    #[arg(long)]
    pub table_name: String,
    /// A .sql file of queries separated by ';'.
    #[arg(long)]
    pub file: PathBuf,
    /// Output format of the report.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt import-queries`.
pub fn run(ws: Workspace, args: ImportQueriesArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let report = ws.import_queries(&table, &args.file)?;
    for s in &report.skipped {
        eprintln!("skipped {}:{}: {}", report.file, s.line, s.reason);
    }
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let mut rows = Rows::new(&["metric", "value"]);
    rows.push(vec!["imported".into(), report.imported.to_string()]);
    rows.push(vec![
        "distinct fingerprints".into(),
        report.fingerprints.to_string(),
    ]);
    rows.push(vec!["skipped".into(), report.skipped.len().to_string()]);
    print_rows(&rows, args.format);
    Ok(())
}
