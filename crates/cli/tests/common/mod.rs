//! Helpers shared by the CLI integration tests: the binary under test and the events table.
#![allow(dead_code)] // each test file uses its own subset

use dbopt_testkit::{Run, TempWorkspace};
use std::path::PathBuf;

/// The `dbopt` binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dbopt"))
}

/// Runs `dbopt args` in the workspace.
pub fn run(ws: &TempWorkspace, args: &[&str]) -> Run {
    ws.run(&bin(), args)
}

/// Generates the `events` table: `rows` rows from `seed` in row groups of `row_group_rows`,
/// with `extra` flags appended.
pub fn generate_events(
    ws: &TempWorkspace,
    rows: &str,
    seed: &str,
    row_group_rows: &str,
    extra: &[&str],
) {
    let base = [
        "generate",
        "--table-name",
        "events",
        "--num-rows",
        rows,
        "--seed",
        seed,
        "--row-group-rows",
        row_group_rows,
    ];
    run(ws, &[&base[..], extra].concat()).success();
}

/// A new workspace holding 20k generated events (seed 7, row groups of 2000 rows).
pub fn generated() -> TempWorkspace {
    let ws = TempWorkspace::new();
    generate_events(&ws, "20000", "7", "2000", &[]);
    ws
}

/// The single value `sql` selects from the workspace's catalog.
pub fn scalar<T: rusqlite::types::FromSql>(ws: &TempWorkspace, sql: &str) -> T {
    ws.catalog()
        .query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The active layout of `events`.
pub fn active_layout(ws: &TempWorkspace) -> String {
    scalar(ws, "SELECT active_layout FROM tables WHERE name = 'events'")
}
