//! The workspace: resolved configuration, the catalog and the data directory, opened once.

use crate::DbError;
use dbopt_catalog::Catalog;
use dbopt_core::{Clock, Config, LayoutId, LayoutManifest, SystemClock, TableName};
use dbopt_engine::layout_dir::LayoutDir;
use dbopt_engine::store::RemoteDir;
use dbopt_engine::{EngineRuntime, EngineSettings, Session, new_session, new_session_in};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// An open dbopt workspace.
pub struct Workspace {
    config: Config,
    catalog: Catalog,
    data_dir: PathBuf,
    /// `DATA_DIR` on object storage (layouts live there; `data_dir` is then local work space).
    remote: Option<RemoteDir>,
    /// Manifests read from object storage, by the layout's URL (a published layout's manifest
    /// never changes, and every query registers every table).
    remote_manifests: Mutex<HashMap<String, LayoutManifest>>,
    /// The runtime this workspace's sessions share when its layouts are on object storage, so
    /// footers and page indexes fetched by one query are cached for the next (a local read is
    /// cheap; a request to the store is not).
    remote_runtime: std::sync::OnceLock<EngineRuntime>,
    clock: Arc<dyn Clock>,
    /// (table, fingerprint) -> cluster id, so a query shape is planned for its cluster once.
    clusters: Mutex<HashMap<(TableName, String), Option<String>>>,
    /// The engine runtime queries share (a server's); None: each session gets its own.
    engine: Option<EngineRuntime>,
    log_writer: Option<Arc<crate::log_writer::QueryLogWriter>>,
}

/// Creates a configured `spill_dir`; refuses one that cannot be created or is on a network
/// file system.
fn check_spill_dir(config: &Config) -> Result<(), DbError> {
    let Some(dir) = &config.settings().spill_dir else {
        return Ok(());
    };
    let invalid = |message: String| -> DbError {
        dbopt_core::CoreError::InvalidConfig {
            key: "spill_dir".into(),
            source_name: config
                .get("spill_dir")
                .map_or_else(String::new, |v| v.source.to_string()),
            message,
        }
        .into()
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Err(invalid(format!(
            "'{}' cannot be created ({e}): set spill_dir to a writable local directory",
            dir.display()
        )));
    }
    match crate::local_fs::network_fs_of(dir) {
        None => Ok(()),
        Some(fs) => Err(invalid(format!(
            "'{}' is on a network file system ({fs}): spill files must be local, set spill_dir to a local directory",
            dir.display()
        ))),
    }
}

impl Workspace {
    /// Opens (creating if needed) the data directory and catalog named by `config`.
    pub fn open(config: Config) -> Result<Self, DbError> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    /// Like `open` with an explicit clock (tests).
    pub fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Self, DbError> {
        let remote = open_remote_data(&config)?;
        let data_dir = match &remote {
            Some(_) => local_work_dir(&config),
            None => local_data_dir(&config),
        };
        std::fs::create_dir_all(&data_dir).map_err(|e| {
            DbError::io(format!("creating data directory {}", data_dir.display()), e)
        })?;
        let data_dir = std::path::absolute(&data_dir)
            .map_err(|e| DbError::io(format!("resolving {}", data_dir.display()), e))?;
        check_spill_dir(&config)?;
        let db = config.metadata_db();
        if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| DbError::io(format!("creating {}", parent.display()), e))?;
        }
        let catalog = Catalog::open(&db, clock.clone())?;
        let ws = Self {
            config,
            catalog,
            data_dir,
            remote,
            remote_manifests: Mutex::new(HashMap::new()),
            remote_runtime: std::sync::OnceLock::new(),
            clock,
            clusters: Mutex::new(HashMap::new()),
            engine: None,
            log_writer: None,
        };
        // A `--replace` killed halfway is completed or undone before anything reads the table.
        if let Err(e) = ws.repair_interrupted_replaces() {
            tracing::warn!("cannot repair an interrupted --replace: {e}");
        }
        Ok(ws)
    }

    /// This workspace with its query sessions opened in `runtime` (shared memory pool and
    /// metadata caches), as a long-running server wants.
    pub fn with_engine_runtime(mut self, runtime: EngineRuntime) -> Self {
        if let Some(remote) = &self.remote {
            runtime.register_store(remote);
        }
        self.engine = Some(runtime);
        self
    }

    /// The runtime of a workspace on object storage without a shared one: made once, the
    /// bucket's store registered in it, so its sessions share the footer cache.
    fn remote_runtime(&self, remote: &RemoteDir, settings: &EngineSettings) -> &EngineRuntime {
        self.remote_runtime.get_or_init(|| {
            let runtime = EngineRuntime::new(settings);
            runtime.register_store(remote);
            runtime
        })
    }

    /// This workspace with its finished queries logged by `writer` (off the answer path)
    /// instead of written before the answer returns.
    pub fn with_log_writer(mut self, writer: Arc<crate::log_writer::QueryLogWriter>) -> Self {
        self.log_writer = Some(writer);
        self
    }

    /// Logs one finished query: through the log writer when there is one, else now.
    pub(crate) fn record_query(&self, entry: dbopt_catalog::QueryLogEntry) -> Result<(), DbError> {
        match &self.log_writer {
            Some(writer) => writer.send(self, entry),
            None => self
                .catalog
                .log_query(&entry)
                .map(|_| ())
                .map_err(Into::into),
        }
    }

    /// This workspace with one engine runtime, sized by the configuration, shared by all its
    /// sessions (and by the workspaces a server opens per connection).
    pub fn with_engine_runtime_from_config(self) -> Self {
        let settings = EngineSettings {
            chunk_cache_bytes: self.config.settings().cache_max_bytes,
            ..self.engine_settings()
        };
        let runtime = EngineRuntime::new(&settings);
        self.with_engine_runtime(runtime)
    }

    /// The engine runtime this workspace's sessions share, or a new one sized by the
    /// configuration (for a server to hand to every connection's workspace).
    pub fn shared_engine_runtime(&self) -> EngineRuntime {
        self.engine
            .clone()
            .unwrap_or_else(|| EngineRuntime::new(&self.engine_settings()))
    }

    /// The engine runtime this workspace's sessions share, if it has one.
    pub fn engine_runtime(&self) -> Option<&EngineRuntime> {
        self.engine.as_ref()
    }

    /// What the shared engine runtime's caches hold (None without a shared runtime).
    pub fn engine_cache_stats(&self) -> Option<dbopt_engine::MetadataCacheStats> {
        self.engine.as_ref().map(EngineRuntime::cache_stats)
    }

    /// A new engine session: in the shared runtime when there is one (with `DATA_DIR` on
    /// object storage, always: one runtime per workspace caches the footers).
    pub fn engine_session(&self) -> Session {
        let settings = self.engine_settings();
        match (&self.engine, &self.remote) {
            (Some(runtime), _) => new_session_in(runtime, &settings),
            (None, Some(remote)) => {
                new_session_in(self.remote_runtime(remote, &settings), &settings)
            }
            (None, None) => new_session(&settings),
        }
    }

    /// A session for the queries the workload runs: on the Ballista cluster when the
    /// configuration names a scheduler (`ballista`), else [`Self::engine_session`].
    pub async fn query_engine_session(&self) -> Result<Session, DbError> {
        let settings = self.engine_settings();
        let Some(scheduler) = &settings.ballista else {
            return Ok(self.engine_session());
        };
        let runtime = match (&self.engine, &self.remote) {
            (Some(runtime), _) => runtime.clone(),
            (None, Some(remote)) => self.remote_runtime(remote, &settings).clone(),
            (None, None) => EngineRuntime::new(&settings),
        };
        Ok(dbopt_engine::remote_session(&runtime, &settings, scheduler).await?)
    }

    /// The resolved configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The metadata catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The absolute data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Engine sizing from the configuration; spills go under DATA_DIR/_spill.
    pub fn engine_settings(&self) -> EngineSettings {
        engine_settings(&self.config, self.spill_dir())
    }

    /// Where operators spill: `spill_dir`, or DATA_DIR/_spill.
    pub fn spill_dir(&self) -> PathBuf {
        self.config
            .settings()
            .spill_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("_spill"))
    }

    /// DATA_DIR/<table>.
    pub fn table_dir(&self, table: &TableName) -> PathBuf {
        self.data_dir.join(table.as_str())
    }

    /// DATA_DIR/<table>/layout_<id>.
    pub fn layout_dir(&self, table: &TableName, layout: &LayoutId) -> PathBuf {
        self.table_dir(table).join(layout.dir_name())
    }

    /// DATA_DIR/<table>/_staging.
    pub fn staging_dir(&self, table: &TableName) -> PathBuf {
        self.table_dir(table).join("_staging")
    }

    /// `DATA_DIR` on object storage, when it is a URL.
    pub fn remote_data(&self) -> Option<&RemoteDir> {
        self.remote.as_ref()
    }

    /// Refuses `what` (a command or an option) when `DATA_DIR` is on object storage.
    pub fn require_local_data(&self, what: &str) -> Result<(), DbError> {
        match self.remote {
            Some(_) => Err(DbError::LocalDataOnly(what.to_string())),
            None => Ok(()),
        }
    }

    /// DATA_DIR's bucket, for `what` at `location` on object storage, whose files dbopt copies
    /// into DATA_DIR by the store (server-side, within one bucket): refused when DATA_DIR is
    /// on local disk.
    pub(crate) fn data_bucket_for(
        &self,
        what: &str,
        location: &str,
    ) -> Result<&RemoteDir, DbError> {
        self.remote.as_ref().ok_or_else(|| {
            DbError::BadArgument(format!(
                "{what} {location} is on object storage but DATA_DIR is on local disk: set DATA_DIR to a prefix of the same bucket (dbopt copies such files within a bucket, server-side)"
            ))
        })
    }

    /// Refuses `dir` (holding `what`) unless it is in DATA_DIR's bucket `data`.
    pub(crate) fn require_data_bucket(
        what: &str,
        dir: &RemoteDir,
        data: &RemoteDir,
    ) -> Result<(), DbError> {
        if dir.same_bucket(data) {
            return Ok(());
        }
        Err(DbError::BadArgument(format!(
            "{what} {} is not in DATA_DIR's bucket ({}): the store copies files only within a bucket; use one of that bucket, or set DATA_DIR to a prefix of this one",
            dir.url, data.url
        )))
    }

    /// Where a table's layout is: `layout_dir`, or its prefix on object storage: the one the
    /// catalog records (a table loaded again with `--replace` has its initial layout under a
    /// new prefix), or `<table>/layout_<id>` for a layout not recorded yet.
    pub fn layout_location(
        &self,
        table: &TableName,
        layout: &LayoutId,
    ) -> Result<LayoutDir, DbError> {
        match &self.remote {
            Some(root) => {
                let relative = match self.catalog().get_layout(table, layout)? {
                    Some(record) => record.path,
                    None => layout.path_in(table),
                };
                Ok(LayoutDir::Remote(root.child(&relative)?))
            }
            None => Ok(LayoutDir::Local(self.layout_dir(table, layout))),
        }
    }

    /// Whether a layout's files are there: its directory exists (on object storage, where
    /// nothing but gc removes a published layout, the catalog is trusted).
    pub fn layout_present(&self, table: &TableName, layout: &LayoutId) -> bool {
        self.remote.is_some() || self.layout_dir(table, layout).is_dir()
    }

    /// The table's canonical schema (see `dbopt_engine::footer::table_schema`).
    pub fn table_schema(&self, table: &TableName) -> Result<arrow::datatypes::SchemaRef, DbError> {
        let initial = self.layout_location(table, &LayoutId::initial())?;
        Ok(dbopt_engine::footer::table_schema_at(&initial, table)?)
    }

    /// Reads the manifest of a table's layout (from disk or object storage).
    pub fn layout_manifest(
        &self,
        table: &TableName,
        layout: &LayoutId,
    ) -> Result<LayoutManifest, DbError> {
        let dir = self.layout_location(table, layout)?;
        let key = dir.to_string();
        if let Some(manifest) = self.lock_remote_manifests().get(&key) {
            return Ok(manifest.clone());
        }
        let manifest = dir.manifest()?.ok_or_else(|| DbError::LayoutDirMissing {
            table: table.to_string(),
            dir: PathBuf::from(dir.to_string()),
        })?;
        if dir.is_remote() {
            self.lock_remote_manifests().insert(key, manifest.clone());
        }
        Ok(manifest)
    }

    fn lock_remote_manifests(&self) -> std::sync::MutexGuard<'_, HashMap<String, LayoutManifest>> {
        self.remote_manifests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached cluster of a query shape of `table` (outer None: not cached yet).
    pub(crate) fn cached_cluster(
        &self,
        table: &TableName,
        fingerprint: &str,
    ) -> Option<Option<String>> {
        let cache = self
            .clusters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(&(table.clone(), fingerprint.to_string()))
            .cloned()
    }

    /// Remembers the cluster of a query shape of `table`.
    pub(crate) fn cache_cluster(
        &self,
        table: &TableName,
        fingerprint: &str,
        cluster: Option<String>,
    ) {
        let mut cache = self
            .clusters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.insert((table.clone(), fingerprint.to_string()), cluster);
    }

    /// The managed table, or an error that says how to list tables.
    pub fn require_table(&self, table: &TableName) -> Result<dbopt_catalog::TableRecord, DbError> {
        Ok(self.catalog.require_table(table)?)
    }
}

/// `DATA_DIR` as a local path (a `file://` URL is taken as its path).
fn local_data_dir(config: &Config) -> PathBuf {
    let raw = config.data_dir();
    match raw.to_str().and_then(|s| s.strip_prefix("file://")) {
        Some(path) => PathBuf::from(path),
        None => raw,
    }
}

/// Opens `DATA_DIR` when it is an object-storage URL (checked by listing it once: an endpoint,
/// bucket or credentials that do not work fail here, exit 2).
fn open_remote_data(config: &Config) -> Result<Option<RemoteDir>, DbError> {
    let raw = config.data_dir();
    let Some(url) = raw.to_str().filter(|s| dbopt_engine::store::is_remote(s)) else {
        return Ok(None);
    };
    let dir = dbopt_engine::store::block_on(dbopt_engine::store::open_dir(url))?;
    Ok(Some(dir))
}

/// Local work space (staging, locks, spill) when `DATA_DIR` is on object storage: the
/// directory `dbopt-local` beside METADATA_DB.
fn local_work_dir(config: &Config) -> PathBuf {
    let db = config.metadata_db();
    db.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."))
        .join("dbopt-local")
}

/// Engine sizing from a configuration, spilling into `spill_dir`; for commands that run
/// queries without a workspace (the experiment store).
pub fn engine_settings(config: &Config, spill_dir: PathBuf) -> EngineSettings {
    EngineSettings {
        threads: config.threads(),
        batch_size: config.batch_size(),
        memory_limit: config.memory_limit(),
        spill_dir: Some(spill_dir),
        statement_timeout: config.statement_timeout(),
        metadata_cache_bytes: config.settings().metadata_cache,
        chunk_cache_bytes: 0,
        pushdown_filters: config.settings().pushdown_filters,
        page_index: config.settings().page_index,
        repartition_joins: config.settings().repartition_joins,
        ballista: config.settings().ballista.clone(),
    }
}
