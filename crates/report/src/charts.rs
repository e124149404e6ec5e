//! SVG charts of the report directory, drawn with plotters' SVG backend.
//!
//! Text is written as SVG `<text>` elements and laid out with plotters' built-in size
//! estimate, so no font files are loaded and no system fonts are needed. Every chart has a
//! title, axis labels and a legend; empty input gives a valid SVG that says "no data".
//! Scatter series are thinned to at most [`MAX_POINTS_PER_SERIES`] points to keep files small.

use std::collections::BTreeMap;
use std::ops::Range;

use dbopt_core::text::one_line;
use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::{RangedCoordf64, RangedCoordu32};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::format;
use crate::model::{ProposalRow, QueryPoint};
use crate::report::ReportError;

/// Width and height of every chart, in pixels.
pub const SIZE: (u32, u32) = (960, 540);
/// Number of time buckets of the traffic-share chart.
pub const TRAFFIC_BUCKETS: usize = 20;
/// Most points drawn per scatter series; longer series are sampled evenly.
pub const MAX_POINTS_PER_SERIES: usize = 2000;
/// Most proposals drawn by [`predicted_vs_measured`]; later ones are left out (and counted
/// in the axis label) so bars and labels stay readable.
pub const MAX_PROPOSALS: usize = 40;

const FONT: &str = "sans-serif";
const TITLE_SIZE: u32 = 26;
const LABEL_SIZE: u32 = 15;
const BYTE_UNITS: [(&str, f64); 4] = [
    ("GiB", 1024.0 * 1024.0 * 1024.0),
    ("MiB", 1024.0 * 1024.0),
    ("KiB", 1024.0),
    ("B", 1.0),
];

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// Latency of every query over time, one scatter series per layout.
pub fn latency_over_time(queries: &[QueryPoint]) -> Result<String, ReportError> {
    let title = "Query latency over time";
    let Some(axis) = TimeAxis::of(queries) else {
        return render(|root| no_data(root, title));
    };
    let series = scatter_series(queries, &axis, |query| query.latency_ms);
    render(|root| scatter(root, title, &axis, "latency (ms)", &series))
}

/// Bytes scanned by every query over time, one scatter series per layout.
pub fn bytes_scanned(queries: &[QueryPoint]) -> Result<String, ReportError> {
    let title = "Bytes scanned per query";
    let Some(axis) = TimeAxis::of(queries) else {
        return render(|root| no_data(root, title));
    };
    let max = queries.iter().map(|q| q.bytes_scanned).max().unwrap_or(0);
    let (unit, scale) = byte_unit(max as f64);
    let series = scatter_series(queries, &axis, |query| query.bytes_scanned as f64 / scale);
    let y_desc = format!("bytes scanned ({unit})");
    render(|root| scatter(root, title, &axis, &y_desc, &series))
}

/// Share of the table's queries each layout served, per time bucket ([`TRAFFIC_BUCKETS`]
/// buckets over the observed span), one line per layout.
pub fn traffic_share(queries: &[QueryPoint]) -> Result<String, ReportError> {
    let title = "Traffic share per layout";
    let Some(axis) = TimeAxis::of(queries) else {
        return render(|root| no_data(root, title));
    };
    let series = share_series(queries, &axis);
    render(|root| share_lines(root, title, &axis, &series))
}

/// Predicted beside measured reduction of bytes scanned for every proposal; a proposal not
/// yet measured shows its predicted bar only.
pub fn predicted_vs_measured(proposals: &[ProposalRow]) -> Result<String, ReportError> {
    let title = "Predicted vs measured reduction per proposal";
    if proposals.is_empty() {
        return render(|root| no_data(root, title));
    }
    render(|root| reduction_bars(root, title, proposals))
}

/// Renders one chart into SVG text.
fn render(draw: impl FnOnce(&Area) -> DrawResult) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        fill_draw_present(&root, draw).map_err(|error| ReportError::Chart(error.to_string()))?;
    }
    Ok(svg)
}

fn fill_draw_present(root: &Area, draw: impl FnOnce(&Area) -> DrawResult) -> DrawResult {
    root.fill(&WHITE)?;
    draw(root)?;
    root.present()
}

fn no_data(root: &Area, title: &str) -> DrawResult {
    let centered = Pos::new(HPos::Center, VPos::Center);
    let (width, height) = (SIZE.0 as i32, SIZE.1 as i32);
    let title_style = (FONT, TITLE_SIZE).into_font().color(&BLACK).pos(centered);
    root.draw(&Text::new(title.to_string(), (width / 2, 30), title_style))?;
    let style = (FONT, 20).into_font().color(&BLACK).pos(centered);
    root.draw(&Text::new(
        "no data".to_string(),
        (width / 2, height / 2),
        style,
    ))
}

/// The time axis of the query charts: offsets from the first query in a readable unit.
struct TimeAxis {
    start_ms: i64,
    unit_ms: f64,
    unit: &'static str,
    end: f64,
}

impl TimeAxis {
    fn of(queries: &[QueryPoint]) -> Option<TimeAxis> {
        let start_ms = queries.iter().map(|q| q.at_ms).min()?;
        let end_ms = queries.iter().map(|q| q.at_ms).max()?;
        let span_ms = end_ms as f64 - start_ms as f64;
        let (unit, unit_ms) = time_unit(span_ms);
        let end = span_ms / unit_ms;
        Some(TimeAxis {
            start_ms,
            unit_ms,
            unit,
            end,
        })
    }

    fn x(&self, at_ms: i64) -> f64 {
        (at_ms as f64 - self.start_ms as f64) / self.unit_ms
    }

    /// The plotted x range: the span with 2 % padding so edge points are drawn whole.
    fn range(&self) -> Range<f64> {
        let end = self.nonzero_end();
        -end * 0.02..end * 1.02
    }

    /// The width of one traffic bucket.
    fn bucket_width(&self) -> f64 {
        self.nonzero_end() / TRAFFIC_BUCKETS as f64
    }

    /// The span, or one unit when all queries share one timestamp.
    fn nonzero_end(&self) -> f64 {
        if self.end > 0.0 { self.end } else { 1.0 }
    }

    fn desc(&self) -> String {
        format!(
            "time since {} UTC ({})",
            format::utc_time(self.start_ms),
            self.unit
        )
    }
}

fn time_unit(span_ms: f64) -> (&'static str, f64) {
    const MINUTE: f64 = 60_000.0;
    const HOUR: f64 = 60.0 * MINUTE;
    const DAY: f64 = 24.0 * HOUR;
    match span_ms {
        s if s <= 2.0 * MINUTE => ("s", 1000.0),
        s if s <= 2.0 * HOUR => ("min", MINUTE),
        s if s <= 2.0 * DAY => ("h", HOUR),
        _ => ("days", DAY),
    }
}

fn byte_unit(max: f64) -> (&'static str, f64) {
    BYTE_UNITS
        .iter()
        .find(|(_, scale)| max >= *scale)
        .map_or(("B", 1.0), |(unit, scale)| (*unit, *scale))
}

/// One labelled series of points in chart coordinates.
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
}

fn by_layout(queries: &[QueryPoint]) -> BTreeMap<&str, Vec<&QueryPoint>> {
    let mut groups: BTreeMap<&str, Vec<&QueryPoint>> = BTreeMap::new();
    for query in queries {
        groups
            .entry(query.layout_id.as_str())
            .or_default()
            .push(query);
    }
    groups
}

fn scatter_series(
    queries: &[QueryPoint],
    axis: &TimeAxis,
    value: impl Fn(&QueryPoint) -> f64,
) -> Vec<Series> {
    let series_of = |(layout, group): (&str, Vec<&QueryPoint>)| {
        let step = group.len().div_ceil(MAX_POINTS_PER_SERIES).max(1);
        let points = group
            .iter()
            .step_by(step)
            .map(|query| (axis.x(query.at_ms), value(query)))
            .filter(|(_, y)| y.is_finite())
            .collect();
        Series {
            label: one_line(layout),
            points,
        }
    };
    by_layout(queries).into_iter().map(series_of).collect()
}

fn share_series(queries: &[QueryPoint], axis: &TimeAxis) -> Vec<Series> {
    let width = axis.bucket_width();
    let bucket_of = |query: &QueryPoint| {
        let bucket = (axis.x(query.at_ms) / width).floor();
        (bucket.max(0.0) as usize).min(TRAFFIC_BUCKETS - 1)
    };
    let mut totals = [0u64; TRAFFIC_BUCKETS];
    queries
        .iter()
        .for_each(|query| totals[bucket_of(query)] += 1);
    let series_of = |(layout, group): (&str, Vec<&QueryPoint>)| {
        let mut counts = [0u64; TRAFFIC_BUCKETS];
        group.iter().for_each(|query| counts[bucket_of(query)] += 1);
        let points = (0..TRAFFIC_BUCKETS)
            .filter(|&bucket| totals[bucket] > 0)
            .map(|bucket| {
                let x = (bucket as f64 + 0.5) * width;
                (x, counts[bucket] as f64 / totals[bucket] as f64 * 100.0)
            })
            .collect();
        Series {
            label: one_line(layout),
            points,
        }
    };
    by_layout(queries).into_iter().map(series_of).collect()
}

/// The y range covering `values` and zero, with headroom; never empty.
fn value_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (min, max) = values
        .filter(|value| value.is_finite())
        .fold((0.0f64, 0.0f64), |(lo, hi), value| {
            (lo.min(value), hi.max(value))
        });
    let span = max - min;
    if span > 0.0 && span.is_finite() {
        let pad = span * 0.05;
        (if min < 0.0 { min - pad } else { min })..max + pad
    } else {
        min..min + 1.0
    }
}

/// Series colours (Tableau 10, reordered so that pale ones come last).
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4E, 0x79, 0xA7),
    RGBColor(0xF2, 0x8E, 0x2B),
    RGBColor(0x59, 0xA1, 0x4F),
    RGBColor(0xE1, 0x57, 0x59),
    RGBColor(0xB0, 0x7A, 0xA1),
    RGBColor(0x9C, 0x75, 0x5F),
    RGBColor(0x76, 0xB7, 0xB2),
    RGBColor(0xFF, 0x9D, 0xA7),
    RGBColor(0xED, 0xC9, 0x48),
    RGBColor(0xBA, 0xB0, 0xAC),
];

fn color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

fn scatter(
    root: &Area,
    title: &str,
    axis: &TimeAxis,
    y_desc: &str,
    series: &[Series],
) -> DrawResult {
    let y_range = value_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, TITLE_SIZE))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(axis.range(), y_range)?;
    chart
        .configure_mesh()
        .x_desc(axis.desc())
        .y_desc(y_desc)
        .label_style((FONT, LABEL_SIZE))
        .draw()?;
    for (index, one) in series.iter().enumerate() {
        let style = color(index).mix(0.7).filled();
        chart
            .draw_series(one.points.iter().map(|&point| Circle::new(point, 3, style)))?
            .label(one.label.clone())
            .legend(move |(x, y)| Circle::new((x + 6, y), 4, style));
    }
    legend(&mut chart)
}

fn share_lines(root: &Area, title: &str, axis: &TimeAxis, series: &[Series]) -> DrawResult {
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, TITLE_SIZE))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(axis.range(), 0.0..105.0)?;
    chart
        .configure_mesh()
        .x_desc(axis.desc())
        .y_desc("share of queries (%)")
        .label_style((FONT, LABEL_SIZE))
        .draw()?;
    for (index, one) in series.iter().enumerate() {
        let line = color(index).stroke_width(2);
        let points = one.points.iter().copied();
        chart.draw_series(
            points
                .clone()
                .map(|point| Circle::new(point, 3, line.filled())),
        )?;
        chart
            .draw_series(LineSeries::new(points, line))?
            .label(one.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], line));
    }
    legend(&mut chart)
}

fn reduction_bars(root: &Area, title: &str, all: &[ProposalRow]) -> DrawResult {
    let proposals = &all[..all.len().min(MAX_PROPOSALS)];
    let percent = |value: Option<f64>| value.filter(|v| v.is_finite()).map(|v| v * 100.0);
    let bars: Vec<(Option<f64>, Option<f64>)> = proposals
        .iter()
        .map(|p| {
            (
                percent(Some(p.predicted_reduction)),
                percent(p.measured_reduction),
            )
        })
        .collect();
    let labels: Vec<String> = proposals.iter().map(proposal_label).collect();
    let last = proposals.len().saturating_sub(1) as u32;
    let y_range = value_range(bars.iter().flat_map(|&(p, m)| [p, m]).flatten());
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, TITLE_SIZE))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((0..last).into_segmented(), y_range)?;
    let label_of = |value: &SegmentValue<u32>| match value {
        SegmentValue::CenterOf(index) => labels.get(*index as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(proposals.len() + 1)
        .x_label_formatter(&label_of)
        .x_desc(proposals_desc(proposals.len(), all.len()))
        .y_desc("reduction of bytes scanned (%)")
        .label_style((FONT, LABEL_SIZE))
        .draw()?;
    let predicted = bars.iter().map(|bar| bar.0);
    draw_bars(&mut chart, predicted, Half::Left, "predicted", color(0))?;
    let measured = bars.iter().map(|bar| bar.1);
    draw_bars(&mut chart, measured, Half::Right, "measured", color(1))?;
    legend(&mut chart)
}

/// Which half of its segment a bar fills.
#[derive(Clone, Copy)]
enum Half {
    Left,
    Right,
}

type BarChart<'a> =
    ChartContext<'a, SVGBackend<'a>, Cartesian2d<SegmentedCoord<RangedCoordu32>, RangedCoordf64>>;

/// Draws one bar per present value as a labelled series.
fn draw_bars(
    chart: &mut BarChart<'_>,
    values: impl Iterator<Item = Option<f64>>,
    half: Half,
    label: &str,
    color: RGBColor,
) -> DrawResult {
    let style = color.filled();
    let rects = values
        .enumerate()
        .filter_map(|(index, value)| Some(bar(index as u32, half, value?, style)));
    chart
        .draw_series(rects)?
        .label(label)
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], style));
    Ok(())
}

fn bar(
    index: u32,
    half: Half,
    value: f64,
    style: ShapeStyle,
) -> Rectangle<(SegmentValue<u32>, f64)> {
    let (left, right) = match half {
        Half::Left => (SegmentValue::Exact(index), SegmentValue::CenterOf(index)),
        Half::Right => (
            SegmentValue::CenterOf(index),
            SegmentValue::Exact(index + 1),
        ),
    };
    let mut rect = Rectangle::new([(left, value.max(0.0)), (right, value.min(0.0))], style);
    rect.set_margin(0, 0, 2, 2);
    rect
}

fn proposals_desc(shown: usize, total: usize) -> String {
    if shown < total {
        format!("proposal (target layout, #id); first {shown} of {total}")
    } else {
        "proposal (target layout, #id)".to_string()
    }
}

fn proposal_label(proposal: &ProposalRow) -> String {
    format!("{} (#{})", one_line(&proposal.target_layout), proposal.id)
}

fn legend<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, LABEL_SIZE))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}
