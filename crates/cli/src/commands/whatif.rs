//! `dbopt whatif`: the what-if model's predicted bytes for the queries of a `.sql` file, on
//! the table as it is and on a target layout, per query, with both layouts' predicted size.

use super::spec_flags::SpecFlags;
use super::table_name;
use crate::cli::Format;
use crate::output::{Rows, human_bytes, print_rows};
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use dbopt_core::text::one_line;
use std::path::PathBuf;

/// `dbopt whatif`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt whatif --table-name events --workload-file queries.sql --sort-by event_date,customer_id
  dbopt whatif --table-name events --workload-file queries.sql --proposal 12 --format json
  dbopt whatif --table-name events --workload-file queries.sql   # the best stored proposal

Nothing is rewritten: the model lays out a sample of the active layout as the target would.
Run the same file with `dbopt run-workload --workload-file` after the migration to measure.")]
pub struct WhatIfArgs {
    /// The table.
    #[arg(long)]
    pub table_name: String,
    /// A `.sql` file of queries (separated by `;`) to price.
    #[arg(long, value_name = "FILE")]
    pub workload_file: PathBuf,
    /// The target layout.
    #[command(flatten)]
    pub spec: SpecFlags,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt whatif`.
pub async fn run(ws: Workspace, args: WhatIfArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let source = args.spec.source()?;
    let w = ws.whatif(&table, &source, &args.workload_file).await?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&w)?);
        return Ok(());
    }
    let (now, then) = (&w.current.estimate, &w.target.estimate);
    println!(
        "{}: {} queries priced ({} skipped: no scan of the table), sample of {} rows of layout {}",
        w.table,
        w.queries.len(),
        w.skipped.len(),
        w.sample_rows,
        w.layout
    );
    let mut totals = Rows::new(&["layout", "predicted scan", "files", "row groups", "size"]);
    for (p, e) in [(&w.current, now), (&w.target, then)] {
        totals.push(vec![
            p.description.clone(),
            human_bytes(e.bytes_scanned as u64),
            format!("{:.0}", e.files_read),
            format!("{:.0}", e.row_groups_read),
            human_bytes(e.size_bytes as u64),
        ]);
    }
    print_rows(&totals, args.format);
    println!();
    let mut rows = Rows::new(&["line", "query", "current", "target", "change"]);
    for q in &w.queries {
        rows.push(vec![
            q.line.to_string(),
            truncate(&one_line(&q.sql), 60),
            human_bytes(q.current_bytes as u64),
            human_bytes(q.target_bytes as u64),
            change(q.current_bytes, q.target_bytes),
        ]);
    }
    print_rows(&rows, args.format);
    for q in &w.queries {
        for j in &q.join_filters {
            println!(
                "line {}: priced with the keys a join carries into {} ({} build rows)",
                q.line, j.column, j.build_rows
            );
        }
    }
    Ok(())
}

/// `-93%`-style relative change from `from` to `to` (`-` when `from` is zero).
fn change(from: f64, to: f64) -> String {
    if from <= 0.0 {
        "-".into()
    } else {
        format!("{:+.0}%", (to / from - 1.0) * 100.0)
    }
}

/// `text` cut to `max` characters with an ellipsis.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_and_truncation() {
        assert_eq!(change(100.0, 7.0), "-93%");
        assert_eq!(change(100.0, 150.0), "+50%");
        assert_eq!(change(0.0, 5.0), "-");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
