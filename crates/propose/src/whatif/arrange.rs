//! Laying a sample out as a candidate would write it: the curve key and sort order, the hive
//! partitions, and how much better (or worse) each column compresses in that order.

use crate::ProposeError;
use crate::sample::{Key, Sample, cmp_opt};
use dbopt_core::curve::{CURVE_BUCKETS, ColumnBoundaries, curve_keys};
use dbopt_core::{LayoutSpec, SortKey};
use std::cmp::Ordering;
use std::collections::HashMap;

/// One file group of an arranged sample: a hive partition (or the whole table) with its rows
/// in written order.
#[derive(Debug, Clone)]
pub struct Part {
    /// Partition values, one per partition column (empty when unpartitioned).
    pub values: Vec<Option<Key>>,
    /// Sample row indices in written order.
    pub rows: Vec<usize>,
}

/// Lays the sample out as `spec` would; `keep_order` keeps the current physical order.
pub fn arrange(
    sample: &Sample,
    spec: &LayoutSpec,
    keep_order: bool,
) -> Result<Vec<Part>, ProposeError> {
    let order = if keep_order {
        (0..sample.rows()).collect()
    } else {
        written_order(sample, spec)?
    };
    partition(sample, &spec.partition_by, order)
}

/// Sample row indices in the order `spec` writes them: by curve key, then by the sort keys.
fn written_order(sample: &Sample, spec: &LayoutSpec) -> Result<Vec<usize>, ProposeError> {
    let curve = curve_order(sample, &spec.cluster_by, spec.curve)?;
    let sort_cols: Vec<(&[Option<Key>], bool)> = spec
        .sort_by
        .iter()
        .map(|SortKey { column, descending }| {
            sample
                .keys(column)
                .map(|k| (k, *descending))
                .ok_or_else(|| ProposeError::UnknownColumn(column.clone()))
        })
        .collect::<Result<_, _>>()?;
    let mut order: Vec<usize> = (0..sample.rows()).collect();
    order.sort_by(|&a, &b| {
        if let Some(c) = &curve {
            let o = c[a].cmp(&c[b]);
            if o != Ordering::Equal {
                return o;
            }
        }
        for (keys, desc) in &sort_cols {
            let o = cmp_opt(&keys[a], &keys[b]);
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    Ok(order)
}

/// Each sample row's curve key over `columns` (None when the spec clusters on nothing), cut
/// into the same quantile buckets as the rewrite.
fn curve_order(
    sample: &Sample,
    columns: &[String],
    curve: dbopt_core::Curve,
) -> Result<Option<Vec<u64>>, ProposeError> {
    if columns.is_empty() {
        return Ok(None);
    }
    let arrays = columns
        .iter()
        .map(|c| {
            sample
                .array(c)
                .cloned()
                .ok_or_else(|| ProposeError::UnknownColumn(c.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bounds = arrays
        .iter()
        .map(|a| ColumnBoundaries::from_values(a, CURVE_BUCKETS))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ProposeError::Sample(e.to_string()))?;
    let keys =
        curve_keys(&arrays, &bounds, curve).map_err(|e| ProposeError::Sample(e.to_string()))?;
    Ok(Some(keys.values().to_vec()))
}

/// Cuts rows (in written order) into hive partitions on `columns`, in order of first row.
fn partition(
    sample: &Sample,
    columns: &[String],
    order: Vec<usize>,
) -> Result<Vec<Part>, ProposeError> {
    if columns.is_empty() {
        return Ok(vec![Part {
            values: Vec::new(),
            rows: order,
        }]);
    }
    let part_cols: Vec<&[Option<Key>]> = columns
        .iter()
        .map(|c| {
            sample
                .keys(c)
                .ok_or_else(|| ProposeError::UnknownColumn(c.clone()))
        })
        .collect::<Result<_, _>>()?;
    let mut parts: Vec<Part> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for r in order {
        let values: Vec<Option<Key>> = part_cols.iter().map(|k| k[r].clone()).collect();
        let id = format!("{values:?}");
        let pos = *index.entry(id).or_insert_with(|| {
            parts.push(Part {
                values,
                rows: Vec::new(),
            });
            parts.len() - 1
        });
        parts[pos].rows.push(r);
    }
    Ok(parts)
}

/// Compressed bytes per column of `batch` written as one ZSTD Parquet row group, at the
/// writer's level and dictionary limit.
fn compressed_sizes(
    batch: &arrow::array::RecordBatch,
    page_rows: u64,
) -> Result<HashMap<String, u64>, ProposeError> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(dbopt_core::layout::ZSTD_LEVEL).expect("a valid zstd level"),
        ))
        .set_dictionary_page_size_limit(dbopt_core::layout::DICTIONARY_PAGE_BYTES)
        .set_max_row_group_row_count(Some(batch.num_rows().max(1)))
        .set_data_page_row_count_limit(page_rows.max(1) as usize)
        .set_write_batch_size((page_rows as usize).clamp(1, 1024))
        .build();
    let err = |e: parquet::errors::ParquetError| {
        ProposeError::Sample(format!("compressing the sample: {e}"))
    };
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props)).map_err(err)?;
    writer.write(batch).map_err(err)?;
    let meta = writer.close().map_err(err)?;
    let mut sizes = HashMap::new();
    for rg in meta.row_groups() {
        for col in rg.columns() {
            *sizes.entry(col.column_path().string()).or_insert(0) += col.compressed_size() as u64;
        }
    }
    Ok(sizes)
}

/// Per column: compressed size of the sample in the candidate's written order over its size
/// in the current order (partition columns live in directory names and are left out).
pub fn compression_ratios(
    sample: &Sample,
    parts: &[Part],
    page_rows: u64,
) -> Result<HashMap<String, f64>, ProposeError> {
    let batch = &sample.batch;
    if batch.num_rows() == 0 {
        return Ok(HashMap::new());
    }
    let order: Vec<u32> = parts
        .iter()
        .flat_map(|p| p.rows.iter().map(|&r| r as u32))
        .collect();
    let indices = arrow::array::UInt32Array::from(order);
    let arranged = arrow::compute::take_record_batch(batch, &indices)
        .map_err(|e| ProposeError::Sample(format!("arranging the sample: {e}")))?;
    let before = compressed_sizes(batch, page_rows)?;
    let after = compressed_sizes(&arranged, page_rows)?;
    Ok(before
        .into_iter()
        .filter(|(_, b)| *b > 0)
        .map(|(c, b)| {
            let a = after.get(&c).copied().unwrap_or(b);
            (c, (a as f64 / b as f64).clamp(0.02, 2.0))
        })
        .collect())
}
