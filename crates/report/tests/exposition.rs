//! The Prometheus text exposition format: escaping, value formatting, histograms and a golden
//! rendering of a small family set.

use dbopt_report::exposition::format_value;
use dbopt_report::{
    HistogramSample, MetricFamily, MetricKind, Sample, histogram_from_values, render_exposition,
};

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn family(name: &str, help: &str, kind: MetricKind, samples: Vec<Sample>) -> MetricFamily {
    MetricFamily {
        name: name.into(),
        help: help.into(),
        kind,
        samples,
        histograms: Vec::new(),
    }
}

#[test]
fn escapes_label_values_and_help() {
    let sample = Sample {
        labels: labels(&[("table", "a\\b\"c\nd")]),
        value: 1.0,
    };
    let text = render_exposition(&[family(
        "dbopt_tables",
        "help with \\ and\nnewline \"quoted\"",
        MetricKind::Gauge,
        vec![sample],
    )]);
    let expected = "# HELP dbopt_tables help with \\\\ and\\nnewline \"quoted\"\n\
                    # TYPE dbopt_tables gauge\n\
                    dbopt_tables{table=\"a\\\\b\\\"c\\nd\"} 1\n";
    assert_eq!(text, expected);
}

#[test]
fn formats_values() {
    assert_eq!(format_value(3.0), "3");
    assert_eq!(format_value(0.25), "0.25");
    assert_eq!(format_value(-2.0), "-2");
    assert_eq!(format_value(1e20), "1e20");
    assert_eq!(format_value(f64::INFINITY), "+Inf");
    assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    assert_eq!(format_value(f64::NAN), "NaN");
    assert_eq!(format_value(123456789.0), "123456789");
}

#[test]
fn histogram_from_values_counts_cumulatively() {
    let values = [0.001, 0.005, 0.05, 2.0, 0.5];
    let bounds = [0.005, 0.01, 0.1, 1.0, f64::INFINITY];
    let histogram = histogram_from_values(labels(&[("layout", "L1")]), &bounds, values);
    assert_eq!(histogram.bounds, vec![0.005, 0.01, 0.1, 1.0]);
    assert_eq!(histogram.cumulative_counts, vec![2, 2, 3, 4]);
    assert_eq!(histogram.count, 5);
    assert!((histogram.sum - 2.556).abs() < 1e-12);
}

#[test]
fn renders_histogram_buckets_inf_sum_and_count() {
    let histogram =
        histogram_from_values(labels(&[("layout", "L1")]), &[0.1, 1.0], [0.05, 0.5, 3.0]);
    let family = MetricFamily {
        name: "dbopt_query_latency_seconds".into(),
        help: "Query latency.".into(),
        kind: MetricKind::Histogram,
        samples: Vec::new(),
        histograms: vec![histogram],
    };
    let expected = "\
# HELP dbopt_query_latency_seconds Query latency.
# TYPE dbopt_query_latency_seconds histogram
dbopt_query_latency_seconds_bucket{layout=\"L1\",le=\"0.1\"} 1
dbopt_query_latency_seconds_bucket{layout=\"L1\",le=\"1\"} 2
dbopt_query_latency_seconds_bucket{layout=\"L1\",le=\"+Inf\"} 3
dbopt_query_latency_seconds_sum{layout=\"L1\"} 3.55
dbopt_query_latency_seconds_count{layout=\"L1\"} 3
";
    assert_eq!(render_exposition(&[family]), expected);
}

#[test]
fn mismatched_histogram_lengths_do_not_panic() {
    let histogram = HistogramSample {
        labels: Vec::new(),
        bounds: vec![1.0, 2.0, 3.0],
        cumulative_counts: vec![1],
        count: 4,
        sum: 5.0,
    };
    let family = MetricFamily {
        name: "h".into(),
        help: String::new(),
        kind: MetricKind::Histogram,
        samples: Vec::new(),
        histograms: vec![histogram],
    };
    let text = render_exposition(&[family]);
    assert!(text.contains("h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 4\n"));
}

#[test]
fn sanitizes_invalid_names() {
    let sample = Sample {
        labels: labels(&[("bad-label", "v")]),
        value: 1.0,
    };
    let text = render_exposition(&[family("9bad.name", "x", MetricKind::Gauge, vec![sample])]);
    assert!(text.contains("_9bad_name{bad_label=\"v\"} 1\n"), "{text}");
}

/// A small family set as the metrics endpoint would serve it; checked by hand against
/// `prometheus_client.parser.text_string_to_metric_families`.
pub fn golden_families() -> Vec<MetricFamily> {
    let queries = vec![
        Sample {
            labels: labels(&[("table", "events"), ("layout", "L1")]),
            value: 5400.0,
        },
        Sample {
            labels: labels(&[("table", "events"), ("layout", "L0")]),
            value: 1200.0,
        },
    ];
    let latency = histogram_from_values(
        labels(&[("table", "events")]),
        &[0.005, 0.05, 0.5],
        [0.004, 0.02, 0.03, 0.7],
    );
    vec![
        family(
            "dbopt_queries_total",
            "Queries served per layout.",
            MetricKind::Counter,
            queries,
        ),
        family(
            "autopilot_optimizations_executed",
            "Layout optimizations the autopilot executed.",
            MetricKind::Counter,
            vec![Sample {
                labels: Vec::new(),
                value: 3.0,
            }],
        ),
        family(
            "dbopt_traffic_share",
            "Fraction of the table's queries per layout in the last window.",
            MetricKind::Gauge,
            vec![
                Sample {
                    labels: labels(&[("layout", "L1")]),
                    value: 0.9,
                },
                Sample {
                    labels: labels(&[("layout", "L2")]),
                    value: f64::NAN,
                },
            ],
        ),
        MetricFamily {
            name: "dbopt_query_latency_seconds".into(),
            help: "Query latency in seconds.".into(),
            kind: MetricKind::Histogram,
            samples: Vec::new(),
            histograms: vec![latency],
        },
        family(
            "dbopt_jobs_running",
            "Running migration jobs.",
            MetricKind::Gauge,
            Vec::new(),
        ),
    ]
}

#[test]
fn golden_family_set() {
    let expected = "\
# HELP dbopt_queries_total Queries served per layout.
# TYPE dbopt_queries_total counter
dbopt_queries_total{table=\"events\",layout=\"L1\"} 5400
dbopt_queries_total{table=\"events\",layout=\"L0\"} 1200
# HELP autopilot_optimizations_executed Layout optimizations the autopilot executed.
# TYPE autopilot_optimizations_executed counter
autopilot_optimizations_executed 3
# HELP dbopt_traffic_share Fraction of the table's queries per layout in the last window.
# TYPE dbopt_traffic_share gauge
dbopt_traffic_share{layout=\"L1\"} 0.9
dbopt_traffic_share{layout=\"L2\"} NaN
# HELP dbopt_query_latency_seconds Query latency in seconds.
# TYPE dbopt_query_latency_seconds histogram
dbopt_query_latency_seconds_bucket{table=\"events\",le=\"0.005\"} 1
dbopt_query_latency_seconds_bucket{table=\"events\",le=\"0.05\"} 3
dbopt_query_latency_seconds_bucket{table=\"events\",le=\"0.5\"} 3
dbopt_query_latency_seconds_bucket{table=\"events\",le=\"+Inf\"} 4
dbopt_query_latency_seconds_sum{table=\"events\"} 0.754
dbopt_query_latency_seconds_count{table=\"events\"} 4
# HELP dbopt_jobs_running Running migration jobs.
# TYPE dbopt_jobs_running gauge
";
    let text = render_exposition(&golden_families());
    if let Ok(path) = std::env::var("DBOPT_WRITE_GOLDEN_EXPOSITION") {
        std::fs::write(path, &text).expect("write golden exposition for a manual check");
    }
    assert_eq!(text, expected);
}
