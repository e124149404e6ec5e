//! The column-chunk cache of a running `dbopt serve`: its statistics, clearing it and warming
//! it with a table's hot columns. The cache lives in the server's memory, so `dbopt cache`
//! asks the server over its HTTP port (`/cache`, `/cache/clear`, `/cache/warm`); the server
//! answers through these functions on its own workspace.
//!
//! Guarantees:
//! - Statistics first release the entries of files that no longer exist (a layout gc dropped),
//!   so what they report is what can still be served.
//! - Clearing a table releases every entry under its directory (all its layouts) and nothing
//!   else; warming reads only the table's active layout, hottest columns first, and stops when
//!   the cache is full rather than evicting what it has just read.

use crate::{DbError, Workspace};
use dbopt_core::{LayoutManifest, TableName};
use dbopt_engine::layout_dir::LayoutDir;
use dbopt_engine::{ChunkCache, ChunkCacheStats, WarmReport};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the cache holds and how it has served, as `/cache` reports it (the cache's own
/// figures, flattened, then the hit rate and the memory pool).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Entries, bytes, bound, hits, misses, evictions, bytes read.
    #[serde(flatten)]
    pub cache: ChunkCacheStats,
    /// Hits over lookups (None before the first lookup).
    pub hit_rate: Option<f64>,
    /// Bytes the shared memory pool holds now (cache and running queries).
    pub memory_reserved: u64,
    /// The memory pool's bound (`memory_limit`).
    pub memory_limit: u64,
}

/// What `cache clear` released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cleared {
    /// Chunks released.
    pub entries: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// What `cache warm` read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Warmed {
    /// The table.
    pub table: String,
    /// The layout warmed (the active one).
    pub layout: String,
    /// Columns read, hottest first.
    pub columns: Vec<String>,
    /// True when the columns come from the logged workload, false when there was none and
    /// every column was read.
    pub from_workload: bool,
    /// Chunks read into the cache.
    pub chunks: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Chunks that were cached already.
    pub already_cached: u64,
    /// The cache filled up before every chunk was read.
    pub full: bool,
    /// Time taken, in milliseconds.
    pub elapsed_ms: u64,
}

impl Workspace {
    /// The column-chunk cache, or why there is none.
    fn chunk_cache(&self) -> Result<&Arc<ChunkCache>, DbError> {
        self.engine_runtime()
            .and_then(|r| r.chunk_cache())
            .ok_or(DbError::CacheOff)
    }

    /// The cache's statistics, after releasing the entries of files that are gone.
    pub fn cache_stats(&self) -> Result<CacheStats, DbError> {
        let cache = self.chunk_cache()?;
        cache.release_missing();
        let stats = cache.stats();
        let memory = self.engine_cache_stats().unwrap_or_default();
        Ok(CacheStats {
            cache: stats,
            hit_rate: stats.hit_rate(),
            memory_reserved: memory.memory_reserved,
            memory_limit: self.config().memory_limit(),
        })
    }

    /// Releases the cached chunks of `table` (every layout of it), or of everything.
    pub fn cache_clear(&self, table: Option<&TableName>) -> Result<Cleared, DbError> {
        let cache = self.chunk_cache()?;
        if let Some(t) = table {
            self.require_table(t)?;
        }
        let (entries, bytes) = match (table, self.remote_data()) {
            (Some(t), Some(root)) => cache.clear_prefix(Some(&root.child(t.as_str())?.prefix)),
            (t, _) => cache.clear_under(t.map(|t| self.table_dir(t)).as_deref()),
        };
        Ok(Cleared { entries, bytes })
    }

    /// Reads the hot columns of `table`'s active layout into the cache: the columns its logged
    /// queries (of the lookback window) read, filter, join, group or order by, most used first;
    /// every column when nothing is logged.
    pub async fn cache_warm(&self, table: &TableName) -> Result<Warmed, DbError> {
        let cache = Arc::clone(self.chunk_cache()?);
        let record = self.require_table(table)?;
        let layout = record.active_layout.clone();
        let started = Instant::now();
        let (columns, from_workload) = self.hot_columns(table).await?;
        let manifest = self.layout_manifest(table, &layout)?;
        let location = self.layout_location(table, &layout)?;
        let mut warmed = Warmed {
            table: table.to_string(),
            layout: layout.to_string(),
            from_workload,
            ..Warmed::default()
        };
        for column in columns {
            let report = warm_columns(&cache, &location, &manifest, std::slice::from_ref(&column))?;
            warmed.columns.push(column);
            warmed.chunks += report.chunks;
            warmed.bytes += report.bytes;
            warmed.already_cached += report.already_cached;
            if report.full {
                warmed.full = true;
                break;
            }
        }
        warmed.elapsed_ms = duration_ms(started.elapsed());
        Ok(warmed)
    }

    /// The columns the logged workload of `table` uses, most used first (true), or every
    /// column of the table when nothing is logged (false).
    async fn hot_columns(&self, table: &TableName) -> Result<(Vec<String>, bool), DbError> {
        match self.analyze_workload(table, None, false).await {
            Ok((analysis, _)) => {
                let mut used: Vec<_> = analysis
                    .profile
                    .columns
                    .iter()
                    .map(|c| {
                        let uses = c.projected + c.filtered + c.joined + c.grouped + c.ordered;
                        (uses, c.column.clone())
                    })
                    .filter(|(uses, _)| *uses > 0)
                    .collect();
                used.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
                Ok((used.into_iter().map(|(_, c)| c).collect(), true))
            }
            Err(DbError::NoLoggedQueries { .. }) => {
                let schema = self.table_schema(table)?;
                let all = schema.fields().iter().map(|f| f.name().clone()).collect();
                Ok((all, false))
            }
            Err(e) => Err(e),
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Asks the `dbopt serve` at `server` (e.g. `http://127.0.0.1:9090`) for `path` (GET, or POST
/// when `post`) and returns its JSON answer; the server's own error message when it refuses.
pub fn ask_server(server: &str, path: &str, post: bool) -> Result<String, DbError> {
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_recv_response(Some(Duration::from_secs(600)))
        .build()
        .into();
    let unreachable = |e: ureq::Error| {
        DbError::ServerUnreachable(format!(
            "cannot reach dbopt serve at {server}: {}; start it with `dbopt serve --sql-addr ...` or pass --server",
            dbopt_core::text::first_line(&e.to_string())
        ))
    };
    let response = if post {
        agent.post(&url).send_empty().map_err(unreachable)?
    } else {
        agent.get(&url).call().map_err(unreachable)?
    };
    let status = response.status().as_u16();
    let body = response.into_body().read_to_string().map_err(unreachable)?;
    match status {
        200 => Ok(body),
        400..=499 => Err(DbError::BadArgument(body.trim().to_string())),
        _ => Err(DbError::ServerFailed(body.trim().to_string())),
    }
}

/// Reads the chunks of `columns` of the layout at `location` (files as its manifest lists
/// them) into `cache`: from local disk, or by range requests from object storage.
fn warm_columns(
    cache: &ChunkCache,
    location: &LayoutDir,
    manifest: &LayoutManifest,
    columns: &[String],
) -> Result<WarmReport, DbError> {
    Ok(match location {
        LayoutDir::Local(dir) => {
            let files: Vec<_> = manifest.files.iter().map(|f| dir.join(&f.path)).collect();
            cache.warm(&files, columns)?
        }
        LayoutDir::Remote(dir) => {
            let files: Vec<_> = manifest
                .files
                .iter()
                .map(|f| (f.path.clone(), f.size_bytes))
                .collect();
            cache.warm_objects(dir, &files, columns)?
        }
    })
}
