//! The store's directory tree: where each grid's parameters, events and seed summaries live,
//! the marker that makes a directory a store, and the grid-id collision rule.
//!
//! ```text
//! BASE/_dbopt_exp.json                                     marker: format, id length, partitioning, column types
//! BASE/grids/grid_id=<id>/params.json                      the canonical parameters, immutable
//! BASE/grids/grid_id=<id>/params.parquet                   the same, flattened to one row
//! BASE/events/[<key>=<v>/...]grid_id=<id>/seed=<n>/part-00000.parquet
//! BASE/seeds/[<key>=<v>/...]grid_id=<id>/seed=<n>/part-00000.parquet
//! BASE/_staging/                                           work in progress, never read
//! ```
//!
//! Guarantees: a (grid, seed) file is replaced by one `rename(2)` of a fully written and
//! fsynced file, so a reader or a crash sees the old rows or the new ones, never a mix or
//! a duplicate; `params.json` is written once (create-if-absent) and a different parameter
//! set never lands in an existing grid: the id grows a character instead.

use crate::canonical::{Canonical, canonical_json, canonicalize};
use crate::columns::Column;
use crate::error::ExpError;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The marker file that makes a directory an experiment store.
pub const MARKER_FILE: &str = "_dbopt_exp.json";
/// The format version this build writes and reads.
pub const STORE_FORMAT: u32 = 1;
/// The file name of every (grid, seed) data file.
pub const DATA_FILE: &str = "part-00000.parquet";
/// Partition keys the store itself uses; a parameter cannot be partitioned by these names.
pub const RESERVED_COLUMNS: &[&str] = &["grid_id", "seed"];

/// What a store holds: events (one row per measured event) or seeds (summaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One row per measured event (for dbopt: per query executed).
    Events,
    /// Seed-level summaries.
    Seeds,
}

impl Kind {
    /// The directory (and table) name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Events => "events",
            Kind::Seeds => "seeds",
        }
    }
}

/// The marker's contents: how the store is laid out and the column types it has seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreMeta {
    /// [`STORE_FORMAT`] of the writer that created the store.
    pub format: u32,
    /// Minimum grid id length in hex characters.
    pub id_chars: usize,
    /// Parameters that are hive partition keys above `grid_id`, outermost first.
    pub partition_by: Vec<String>,
    /// Flattened parameter columns and their types, in the order first seen.
    #[serde(default)]
    pub params: Vec<Column>,
    /// Event columns and their Arrow types, in the order first seen.
    #[serde(default)]
    pub events: Vec<Column>,
    /// Seed-summary columns and their Arrow types, in the order first seen.
    #[serde(default)]
    pub seeds: Vec<Column>,
}

impl StoreMeta {
    /// The column types seen for `kind`.
    pub fn columns(&self, kind: Kind) -> &[Column] {
        match kind {
            Kind::Events => &self.events,
            Kind::Seeds => &self.seeds,
        }
    }

    /// Mutable column types for `kind`.
    pub fn columns_mut(&mut self, kind: Kind) -> &mut Vec<Column> {
        match kind {
            Kind::Events => &mut self.events,
            Kind::Seeds => &mut self.seeds,
        }
    }
}

/// The lock file writers hold.
pub const LOCK_FILE: &str = "_dbopt_exp.lock";

/// The store's writer lock: one writer stages and publishes at a time; the OS releases it
/// when the process ends, however it ends.
#[derive(Debug)]
pub struct WriteLock {
    _file: File,
}

/// An open experiment store.
#[derive(Debug, Clone)]
pub struct Store {
    base: PathBuf,
    meta: StoreMeta,
}

/// A grid resolved in a store: its id and whether its parameters are already stored.
#[derive(Debug, Clone)]
pub struct GridSlot {
    /// The grid id (the shortest free or matching prefix of the hash).
    pub id: String,
    /// The canonical parameters.
    pub canonical: Canonical,
    /// True when `grids/grid_id=<id>/params.json` already holds these parameters.
    pub exists: bool,
    /// Hive directory segments (`key=value`) of the partition-by parameters, outermost first.
    pub partition_segments: Vec<String>,
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ExpError {
    let context = context.into();
    move |source| ExpError::Io { context, source }
}

impl Store {
    /// Opens the store at `base`, or creates it when `base` is missing or an empty directory.
    ///
    /// `partition_by` and `id_chars`, when given, must agree with an existing store's.
    pub fn open_or_create(
        base: &Path,
        partition_by: Option<&[String]>,
        id_chars: Option<usize>,
    ) -> Result<Self, ExpError> {
        let marker = base.join(MARKER_FILE);
        if marker.exists() {
            let store = Self::open(base)?;
            if let Some(p) = partition_by
                && p != store.meta.partition_by.as_slice()
            {
                return Err(ExpError::SettingChanged {
                    base: base.display().to_string(),
                    setting: "--partition-by".into(),
                    was: store.meta.partition_by.join(","),
                    now: p.join(","),
                });
            }
            if let Some(n) = id_chars
                && n != store.meta.id_chars
            {
                return Err(ExpError::SettingChanged {
                    base: base.display().to_string(),
                    setting: "--id-chars".into(),
                    was: store.meta.id_chars.to_string(),
                    now: n.to_string(),
                });
            }
            return Ok(store);
        }
        if base.exists() {
            let mut entries =
                std::fs::read_dir(base).map_err(io_err(format!("reading {}", base.display())))?;
            if !base.is_dir() || entries.next().is_some() {
                return Err(ExpError::NotAStore(base.display().to_string()));
            }
        }
        let partition_by = partition_by.unwrap_or_default().to_vec();
        for key in &partition_by {
            if RESERVED_COLUMNS.contains(&key.as_str()) || key.is_empty() {
                return Err(ExpError::BadPartitionKey(key.clone()));
            }
        }
        let id_chars = id_chars.unwrap_or(crate::DEFAULT_ID_CHARS);
        if !(1..=64).contains(&id_chars) {
            return Err(ExpError::BadIdChars(id_chars));
        }
        std::fs::create_dir_all(base).map_err(io_err(format!("creating {}", base.display())))?;
        let store = Self {
            base: base.to_path_buf(),
            meta: StoreMeta {
                format: STORE_FORMAT,
                id_chars,
                partition_by,
                params: Vec::new(),
                events: Vec::new(),
                seeds: Vec::new(),
            },
        };
        store.save_meta()?;
        Ok(store)
    }

    /// Opens an existing store; a directory without the marker is [`ExpError::NotAStore`].
    pub fn open(base: &Path) -> Result<Self, ExpError> {
        let marker = base.join(MARKER_FILE);
        let text = match std::fs::read_to_string(&marker) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ExpError::NotAStore(base.display().to_string()));
            }
            Err(e) => return Err(io_err(format!("reading {}", marker.display()))(e)),
        };
        let meta: StoreMeta = serde_json::from_str(&text).map_err(|e| ExpError::Corrupt {
            path: marker.display().to_string(),
            message: e.to_string(),
        })?;
        if meta.format != STORE_FORMAT {
            return Err(ExpError::Corrupt {
                path: marker.display().to_string(),
                message: format!(
                    "store format {} is not {STORE_FORMAT}, the one this dbopt reads",
                    meta.format
                ),
            });
        }
        Ok(Self {
            base: base.to_path_buf(),
            meta,
        })
    }

    /// Waits for the store's writer lock, then removes what a writer that died left in
    /// staging (every writer stages only while it holds the lock, so whatever is there now is
    /// an orphan).
    pub fn lock(&self) -> Result<WriteLock, ExpError> {
        let path = self.base.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(format!("opening {}", path.display())))?;
        file.lock()
            .map_err(io_err(format!("locking {}", path.display())))?;
        let staging = self.staging_dir();
        if staging.exists() {
            std::fs::remove_dir_all(&staging)
                .map_err(io_err(format!("clearing {}", staging.display())))?;
        }
        Ok(WriteLock { _file: file })
    }

    /// The base directory.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The marker's contents.
    pub fn meta(&self) -> &StoreMeta {
        &self.meta
    }

    /// Replaces the marker's contents (column types) and saves them durably.
    pub fn update_meta(&mut self, meta: StoreMeta) -> Result<(), ExpError> {
        self.meta = meta;
        self.save_meta()
    }

    fn save_meta(&self) -> Result<(), ExpError> {
        let text = serde_json::to_string_pretty(&self.meta).expect("the marker serializes");
        replace_file(&self.base.join(MARKER_FILE), text.as_bytes())
    }

    /// The directory of `kind`'s files.
    pub fn kind_dir(&self, kind: Kind) -> PathBuf {
        self.base.join(kind.name())
    }

    /// The directory of the grids' parameters.
    pub fn grids_dir(&self) -> PathBuf {
        self.base.join("grids")
    }

    /// The directory of one grid's parameters.
    pub fn grid_dir(&self, id: &str) -> PathBuf {
        self.grids_dir().join(format!("grid_id={id}"))
    }

    /// The staging directory (work in progress).
    pub fn staging_dir(&self) -> PathBuf {
        self.base.join("_staging")
    }

    /// The data file of (grid, seed) for `kind`.
    pub fn data_file(&self, kind: Kind, slot: &GridSlot, seed: u64) -> PathBuf {
        let mut dir = self.kind_dir(kind);
        for segment in &slot.partition_segments {
            dir.push(segment);
        }
        dir.join(format!("grid_id={}", slot.id))
            .join(format!("seed={seed}"))
            .join(DATA_FILE)
    }

    /// Canonicalizes `params` and finds its grid: the shortest prefix of the hash, at least
    /// `id_chars` long, that is free or already holds exactly these parameters.
    pub fn resolve_grid(
        &self,
        params: &serde_json::Value,
        extra_volatile: &[String],
    ) -> Result<GridSlot, ExpError> {
        let canonical = canonicalize(params, extra_volatile)?;
        let partition_segments = self.partition_segments(&canonical.params)?;
        for chars in self.meta.id_chars..=canonical.hash.len() {
            let id = crate::grid_id(&canonical.hash, chars).to_string();
            match self.stored_params(&id)? {
                None => {
                    return Ok(GridSlot {
                        id,
                        canonical,
                        exists: false,
                        partition_segments,
                    });
                }
                Some(stored) if stored == canonical.text => {
                    return Ok(GridSlot {
                        id,
                        canonical,
                        exists: true,
                        partition_segments,
                    });
                }
                // A different parameter set owns this prefix: a collision, try a longer id.
                Some(_) => {}
            }
        }
        Err(ExpError::FullHashCollision(canonical.hash))
    }

    /// The canonical text of the parameters stored for grid `id`, if any; a params.json that
    /// does not hash to its id was edited and is an error, never trusted.
    pub fn stored_params(&self, id: &str) -> Result<Option<String>, ExpError> {
        let path = self.grid_dir(id).join("params.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ExpError::Corrupt {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        let canonical = canonicalize(&value, &[])?;
        if !canonical.hash.starts_with(id) {
            return Err(ExpError::ParamsConflict {
                path: path.display().to_string(),
                id: id.to_string(),
            });
        }
        Ok(Some(canonical.text))
    }

    /// Every grid id in the store, sorted.
    pub fn grid_ids(&self) -> Result<Vec<String>, ExpError> {
        let dir = self.grids_dir();
        let mut ids = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(io_err(format!("reading {}", dir.display()))(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err(format!("reading {}", dir.display())))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(id) = name.strip_prefix("grid_id=")
                && entry.path().join("params.json").exists()
            {
                ids.push(id.to_string());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// The stored parameters of grid `id`.
    pub fn params_of(&self, id: &str) -> Result<serde_json::Value, ExpError> {
        let path = self.grid_dir(id).join("params.json");
        let text = std::fs::read_to_string(&path)
            .map_err(io_err(format!("reading {}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| ExpError::Corrupt {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Writes `params.json` of a new grid (create-if-absent: an existing file is never
    /// overwritten; one that appeared meanwhile must hold the same parameters).
    pub fn write_params(&self, slot: &GridSlot) -> Result<(), ExpError> {
        let dir = self.grid_dir(&slot.id);
        std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let path = dir.join("params.json");
        let pretty =
            serde_json::to_string_pretty(&slot.canonical.params).expect("parameters serialize");
        let tmp = dir.join(format!(".params.json.{}", std::process::id()));
        write_synced(&tmp, format!("{pretty}\n").as_bytes())?;
        // A hard link fails when the target exists: create-if-absent, atomically.
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => fsync_dir(&dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                match self.stored_params(&slot.id)? {
                    Some(text) if text == slot.canonical.text => Ok(()),
                    _ => Err(ExpError::ParamsConflict {
                        path: path.display().to_string(),
                        id: slot.id.clone(),
                    }),
                }
            }
            Err(e) => Err(io_err(format!("writing {}", path.display()))(e)),
        }
    }

    /// A fresh staging directory for one write.
    pub fn new_staging(&self, label: &str) -> Result<PathBuf, ExpError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = self
            .staging_dir()
            .join(format!("{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        Ok(dir)
    }

    /// Moves a written, fsynced file from staging to `dest`, replacing what was there in one
    /// rename, then removes the staging directory.
    pub fn publish(&self, staged_file: &Path, dest: &Path) -> Result<(), ExpError> {
        let parent = dest.parent().expect("data files have a parent");
        std::fs::create_dir_all(parent)
            .map_err(io_err(format!("creating {}", parent.display())))?;
        std::fs::rename(staged_file, dest).map_err(io_err(format!(
            "renaming {} to {}",
            staged_file.display(),
            dest.display()
        )))?;
        fsync_dir(parent)?;
        if let Some(staging) = staged_file.parent() {
            let _ = std::fs::remove_dir_all(staging);
        }
        Ok(())
    }

    /// Seeds stored for grid `id` of `kind`, sorted.
    pub fn seeds_of(&self, kind: Kind, slot: &GridSlot) -> Vec<u64> {
        let mut dir = self.kind_dir(kind);
        for segment in &slot.partition_segments {
            dir.push(segment);
        }
        let dir = dir.join(format!("grid_id={}", slot.id));
        let mut seeds: Vec<u64> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let seed = name.strip_prefix("seed=")?.parse().ok()?;
                e.path().join(DATA_FILE).exists().then_some(seed)
            })
            .collect();
        seeds.sort_unstable();
        seeds
    }

    /// The `key=value` directory segments of the partition-by parameters of `params`.
    fn partition_segments(&self, params: &serde_json::Value) -> Result<Vec<String>, ExpError> {
        self.meta
            .partition_by
            .iter()
            .map(|key| {
                let value = params
                    .get(key)
                    .ok_or_else(|| ExpError::MissingPartitionKey { key: key.clone() })?;
                let text = match value {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
                        canonical_json(value)?
                    }
                    _ => {
                        return Err(ExpError::BadPartitionValue {
                            key: key.clone(),
                            value: value.to_string(),
                        });
                    }
                };
                let safe = !text.is_empty()
                    && text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'));
                if !safe {
                    return Err(ExpError::BadPartitionValue {
                        key: key.clone(),
                        value: text,
                    });
                }
                Ok(format!("{key}={text}"))
            })
            .collect()
    }
}

/// Writes `bytes` to `path` and fsyncs the file.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ExpError> {
    let mut f = File::create(path).map_err(io_err(format!("creating {}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_err(format!("writing {}", path.display())))
}

/// Replaces `path` durably: temp file, fsync, rename, fsync the directory.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), ExpError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    write_synced(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(io_err(format!("renaming onto {}", path.display())))?;
    fsync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Fsyncs a directory so its new entries are durable.
fn fsync_dir(dir: &Path) -> Result<(), ExpError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("syncing {}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "dbopt-exp-store-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn same_parameters_same_grid_and_params_json_is_immutable() {
        let base = temp().join("store");
        let store = Store::open_or_create(&base, None, None).unwrap();
        let a = store
            .resolve_grid(&json!({"algo": "ucb1", "lr": 1.0, "started_at": "x"}), &[])
            .unwrap();
        assert!(!a.exists);
        assert_eq!(a.id.len(), 8);
        store.write_params(&a).unwrap();
        let again = store
            .resolve_grid(&json!({"lr": 1, "algo": "ucb1"}), &[])
            .unwrap();
        assert!(again.exists);
        assert_eq!(again.id, a.id);
        store.write_params(&again).unwrap();
        // Editing params.json by hand is caught, not trusted.
        std::fs::write(
            store.grid_dir(&a.id).join("params.json"),
            r#"{"algo": "eps"}"#,
        )
        .unwrap();
        let err = store
            .resolve_grid(&json!({"lr": 1, "algo": "ucb1"}), &[])
            .unwrap_err();
        assert!(matches!(err, ExpError::ParamsConflict { .. }), "{err}");
    }

    #[test]
    fn a_collision_on_a_truncated_hash_gets_a_longer_id() {
        let base = temp().join("store");
        // One hex character: 17 parameter sets must collide at least once.
        let store = Store::open_or_create(&base, None, Some(1)).unwrap();
        let mut ids = std::collections::BTreeSet::new();
        let mut longer = 0;
        for i in 0..17 {
            let slot = store.resolve_grid(&json!({ "i": i }), &[]).unwrap();
            assert!(!slot.exists, "parameter set {i} is new");
            assert!(slot.canonical.hash.starts_with(&slot.id));
            if slot.id.len() > 1 {
                longer += 1;
            }
            store.write_params(&slot).unwrap();
            assert!(ids.insert(slot.id.clone()), "ids are never shared");
        }
        assert!(longer >= 1, "at least one collision was detected");
        // Every set resolves back to its own grid.
        for i in 0..17 {
            let slot = store.resolve_grid(&json!({ "i": i }), &[]).unwrap();
            assert!(slot.exists);
            assert_eq!(
                store.params_of(&slot.id).unwrap(),
                json!({ "i": i }),
                "grid {} holds set {i}",
                slot.id
            );
        }
    }

    #[test]
    fn a_directory_that_is_not_a_store_is_refused() {
        let dir = temp();
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        assert!(matches!(
            Store::open_or_create(&dir, None, None),
            Err(ExpError::NotAStore(_))
        ));
        assert!(matches!(Store::open(&dir), Err(ExpError::NotAStore(_))));
    }

    #[test]
    fn partition_settings_cannot_change_and_values_must_be_path_safe() {
        let base = temp().join("store");
        let by = vec!["algo".to_string()];
        let store = Store::open_or_create(&base, Some(&by), None).unwrap();
        let slot = store
            .resolve_grid(&json!({"algo": "ucb1", "k": 3}), &[])
            .unwrap();
        assert_eq!(slot.partition_segments, vec!["algo=ucb1".to_string()]);
        let file = store.data_file(Kind::Events, &slot, 7);
        assert!(file.ends_with(format!(
            "events/algo=ucb1/grid_id={}/seed=7/part-00000.parquet",
            slot.id
        )));
        assert!(matches!(
            store.resolve_grid(&json!({"algo": "a/b"}), &[]),
            Err(ExpError::BadPartitionValue { .. })
        ));
        assert!(matches!(
            store.resolve_grid(&json!({"k": 1}), &[]),
            Err(ExpError::MissingPartitionKey { .. })
        ));
        assert!(matches!(
            Store::open_or_create(&base, Some(&[]), None),
            Err(ExpError::SettingChanged { .. })
        ));
        assert!(matches!(
            Store::open_or_create(&temp().join("s2"), Some(&["seed".to_string()]), None),
            Err(ExpError::BadPartitionKey(_))
        ));
    }
}
