//! Calibrating the what-if model's fixed prices from measured latencies.
//!
//! The model ranks candidates by bytes plus a price per file opened, per row group visited
//! and per page decoded, in byte-equivalents. How many bytes a row group visit is worth
//! depends on the machine (disk, cores, decoder), so the prices are fitted to the query log:
//! latency = fixed + a·bytes + b·row groups + c·files, every coefficient non-negative
//! (least squares with bytes always in, row groups and files in or out, keeping the best fit
//! whose coefficients are all non-negative), and a price is its
//! coefficient over the per-byte one. Pages are not in the query log, so their price stays.

use crate::ProposeError;
use serde::Serialize;

/// The fixed prices of the what-if model, in byte-equivalents.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prices {
    /// Opening one file.
    pub file: f64,
    /// Visiting one row group.
    pub row_group: f64,
    /// Decoding one page of one column.
    pub page: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            file: crate::whatif::FILE_PRICE_BYTES,
            row_group: crate::whatif::ROW_GROUP_PRICE_BYTES,
            page: crate::whatif::PAGE_PRICE_BYTES,
        }
    }
}

/// One measured query: its latency and what it read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Latency in milliseconds.
    pub latency_ms: f64,
    /// Bytes scanned.
    pub bytes: f64,
    /// Row groups read (not pruned).
    pub row_groups: f64,
    /// Files read (not pruned).
    pub files: f64,
}

/// The fitted latency model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fit {
    /// Queries fitted.
    pub queries: usize,
    /// Milliseconds every query costs (planning, setup).
    pub fixed_ms: f64,
    /// Milliseconds per byte scanned.
    pub ms_per_byte: f64,
    /// Milliseconds per row group read (None: left out of the best fit, so not measured).
    pub ms_per_row_group: Option<f64>,
    /// Milliseconds per file read (None: left out of the best fit, so not measured).
    pub ms_per_file: Option<f64>,
    /// Share of the latency variance the fit explains (1 = all).
    pub r_squared: f64,
}

/// Fewest queries a fit takes.
pub const MIN_POINTS: usize = 20;

impl Fit {
    /// The prices this fit implies; a term the fit left out, and the page price (not in the
    /// query log), keep their `current` price.
    pub fn prices(&self, current: Prices) -> Prices {
        Prices {
            file: self
                .ms_per_file
                .map_or(current.file, |ms| ms / self.ms_per_byte),
            row_group: self
                .ms_per_row_group
                .map_or(current.row_group, |ms| ms / self.ms_per_byte),
            page: current.page,
        }
    }
}

/// Fits latency = fixed + a·bytes + b·row groups + c·files with every coefficient
/// non-negative: the best of the ordinary least-squares fits, bytes always in and row groups
/// and files in or out, whose coefficients all come out non-negative.
pub fn fit(points: &[Point]) -> Result<Fit, ProposeError> {
    if points.len() < MIN_POINTS {
        return Err(ProposeError::NoWorkload(format!(
            "calibration needs at least {MIN_POINTS} measured single-table queries, the log holds {}: run more queries first",
            points.len()
        )));
    }
    let features = |p: &Point| [p.bytes, p.row_groups, p.files];
    // Scale each term to at most 1 so the normal equations stay well conditioned.
    let mut scale = [0.0_f64; 3];
    for p in points {
        for (s, v) in scale.iter_mut().zip(features(p)) {
            *s = s.max(v.abs());
        }
    }
    let mut best: Option<([Option<f64>; 4], f64)> = None;
    // Bytes are always a term (prices are in bytes); row groups and files come in or out.
    for mask in 0u8..4 {
        let wanted = 1 | (mask << 1);
        let terms: Vec<usize> = (0..3)
            .filter(|i| wanted & (1 << i) != 0 && scale[*i] > 0.0)
            .collect();
        if terms.len() != wanted.count_ones() as usize {
            continue;
        }
        let rows: Vec<(Vec<f64>, f64)> = points
            .iter()
            .map(|p| {
                let f = features(p);
                let mut x = vec![1.0];
                x.extend(terms.iter().map(|i| f[*i] / scale[*i]));
                (x, p.latency_ms)
            })
            .collect();
        let Some(beta) = least_squares(&rows) else {
            continue;
        };
        if beta.iter().any(|b| *b < 0.0) {
            continue;
        }
        let sse: f64 = rows
            .iter()
            .map(|(x, y)| (y - x.iter().zip(&beta).map(|(a, b)| a * b).sum::<f64>()).powi(2))
            .sum();
        if best.as_ref().is_none_or(|(_, s)| sse < *s) {
            let mut coef = [Some(beta[0]), None, None, None];
            for (k, i) in terms.iter().enumerate() {
                coef[i + 1] = Some(beta[k + 1] / scale[*i]);
            }
            best = Some((coef, sse));
        }
    }
    let (coef, sse) = best.filter(|(c, _)| c[1] > Some(0.0)).ok_or_else(|| {
        ProposeError::NoWorkload(
            "latency does not grow with bytes scanned in the logged queries, so prices in bytes cannot be derived: log queries that read more and less of the table".into(),
        )
    })?;
    let mean = points.iter().map(|p| p.latency_ms).sum::<f64>() / points.len() as f64;
    let sst: f64 = points.iter().map(|p| (p.latency_ms - mean).powi(2)).sum();
    Ok(Fit {
        queries: points.len(),
        fixed_ms: coef[0].unwrap_or(0.0),
        ms_per_byte: coef[1].unwrap_or(0.0),
        ms_per_row_group: coef[2],
        ms_per_file: coef[3],
        r_squared: if sst > 0.0 { 1.0 - sse / sst } else { 1.0 },
    })
}

/// Ordinary least squares through the normal equations (Gaussian elimination with partial
/// pivoting); None when they are singular.
fn least_squares(rows: &[(Vec<f64>, f64)]) -> Option<Vec<f64>> {
    let n = rows.first()?.0.len();
    let mut a = vec![vec![0.0; n + 1]; n];
    for (x, y) in rows {
        for i in 0..n {
            for j in 0..n {
                a[i][j] += x[i] * x[j];
            }
            a[i][n] += x[i] * y;
        }
    }
    for col in 0..n {
        let pivot = (col..n).max_by(|p, q| a[*p][col].abs().total_cmp(&a[*q][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let factor = row[col] / pivot_row[col];
                for (cell, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                    *cell -= factor * p;
                }
            }
        }
    }
    Some((0..n).map(|i| a[i][n] / a[i][i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Queries on a made-up linear machine: latency = 2 ms fixed + 1e-6 ms per byte + 0.05 ms
    /// per row group + 0.5 ms per file.
    fn exact(n: usize) -> Vec<Point> {
        (0..n)
            .map(|i| {
                let bytes = ((i * 7919) % 97) as f64 * 1e5;
                let row_groups = ((i * 31) % 13) as f64 + 1.0;
                let files = ((i * 17) % 5) as f64 + 1.0;
                Point {
                    latency_ms: 2.0 + 1e-6 * bytes + 0.05 * row_groups + 0.5 * files,
                    bytes,
                    row_groups,
                    files,
                }
            })
            .collect()
    }

    #[test]
    fn an_exact_linear_machine_is_recovered_with_its_prices() {
        let fit = fit(&exact(40)).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(close(fit.fixed_ms, 2.0), "{fit:?}");
        assert!(close(fit.ms_per_byte, 1e-6), "{fit:?}");
        assert!(close(fit.ms_per_row_group.unwrap(), 0.05), "{fit:?}");
        assert!(close(fit.ms_per_file.unwrap(), 0.5), "{fit:?}");
        assert!(fit.r_squared > 0.999_999);
        // A row group is worth 0.05 / 1e-6 = 50,000 bytes, a file 500,000; pages kept.
        let prices = fit.prices(Prices::default());
        assert!((prices.row_group - 50_000.0).abs() < 1e-3);
        assert!((prices.file - 500_000.0).abs() < 1e-2);
        assert_eq!(prices.page, Prices::default().page);
    }

    #[test]
    fn a_term_that_would_come_out_negative_is_left_out() {
        // Latency falls with files here (a made-up machine): the fit drops the file term
        // rather than price files below zero.
        let points: Vec<Point> = exact(40)
            .into_iter()
            .map(|mut p| {
                p.latency_ms -= 0.9 * p.files;
                p.latency_ms += 10.0;
                p
            })
            .collect();
        let fit = fit(&points).unwrap();
        assert_eq!(fit.ms_per_file, None);
        assert!(fit.ms_per_byte > 0.0 && fit.ms_per_row_group.is_some());
        // The file price it could not measure stays as it was.
        let prices = fit.prices(Prices::default());
        assert_eq!(prices.file, Prices::default().file);
    }

    #[test]
    fn too_few_or_flat_queries_are_refused_with_the_reason() {
        let few = fit(&exact(5)).unwrap_err().to_string();
        assert!(few.contains("at least 20"), "{few}");
        let flat: Vec<Point> = exact(30)
            .into_iter()
            .map(|mut p| {
                p.latency_ms = 3.0;
                p
            })
            .collect();
        let err = fit(&flat).unwrap_err().to_string();
        assert!(err.contains("does not grow with bytes"), "{err}");
    }
}
