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
            shown_value(key.name, &value.value),
            value.source.to_string(),
            key.doc.to_string(),
        ]);
    }
    print_rows(&rows, args.format);
    Ok(())
}

/// The value as `config show` prints it: a password is masked.
fn shown_value(key: &str, value: &str) -> String {
    if key.ends_with("password") && !value.is_empty() {
        "********".to_string()
    } else {
        value.to_string()
    }
}
