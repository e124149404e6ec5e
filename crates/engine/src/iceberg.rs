//! Apache Iceberg tables on local disk: the current snapshot, read from the table's own
//! metadata (metadata JSON, Avro manifest list, Avro manifests).
//!
//! Guarantees: a table this module cannot read exactly is refused with the reason, before a
//! row is read: format version 3, delete files (position or equality deletes), data files
//! that are not Parquet, partitioned tables, tables whose schema evolved (column renames are
//! resolved by field id, which dbopt's name-based reads do not do), and files outside the
//! local file system.

use crate::EngineError;
use crate::avro::read_container;
use dbopt_core::SortKey;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One live data file of an Iceberg snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct IcebergFile {
    /// The path as the manifest writes it (a `file://` URI or a plain path).
    pub path: String,
    /// The file on local disk.
    pub local: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Rows.
    pub record_count: u64,
}

/// An Iceberg table at its current snapshot.
#[derive(Debug, Clone)]
pub struct IcebergSnapshot {
    /// The metadata file read.
    pub metadata_file: PathBuf,
    /// The table's format version (1 or 2).
    pub format_version: u64,
    /// The current snapshot's id.
    pub snapshot_id: i64,
    /// Its live data files, sorted by path.
    pub files: Vec<IcebergFile>,
    /// The current schema, as the metadata writes it (JSON).
    pub schema_json: String,
    /// The table's default sort order, by column name (identity transforms only).
    pub sort_order: Vec<SortKey>,
    /// The default sort order's fields with transforms other than identity, in words.
    pub sort_order_other: Vec<String>,
}

/// Reads the current snapshot of the Iceberg table at `location`: a `*.metadata.json` file,
/// or a table directory (its `metadata/version-hint.text`, else its newest metadata file).
pub fn load_snapshot(location: &Path) -> Result<IcebergSnapshot, EngineError> {
    let metadata_file = metadata_file(location)?;
    let text = std::fs::read_to_string(&metadata_file)
        .map_err(|e| EngineError::io(format!("reading {}", metadata_file.display()), e))?;
    let meta: Value = serde_json::from_str(&text).map_err(|e| {
        bad(
            &metadata_file,
            &format!("is not valid table metadata JSON ({e})"),
        )
    })?;
    let format_version = meta["format-version"].as_u64().unwrap_or(1);
    if !(1..=2).contains(&format_version) {
        return Err(unsupported(
            &metadata_file,
            &format!("format version {format_version}"),
        ));
    }
    let schema = current_schema(&meta, &metadata_file)?;
    if meta["schemas"].as_array().is_some_and(|s| s.len() > 1) {
        return Err(unsupported(
            &metadata_file,
            "an evolved schema (more than one schema in its history)",
        ));
    }
    let snapshot_id = meta["current-snapshot-id"]
        .as_i64()
        .filter(|&id| id >= 0)
        .ok_or_else(|| {
            bad(
                &metadata_file,
                "has no current snapshot: the table holds no data yet",
            )
        })?;
    let snapshot = meta["snapshots"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|s| s["snapshot-id"].as_i64() == Some(snapshot_id))
        })
        .ok_or_else(|| {
            bad(
                &metadata_file,
                &format!("names snapshot {snapshot_id}, which it does not list"),
            )
        })?;
    let manifests = manifest_paths(snapshot, &metadata_file)?;
    let mut files = Vec::new();
    for (manifest, spec_id) in manifests {
        if partition_fields(&meta, spec_id) > 0 {
            return Err(unsupported(
                &metadata_file,
                "a partitioned layout (partition spec with fields)",
            ));
        }
        files.extend(read_manifest(&manifest, &metadata_file)?);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let (sort_order, sort_order_other) = sort_order(&meta, &schema);
    Ok(IcebergSnapshot {
        metadata_file,
        format_version,
        snapshot_id,
        files,
        schema_json: schema.to_string(),
        sort_order,
        sort_order_other,
    })
}

/// The metadata file `location` stands for.
fn metadata_file(location: &Path) -> Result<PathBuf, EngineError> {
    if location.is_file() {
        return Ok(location.to_path_buf());
    }
    let dir = location.join("metadata");
    if !dir.is_dir() {
        return Err(EngineError::Lake(format!(
            "{} is not an Iceberg table (no metadata directory or *.metadata.json file): give the table directory or its current metadata file",
            location.display()
        )));
    }
    if let Ok(hint) = std::fs::read_to_string(dir.join("version-hint.text")) {
        let v = hint.trim();
        return Ok(dir.join(format!("v{v}.metadata.json")));
    }
    let newest = std::fs::read_dir(&dir)
        .map_err(|e| EngineError::io(format!("listing {}", dir.display()), e))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".metadata.json")?;
            let digits: String = stem
                .trim_start_matches('v')
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            Some((digits.parse::<u64>().ok()?, e.path()))
        })
        .max_by_key(|(v, _)| *v);
    newest.map(|(_, p)| p).ok_or_else(|| {
        EngineError::Lake(format!(
            "{} has no *.metadata.json file: it is not an Iceberg table",
            dir.display()
        ))
    })
}

fn current_schema(meta: &Value, file: &Path) -> Result<Value, EngineError> {
    if let Some(schemas) = meta["schemas"].as_array() {
        let id = meta["current-schema-id"].as_i64().unwrap_or(0);
        if let Some(s) = schemas
            .iter()
            .find(|s| s["schema-id"].as_i64().unwrap_or(0) == id)
        {
            return Ok(s.clone());
        }
    }
    meta.get("schema")
        .cloned()
        .ok_or_else(|| bad(file, "has no current schema"))
}

/// Manifest files of a snapshot with their partition spec ids (v2: from the manifest list;
/// v1 may list them inline).
fn manifest_paths(snapshot: &Value, file: &Path) -> Result<Vec<(PathBuf, i64)>, EngineError> {
    if let Some(list) = snapshot["manifest-list"].as_str() {
        let path = local_path(list, file)?;
        let avro = read_avro(&path)?;
        let mut out = Vec::new();
        for m in avro.records {
            let content = m["content"].as_i64().unwrap_or(0);
            let live = [
                "added_files_count",
                "existing_files_count",
                "added_data_files_count",
                "existing_data_files_count",
            ]
            .iter()
            .filter_map(|k| m[*k].as_i64())
            .sum::<i64>();
            if content != 0 {
                if live > 0 {
                    return Err(unsupported(
                        file,
                        "delete files (row-level deletes not yet compacted)",
                    ));
                }
                continue;
            }
            let manifest = m["manifest_path"]
                .as_str()
                .ok_or_else(|| bad(file, "has a manifest list entry without manifest_path"))?;
            out.push((
                local_path(manifest, file)?,
                m["partition_spec_id"].as_i64().unwrap_or(0),
            ));
        }
        return Ok(out);
    }
    let inline = snapshot["manifests"]
        .as_array()
        .ok_or_else(|| bad(file, "has a snapshot without a manifest list"))?;
    inline
        .iter()
        .map(|m| {
            let p = m
                .as_str()
                .ok_or_else(|| bad(file, "lists a manifest that is not a path"))?;
            Ok((local_path(p, file)?, 0))
        })
        .collect()
}

fn partition_fields(meta: &Value, spec_id: i64) -> usize {
    let specs = meta["partition-specs"].as_array();
    let spec = specs.and_then(|s| s.iter().find(|s| s["spec-id"].as_i64() == Some(spec_id)));
    match spec {
        Some(s) => s["fields"].as_array().map_or(0, Vec::len),
        // v1 tables may carry only `partition-spec`, the fields themselves.
        None => meta["partition-spec"].as_array().map_or(0, Vec::len),
    }
}

fn read_manifest(manifest: &Path, file: &Path) -> Result<Vec<IcebergFile>, EngineError> {
    let avro = read_avro(manifest)?;
    let mut out = Vec::new();
    for entry in avro.records {
        if entry["status"].as_i64() == Some(2) {
            continue; // deleted in this snapshot
        }
        let data = &entry["data_file"];
        if data["content"].as_i64().unwrap_or(0) != 0 {
            return Err(unsupported(
                file,
                "delete files (row-level deletes not yet compacted)",
            ));
        }
        let format = data["file_format"].as_str().unwrap_or("PARQUET");
        if !format.eq_ignore_ascii_case("parquet") {
            return Err(unsupported(file, &format!("{format} data files")));
        }
        let path = data["file_path"]
            .as_str()
            .ok_or_else(|| bad(manifest, "has an entry without file_path"))?;
        out.push(IcebergFile {
            path: path.to_string(),
            local: local_path(path, file)?,
            size: data["file_size_in_bytes"].as_u64().unwrap_or(0),
            record_count: data["record_count"].as_u64().unwrap_or(0),
        });
    }
    Ok(out)
}

/// The default sort order: identity fields as sort keys, the others in words.
fn sort_order(meta: &Value, schema: &Value) -> (Vec<SortKey>, Vec<String>) {
    let id = meta["default-sort-order-id"].as_i64().unwrap_or(0);
    let order = meta["sort-orders"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["order-id"].as_i64() == Some(id)));
    let name_of = |source: i64| {
        schema["fields"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["id"].as_i64() == Some(source)))
            .and_then(|f| f["name"].as_str())
            .map(String::from)
    };
    let mut keys = Vec::new();
    let mut other = Vec::new();
    for field in order
        .and_then(|o| o["fields"].as_array())
        .into_iter()
        .flatten()
    {
        let Some(column) = field["source-id"].as_i64().and_then(name_of) else {
            continue;
        };
        let transform = field["transform"].as_str().unwrap_or("identity");
        let descending = field["direction"].as_str() == Some("desc");
        if transform == "identity" {
            keys.push(SortKey { column, descending });
        } else {
            other.push(format!("{transform}({column})"));
        }
    }
    (keys, other)
}

/// A metadata path (a `file://` URI or a local path) as a local file.
fn local_path(uri: &str, file: &Path) -> Result<PathBuf, EngineError> {
    if let Some(rest) = uri.strip_prefix("file://") {
        return Ok(PathBuf::from(rest));
    }
    if uri.contains("://") {
        return Err(unsupported(
            file,
            &format!("files outside the local file system ({uri})"),
        ));
    }
    Ok(PathBuf::from(uri))
}

fn read_avro(path: &Path) -> Result<crate::avro::AvroFile, EngineError> {
    let bytes = std::fs::read(path)
        .map_err(|e| EngineError::io(format!("reading {}", path.display()), e))?;
    read_container(&bytes).map_err(|e| bad(path, &format!("is not a readable Avro file ({e})")))
}

fn bad(file: &Path, what: &str) -> EngineError {
    EngineError::Lake(format!("Iceberg metadata {} {what}", file.display()))
}

fn unsupported(file: &Path, what: &str) -> EngineError {
    EngineError::Lake(format!(
        "Iceberg table {} uses {what}, which dbopt does not support yet: it is left untouched",
        file.display()
    ))
}
