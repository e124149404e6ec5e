//! Object storage: a location given as a URL (`s3://bucket/prefix/`, `gs://bucket/prefix/`,
//! `az://container/prefix/`) opened through the `object_store` crate, with credentials,
//! region and endpoint from each cloud's standard environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, ...;
//! `GOOGLE_SERVICE_ACCOUNT`, ...; `AZURE_STORAGE_ACCOUNT_NAME`, ...). An S3 endpoint given as
//! `http://` (an S3-compatible server on the network, such as MinIO or moto) is allowed
//! without TLS and addressed path-style.
//!
//! Guarantees:
//! - **Checked when opened.** [`open_dir`] lists the prefix before anything is read: an
//!   endpoint that does not answer, credentials the store refuses and a bucket that does not
//!   exist are [`EngineError::Store`] naming the location and the setting to fix (the user's
//!   to fix: exit 2).
//! - **Failures during work are the machine's.** A request that still fails after its retries
//!   (3 within 30 s, with backoff; a connection that does not open in 5 s fails) is
//!   [`EngineError::StoreFailed`] (exit 1), unless the store says the credentials or the object
//!   are wrong.
//! - **Range reads.** Parquet is read through DataFusion's object-store scans and
//!   `ParquetObjectReader`: footers and the pages a scan needs, by range requests, never whole
//!   files.

use crate::EngineError;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::prelude::SessionContext;
use dbopt_core::text::first_line;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectMeta, ObjectStore, RetryConfig};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Part size of a multipart upload.
pub const UPLOAD_PART_BYTES: usize = 8 << 20;
/// Parts of one upload in flight at once (memory held: about this many parts).
pub const UPLOAD_PARTS_IN_FLIGHT: usize = 4;

/// URL schemes read through object storage.
const SCHEMES: &[&str] = &["s3", "s3a", "gs", "az", "abfs", "abfss", "azure"];

/// A directory (a prefix) on object storage, opened and checked.
#[derive(Debug, Clone)]
pub struct RemoteDir {
    /// The location as given, ending in `/`.
    pub url: Url,
    /// The store that holds it.
    pub store: Arc<dyn ObjectStore>,
    /// The prefix inside the store.
    pub prefix: ObjectPath,
}

/// True when `location` is an object-storage URL (`s3://`, `gs://`, `az://`, ...) rather than
/// a local path.
pub fn is_remote(location: &str) -> bool {
    location
        .split_once("://")
        .is_some_and(|(scheme, _)| SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
}

/// Opens the object-storage directory `location` and lists it once, so a location that
/// cannot be read fails here, naming the reason, before any work starts.
pub async fn open_dir(location: &str) -> Result<RemoteDir, EngineError> {
    let text = if location.ends_with('/') {
        location.to_string()
    } else {
        format!("{location}/")
    };
    let url = Url::parse(&text).map_err(|e| {
        EngineError::Store(format!(
            "{location} is not a valid URL ({e}): write it as s3://bucket/prefix/"
        ))
    })?;
    let store = build_store(&url)?;
    let prefix = ObjectPath::from_url_path(url.path())
        .map_err(|e| EngineError::Store(format!("{location} has an invalid object path: {e}")))?;
    let dir = RemoteDir { url, store, prefix };
    dir.store
        .list_with_delimiter(Some(&dir.prefix))
        .await
        .map_err(|e| dir.error(e, true))?;
    Ok(dir)
}

/// The store for `url`, configured from the environment, with bounded retries and timeouts.
fn build_store(url: &Url) -> Result<Arc<dyn ObjectStore>, EngineError> {
    let retry = RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(30),
        ..RetryConfig::default()
    };
    let client = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(120));
    let invalid = |e: object_store::Error| {
        EngineError::Store(format!("cannot open {url}: {}", first_line(&e.to_string())))
    };
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "s3" | "s3a" => {
            let mut builder = object_store::aws::AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .with_retry(retry)
                .with_client_options(client);
            if let Some(endpoint) = s3_endpoint()
                && endpoint.starts_with("http://")
                && std::env::var_os("AWS_ALLOW_HTTP").is_none()
            {
                builder = builder.with_allow_http(true);
            }
            if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            {
                builder = builder.with_region("us-east-1");
            }
            Arc::new(builder.build().map_err(invalid)?)
        }
        "gs" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry)
                .with_client_options(client)
                .build()
                .map_err(invalid)?,
        ),
        _ => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry)
                .with_client_options(client)
                .build()
                .map_err(invalid)?,
        ),
    };
    Ok(store)
}

/// An object-store registry that opens `s3://`, `gs://` and `az://` buckets on first use,
/// configured from the environment as [`open_dir`] does, and keeps them for the next request.
/// Local files and stores registered explicitly are served as DataFusion's default registry
/// serves them. A Ballista scheduler plans with it and its executors read with it, so a
/// cluster started with the same environment as the client reads the same bucket.
#[derive(Debug, Default)]
pub struct EnvStoreRegistry {
    stores: datafusion::execution::object_store::DefaultObjectStoreRegistry,
}

impl EnvStoreRegistry {
    /// A registry holding only the local file system until a bucket is asked for.
    pub fn new() -> Self {
        Self::default()
    }
}

impl datafusion::execution::object_store::ObjectStoreRegistry for EnvStoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        self.stores.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.stores.get_store(url) {
            return Ok(store);
        }
        if !is_remote(url.as_str()) {
            return self.stores.get_store(url);
        }
        let store = build_store(url)
            .map_err(|e| datafusion::error::DataFusionError::Configuration(e.to_string()))?;
        self.stores.register_store(url, store.clone());
        Ok(store)
    }
}

/// Runs `future` to completion from synchronous code (a manifest or footer read), on a
/// runtime of its own in a scoped thread, so it works inside and outside an async context.
pub fn block_on<F>(future: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    static RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dbopt-store")
            .enable_all()
            .build()
            .expect("a two-thread runtime starts, as the process's own did")
    });
    std::thread::scope(|s| {
        s.spawn(|| RUNTIME.block_on(future))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Every file under the local directory `dir`, as `/`-separated relative paths.
pub(crate) fn local_files(dir: &std::path::Path) -> Result<Vec<String>, EngineError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| EngineError::io(format!("reading {}", d.display()), e))?;
        for entry in entries {
            let path = entry
                .map_err(|e| EngineError::io(format!("reading {}", d.display()), e))?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The S3 endpoint the environment sets, if any.
fn s3_endpoint() -> Option<String> {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .iter()
        .find_map(|k| std::env::var(k).ok())
}

impl RemoteDir {
    /// The directory `relative` under this one (a `/`-separated path).
    pub fn child(&self, relative: &str) -> Result<RemoteDir, EngineError> {
        let relative = relative.trim_matches('/');
        let url = self.url.join(&format!("{relative}/")).map_err(|e| {
            EngineError::Store(format!("{}{relative}/ is not a valid URL: {e}", self.url))
        })?;
        Ok(RemoteDir {
            url,
            store: self.store.clone(),
            prefix: self.object(relative),
        })
    }

    /// The names of the directories (common prefixes) directly under this one.
    pub async fn list_dirs(&self) -> Result<Vec<String>, EngineError> {
        let listing = self
            .store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map_err(|e| self.error(e, false))?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Deletes every object under this directory; returns how many.
    pub async fn delete_all(&self) -> Result<usize, EngineError> {
        self.delete_unless(|_| false).await
    }

    /// Deletes every object under this directory (markers included) whose relative path
    /// `keep` refuses; returns how many.
    pub async fn delete_unless(&self, keep: impl Fn(&str) -> bool) -> Result<usize, EngineError> {
        use object_store::ObjectStoreExt;
        let mut deleted = 0;
        for object in self.list_objects().await? {
            if keep(&self.relative(&object.location)) {
                continue;
            }
            match self.store.delete(&object.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(e) => return Err(self.error(e, false)),
            }
        }
        Ok(deleted)
    }

    /// Uploads every file under the local directory `local` to this directory, keeping
    /// relative paths, `last` (the manifest) after all the others, so a reader that finds
    /// `last` finds the rest. Returns the bytes uploaded.
    pub async fn upload_dir(
        &self,
        local: &std::path::Path,
        last: &str,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, EngineError> {
        let mut files = local_files(local)?;
        files.sort_by_key(|rel| rel == last);
        let mut sent = 0;
        for rel in &files {
            sent += self.upload(&local.join(rel), rel, progress).await?;
        }
        Ok(sent)
    }
    /// Every object under the prefix (at any depth), sorted by path, leaving out names that
    /// start with `.` or `_` (markers, temporary uploads), as a local directory walk does.
    pub async fn list(&self) -> Result<Vec<ObjectMeta>, EngineError> {
        let mut objects = self.list_objects().await?;
        objects.retain(|o| {
            self.relative(&o.location)
                .split('/')
                .all(|part| !part.starts_with('.') && !part.starts_with('_'))
        });
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(objects)
    }

    /// `object`'s path relative to the prefix.
    pub fn relative(&self, object: &ObjectPath) -> String {
        let full = object.as_ref();
        let prefix = self.prefix.as_ref();
        full.strip_prefix(prefix)
            .unwrap_or(full)
            .trim_start_matches('/')
            .to_string()
    }

    /// The object at `relative` (a `/`-separated path under the prefix).
    pub fn object(&self, relative: &str) -> ObjectPath {
        let prefix = self.prefix.as_ref();
        if prefix.is_empty() {
            ObjectPath::from(relative)
        } else {
            ObjectPath::from(format!("{prefix}/{relative}"))
        }
    }

    /// Uploads the local file `local` as `relative` under the prefix by a multipart upload
    /// (`UPLOAD_PART_BYTES` parts, at most `UPLOAD_PARTS_IN_FLIGHT` in flight), calling
    /// `progress` with the bytes sent. The object appears whole when the upload completes; a
    /// failed upload is aborted, leaving nothing. Returns the bytes uploaded.
    pub async fn upload(
        &self,
        local: &std::path::Path,
        relative: &str,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, EngineError> {
        use object_store::ObjectStoreExt;
        use std::io::Read;
        let location = self.object(relative);
        let mut file = std::fs::File::open(local)
            .map_err(|e| EngineError::io(format!("opening {}", local.display()), e))?;
        let upload = self
            .store
            .put_multipart(&location)
            .await
            .map_err(|e| self.error(e, false))?;
        let mut writer =
            object_store::WriteMultipart::new_with_chunk_size(upload, UPLOAD_PART_BYTES);
        let mut buf = vec![0u8; 1 << 20];
        let mut sent = 0u64;
        let failed = loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break None,
                Ok(n) => n,
                Err(e) => break Some(EngineError::io(format!("reading {}", local.display()), e)),
            };
            if let Err(e) = writer.wait_for_capacity(UPLOAD_PARTS_IN_FLIGHT).await {
                break Some(self.error(e, false));
            }
            writer.write(&buf[..n]);
            sent += n as u64;
            progress(n as u64);
        };
        if let Some(e) = failed {
            let _ = writer.abort().await;
            return Err(e);
        }
        writer.finish().await.map_err(|e| self.error(e, false))?;
        Ok(sent)
    }

    /// Writes `bytes` as `relative` under the prefix in one request.
    pub async fn put(&self, relative: &str, bytes: Vec<u8>) -> Result<(), EngineError> {
        use object_store::ObjectStoreExt;
        self.store
            .put(&self.object(relative), bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| self.error(e, false))
    }

    /// Writes `manifest` as the layout manifest (`_dbopt_layout.json`) under the prefix: the
    /// last object of a layout, so a reader that finds it finds the rest.
    pub async fn put_manifest(
        &self,
        manifest: &dbopt_core::LayoutManifest,
    ) -> Result<(), EngineError> {
        let text = serde_json::to_vec_pretty(manifest).expect("a manifest always serializes");
        self.put(dbopt_core::layout::MANIFEST_FILE, text).await
    }

    /// The bytes of `relative` under the prefix, or None when there is no such object.
    pub async fn get(&self, relative: &str) -> Result<Option<Vec<u8>>, EngineError> {
        use object_store::ObjectStoreExt;
        match self.store.get(&self.object(relative)).await {
            Ok(found) => Ok(Some(
                found
                    .bytes()
                    .await
                    .map_err(|e| self.error(e, false))?
                    .to_vec(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(e, false)),
        }
    }

    /// The size and time of the object `relative`, or None when there is no such object.
    pub async fn head(&self, relative: &str) -> Result<Option<ObjectMeta>, EngineError> {
        use object_store::ObjectStoreExt;
        match self.store.head(&self.object(relative)).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(e, false)),
        }
    }

    /// Writes `bytes` as `relative` unless an object is there already: false when one is (a
    /// conditional put, `If-None-Match: *` on S3; the store decides, so two writers racing
    /// for one name cannot both win).
    pub async fn put_if_absent(&self, relative: &str, bytes: Vec<u8>) -> Result<bool, EngineError> {
        let options = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.object(relative), bytes.into(), options)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(object_store::Error::NotImplemented { .. }) => Err(EngineError::Store(format!(
                "{} does not support conditional writes (put-if-absent), which a Delta commit needs so that it never overwrites another writer's: use a store that does (S3 and S3-compatible servers with If-None-Match, GCS, Azure)",
                self.url
            ))),
            Err(e) => Err(self.error(e, false)),
        }
    }

    /// True when `other` is a prefix of the same bucket (or container), so objects can be
    /// copied between the two by the store, server-side.
    pub fn same_bucket(&self, other: &RemoteDir) -> bool {
        self.url.scheme() == other.url.scheme() && self.url.host_str() == other.url.host_str()
    }

    /// Copies the object `from` (under `source`, a prefix of the same bucket) to `relative`
    /// under this prefix, server-side: no byte passes through this process, and the copy
    /// appears whole. False when `from` does not exist.
    pub async fn copy_from(
        &self,
        source: &RemoteDir,
        from: &str,
        relative: &str,
    ) -> Result<bool, EngineError> {
        use object_store::ObjectStoreExt;
        match self
            .store
            .copy(&source.object(from), &self.object(relative))
            .await
        {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error(e, false)),
        }
    }

    /// Every object under the prefix, at any depth, markers included.
    async fn list_objects(&self) -> Result<Vec<ObjectMeta>, EngineError> {
        self.store
            .list(Some(&self.prefix))
            .try_collect()
            .await
            .map_err(|e| self.error(e, false))
    }

    /// Every object under the prefix, at any depth, markers included, as relative paths.
    pub async fn list_all(&self) -> Result<Vec<String>, EngineError> {
        let objects = self.list_objects().await?;
        Ok(objects.iter().map(|o| self.relative(&o.location)).collect())
    }

    /// Lets `ctx`'s scans read this store (by the URL's scheme and bucket), unless the
    /// runtime reads the bucket already: a store registered first (through the column-chunk
    /// cache, see `EngineRuntime::register_store`) is kept.
    pub fn register(&self, ctx: &SessionContext) {
        let env = ctx.runtime_env();
        if env.object_store_registry.get_store(&self.url).is_err() {
            env.register_object_store(&self.url, self.store.clone());
        }
    }

    /// The directory as a DataFusion listing location.
    pub fn listing_url(&self) -> Result<ListingTableUrl, EngineError> {
        ListingTableUrl::parse(self.url.as_str())
            .map_err(|e| EngineError::Store(format!("{} cannot be listed: {e}", self.url)))
    }

    /// What a failed request means: at opening (`probing`) every failure is a setting to fix;
    /// later only refused credentials and missing objects are, the rest is the machine's.
    pub fn error(&self, e: object_store::Error, probing: bool) -> EngineError {
        let full = e.to_string();
        let text = first_line(&full);
        let endpoint = s3_endpoint()
            .filter(|_| self.url.scheme().starts_with("s3"))
            .map(|e| format!(" at {e}"))
            .unwrap_or_default();
        let has = |needle: &str| full.to_ascii_lowercase().contains(needle);
        let refused = "the store refused the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the cloud's own credential variables)";
        let setting = match &e {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => Some(refused),
            _ if has("invalidaccesskeyid")
                || has("signaturedoesnotmatch")
                || has("accessdenied")
                || has("403 forbidden") =>
            {
                Some(refused)
            }
            // Listing a prefix that holds nothing succeeds; a listing that is not found is a
            // bucket that is not there.
            _ if has("nosuchbucket") || (probing && has("404 not found")) => {
                Some("the bucket does not exist: create it or fix the URL")
            }
            object_store::Error::NotFound { .. } => {
                Some("it does not exist: check the bucket and the prefix")
            }
            _ if probing => Some(
                "the store did not answer: check the endpoint (AWS_ENDPOINT_URL for an S3-compatible server) and that it runs",
            ),
            _ => None,
        };
        match setting {
            Some(fix) => EngineError::Store(format!(
                "cannot read {}{endpoint}: {fix} ({text})",
                self.url
            )),
            None => {
                EngineError::StoreFailed(format!("reading {}{endpoint} failed: {text}", self.url))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_storage_urls_are_told_from_local_paths() {
        assert!(is_remote("s3://lake/events/"));
        assert!(is_remote("S3://lake"));
        assert!(is_remote("gs://b/p"));
        assert!(is_remote("az://container/p"));
        assert!(!is_remote("/data/events"));
        assert!(!is_remote("events.parquet"));
        assert!(!is_remote("file:///data/events"));
        assert!(!is_remote("http://example.com/x.parquet"));
    }

    #[test]
    fn the_env_registry_opens_a_bucket_once_and_serves_local_files() {
        use datafusion::execution::object_store::ObjectStoreRegistry;
        let registry = EnvStoreRegistry::new();
        let local = Url::parse("file:///tmp/x.parquet").unwrap();
        assert!(registry.get_store(&local).is_ok());
        let bucket = Url::parse("s3://lake/events/layout_1/part-0.parquet").unwrap();
        let first = registry.get_store(&bucket).unwrap();
        let again = registry
            .get_store(&Url::parse("s3://lake/other/file.parquet").unwrap())
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again), "one store per bucket");
        let other = registry
            .get_store(&Url::parse("s3://archive/x").unwrap())
            .unwrap();
        assert!(
            !Arc::ptr_eq(&first, &other),
            "another bucket, another store"
        );
        assert!(
            registry
                .get_store(&Url::parse("hdfs://nn/x").unwrap())
                .is_err()
        );
    }
}
