//! Per-column statistics of a layout from its Parquet footers (compressed bytes, nulls, row
//! groups, metadata bytes), and a row sample of the layout as Arrow batches in file order, for
//! the sample-based figures (distinct counts, min/max, clustering) and the what-if model.

use crate::EngineError;
use crate::layout_dir::{FileBytes, LayoutDir};
use arrow::array::{ArrayRef, BooleanArray, Date32Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema};
use dbopt_core::LayoutManifest;
use dbopt_core::plan_summary::{ColumnStats, TableStats};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::sync::Arc;

/// Footer statistics of the layout in `dir`: per-column compressed bytes and null counts,
/// totals, and the bytes outside column data. Sample-based fields are left empty (0 / None).
pub fn footer_stats(dir: &LayoutDir, manifest: &LayoutManifest) -> Result<TableStats, EngineError> {
    let mut stats = TableStats {
        rows: 0,
        files: manifest.files.len() as u64,
        row_groups: 0,
        total_bytes: 0,
        metadata_bytes: 0,
        row_group_rows: 0,
        page_rows: manifest.spec.effective_page_rows() as u64,
        columns: Vec::new(),
    };
    for f in &manifest.files {
        let (size, meta) = dir.footer(&f.path, f.size_bytes)?;
        stats.total_bytes += size;
        let mut data_bytes = 0u64;
        for rg in meta.row_groups() {
            stats.row_groups += 1;
            stats.rows += rg.num_rows().max(0) as u64;
            stats.row_group_rows = stats.row_group_rows.max(rg.num_rows().max(0) as u64);
            for chunk in rg.columns() {
                let name = chunk.column_descr().name().to_string();
                let bytes = chunk.compressed_size().max(0) as u64;
                data_bytes += bytes;
                let nulls = chunk
                    .statistics()
                    .and_then(parquet::file::statistics::Statistics::null_count_opt)
                    .unwrap_or(0);
                let pos = match stats.columns.iter().position(|c| c.column == name) {
                    Some(p) => p,
                    None => {
                        stats.columns.push(ColumnStats {
                            column: name,
                            data_type: String::new(),
                            compressed_bytes: 0,
                            dictionary_bytes: 0,
                            null_count: 0,
                            distinct_estimate: 0,
                            min: None,
                            max: None,
                            clustering: 0.0,
                        });
                        stats.columns.len() - 1
                    }
                };
                stats.columns[pos].compressed_bytes += bytes;
                if let Some(dict) = chunk.dictionary_page_offset() {
                    let dict_bytes = (chunk.data_page_offset() - dict).max(0) as u64;
                    stats.columns[pos].dictionary_bytes += dict_bytes.min(bytes);
                }
                stats.columns[pos].null_count += nulls;
            }
        }
        stats.metadata_bytes += size.saturating_sub(data_bytes);
    }
    Ok(stats)
}

/// Hive `key=value` directory segments of a file path relative to its layout directory.
fn hive_values(rel: &str) -> Vec<(String, String)> {
    let mut parts: Vec<&str> = rel.split('/').collect();
    parts.pop();
    parts
        .iter()
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Splitmix-style hash of a row position, for a deterministic Bernoulli sample.
fn keep_row(seed: u64, position: u64, fraction: f64) -> bool {
    let mut z = seed ^ position.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 <= fraction
}

/// Reads a deterministic Bernoulli sample (each row kept with probability `fraction`) of the
/// layout in `dir`, in file and row order, as Arrow batches of one schema. Hive partition
/// values are appended as text columns.
pub fn read_sample(
    dir: &LayoutDir,
    manifest: &LayoutManifest,
    fraction: f64,
    seed: u64,
) -> Result<Vec<RecordBatch>, EngineError> {
    let fraction = fraction.clamp(0.0, 1.0);
    let mut out = Vec::new();
    let mut position = 0u64;
    for f in &manifest.files {
        let hive = hive_values(&f.path);
        let corrupt = |e: &dyn std::fmt::Display| dir.corrupt(&f.path, e);
        let reader = match dir.file_bytes(&f.path)? {
            FileBytes::Local(file) => ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.with_batch_size(8192).build()),
            FileBytes::Remote(bytes) => ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.with_batch_size(8192).build()),
        }
        .map_err(|e| corrupt(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| corrupt(&e))?;
            let mask: BooleanArray = (0..batch.num_rows() as u64)
                .map(|i| Some(keep_row(seed, position + i, fraction)))
                .collect();
            position += batch.num_rows() as u64;
            let kept = filter_record_batch(&batch, &mask).map_err(|e| corrupt(&e))?;
            out.push(with_hive_columns(kept, &hive).map_err(|e| corrupt(&e))?);
        }
    }
    Ok(out)
}

fn with_hive_columns(
    batch: RecordBatch,
    hive: &[(String, String)],
) -> Result<RecordBatch, arrow::error::ArrowError> {
    if hive.is_empty() {
        return Ok(batch);
    }
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for (k, v) in hive {
        if fields.iter().any(|f| f.name() == k) {
            continue;
        }
        let rows = batch.num_rows();
        // Hive values are text in the path; integers and dates get their natural type so
        // they compare with query literals.
        if let Ok(i) = v.parse::<i64>() {
            fields.push(Field::new(k, DataType::Int64, true));
            columns.push(Arc::new(Int64Array::from(vec![i; rows])));
        } else if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
            let days = (d - chrono::NaiveDate::default()).num_days() as i32;
            fields.push(Field::new(k, DataType::Date32, true));
            columns.push(Arc::new(Date32Array::from(vec![days; rows])));
        } else {
            fields.push(Field::new(k, DataType::Utf8, true));
            columns.push(Arc::new(StringArray::from(vec![Some(v.as_str()); rows])));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_deterministic_and_near_fraction() {
        let kept = (0..100_000u64).filter(|i| keep_row(7, *i, 0.1)).count();
        assert!((9_000..11_000).contains(&kept), "{kept}");
        let again = (0..100_000u64).filter(|i| keep_row(7, *i, 0.1)).count();
        assert_eq!(kept, again);
        assert_eq!((0..1000u64).filter(|i| keep_row(1, *i, 1.0)).count(), 1000);
    }

    #[test]
    fn hive_values_get_natural_types() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
        let hive = hive_values("n=7/d=2025-01-02/c=DE/part-00000.parquet");
        let out = with_hive_columns(batch, &hive).unwrap();
        let types: Vec<String> = out
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().to_string())
            .collect();
        assert_eq!(types, ["Int64", "Int64", "Date32", "Utf8"]);
        let days = out
            .column(2)
            .as_any()
            .downcast_ref::<Date32Array>()
            .unwrap();
        assert_eq!(days.value(0), 20090);
    }

    #[test]
    fn hive_segments_are_parsed() {
        assert_eq!(
            hive_values("country=DE/part-00000.parquet"),
            vec![("country".to_string(), "DE".to_string())]
        );
        assert!(hive_values("part-00000.parquet").is_empty());
    }
}
