//! Rolling-window figures of a set of measured queries.

use serde::{Deserialize, Serialize};

/// One measured query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Latency in ms.
    pub latency_ms: f64,
    /// Bytes scanned of the evaluated table.
    pub bytes: f64,
    /// Rows returned.
    pub rows: f64,
}

/// Figures of the queries of one layout (and cluster) in one window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct WindowStats {
    /// Queries.
    pub queries: u64,
    /// Mean latency.
    pub avg_latency_ms: f64,
    /// Median latency (nearest rank).
    pub p50_latency_ms: f64,
    /// 95th percentile latency.
    pub p95_latency_ms: f64,
    /// 99th percentile latency.
    pub p99_latency_ms: f64,
    /// Mean bytes scanned.
    pub avg_bytes: f64,
    /// Mean rows returned.
    pub avg_rows: f64,
}

/// The nearest-rank percentile `q` (0..=1) of ascending `sorted` values (0 when empty).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Means and latency percentiles of `samples` (all zero when empty).
pub fn window_stats(samples: &[Sample]) -> WindowStats {
    if samples.is_empty() {
        return WindowStats::default();
    }
    let n = samples.len() as f64;
    let mut latencies: Vec<f64> = samples.iter().map(|s| s.latency_ms).collect();
    latencies.sort_by(f64::total_cmp);
    WindowStats {
        queries: samples.len() as u64,
        avg_latency_ms: latencies.iter().sum::<f64>() / n,
        p50_latency_ms: percentile(&latencies, 0.50),
        p95_latency_ms: percentile(&latencies, 0.95),
        p99_latency_ms: percentile(&latencies, 0.99),
        avg_bytes: samples.iter().map(|s| s.bytes).sum::<f64>() / n,
        avg_rows: samples.iter().map(|s| s.rows).sum::<f64>() / n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7.0], 0.95), 7.0);
    }

    #[test]
    fn window_figures() {
        let samples: Vec<Sample> = (1..=10)
            .map(|i| Sample {
                latency_ms: f64::from(11 - i),
                bytes: f64::from(i) * 100.0,
                rows: 2.0,
            })
            .collect();
        let w = window_stats(&samples);
        assert_eq!(w.queries, 10);
        assert_eq!(w.avg_latency_ms, 5.5);
        assert_eq!(
            (w.p50_latency_ms, w.p95_latency_ms, w.p99_latency_ms),
            (5.0, 10.0, 10.0)
        );
        assert_eq!(w.avg_bytes, 550.0);
        assert_eq!(w.avg_rows, 2.0);
        assert_eq!(window_stats(&[]).queries, 0);
    }
}
