//! The Prometheus text exposition format, version 0.0.4.
//!
//! Each family prints `# HELP` and `# TYPE` lines (also when it has no samples), then its
//! plain samples, then its histograms as `_bucket` lines (cumulative, ending with
//! `le="+Inf"`), `_sum` and `_count`. Names are printed as given, so a counter named without
//! `_total` keeps its name; characters a name may not contain become `_`.

use std::fmt::Write as _;

/// The metric type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A monotonically increasing count.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations counted into cumulative buckets.
    Histogram,
}

impl MetricKind {
    /// The name used on the `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One sample of a counter or gauge.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Label names and values, printed in this order.
    pub labels: Vec<(String, String)>,
    /// The sample value.
    pub value: f64,
}

/// One histogram (one label set) of a histogram family.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSample {
    /// Label names and values, printed in this order before `le`.
    pub labels: Vec<(String, String)>,
    /// Bucket upper bounds, ascending, without `+Inf`.
    pub bounds: Vec<f64>,
    /// Observations at or below each bound; same length as `bounds`.
    pub cumulative_counts: Vec<u64>,
    /// All observations (the `+Inf` bucket).
    pub count: u64,
    /// Sum of all observations.
    pub sum: f64,
}

/// One metric family: a name, its help text and type, and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    /// Metric name, printed as given (e.g. `dbopt_queries_total`).
    pub name: String,
    /// One-line description for `# HELP`.
    pub help: String,
    /// Metric type for `# TYPE`.
    pub kind: MetricKind,
    /// Plain samples (counters and gauges).
    pub samples: Vec<Sample>,
    /// Histogram samples (histogram families).
    pub histograms: Vec<HistogramSample>,
}

/// Renders metric families in the text exposition format.
pub fn render_exposition(families: &[MetricFamily]) -> String {
    let mut out = String::new();
    for family in families {
        render_family(&mut out, family);
    }
    out
}

/// Builds a histogram from observations: each bound counts the values at or below it.
/// Infinite bounds are dropped (`+Inf` is always implied).
pub fn histogram_from_values(
    labels: Vec<(String, String)>,
    bounds: &[f64],
    values: impl IntoIterator<Item = f64>,
) -> HistogramSample {
    let bounds: Vec<f64> = bounds
        .iter()
        .copied()
        .filter(|b| !b.is_infinite())
        .collect();
    let mut cumulative_counts = vec![0u64; bounds.len()];
    let (mut count, mut sum) = (0u64, 0.0f64);
    for value in values {
        count += 1;
        sum += value;
        for (bound, bucket) in bounds.iter().zip(cumulative_counts.iter_mut()) {
            *bucket += u64::from(value <= *bound);
        }
    }
    HistogramSample {
        labels,
        bounds,
        cumulative_counts,
        count,
        sum,
    }
}

fn render_family(out: &mut String, family: &MetricFamily) {
    let name = metric_name(&family.name);
    let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
    let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
    for sample in &family.samples {
        line(out, &name, &sample.labels, None, sample.value);
    }
    for histogram in &family.histograms {
        render_histogram(out, &name, histogram);
    }
}

fn render_histogram(out: &mut String, name: &str, histogram: &HistogramSample) {
    let bucket = format!("{name}_bucket");
    let buckets = histogram.bounds.iter().zip(&histogram.cumulative_counts);
    for (bound, count) in buckets.filter(|(bound, _)| !bound.is_infinite()) {
        line(out, &bucket, &histogram.labels, Some(*bound), *count as f64);
    }
    line(
        out,
        &bucket,
        &histogram.labels,
        Some(f64::INFINITY),
        histogram.count as f64,
    );
    line(
        out,
        &format!("{name}_sum"),
        &histogram.labels,
        None,
        histogram.sum,
    );
    line(
        out,
        &format!("{name}_count"),
        &histogram.labels,
        None,
        histogram.count as f64,
    );
}

/// One sample line: `name{labels,le="bound"} value`.
fn line(out: &mut String, name: &str, labels: &[(String, String)], le: Option<f64>, value: f64) {
    let mut pairs: Vec<String> = labels
        .iter()
        .filter(|(label, _)| le.is_none() || label != "le")
        .map(|(label, value)| format!("{}=\"{}\"", label_name(label), escape_label_value(value)))
        .collect();
    if let Some(bound) = le {
        pairs.push(format!("le=\"{}\"", format_value(bound)));
    }
    let labels = if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    };
    let _ = writeln!(out, "{name}{labels} {}", format_value(value));
}

/// Formats a sample value: integers without a decimal point, `+Inf`, `-Inf`, `NaN`, and
/// exponent notation for magnitudes of 1e15 and beyond.
pub fn format_value(value: f64) -> String {
    match value {
        v if v.is_nan() => "NaN".to_string(),
        f64::INFINITY => "+Inf".to_string(),
        f64::NEG_INFINITY => "-Inf".to_string(),
        v if v.abs() >= 1e15 => format!("{v:e}"),
        v => format!("{v}"),
    }
}

/// Escapes a label value: backslash, double quote and newline.
pub fn escape_label_value(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// Escapes `# HELP` text: backslash and newline.
pub fn escape_help(help: &str) -> String {
    help.replace('\\', r"\\").replace('\n', r"\n")
}

/// A valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, other characters replaced by `_`.
fn metric_name(name: &str) -> String {
    sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`, other characters replaced by `_`.
fn label_name(name: &str) -> String {
    sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_')
}

fn sanitize(name: &str, allowed: impl Fn(char) -> bool) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if allowed(c) { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}
