//! Lakehouse tables that stay where they are and stay the source of truth: Delta Lake
//! (registered, published to and rolled back by commits of its log) and Apache Iceberg
//! (registered from its current snapshot, published to by replace snapshots committed through
//! its SQL catalog).
//!
//! `register-table --delta PATH` reads the table's current snapshot through its own log and
//! makes it the table's initial layout without copying data: the layout directory holds hard
//! links to the table's files (symbolic links across file systems) and a manifest, so every
//! stage (queries, analysis, proposals, migrations, canaries) works on it as on a managed
//! table. A layout becomes the table's content by a commit of the table's log: promote (and
//! activate) removes the files of the layout that was active and adds the new layout's files,
//! placed in the table directory as `dbopt-<layout>-part-NNNNN.parquet`, all with
//! `dataChange: false`; rollback is a `RESTORE` commit the same way, so history stays intact.
//! The Delta commit comes first and the catalog's swap second: a crash between them is
//! repaired by promoting again, which finds the commit already made and only swaps.

use crate::error::fail_point;
use crate::initial_layout::InitialLayoutRequest;
use crate::{DbError, Progress, Workspace};
use arrow::datatypes::{DataType, SchemaRef};
use dbopt_catalog::iceberg_sql::IcebergSqlTable;
use dbopt_catalog::{LakeFormat, LakeSource};
use dbopt_core::layout::{ManifestFile, ROWS_PER_FILE};
use dbopt_core::{Curve, LayoutId, LayoutManifest, LayoutSpec, TableName};
use dbopt_engine::delta::{self, CommitOutcome, DeltaSnapshot, ReplaceCommit};
use dbopt_engine::footer::{describe_file, partition_types, schema_with_columns};
use dbopt_engine::iceberg::{self, IcebergNewFile, IcebergReplace, ReplaceOutcome};
use dbopt_engine::layout_dir::LayoutDir;
use dbopt_engine::rewrite::{hive_dir, parse_hive_dir};
use dbopt_engine::source::{SourceInfo, inspect_remote_source, inspect_source};
use dbopt_engine::store::{RemoteDir, block_on, is_remote, open_dir};
use dbopt_engine::writer::{fsync_dir, write_manifest};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Where an Iceberg table's current metadata is found.
#[derive(Debug, Clone)]
pub enum IcebergLocation {
    /// A table directory (its `metadata/version-hint.text`, else its newest metadata file)
    /// or a metadata file: read-only, since publishing needs the catalog's commit.
    Path(PathBuf),
    /// A SQL catalog on SQLite (`sqlite:///path/catalog.db`) and `namespace.table`.
    SqlCatalog {
        /// The catalog URI.
        uri: String,
        /// The table identifier.
        table: String,
    },
}

/// What `register-table` registered.
#[derive(Debug, Clone, Serialize)]
pub struct LakeRegisterReport {
    /// The dbopt table.
    pub table: String,
    /// `delta` or `iceberg`.
    pub format: String,
    /// The Delta table root or the Iceberg metadata file.
    pub location: String,
    /// The Delta log version or the Iceberg snapshot id read.
    pub version: u64,
    /// Data files in that version.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Their rows.
    pub rows: u64,
    /// The layout the table declares (its Z-order or sort order), as the initial layout's spec.
    pub declared: String,
    /// What the table declares that the spec cannot say (e.g. a `bucket` sort transform).
    pub not_carried: Vec<String>,
}

/// What registering needs of a lake table's snapshot, whatever its format.
struct LakeSnapshot {
    source: LakeSource,
    /// The live files.
    files: Vec<LakeFile>,
    /// The table's columns in order, with the Arrow types of its partition columns (whose
    /// values live in the files' hive directories, not in the files); empty when unpartitioned.
    columns: Vec<(String, Option<DataType>)>,
    declared: LayoutSpec,
    not_carried: Vec<String>,
    /// `delta /lake/events version 3`: kept as the table's source in the catalog.
    label: String,
    /// The table's prefix when it is on object storage (then DATA_DIR is in the same bucket).
    remote: Option<RemoteDir>,
}

/// One live file of a lake table's snapshot.
struct LakeFile {
    /// The path the table's metadata names it by.
    path: String,
    /// The file on local disk, or its path under the table's prefix on object storage.
    local: PathBuf,
    /// The rows the table's metadata says it holds.
    rows: Option<u64>,
    /// Its partition's hive directory (`day=2024-01-05`), empty when unpartitioned.
    hive: String,
}

/// What publishing a layout to a lake table did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LakeCommit {
    /// The table's format.
    pub format: LakeFormat,
    /// Delta: the log version that holds the layout; Iceberg: the snapshot that holds it.
    pub version: u64,
    /// False when an earlier run had already committed it (nothing written now).
    pub committed_now: bool,
}

impl Workspace {
    /// Registers the Delta table at `location` (a directory, or a prefix on object storage
    /// in DATA_DIR's bucket) as `table`: its current snapshot becomes the initial layout (on
    /// local disk linked, on object storage copied by the store, server-side), with its row
    /// count and digest read from the files.
    pub async fn register_delta_table(
        &self,
        table: &TableName,
        location: &str,
        replace: bool,
        progress: &dyn Progress,
    ) -> Result<LakeRegisterReport, DbError> {
        self.check_can_create(table, replace)?;
        let root = self.delta_root(location).await?;
        let snapshot = delta::load_snapshot(&root)?;
        let columns = if snapshot.partition_columns.is_empty() {
            Vec::new()
        } else {
            snapshot.columns()?
        };
        let label = format!("delta {root} version {}", snapshot.version);
        let remote = match &root {
            LayoutDir::Remote(dir) => Some(dir.clone()),
            LayoutDir::Local(_) => None,
        };
        let lake = LakeSnapshot {
            source: LakeSource {
                table: table.clone(),
                format: LakeFormat::Delta,
                location: root.to_string(),
                read_version: snapshot.version,
                schema_string: snapshot.schema_string.clone(),
                initial_files: Vec::new(),
            },
            files: snapshot
                .files
                .iter()
                .map(|f| {
                    let values = snapshot
                        .partition_columns
                        .iter()
                        .map(|c| (c.clone(), f.partition_values.get(c).cloned().flatten()));
                    Ok(LakeFile {
                        path: f.path.clone(),
                        local: match &root {
                            LayoutDir::Local(dir) => f.local_path(dir),
                            LayoutDir::Remote(_) => PathBuf::from(f.relative_path()),
                        },
                        rows: f.num_records,
                        hive: partition_dir(&label, &f.path, values.collect())?,
                    })
                })
                .collect::<Result<_, DbError>>()?,
            columns,
            declared: declared_spec(&snapshot),
            not_carried: Vec::new(),
            label,
            remote,
        };
        self.register_lake_table(lake, replace, progress).await
    }

    /// Where the Delta table `location` is: a local directory (with DATA_DIR on local disk),
    /// or a prefix on object storage in DATA_DIR's bucket, whose files the store copies
    /// between the table and its layouts.
    async fn delta_root(&self, location: &str) -> Result<LayoutDir, DbError> {
        if !is_remote(location) {
            self.require_local_data(
                "a Delta table on local disk (register-table --delta PATH; a table in DATA_DIR's bucket, --delta s3://..., is)",
            )?;
            let root = canonical(Path::new(location), "the directory that holds _delta_log")?;
            return Ok(LayoutDir::Local(root));
        }
        let data = self.data_bucket_for("Delta table", location)?;
        let root = open_dir(location).await?;
        Self::require_data_bucket("Delta table", &root, data)?;
        Ok(LayoutDir::Remote(root))
    }

    /// Registers the Iceberg table at `location` as `table`: its current snapshot becomes the
    /// initial layout (on local disk linked, in DATA_DIR's bucket copied by the store), with
    /// its default sort order as the layout's spec. Registered through its SQL catalog,
    /// layouts are published to it as replace snapshots.
    pub async fn register_iceberg_table(
        &self,
        table: &TableName,
        location: &IcebergLocation,
        replace: bool,
        progress: &dyn Progress,
    ) -> Result<LakeRegisterReport, DbError> {
        self.check_can_create(table, replace)?;
        let (metadata, pointer) = match location {
            IcebergLocation::Path(path) if is_remote(&path.to_string_lossy()) => {
                (path.to_string_lossy().into_owned(), None)
            }
            IcebergLocation::Path(path) => {
                let path = canonical(path, "the table directory or its current metadata file")?;
                (path.display().to_string(), None)
            }
            IcebergLocation::SqlCatalog { uri, table } => {
                let catalog = IcebergSqlTable::parse(uri, table)?;
                (catalog.current_metadata()?, Some(catalog.to_location()))
            }
        };
        let remote = self.iceberg_bucket(&metadata).await?;
        let snapshot = iceberg::load_snapshot(&metadata)?;
        let metadata_file = match remote {
            Some(_) => snapshot.metadata_file.clone(),
            None => iceberg::local_file(&snapshot.metadata_file)
                .display()
                .to_string(),
        };
        let label = format!("iceberg {metadata_file} snapshot {}", snapshot.snapshot_id);
        let columns = if snapshot.partition_fields.is_empty() {
            Vec::new()
        } else {
            snapshot.columns()?
        };
        let snapshot_id = u64::try_from(snapshot.snapshot_id).map_err(|_| {
            DbError::BadSource(format!(
                "Iceberg snapshot id {} is negative: the metadata is corrupt",
                snapshot.snapshot_id
            ))
        })?;
        let lake = LakeSnapshot {
            source: LakeSource {
                table: table.clone(),
                format: LakeFormat::Iceberg,
                location: pointer.unwrap_or(metadata_file),
                read_version: snapshot_id,
                schema_string: snapshot.schema_json.clone(),
                initial_files: Vec::new(),
            },
            files: snapshot
                .files
                .iter()
                .map(|f| {
                    Ok(LakeFile {
                        path: f.path.clone(),
                        local: match remote {
                            Some(_) => PathBuf::from(iceberg::object_key(&f.path)),
                            None => iceberg::local_file(&f.path),
                        },
                        rows: Some(f.record_count),
                        hive: partition_dir(&label, &f.path, f.partition.clone())?,
                    })
                })
                .collect::<Result<_, DbError>>()?,
            columns,
            declared: LayoutSpec {
                partition_by: snapshot
                    .partition_fields
                    .iter()
                    .map(|f| f.column.clone())
                    .collect(),
                sort_by: snapshot.sort_order.clone(),
                ..LayoutSpec::default()
            },
            not_carried: snapshot.sort_order_other.clone(),
            label,
            remote,
        };
        self.register_lake_table(lake, replace, progress).await
    }

    /// Where the Iceberg table whose current metadata file is `metadata` is: None on local
    /// disk (with DATA_DIR on local disk), else the root of its bucket, which must be
    /// DATA_DIR's (the store copies its files into layouts, server-side).
    async fn iceberg_bucket(&self, metadata: &str) -> Result<Option<RemoteDir>, DbError> {
        if !is_remote(metadata) {
            self.require_local_data(
                "an Iceberg table on local disk (register-table --iceberg; a table whose metadata is in DATA_DIR's bucket is)",
            )?;
            return Ok(None);
        }
        let data = self.data_bucket_for("Iceberg table", metadata)?;
        let root = open_dir(&iceberg::bucket_of(metadata)?).await?;
        Self::require_data_bucket("Iceberg table", &root, data)?;
        Ok(Some(root))
    }

    /// Stages the snapshot's files as the initial layout and commits the table with its lake
    /// row in one catalog transaction.
    async fn register_lake_table(
        &self,
        mut lake: LakeSnapshot,
        replace: bool,
        progress: &dyn Progress,
    ) -> Result<LakeRegisterReport, DbError> {
        // Staged in partition order, so the manifest's order (by path) is the files' order.
        lake.files.sort_by(|a, b| a.hive.cmp(&b.hive));
        lake.source.initial_files = lake.files.iter().map(|f| f.path.clone()).collect();
        let table = lake.source.table.clone();
        if lake.files.is_empty() {
            return Err(DbError::BadSource(format!(
                "{} has no data files: nothing to register",
                lake.label
            )));
        }
        let _lock = self.lock_for_initial_layout(&table)?;
        let now = self.clock().now_ms();
        let request = |manifest: &LayoutManifest| InitialLayoutRequest {
            table: table.clone(),
            source: lake.label.clone(),
            replace,
            rows_per_file: ROWS_PER_FILE,
            spec: manifest.spec.clone(),
            writers: 1,
        };
        let manifest = if let Some(root) = &lake.remote {
            let path = self.new_initial_path(&table)?;
            let manifest = self
                .copy_lake_files(&lake, root, &path, now, progress)
                .await?;
            self.commit_initial(&request(&manifest), &manifest, Some(&lake.source), &path)?;
            manifest
        } else {
            let staging = self
                .staging_dir(&table)
                .join(format!("initial-lake-{now}-{}", std::process::id()));
            let manifest = match self.stage_lake_files(&lake, &staging, now, progress).await {
                Ok(m) => m,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&staging);
                    return Err(e);
                }
            };
            self.publish_initial(&request(&manifest), &staging, &manifest, Some(&lake.source))?;
            manifest
        };
        Ok(LakeRegisterReport {
            table: table.to_string(),
            format: lake.source.format.to_string(),
            location: lake.source.location.clone(),
            version: lake.source.read_version,
            files: manifest.files.len(),
            bytes: manifest.total_bytes(),
            rows: manifest.row_count,
            declared: lake.declared.describe(),
            not_carried: lake.not_carried,
        })
    }

    /// Links the snapshot's files into `staging`, digests their rows and writes the manifest.
    async fn stage_lake_files(
        &self,
        lake: &LakeSnapshot,
        staging: &Path,
        now: i64,
        progress: &dyn Progress,
    ) -> Result<LayoutManifest, DbError> {
        let mut dirs = BTreeSet::from([staging.to_path_buf()]);
        let mut files = Vec::with_capacity(lake.files.len());
        for (i, file) in lake.files.iter().enumerate() {
            if !file.local.is_file() {
                return Err(DbError::BadSource(format!(
                    "file {} of {} is missing: the table was vacuumed or damaged; repair it before registering",
                    file.local.display(),
                    lake.label
                )));
            }
            let name = initial_file_name(i, &file.hive);
            let target = staging.join(&name);
            let dir = target.parent().unwrap_or(staging);
            std::fs::create_dir_all(dir)
                .map_err(|e| DbError::io(format!("creating {}", dir.display()), e))?;
            dirs.insert(dir.to_path_buf());
            link_file(&file.local, &target)?;
            files.push(describe_file(staging, &name)?);
        }
        let info = inspect_source(staging)?;
        let manifest = self.lake_manifest(lake, info, files, now, progress).await?;
        for dir in &dirs {
            fsync_dir(dir)?;
        }
        write_manifest(staging, &manifest)?;
        Ok(manifest)
    }

    /// Copies the snapshot's files (on object storage) into the table's new initial layout
    /// prefix `path` (relative to DATA_DIR, in its bucket), server-side, digests their rows and
    /// uploads the manifest last. A crash leaves objects no catalog row names; the next
    /// attempt starts by deleting them (or gc does).
    async fn copy_lake_files(
        &self,
        lake: &LakeSnapshot,
        root: &RemoteDir,
        path: &str,
        now: i64,
        progress: &dyn Progress,
    ) -> Result<LayoutManifest, DbError> {
        let Some(data) = self.remote_data() else {
            return Err(DbError::LocalDataOnly(
                "a lake table on object storage with DATA_DIR on local disk".into(),
            ));
        };
        let target = data.child(path)?;
        target.delete_all().await?;
        progress.message(&format!(
            "copying {} files of {} into {} (server-side)",
            lake.files.len(),
            lake.label,
            target.url
        ));
        for (i, file) in lake.files.iter().enumerate() {
            let name = initial_file_name(i, &file.hive);
            let from = file.local.to_string_lossy();
            if !target.copy_from(root, &from, &name).await? {
                return Err(DbError::BadSource(format!(
                    "file {}{from} of {} is missing: the table was vacuumed or damaged; repair it before registering",
                    root.url, lake.label
                )));
            }
        }
        let files = LayoutDir::Remote(target.clone()).describe_files()?;
        let info = inspect_remote_source(target.url.as_str()).await?;
        let manifest = self.lake_manifest(lake, info, files, now, progress).await?;
        target.put_manifest(&manifest).await?;
        Ok(manifest)
    }

    /// The initial layout's manifest for the snapshot's files `files` (read as `info`): their
    /// rows digested, checked against the rows the table's metadata says it holds.
    async fn lake_manifest(
        &self,
        lake: &LakeSnapshot,
        mut info: SourceInfo,
        mut files: Vec<ManifestFile>,
        now: i64,
        progress: &dyn Progress,
    ) -> Result<LayoutManifest, DbError> {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let (columns, align) = typed_columns(lake, &info)?;
        if let Some(schema) = &align {
            info.partition_cols = partition_types(schema, &lake.declared.partition_by)?;
        }
        let total = files.iter().map(|f| f.rows).sum();
        let digest = self
            .digest_source(&info, total, align.as_ref(), progress)
            .await?;
        let logged: Option<u64> = lake.files.iter().map(|f| f.rows).sum();
        if let Some(logged) = logged
            && logged != digest.rows
        {
            return Err(DbError::BadSource(format!(
                "{} says it holds {logged} rows but its files hold {}: the metadata and the files disagree",
                lake.label, digest.rows
            )));
        }
        Ok(LayoutManifest {
            layout_id: LayoutId::initial(),
            table: lake.source.table.to_string(),
            source_layout: None,
            spec: lake.declared.clone(),
            files,
            row_count: digest.rows,
            digest: digest.to_string(),
            created_at_ms: now,
            columns,
        })
    }

    /// For a lake table, makes `to` the table's content by a commit of its log that replaces
    /// the files of `from`; None for a managed table (nothing outside the catalog to change).
    pub(crate) fn publish_to_lake(
        &self,
        table: &TableName,
        from: &LayoutId,
        to: &LayoutId,
        operation: &str,
    ) -> Result<Option<LakeCommit>, DbError> {
        let Some(lake) = self.catalog().lake_source(table)? else {
            return Ok(None);
        };
        if lake.format == LakeFormat::Iceberg {
            return self.publish_to_iceberg(&lake, from, to).map(Some);
        }
        let root = lake_root(&lake)?;
        let remove = self.lake_paths(&lake, from, |name| delta::log_path(&name))?;
        let add_paths = self.place_in_lake(&lake, &root, to)?;
        let mut add = Vec::with_capacity(add_paths.len());
        for path in &add_paths {
            add.push(delta::describe_new_file(&root, path)?);
        }
        fail_point("lake.before_commit")?;
        let outcome = delta::commit_replace(
            &root,
            &ReplaceCommit {
                remove: &remove,
                add: &add,
                operation,
                layout_id: to.as_str(),
                schema_string: &lake.schema_string,
                now_ms: self.clock().now_ms(),
            },
        )?;
        fail_point("lake.committed")?;
        Ok(Some(match outcome {
            CommitOutcome::Committed(version) => LakeCommit {
                format: LakeFormat::Delta,
                version,
                committed_now: true,
            },
            CommitOutcome::AlreadyCommitted(version) => LakeCommit {
                format: LakeFormat::Delta,
                version,
                committed_now: false,
            },
        }))
    }

    /// Refuses a layout spec a lake table cannot publish: one whose partitioning differs from
    /// the table's declared partitioning, which a replace commit does not change.
    pub(crate) fn check_lake_spec(
        &self,
        table: &TableName,
        spec: &LayoutSpec,
    ) -> Result<(), DbError> {
        let Some(lake) = self.catalog().lake_source(table)? else {
            return Ok(());
        };
        let declared = self
            .layout_manifest(table, &LayoutId::initial())?
            .spec
            .partition_by;
        if spec.partition_by != declared {
            let format = lake.format.title();
            let declared_text = if declared.is_empty() {
                format!(
                    "an unpartitioned {format} table: its layouts stay unpartitioned (drop partition_by"
                )
            } else {
                let article = if format.starts_with(['A', 'E', 'I', 'O', 'U']) {
                    "an"
                } else {
                    "a"
                };
                format!(
                    "{article} {format} table partitioned by {declared:?}: its layouts keep that partitioning (use partition_by = {declared:?}"
                )
            };
            return Err(DbError::BadArgument(format!(
                "table '{table}' is {declared_text}; sort, cluster and Parquet sizing are free)"
            )));
        }
        Ok(())
    }

    /// The paths of `layout`'s files as the lake table's metadata names them: the initial
    /// layout's as registered, another layout's by `path_of` its file name in the table.
    fn lake_paths(
        &self,
        lake: &LakeSource,
        layout: &LayoutId,
        path_of: impl Fn(String) -> String,
    ) -> Result<Vec<String>, DbError> {
        if *layout == LayoutId::initial() {
            return Ok(lake.initial_files.clone());
        }
        let manifest = self.layout_manifest(&lake.table, layout)?;
        Ok(manifest
            .files
            .iter()
            .map(|f| path_of(lake_file_name(layout, &f.path)))
            .collect())
    }

    /// Puts `layout`'s files in the table directory `root` (links, or copies across file
    /// systems; on object storage copies by the store) unless they are there, and returns
    /// their log paths.
    fn place_in_lake(
        &self,
        lake: &LakeSource,
        root: &LayoutDir,
        layout: &LayoutId,
    ) -> Result<Vec<String>, DbError> {
        let paths = self.lake_paths(lake, layout, |name| delta::log_path(&name))?;
        if *layout == LayoutId::initial() {
            for path in &paths {
                if !delta::file_exists(root, path)? {
                    return Err(DbError::BadArgument(format!(
                        "file {path} of the initial layout is gone from Delta table {root} (vacuumed): rolling back to it is no longer possible"
                    )));
                }
            }
            return Ok(paths);
        }
        match root {
            LayoutDir::Local(dir) => {
                self.link_layout_into(&lake.table, layout, dir)?;
            }
            LayoutDir::Remote(dir) => self.copy_layout_into(&lake.table, layout, dir)?,
        }
        Ok(paths)
    }

    /// Copies `layout`'s files into the table prefix `dir` on object storage as
    /// `dbopt-<layout>-part-NNNNN.parquet`, server-side, unless they are there.
    fn copy_layout_into(
        &self,
        table: &TableName,
        layout: &LayoutId,
        dir: &RemoteDir,
    ) -> Result<(), DbError> {
        let manifest = self.layout_manifest(table, layout)?;
        self.check_lake_spec(table, &manifest.spec)?;
        let LayoutDir::Remote(source) = self.layout_location(table, layout)? else {
            return Err(DbError::LocalDataOnly(
                "publishing to a lake table on object storage with DATA_DIR on local disk".into(),
            ));
        };
        for file in &manifest.files {
            let name = lake_file_name(layout, &file.path);
            if block_on(dir.head(&name))?.is_some() {
                continue;
            }
            if !block_on(dir.copy_from(&source, &file.path, &name))? {
                return Err(DbError::BadSource(format!(
                    "{}{} is listed in layout {layout}'s manifest but is not in the store: drop the layout and build it again",
                    source.url, file.path
                )));
            }
        }
        Ok(())
    }

    /// Links (or copies, across file systems) `layout`'s files into `dir` as
    /// `dbopt-<layout>-part-NNNNN.parquet` unless they are there, and syncs `dir`. Returns each
    /// file's name in `dir` with its rows.
    fn link_layout_into(
        &self,
        table: &TableName,
        layout: &LayoutId,
        dir: &Path,
    ) -> Result<Vec<(String, u64)>, DbError> {
        let manifest = self.layout_manifest(table, layout)?;
        self.check_lake_spec(table, &manifest.spec)?;
        let source = self.layout_dir(table, layout);
        std::fs::create_dir_all(dir)
            .map_err(|e| DbError::io(format!("creating {}", dir.display()), e))?;
        let mut placed = Vec::with_capacity(manifest.files.len());
        let mut dirs = BTreeSet::from([dir.to_path_buf()]);
        for file in &manifest.files {
            let name = lake_file_name(layout, &file.path);
            let target = dir.join(&name);
            let parent = target.parent().unwrap_or(dir);
            if dirs.insert(parent.to_path_buf()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| DbError::io(format!("creating {}", parent.display()), e))?;
            }
            if !target.is_file() {
                let file_name = target.file_name().unwrap_or_default().to_string_lossy();
                let staged = parent.join(format!(".{file_name}.dbopt-tmp"));
                let _ = std::fs::remove_file(&staged);
                link_or_copy(&source.join(&file.path), &staged)?;
                std::fs::rename(&staged, &target)
                    .map_err(|e| DbError::io(format!("placing {}", target.display()), e))?;
            }
            placed.push((name, file.rows));
        }
        for dir in &dirs {
            fsync_dir(dir)?;
        }
        Ok(placed)
    }

    /// Publishes `to` in place of `from` on an Iceberg table's `main`: a fast-forward to the
    /// canary's branch when it was made from `main`'s current snapshot, else a replace
    /// snapshot. Committed through the SQL catalog's compare-and-swap.
    fn publish_to_iceberg(
        &self,
        lake: &LakeSource,
        from: &LayoutId,
        to: &LayoutId,
    ) -> Result<LakeCommit, DbError> {
        let (snapshot_id, committed_now) = self
            .commit_iceberg(
                lake,
                &IcebergChange::Replace {
                    from,
                    to,
                    branch: false,
                },
            )?
            .expect("a replace always names a snapshot");
        Ok(LakeCommit {
            format: LakeFormat::Iceberg,
            version: snapshot_id as u64,
            committed_now,
        })
    }

    /// For a table registered through an Iceberg catalog, commits `layout` as a replace
    /// snapshot on the branch `dbopt/<layout>` (made from `main`, which does not move), for
    /// the canary; None for any other table.
    pub(crate) fn stage_lake_branch(
        &self,
        table: &TableName,
        from: &LayoutId,
        layout: &LayoutId,
    ) -> Result<Option<String>, DbError> {
        let Some(lake) = self.iceberg_catalog_table(table)? else {
            return Ok(None);
        };
        let change = IcebergChange::Replace {
            from,
            to: layout,
            branch: true,
        };
        Ok(self
            .commit_iceberg(&lake, &change)?
            .map(|(id, _)| format!("{} at snapshot {id}", branch_name(layout))))
    }

    /// Drops the canary branch of `layout` (a rejected candidate), if there is one.
    pub(crate) fn drop_lake_branch(
        &self,
        table: &TableName,
        layout: &LayoutId,
    ) -> Result<(), DbError> {
        if let Some(lake) = self.iceberg_catalog_table(table)? {
            self.commit_iceberg(&lake, &IcebergChange::DropBranch(layout))?;
        }
        Ok(())
    }

    /// The lake row of `table` when it is an Iceberg table registered through its catalog.
    fn iceberg_catalog_table(&self, table: &TableName) -> Result<Option<LakeSource>, DbError> {
        Ok(self.catalog().lake_source(table)?.filter(|l| {
            l.format == LakeFormat::Iceberg && IcebergSqlTable::from_location(&l.location).is_ok()
        }))
    }

    /// Writes the metadata of `change` on top of the table's current metadata and publishes
    /// it by the catalog's compare-and-swap, planning again when another writer committed
    /// first. Returns the snapshot the change made current or branched (and whether it was
    /// committed now), or None when there was nothing to do.
    fn commit_iceberg(
        &self,
        lake: &LakeSource,
        change: &IcebergChange<'_>,
    ) -> Result<Option<(i64, bool)>, DbError> {
        let catalog = IcebergSqlTable::from_location(&lake.location).map_err(|_| {
            DbError::BadArgument(format!(
                "table '{}' was registered from an Iceberg metadata file, not through its catalog: dbopt publishes to Iceberg only by the catalog's commit; register it with --iceberg-catalog URI --iceberg-table NAMESPACE.TABLE",
                lake.table
            ))
        })?;
        let sort_order = match change {
            IcebergChange::Replace { to, .. } => {
                self.layout_manifest(&lake.table, to)?.spec.sort_by
            }
            IcebergChange::DropBranch(_) => Vec::new(),
        };
        for _ in 0..COMMIT_ATTEMPTS {
            let current = catalog.current_metadata()?;
            let now_ms = self.clock().now_ms();
            let written = match change {
                IcebergChange::Replace { from, to, branch } => {
                    let name = branch_name(to);
                    let forwarded = if *branch {
                        None
                    } else {
                        iceberg::fast_forward(&current, &name, &sort_order, now_ms)?
                    };
                    match forwarded {
                        Some(outcome) => outcome,
                        None => {
                            let data_dir = iceberg::data_dir(&current)?;
                            let remove =
                                self.lake_paths(lake, from, |name| format!("{data_dir}/{name}"))?;
                            let add = self.iceberg_files(lake, to, &data_dir)?;
                            iceberg::write_replace(
                                &current,
                                &IcebergReplace {
                                    remove: &remove,
                                    add: &add,
                                    sort_order: &sort_order,
                                    layout_id: to.as_str(),
                                    schema_json: &lake.schema_string,
                                    now_ms,
                                    branch: branch.then_some(name.as_str()),
                                },
                            )?
                        }
                    }
                }
                IcebergChange::DropBranch(layout) => {
                    match iceberg::drop_branch(&current, &branch_name(layout), now_ms)? {
                        Some(file) => ReplaceOutcome::Written {
                            metadata_file: file,
                            snapshot_id: -1,
                        },
                        None => return Ok(None),
                    }
                }
            };
            let (metadata_file, snapshot_id) = match written {
                ReplaceOutcome::AlreadyCommitted(id) => return Ok(Some((id, false))),
                ReplaceOutcome::Written {
                    metadata_file,
                    snapshot_id,
                } => (metadata_file, snapshot_id),
            };
            fail_point("lake.before_commit")?;
            if catalog.swap_metadata(&current, &metadata_file)? {
                fail_point("lake.committed")?;
                return Ok(Some((snapshot_id, true)));
            }
            // Another writer committed first: what was written is an orphan the table's own
            // maintenance removes; plan again on the new metadata.
        }
        Err(DbError::BadArgument(format!(
            "Iceberg table '{}' kept changing: {COMMIT_ATTEMPTS} commits lost the race to other writers; try again when it is quieter",
            lake.table
        )))
    }

    /// `layout`'s files as an Iceberg replace adds them, placed in the table's data directory
    /// `data_dir` (a URI; in a bucket copied there by the store), with their sizes read back
    /// (the initial layout's own files must still be there).
    fn iceberg_files(
        &self,
        lake: &LakeSource,
        layout: &LayoutId,
        data_dir: &str,
    ) -> Result<Vec<IcebergNewFile>, DbError> {
        let manifest = self.layout_manifest(&lake.table, layout)?;
        let placed: Vec<(String, u64, String)> = if *layout == LayoutId::initial() {
            lake.initial_files
                .iter()
                .zip(&manifest.files)
                .map(|(uri, f)| (uri.clone(), f.rows, f.path.clone()))
                .collect()
        } else {
            let names = if is_remote(data_dir) {
                self.copy_layout_into(&lake.table, layout, &block_on(open_dir(data_dir))?)?;
                manifest
                    .files
                    .iter()
                    .map(|f| (lake_file_name(layout, &f.path), f.rows))
                    .collect()
            } else {
                self.link_layout_into(&lake.table, layout, &iceberg::local_file(data_dir))?
            };
            names
                .into_iter()
                .map(|(name, rows)| (format!("{data_dir}/{name}"), rows, name))
                .collect()
        };
        let uris: Vec<String> = placed.iter().map(|(uri, ..)| uri.clone()).collect();
        let sizes = iceberg::file_sizes(&uris)?;
        placed
            .into_iter()
            .zip(sizes)
            .map(|((uri, rows, name), size)| {
                let size = size.ok_or_else(|| {
                    DbError::BadArgument(format!(
                        "file {uri} of layout {layout} is gone from Iceberg table '{}' (expired): publishing it is no longer possible",
                        lake.table
                    ))
                })?;
                Ok(IcebergNewFile {
                    uri,
                    size,
                    record_count: rows,
                    partition: parse_hive_dir(&name),
                })
            })
            .collect()
    }
}

/// What an Iceberg commit does to the table's metadata.
enum IcebergChange<'a> {
    /// `to`'s files in place of `from`'s: on `main`, or on the canary branch of `to`.
    Replace {
        from: &'a LayoutId,
        to: &'a LayoutId,
        branch: bool,
    },
    /// Drop the canary branch of a layout.
    DropBranch(&'a LayoutId),
}

/// The canary branch of a layout: `dbopt/<layout>`.
fn branch_name(layout: &LayoutId) -> String {
    format!("dbopt/{layout}")
}

/// The root of the Delta table `lake`: its directory, or its prefix on object storage.
fn lake_root(lake: &LakeSource) -> Result<LayoutDir, DbError> {
    if is_remote(&lake.location) {
        Ok(LayoutDir::Remote(block_on(open_dir(&lake.location))?))
    } else {
        Ok(LayoutDir::Local(PathBuf::from(&lake.location)))
    }
}

/// How many times an Iceberg commit is re-planned after losing the catalog's race.
const COMMIT_ATTEMPTS: usize = 5;

/// The path, resolved, or an error naming what was expected there.
fn canonical(path: &Path, expected: &str) -> Result<PathBuf, DbError> {
    std::fs::canonicalize(path).map_err(|e| {
        DbError::BadSource(format!(
            "{} cannot be opened ({e}): give {expected}",
            path.display()
        ))
    })
}

/// The hive directory of a lake file's partition values (`day=2024-01-05`, empty when the
/// table is unpartitioned); a null or empty value, which a hive layout cannot hold, is refused.
fn partition_dir(
    label: &str,
    path: &str,
    values: Vec<(String, Option<String>)>,
) -> Result<String, DbError> {
    if let Some((column, _)) = values
        .iter()
        .find(|(_, v)| v.as_deref().is_none_or(str::is_empty))
    {
        return Err(DbError::BadSource(format!(
            "{label} has rows with a null {column} (file {path}): dbopt keeps partitions as hive directories, which cannot hold a null; fill or delete those rows first"
        )));
    }
    Ok(hive_dir(&values))
}

/// A partitioned table's columns with their Arrow type names, and the schema its rows are
/// digested in.
type TypedColumns = (Vec<(String, String)>, Option<SchemaRef>);

/// The table's columns with their Arrow type names, for a partitioned layout's manifest, and
/// the schema its rows are digested in (columns in table order, partition columns typed);
/// nothing for an unpartitioned table, whose files hold every column.
fn typed_columns(lake: &LakeSnapshot, info: &SourceInfo) -> Result<TypedColumns, DbError> {
    if lake.columns.is_empty() {
        return Ok((Vec::new(), None));
    }
    let in_files = info.first_schema()?;
    let mut columns = Vec::with_capacity(lake.columns.len());
    for (name, partition_type) in &lake.columns {
        let data_type = match (partition_type, in_files.field_with_name(name)) {
            (Some(t), _) => t.clone(),
            (None, Ok(f)) => f.data_type().clone(),
            (None, Err(_)) => {
                return Err(DbError::BadSource(format!(
                    "{}: column '{name}' of the table's schema is not in its files (added later?): dbopt reads only files that hold every column",
                    lake.label
                )));
            }
        };
        columns.push((name.clone(), data_type.to_string()));
    }
    let schema = schema_with_columns(&in_files, &columns)?;
    Ok((columns, Some(schema)))
}

/// The name of the `i`-th file of a lake table's initial layout, in its partition's hive
/// directory `hive` (empty when unpartitioned).
fn initial_file_name(i: usize, hive: &str) -> String {
    match hive {
        "" => format!("part-{i:05}.parquet"),
        dir => format!("{dir}/part-{i:05}.parquet"),
    }
}

/// The spec the table declares: its partition columns, and a Z-order by the columns of its
/// newest `OPTIMIZE ZORDER BY`.
fn declared_spec(snapshot: &DeltaSnapshot) -> LayoutSpec {
    let mut spec = LayoutSpec {
        partition_by: snapshot.partition_columns.clone(),
        ..LayoutSpec::default()
    };
    if (2..=4).contains(&snapshot.z_order_by.len()) {
        spec.cluster_by = snapshot.z_order_by.clone();
        spec.curve = Curve::ZOrder;
    }
    spec
}

/// The path of a layout file in the table directory: in its partition's hive directories
/// (kept as they are), named `dbopt-<layout>-<the rest of its path, '/' as '-'>`.
fn lake_file_name(layout: &LayoutId, file: &str) -> String {
    let parts: Vec<&str> = file.split('/').collect();
    let hive = parts
        .iter()
        .take(parts.len() - 1)
        .take_while(|p| p.contains('='))
        .count();
    let name = format!("dbopt-{layout}-{}", parts[hive..].join("-"));
    match hive {
        0 => name,
        _ => format!("{}/{name}", parts[..hive].join("/")),
    }
}

/// Hard-links `source` at `target`, or makes a symbolic link when they are on different file
/// systems (the table's data is never copied by registering it).
fn link_file(source: &Path, target: &Path) -> Result<(), DbError> {
    if std::fs::hard_link(source, target).is_ok() {
        return Ok(());
    }
    std::os::unix::fs::symlink(source, target).map_err(|e| {
        DbError::io(
            format!("linking {} to {}", target.display(), source.display()),
            e,
        )
    })
}

/// Hard-links `source` at `target`, or copies it (and syncs the copy) across file systems.
pub(crate) fn link_or_copy(source: &Path, target: &Path) -> Result<(), DbError> {
    if std::fs::hard_link(source, target).is_ok() {
        return Ok(());
    }
    std::fs::copy(source, target).map_err(|e| {
        DbError::io(
            format!("copying {} to {}", source.display(), target.display()),
            e,
        )
    })?;
    std::fs::File::open(target)
        .and_then(|f| f.sync_all())
        .map_err(|e| DbError::io(format!("syncing {}", target.display()), e))
}
