//! `dbopt exp views`: the DuckDB views that read a store in place.

use super::Base;
use anyhow::Result;
use clap::Args;

/// `dbopt exp views`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt exp views results/                  # print the CREATE VIEW statements
  dbopt exp views results/ --write          # save them as results/views.sql
  duckdb -c \".read results/views.sql\" -c \"SELECT algo, avg(latency_ms) FROM events GROUP BY algo\"

The views: grids (grid_id and its parameters), events and seeds (their columns, the hive keys
and the grid's parameters joined in). A kind with no files yet gets no view.")]
pub struct ViewsArgs {
    /// The store's base directory.
    pub base: Base,
    /// Save the statements as BASE/views.sql instead of printing them.
    #[arg(long)]
    pub write: bool,
}

/// Runs `dbopt exp views`.
pub fn run(args: &ViewsArgs) -> Result<()> {
    let sql = dbopt::exp::views(&args.base)?;
    if args.write {
        let path = args.base.join("views.sql");
        std::fs::write(&path, &sql)
            .map_err(|e| dbopt::DbError::io(format!("writing {}", path.display()), e))?;
        println!("wrote {}", path.display());
    } else {
        print!("{sql}");
    }
    Ok(())
}
