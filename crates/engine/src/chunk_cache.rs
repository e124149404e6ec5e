//! The column-chunk cache a long-running server keeps: the bytes of the Parquet column chunks
//! queries read stay in memory, so the next query that needs them opens no file.
//!
//! It sits under DataFusion as an object store ([`CachingStore`], over the local file system
//! and, with `DATA_DIR` on object storage, over the bucket's store):
//! DataFusion's Parquet reader asks for byte ranges, the store maps each range onto the column
//! chunk that holds it (from the footer the metadata cache already keeps) and answers from the
//! cache, reading the whole chunk once on a miss.
//!
//! Guarantees:
//! - Entries are keyed by (file, row group, column). Files live in immutable layout directories
//!   (`DATA_DIR/<table>/layout_<id>/`, the id a content hash), so an entry is never stale: a new
//!   layout is new keys. A dropped layout's entries are released by [`ChunkCache::release_missing`].
//! - The cache holds at most `max_bytes`, and every byte it holds is reserved in the engine's
//!   memory pool, so cache and queries together stay within `memory_limit`. A query that needs
//!   memory the pool does not have takes it from the cache ([`CacheYieldingPool`] evicts least
//!   recently used chunks first); a chunk that cannot be reserved is served without being cached.
//! - What is cached is the chunk's bytes as stored (compressed pages): decoding still runs per
//!   query, as DataFusion's Parquet scan decodes only the rows its filters select.
//! - Reads that are not inside one column chunk (footers, page indexes) pass straight through,
//!   and the scan's `bytes_scanned` metric is unchanged (it counts the ranges asked for).

use bytes::Bytes;
// The footer cache stores this type (the crate root exports a twin of the same name that the
// cache never holds).
use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// The memory consumer name the cache's reservation carries.
const CONSUMER: &str = "dbopt column-chunk cache";

/// One cached column chunk: a column of one row group of one file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    /// The file, as the object store names it (absolute path without the leading slash).
    pub path: Path,
    /// Row group index in the file.
    pub row_group: usize,
    /// Column index in the row group.
    pub column: usize,
}

/// What the column-chunk cache holds and how it has served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkCacheStats {
    /// Column chunks held.
    pub entries: u64,
    /// Bytes held.
    pub bytes: u64,
    /// The bound (`cache_max_bytes`).
    pub max_bytes: u64,
    /// Chunk lookups answered from memory.
    pub hits: u64,
    /// Chunk lookups that read the file.
    pub misses: u64,
    /// Chunks evicted to make room (bound or memory pool).
    pub evictions: u64,
    /// Bytes ever inserted.
    pub inserted_bytes: u64,
}

impl ChunkCacheStats {
    /// Hits over lookups (None before the first lookup).
    pub fn hit_rate(&self) -> Option<f64> {
        let lookups = self.hits + self.misses;
        (lookups > 0).then(|| self.hits as f64 / lookups as f64)
    }
}

/// What [`ChunkCache::warm`] loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WarmReport {
    /// Files read to the end.
    pub files: u64,
    /// Chunks read into the cache.
    pub chunks: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Chunks that were cached already.
    pub already_cached: u64,
    /// The cache filled up before every chunk was read.
    pub full: bool,
}

/// Least-recently-used order over the held chunks, and the memory they have reserved.
struct Lru {
    entries: HashMap<ChunkKey, (Bytes, u64)>,
    order: BTreeMap<u64, ChunkKey>,
    tick: u64,
    bytes: u64,
    reservation: MemoryReservation,
}

impl Lru {
    fn touch(&mut self, key: &ChunkKey) -> Option<Bytes> {
        self.tick += 1;
        let tick = self.tick;
        let (data, last) = self.entries.get_mut(key)?;
        self.order.remove(last);
        *last = tick;
        self.order.insert(tick, key.clone());
        Some(data.clone())
    }

    fn remove(&mut self, key: &ChunkKey) -> Option<u64> {
        let (data, tick) = self.entries.remove(key)?;
        self.order.remove(&tick);
        let len = data.len() as u64;
        self.bytes -= len;
        self.reservation.shrink(len as usize);
        Some(len)
    }

    /// Evicts the least recently used chunk; false when empty.
    fn evict_oldest(&mut self) -> bool {
        let Some((_, key)) = self.order.pop_first() else {
            return false;
        };
        let (data, _) = self
            .entries
            .remove(&key)
            .expect("every ordered key has an entry");
        self.bytes -= data.len() as u64;
        self.reservation.shrink(data.len());
        true
    }
}

/// The chunks of one file, sorted by their first byte.
struct FileChunks {
    chunks: Vec<(Range<u64>, usize, usize)>,
}

impl FileChunks {
    /// The chunk (range, row group, column) that holds all of `range`.
    fn holding(&self, range: &Range<u64>) -> Option<&(Range<u64>, usize, usize)> {
        let i = self
            .chunks
            .partition_point(|(r, _, _)| r.start <= range.start);
        let found = self.chunks.get(i.checked_sub(1)?)?;
        (range.end <= found.0.end).then_some(found)
    }
}

/// An LRU cache of Parquet column chunks under a byte bound, its memory reserved in a pool.
pub struct ChunkCache {
    max_bytes: u64,
    lru: Mutex<Lru>,
    files: Mutex<HashMap<Path, Arc<FileChunks>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    inserted: AtomicU64,
    /// Object paths of the buckets cached through (entries under them are kept until evicted:
    /// their files are not on local disk, where `release_missing` looks).
    remote_prefixes: Mutex<Vec<String>>,
}

impl fmt::Debug for ChunkCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl ChunkCache {
    /// An empty cache bounded by `max_bytes`, reserving what it holds in `pool`.
    pub fn new(max_bytes: u64, pool: &Arc<dyn MemoryPool>) -> Self {
        Self {
            max_bytes,
            lru: Mutex::new(Lru {
                entries: HashMap::new(),
                order: BTreeMap::new(),
                tick: 0,
                bytes: 0,
                reservation: MemoryConsumer::new(CONSUMER).register(pool),
            }),
            files: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            inserted: AtomicU64::new(0),
            remote_prefixes: Mutex::new(Vec::new()),
        }
    }

    fn lru(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.lru
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached chunk `key`, counted as a hit or a miss.
    pub fn get(&self, key: &ChunkKey) -> Option<Bytes> {
        let found = self.lru().touch(key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Caches `data` as `key`, evicting least recently used chunks to stay within the bound and
    /// the memory pool. Returns false when the chunk is not cached (larger than the bound, or
    /// the pool has no room even with the cache empty).
    pub fn insert(&self, key: ChunkKey, data: Bytes) -> bool {
        let len = data.len() as u64;
        if len > self.max_bytes {
            return false;
        }
        let mut lru = self.lru();
        if lru.entries.contains_key(&key) {
            return true;
        }
        let mut evicted = 0;
        while lru.bytes + len > self.max_bytes && lru.evict_oldest() {
            evicted += 1;
        }
        let reserved = loop {
            if lru.reservation.try_grow(len as usize).is_ok() {
                break true;
            }
            if !lru.evict_oldest() {
                break false;
            }
            evicted += 1;
        };
        self.evictions.fetch_add(evicted, Ordering::Relaxed);
        if !reserved {
            return false;
        }
        lru.tick += 1;
        let tick = lru.tick;
        lru.order.insert(tick, key.clone());
        lru.entries.insert(key, (data, tick));
        lru.bytes += len;
        self.inserted.fetch_add(len, Ordering::Relaxed);
        true
    }

    /// Evicts least recently used chunks until `wanted` bytes are freed or the cache is empty;
    /// gives up at once when another thread holds the cache (it may be the one asking).
    /// Returns the bytes freed.
    pub fn free(&self, wanted: u64) -> u64 {
        let Ok(mut lru) = self.lru.try_lock() else {
            return 0;
        };
        let before = lru.bytes;
        let mut evicted = 0;
        while before - lru.bytes < wanted && lru.evict_oldest() {
            evicted += 1;
        }
        self.evictions.fetch_add(evicted, Ordering::Relaxed);
        before - lru.bytes
    }

    /// Drops the entries of files under `dir` (every entry when None); returns (chunks, bytes)
    /// released.
    pub fn clear_under(&self, dir: Option<&std::path::Path>) -> (u64, u64) {
        let prefix = dir.and_then(|d| Path::from_absolute_path(d).ok());
        self.clear_prefix(prefix.as_ref())
    }

    /// Releases the entries of files under the object path `prefix` (every entry when None);
    /// returns (chunks, bytes) released.
    pub fn clear_prefix(&self, prefix: Option<&Path>) -> (u64, u64) {
        let under = |p: &Path| {
            prefix.is_none_or(|pre| p.as_ref().starts_with(&format!("{}/", pre.as_ref())))
        };
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|p, _| !under(p));
        self.remove_where(|k| under(&k.path))
    }

    /// Drops the entries of files that no longer exist (a dropped layout's); returns (chunks,
    /// bytes) released.
    pub fn release_missing(&self) -> (u64, u64) {
        let remote = self
            .remote_prefixes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let gone = |p: &Path| {
            !remote.iter().any(|r| p.as_ref().starts_with(r.as_str()))
                && !std::path::Path::new(&format!("/{}", p.as_ref())).exists()
        };
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|p, _| !gone(p));
        self.remove_where(|k| gone(&k.path))
    }

    fn remove_where(&self, doomed: impl Fn(&ChunkKey) -> bool) -> (u64, u64) {
        let mut lru = self.lru();
        let keys: Vec<ChunkKey> = lru.entries.keys().filter(|k| doomed(k)).cloned().collect();
        let bytes: u64 = keys.iter().filter_map(|k| lru.remove(k)).sum();
        (keys.len() as u64, bytes)
    }

    /// Reads the chunks of `columns` in every row group of the Parquet files `files` into the
    /// cache (as a query reading them would), skipping chunks already held. Stops early when
    /// the cache is full, since further chunks would only evict the first ones.
    pub fn warm(
        &self,
        files: &[std::path::PathBuf],
        columns: &[String],
    ) -> Result<WarmReport, crate::EngineError> {
        use std::io::{Read, Seek, SeekFrom};
        let mut report = WarmReport::default();
        for file in files {
            let path = Path::from_absolute_path(file).map_err(|e| {
                crate::EngineError::Source(format!("bad file path {}: {e}", file.display()))
            })?;
            let mut handle = std::fs::File::open(file)
                .map_err(|e| crate::EngineError::io(format!("opening {}", file.display()), e))?;
            let ranges = crate::footer::column_chunk_ranges(file, columns)?;
            let read = |start: u64, len: u64| {
                let mut data = vec![0u8; len as usize];
                handle
                    .seek(SeekFrom::Start(start))
                    .and_then(|_| handle.read_exact(&mut data))
                    .map_err(|e| {
                        crate::EngineError::io(format!("reading {}", file.display()), e)
                    })?;
                Ok(Bytes::from(data))
            };
            if !self.warm_file(&path, &ranges, read, &mut report)? {
                return Ok(report);
            }
        }
        Ok(report)
    }

    /// [`Self::warm`] for the Parquet files `files` (paths under `dir`, with their sizes) on
    /// object storage: footers and chunks by range requests, keyed as the bucket's
    /// [`CachingStore`] keys them.
    pub fn warm_objects(
        &self,
        dir: &crate::store::RemoteDir,
        files: &[(String, u64)],
        columns: &[String],
    ) -> Result<WarmReport, crate::EngineError> {
        use object_store::ObjectStoreExt;
        let layout = crate::layout_dir::LayoutDir::Remote(dir.clone());
        let mut report = WarmReport::default();
        for (relative, size) in files {
            let (_, footer) = layout.footer(relative, *size)?;
            let ranges = crate::footer::chunk_ranges_in(&footer, columns);
            let path = dir.object(relative);
            let read = |start: u64, len: u64| {
                crate::store::block_on(dir.store.get_range(&path, start..start + len))
                    .map_err(|e| dir.error(e, false))
            };
            if !self.warm_file(&path, &ranges, read, &mut report)? {
                return Ok(report);
            }
        }
        Ok(report)
    }

    /// Reads the chunks `ranges` of the file `path` (by `read(start, len)`) into the cache,
    /// counting into `report`; false when the cache filled up.
    fn warm_file(
        &self,
        path: &Path,
        ranges: &[(usize, usize, u64, u64)],
        mut read: impl FnMut(u64, u64) -> Result<Bytes, crate::EngineError>,
        report: &mut WarmReport,
    ) -> Result<bool, crate::EngineError> {
        for &(row_group, column, start, len) in ranges {
            let key = ChunkKey {
                path: path.clone(),
                row_group,
                column,
            };
            if self.lru().entries.contains_key(&key) {
                report.already_cached += 1;
                continue;
            }
            if self.stats().bytes + len > self.max_bytes {
                report.full = true;
                return Ok(false);
            }
            if self.insert(key, read(start, len)?) {
                report.chunks += 1;
                report.bytes += len;
            } else {
                report.full = true;
                return Ok(false);
            }
        }
        report.files += 1;
        Ok(true)
    }

    /// Notes that `prefix` (an object path) is a bucket's, cached through a [`CachingStore`]
    /// over object storage.
    pub fn note_remote_prefix(&self, prefix: &str) {
        let mut prefixes = self
            .remote_prefixes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !prefixes.iter().any(|p| p == prefix) {
            prefixes.push(prefix.to_string());
        }
    }

    /// What the cache holds and how it has served.
    pub fn stats(&self) -> ChunkCacheStats {
        let lru = self.lru();
        ChunkCacheStats {
            entries: lru.entries.len() as u64,
            bytes: lru.bytes,
            max_bytes: self.max_bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            inserted_bytes: self.inserted.load(Ordering::Relaxed),
        }
    }

    /// The chunk layout of `path`, from `metadata` (the footer cache) the first time.
    fn chunks_of(&self, path: &Path, metadata: &FileMetadataCache) -> Option<Arc<FileChunks>> {
        let mut files = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = files.get(path) {
            return Some(Arc::clone(found));
        }
        let entry = metadata.get(path)?;
        let footer = entry
            .file_metadata
            .as_any()
            .downcast_ref::<CachedParquetMetaData>()?
            .parquet_metadata();
        let mut chunks: Vec<_> = footer
            .row_groups()
            .iter()
            .enumerate()
            .flat_map(|(rg, group)| {
                group.columns().iter().enumerate().map(move |(col, c)| {
                    let (start, len) = c.byte_range();
                    (start..start + len, rg, col)
                })
            })
            .collect();
        chunks.sort_by_key(|(r, _, _)| r.start);
        let chunks = Arc::new(FileChunks { chunks });
        files.insert(path.clone(), Arc::clone(&chunks));
        Some(chunks)
    }
}

/// An object store over the local file system that answers column-chunk reads from a
/// [`ChunkCache`]; everything else goes to the inner store unchanged.
pub struct CachingStore {
    inner: Arc<dyn ObjectStore>,
    cache: Arc<ChunkCache>,
    metadata: Arc<FileMetadataCache>,
}

impl CachingStore {
    /// Wraps `inner`, finding chunk boundaries in the footers `metadata` caches.
    pub fn new(
        inner: Arc<dyn ObjectStore>,
        cache: Arc<ChunkCache>,
        metadata: Arc<FileMetadataCache>,
    ) -> Self {
        Self {
            inner,
            cache,
            metadata,
        }
    }

    /// Reads `ranges` of `location`, each inside a chunk of `chunks`, from the cache, reading
    /// the missing chunks (whole) and the ranges outside any chunk in one call to the inner store.
    async fn cached_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
        chunks: &FileChunks,
    ) -> object_store::Result<Vec<Bytes>> {
        let mut answers: Vec<Option<Bytes>> = vec![None; ranges.len()];
        // What to read: (range to fetch, the chunk key when it is a whole chunk).
        let mut fetch: Vec<(Range<u64>, Option<ChunkKey>)> = Vec::new();
        // Where each unanswered range comes from: (answer index, fetch index).
        let mut pending: Vec<(usize, usize)> = Vec::new();
        for (i, range) in ranges.iter().enumerate() {
            let Some((chunk, row_group, column)) = chunks.holding(range) else {
                pending.push((i, fetch.len()));
                fetch.push((range.clone(), None));
                continue;
            };
            let key = ChunkKey {
                path: location.clone(),
                row_group: *row_group,
                column: *column,
            };
            if let Some(at) = fetch.iter().position(|(_, k)| k.as_ref() == Some(&key)) {
                pending.push((i, at));
            } else if let Some(data) = self.cache.get(&key) {
                answers[i] = Some(slice(&data, chunk, range));
            } else {
                pending.push((i, fetch.len()));
                fetch.push((chunk.clone(), Some(key)));
            }
        }
        if !fetch.is_empty() {
            let wanted: Vec<Range<u64>> = fetch.iter().map(|(r, _)| r.clone()).collect();
            let read = self.inner.get_ranges(location, &wanted).await?;
            for (i, at) in pending {
                let (fetched, key) = &fetch[at];
                answers[i] = Some(if key.is_some() {
                    slice(&read[at], fetched, &ranges[i])
                } else {
                    read[at].clone()
                });
            }
            for ((_, key), data) in fetch.into_iter().zip(read) {
                if let Some(key) = key {
                    self.cache.insert(key, data);
                }
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.expect("every range answered"))
            .collect())
    }
}

/// The part of `data` (the bytes of `chunk`) that `range` covers.
fn slice(data: &Bytes, chunk: &Range<u64>, range: &Range<u64>) -> Bytes {
    data.slice((range.start - chunk.start) as usize..(range.end - chunk.start) as usize)
}

impl fmt::Debug for CachingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CachingStore({:?})", self.inner)
    }
}

impl fmt::Display for CachingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CachingStore({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for CachingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let found = self.cache.chunks_of(location, self.metadata.as_ref());
        match found {
            Some(chunks) => self.cached_ranges(location, ranges, &chunks).await,
            None => self.inner.get_ranges(location, ranges).await,
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A memory pool that lets queries take memory back from the column-chunk cache: when a
/// query's reservation cannot grow, the cache evicts least recently used chunks and the
/// reservation is tried again.
#[derive(Debug)]
pub struct CacheYieldingPool {
    inner: Arc<dyn MemoryPool>,
    cache: Mutex<Weak<ChunkCache>>,
}

impl CacheYieldingPool {
    /// Wraps `inner`; the cache is attached once built ([`Self::attach`]).
    pub fn new(inner: Arc<dyn MemoryPool>) -> Self {
        Self {
            inner,
            cache: Mutex::new(Weak::new()),
        }
    }

    /// The cache queries may take memory from.
    pub fn attach(&self, cache: &Arc<ChunkCache>) {
        *self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::downgrade(cache);
    }
}

impl fmt::Display for CacheYieldingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (yielding the column-chunk cache)", self.inner)
    }
}

impl MemoryPool for CacheYieldingPool {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink);
    }

    fn try_grow(
        &self,
        reservation: &MemoryReservation,
        additional: usize,
    ) -> datafusion::error::Result<()> {
        let first = self.inner.try_grow(reservation, additional);
        if first.is_ok() || reservation.consumer().name() == CONSUMER {
            return first;
        }
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .upgrade();
        let Some(cache) = cache else { return first };
        // Free what the bound says is missing, then (the pool may be fair between consumers
        // rather than greedy) as much as was asked for.
        let missing = match self.inner.memory_limit() {
            MemoryLimit::Finite(limit) => (self.inner.reserved() + additional)
                .saturating_sub(limit)
                .max(1),
            _ => additional,
        };
        for wanted in [missing, additional] {
            if cache.free(wanted as u64) == 0 {
                break;
            }
            if self.inner.try_grow(reservation, additional).is_ok() {
                return Ok(());
            }
        }
        first
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    fn key(rg: usize) -> ChunkKey {
        ChunkKey {
            path: Path::from("data/t/layout_a/part-0.parquet"),
            row_group: rg,
            column: 0,
        }
    }

    fn bytes(n: usize) -> Bytes {
        Bytes::from(vec![7u8; n])
    }

    #[test]
    fn evicts_least_recently_used_to_stay_under_the_bound() {
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 20));
        let cache = ChunkCache::new(300, &pool);
        assert!(cache.insert(key(0), bytes(100)));
        assert!(cache.insert(key(1), bytes(100)));
        assert!(cache.insert(key(2), bytes(100)));
        assert!(cache.get(&key(0)).is_some(), "0 is now the most recent");
        assert!(cache.insert(key(3), bytes(100)));
        assert!(
            cache.get(&key(1)).is_none(),
            "1 was the least recently used"
        );
        assert!(cache.get(&key(0)).is_some());
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.bytes, stats.evictions), (3, 300, 1));
        assert_eq!((stats.hits, stats.misses), (2, 1));
        assert_eq!(
            pool.reserved(),
            300,
            "the pool holds exactly what the cache holds"
        );
        assert!(!cache.insert(key(9), bytes(301)), "larger than the bound");
    }

    #[test]
    fn the_pool_bounds_the_cache_and_queries_take_memory_back() {
        let pool = Arc::new(CacheYieldingPool::new(Arc::new(GreedyMemoryPool::new(250))));
        let dyn_pool: Arc<dyn MemoryPool> = pool.clone();
        let cache = Arc::new(ChunkCache::new(1000, &dyn_pool));
        pool.attach(&cache);
        assert!(cache.insert(key(0), bytes(100)));
        assert!(cache.insert(key(1), bytes(100)));
        assert!(cache.insert(key(2), bytes(100)), "evicts 0 to fit the pool");
        assert_eq!(cache.stats().bytes, 200);
        let query = MemoryConsumer::new("sort").register(&dyn_pool);
        query.try_grow(150).expect("the cache yields");
        assert_eq!(cache.stats().bytes, 100, "one chunk evicted for the query");
        assert!(cache.get(&key(2)).is_some(), "the most recent chunk stays");
        assert!(dyn_pool.reserved() <= 250);
        assert!(query.try_grow(200).is_err(), "nothing left to yield");
    }

    #[test]
    fn clear_under_a_directory_keeps_other_tables() {
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 20));
        let cache = ChunkCache::new(1 << 20, &pool);
        cache.insert(key(0), bytes(10));
        let other = ChunkKey {
            path: Path::from("data/tx/layout_b/part-0.parquet"),
            row_group: 0,
            column: 1,
        };
        cache.insert(other.clone(), bytes(20));
        assert_eq!(
            cache.clear_under(Some(std::path::Path::new("/data/t"))),
            (1, 10)
        );
        assert!(cache.get(&other).is_some(), "/data/tx is not under /data/t");
        assert_eq!(cache.clear_under(None), (1, 20));
        assert_eq!(pool.reserved(), 0);
    }

    #[test]
    fn a_range_maps_to_the_chunk_that_holds_it() {
        let file = FileChunks {
            chunks: vec![(4..100, 0, 0), (100..180, 0, 1), (180..400, 1, 0)],
        };
        assert_eq!(file.holding(&(120..150)).map(|c| (c.1, c.2)), Some((0, 1)));
        assert_eq!(file.holding(&(100..180)).map(|c| (c.1, c.2)), Some((0, 1)));
        assert!(file.holding(&(90..120)).is_none(), "spans two chunks");
        assert!(file.holding(&(0..4)).is_none(), "the magic bytes");
        assert!(file.holding(&(400..420)).is_none(), "the footer");
    }
}
