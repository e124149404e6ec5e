//! `dbopt tables`: managed tables with rows, size and layouts.

use crate::cli::{Format, TablesArgs};
use crate::output::{Rows, human_bytes, print_rows};
use anyhow::Result;
use dbopt::Workspace;

/// Runs `dbopt tables`.
pub fn run(ws: Workspace, args: TablesArgs) -> Result<()> {
    let tables = ws.table_summaries()?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&tables)?);
        return Ok(());
    }
    if tables.is_empty() && args.format == Format::Table {
        println!("no managed tables: create one with `dbopt generate` or `dbopt load-dataset`");
        return Ok(());
    }
    let mut rows = Rows::new(&[
        "table",
        "rows",
        "size",
        "files",
        "active layout",
        "layouts",
        "source",
    ]);
    for t in tables {
        rows.push(vec![
            t.name,
            t.rows.to_string(),
            human_bytes(t.active_bytes),
            t.active_files.to_string(),
            t.active_layout,
            t.layouts.join(","),
            t.source,
        ]);
    }
    print_rows(&rows, args.format);
    Ok(())
}
