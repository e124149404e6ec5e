//! `dbopt tpch-validate` (hidden): TPC-H queries with the specification's validation
//! parameters, compared with the reference answers for scale factor 1 that tpchgen ships.

use anyhow::{Result, bail};
use clap::Args;
use dbopt::{DbError, Workspace};
use dbopt_data::tpch_queries::tpch_query_number;

/// `dbopt tpch-validate`
#[derive(Debug, Args)]
#[command(
    after_help = "Example (needs the tables at scale factor 1):\n  dbopt generate-tpch --scale-factor 1 --tables lineitem,orders,customer,part,partsupp,supplier,nation,region\n  dbopt tpch-validate --queries 1,6"
)]
pub struct TpchValidateArgs {
    /// Comma-separated query numbers (1..22) or names (q1..q22).
    #[arg(long, default_value = "1,6", value_delimiter = ',')]
    pub queries: Vec<String>,
}

/// Runs `dbopt tpch-validate`: prints one line per query, fails when any result differs.
pub async fn run(ws: Workspace, args: TpchValidateArgs) -> Result<()> {
    let mut numbers = Vec::new();
    for q in &args.queries {
        let n = q
            .trim()
            .parse::<u8>()
            .ok()
            .or_else(|| tpch_query_number(q))
            .ok_or_else(|| {
                DbError::BadArgument(format!(
                    "unknown TPC-H query '{q}': use numbers from 1 to 22, e.g. --queries 1,6"
                ))
            })?;
        numbers.push(n);
    }
    let checks = ws.validate_tpch(&numbers).await?;
    let mut failed = Vec::new();
    for c in &checks {
        match &c.mismatch {
            None => println!(
                "q{}: ok ({} rows match the reference answer)",
                c.query, c.rows
            ),
            Some(why) => {
                println!("q{}: MISMATCH: {why}", c.query);
                failed.push(format!("q{}", c.query));
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} differ from the TPC-H reference answers",
            failed.join(", ")
        );
    }
    Ok(())
}
