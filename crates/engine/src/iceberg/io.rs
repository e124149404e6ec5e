//! Where an Iceberg table's files are, read and written by the URIs its metadata names them
//! by: local disk (plain paths and `file://` URIs) or one bucket of an object store
//! (`s3://bucket/key`, `gs://...`, `az://...`; opened through `store`, so with the same
//! credentials and endpoint as `DATA_DIR`).
//!
//! Guarantees: a file is never overwritten (a new metadata file, manifest or manifest list is
//! created only if nothing is at its name: `O_EXCL` on disk, a conditional put in a bucket);
//! a table whose files are spread over another bucket, or over local disk and a bucket, is
//! refused by name before anything is read.

use crate::EngineError;
use crate::file_bounds::{FileBounds, bounds_in, file_bounds};
use crate::layout_dir::LayoutDir;
use crate::store::{RemoteDir, block_on, is_remote, open_dir};
use std::path::{Path, PathBuf};

/// The files of one Iceberg table: on local disk, or in one bucket.
#[derive(Debug, Clone)]
pub(crate) enum TableIo {
    /// Plain paths and `file://` URIs.
    Local,
    /// The bucket, opened at its root (`s3://bucket/`).
    Bucket(RemoteDir),
}

impl TableIo {
    /// The files of the table whose metadata file is `uri`: in a bucket, that bucket is
    /// opened (and checked, by one listing) the first time this process needs it and kept,
    /// so the several steps of one commit do not each list it again.
    pub(crate) fn for_uri(uri: &str) -> Result<Self, EngineError> {
        static OPENED: std::sync::LazyLock<
            std::sync::Mutex<std::collections::HashMap<String, RemoteDir>>,
        > = std::sync::LazyLock::new(Default::default);
        if !is_remote(uri) {
            return Ok(TableIo::Local);
        }
        let root = bucket_of(uri)?;
        let cached = OPENED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&root)
            .cloned();
        let bucket = match cached {
            Some(bucket) => bucket,
            None => {
                let bucket = block_on(open_dir(&root))?;
                OPENED
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(root, bucket.clone());
                bucket
            }
        };
        Ok(TableIo::Bucket(bucket))
    }

    /// The bytes of the file `uri`.
    pub(crate) fn read(&self, uri: &str) -> Result<Vec<u8>, EngineError> {
        match self {
            TableIo::Local => {
                let path = self.local(uri)?;
                std::fs::read(&path)
                    .map_err(|e| EngineError::io(format!("reading {}", path.display()), e))
            }
            TableIo::Bucket(bucket) => block_on(bucket.get(&self.key(uri)?))?.ok_or_else(|| {
                EngineError::Lake(format!(
                    "Iceberg file {uri} is missing from its bucket: the table was damaged or expired; repair it first"
                ))
            }),
        }
    }

    /// Writes `bytes` as the new file `uri`; an existing file there is an error, never
    /// overwritten.
    pub(crate) fn write_new(&self, uri: &str, bytes: Vec<u8>) -> Result<(), EngineError> {
        match self {
            TableIo::Local => write_new_local(&self.local(uri)?, &bytes),
            TableIo::Bucket(bucket) => {
                if block_on(bucket.put_if_absent(&self.key(uri)?, bytes))? {
                    Ok(())
                } else {
                    Err(EngineError::Lake(format!(
                        "Iceberg file {uri} already exists: dbopt never overwrites a table's file; try again"
                    )))
                }
            }
        }
    }

    /// The size of the file `uri`, or None when it is not there.
    pub(crate) fn size(&self, uri: &str) -> Result<Option<u64>, EngineError> {
        match self {
            TableIo::Local => Ok(std::fs::metadata(self.local(uri)?).ok().map(|m| m.len())),
            TableIo::Bucket(bucket) => Ok(block_on(bucket.head(&self.key(uri)?))?.map(|m| m.size)),
        }
    }

    /// The column bounds in the footer of the Parquet file `uri`, `size` bytes long.
    pub(crate) fn bounds(&self, uri: &str, size: u64) -> Result<FileBounds, EngineError> {
        match self {
            TableIo::Local => file_bounds(&self.local(uri)?),
            TableIo::Bucket(bucket) => {
                let (_, footer) =
                    LayoutDir::Remote(bucket.clone()).footer(&self.key(uri)?, size)?;
                Ok(bounds_in(&footer))
            }
        }
    }

    /// The names of the files directly in the directory `uri`, or None when it is not there.
    pub(crate) fn list(&self, uri: &str) -> Result<Option<Vec<String>>, EngineError> {
        match self {
            TableIo::Local => {
                let dir = self.local(uri)?;
                if !dir.is_dir() {
                    return Ok(None);
                }
                let entries = std::fs::read_dir(&dir)
                    .map_err(|e| EngineError::io(format!("listing {}", dir.display()), e))?;
                Ok(Some(
                    entries
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect(),
                ))
            }
            TableIo::Bucket(bucket) => {
                let dir = bucket.child(&self.key(uri)?)?;
                let names: Vec<String> = block_on(dir.list_all())?
                    .into_iter()
                    .filter(|name| !name.contains('/'))
                    .collect();
                Ok((!names.is_empty()).then_some(names))
            }
        }
    }

    /// Refuses `uri` unless it is where the table is (on local disk, or in its bucket).
    pub(crate) fn check(&self, uri: &str) -> Result<(), EngineError> {
        match self {
            TableIo::Local => self.local(uri).map(drop),
            TableIo::Bucket(_) => self.key(uri).map(drop),
        }
    }

    /// The local path of `uri`; a URI of an object store is refused (the table is on disk).
    fn local(&self, uri: &str) -> Result<PathBuf, EngineError> {
        if uri.contains("://") && !uri.starts_with("file://") {
            return Err(outside(uri, "the local file system"));
        }
        Ok(local_file(uri))
    }

    /// The key of `uri` in the table's bucket; a URI elsewhere is refused.
    fn key(&self, uri: &str) -> Result<String, EngineError> {
        let TableIo::Bucket(bucket) = self else {
            return Err(outside(uri, "the local file system"));
        };
        let root = bucket.url.as_str();
        uri.strip_prefix(root)
            .map(str::to_string)
            .ok_or_else(|| outside(uri, root))
    }
}

/// The path a `file://` URI (or a plain path) names.
pub fn local_file(uri: &str) -> PathBuf {
    PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri))
}

/// The `file://` URI a manifest names `local` by.
pub fn file_uri(local: &Path) -> String {
    format!("file://{}", local.display())
}

/// `location` as a URI: an object store's as given, a local path as `file://`.
pub fn to_uri(location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else {
        file_uri(Path::new(location))
    }
}

/// The key of the object `uri` names inside its bucket (`s3://bucket/a/b` gives `a/b`).
pub fn object_key(uri: &str) -> &str {
    uri.split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map_or("", |(_, key)| key)
}

/// The bucket root of an object-store URI: `s3://bucket/`.
pub fn bucket_of(uri: &str) -> Result<String, EngineError> {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
    let bucket = rest.split('/').next().unwrap_or_default();
    if bucket.is_empty() {
        return Err(EngineError::Store(format!(
            "{uri} names no bucket: write it as {scheme}://bucket/path"
        )));
    }
    Ok(format!("{scheme}://{bucket}/"))
}

/// The directory of a file URI (everything before its last `/`).
pub(crate) fn parent(uri: &str) -> &str {
    uri.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The file name of a URI (everything after its last `/`).
pub(crate) fn file_name(uri: &str) -> &str {
    uri.rsplit_once('/').map_or(uri, |(_, name)| name)
}

/// The error for a file the table names outside where its metadata is.
fn outside(uri: &str, place: &str) -> EngineError {
    EngineError::Lake(format!(
        "Iceberg table uses files outside {place} ({uri}), which dbopt does not support yet: it is left untouched"
    ))
}

/// Creates `path` with `bytes` and syncs it; an existing file is an error.
fn write_new_local(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    use std::io::Write;
    let io = |e| EngineError::io(format!("writing {}", path.display()), e);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_split_into_bucket_key_directory_and_name() {
        let uri = "s3://lake/warehouse/db/events/metadata/00001-x.metadata.json";
        assert_eq!(bucket_of(uri).unwrap(), "s3://lake/");
        assert_eq!(
            object_key(uri),
            "warehouse/db/events/metadata/00001-x.metadata.json"
        );
        assert_eq!(parent(uri), "s3://lake/warehouse/db/events/metadata");
        assert_eq!(file_name(uri), "00001-x.metadata.json");
        assert!(bucket_of("s3:///key").is_err());
        assert_eq!(
            to_uri("/srv/t/metadata/v1.metadata.json"),
            "file:///srv/t/metadata/v1.metadata.json"
        );
        assert_eq!(to_uri("file:///srv/t"), "file:///srv/t");
        assert_eq!(
            local_file("file:///srv/t/a.avro"),
            PathBuf::from("/srv/t/a.avro")
        );
    }

    #[test]
    fn a_local_table_refuses_an_object_store_uri_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let io = TableIo::Local;
        let uri = file_uri(&dir.path().join("m.avro"));
        io.write_new(&uri, b"one".to_vec()).unwrap();
        assert!(io.write_new(&uri, b"two".to_vec()).is_err());
        assert_eq!(io.read(&uri).unwrap(), b"one");
        assert_eq!(io.size(&uri).unwrap(), Some(3));
        let err = io.read("s3://lake/x.avro").unwrap_err().to_string();
        assert!(err.contains("outside the local file system"), "{err}");
    }
}
