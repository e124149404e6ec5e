//! `dbopt exp info`: what a store holds.

use super::Base;
use crate::cli::Format;
use crate::output::{Rows, human_bytes, print_rows};
use anyhow::Result;
use clap::Args;
use dbopt::exp::EngineSettings;

/// `dbopt exp info`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt exp info results/
  dbopt exp info results/ --format json")]
pub struct InfoArgs {
    /// The store's base directory.
    pub base: Base,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// How many of a parameter's values `info` lists before it says "... and N more".
const SHOWN_VALUES: usize = 8;

/// Runs `dbopt exp info`.
pub async fn run(settings: &EngineSettings, args: InfoArgs) -> Result<()> {
    let info = dbopt::exp::info(settings, &args.base).await?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    println!(
        "{}: {} grids, {} runs with events ({} rows), {} with seed summaries ({} rows), {}",
        info.base,
        info.grids,
        info.event_runs,
        info.event_rows,
        info.seed_runs,
        info.seed_rows,
        human_bytes(info.bytes)
    );
    if !info.partition_by.is_empty() {
        println!("partitioned by {}", info.partition_by.join(", "));
    }
    let mut rows = Rows::new(&["parameter", "type", "values"]);
    for p in &info.params {
        let mut values = p
            .values
            .iter()
            .take(SHOWN_VALUES)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if p.values.len() > SHOWN_VALUES {
            let more = p.values.len() - SHOWN_VALUES;
            values.push_str(" ... and ");
            values.push_str(&more.to_string());
            values.push_str(" more");
        }
        rows.push(vec![p.name.clone(), p.data_type.clone(), values]);
    }
    print_rows(&rows, args.format);
    for (what, columns) in [
        ("events", &info.event_columns),
        ("seeds", &info.seed_columns),
    ] {
        if !columns.is_empty() {
            let list: Vec<String> = columns
                .iter()
                .map(|c| format!("{} {}", c.name, c.data_type))
                .collect();
            println!("{what} columns: {}", list.join(", "));
        }
    }
    Ok(())
}
