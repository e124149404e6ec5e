//! The Prometheus metrics `dbopt serve` exposes on `/metrics`, read from the catalog at scrape
//! time so they agree with `status` and reports.
//!
//! Names and labels are part of the interface (README "Metrics"); table and layout names are
//! label values (escaped by the renderer); SQL never appears.

use crate::{DbError, Workspace};
use dbopt_catalog::{AutopilotCounts, JobStatus, LayoutTotals};
use dbopt_report::{HistogramSample, MetricFamily, MetricKind, Sample};

/// Upper bounds of the query latency histogram, in seconds.
pub const LATENCY_BOUNDS_SEC: [f64; 13] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Workspace {
    /// Every metric family, with values read from the catalog now.
    pub fn metric_families(&self) -> Result<Vec<MetricFamily>, DbError> {
        let totals = self.catalog().layout_totals(&LATENCY_BOUNDS_SEC)?;
        let counts = self.catalog().autopilot_counts()?;
        let mut families = query_families(&totals);
        families.extend(self.job_families()?);
        families.push(self.active_layout_family()?);
        families.extend(autopilot_families(&counts));
        families.extend(self.cache_families());
        Ok(families)
    }

    /// The engine's metadata caches, when this process serves queries from a shared runtime
    /// (`serve --sql-addr`).
    fn cache_families(&self) -> Vec<MetricFamily> {
        let Some(stats) = self.engine_cache_stats() else {
            return Vec::new();
        };
        let gauge = |name: &str, help: &str, v: u64| {
            family(name, help, MetricKind::Gauge, vec![sample(&[], v as f64)])
        };
        let mut families = vec![
            gauge(
                "dbopt_footer_cache_entries",
                "Parquet footers and page indexes held by the metadata cache.",
                stats.footer_entries,
            ),
            gauge(
                "dbopt_footer_cache_bytes",
                "Bytes the metadata cache holds.",
                stats.footer_bytes,
            ),
            gauge(
                "dbopt_footer_cache_limit_bytes",
                "Bound of the metadata cache (metadata_cache).",
                stats.footer_limit,
            ),
            family(
                "dbopt_footer_cache_hits_total",
                "Lookups answered by a cached footer (over the entries still cached).",
                MetricKind::Counter,
                vec![sample(&[], stats.footer_hits as f64)],
            ),
            gauge(
                "dbopt_engine_memory_reserved_bytes",
                "Bytes the shared memory pool has handed out (running queries and the column-chunk cache).",
                stats.memory_reserved,
            ),
        ];
        if let Some(chunks) = self.engine_runtime().and_then(|r| r.chunk_cache()) {
            let c = chunks.stats();
            let counter = |name: &str, help: &str, v: u64| {
                family(name, help, MetricKind::Counter, vec![sample(&[], v as f64)])
            };
            families.extend([
                gauge(
                    "dbopt_chunk_cache_entries",
                    "Parquet column chunks held by the column-chunk cache.",
                    c.entries,
                ),
                gauge(
                    "dbopt_chunk_cache_bytes",
                    "Bytes the column-chunk cache holds (reserved in the memory pool).",
                    c.bytes,
                ),
                gauge(
                    "dbopt_chunk_cache_limit_bytes",
                    "Bound of the column-chunk cache (cache_max_bytes).",
                    c.max_bytes,
                ),
                counter(
                    "dbopt_chunk_cache_hits_total",
                    "Column-chunk reads answered from memory.",
                    c.hits,
                ),
                counter(
                    "dbopt_chunk_cache_misses_total",
                    "Column-chunk reads that read a file.",
                    c.misses,
                ),
                counter(
                    "dbopt_chunk_cache_evictions_total",
                    "Column chunks evicted for the bound or for queries' memory.",
                    c.evictions,
                ),
            ]);
        }
        families
    }

    /// The exposition text of `metric_families`.
    pub fn metrics_text(&self) -> Result<String, DbError> {
        Ok(dbopt_report::render_exposition(&self.metric_families()?))
    }

    fn job_families(&self) -> Result<Vec<MetricFamily>, DbError> {
        let jobs = self.catalog().list_jobs(None)?;
        let states = [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Failed,
        ];
        let by_state = states
            .iter()
            .map(|s| {
                let n = jobs.iter().filter(|j| j.status == *s).count();
                sample(&[("state", s.as_str())], n as f64)
            })
            .collect();
        let written: u64 = jobs.iter().map(|j| j.stats.bytes_written).sum();
        Ok(vec![
            family(
                "dbopt_migration_jobs",
                "Migration jobs by state.",
                MetricKind::Gauge,
                by_state,
            ),
            family(
                "dbopt_rewrite_bytes_total",
                "Parquet bytes written by migration jobs.",
                MetricKind::Counter,
                vec![sample(&[], written as f64)],
            ),
        ])
    }

    fn active_layout_family(&self) -> Result<MetricFamily, DbError> {
        let samples = self
            .catalog()
            .list_tables()?
            .iter()
            .map(|t| {
                let layout = t.active_layout.to_string();
                sample(&[("table", t.name.as_str()), ("layout", &layout)], 1.0)
            })
            .collect();
        Ok(family(
            "dbopt_active_layout_info",
            "The layout each table reads by default (value 1).",
            MetricKind::Gauge,
            samples,
        ))
    }
}

fn query_families(totals: &[LayoutTotals]) -> Vec<MetricFamily> {
    fn labels(t: &LayoutTotals) -> [(&str, &str); 2] {
        [
            ("table", t.table.as_str()),
            ("layout", t.layout_id.as_str()),
        ]
    }
    let queries = totals
        .iter()
        .map(|t| sample(&labels(t), t.queries as f64))
        .collect();
    let bytes = totals
        .iter()
        .map(|t| sample(&labels(t), t.bytes_scanned as f64))
        .collect();
    let mut duration = family(
        "dbopt_query_duration_seconds",
        "Query latency.",
        MetricKind::Histogram,
        Vec::new(),
    );
    duration.histograms = totals
        .iter()
        .map(|t| HistogramSample {
            labels: owned(&labels(t)),
            bounds: LATENCY_BOUNDS_SEC.to_vec(),
            cumulative_counts: t.latency_buckets.clone(),
            count: t.queries,
            sum: t.latency_sum_sec,
        })
        .collect();
    vec![
        family(
            "dbopt_queries_total",
            "Queries executed, by table and the layout they read.",
            MetricKind::Counter,
            queries,
        ),
        duration,
        family(
            "dbopt_bytes_scanned_total",
            "Bytes of the table scanned by queries, by layout.",
            MetricKind::Counter,
            bytes,
        ),
    ]
}

fn autopilot_families(counts: &[AutopilotCounts]) -> Vec<MetricFamily> {
    let per_table = |value: &dyn Fn(&AutopilotCounts) -> Option<f64>| -> Vec<Sample> {
        counts
            .iter()
            .filter_map(|c| value(c).map(|v| sample(&[("table", &c.table)], v)))
            .collect()
    };
    vec![
        family(
            "autopilot_recommendations_total",
            "Layouts recommended by propose runs.",
            MetricKind::Counter,
            per_table(&|c| Some(c.recommendations as f64)),
        ),
        family(
            "autopilot_optimizations_executed",
            "Layout rewrites published.",
            MetricKind::Counter,
            per_table(&|c| Some(c.jobs_done as f64)),
        ),
        family(
            "autopilot_scan_reduction_pct",
            "Last measured scan reduction of a proposed layout, percent.",
            MetricKind::Gauge,
            per_table(&|c| c.last_measured_reduction.map(|r| r * 100.0)),
        ),
        family(
            "autopilot_canary_failures",
            "Canaries that rejected a candidate layout.",
            MetricKind::Counter,
            per_table(&|c| Some(c.canary_failures as f64)),
        ),
    ]
}

fn family(name: &str, help: &str, kind: MetricKind, samples: Vec<Sample>) -> MetricFamily {
    MetricFamily {
        name: name.to_string(),
        help: help.to_string(),
        kind,
        samples,
        histograms: Vec::new(),
    }
}

fn sample(labels: &[(&str, &str)], value: f64) -> Sample {
    Sample {
        labels: owned(labels),
        value,
    }
}

fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
