//! Space-filling curve keys (Z-order and Hilbert) over Arrow columns of any type.
//!
//! Each clustering column is first mapped to a bucket number by per-column quantile
//! boundaries (compared with Arrow's row format, so any orderable type works), then the
//! buckets of one row are combined into one `u64` key: bit-interleaved for Z-order, the
//! Hilbert index for Hilbert. Sorting by the key clusters rows that are close in every
//! column. Used by the migration rewrite and by the what-if model.

use crate::Curve;
use arrow::array::{Array, ArrayRef, AsArray, UInt32Array, UInt64Array};
use arrow::compute::cast;
use arrow::datatypes::{ArrowNativeType, ArrowPrimitiveType, DataType, Float64Type, Int64Type};
use arrow::error::ArrowError;
use arrow::row::{OwnedRow, RowConverter, SortField};

/// Quantile buckets per clustering column (the rewrite and the what-if model must cut
/// columns into the same buckets to predict the same order).
pub const CURVE_BUCKETS: usize = 1024;

/// Bits per dimension used for `dims` clustering columns (at most 16, 64 bits in total).
pub fn bits_per_dim(dims: usize) -> u32 {
    if dims == 0 {
        return 0;
    }
    (64 / dims as u32).min(16)
}

/// Bits per dimension a curve key over columns cut into `counts` buckets uses: enough for the
/// largest bucket count, at most `bits_per_dim`. The Hilbert curve is self-similar, so a
/// coarser grid that still separates every bucket visits the cells in the order the finer one
/// does, with fewer steps per key (the rewrite computes one key per row).
pub fn key_bits(counts: &[usize]) -> u32 {
    let needed = counts
        .iter()
        .map(|c| usize::BITS - c.saturating_sub(1).leading_zeros())
        .max()
        .unwrap_or(0);
    needed.clamp(1, 32).min(bits_per_dim(counts.len()))
}

/// Quantile boundaries of one column: value `v` falls in bucket `#{b : b <= v}`, in the order
/// of Arrow's row format (nulls first).
#[derive(Debug)]
pub struct ColumnBoundaries {
    converter: RowConverter,
    probe: Probe,
}

/// How values are compared with the boundaries. Integer-like and float columns compare native
/// values (the same order as the row format, without encoding every value); other types
/// compare encoded rows.
#[derive(Debug)]
enum Probe {
    /// Boundaries of a column cast to Int64.
    Int(NativeBounds<i64>),
    /// Boundaries of a column cast to Float64 (IEEE total order, like the row format).
    Float(NativeBounds<f64>),
    /// Boundaries as encoded rows.
    Rows(Vec<OwnedRow>),
}

/// A native type ordered the way Arrow's row format orders it.
trait RowOrder: ArrowNativeType {
    /// `self <= other` in row-format order.
    fn row_le(self, other: Self) -> bool;
}

impl RowOrder for i64 {
    fn row_le(self, other: Self) -> bool {
        self <= other
    }
}

impl RowOrder for f64 {
    fn row_le(self, other: Self) -> bool {
        self.total_cmp(&other).is_le()
    }
}

/// Boundaries as native values; `null_bounds` boundaries (0 or 1) are null and sort first.
#[derive(Debug)]
struct NativeBounds<N> {
    null_bounds: u32,
    bounds: Vec<N>,
}

impl<N: RowOrder> NativeBounds<N> {
    /// The boundaries at rows `picked` of `native` (already cast to `T`).
    fn new<T: ArrowPrimitiveType<Native = N>>(native: &ArrayRef, picked: &[usize]) -> Self {
        let a = native.as_primitive::<T>();
        Self {
            null_bounds: picked.iter().filter(|&&i| a.is_null(i)).count() as u32,
            bounds: picked
                .iter()
                .filter(|&&i| a.is_valid(i))
                .map(|&i| a.value(i))
                .collect(),
        }
    }

    /// Number of boundaries.
    fn len(&self) -> usize {
        self.null_bounds as usize + self.bounds.len()
    }

    /// The bucket of every value of `native` (already cast to `T`).
    fn buckets<T: ArrowPrimitiveType<Native = N>>(&self, native: &ArrayRef) -> Vec<u32> {
        let a = native.as_primitive::<T>();
        (0..a.len())
            .map(|i| match a.is_valid(i) {
                true => {
                    let v = a.value(i);
                    self.null_bounds + self.bounds.partition_point(|b| b.row_le(v)) as u32
                }
                false => self.null_bounds,
            })
            .collect()
    }
}

/// The type a column is compared as natively, if its row-format order is that type's order.
fn native_type(data_type: &DataType) -> Option<DataType> {
    use DataType::*;
    match data_type {
        Int8
        | Int16
        | Int32
        | Int64
        | UInt8
        | UInt16
        | UInt32
        | Date32
        | Date64
        | Timestamp(_, _)
        | Time32(_)
        | Time64(_)
        | Duration(_) => Some(Int64),
        Float16 | Float32 | Float64 => Some(Float64),
        _ => None,
    }
}

impl ColumnBoundaries {
    /// Computes up to `buckets - 1` boundaries at equal quantiles of `values` (a sample or all
    /// data); duplicates are removed, so a column with few distinct values gets few buckets.
    pub fn from_values(values: &ArrayRef, buckets: usize) -> Result<Self, ArrowError> {
        let converter = RowConverter::new(vec![SortField::new(values.data_type().clone())])?;
        let rows = converter.convert_columns(std::slice::from_ref(values))?;
        let n = rows.num_rows();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_unstable_by(|&a, &b| rows.row(a).cmp(&rows.row(b)));
        // Indices into `values` of the boundaries, strictly increasing in row order.
        let mut picked: Vec<usize> = Vec::new();
        if n > 0 && buckets > 1 {
            for i in 1..buckets {
                let idx = i * n / buckets;
                if idx == 0 || idx >= n {
                    continue;
                }
                let candidate = order[idx];
                if picked
                    .last()
                    .is_none_or(|&last| rows.row(last) < rows.row(candidate))
                {
                    picked.push(candidate);
                }
            }
        }
        let probe = match native_type(values.data_type()) {
            Some(DataType::Int64) => Probe::Int(NativeBounds::new::<Int64Type>(
                &cast(values, &DataType::Int64)?,
                &picked,
            )),
            Some(_) => Probe::Float(NativeBounds::new::<Float64Type>(
                &cast(values, &DataType::Float64)?,
                &picked,
            )),
            None => Probe::Rows(picked.iter().map(|&i| rows.row(i).owned()).collect()),
        };
        Ok(Self { converter, probe })
    }

    /// Number of buckets values fall into (boundaries + 1).
    pub fn bucket_count(&self) -> usize {
        1 + match &self.probe {
            Probe::Int(native) => native.len(),
            Probe::Float(native) => native.len(),
            Probe::Rows(bounds) => bounds.len(),
        }
    }

    /// The bucket of every value of `values` (same type as the boundaries were built from).
    pub fn buckets(&self, values: &ArrayRef) -> Result<UInt32Array, ArrowError> {
        let out: Vec<u32> = match &self.probe {
            Probe::Int(native) => native.buckets::<Int64Type>(&cast(values, &DataType::Int64)?),
            Probe::Float(native) => {
                native.buckets::<Float64Type>(&cast(values, &DataType::Float64)?)
            }
            Probe::Rows(bounds) => {
                let rows = self
                    .converter
                    .convert_columns(std::slice::from_ref(values))?;
                rows.iter()
                    .map(|row| bounds.partition_point(|b| b.row() <= row) as u32)
                    .collect()
            }
        };
        Ok(UInt32Array::from(out))
    }
}

/// Scales `bucket` of `count` buckets onto `bits` bits, keeping order.
fn scale(bucket: u32, count: usize, bits: u32) -> u32 {
    if bits == 0 || count <= 1 {
        return 0;
    }
    let max = (1u64 << bits) - 1;
    ((u64::from(bucket) * max) / (count as u64 - 1)).min(max) as u32
}

/// Interleaves the low `bits` bits of each coordinate, most significant bit first
/// (coordinate 0 gets the highest bit of each group).
pub fn z_order(coords: &[u32], bits: u32) -> u64 {
    let mut key = 0u64;
    for bit in (0..bits).rev() {
        for c in coords {
            key = (key << 1) | u64::from((c >> bit) & 1);
        }
    }
    key
}

/// The Hilbert index of a point with `coords.len()` dimensions of `bits` bits each
/// (Skilling's transpose algorithm, then bit interleave).
pub fn hilbert(coords: &[u32], bits: u32) -> u64 {
    let n = coords.len();
    if n == 0 || bits == 0 {
        return 0;
    }
    // Up to MAX_STACK_DIMS coordinates are transformed on the stack (one key per row).
    const MAX_STACK_DIMS: usize = 8;
    let mut stack = [0u32; MAX_STACK_DIMS];
    let mut heap = Vec::new();
    let x: &mut [u32] = if n <= MAX_STACK_DIMS {
        stack[..n].copy_from_slice(coords);
        &mut stack[..n]
    } else {
        heap.extend_from_slice(coords);
        &mut heap
    };
    let m = 1u32 << (bits - 1);
    // Inverse undo excess work.
    // Branch-free: the bit tests depend on the data, so branches would mispredict often.
    let mut q = m;
    while q > 1 {
        let p = q - 1;
        for i in 0..n {
            let set = 0u32.wrapping_sub(u32::from(x[i] & q != 0));
            // Bit set: invert the low bits of x[0]. Clear: exchange them between x[0] and x[i].
            let t = (x[0] ^ x[i]) & p & !set;
            x[0] ^= (p & set) | t;
            x[i] ^= t;
        }
        q >>= 1;
    }
    // Gray encode.
    for i in 1..n {
        x[i] ^= x[i - 1];
    }
    let mut t = 0u32;
    let mut q = m;
    while q > 1 {
        t ^= (q - 1) & 0u32.wrapping_sub(u32::from(x[n - 1] & q != 0));
        q >>= 1;
    }
    for v in x.iter_mut() {
        *v ^= t;
    }
    z_order(x, bits)
}

/// The curve key of every row: `columns[i]` is bucketed by `bounds[i]`, buckets are scaled
/// to `key_bits` of the bucket counts and combined with `curve`.
pub fn curve_keys(
    columns: &[ArrayRef],
    bounds: &[ColumnBoundaries],
    curve: Curve,
) -> Result<UInt64Array, ArrowError> {
    if columns.len() != bounds.len() || columns.is_empty() {
        return Err(ArrowError::InvalidArgumentError(format!(
            "curve key needs one boundary set per column, got {} columns and {} boundary sets",
            columns.len(),
            bounds.len()
        )));
    }
    let rows = columns[0].len();
    if columns.iter().any(|c| c.len() != rows) {
        return Err(ArrowError::InvalidArgumentError(
            "curve key columns have different lengths".into(),
        ));
    }
    let buckets: Vec<UInt32Array> = columns
        .iter()
        .zip(bounds)
        .map(|(c, b)| b.buckets(c))
        .collect::<Result<_, _>>()?;
    let counts: Vec<usize> = bounds.iter().map(ColumnBoundaries::bucket_count).collect();
    let bits = key_bits(&counts);
    let mut coords = vec![0u32; columns.len()];
    let keys: Vec<u64> = (0..rows)
        .map(|r| {
            for (d, b) in buckets.iter().enumerate() {
                coords[d] = scale(b.value(r), counts[d], bits);
            }
            match curve {
                Curve::ZOrder => z_order(&coords, bits),
                Curve::Hilbert => hilbert(&coords, bits),
            }
        })
        .collect();
    Ok(UInt64Array::from(keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn z_order_interleaves_bits() {
        assert_eq!(z_order(&[0b11, 0b00], 2), 0b1010);
        assert_eq!(z_order(&[0b00, 0b11], 2), 0b0101);
        assert_eq!(z_order(&[1, 1, 1], 1), 0b111);
    }

    /// Skilling's transform written with branches, as published.
    fn hilbert_with_branches(coords: &[u32], bits: u32) -> u64 {
        let n = coords.len();
        let mut x = coords.to_vec();
        let m = 1u32 << (bits - 1);
        let mut q = m;
        while q > 1 {
            let p = q - 1;
            for i in 0..n {
                if x[i] & q != 0 {
                    x[0] ^= p;
                } else {
                    let t = (x[0] ^ x[i]) & p;
                    x[0] ^= t;
                    x[i] ^= t;
                }
            }
            q >>= 1;
        }
        for i in 1..n {
            x[i] ^= x[i - 1];
        }
        let mut t = 0u32;
        let mut q = m;
        while q > 1 {
            if x[n - 1] & q != 0 {
                t ^= q - 1;
            }
            q >>= 1;
        }
        for v in &mut x {
            *v ^= t;
        }
        z_order(&x, bits)
    }

    #[test]
    fn branch_free_hilbert_matches_the_published_transform() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let dims = 2 + (state >> 60) as usize % 3;
            let bits = super::bits_per_dim(dims);
            let coords: Vec<u32> = (0..dims)
                .map(|d| ((state >> (d * 13)) as u32) & ((1u32 << bits) - 1))
                .collect();
            assert_eq!(hilbert(&coords, bits), hilbert_with_branches(&coords, bits));
        }
    }

    #[test]
    fn key_bits_are_sized_to_the_bucket_counts() {
        assert_eq!(key_bits(&[1024, 1024]), 10);
        assert_eq!(key_bits(&[1025, 3]), 11);
        assert_eq!(key_bits(&[2, 1]), 1);
        assert_eq!(key_bits(&[1 << 20, 1 << 20]), 16, "at most bits_per_dim");
        assert_eq!(key_bits(&[1024; 8]), 8);
    }

    #[test]
    fn a_grid_sized_to_the_buckets_keeps_the_full_grid_s_order() {
        // 1024 buckets per column on 10 bits and on 16: the same order of every cell, ties
        // included (each bucket lands in its own 10-bit cell either way).
        let counts = [CURVE_BUCKETS, CURVE_BUCKETS];
        let coarse = key_bits(&counts);
        let fine = bits_per_dim(2);
        assert!(coarse < fine);
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut cells: Vec<[u32; 2]> = (0..5_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                [(state % 1024) as u32, ((state >> 20) % 1024) as u32]
            })
            .collect();
        for curve in [Curve::Hilbert, Curve::ZOrder] {
            let key = |c: &[u32; 2], bits: u32| {
                let scaled = [scale(c[0], 1024, bits), scale(c[1], 1024, bits)];
                match curve {
                    Curve::Hilbert => hilbert(&scaled, bits),
                    Curve::ZOrder => z_order(&scaled, bits),
                }
            };
            cells.sort_by_key(|c| key(c, fine));
            let by_fine: Vec<u64> = cells.iter().map(|c| key(c, fine)).collect();
            let by_coarse: Vec<u64> = cells.iter().map(|c| key(c, coarse)).collect();
            assert!(
                by_coarse.windows(2).all(|w| w[0] <= w[1]),
                "{curve:?}: order differs"
            );
            for (a, b) in by_fine.windows(2).zip(by_coarse.windows(2)) {
                assert_eq!(a[0] == a[1], b[0] == b[1], "{curve:?}: ties differ");
            }
        }
    }

    #[test]
    fn hilbert_is_a_bijection_with_unit_steps() {
        // Every consecutive pair of Hilbert indices is one grid step apart.
        let bits = 3;
        let side = 1u32 << bits;
        let mut by_index = vec![None; (side * side) as usize];
        for x in 0..side {
            for y in 0..side {
                let h = hilbert(&[x, y], bits) as usize;
                assert!(by_index[h].is_none(), "index {h} used twice");
                by_index[h] = Some((x, y));
            }
        }
        let points: Vec<(u32, u32)> = by_index.into_iter().map(Option::unwrap).collect();
        for w in points.windows(2) {
            let d = w[0].0.abs_diff(w[1].0) + w[0].1.abs_diff(w[1].1);
            assert_eq!(d, 1, "{:?} -> {:?}", w[0], w[1]);
        }
        // 3-D too.
        let mut seen = std::collections::HashSet::new();
        for x in 0..4 {
            for y in 0..4 {
                for z in 0..4 {
                    assert!(seen.insert(hilbert(&[x, y, z], 2)));
                }
            }
        }
    }

    #[test]
    fn boundaries_bucket_any_type_in_order() {
        let values: ArrayRef = Arc::new(StringArray::from(
            (0..1000).map(|i| format!("k{i:04}")).collect::<Vec<_>>(),
        ));
        let b = ColumnBoundaries::from_values(&values, 10).unwrap();
        assert_eq!(b.bucket_count(), 10);
        let buckets = b.buckets(&values).unwrap();
        let v: Vec<u32> = buckets.values().to_vec();
        assert!(v.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!((v[0], v[999]), (0, 9));
        // Few distinct values give few buckets; nulls sort first.
        let low: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(1), None, Some(2)]));
        let b = ColumnBoundaries::from_values(&low, 100).unwrap();
        assert!(b.bucket_count() <= 3);
        let v = b.buckets(&low).unwrap();
        assert_eq!(v.value(2), 0);
        assert!(v.value(0) <= v.value(3));
    }

    #[test]
    fn native_and_row_comparisons_give_the_same_buckets() {
        use arrow::array::{Date32Array, Float64Array};
        let ints: ArrayRef = Arc::new(Int64Array::from_iter(
            (0..5000).map(|i| (i % 11 != 0).then_some((i * 7919) % 1000 - 500)),
        ));
        let floats: ArrayRef =
            Arc::new(Float64Array::from_iter((0..5000).map(|i| {
                (i % 13 != 0).then_some(f64::from((i * 31) % 997) / 3.0 - 100.0)
            })));
        let dates: ArrayRef = Arc::new(Date32Array::from_iter_values((0..5000).map(|i| i % 365)));
        for values in [ints, floats, dates] {
            let native = ColumnBoundaries::from_values(&values, 64).unwrap();
            assert!(!matches!(native.probe, Probe::Rows(_)));
            // The same boundaries compared as encoded rows.
            let rows = native
                .converter
                .convert_columns(std::slice::from_ref(&values))
                .unwrap();
            let mut order: Vec<usize> = (0..values.len()).collect();
            order.sort_by(|&a, &b| rows.row(a).cmp(&rows.row(b)));
            let mut bounds: Vec<OwnedRow> = Vec::new();
            for i in 1..64 {
                let r = rows.row(order[i * values.len() / 64]);
                if bounds.last().is_none_or(|l| l.row() < r) {
                    bounds.push(r.owned());
                }
            }
            let by_rows = ColumnBoundaries {
                converter: RowConverter::new(vec![SortField::new(values.data_type().clone())])
                    .unwrap(),
                probe: Probe::Rows(bounds),
            };
            assert_eq!(native.bucket_count(), by_rows.bucket_count());
            assert_eq!(
                native.buckets(&values).unwrap(),
                by_rows.buckets(&values).unwrap(),
                "{}",
                values.data_type()
            );
        }
    }

    /// The largest extent, in either column, of a block of 64 consecutive rows in key order
    /// over a 64 x 64 grid.
    fn max_block_extent(curve: Curve) -> i64 {
        let side = 64i64;
        let a: Vec<i64> = (0..side * side).map(|i| i / side).collect();
        let b: Vec<i64> = (0..side * side).map(|i| i % side).collect();
        let ca: ArrayRef = Arc::new(Int64Array::from(a.clone()));
        let cb: ArrayRef = Arc::new(Int64Array::from(b.clone()));
        let bounds = vec![
            ColumnBoundaries::from_values(&ca, 64).unwrap(),
            ColumnBoundaries::from_values(&cb, 64).unwrap(),
        ];
        let keys = curve_keys(&[ca, cb], &bounds, curve).unwrap();
        let mut order: Vec<usize> = (0..a.len()).collect();
        order.sort_by_key(|&i| keys.value(i));
        let extent = |c: &[usize], v: &[i64]| {
            let lo = c.iter().map(|&i| v[i]).min().unwrap();
            let hi = c.iter().map(|&i| v[i]).max().unwrap();
            hi - lo + 1
        };
        order
            .chunks(64)
            .map(|c| extent(c, &a).max(extent(c, &b)))
            .max()
            .unwrap()
    }

    #[test]
    fn curves_keep_blocks_local_in_both_columns() {
        // Sorting on column a alone puts 64 consecutive rows on one full line (extent 64 in
        // b); both curves put them in an 8 x 8 square.
        for curve in [Curve::ZOrder, Curve::Hilbert] {
            assert_eq!(max_block_extent(curve), 8, "{curve:?}");
        }
    }

    #[test]
    fn keys_reject_mismatched_inputs() {
        let c: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        let b = ColumnBoundaries::from_values(&c, 4).unwrap();
        assert!(curve_keys(&[c.clone(), c.clone()], &[b], Curve::ZOrder).is_err());
        assert!(curve_keys(&[], &[], Curve::ZOrder).is_err());
        assert_eq!(bits_per_dim(2), 16);
        assert_eq!(bits_per_dim(4), 16);
        assert_eq!(scale(3, 4, 2), 3);
        assert_eq!(scale(0, 1, 16), 0);
    }
}
