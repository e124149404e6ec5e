//! Apache Iceberg tables on local disk or in a bucket of an object store: the current
//! snapshot, read from the table's own metadata (metadata JSON, Avro manifest list, Avro
//! manifests), and replace snapshots written beside it for the table's catalog to publish.
//!
//! A replace snapshot removes the files of one layout and adds another's, as
//! `rewrite_data_files` does: manifests that held a removed file are rewritten (their other
//! live files kept as EXISTING, the removed ones marked DELETED, sequence numbers kept), the
//! others are carried over untouched, so files another writer appended stay live. The new
//! metadata file also sets the layout's sort order as the table's default. Nothing here makes
//! the snapshot current: the caller swaps the catalog's pointer (compare-and-swap), and a
//! writer that loses the race re-plans on the new metadata.
//!
//! Guarantees: a table this module cannot read exactly is refused with the reason, before a
//! row is read: format version 3, delete files (position or equality deletes), data files
//! that are not Parquet, partition transforms other than identity (and identity partitions of
//! types other than string, int, long, date and boolean), files written under an older
//! partition spec, tables whose schema evolved (column renames are resolved by field id,
//! which dbopt's name-based reads do not do), and files outside the local file system or the
//! bucket that holds the table's metadata (see `io`).
//!
//! Partitioned tables: each file's identity-partition values are read from its manifest entry
//! and written into the entries a replace adds (with the manifest list's partition summaries),
//! under the table's default partition spec. dbopt's own files leave the partition columns
//! out, as hive layouts do: Iceberg readers take an identity partition's column from the
//! entry's partition value when the file lacks it (the spec's column projection rules).

mod io;

pub use io::{bucket_of, file_uri, local_file, object_key, to_uri};

use crate::EngineError;
use crate::avro::{read_container, write_container};
use crate::file_bounds::Bound;
use arrow::datatypes::DataType;
use dbopt_core::SortKey;
use io::{TableIo, file_name, parent};
use serde_json::Value;
use std::collections::HashSet;

/// One live data file of an Iceberg snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct IcebergFile {
    /// The path as the manifest writes it (a `file://` URI, a plain path, or an object-store
    /// URI in the bucket of the table's metadata).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Rows.
    pub record_count: u64,
    /// Its identity-partition values by source column, in spec order, as text (`2024-01-05`,
    /// `42`, `true`); None is null. Empty when the table is unpartitioned.
    pub partition: Vec<(String, Option<String>)>,
}

/// An identity field of a table's partition spec.
#[derive(Debug, Clone, PartialEq)]
pub struct IcebergPartitionField {
    /// The partition field's name: the key of a data file's `partition` record.
    pub name: String,
    /// The source column's name.
    pub column: String,
    /// The source column's Iceberg type: `string`, `int`, `long`, `date` or `boolean`.
    pub source_type: String,
}

/// An Iceberg table at its current snapshot.
#[derive(Debug, Clone)]
pub struct IcebergSnapshot {
    /// The metadata file read, as a URI (`file:///...` or `s3://bucket/...`).
    pub metadata_file: String,
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
    /// The default partition spec's fields (identity transforms), outermost first.
    pub partition_fields: Vec<IcebergPartitionField>,
}

impl IcebergSnapshot {
    /// The table's columns in schema order, each with its Arrow type when it is a partition
    /// column (the columns dbopt reads from hive directories rather than from the files).
    pub fn columns(&self) -> Result<Vec<(String, Option<DataType>)>, EngineError> {
        let schema: Value = serde_json::from_str(&self.schema_json).map_err(|e| {
            bad(
                &self.metadata_file,
                &format!("has a schema that is not JSON ({e})"),
            )
        })?;
        Ok(schema["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                let name = f["name"].as_str().unwrap_or_default().to_string();
                let partition = self
                    .partition_fields
                    .iter()
                    .find(|p| p.column == name)
                    .and_then(|p| arrow_type(&p.source_type));
                (name, partition)
            })
            .collect())
    }
}

/// The Arrow type an identity-partition column of Iceberg type `ty` is read as.
fn arrow_type(ty: &str) -> Option<DataType> {
    Some(match ty {
        "string" => DataType::Utf8,
        "int" => DataType::Int32,
        "long" => DataType::Int64,
        "date" => DataType::Date32,
        "boolean" => DataType::Boolean,
        _ => return None,
    })
}

/// Reads the current snapshot of the Iceberg table at `location` (a local path or a URI): a
/// `*.metadata.json` file, or a table directory (its `metadata/version-hint.text`, else its
/// newest metadata file).
pub fn load_snapshot(location: &str) -> Result<IcebergSnapshot, EngineError> {
    let io = TableIo::for_uri(&to_uri(location))?;
    let metadata_file = metadata_file(&io, location)?;
    let meta = read_metadata(&io, &metadata_file)?;
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
    let snapshot = snapshot_of(&meta, snapshot_id, &metadata_file)?;
    let manifests = manifest_paths(&io, snapshot, &metadata_file)?;
    let (spec_id, partition_fields) = default_partition_spec(&meta, &schema, &metadata_file)?;
    let mut files = Vec::new();
    for (manifest, manifest_spec) in manifests {
        if manifest_spec != spec_id
            && !(partition_fields.is_empty() && spec_fields(&meta, manifest_spec).is_empty())
        {
            return Err(unsupported(
                &metadata_file,
                "data files written under an older partition spec (rewrite them under the current spec first)",
            ));
        }
        files.extend(read_manifest(
            &io,
            &manifest,
            &metadata_file,
            &partition_fields,
        )?);
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
        partition_fields,
    })
}

/// A file to add in a replace snapshot (already in place in the table's data directory).
#[derive(Debug, Clone)]
pub struct IcebergNewFile {
    /// The file's URI, as the manifest names it (`file:///...` or `s3://bucket/...`).
    pub uri: String,
    /// Size in bytes.
    pub size: u64,
    /// Rows.
    pub record_count: u64,
    /// Its identity-partition values by source column, as text (see [`IcebergFile`]).
    pub partition: Vec<(String, Option<String>)>,
}

/// What a replace snapshot swaps.
#[derive(Debug, Clone)]
pub struct IcebergReplace<'a> {
    /// Paths (as manifests write them) of the files it replaces; all must still be live.
    pub remove: &'a [String],
    /// The files it adds.
    pub add: &'a [IcebergNewFile],
    /// The layout's sort order, set as the table's default (empty: the default is kept).
    pub sort_order: &'a [SortKey],
    /// The dbopt layout it publishes (kept in the snapshot summary).
    pub layout_id: &'a str,
    /// The schema the files were written with; a table with another one gives up.
    pub schema_json: &'a str,
    /// Commit time, ms since the Unix epoch.
    pub now_ms: i64,
    /// Commit to this branch (created from `main`'s current snapshot) instead of `main`: the
    /// canary's snapshot, which promote fast-forwards `main` to.
    pub branch: Option<&'a str>,
}

/// The outcome of [`write_replace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaceOutcome {
    /// A new metadata file holding the replace snapshot, to be published by the catalog.
    Written {
        /// The new metadata file's URI.
        metadata_file: String,
        /// The new snapshot.
        snapshot_id: i64,
    },
    /// The current snapshot already holds exactly the added files and none of the removed
    /// ones (published before a crash): nothing was written.
    AlreadyCommitted(i64),
}

/// The URI of the table's data directory (`<location>/data`) from its metadata file.
pub fn data_dir(metadata_file: &str) -> Result<String, EngineError> {
    let metadata_file = &to_uri(metadata_file);
    let meta = read_metadata(&TableIo::for_uri(metadata_file)?, metadata_file)?;
    let location = meta["location"]
        .as_str()
        .ok_or_else(|| bad(metadata_file, "has no table location"))?;
    Ok(format!("{}/data", to_uri(location).trim_end_matches('/')))
}

/// The sizes of the files `uris` (one table's, on disk or in one bucket), None for a file
/// that is not there.
pub fn file_sizes(uris: &[String]) -> Result<Vec<Option<u64>>, EngineError> {
    let Some(first) = uris.first() else {
        return Ok(Vec::new());
    };
    let io = TableIo::for_uri(first)?;
    uris.iter().map(|uri| io.size(uri)).collect()
}

/// Writes the manifests, manifest list and next metadata file of a replace snapshot on top of
/// the table state in `metadata_file`. The caller publishes the returned file.
pub fn write_replace(
    metadata_file: &str,
    change: &IcebergReplace<'_>,
) -> Result<ReplaceOutcome, EngineError> {
    let metadata_file = &to_uri(metadata_file);
    let io = TableIo::for_uri(metadata_file)?;
    let mut meta = read_metadata(&io, metadata_file)?;
    if meta["format-version"].as_u64() != Some(2) {
        return Err(unsupported(
            metadata_file,
            "format version 1 for publishing (upgrade the table to format version 2)",
        ));
    }
    let schema = current_schema(&meta, metadata_file)?;
    let current_id = meta["current-snapshot-id"]
        .as_i64()
        .filter(|&id| id >= 0)
        .ok_or_else(|| bad(metadata_file, "has no current snapshot"))?;
    let conflict = |message: String| EngineError::LakeConflict {
        table: shown(metadata_file).to_string(),
        version: current_id as u64,
        message,
    };
    if serde_json::from_str::<Value>(change.schema_json)
        .ok()
        .as_ref()
        != Some(&schema)
    {
        return Err(conflict(
            "its schema changed since dbopt read it: register the table again (dbopt register-table --replace) and rebuild the layout".into(),
        ));
    }
    let (spec_id, fields) = default_partition_spec(&meta, &schema, metadata_file)?;
    let snapshot = snapshot_of(&meta, current_id, metadata_file)?.clone();
    if let Some(branch) = change.branch
        && let Some(id) = branch_snapshot(&meta, branch)
        && snapshot_of(&meta, id, metadata_file)?["parent-snapshot-id"].as_i64() == Some(current_id)
    {
        return Ok(ReplaceOutcome::AlreadyCommitted(id));
    }
    let plan = plan_manifests(&io, &snapshot, change, metadata_file)?;
    if plan.specs.iter().any(|&id| id != spec_id) && !fields.is_empty() {
        return Err(conflict(
            "its partition spec changed since dbopt read it: register the table again (dbopt register-table --replace) and rebuild the layout".into(),
        ));
    }
    let added: HashSet<&String> = change.add.iter().map(|f| &f.uri).collect();
    if !added.is_empty()
        && added.iter().all(|p| plan.live.contains(*p))
        && change.remove.iter().all(|p| !plan.live.contains(p))
    {
        return Ok(ReplaceOutcome::AlreadyCommitted(current_id));
    }
    if let Some(gone) = change.remove.iter().find(|p| !plan.live.contains(*p)) {
        return Err(conflict(format!(
            "file {gone} was removed by another writer since dbopt read the table: register it again (dbopt register-table --replace) and rebuild the layout"
        )));
    }
    let snapshot_id = new_snapshot_id();
    let sequence = meta["last-sequence-number"].as_i64().unwrap_or(0) + 1;
    let metadata_dir = MetadataDir {
        io: &io,
        dir: parent(metadata_file),
    };
    let spec = PartitionSpec {
        id: spec_id,
        fields: &fields,
    };
    let manifest = write_new_manifest(
        &metadata_dir,
        &plan,
        change,
        &schema,
        &spec,
        snapshot_id,
        sequence,
    )?;
    let list = write_manifest_list(
        &metadata_dir,
        &plan,
        manifest,
        snapshot_id,
        current_id,
        sequence,
    )?;
    let new_snapshot = serde_json::json!({
        "snapshot-id": snapshot_id,
        "parent-snapshot-id": current_id,
        "sequence-number": sequence,
        "timestamp-ms": change.now_ms,
        "manifest-list": list,
        "summary": summary(&plan, change, &snapshot),
        "schema-id": schema["schema-id"].as_i64().unwrap_or(0),
    });
    advance_metadata(
        &mut meta,
        metadata_file,
        new_snapshot,
        snapshot_id,
        sequence,
        change,
        &schema,
    )?;
    let next = write_next_metadata(&io, &meta, metadata_file)?;
    Ok(ReplaceOutcome::Written {
        metadata_file: next,
        snapshot_id,
    })
}

/// An Avro file's writer schema and header metadata, to write another like it.
type AvroFormat = (String, Vec<(String, Vec<u8>)>);

/// The manifests of the current snapshot, split into those carried over and the entries of
/// the ones a replace rewrites.
struct ManifestPlan {
    /// Manifest-list records kept as they are.
    kept: Vec<Value>,
    /// Entries carried into the new manifest: live ones as EXISTING, removed ones as DELETED.
    carried: Vec<Value>,
    /// Every live file path of the current snapshot.
    live: HashSet<String>,
    /// The writer schema and header of a data manifest, reused for the new one.
    manifest_format: Option<AvroFormat>,
    /// The writer schema and header of the manifest list.
    list_format: AvroFormat,
    /// Live rows and files before the replace.
    total_records: i64,
    total_files: i64,
    /// The partition spec ids of the data manifests.
    specs: HashSet<i64>,
}

/// The table's default partition spec, as a replace writes under it.
struct PartitionSpec<'a> {
    id: i64,
    fields: &'a [IcebergPartitionField],
}

fn plan_manifests(
    io: &TableIo,
    snapshot: &Value,
    change: &IcebergReplace<'_>,
    metadata_file: &str,
) -> Result<ManifestPlan, EngineError> {
    let list_uri = snapshot["manifest-list"]
        .as_str()
        .ok_or_else(|| bad(metadata_file, "has a snapshot without a manifest list"))?;
    let list = read_avro(io, list_uri)?;
    let remove: HashSet<&str> = change.remove.iter().map(String::as_str).collect();
    let mut plan = ManifestPlan {
        kept: Vec::new(),
        carried: Vec::new(),
        live: HashSet::new(),
        manifest_format: None,
        list_format: header_of(&list),
        total_records: 0,
        total_files: 0,
        specs: HashSet::new(),
    };
    for record in &list.records {
        if record["content"].as_i64().unwrap_or(0) != 0 {
            plan.kept.push(record.clone());
            continue;
        }
        let manifest_uri = record["manifest_path"].as_str().ok_or_else(|| {
            bad(
                metadata_file,
                "has a manifest list entry without manifest_path",
            )
        })?;
        let manifest = read_avro(io, manifest_uri)?;
        plan.specs
            .insert(record["partition_spec_id"].as_i64().unwrap_or(0));
        if plan.manifest_format.is_none() {
            plan.manifest_format = Some(header_of(&manifest));
        }
        let sequence = record["sequence_number"].as_i64().unwrap_or(0);
        let live: Vec<&Value> = manifest
            .records
            .iter()
            .filter(|e| e["status"].as_i64() != Some(2))
            .collect();
        let touched = live.iter().any(|e| {
            e["data_file"]["file_path"]
                .as_str()
                .is_some_and(|p| remove.contains(p))
        });
        for entry in &live {
            let file_path = entry["data_file"]["file_path"].as_str().unwrap_or_default();
            plan.live.insert(file_path.to_string());
            plan.total_records += entry["data_file"]["record_count"].as_i64().unwrap_or(0);
            plan.total_files += 1;
            if touched {
                let mut carried = (*entry).clone();
                // Sequence numbers inherited from the manifest are written out explicitly.
                for key in ["sequence_number", "file_sequence_number"] {
                    if carried[key].is_null() {
                        carried[key] = Value::from(sequence);
                    }
                }
                carried["status"] = Value::from(if remove.contains(file_path) { 2 } else { 0 });
                plan.carried.push(carried);
            }
        }
        if !touched {
            plan.kept.push(record.clone());
        }
    }
    Ok(plan)
}

/// The writer schema and header metadata of an Avro file, to write another like it.
fn header_of(file: &crate::avro::AvroFile) -> AvroFormat {
    let schema = file.meta_text("avro.schema").unwrap_or_default();
    let mut header: Vec<(String, Vec<u8>)> = file
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    header.sort();
    (schema, header)
}

/// The table's metadata directory, where a replace writes its new manifest and manifest list.
struct MetadataDir<'a> {
    io: &'a TableIo,
    /// Its URI.
    dir: &'a str,
}

impl MetadataDir<'_> {
    /// Creates the file `name` in the directory with `bytes`; returns its URI.
    fn create(&self, name: &str, bytes: Vec<u8>) -> Result<String, EngineError> {
        let uri = format!("{}/{name}", self.dir);
        self.io.write_new(&uri, bytes)?;
        Ok(uri)
    }
}

/// Writes the manifest of the replace (added files, then the carried entries) and returns
/// its path with its manifest-list record.
fn write_new_manifest(
    metadata_dir: &MetadataDir<'_>,
    plan: &ManifestPlan,
    change: &IcebergReplace<'_>,
    schema: &Value,
    spec: &PartitionSpec<'_>,
    snapshot_id: i64,
    sequence: i64,
) -> Result<Value, EngineError> {
    let (avro_schema, header) = plan.manifest_format.clone().ok_or_else(|| {
        bad(
            metadata_dir.dir,
            "has no data manifest to take the manifest format from",
        )
    })?;
    let mut entries = Vec::with_capacity(change.add.len() + plan.carried.len());
    for f in change.add {
        let mut data_file = serde_json::json!({
            "content": 0,
            "file_path": f.uri,
            "file_format": "PARQUET",
            "partition": partition_record(spec.fields, &f.partition, &f.uri)?,
            "record_count": f.record_count,
            "file_size_in_bytes": f.size,
        });
        let bounds = metadata_dir.io.bounds(&f.uri, f.size)?;
        column_metrics(&bounds, schema, &mut data_file);
        entries.push(serde_json::json!({
            "status": 1,
            "snapshot_id": snapshot_id,
            "sequence_number": null,
            "file_sequence_number": null,
            "data_file": data_file,
        }));
    }
    let (mut deleted, mut existing, mut deleted_rows, mut existing_rows) = (0, 0, 0, 0);
    let mut min_sequence = sequence;
    for entry in &plan.carried {
        let mut entry = entry.clone();
        let rows = entry["data_file"]["record_count"].as_i64().unwrap_or(0);
        if entry["status"].as_i64() == Some(2) {
            entry["snapshot_id"] = Value::from(snapshot_id);
            deleted += 1;
            deleted_rows += rows;
        } else {
            existing += 1;
            existing_rows += rows;
            min_sequence = min_sequence.min(entry["sequence_number"].as_i64().unwrap_or(sequence));
        }
        entries.push(entry);
    }
    let bytes = write_container(&avro_schema, &header, &entries).map_err(|e| {
        bad(
            metadata_dir.dir,
            &format!("cannot hold the new manifest ({e})"),
        )
    })?;
    let length = bytes.len();
    let path = metadata_dir.create(&format!("{}-m0.avro", new_uuid()), bytes)?;
    let added_rows: u64 = change.add.iter().map(|f| f.record_count).sum();
    Ok(serde_json::json!({
        "manifest_path": path,
        "manifest_length": length,
        "partition_spec_id": spec.id,
        "content": 0,
        "sequence_number": sequence,
        "min_sequence_number": min_sequence,
        "added_snapshot_id": snapshot_id,
        "added_files_count": change.add.len(),
        "existing_files_count": existing,
        "deleted_files_count": deleted,
        "added_rows_count": added_rows,
        "existing_rows_count": existing_rows,
        "deleted_rows_count": deleted_rows,
        "partitions": partition_summaries(spec.fields, &entries),
        "key_metadata": null,
    }))
}

/// Fills a data file's column metrics from its footer: value and null counts, and lower and
/// upper bounds in Iceberg's single-value encoding for the columns `file_bounds` gives bounds
/// for (int, long, date and string columns of the table's schema), keyed by field id.
fn column_metrics(file: &crate::file_bounds::FileBounds, schema: &Value, data_file: &mut Value) {
    let (mut values, mut nulls, mut lower, mut upper) = (vec![], vec![], vec![], vec![]);
    for column in &file.columns {
        let Some(field) = schema["fields"].as_array().and_then(|f| {
            f.iter()
                .find(|f| f["name"].as_str() == Some(column.name.as_str()))
        }) else {
            continue;
        };
        let id = field["id"].clone();
        values.push(serde_json::json!({"key": id, "value": file.rows}));
        if let Some(n) = column.null_count {
            nulls.push(serde_json::json!({"key": id, "value": n}));
        }
        let ty = field["type"].as_str().unwrap_or_default();
        if let Some((lo, hi)) = &column.bounds
            && let (Some(lo), Some(hi)) = (single_value(ty, lo), single_value(ty, hi))
        {
            lower.push(serde_json::json!({"key": id, "value": hex::encode(lo)}));
            upper.push(serde_json::json!({"key": id, "value": hex::encode(hi)}));
        }
    }
    data_file["value_counts"] = Value::Array(values);
    data_file["null_value_counts"] = Value::Array(nulls);
    data_file["lower_bounds"] = Value::Array(lower);
    data_file["upper_bounds"] = Value::Array(upper);
}

/// A data file's `partition` record: each field's value, typed, from the file's values by
/// source column.
fn partition_record(
    fields: &[IcebergPartitionField],
    values: &[(String, Option<String>)],
    local: &str,
) -> Result<Value, EngineError> {
    let mut record = serde_json::Map::new();
    for field in fields {
        let text = values
            .iter()
            .find(|(c, _)| *c == field.column)
            .ok_or_else(|| {
                bad(
                    local,
                    &format!("has no value for partition column {}", field.column),
                )
            })?
            .1
            .as_deref();
        let value = match text {
            None => Value::Null,
            Some(t) => partition_value(&field.source_type, t).ok_or_else(|| {
                bad(
                    local,
                    &format!(
                        "has partition value '{t}' for column {}, which is not a {}",
                        field.column, field.source_type
                    ),
                )
            })?,
        };
        record.insert(field.name.clone(), value);
    }
    Ok(Value::Object(record))
}

/// A partition value as a manifest entry holds it (dates as days since the epoch).
fn partition_value(ty: &str, text: &str) -> Option<Value> {
    Some(match ty {
        "string" => Value::from(text),
        "int" | "long" => Value::from(text.parse::<i64>().ok()?),
        "boolean" => Value::from(text.parse::<bool>().ok()?),
        "date" => {
            let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
            Value::from((date - epoch).num_days())
        }
        _ => return None,
    })
}

/// A manifest entry's partition value as text (the inverse of `partition_value`).
fn partition_text(ty: &str, value: &Value) -> Option<String> {
    match (ty, value) {
        ("string", Value::String(s)) => Some(s.clone()),
        ("int" | "long", Value::Number(n)) => Some(n.to_string()),
        ("boolean", Value::Bool(b)) => Some(b.to_string()),
        ("date", Value::Number(n)) => {
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
            let date = epoch.checked_add_signed(chrono::TimeDelta::try_days(n.as_i64()?)?)?;
            Some(date.format("%Y-%m-%d").to_string())
        }
        _ => None,
    }
}

/// The manifest list's partition summaries of a manifest's entries: per field, whether a
/// value is null and the lowest and highest values (single-value encoding), so readers skip
/// the whole manifest.
fn partition_summaries(fields: &[IcebergPartitionField], entries: &[Value]) -> Value {
    let summaries = fields.iter().map(|field| {
        let values: Vec<&Value> = entries
            .iter()
            .map(|e| &e["data_file"]["partition"][field.name.as_str()])
            .collect();
        let present: Vec<&Value> = values.iter().copied().filter(|v| !v.is_null()).collect();
        let ordered = |a: &&Value, b: &&Value| match (*a, *b) {
            (Value::String(x), Value::String(y)) => x.cmp(y),
            (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
            _ => a
                .as_i64()
                .unwrap_or_default()
                .cmp(&b.as_i64().unwrap_or_default()),
        };
        let bound = |v: Option<&Value>| {
            v.and_then(|v| summary_bound(&field.source_type, v))
                .map_or(Value::Null, |b| Value::from(hex::encode(b)))
        };
        serde_json::json!({
            "contains_null": present.len() < values.len(),
            "contains_nan": false,
            "lower_bound": bound(present.iter().copied().min_by(ordered)),
            "upper_bound": bound(present.iter().copied().max_by(ordered)),
        })
    });
    Value::Array(summaries.collect())
}

/// A partition value in Iceberg's single-value binary form.
fn summary_bound(ty: &str, value: &Value) -> Option<Vec<u8>> {
    match (ty, value) {
        ("string", Value::String(s)) => Some(s.as_bytes().to_vec()),
        ("int" | "date", Value::Number(n)) => {
            Some(i32::try_from(n.as_i64()?).ok()?.to_le_bytes().to_vec())
        }
        ("long", Value::Number(n)) => Some(n.as_i64()?.to_le_bytes().to_vec()),
        ("boolean", Value::Bool(b)) => Some(vec![u8::from(*b)]),
        _ => None,
    }
}

/// Iceberg's single-value binary form of a bound of a column of type `ty`, when they match.
fn single_value(ty: &str, bound: &Bound) -> Option<Vec<u8>> {
    match (ty, bound) {
        ("int", Bound::Int(v)) => Some(i32::try_from(*v).ok()?.to_le_bytes().to_vec()),
        ("long", Bound::Int(v)) => Some(v.to_le_bytes().to_vec()),
        ("date", Bound::Date(d)) => Some(d.to_le_bytes().to_vec()),
        ("string", Bound::Text(t)) => Some(t.as_bytes().to_vec()),
        _ => None,
    }
}

/// Writes the manifest list: the new manifest first, then the ones carried over.
fn write_manifest_list(
    metadata_dir: &MetadataDir<'_>,
    plan: &ManifestPlan,
    manifest: Value,
    snapshot_id: i64,
    parent_id: i64,
    sequence: i64,
) -> Result<String, EngineError> {
    let (schema, mut header) = plan.list_format.clone();
    for (key, value) in [
        ("snapshot-id", snapshot_id.to_string()),
        ("parent-snapshot-id", parent_id.to_string()),
        ("sequence-number", sequence.to_string()),
    ] {
        header.retain(|(k, _)| k != key);
        header.push((key.to_string(), value.into_bytes()));
    }
    let mut records = vec![manifest];
    records.extend(plan.kept.iter().cloned());
    let bytes = write_container(&schema, &header, &records).map_err(|e| {
        bad(
            metadata_dir.dir,
            &format!("cannot hold the new manifest list ({e})"),
        )
    })?;
    metadata_dir.create(&format!("snap-{snapshot_id}-0-{}.avro", new_uuid()), bytes)
}

/// The snapshot summary Iceberg readers show (`operation: replace`, counts, totals).
fn summary(plan: &ManifestPlan, change: &IcebergReplace<'_>, previous: &Value) -> Value {
    let removed = || {
        plan.carried
            .iter()
            .filter(|e| e["status"].as_i64() == Some(2))
    };
    let added_records: u64 = change.add.iter().map(|f| f.record_count).sum();
    let added_size: u64 = change.add.iter().map(|f| f.size).sum();
    let removed_records: i64 = removed()
        .map(|e| e["data_file"]["record_count"].as_i64().unwrap_or(0))
        .sum();
    let removed_size: i64 = removed()
        .map(|e| e["data_file"]["file_size_in_bytes"].as_i64().unwrap_or(0))
        .sum();
    let previous_size: i64 = previous["summary"]["total-files-size"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let files = plan.total_files + change.add.len() as i64 - change.remove.len() as i64;
    serde_json::json!({
        "operation": "replace",
        "added-data-files": change.add.len().to_string(),
        "deleted-data-files": change.remove.len().to_string(),
        "added-records": added_records.to_string(),
        "deleted-records": removed_records.to_string(),
        "added-files-size": added_size.to_string(),
        "removed-files-size": removed_size.to_string(),
        "total-data-files": files.to_string(),
        "total-records": (plan.total_records + added_records as i64 - removed_records).to_string(),
        "total-files-size": (previous_size + added_size as i64 - removed_size).max(0).to_string(),
        "total-delete-files": "0",
        "total-position-deletes": "0",
        "total-equality-deletes": "0",
        "dbopt.layout-id": change.layout_id,
    })
}

/// Adds the snapshot to `meta` as the current one of `main`, with the layout's sort order.
fn advance_metadata(
    meta: &mut Value,
    metadata_file: &str,
    snapshot: Value,
    snapshot_id: i64,
    sequence: i64,
    change: &IcebergReplace<'_>,
    schema: &Value,
) -> Result<(), EngineError> {
    let obj = next_version(meta, metadata_file, change.now_ms)?;
    push(obj, "snapshots", snapshot);
    obj.insert("last-sequence-number".into(), Value::from(sequence));
    match change.branch {
        Some(branch) => set_ref(obj, branch, snapshot_id),
        None => make_current(
            obj,
            snapshot_id,
            change.now_ms,
            change.sort_order,
            schema,
            metadata_file,
        )?,
    }
    // dbopt's Parquet files carry no Iceberg field ids: readers resolve their columns by name
    // through the table's default name mapping, as for files brought in by `add_files`.
    let properties = obj
        .entry("properties")
        .or_insert_with(|| serde_json::json!({}));
    if properties.get("schema.name-mapping.default").is_none() {
        properties["schema.name-mapping.default"] =
            Value::String(name_mapping(&schema["fields"]).to_string());
    }
    Ok(())
}

/// The name mapping of `fields` (Iceberg's `schema.name-mapping.default`): each field id with
/// its name, nested through structs, lists and maps.
fn name_mapping(fields: &Value) -> Value {
    let nested = |ty: &Value| -> Option<Value> {
        match ty["type"].as_str()? {
            "struct" => Some(name_mapping(&ty["fields"])),
            "list" => Some(serde_json::json!([
                {"field-id": ty["element-id"], "names": ["element"], "fields": nested_of(&ty["element"])}
            ])),
            "map" => Some(serde_json::json!([
                {"field-id": ty["key-id"], "names": ["key"], "fields": nested_of(&ty["key"])},
                {"field-id": ty["value-id"], "names": ["value"], "fields": nested_of(&ty["value"])}
            ])),
            _ => None,
        }
    };
    Value::Array(
        fields
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                let mut entry = serde_json::json!({"field-id": f["id"], "names": [f["name"]]});
                if let Some(inner) = nested(&f["type"]) {
                    entry["fields"] = inner;
                }
                entry
            })
            .collect(),
    )
}

/// The name mapping inside a nested type (an empty list for a primitive).
fn nested_of(ty: &Value) -> Value {
    match ty["type"].as_str() {
        Some("struct") => name_mapping(&ty["fields"]),
        _ => Value::Array(Vec::new()),
    }
}

/// Starts the next metadata version: logs the current file in `metadata-log`, stamps the time.
fn next_version<'m>(
    meta: &'m mut Value,
    metadata_file: &str,
    now_ms: i64,
) -> Result<&'m mut serde_json::Map<String, Value>, EngineError> {
    let previous_updated = meta["last-updated-ms"].clone();
    let obj = meta
        .as_object_mut()
        .ok_or_else(|| bad(metadata_file, "is not a JSON object"))?;
    push(
        obj,
        "metadata-log",
        serde_json::json!({"metadata-file": metadata_file, "timestamp-ms": previous_updated}),
    );
    obj.insert("last-updated-ms".into(), Value::from(now_ms));
    Ok(obj)
}

/// Makes `snapshot_id` the current snapshot of `main`, with `sort_order` as the default order.
fn make_current(
    obj: &mut serde_json::Map<String, Value>,
    snapshot_id: i64,
    now_ms: i64,
    sort_order: &[SortKey],
    schema: &Value,
    metadata_file: &str,
) -> Result<(), EngineError> {
    push(
        obj,
        "snapshot-log",
        serde_json::json!({"snapshot-id": snapshot_id, "timestamp-ms": now_ms}),
    );
    obj.insert("current-snapshot-id".into(), Value::from(snapshot_id));
    set_ref(obj, "main", snapshot_id);
    if !sort_order.is_empty() {
        set_sort_order(obj, sort_order, schema, metadata_file)?;
    }
    Ok(())
}

fn set_ref(obj: &mut serde_json::Map<String, Value>, name: &str, snapshot_id: i64) {
    let refs = obj.entry("refs").or_insert_with(|| serde_json::json!({}));
    refs[name] = serde_json::json!({"snapshot-id": snapshot_id, "type": "branch"});
}

/// The snapshot a branch points to.
fn branch_snapshot(meta: &Value, branch: &str) -> Option<i64> {
    meta["refs"][branch]["snapshot-id"].as_i64()
}

/// Writes the next metadata file with `main` fast-forwarded to `branch` (which is dropped) and
/// `sort_order` as the default order; None when the branch is missing or was not made from
/// `main`'s current snapshot (another commit came first), so a replace is needed instead.
pub fn fast_forward(
    metadata_file: &str,
    branch: &str,
    sort_order: &[SortKey],
    now_ms: i64,
) -> Result<Option<ReplaceOutcome>, EngineError> {
    let metadata_file = &to_uri(metadata_file);
    let io = TableIo::for_uri(metadata_file)?;
    let mut meta = read_metadata(&io, metadata_file)?;
    let Some(id) = branch_snapshot(&meta, branch) else {
        return Ok(None);
    };
    let current = meta["current-snapshot-id"].as_i64();
    if snapshot_of(&meta, id, metadata_file)?["parent-snapshot-id"].as_i64() != current {
        return Ok(None);
    }
    let schema = current_schema(&meta, metadata_file)?;
    let obj = next_version(&mut meta, metadata_file, now_ms)?;
    make_current(obj, id, now_ms, sort_order, &schema, metadata_file)?;
    if let Some(refs) = obj.get_mut("refs").and_then(Value::as_object_mut) {
        refs.remove(branch);
    }
    let next = write_next_metadata(&io, &meta, metadata_file)?;
    Ok(Some(ReplaceOutcome::Written {
        metadata_file: next,
        snapshot_id: id,
    }))
}

/// Writes the next metadata file without `branch`; None when the table has no such branch.
pub fn drop_branch(
    metadata_file: &str,
    branch: &str,
    now_ms: i64,
) -> Result<Option<String>, EngineError> {
    let metadata_file = &to_uri(metadata_file);
    let io = TableIo::for_uri(metadata_file)?;
    let mut meta = read_metadata(&io, metadata_file)?;
    if branch_snapshot(&meta, branch).is_none() {
        return Ok(None);
    }
    let obj = next_version(&mut meta, metadata_file, now_ms)?;
    if let Some(refs) = obj.get_mut("refs").and_then(Value::as_object_mut) {
        refs.remove(branch);
    }
    write_next_metadata(&io, &meta, metadata_file).map(Some)
}

/// Writes `meta` as the metadata file after `current`.
fn write_next_metadata(io: &TableIo, meta: &Value, current: &str) -> Result<String, EngineError> {
    let next = next_metadata_file(current);
    let text = serde_json::to_string_pretty(meta)
        .map_err(|e| bad(current, &format!("cannot be written back ({e})")))?;
    io.write_new(&next, text.into_bytes())?;
    Ok(next)
}

fn push(obj: &mut serde_json::Map<String, Value>, key: &str, value: Value) {
    match obj.get_mut(key).and_then(Value::as_array_mut) {
        Some(list) => list.push(value),
        None => {
            obj.insert(key.to_string(), Value::Array(vec![value]));
        }
    }
}

/// Makes `keys` the default sort order (reusing an identical order if the table has one).
fn set_sort_order(
    obj: &mut serde_json::Map<String, Value>,
    keys: &[SortKey],
    schema: &Value,
    metadata_file: &str,
) -> Result<(), EngineError> {
    let mut fields = Vec::with_capacity(keys.len());
    for key in keys {
        let id = schema["fields"]
            .as_array()
            .and_then(|f| {
                f.iter()
                    .find(|f| f["name"].as_str() == Some(key.column.as_str()))
            })
            .and_then(|f| f["id"].as_i64())
            .ok_or_else(|| {
                bad(
                    metadata_file,
                    &format!("has no column {} to sort on", key.column),
                )
            })?;
        fields.push(serde_json::json!({
            "source-id": id,
            "transform": "identity",
            "direction": if key.descending { "desc" } else { "asc" },
            "null-order": if key.descending { "nulls-last" } else { "nulls-first" },
        }));
    }
    let orders = obj
        .entry("sort-orders")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| bad(metadata_file, "has sort-orders that are not a list"))?;
    let same = |o: &&Value| o["fields"].as_array().is_some_and(|f| *f == fields);
    let id = match orders.iter().find(same) {
        Some(o) => o["order-id"].as_i64().unwrap_or(0),
        None => {
            let id = orders
                .iter()
                .filter_map(|o| o["order-id"].as_i64())
                .max()
                .unwrap_or(0)
                + 1;
            orders.push(serde_json::json!({"order-id": id, "fields": fields}));
            id
        }
    };
    obj.insert("default-sort-order-id".into(), Value::from(id));
    Ok(())
}

/// `00004-<uuid>.metadata.json` after `00003-....metadata.json` (or after `v3.metadata.json`).
fn next_metadata_file(current: &str) -> String {
    let digits: String = file_name(current)
        .trim_start_matches('v')
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let next = digits.parse::<u64>().map_or(0, |v| v + 1);
    format!("{}/{next:05}-{}.metadata.json", parent(current), new_uuid())
}

fn snapshot_of<'m>(meta: &'m Value, id: i64, file: &str) -> Result<&'m Value, EngineError> {
    meta["snapshots"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["snapshot-id"].as_i64() == Some(id)))
        .ok_or_else(|| {
            bad(
                file,
                &format!("names snapshot {id}, which it does not list"),
            )
        })
}

fn read_metadata(io: &TableIo, file: &str) -> Result<Value, EngineError> {
    let bytes = io.read(file)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| bad(file, &format!("is not valid table metadata JSON ({e})")))
}

/// A positive 63-bit snapshot id.
fn new_snapshot_id() -> i64 {
    (rand::random::<u64>() >> 1) as i64
}

/// A random UUID (version 4) in its text form.
fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The URI of the metadata file `location` (a path or a URI) stands for.
fn metadata_file(io: &TableIo, location: &str) -> Result<String, EngineError> {
    let uri = to_uri(location);
    if uri.ends_with(".json") || std::path::Path::new(location).is_file() {
        return Ok(uri);
    }
    let dir = format!("{}/metadata", uri.trim_end_matches('/'));
    let Some(names) = io.list(&dir)? else {
        return Err(EngineError::Lake(format!(
            "{location} is not an Iceberg table (no metadata directory or *.metadata.json file): give the table directory or its current metadata file"
        )));
    };
    if names.iter().any(|n| n == "version-hint.text") {
        let hint = io.read(&format!("{dir}/version-hint.text"))?;
        let v = String::from_utf8_lossy(&hint).trim().to_string();
        return Ok(format!("{dir}/v{v}.metadata.json"));
    }
    let newest = names
        .into_iter()
        .filter_map(|name| {
            let stem = name.strip_suffix(".metadata.json")?;
            let digits: String = stem
                .trim_start_matches('v')
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            Some((digits.parse::<u64>().ok()?, format!("{dir}/{name}")))
        })
        .max_by_key(|(v, _)| *v);
    newest.map(|(_, p)| p).ok_or_else(|| {
        EngineError::Lake(format!(
            "{} has no *.metadata.json file: it is not an Iceberg table",
            shown(&dir)
        ))
    })
}

fn current_schema(meta: &Value, file: &str) -> Result<Value, EngineError> {
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
fn manifest_paths(
    io: &TableIo,
    snapshot: &Value,
    file: &str,
) -> Result<Vec<(String, i64)>, EngineError> {
    if let Some(list) = snapshot["manifest-list"].as_str() {
        let avro = read_avro(io, list)?;
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
                manifest.to_string(),
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
            Ok((p.to_string(), 0))
        })
        .collect()
}

/// The fields of partition spec `spec_id` as the metadata writes them.
fn spec_fields(meta: &Value, spec_id: i64) -> Vec<Value> {
    let specs = meta["partition-specs"].as_array();
    let spec = specs.and_then(|s| s.iter().find(|s| s["spec-id"].as_i64() == Some(spec_id)));
    match spec {
        Some(s) => s["fields"].as_array().cloned().unwrap_or_default(),
        // v1 tables may carry only `partition-spec`, the fields themselves.
        None => meta["partition-spec"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    }
}

/// The default partition spec's id and its fields, all identity transforms of columns of a
/// type a partition value is read as; any other field is refused.
fn default_partition_spec(
    meta: &Value,
    schema: &Value,
    file: &str,
) -> Result<(i64, Vec<IcebergPartitionField>), EngineError> {
    let id = meta["default-spec-id"].as_i64().unwrap_or(0);
    let mut fields = Vec::new();
    for field in spec_fields(meta, id) {
        let source = schema["fields"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["id"] == field["source-id"]))
            .ok_or_else(|| {
                bad(
                    file,
                    "has a partition field whose source column is not in the schema",
                )
            })?;
        let column = source["name"].as_str().unwrap_or_default().to_string();
        let transform = field["transform"].as_str().unwrap_or_default();
        if transform != "identity" {
            return Err(unsupported(
                file,
                &format!(
                    "partition transform {transform}({column}) (identity partitions are read)"
                ),
            ));
        }
        let source_type = source["type"]
            .as_str()
            .unwrap_or("a nested type")
            .to_string();
        if arrow_type(&source_type).is_none() {
            return Err(unsupported(
                file,
                &format!(
                    "partition column '{column}' of type {source_type} (string, int, long, date and boolean partitions are read)"
                ),
            ));
        }
        fields.push(IcebergPartitionField {
            name: field["name"].as_str().unwrap_or(&column).to_string(),
            column,
            source_type,
        });
    }
    Ok((id, fields))
}

fn read_manifest(
    io: &TableIo,
    manifest: &str,
    file: &str,
    fields: &[IcebergPartitionField],
) -> Result<Vec<IcebergFile>, EngineError> {
    let avro = read_avro(io, manifest)?;
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
        io.check(path)?;
        out.push(IcebergFile {
            path: path.to_string(),
            size: data["file_size_in_bytes"].as_u64().unwrap_or(0),
            record_count: data["record_count"].as_u64().unwrap_or(0),
            partition: fields
                .iter()
                .map(|f| {
                    let value = &data["partition"][f.name.as_str()];
                    (f.column.clone(), partition_text(&f.source_type, value))
                })
                .collect(),
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

fn read_avro(io: &TableIo, uri: &str) -> Result<crate::avro::AvroFile, EngineError> {
    let bytes = io.read(uri)?;
    read_container(&bytes).map_err(|e| bad(uri, &format!("is not a readable Avro file ({e})")))
}

/// A file URI as messages show it: a local file by its path.
fn shown(uri: &str) -> &str {
    uri.strip_prefix("file://").unwrap_or(uri)
}

fn bad(file: &str, what: &str) -> EngineError {
    EngineError::Lake(format!("Iceberg metadata {} {what}", shown(file)))
}

fn unsupported(file: &str, what: &str) -> EngineError {
    EngineError::Lake(format!(
        "Iceberg table {} uses {what}, which dbopt does not support yet: it is left untouched",
        shown(file)
    ))
}
