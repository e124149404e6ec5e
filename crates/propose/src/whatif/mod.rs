//! The what-if cost model: lay a sample out as a candidate would (partitions, curve key, sort),
//! cut it into row groups and pages at sizes scaled to the full table, build min/max zone
//! maps, and count for each logged query (with its literals) the files, row groups and pages
//! that survive pruning, converted to bytes with the per-column compressed sizes.

use crate::ProposeError;
use crate::sample::{Key, Sample, cmp_opt};
use dbopt_core::curve::{ColumnBoundaries, curve_keys};
use dbopt_core::plan::{Predicate, PredicateKind, TableStats, TableUsage};
use dbopt_core::{LayoutSpec, SortKey};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Rows per file the writer rolls at (mirrors the engine writer's default).
pub const ROWS_PER_FILE: u64 = dbopt_core::layout::ROWS_PER_FILE;
/// Price of opening one file, in byte-equivalents (metadata read, request setup).
pub const FILE_PRICE_BYTES: f64 = 256.0 * 1024.0;
/// Price of visiting one row group, in byte-equivalents (decoder setup).
pub const ROW_GROUP_PRICE_BYTES: f64 = 16.0 * 1024.0;
/// Price of decoding one data page of one column, in byte-equivalents (page header, page
/// index entry, decoder call).
pub const PAGE_PRICE_BYTES: f64 = 1024.0;
/// Quantile buckets per curve column.
pub const CURVE_BUCKETS: usize = 1024;
/// False-positive rate of the bloom filters the writer creates.
pub const BLOOM_FPP: f64 = 0.01;

/// One logged query to price, with its weight (how many times it ran).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatIfQuery {
    /// Its workload cluster.
    pub cluster_id: String,
    /// What it asks of the table (filters with literals, columns read).
    pub usage: TableUsage,
    /// Times it ran.
    pub weight: f64,
}

/// The predicted cost of the workload on one layout.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Estimate {
    /// Bytes scanned (column data, as DataFusion counts it), summed over the weighted queries.
    pub bytes_scanned: f64,
    /// Footer and page-index bytes read besides (priced in `cost`).
    pub metadata_bytes: f64,
    /// Files opened, summed over queries.
    pub files_read: f64,
    /// Row groups visited, summed over queries.
    pub row_groups_read: f64,
    /// Column pages decoded, summed over queries.
    #[serde(default)]
    pub pages_read: f64,
    /// Files in the layout.
    pub files_total: u64,
    /// Row groups in the layout.
    pub row_groups_total: u64,
    /// Bytes plus the prices of files and row groups.
    pub cost: f64,
    /// Bytes per cluster.
    pub cluster_bytes: BTreeMap<String, f64>,
}

/// min/max/null zone map of one column over a run of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Smallest non-null value.
    pub min: Option<Key>,
    /// Largest non-null value.
    pub max: Option<Key>,
    /// Null values.
    pub nulls: usize,
    /// All values.
    pub count: usize,
}

impl Zone {
    /// The zone of `keys` at `rows`.
    pub fn of(keys: &[Option<Key>], rows: &[usize]) -> Zone {
        let mut z = Zone {
            min: None,
            max: None,
            nulls: 0,
            count: rows.len(),
        };
        for &r in rows {
            match &keys[r] {
                None => z.nulls += 1,
                Some(k) => {
                    if z.min
                        .as_ref()
                        .is_none_or(|m| k.compare(m) == Some(Ordering::Less))
                    {
                        z.min = Some(k.clone());
                    }
                    if z.max
                        .as_ref()
                        .is_none_or(|m| k.compare(m) == Some(Ordering::Greater))
                    {
                        z.max = Some(k.clone());
                    }
                }
            }
        }
        z
    }

    fn merge(&mut self, other: &Zone) {
        if let Some(m) = &other.min
            && self
                .min
                .as_ref()
                .is_none_or(|s| m.compare(s) == Some(Ordering::Less))
        {
            self.min = Some(m.clone());
        }
        if let Some(m) = &other.max
            && self
                .max
                .as_ref()
                .is_none_or(|s| m.compare(s) == Some(Ordering::Greater))
        {
            self.max = Some(m.clone());
        }
        self.nulls += other.nulls;
        self.count += other.count;
    }

    /// Whether rows matching `kind` may exist in the zone (false means prunable).
    pub fn may_match(&self, kind: &PredicateKind) -> bool {
        let in_range = |v: &Key| {
            let (Some(lo), Some(hi)) = (&self.min, &self.max) else {
                return false;
            };
            !matches!(v.compare(lo), Some(Ordering::Less))
                && !matches!(v.compare(hi), Some(Ordering::Greater))
        };
        let has_values = self.count > self.nulls;
        match kind {
            PredicateKind::Eq { value } => has_values && in_range(&Key::of_lit(value)),
            PredicateKind::In { values } => {
                has_values && values.iter().any(|v| in_range(&Key::of_lit(v)))
            }
            PredicateKind::Range { low, high } => {
                let (Some(min), Some(max)) = (&self.min, &self.max) else {
                    return false;
                };
                let low_ok =
                    low.as_ref()
                        .is_none_or(|b| match max.compare(&Key::of_lit(&b.value)) {
                            Some(Ordering::Less) => false,
                            Some(Ordering::Equal) => b.inclusive,
                            _ => true,
                        });
                let high_ok =
                    high.as_ref()
                        .is_none_or(|b| match min.compare(&Key::of_lit(&b.value)) {
                            Some(Ordering::Greater) => false,
                            Some(Ordering::Equal) => b.inclusive,
                            _ => true,
                        });
                low_ok && high_ok
            }
            PredicateKind::PrefixLike { prefix } => match (&self.min, &self.max) {
                (Some(Key::Str(min)), Some(Key::Str(max))) => {
                    max.as_str() >= prefix.as_str()
                        && (min.as_str() <= prefix.as_str() || min.starts_with(prefix.as_str()))
                }
                (None, None) => false,
                _ => true,
            },
            PredicateKind::IsNull => self.nulls > 0,
            PredicateKind::IsNotNull => has_values,
            PredicateKind::Other => true,
        }
    }
}

/// Whether one value satisfies `kind` (unknown kinds and incomparable values count as true).
pub fn row_matches(key: &Option<Key>, kind: &PredicateKind) -> bool {
    let cmp = |v: &crate::sample::Key| key.as_ref().and_then(|k| k.compare(v));
    match kind {
        // A value that cannot be compared with the literal (e.g. hive text) is kept.
        PredicateKind::Eq { value } => {
            key.is_some() && cmp(&Key::of_lit(value)).is_none_or(|o| o == Ordering::Equal)
        }
        PredicateKind::In { values } => {
            key.is_some()
                && values
                    .iter()
                    .any(|v| cmp(&Key::of_lit(v)).is_none_or(|o| o == Ordering::Equal))
        }
        PredicateKind::Range { low, high } => {
            if key.is_none() {
                return false;
            }
            let lo = low
                .as_ref()
                .is_none_or(|b| match cmp(&Key::of_lit(&b.value)) {
                    Some(Ordering::Greater) => true,
                    Some(Ordering::Equal) => b.inclusive,
                    Some(Ordering::Less) => false,
                    None => true,
                });
            let hi = high
                .as_ref()
                .is_none_or(|b| match cmp(&Key::of_lit(&b.value)) {
                    Some(Ordering::Less) => true,
                    Some(Ordering::Equal) => b.inclusive,
                    Some(Ordering::Greater) => false,
                    None => true,
                });
            lo && hi
        }
        PredicateKind::PrefixLike { prefix } => match key {
            Some(Key::Str(s)) => s.starts_with(prefix.as_str()),
            Some(_) => true,
            None => false,
        },
        PredicateKind::IsNull => key.is_none(),
        PredicateKind::IsNotNull => key.is_some(),
        PredicateKind::Other => true,
    }
}

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
    let n = sample.rows();
    let mut order: Vec<usize> = (0..n).collect();
    if !keep_order {
        let curve: Option<Vec<u64>> = if spec.cluster_by.is_empty() {
            None
        } else {
            let arrays = spec
                .cluster_by
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
            let keys = curve_keys(&arrays, &bounds, spec.curve)
                .map_err(|e| ProposeError::Sample(e.to_string()))?;
            Some(keys.values().to_vec())
        };
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
    }
    if spec.partition_by.is_empty() {
        return Ok(vec![Part {
            values: Vec::new(),
            rows: order,
        }]);
    }
    let part_cols: Vec<&[Option<Key>]> = spec
        .partition_by
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

/// Per query: which sample rows match all its prunable predicates, and the overall rate.
struct QueryMatch {
    rows: Vec<bool>,
    rate: f64,
}

fn match_rows(sample: &Sample, filters: &[Predicate]) -> QueryMatch {
    let n = sample.rows();
    let mut rows = vec![true; n];
    for p in filters {
        let Some(keys) = sample.keys(&p.column) else {
            continue;
        };
        for (r, ok) in rows.iter_mut().enumerate() {
            if *ok && !row_matches(&keys[r], &p.kind) {
                *ok = false;
            }
        }
    }
    let hits = rows.iter().filter(|b| **b).count();
    let rate = if hits == 0 {
        0.5 / sample.table_rows as f64
    } else {
        hits as f64 / n as f64
    };
    QueryMatch { rows, rate }
}

/// Probability that a run of `full_rows` rows holds at least one row matching at `rate`.
fn p_any(rate: f64, full_rows: f64) -> f64 {
    1.0 - (1.0 - rate.clamp(0.0, 1.0)).powf(full_rows.max(0.0))
}

/// Precomputed row matches of the workload over a sample, shared by every candidate.
pub struct Workload<'a> {
    queries: &'a [WhatIfQuery],
    matches: Vec<QueryMatch>,
    filter_columns: BTreeSet<String>,
}

impl<'a> Workload<'a> {
    /// Evaluates every query's predicates on the sample rows once.
    pub fn new(sample: &Sample, queries: &'a [WhatIfQuery]) -> Self {
        let matches = queries
            .iter()
            .map(|q| match_rows(sample, &prunable(&q.usage.filters)))
            .collect();
        let filter_columns = queries
            .iter()
            .flat_map(|q| q.usage.filters.iter().map(|p| p.column.clone()))
            .collect();
        Workload {
            queries,
            matches,
            filter_columns,
        }
    }
}

fn prunable(filters: &[Predicate]) -> Vec<Predicate> {
    filters
        .iter()
        .filter(|p| p.kind.prunable())
        .cloned()
        .collect()
}

/// Geometry of a layout: rows per row group and page, and metadata bytes per row group.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    /// Rows per row group.
    pub row_group_rows: u64,
    /// Rows per data page.
    pub page_rows: u64,
}

struct PageZones {
    rows: Vec<usize>,
    zones: HashMap<String, Zone>,
}

/// Compressed bytes per column of `batch` written as one ZSTD Parquet row group.
fn compressed_sizes(
    batch: &arrow::array::RecordBatch,
    page_rows: u64,
) -> Result<HashMap<String, u64>, ProposeError> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("3 is a valid zstd level"),
        ))
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

/// Predicts the workload's cost on `spec` (laid out from the current order when `keep_order`).
pub fn estimate(
    sample: &Sample,
    stats: &TableStats,
    spec: &LayoutSpec,
    keep_order: bool,
    geometry: Geometry,
    workload: &Workload<'_>,
) -> Result<Estimate, ProposeError> {
    let parts = arrange(sample, spec, keep_order)?;
    let fraction = sample.fraction();
    let rows_total = stats.rows.max(1) as f64;
    let scaled = |rows: u64| ((rows as f64 * fraction).round() as usize).max(1);
    let rg_sample = scaled(geometry.row_group_rows);
    let page_sample = scaled(geometry.page_rows).min(rg_sample);
    let meta_per_rg = if stats.row_groups > 0 {
        stats.metadata_bytes as f64 / stats.row_groups as f64
    } else {
        0.0
    };
    // A new order compresses differently: scale each column's size by how much better (or
    // worse) the sample compresses in the candidate's order than in its current order.
    let ratios = if keep_order {
        HashMap::new()
    } else {
        compression_ratios(sample, &parts, geometry.page_rows)?
    };
    let ratio = |c: &str| ratios.get(c).copied().unwrap_or(1.0);
    // Data pages are read page by page; a dictionary page whenever its row group is read.
    let bytes_per_row: HashMap<&str, f64> = stats
        .columns
        .iter()
        .map(|c| {
            let data = c.compressed_bytes.saturating_sub(c.dictionary_bytes);
            (
                c.column.as_str(),
                data as f64 / rows_total * ratio(&c.column),
            )
        })
        .collect();
    let dict_per_row: HashMap<&str, f64> = stats
        .columns
        .iter()
        .map(|c| {
            (
                c.column.as_str(),
                c.dictionary_bytes as f64 / rows_total * ratio(&c.column),
            )
        })
        .collect();
    let partition_cols: BTreeSet<&str> = spec.partition_by.iter().map(String::as_str).collect();
    let bloom_cols: BTreeSet<&str> = spec
        .bloom_filter_columns
        .iter()
        .map(String::as_str)
        .collect();

    // Zone maps: part -> row group -> pages.
    let mut layout: Vec<(f64, f64, Vec<Vec<PageZones>>)> = Vec::new();
    let mut files_total = 0u64;
    let mut rgs_total = 0u64;
    for part in &parts {
        let full_rows = part.rows.len() as f64 / fraction;
        let full_rgs = (full_rows / geometry.row_group_rows as f64).ceil().max(1.0);
        let files = if keep_order {
            0.0
        } else {
            (full_rows / ROWS_PER_FILE as f64).ceil().max(1.0)
        };
        files_total += files as u64;
        rgs_total += full_rgs as u64;
        let groups: Vec<Vec<PageZones>> = part
            .rows
            .chunks(rg_sample)
            .map(|rg| {
                rg.chunks(page_sample)
                    .map(|page| PageZones {
                        rows: page.to_vec(),
                        zones: workload
                            .filter_columns
                            .iter()
                            .filter_map(|c| Some((c.clone(), Zone::of(sample.keys(c)?, page))))
                            .collect(),
                    })
                    .collect()
            })
            .collect();
        // Each sample row group stands for full_rgs / groups.len() real ones.
        let rg_weight = full_rgs / groups.len().max(1) as f64;
        layout.push((files, rg_weight, groups));
    }
    if keep_order {
        files_total = stats.files;
        rgs_total = stats.row_groups;
    }
    let page_full_rows = |rows: usize| rows as f64 / fraction;

    let mut est = Estimate {
        files_total,
        row_groups_total: rgs_total,
        ..Default::default()
    };
    for (q, m) in workload.queries.iter().zip(&workload.matches) {
        let filters = prunable(&q.usage.filters);
        let read_cols: Vec<String> = q
            .usage
            .columns_read()
            .into_iter()
            .filter(|c| !partition_cols.contains(c.as_str()))
            .collect();
        let filter_cols: BTreeSet<&str> = filters.iter().map(|p| p.column.as_str()).collect();
        let filter_bpr: f64 = read_cols
            .iter()
            .filter(|c| filter_cols.contains(c.as_str()))
            .filter_map(|c| bytes_per_row.get(c.as_str()))
            .sum();
        let other_bpr: f64 = read_cols
            .iter()
            .filter(|c| !filter_cols.contains(c.as_str()))
            .filter_map(|c| bytes_per_row.get(c.as_str()))
            .sum();
        let filter_dict: f64 = read_cols
            .iter()
            .filter(|c| filter_cols.contains(c.as_str()))
            .filter_map(|c| dict_per_row.get(c.as_str()))
            .sum();
        let other_dict: f64 = read_cols
            .iter()
            .filter(|c| !filter_cols.contains(c.as_str()))
            .filter_map(|c| dict_per_row.get(c.as_str()))
            .sum();
        let bloom_preds: Vec<&Predicate> = filters
            .iter()
            .filter(|p| {
                bloom_cols.contains(p.column.as_str())
                    && matches!(p.kind, PredicateKind::Eq { .. } | PredicateKind::In { .. })
            })
            .collect();
        let mut bytes = 0.0;
        let mut meta = 0.0;
        let mut files = 0.0;
        let mut rgs = 0.0;
        let mut pages = 0.0;
        for (part, (part_files, rg_weight, groups)) in parts.iter().zip(&layout) {
            let part_ok = spec.partition_by.iter().zip(&part.values).all(|(c, v)| {
                filters
                    .iter()
                    .filter(|p| &p.column == c)
                    .all(|p| row_matches(v, &p.kind))
            });
            if !part_ok {
                continue;
            }
            files += part_files;
            meta += meta_per_rg * rg_weight * groups.len() as f64;
            for rg in groups {
                let mut zone: HashMap<&str, Zone> = HashMap::new();
                for page in rg {
                    for (c, z) in &page.zones {
                        match zone.get_mut(c.as_str()) {
                            Some(acc) => acc.merge(z),
                            None => {
                                zone.insert(c.as_str(), z.clone());
                            }
                        }
                    }
                }
                let survives = filters.iter().all(|p| {
                    zone.get(p.column.as_str())
                        .is_none_or(|z| z.may_match(&p.kind))
                });
                if !survives {
                    continue;
                }
                let rg_rows: usize = rg.iter().map(|p| p.rows.len()).sum();
                let rg_hits = rg
                    .iter()
                    .flat_map(|p| &p.rows)
                    .filter(|r| m.rows[**r])
                    .count();
                // A bloom filter drops row groups that hold none of the looked-up values.
                let keep = if !bloom_preds.is_empty() && rg_hits == 0 {
                    (p_any(m.rate, page_full_rows(rg_rows)) + BLOOM_FPP).min(1.0)
                } else {
                    1.0
                };
                rgs += rg_weight * keep;
                let mut any_page = false;
                let mut other_read: f64 = 0.0;
                for page in rg {
                    let page_ok = filters.iter().all(|p| {
                        page.zones
                            .get(&p.column)
                            .is_none_or(|z| z.may_match(&p.kind))
                    });
                    if !page_ok {
                        continue;
                    }
                    let full = page_full_rows(page.rows.len());
                    let hits = page.rows.iter().filter(|r| m.rows[**r]).count();
                    let p_other = if filters.is_empty() || hits > 0 {
                        1.0
                    } else {
                        p_any(m.rate, page_full_rows(page.rows.len()))
                    };
                    bytes += keep * full * (filter_bpr + other_bpr * p_other);
                    any_page = true;
                    pages += keep * rg_weight * read_cols.len() as f64;
                    other_read = other_read.max(p_other);
                }
                if any_page {
                    let rg_full = page_full_rows(rg_rows);
                    bytes += keep * rg_full * (filter_dict + other_dict * other_read);
                }
            }
        }
        // DataFusion's bytes_scanned counts column data only (footers and page indexes are
        // read through the metadata path), so metadata is priced in `cost`, not in bytes.
        let total = bytes * q.weight;
        est.bytes_scanned += total;
        est.metadata_bytes += meta * q.weight;
        est.files_read += files * q.weight;
        est.row_groups_read += rgs * q.weight;
        est.pages_read += pages * q.weight;
        *est.cluster_bytes.entry(q.cluster_id.clone()).or_default() += total;
    }
    if keep_order {
        // The current files are all opened unless every row group is pruned; count them.
        est.files_read =
            workload.queries.iter().map(|q| q.weight).sum::<f64>() * stats.files as f64;
    }
    est.cost = est.bytes_scanned
        + est.metadata_bytes
        + est.files_read * FILE_PRICE_BYTES
        + est.row_groups_read * ROW_GROUP_PRICE_BYTES
        + est.pages_read * PAGE_PRICE_BYTES;
    Ok(est)
}
