//! Parquet footers: the one place that opens a Parquet file to read about it rather than its
//! rows. A file's Arrow schema and metadata, what a layout manifest records of a file (size,
//! rows, row groups), a table's canonical schema and the types of its partition columns, and
//! whether a downloaded file is whole Parquet. A corrupt or unreadable footer is an
//! `EngineError::CorruptParquet` naming the file, never a panic.

use crate::EngineError;
use crate::error::panic_text;
use crate::layout_dir::LayoutDir;
use crate::writer::read_manifest;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use dbopt_core::text::first_line;
use dbopt_core::{LayoutId, ManifestFile, TableName};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

/// The error for a file whose footer cannot be read.
fn corrupt(path: &Path, message: &str) -> EngineError {
    EngineError::CorruptParquet {
        path: path.display().to_string(),
        message: first_line(message),
    }
}

/// Opens a Parquet file and reads its footer (metadata and embedded Arrow schema).
pub(crate) fn open_footer(
    path: &Path,
) -> Result<ParquetRecordBatchReaderBuilder<File>, EngineError> {
    let file =
        File::open(path).map_err(|e| EngineError::io(format!("opening {}", path.display()), e))?;
    // arrow-ipc asserts (panics) on some corrupt embedded ARROW:schema footers (e.g. "Int type
    // with bit width of 44096 ... not supported"): a corrupt file is an error, not a crash.
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ParquetRecordBatchReaderBuilder::try_new(file)
    }));
    match opened {
        Ok(result) => result.map_err(|e| corrupt(path, &e.to_string())),
        Err(panic) => Err(corrupt(
            path,
            &format!("unreadable footer schema ({})", panic_text(&*panic)),
        )),
    }
}

/// The byte ranges of the column chunks of `columns` (top-level column names) in every row
/// group of the Parquet file `path`: (row group, column index, first byte, length).
pub fn column_chunk_ranges(
    path: &Path,
    columns: &[String],
) -> Result<Vec<(usize, usize, u64, u64)>, EngineError> {
    let footer = open_footer(path)?;
    Ok(chunk_ranges_in(footer.metadata(), columns))
}

/// [`column_chunk_ranges`] from a footer already read.
pub fn chunk_ranges_in(
    footer: &parquet::file::metadata::ParquetMetaData,
    columns: &[String],
) -> Vec<(usize, usize, u64, u64)> {
    let mut ranges = Vec::new();
    for (rg, group) in footer.row_groups().iter().enumerate() {
        for (col, chunk) in group.columns().iter().enumerate() {
            let top = chunk.column_descr().path().parts().first().cloned();
            if top.is_some_and(|name| columns.contains(&name)) {
                let (start, len) = chunk.byte_range();
                ranges.push((rg, col, start, len));
            }
        }
    }
    ranges
}

/// The Arrow schema stored in a Parquet file's footer.
pub fn file_schema(path: &Path) -> Result<SchemaRef, EngineError> {
    Ok(open_footer(path)?.schema().clone())
}

/// What a layout manifest records of the Parquet file `dir/relative_path`: its path, size,
/// rows and row groups (read from its footer).
pub fn describe_file(dir: &Path, relative_path: &str) -> Result<ManifestFile, EngineError> {
    let path = dir.join(relative_path);
    let size_bytes = std::fs::metadata(&path)
        .map_err(|e| EngineError::io(format!("stat {}", path.display()), e))?
        .len();
    let footer = open_footer(&path)?;
    let meta = footer.metadata();
    Ok(ManifestFile {
        path: relative_path.to_string(),
        size_bytes,
        rows: meta.file_metadata().num_rows() as u64,
        row_groups: meta.num_row_groups() as u64,
    })
}

/// The table's canonical schema: the footer schema of its initial layout's first file, or,
/// when the initial layout is partitioned (its manifest lists the table's columns), those
/// columns in that order.
pub fn table_schema(data_dir: &Path, table: &TableName) -> Result<SchemaRef, EngineError> {
    let dir = data_dir
        .join(table.as_str())
        .join(LayoutId::initial().dir_name());
    table_schema_at(&LayoutDir::Local(dir), table)
}

/// [`table_schema`] of the table whose initial layout is `initial` (local or on object
/// storage).
pub fn table_schema_at(initial: &LayoutDir, table: &TableName) -> Result<SchemaRef, EngineError> {
    let manifest = match initial {
        LayoutDir::Local(dir) => read_manifest(dir)?,
        LayoutDir::Remote(_) => initial.manifest()?.ok_or_else(|| {
            EngineError::Source(format!(
                "the initial layout of table '{table}' is missing at {initial}: reload the table"
            ))
        })?,
    };
    let first = manifest.files.first().ok_or_else(|| {
        EngineError::Source(format!(
            "the initial layout of table '{table}' has no files"
        ))
    })?;
    let in_files = match initial {
        LayoutDir::Local(dir) => file_schema(&dir.join(&first.path))?,
        LayoutDir::Remote(_) => {
            let (_, meta) = initial.footer(&first.path, first.size_bytes)?;
            ArrowReaderMetadata::try_new(Arc::new(meta), ArrowReaderOptions::new())
                .map_err(|e| initial.corrupt(&first.path, &e))?
                .schema()
                .clone()
        }
    };
    if manifest.columns.is_empty() {
        return Ok(in_files);
    }
    schema_with_columns(&in_files, &manifest.columns)
}

/// The schema of `columns` (names with Arrow type names, in table order): each column the
/// files hold with that type as they hold it, the others (hive keys) nullable with the named
/// type.
pub fn schema_with_columns(
    in_files: &Schema,
    columns: &[(String, String)],
) -> Result<SchemaRef, EngineError> {
    let fields = columns
        .iter()
        .map(|(name, type_name)| match in_files.field_with_name(name) {
            Ok(f) if f.data_type().to_string() == *type_name => Ok(f.clone()),
            _ => DataType::from_str(type_name)
                .map(|t| Field::new(name, t, true))
                .map_err(|e| {
                    EngineError::Source(format!(
                        "column '{name}' has type '{type_name}', which is not an Arrow type ({e}): the layout manifest was edited"
                    ))
                }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

/// The partition columns `cols` with their types in `schema` (hive directories do not carry
/// types, so a partitioned layout is read with these).
pub fn partition_types(
    schema: &SchemaRef,
    cols: &[String],
) -> Result<Vec<(String, DataType)>, EngineError> {
    cols.iter()
        .map(|c| {
            schema
                .field_with_name(c)
                .map(|f| (c.clone(), f.data_type().clone()))
                .map_err(|_| EngineError::Source(format!("unknown partition column '{c}'")))
        })
        .collect()
}

/// The size of a file that is whole Parquet: the magic bytes `PAR1` at both ends and a footer
/// that reads. Otherwise a `CorruptParquet` error whose message says what is wrong (an HTML
/// page, a truncated file, an unreadable footer).
pub fn validate_file(path: &Path) -> Result<u64, EngineError> {
    let why = |message: String| EngineError::CorruptParquet {
        path: path.display().to_string(),
        message,
    };
    let io = |e: std::io::Error| why(e.to_string());
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len < 12 {
        return Err(why(format!("only {len} bytes")));
    }
    let mut head = [0u8; 4];
    let mut tail = [0u8; 4];
    file.read_exact(&mut head).map_err(io)?;
    file.seek(SeekFrom::End(-4)).map_err(io)?;
    file.read_exact(&mut tail).map_err(io)?;
    if &head != b"PAR1" {
        let mut start = vec![0u8; 64.min(len as usize)];
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.read_exact(&mut start).map_err(io)?;
        let text = String::from_utf8_lossy(&start).to_ascii_lowercase();
        return Err(why(
            if text.contains("<html") || text.contains("<!doctype") {
                "it is an HTML page".to_string()
            } else {
                "it does not start with the Parquet magic bytes PAR1".to_string()
            },
        ));
    }
    if &tail != b"PAR1" {
        return Err(why(format!(
            "it does not end with PAR1: the {len}-byte file is truncated"
        )));
    }
    open_footer(path).map_err(|e| {
        let message = match e {
            EngineError::CorruptParquet { message, .. } => message,
            other => other.to_string(),
        };
        why(format!("its footer does not read: {message}"))
    })?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn message(e: EngineError) -> String {
        match e {
            EngineError::CorruptParquet { message, .. } => message,
            other => panic!("expected CorruptParquet, got {other}"),
        }
    }

    #[test]
    fn validation_names_html_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let html = dir.path().join("a.parquet");
        std::fs::write(
            &html,
            "<!DOCTYPE html><html><body>Access denied</body></html>",
        )
        .unwrap();
        assert!(message(validate_file(&html).unwrap_err()).contains("HTML"));
        let cut = dir.path().join("b.parquet");
        std::fs::write(&cut, b"PAR1\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00").unwrap();
        assert!(message(validate_file(&cut).unwrap_err()).contains("truncated"));
        let fake = dir.path().join("c.parquet");
        std::fs::write(&fake, b"PAR1\x00\x00\x00\x00\x00\x00\x00\x00PAR1").unwrap();
        assert!(message(validate_file(&fake).unwrap_err()).contains("footer"));
        let tiny = dir.path().join("d.parquet");
        std::fs::write(&tiny, b"PAR1").unwrap();
        assert!(message(validate_file(&tiny).unwrap_err()).contains("only 4 bytes"));
    }

    #[test]
    fn a_written_file_is_described_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..100))],
        )
        .unwrap();
        let path = dir.path().join("f.parquet");
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(File::create(&path).unwrap(), schema, None)
                .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(validate_file(&path).unwrap(), size);
        let described = describe_file(dir.path(), "f.parquet").unwrap();
        assert_eq!(
            (described.rows, described.row_groups, described.size_bytes),
            (100, 1, size)
        );
        let read = file_schema(&path).unwrap();
        assert_eq!(read.field(0).name(), "x");
        assert!(matches!(
            describe_file(dir.path(), "missing.parquet"),
            Err(EngineError::Io { .. })
        ));
    }

    #[test]
    fn partition_types_come_from_the_schema() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("country", DataType::Utf8, true),
            Field::new("amount", DataType::Int64, true),
        ]));
        assert_eq!(
            partition_types(&schema, &["country".to_string()]).unwrap(),
            vec![("country".to_string(), DataType::Utf8)]
        );
        let err = partition_types(&schema, &["nope".to_string()]).unwrap_err();
        assert_eq!(err.to_string(), "unknown partition column 'nope'");
    }
}
