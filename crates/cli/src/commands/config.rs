//! `dbopt config show`: every key, its resolved value and where it came from.

use crate::cli::ConfigCommand;
use crate::output::{Rows, print_rows};
use anyhow::Result;
use dbopt_core::Config;

/// Runs `dbopt config ...`.
pub fn run(config: &Config, command: ConfigCommand) -> Result<()> {
    let ConfigCommand::Show(args) = command;
    let mut rows = Rows::new(&["key", "value", "source", "meaning"]);
    for (key, value) in config.entries() {
        rows.push(vec![
            key.name.to_string(),
            value.value.clone(),
            value.source.to_string(),
            key.doc.to_string(),
        ]);
    }
    print_rows(&rows, args.format);
    Ok(())
}
