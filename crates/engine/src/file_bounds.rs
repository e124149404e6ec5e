//! Per-column bounds of a Parquet file, from its footer: what lakehouse table formats record
//! about each data file they list (Delta's `stats`, Iceberg's manifest bounds) so their readers
//! skip files. Only bounds that mean the same in Parquet's order and the formats' are given:
//! signed integers, dates and UTF-8 strings whose statistics are exact in every row group.

use crate::EngineError;
use crate::footer::open_footer;
use parquet::basic::{ConvertedType, LogicalType};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;
use std::path::Path;

/// A column's minimum or maximum over a whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// A signed integer (8 to 64 bits).
    Int(i64),
    /// A date, in days since 1970-01-01.
    Date(i32),
    /// A UTF-8 string.
    Text(String),
}

/// What a file's footer says about one top-level column.
#[derive(Debug, Clone)]
pub struct ColumnBounds {
    /// The column.
    pub name: String,
    /// Nulls in the file, when every row group says.
    pub null_count: Option<u64>,
    /// (minimum, maximum) when exact in every row group and of a supported type.
    pub bounds: Option<(Bound, Bound)>,
}

/// What a file's footer says about its rows and columns.
#[derive(Debug, Clone)]
pub struct FileBounds {
    /// Rows in the file.
    pub rows: u64,
    /// Top-level primitive columns, in file order (nested columns are left out).
    pub columns: Vec<ColumnBounds>,
}

/// Reads the bounds of every top-level column of the Parquet file at `path`.
pub fn file_bounds(path: &Path) -> Result<FileBounds, EngineError> {
    let builder = open_footer(path)?;
    Ok(bounds_in(builder.metadata()))
}

/// The bounds of every top-level column a Parquet footer describes.
pub fn bounds_in(meta: &ParquetMetaData) -> FileBounds {
    let schema = meta.file_metadata().schema_descr();
    let mut columns = Vec::new();
    for col in 0..schema.num_columns() {
        let descr = schema.column(col);
        if descr.path().parts().len() != 1 {
            continue;
        }
        let chunks: Vec<Option<&Statistics>> = meta
            .row_groups()
            .iter()
            .map(|rg| rg.column(col).statistics())
            .collect();
        columns.push(ColumnBounds {
            name: descr.name().to_string(),
            null_count: chunks
                .iter()
                .map(|s| s.and_then(Statistics::null_count_opt))
                .sum(),
            bounds: min_max(&chunks, descr.logical_type_ref(), descr.converted_type()),
        });
    }
    FileBounds {
        rows: meta.file_metadata().num_rows().max(0) as u64,
        columns,
    }
}

/// The file-wide minimum and maximum of a column; None when any row group lacks exact
/// statistics or the type is not one whose order every format agrees on.
fn min_max(
    chunks: &[Option<&Statistics>],
    logical: Option<&LogicalType>,
    converted: ConvertedType,
) -> Option<(Bound, Bound)> {
    let signed_int = match logical {
        None => true,
        Some(LogicalType::Integer(int)) => int.is_signed,
        Some(_) => false,
    } && matches!(
        converted,
        ConvertedType::NONE
            | ConvertedType::INT_8
            | ConvertedType::INT_16
            | ConvertedType::INT_32
            | ConvertedType::INT_64
    );
    let date = matches!(logical, Some(LogicalType::Date)) || converted == ConvertedType::DATE;
    let string = matches!(logical, Some(LogicalType::String)) || converted == ConvertedType::UTF8;
    let mut keys: Option<(i64, i64)> = None;
    let mut texts: Option<(Vec<u8>, Vec<u8>)> = None;
    for chunk in chunks {
        let chunk = (*chunk)?;
        if !chunk.min_is_exact() || !chunk.max_is_exact() {
            return None;
        }
        match chunk {
            Statistics::Int32(s) if signed_int || date => {
                let (lo, hi) = (i64::from(*s.min_opt()?), i64::from(*s.max_opt()?));
                keys = Some(keys.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            }
            Statistics::Int64(s) if signed_int => {
                let (lo, hi) = (*s.min_opt()?, *s.max_opt()?);
                keys = Some(keys.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            }
            Statistics::ByteArray(s) if string => {
                let (lo, hi) = (s.min_opt()?.data().to_vec(), s.max_opt()?.data().to_vec());
                texts = Some(match texts {
                    None => (lo, hi),
                    Some((a, b)) => (a.min(lo), b.max(hi)),
                });
            }
            _ => return None,
        }
    }
    if let Some((lo, hi)) = keys {
        if date {
            return Some((
                Bound::Date(i32::try_from(lo).ok()?),
                Bound::Date(i32::try_from(hi).ok()?),
            ));
        }
        return Some((Bound::Int(lo), Bound::Int(hi)));
    }
    let (lo, hi) = texts?;
    Some((
        Bound::Text(String::from_utf8(lo).ok()?),
        Bound::Text(String::from_utf8(hi).ok()?),
    ))
}
