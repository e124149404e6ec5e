//! The SVG charts on awkward input: one instant, extreme times, non-finite values, many
//! proposals. Each must give well-formed SVG without negative sizes.

mod common;

use dbopt_report::charts::{self, MAX_PROPOSALS};
use dbopt_report::{ProposalRow, QueryPoint};

fn all_charts(queries: &[QueryPoint], proposals: &[ProposalRow]) -> Vec<String> {
    vec![
        charts::latency_over_time(queries).expect("latency chart"),
        charts::bytes_scanned(queries).expect("bytes chart"),
        charts::traffic_share(queries).expect("traffic chart"),
        charts::predicted_vs_measured(proposals).expect("proposal chart"),
    ]
}

/// Parses the SVG and checks no rectangle has a negative width or height.
fn assert_valid(svg: &str) {
    let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    for rect in doc.descendants().filter(|n| n.has_tag_name("rect")) {
        for attribute in ["width", "height"] {
            let value: f64 = rect
                .attribute(attribute)
                .unwrap_or("0")
                .parse()
                .expect("number");
            assert!(value >= 0.0, "negative {attribute} in {rect:?}");
        }
    }
}

fn query(at_ms: i64, layout: &str, latency_ms: f64, bytes_scanned: u64) -> QueryPoint {
    QueryPoint {
        at_ms,
        layout_id: layout.into(),
        cluster: "c".into(),
        latency_ms,
        bytes_scanned,
    }
}

#[test]
fn fixture_charts_are_valid() {
    all_charts(&common::queries(), &common::proposals())
        .iter()
        .for_each(|svg| assert_valid(svg));
}

#[test]
fn a_single_instant_is_drawn() {
    let queries = [
        query(common::T0, "only", 3.0, 100),
        query(common::T0, "other", 4.0, 0),
    ];
    let proposals = &common::proposals()[..1];
    for svg in all_charts(&queries, proposals) {
        assert_valid(&svg);
        assert!(!svg.contains("no data"));
    }
}

#[test]
fn extreme_times_and_non_finite_values_do_not_fail() {
    let queries = [
        query(i64::MIN, "a", f64::NAN, u64::MAX),
        query(i64::MAX, "b", f64::INFINITY, 0),
        query(0, "c\n<&>\"'\x01", -1.0, 1),
    ];
    let mut proposals = common::proposals();
    proposals[0].predicted_reduction = f64::NAN;
    proposals[1].measured_reduction = Some(f64::NEG_INFINITY);
    all_charts(&queries, &proposals)
        .iter()
        .for_each(|svg| assert_valid(svg));
}

#[test]
fn many_proposals_are_capped() {
    let template = common::proposals().remove(0);
    let proposals: Vec<ProposalRow> = (0..100)
        .map(|i| ProposalRow {
            id: i,
            target_layout: format!("L{i}"),
            ..template.clone()
        })
        .collect();
    let svg = charts::predicted_vs_measured(&proposals).expect("chart");
    assert_valid(&svg);
    assert!(svg.contains(&format!("first {MAX_PROPOSALS} of 100")));
}

#[test]
fn large_series_are_thinned() {
    let queries: Vec<QueryPoint> = (0..10_000)
        .map(|i| query(common::T0 + i, "L", i as f64, 1))
        .collect();
    let svg = charts::latency_over_time(&queries).expect("chart");
    assert_valid(&svg);
    let circles = svg.matches("<circle").count();
    assert!(
        circles <= charts::MAX_POINTS_PER_SERIES + 1,
        "{circles} circles"
    );
}
