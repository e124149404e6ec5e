//! `dbopt cache`: the column-chunk cache of a running `dbopt serve` (statistics, clear, warm).
//! The cache lives in the server's memory, so this command asks the server over its HTTP port.

use super::table_name;
use crate::output::human_bytes;
use anyhow::Result;
use clap::{Args, Subcommand};
use dbopt::cache::{CacheStats, Cleared, Warmed, ask_server};

/// `dbopt cache`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt cache stats                                  # the server on http://127.0.0.1:9090
  dbopt cache warm --table-name events               # preload the hot columns of the active layout
  dbopt cache clear --table-name events
  dbopt cache stats --server http://10.0.0.5:9090 --json

`dbopt serve` keeps the Parquet column chunks its queries read (as stored, keyed by file, row
group and column; files live in immutable layout directories, so a new layout never reads
stale data) in memory up to cache_max_bytes (default 1GiB; 0 = off). Cache memory is reserved in the
memory pool (memory_limit): a query that needs memory takes it from the cache.
The same figures are on /metrics as dbopt_chunk_cache_*.")]
pub struct CacheArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: CacheAction,
    /// The running `dbopt serve`'s HTTP address (its --metrics-addr).
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:9090",
        value_name = "URL"
    )]
    pub server: String,
    /// Print the server's JSON answer instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A `dbopt cache` action.
#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Entries, bytes, bound, hits, misses, evictions and hit rate.
    Stats,
    /// Release the cached chunks of one table (every layout of it), or of all tables.
    Clear {
        /// The table [default: every table]
        #[arg(long)]
        table_name: Option<String>,
    },
    /// Read the hot columns of a table's active layout into the cache, most used first.
    Warm {
        /// The table.
        #[arg(long)]
        table_name: String,
    },
}

/// Runs `dbopt cache`.
pub fn run(args: CacheArgs) -> Result<()> {
    let (path, post) = match &args.action {
        CacheAction::Stats => ("/cache".to_string(), false),
        CacheAction::Clear { table_name: t } => match t {
            Some(t) => (format!("/cache/clear?table={}", table_name(t)?), true),
            None => ("/cache/clear".to_string(), true),
        },
        CacheAction::Warm { table_name: t } => {
            (format!("/cache/warm?table={}", table_name(t)?), true)
        }
    };
    let answer = ask_server(&args.server, &path, post)?;
    if args.json {
        println!("{answer}");
        return Ok(());
    }
    match args.action {
        CacheAction::Stats => print_stats(&serde_json::from_str(&answer)?),
        CacheAction::Clear { .. } => {
            let c: Cleared = serde_json::from_str(&answer)?;
            println!("released {} chunks ({})", c.entries, human_bytes(c.bytes));
        }
        CacheAction::Warm { .. } => print_warmed(&serde_json::from_str(&answer)?),
    }
    Ok(())
}

fn print_stats(stats: &CacheStats) {
    let s = &stats.cache;
    let rate = stats
        .hit_rate
        .map_or_else(|| "-".to_string(), |r| format!("{:.1}%", r * 100.0));
    println!(
        "{} chunks, {} of {} ({:.0}% full)",
        s.entries,
        human_bytes(s.bytes),
        human_bytes(s.max_bytes),
        100.0 * s.bytes as f64 / s.max_bytes.max(1) as f64
    );
    println!(
        "hits {}, misses {}, hit rate {rate}, evictions {}, read in {}",
        s.hits,
        s.misses,
        s.evictions,
        human_bytes(s.inserted_bytes)
    );
    println!(
        "memory pool: {} reserved of {} (cache and running queries)",
        human_bytes(stats.memory_reserved),
        human_bytes(stats.memory_limit)
    );
}

fn print_warmed(w: &Warmed) {
    let source = if w.from_workload {
        "hot columns of the logged workload"
    } else {
        "every column (no logged queries)"
    };
    println!(
        "warmed {} layout {}: {} chunks, {} in {} ms ({source}: {})",
        w.table,
        w.layout,
        w.chunks,
        human_bytes(w.bytes),
        w.elapsed_ms,
        w.columns.join(", ")
    );
    if w.already_cached > 0 {
        println!("{} chunks were cached already", w.already_cached);
    }
    if w.full {
        println!("the cache is full (cache_max_bytes): the coldest of these columns were not read");
    }
}
