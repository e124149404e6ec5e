//! Delta Lake tables on local disk or object storage: the table's own log, read and
//! committed to.
//!
//! dbopt reads a Delta table's current snapshot from its `_delta_log` (the newest classic
//! checkpoint, then the JSON commits after it) and publishes a layout as one new commit that
//! removes the files it replaces and adds the rewritten ones, both with `dataChange: false`,
//! as `OPTIMIZE` does. Guarantees:
//!
//! - **Never read wrong.** A table that needs a reader feature this module does not implement
//!   (column mapping, a file with a deletion vector, v2 checkpoints, any feature it does not
//!   know) is refused with an error naming the feature, before a row is read.
//! - **Never overwrite another writer.** A commit is written with put-if-absent on its
//!   version's name: on a local file system a temporary file hard-linked to the name (which
//!   fails if the name exists), on object storage a conditional put (`If-None-Match: *` on
//!   S3), so the store refuses the second of two writers. On that failure the commit is re-planned on the new snapshot: it goes through
//!   when the other writer only appended, and gives up with [`EngineError::LakeConflict`]
//!   when the files it replaces were removed or the table's schema or protocol changed.
//! - **Only what the protocol lets it write.** A commit is refused when the table's protocol
//!   asks writers for a feature this module does not honour (row tracking, liquid
//!   clustering, in-commit timestamps, Iceberg compatibility, ...).
//!
//! The file statistics written with each added file (`numRecords`, `nullCount`, and
//! `minValues`/`maxValues` for integer, date and string columns with exact Parquet
//! statistics, see `file_bounds`) come from the file's own footer, so Delta readers skip
//! files with them.

use crate::EngineError;
use crate::file_bounds::{Bound, bounds_in};
use crate::layout_dir::{FileBytes, LayoutDir};
use crate::rewrite::parse_hive_dir;
use crate::store::block_on;
use arrow::datatypes::DataType;
use arrow::json::LineDelimitedWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::ChunkReader;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The log directory inside a Delta table.
const LOG_DIR: &str = "_delta_log";

/// How many times a commit is re-planned after losing a race for its version.
const COMMIT_ATTEMPTS: usize = 5;

/// Reader features whose tables this module reads correctly (with the checks noted).
const READER_FEATURES: &[&str] = &[
    "timestampNtz",
    "vacuumProtocolCheck",
    // Read only while no active file carries a deletion vector.
    "deletionVectors",
    // Read only with `delta.columnMapping.mode` = none.
    "columnMapping",
];

/// Writer features whose rules a replace commit (same rows, `dataChange: false`) keeps.
const WRITER_FEATURES: &[&str] = &[
    "appendOnly",
    "invariants",
    "checkConstraints",
    "changeDataFeed",
    "generatedColumns",
    "identityColumns",
    "timestampNtz",
    "domainMetadata",
    "vacuumProtocolCheck",
    "deletionVectors",
    "columnMapping",
];

/// One data file of a Delta snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaFile {
    /// The path as written in the log: relative to the table root, percent-encoded.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Partition values by column (None is a null value).
    pub partition_values: BTreeMap<String, Option<String>>,
    /// Rows, when the log's statistics say.
    pub num_records: Option<u64>,
}

impl DeltaFile {
    /// The file on local disk.
    pub fn local_path(&self, root: &Path) -> PathBuf {
        local_path(root, &self.path)
    }

    /// The file's path under the table root, decoded (`/`-separated).
    pub fn relative_path(&self) -> String {
        percent_decode(&self.path)
    }
}

/// The file on local disk at the log path `path` (relative to `root`, percent-encoded).
pub fn local_path(root: &Path, path: &str) -> PathBuf {
    root.join(percent_decode(path))
}

/// The log path of the file at `relative` (a path under the table root, `/`-separated):
/// every byte but `[A-Za-z0-9_.~=/-]` percent-encoded, as a relative URI.
pub fn log_path(relative: &str) -> String {
    let mut out = String::with_capacity(relative.len());
    for b in relative.bytes() {
        if b.is_ascii_alphanumeric() || b"_.~=/-".contains(&b) {
            out.push(b as char);
        } else {
            let _ = std::fmt::Write::write_fmt(&mut out, format_args!("%{b:02X}"));
        }
    }
    out
}

/// A Delta table at one version: its live files and what the log declares about it.
#[derive(Debug, Clone)]
pub struct DeltaSnapshot {
    /// The table root (the directory or prefix holding `_delta_log`).
    pub root: LayoutDir,
    /// The version read.
    pub version: u64,
    /// Live data files, sorted by path.
    pub files: Vec<DeltaFile>,
    /// The table's id (`metaData.id`).
    pub table_id: String,
    /// The table's schema as the log declares it (Delta's JSON schema).
    pub schema_string: String,
    /// Partition columns, outermost first.
    pub partition_columns: Vec<String>,
    /// The columns of the newest `OPTIMIZE` with a Z-order that named them (empty if none).
    pub z_order_by: Vec<String>,
    /// The version of the newest commit dbopt made, with the layout id it published.
    pub dbopt_layout: Option<(u64, String)>,
    protocol: Protocol,
}

impl DeltaSnapshot {
    /// Total bytes of the live files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The table's columns in schema order, each with its Arrow type name when it is a
    /// partition column (the only columns whose type is not read from the files).
    /// A partition column of a type hive directories cannot carry here is refused.
    pub fn columns(&self) -> Result<Vec<(String, Option<DataType>)>, EngineError> {
        let schema: Value = serde_json::from_str(&self.schema_string).map_err(|e| {
            EngineError::Lake(format!(
                "{}: the log's schemaString is not JSON ({e})",
                self.root
            ))
        })?;
        let fields = schema["fields"].as_array().cloned().unwrap_or_default();
        let mut out = Vec::with_capacity(fields.len());
        for field in &fields {
            let name = field["name"].as_str().unwrap_or_default().to_string();
            if !self.partition_columns.contains(&name) {
                out.push((name, None));
                continue;
            }
            let delta_type = field["type"].as_str().unwrap_or("a nested type");
            let arrow = partition_type(delta_type).ok_or_else(|| {
                unsupported(
                    &self.root,
                    &format!(
                        "partition column '{name}' of type {delta_type} (partition columns of type string, long, integer, short, byte, boolean or date are read)"
                    ),
                )
            })?;
            out.push((name, Some(arrow)));
        }
        if let Some(missing) = self
            .partition_columns
            .iter()
            .find(|c| !out.iter().any(|(n, _)| n == *c))
        {
            return Err(EngineError::Lake(format!(
                "{}: partition column '{missing}' is not in the table's schema: the log is corrupt",
                self.root
            )));
        }
        Ok(out)
    }

    /// Refuses a commit when the protocol asks writers for something this module does not do.
    pub fn check_writable(&self) -> Result<(), EngineError> {
        let p = &self.protocol;
        if p.min_writer_version > 7 {
            return Err(unsupported(
                &self.root,
                &format!("writer version {}", p.min_writer_version),
            ));
        }
        if p.min_writer_version == 7 {
            for feature in p.writer_features.iter().flatten() {
                if !WRITER_FEATURES.contains(&feature.as_str()) {
                    return Err(unsupported(
                        &self.root,
                        &format!("writer feature '{feature}'"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn file(&self, path: &str) -> Option<&DeltaFile> {
        self.files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }
}

/// A file to add in a commit, described from its footer by [`describe_new_file`].
#[derive(Debug, Clone)]
pub struct NewDeltaFile {
    /// Path relative to the table root, as written in the log (percent-encoded).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ms since the Unix epoch.
    pub modification_time_ms: i64,
    /// Partition values by column, read from the file's hive directories (None is null).
    pub partition_values: BTreeMap<String, Option<String>>,
    /// The `stats` JSON string.
    pub stats: String,
}

/// What a replace commit swaps: the files it removes and the ones it adds.
#[derive(Debug, Clone)]
pub struct ReplaceCommit<'a> {
    /// Paths (as in the log) of the files the commit replaces; all must still be live.
    pub remove: &'a [String],
    /// The files it adds, already in the table directory.
    pub add: &'a [NewDeltaFile],
    /// `OPTIMIZE` for a new layout, `RESTORE` for a rollback (what Delta readers show).
    pub operation: &'a str,
    /// The dbopt layout the commit publishes (kept in the commit info).
    pub layout_id: &'a str,
    /// The schema the files were written with; a commit against another schema gives up.
    pub schema_string: &'a str,
    /// Commit time, ms since the Unix epoch.
    pub now_ms: i64,
}

/// The outcome of [`commit_replace`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Committed as this version.
    Committed(u64),
    /// The table already held exactly the added files and none of the removed ones (a
    /// commit that landed before a crash): nothing was written.
    AlreadyCommitted(u64),
}

/// Reads the current snapshot of the Delta table at `root`.
pub fn load_snapshot(root: &LayoutDir) -> Result<DeltaSnapshot, EngineError> {
    let Some(names) = log_names(root)? else {
        return Err(EngineError::Lake(format!(
            "{root} is not a Delta table (no {LOG_DIR} directory): give the directory that holds {LOG_DIR}"
        )));
    };
    let listing = LogListing::read(names);
    let log = root.label(LOG_DIR);
    let Some(latest) = listing.latest_version() else {
        return Err(EngineError::Lake(format!(
            "{log} has no commits: it is not a Delta table yet"
        )));
    };
    let mut state = LogState::default();
    let first_commit = match listing.checkpoint_at_or_before(latest) {
        Some((version, parts)) => {
            for part in parts {
                for action in read_checkpoint(root, part)? {
                    state.apply(version, action);
                }
            }
            version + 1
        }
        None => 0,
    };
    for version in first_commit..=latest {
        let file = listing.commits.get(&version).ok_or_else(|| {
            EngineError::Lake(format!(
                "{log} is missing commit {version} (the log has a gap): the table is corrupt or being vacuumed"
            ))
        })?;
        for action in read_commit(root, file)? {
            state.apply(version, action);
        }
    }
    state.into_snapshot(root, latest)
}

/// Describes the Parquet file at the log path `path` (relative to `root`, percent-encoded) as
/// a Delta `add`: size, time and statistics read from its footer.
pub fn describe_new_file(root: &LayoutDir, path: &str) -> Result<NewDeltaFile, EngineError> {
    let relative = percent_decode(path);
    let (size, modification_time_ms) = stat(root, &relative)?;
    let (size, footer) = root.footer(&relative, size)?;
    Ok(NewDeltaFile {
        path: path.to_string(),
        size,
        modification_time_ms,
        partition_values: parse_hive_dir(&relative).into_iter().collect(),
        stats: file_stats(&footer),
    })
}

/// The size and modification time (ms since the Unix epoch) of the file `relative` under
/// `root`.
fn stat(root: &LayoutDir, relative: &str) -> Result<(u64, i64), EngineError> {
    match root {
        LayoutDir::Local(dir) => {
            let full = dir.join(relative);
            let meta = std::fs::metadata(&full)
                .map_err(|e| EngineError::io(format!("stat {}", full.display()), e))?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            Ok((meta.len(), modified))
        }
        LayoutDir::Remote(dir) => match block_on(dir.head(relative))? {
            Some(meta) => Ok((meta.size, meta.last_modified.timestamp_millis())),
            None => Err(EngineError::Lake(format!(
                "{}{relative} is not in the store: it was deleted while dbopt placed it",
                dir.url
            ))),
        },
    }
}

/// True when the file at the log path `path` is in the table (under `root`).
pub fn file_exists(root: &LayoutDir, path: &str) -> Result<bool, EngineError> {
    let relative = percent_decode(path);
    match root {
        LayoutDir::Local(dir) => Ok(dir.join(relative).is_file()),
        LayoutDir::Remote(dir) => Ok(block_on(dir.head(&relative))?.is_some()),
    }
}

/// Commits `change` to the Delta table at `root` as the next version: removes its files and
/// adds the new ones (both `dataChange: false`), re-planned on the new snapshot after losing a
/// race for a version, never overwriting another writer's commit.
pub fn commit_replace(
    root: &LayoutDir,
    change: &ReplaceCommit<'_>,
) -> Result<CommitOutcome, EngineError> {
    for _ in 0..COMMIT_ATTEMPTS {
        let snapshot = load_snapshot(root)?;
        snapshot.check_writable()?;
        if already_committed(&snapshot, change) {
            return Ok(CommitOutcome::AlreadyCommitted(snapshot.version));
        }
        check_replaceable(&snapshot, change)?;
        let version = snapshot.version + 1;
        let actions = replace_actions(&snapshot, change);
        tracing::debug!("planned commit {version} of Delta table {root}");
        dbopt_core::fail_point("lake.planned")
            .map_err(|e| EngineError::io("at lake.planned".to_string(), e))?;
        if write_commit(root, version, &actions)? {
            return Ok(CommitOutcome::Committed(version));
        }
        tracing::warn!(
            "version {version} of Delta table {root} was taken by another writer: planning the commit again on the newer snapshot"
        );
    }
    Err(EngineError::LakeConflict {
        table: root.to_string(),
        version: load_snapshot(root)?.version,
        message: format!(
            "lost the race for a commit version {COMMIT_ATTEMPTS} times to other writers: try again when the table is quieter"
        ),
    })
}

/// True when the snapshot holds every added file and none of the removed ones.
fn already_committed(snapshot: &DeltaSnapshot, change: &ReplaceCommit<'_>) -> bool {
    !change.add.is_empty()
        && change.add.iter().all(|f| snapshot.file(&f.path).is_some())
        && change.remove.iter().all(|p| snapshot.file(p).is_none())
}

/// Gives up when the files to replace are gone or the schema changed since the plan.
fn check_replaceable(
    snapshot: &DeltaSnapshot,
    change: &ReplaceCommit<'_>,
) -> Result<(), EngineError> {
    let conflict = |message: String| EngineError::LakeConflict {
        table: snapshot.root.to_string(),
        version: snapshot.version,
        message,
    };
    if snapshot.schema_string != change.schema_string {
        return Err(conflict(
            "its schema changed since dbopt read it: register the table again (dbopt register-table --replace) and rebuild the layout".into(),
        ));
    }
    if let Some(gone) = change.remove.iter().find(|p| snapshot.file(p).is_none()) {
        return Err(conflict(format!(
            "file {gone} was removed by another writer since dbopt read the table: register it again (dbopt register-table --replace) and rebuild the layout"
        )));
    }
    Ok(())
}

/// The actions of a replace commit on `snapshot`.
fn replace_actions(snapshot: &DeltaSnapshot, change: &ReplaceCommit<'_>) -> Vec<Value> {
    let mut actions = vec![json!({"commitInfo": {
        "timestamp": change.now_ms,
        "operation": change.operation,
        "operationParameters": {"dbopt.layoutId": change.layout_id},
        "readVersion": snapshot.version,
        "isBlindAppend": false,
        "engineInfo": concat!("dbopt/", env!("CARGO_PKG_VERSION")),
        "dbopt": {"layoutId": change.layout_id},
    }})];
    for path in change.remove {
        let file = snapshot.file(path).expect("checked by check_replaceable");
        actions.push(json!({"remove": {
            "path": file.path,
            "deletionTimestamp": change.now_ms,
            "dataChange": false,
            "extendedFileMetadata": true,
            "partitionValues": file.partition_values,
            "size": file.size,
        }}));
    }
    for file in change.add {
        actions.push(json!({"add": {
            "path": file.path,
            "partitionValues": file.partition_values,
            "size": file.size,
            "modificationTime": file.modification_time_ms,
            "dataChange": false,
            "stats": file.stats,
        }}));
    }
    actions
}

/// Writes `actions` as commit `version` unless that version exists: false when it does.
fn write_commit(root: &LayoutDir, version: u64, actions: &[Value]) -> Result<bool, EngineError> {
    let mut text = String::new();
    for action in actions {
        text.push_str(&action.to_string());
        text.push('\n');
    }
    match root {
        LayoutDir::Local(dir) => write_local_commit(&dir.join(LOG_DIR), version, &text),
        LayoutDir::Remote(dir) => block_on(dir.put_if_absent(
            &format!("{LOG_DIR}/{}", commit_name(version)),
            text.into_bytes(),
        )),
    }
}

/// Writes `text` as commit `version` in the local log directory `log` unless that version
/// exists (a temporary file hard-linked to the name): false when it does.
fn write_local_commit(log: &Path, version: u64, text: &str) -> Result<bool, EngineError> {
    let target = log.join(commit_name(version));
    let tmp = log.join(format!(
        ".dbopt-{version}-{}-{}.json.tmp",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let io = |what: &str, e| EngineError::io(format!("{what} {}", tmp.display()), e);
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp).map_err(|e| io("creating", e))?;
        file.write_all(text.as_bytes())
            .map_err(|e| io("writing", e))?;
        file.sync_all().map_err(|e| io("syncing", e))?;
    }
    let linked = std::fs::hard_link(&tmp, &target);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            crate::writer::fsync_dir(log)?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(EngineError::io(
            format!("committing {}", target.display()),
            e,
        )),
    }
}

fn commit_name(version: u64) -> String {
    format!("{version:020}.json")
}

fn unsupported(root: &LayoutDir, what: &str) -> EngineError {
    EngineError::Lake(format!(
        "Delta table {root} uses {what}, which dbopt does not support yet: it is left untouched"
    ))
}

/// The names in the table's `_delta_log` (None when it has none).
fn log_names(root: &LayoutDir) -> Result<Option<Vec<String>>, EngineError> {
    match root {
        LayoutDir::Local(dir) => {
            let log = dir.join(LOG_DIR);
            if !log.is_dir() {
                return Ok(None);
            }
            let entries = std::fs::read_dir(&log)
                .map_err(|e| EngineError::io(format!("listing {}", log.display()), e))?;
            let mut names = Vec::new();
            for entry in entries {
                let entry =
                    entry.map_err(|e| EngineError::io(format!("listing {}", log.display()), e))?;
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
            Ok(Some(names))
        }
        LayoutDir::Remote(dir) => {
            let names = block_on(dir.child(LOG_DIR)?.list_all())?;
            // Object stores have no directories: an empty listing is a log that is not there.
            Ok((!names.is_empty()).then_some(names))
        }
    }
}

/// The bytes of the log file `name` (in `_delta_log`).
fn log_file(root: &LayoutDir, name: &str) -> Result<FileBytes, EngineError> {
    root.file_bytes(&format!("{LOG_DIR}/{name}"))
}

/// The commit and checkpoint files of a `_delta_log` directory.
#[derive(Debug, Default)]
struct LogListing {
    /// Commit files by version.
    commits: BTreeMap<u64, String>,
    /// Classic checkpoints by version: single-file or every part of a multi-part one.
    checkpoints: BTreeMap<u64, Vec<String>>,
}

impl LogListing {
    fn read(names: Vec<String>) -> Self {
        let mut listing = LogListing::default();
        let mut parts: BTreeMap<(u64, u64), Vec<String>> = BTreeMap::new();
        for name in names {
            match parse_log_name(&name) {
                Some(LogName::Commit(v)) => {
                    listing.commits.insert(v, name);
                }
                Some(LogName::Checkpoint(v)) => {
                    listing.checkpoints.insert(v, vec![name]);
                }
                Some(LogName::CheckpointPart { version, of }) => {
                    parts.entry((version, of)).or_default().push(name);
                }
                None => {}
            }
        }
        for ((version, of), mut names) in parts {
            if names.len() as u64 == of {
                names.sort();
                listing.checkpoints.insert(version, names);
            }
        }
        listing
    }

    fn latest_version(&self) -> Option<u64> {
        let commit = self.commits.keys().next_back().copied();
        let checkpoint = self.checkpoints.keys().next_back().copied();
        commit.max(checkpoint)
    }

    fn checkpoint_at_or_before(&self, version: u64) -> Option<(u64, &[String])> {
        self.checkpoints
            .range(..=version)
            .next_back()
            .map(|(v, parts)| (*v, parts.as_slice()))
    }
}

/// What a file name in `_delta_log` is.
#[derive(Debug, PartialEq, Eq)]
enum LogName {
    Commit(u64),
    Checkpoint(u64),
    CheckpointPart { version: u64, of: u64 },
}

fn parse_log_name(name: &str) -> Option<LogName> {
    let (version, rest) = name.split_at_checked(20)?;
    let version: u64 = version.parse().ok()?;
    match rest {
        ".json" => Some(LogName::Commit(version)),
        ".checkpoint.parquet" => Some(LogName::Checkpoint(version)),
        _ => {
            // <v>.checkpoint.<part>.<parts>.parquet (v2 checkpoints, named by UUID, are
            // not read: their reader feature is refused).
            let middle = rest
                .strip_prefix(".checkpoint.")?
                .strip_suffix(".parquet")?;
            let (part, of) = middle.split_once('.')?;
            (part.len() == 10 && of.len() == 10).then_some(())?;
            let _: u64 = part.parse().ok()?;
            Some(LogName::CheckpointPart {
                version,
                of: of.parse().ok()?,
            })
        }
    }
}

/// One line of a commit file or one row of a checkpoint (one of its fields is set).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Action {
    add: Option<AddAction>,
    remove: Option<RemoveAction>,
    meta_data: Option<MetaDataAction>,
    protocol: Option<Protocol>,
    commit_info: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddAction {
    path: String,
    #[serde(default)]
    partition_values: BTreeMap<String, Option<String>>,
    size: i64,
    stats: Option<String>,
    deletion_vector: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemoveAction {
    path: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaDataAction {
    id: String,
    format: Option<FormatSpec>,
    schema_string: String,
    #[serde(default)]
    partition_columns: Vec<String>,
    #[serde(default)]
    configuration: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Clone, Deserialize)]
struct FormatSpec {
    provider: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Protocol {
    min_reader_version: i32,
    min_writer_version: i32,
    reader_features: Option<Vec<String>>,
    writer_features: Option<Vec<String>>,
}

/// The log replayed so far.
#[derive(Debug, Default)]
struct LogState {
    files: BTreeMap<String, AddAction>,
    metadata: Option<MetaDataAction>,
    protocol: Option<Protocol>,
    z_order_by: Vec<String>,
    dbopt_layout: Option<(u64, String)>,
}

impl LogState {
    fn apply(&mut self, version: u64, action: Action) {
        if let Some(add) = action.add {
            self.files.insert(add.path.clone(), add);
        }
        if let Some(remove) = action.remove {
            self.files.remove(&remove.path);
        }
        if let Some(m) = action.meta_data {
            self.metadata = Some(m);
        }
        if let Some(p) = action.protocol {
            self.protocol = Some(p);
        }
        if let Some(info) = action.commit_info {
            if let Some(cols) = z_order_columns(&info) {
                self.z_order_by = cols;
            }
            if let Some(id) = info.pointer("/dbopt/layoutId").and_then(Value::as_str) {
                self.dbopt_layout = Some((version, id.to_string()));
            }
        }
    }

    fn into_snapshot(self, root: &LayoutDir, version: u64) -> Result<DeltaSnapshot, EngineError> {
        let corrupt = |what: &str| {
            EngineError::Lake(format!(
                "Delta table {root} has no {what} action in its log: the log is corrupt"
            ))
        };
        let protocol = self.protocol.ok_or_else(|| corrupt("protocol"))?;
        let metadata = self.metadata.ok_or_else(|| corrupt("metaData"))?;
        check_readable(root, &protocol, &metadata)?;
        if let Some(provider) = metadata.format.as_ref().map(|f| f.provider.as_str())
            && provider != "parquet"
        {
            return Err(unsupported(
                root,
                &format!("data files in format '{provider}'"),
            ));
        }
        let mut files = Vec::with_capacity(self.files.len());
        for (path, add) in self.files {
            if add.deletion_vector.as_ref().is_some_and(|v| !v.is_null()) {
                return Err(unsupported(
                    root,
                    &format!(
                        "a deletion vector on file {path} (rows deleted without rewriting the file); run OPTIMIZE with deletion vector purge (REORG TABLE ... APPLY (PURGE)) first"
                    ),
                ));
            }
            if path.contains("://") {
                return Err(unsupported(
                    root,
                    &format!("a file outside the table directory ({path})"),
                ));
            }
            let num_records = add
                .stats
                .as_deref()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .and_then(|s| s.get("numRecords").and_then(Value::as_u64));
            files.push(DeltaFile {
                path,
                size: add.size.max(0) as u64,
                partition_values: add.partition_values,
                num_records,
            });
        }
        Ok(DeltaSnapshot {
            root: root.clone(),
            version,
            files,
            table_id: metadata.id,
            schema_string: metadata.schema_string,
            partition_columns: metadata.partition_columns,
            z_order_by: self.z_order_by,
            dbopt_layout: self.dbopt_layout,
            protocol,
        })
    }
}

/// The Z-order columns an `OPTIMIZE` commit names (Spark: `zOrderBy`, a JSON list in a string).
fn z_order_columns(info: &Value) -> Option<Vec<String>> {
    if info.get("operation").and_then(Value::as_str) != Some("OPTIMIZE") {
        return None;
    }
    let raw = info.pointer("/operationParameters/zOrderBy")?;
    let list = match raw {
        Value::String(s) => serde_json::from_str::<Vec<String>>(s).ok()?,
        other => serde_json::from_value::<Vec<String>>(other.clone()).ok()?,
    };
    (!list.is_empty()).then_some(list)
}

/// Refuses tables whose reader protocol this module does not implement.
fn check_readable(
    root: &LayoutDir,
    protocol: &Protocol,
    metadata: &MetaDataAction,
) -> Result<(), EngineError> {
    if protocol.min_reader_version > 3 {
        return Err(unsupported(
            root,
            &format!("reader version {}", protocol.min_reader_version),
        ));
    }
    for feature in protocol.reader_features.iter().flatten() {
        if !READER_FEATURES.contains(&feature.as_str()) {
            return Err(unsupported(root, &format!("reader feature '{feature}'")));
        }
    }
    let mapping = metadata
        .configuration
        .get("delta.columnMapping.mode")
        .cloned()
        .flatten();
    if let Some(mode) = mapping
        && mode != "none"
    {
        return Err(unsupported(
            root,
            &format!("column mapping (mode '{mode}')"),
        ));
    }
    Ok(())
}

fn read_commit(root: &LayoutDir, name: &str) -> Result<Vec<Action>, EngineError> {
    let path = root.label(&format!("{LOG_DIR}/{name}"));
    let bytes = match log_file(root, name)? {
        FileBytes::Local(mut file) => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut bytes)
                .map_err(|e| EngineError::io(format!("reading {path}"), e))?;
            bytes
        }
        FileBytes::Remote(bytes) => bytes.to_vec(),
    };
    let text = String::from_utf8(bytes).map_err(|_| {
        EngineError::Lake(format!(
            "Delta log file {path} is not UTF-8 JSON: the log is corrupt"
        ))
    })?;
    parse_actions(&path, &text)
}

fn parse_actions(path: &str, text: &str) -> Result<Vec<Action>, EngineError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                EngineError::Lake(format!(
                    "Delta log file {path} line {}: not a valid action ({e}): the log is corrupt",
                    i + 1
                ))
            })
        })
        .collect()
}

/// Reads the add, remove, metaData and protocol rows of a checkpoint file as actions (through
/// Arrow's JSON writer, so checkpoint rows and commit lines parse the same way).
fn read_checkpoint(root: &LayoutDir, name: &str) -> Result<Vec<Action>, EngineError> {
    let path = root.label(&format!("{LOG_DIR}/{name}"));
    let corrupt = |e: &dyn std::fmt::Display| EngineError::CorruptParquet {
        path: path.clone(),
        message: e.to_string(),
    };
    match log_file(root, name)? {
        FileBytes::Local(file) => checkpoint_actions(
            &path,
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(&e))?,
        ),
        FileBytes::Remote(bytes) => checkpoint_actions(
            &path,
            ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| corrupt(&e))?,
        ),
    }
}

/// The actions in the checkpoint file `path` that `builder` opened.
fn checkpoint_actions<T: ChunkReader + 'static>(
    path: &str,
    builder: ParquetRecordBatchReaderBuilder<T>,
) -> Result<Vec<Action>, EngineError> {
    let wanted = ["add", "remove", "metaData", "protocol"];
    let roots: Vec<usize> = builder
        .parquet_schema()
        .root_schema()
        .get_fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| wanted.contains(&f.name()))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let corrupt = |e: &dyn std::fmt::Display| EngineError::CorruptParquet {
        path: path.to_string(),
        message: e.to_string(),
    };
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| corrupt(&e))?;
    let mut lines = Vec::new();
    {
        let mut writer = LineDelimitedWriter::new(&mut lines);
        for batch in reader {
            let batch = batch.map_err(|e| corrupt(&e))?;
            writer.write(&batch).map_err(|e| corrupt(&e))?;
        }
        writer.finish().map_err(|e| corrupt(&e))?;
    }
    let text = String::from_utf8(lines).map_err(|e| corrupt(&e))?;
    parse_actions(path, &text)
}

/// Delta `stats` for the Parquet file whose footer is `footer`.
fn file_stats(footer: &ParquetMetaData) -> String {
    let file = bounds_in(footer);
    let mut min_values = Map::new();
    let mut max_values = Map::new();
    let mut null_count = Map::new();
    for column in file.columns {
        if let Some(nulls) = column.null_count {
            null_count.insert(column.name.clone(), json!(nulls));
        }
        if let Some((min, max)) = column.bounds
            && let (Some(min), Some(max)) = (delta_value(&min), delta_value(&max))
        {
            min_values.insert(column.name.clone(), min);
            max_values.insert(column.name, max);
        }
    }
    json!({
        "numRecords": file.rows,
        "minValues": min_values,
        "maxValues": max_values,
        "nullCount": null_count,
    })
    .to_string()
}

/// A bound as Delta's statistics write it (dates as `YYYY-MM-DD`).
fn delta_value(bound: &Bound) -> Option<Value> {
    Some(match bound {
        Bound::Int(v) => json!(v),
        Bound::Date(days) => {
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
            let date = epoch.checked_add_signed(chrono::TimeDelta::try_days(i64::from(*days))?)?;
            json!(date.format("%Y-%m-%d").to_string())
        }
        Bound::Text(t) => json!(t),
    })
}

/// The Arrow type of a Delta primitive type a partition value can be read as.
fn partition_type(delta_type: &str) -> Option<DataType> {
    Some(match delta_type {
        "string" => DataType::Utf8,
        "long" => DataType::Int64,
        "integer" => DataType::Int32,
        "short" => DataType::Int16,
        "byte" => DataType::Int8,
        "boolean" => DataType::Boolean,
        "date" => DataType::Date32,
        _ => return None,
    })
}

/// Decodes `%XX` escapes (Delta log paths are URIs); a malformed escape is kept as written.
pub(crate) fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = path.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn paths(files: &[DeltaFile]) -> BTreeSet<&str> {
        files.iter().map(|f| f.path.as_str()).collect()
    }

    fn write_log(dir: &Path, commits: &[&str]) {
        let log = dir.join(LOG_DIR);
        std::fs::create_dir_all(&log).unwrap();
        for (v, text) in commits.iter().enumerate() {
            std::fs::write(log.join(commit_name(v as u64)), text).unwrap();
        }
    }

    const PROTOCOL: &str = r#"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}"#;
    const META: &str = r#"{"metaData":{"id":"t1","format":{"provider":"parquet","options":{}},"schemaString":"{}","partitionColumns":[],"configuration":{}}}"#;

    fn add(path: &str, rows: u64) -> String {
        format!(
            r#"{{"add":{{"path":"{path}","partitionValues":{{}},"size":10,"modificationTime":1,"dataChange":true,"stats":"{{\"numRecords\":{rows}}}"}}}}"#
        )
    }

    #[test]
    fn replay_keeps_files_added_and_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let c0 = format!(
            "{PROTOCOL}\n{META}\n{}\n{}",
            add("a.parquet", 3),
            add("b%20c.parquet", 4)
        );
        let c1 = format!(
            "{}\n{{\"remove\":{{\"path\":\"a.parquet\",\"dataChange\":true}}}}\n",
            add("d.parquet", 5)
        );
        write_log(dir.path(), &[&c0, &c1]);
        let s = load_snapshot(&dir.path().into()).unwrap();
        assert_eq!(s.version, 1);
        let names: Vec<_> = s.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["b%20c.parquet", "d.parquet"]);
        assert_eq!(s.files[0].num_records, Some(4));
        assert_eq!(
            s.files[0].local_path(Path::new("/t")),
            Path::new("/t/b c.parquet")
        );
    }

    #[test]
    fn a_gap_in_the_log_is_an_error_not_a_shorter_table() {
        let dir = tempfile::tempdir().unwrap();
        let c0 = format!("{PROTOCOL}\n{META}\n{}", add("a.parquet", 3));
        write_log(dir.path(), &[&c0]);
        std::fs::write(
            dir.path().join(LOG_DIR).join(commit_name(2)),
            add("z.parquet", 1),
        )
        .unwrap();
        let err = load_snapshot(&dir.path().into()).unwrap_err().to_string();
        assert!(err.contains("missing commit 1"), "{err}");
    }

    #[test]
    fn unknown_reader_features_column_mapping_and_deletion_vectors_are_refused() {
        let cases = [
            (
                r#"{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["v2Checkpoint"],"writerFeatures":[]}}"#.to_string(),
                META.to_string(),
                add("a.parquet", 1),
                "reader feature 'v2Checkpoint'",
            ),
            (
                PROTOCOL.to_string(),
                META.replace(r#""configuration":{}"#, r#""configuration":{"delta.columnMapping.mode":"name"}"#),
                add("a.parquet", 1),
                "column mapping (mode 'name')",
            ),
            (
                PROTOCOL.to_string(),
                META.to_string(),
                add("a.parquet", 1).replace(
                    r#""dataChange":true"#,
                    r#""dataChange":true,"deletionVector":{"storageType":"u","pathOrInlineDv":"x","sizeInBytes":1,"cardinality":1}"#,
                ),
                "deletion vector on file a.parquet",
            ),
        ];
        for (protocol, meta, add, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            write_log(dir.path(), &[&format!("{protocol}\n{meta}\n{add}")]);
            let err = load_snapshot(&dir.path().into()).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(err.contains("does not support"), "{err}");
        }
    }

    #[test]
    fn writer_features_it_cannot_honour_block_commits() {
        let dir = tempfile::tempdir().unwrap();
        let protocol = r#"{"protocol":{"minReaderVersion":1,"minWriterVersion":7,"writerFeatures":["appendOnly","rowTracking"]}}"#;
        write_log(
            dir.path(),
            &[&format!("{protocol}\n{META}\n{}", add("a.parquet", 1))],
        );
        let snapshot = load_snapshot(&dir.path().into()).unwrap();
        let err = snapshot.check_writable().unwrap_err().to_string();
        assert!(err.contains("writer feature 'rowTracking'"), "{err}");
    }

    #[test]
    fn a_commit_replaces_files_and_never_overwrites_a_version() {
        let dir = tempfile::tempdir().unwrap();
        write_log(
            dir.path(),
            &[&format!("{PROTOCOL}\n{META}\n{}", add("a.parquet", 2))],
        );
        let new = NewDeltaFile {
            path: "n.parquet".into(),
            size: 7,
            modification_time_ms: 1,
            partition_values: BTreeMap::new(),
            stats: r#"{"numRecords":2}"#.into(),
        };
        let remove = ["a.parquet".to_string()];
        let change = ReplaceCommit {
            remove: &remove,
            add: std::slice::from_ref(&new),
            operation: "OPTIMIZE",
            layout_id: "abc",
            schema_string: "{}",
            now_ms: 5,
        };
        // Another writer takes version 1 first (an append): ours lands as version 2.
        std::fs::write(
            dir.path().join(LOG_DIR).join(commit_name(1)),
            add("other.parquet", 1),
        )
        .unwrap();
        assert_eq!(
            commit_replace(&dir.path().into(), &change).unwrap(),
            CommitOutcome::Committed(2)
        );
        let s = load_snapshot(&dir.path().into()).unwrap();
        assert_eq!(
            paths(&s.files).into_iter().collect::<Vec<_>>(),
            ["n.parquet", "other.parquet"]
        );
        assert_eq!(s.dbopt_layout, Some((2, "abc".to_string())));
        // Committing the same change again writes nothing.
        assert_eq!(
            commit_replace(&dir.path().into(), &change).unwrap(),
            CommitOutcome::AlreadyCommitted(2)
        );
        // A change whose files another writer removed gives up.
        let gone = ["a.parquet".to_string()];
        let again = ReplaceCommit {
            remove: &gone,
            add: &[],
            ..change
        };
        let err = commit_replace(&dir.path().into(), &again).unwrap_err();
        assert!(matches!(err, EngineError::LakeConflict { .. }), "{err}");
    }

    #[test]
    fn a_spark_z_order_is_read_as_the_declared_clustering() {
        let dir = tempfile::tempdir().unwrap();
        let zorder = r#"{"commitInfo":{"operation":"OPTIMIZE","operationParameters":{"predicate":"[]","zOrderBy":"[\"a\",\"b\"]"}}}"#;
        let compact =
            r#"{"commitInfo":{"operation":"OPTIMIZE","operationParameters":{"predicate":"[]"}}}"#;
        let c0 = format!("{PROTOCOL}\n{META}\n{}", add("a.parquet", 1));
        write_log(dir.path(), &[&c0, zorder, compact]);
        assert_eq!(
            load_snapshot(&dir.path().into()).unwrap().z_order_by,
            ["a", "b"]
        );
    }

    #[test]
    fn log_names_parse_commits_and_checkpoint_parts() {
        assert_eq!(
            parse_log_name("00000000000000000012.json"),
            Some(LogName::Commit(12))
        );
        assert_eq!(
            parse_log_name("00000000000000000010.checkpoint.parquet"),
            Some(LogName::Checkpoint(10))
        );
        assert_eq!(
            parse_log_name("00000000000000000010.checkpoint.0000000001.0000000002.parquet"),
            Some(LogName::CheckpointPart { version: 10, of: 2 })
        );
        assert_eq!(parse_log_name("_last_checkpoint"), None);
        assert_eq!(parse_log_name("00000000000000000010.crc"), None);
    }
}
