//! Fixed models shared by the integration tests and the crate's unit tests.
#![allow(dead_code)]

use dbopt_report::{
    ActivationRow, CanaryRow, ClusterBest, DecisionRow, HistoryRow, JobRow, LayoutState,
    LayoutStatus, Observed, ProposalRow, QueryPoint, ReportBundle, RoutingRow, StatusReport,
    TemplateRow,
};

/// 2023-11-14 22:13:20 UTC.
pub const T0: i64 = 1_700_000_000_000;
/// A layout id with every Markdown special character a catalog string could bring.
pub const HOSTILE: &str = "a|b*_<x>";

const MIB: u64 = 1024 * 1024;

pub fn layouts() -> Vec<LayoutStatus> {
    vec![
        LayoutStatus {
            layout_id: "L0-initial".into(),
            state: LayoutState::Initial,
            spec: "files=8 order=none".into(),
            size_bytes: 512 * MIB,
            queries: 1200,
            avg_latency_ms: Some(84.25),
            p95_latency_ms: Some(210.5),
            avg_bytes_scanned: Some(96.0 * MIB as f64),
            improvement: Some(0.0),
            reward: Some(0.0),
            traffic_share: Some(0.1),
        },
        LayoutStatus {
            layout_id: "L1-sorted".into(),
            state: LayoutState::Active,
            spec: "sort=(user_id, ts) files=16 zstd".into(),
            size_bytes: 498 * MIB,
            queries: 5400,
            avg_latency_ms: Some(12.5),
            p95_latency_ms: Some(31.0),
            avg_bytes_scanned: Some(6.5 * MIB as f64),
            improvement: Some(0.932),
            reward: Some(0.871),
            traffic_share: Some(0.9),
        },
        LayoutStatus {
            layout_id: HOSTILE.into(),
            state: LayoutState::Building,
            spec: "zorder=(lat, lon)\npartition=day".into(),
            size_bytes: 0,
            queries: 0,
            avg_latency_ms: None,
            p95_latency_ms: None,
            avg_bytes_scanned: None,
            improvement: None,
            reward: None,
            traffic_share: None,
        },
    ]
}

pub fn job(id: i64, state: &str, done: u64) -> JobRow {
    let finished = state == "done";
    JobRow {
        id,
        table: "events".into(),
        source_layout: "L1-sorted".into(),
        target_layout: HOSTILE.into(),
        state: state.into(),
        units_done: done,
        units_total: 8,
        lease_owner: (state == "running").then(|| "worker-1".into()),
        lease_expires_ms: (state == "running").then_some(T0 + 90_000),
        attempts: u32::from(state != "queued"),
        last_error: (state == "failed").then(|| "disk full\nwhile writing".into()),
        created_ms: T0,
        finished_ms: finished.then_some(T0 + 245_000),
        bytes_read: if finished { 498 * MIB } else { 0 },
        bytes_written: if finished { 470 * MIB } else { 0 },
        rows_written: if finished { 10_000_000 } else { 0 },
        duration_ms: if finished { 245_000 } else { 0 },
        peak_memory_bytes: if finished { 300 * MIB } else { 0 },
    }
}

pub fn status_report() -> StatusReport {
    StatusReport {
        table: "events".into(),
        generated_ms: T0 + 3_600_000,
        window_sec: 300.0,
        active_layout: "L1-sorted".into(),
        layouts: layouts(),
        best_per_cluster: vec![
            ClusterBest {
                cluster: "c1".into(),
                layout_id: "L1-sorted".into(),
                queries: 4000,
                avg_bytes_scanned: 2.0 * MIB as f64,
                avg_latency_ms: 8.0,
            },
            ClusterBest {
                cluster: "c2".into(),
                layout_id: "L0-initial".into(),
                queries: 120,
                avg_bytes_scanned: 700.0,
                avg_latency_ms: 1500.0,
            },
        ],
        jobs: vec![job(7, "running", 3), job(8, "queued", 0)],
        last_decision: Some(decision(T0 + 3_000_000)),
    }
}

pub fn empty_status() -> StatusReport {
    StatusReport {
        table: "empty".into(),
        generated_ms: T0,
        window_sec: 60.0,
        active_layout: "L0".into(),
        layouts: Vec::new(),
        best_per_cluster: Vec::new(),
        jobs: Vec::new(),
        last_decision: None,
    }
}

pub fn decision(at_ms: i64) -> DecisionRow {
    DecisionRow {
        at_ms,
        step: "activate".into(),
        decision: "keep L1-sorted".into(),
        reason: "canary passed; 93.2% fewer bytes".into(),
    }
}

pub fn all_jobs() -> Vec<JobRow> {
    vec![
        job(5, "done", 8),
        job(6, "failed", 2),
        job(7, "running", 3),
        job(8, "queued", 0),
    ]
}

pub fn history() -> Vec<HistoryRow> {
    let row = |window: i64, layout: &str, cluster: &str, improvement: Option<f64>| HistoryRow {
        window_end_ms: T0 + window * 300_000,
        layout_id: layout.into(),
        cluster: cluster.into(),
        reward: improvement.map(|i| i * 0.9),
        improvement,
        queries: 100 + window as u64,
        avg_latency_ms: 20.0 / (window as f64 + 1.0),
        p95_latency_ms: 45.5,
        avg_bytes_scanned: 3.25 * MIB as f64,
        avg_rows_returned: 12.5,
        regressed: improvement.is_some_and(|i| i < 0.0),
    };
    vec![
        row(1, "L0-initial", "c1", None),
        row(1, "L1-sorted", "c1", Some(0.5)),
        row(2, "L1-sorted", "c1", Some(0.75)),
        row(2, HOSTILE, "c2", Some(-0.125)),
    ]
}

pub fn queries() -> Vec<QueryPoint> {
    let layouts = ["L0-initial", "L1-sorted", HOSTILE];
    (0..90)
        .map(|i: u64| {
            let layout = layouts[(i % 3) as usize];
            QueryPoint {
                at_ms: T0 + i as i64 * 20_000,
                layout_id: layout.into(),
                cluster: format!("c{}", i % 2),
                latency_ms: 5.0 + (i % 7) as f64 * 3.0,
                bytes_scanned: (i % 5 + 1) * MIB,
            }
        })
        .collect()
}

pub fn proposals() -> Vec<ProposalRow> {
    let proposal = |id: i64, layout: &str, predicted: f64, measured: Option<f64>| ProposalRow {
        id,
        created_ms: T0,
        rank: id as u32,
        target_layout: layout.into(),
        spec: format!("sort=({layout})"),
        recommended: id == 1,
        predicted_bytes: 4.0 * MIB as f64,
        predicted_reduction: predicted,
        measured_bytes: measured.map(|_| 5.0 * MIB as f64),
        measured_reduction: measured,
        rewrite_bytes: 900 * MIB,
        predicted_size_bytes: 430 * MIB,
        built_size_bytes: measured.map(|_| 445 * MIB),
        payback_runs: Some(3.5),
        reason: "filters on user_id in 80% of queries | hot".into(),
    };
    vec![
        proposal(1, "L1-sorted", 0.9, Some(0.93)),
        proposal(2, HOSTILE, 0.4, Some(-0.05)),
        proposal(3, "L3-unbuilt", 0.2, None),
    ]
}

pub fn bundle() -> ReportBundle {
    ReportBundle {
        status: status_report(),
        observed: Observed {
            queries: 6600,
            errors: 3,
            first_ms: Some(T0),
            last_ms: Some(T0 + 1_800_000),
            templates: 2,
            clusters: 2,
            top_templates: vec![
                TemplateRow {
                    fingerprint: "f00d".into(),
                    cluster: "c1".into(),
                    queries: 6000,
                    avg_bytes_scanned: 2.0 * MIB as f64,
                    avg_latency_ms: 9.0,
                    sql: Some(
                        "SELECT * FROM events\nWHERE user_id = 1 AND note LIKE '%_|%'".into(),
                    ),
                },
                TemplateRow {
                    fingerprint: "beef".into(),
                    cluster: "c2".into(),
                    queries: 600,
                    avg_bytes_scanned: 80.0 * MIB as f64,
                    avg_latency_ms: 120.0,
                    sql: None,
                },
            ],
        },
        proposals: proposals(),
        jobs: all_jobs(),
        history: history(),
        routing: vec![
            routing("c1", "L1-sorted", 4000, 0.9),
            routing("c1", "L0-initial", 400, 0.1),
            routing("c2", HOSTILE, 60, 0.5),
        ],
        activations: vec![ActivationRow {
            at_ms: T0 + 600_000,
            from_layout: "L0-initial".into(),
            to_layout: "L1-sorted".into(),
            action: "activate".into(),
            actor: "autopilot".into(),
            reason: "reward 0.87 > 0.05 for 3 windows".into(),
        }],
        canaries: vec![CanaryRow {
            at_ms: T0 + 500_000,
            layout_id: "L1-sorted".into(),
            baseline_layout: "L0-initial".into(),
            queries: 50,
            mismatches: 0,
            reduction: 0.93,
            verdict: "pass".into(),
            reason: "results identical; bytes -93%".into(),
        }],
        decisions: vec![decision(T0 + 3_000_000)],
        queries: queries(),
    }
}

pub fn empty_bundle() -> ReportBundle {
    ReportBundle {
        status: empty_status(),
        observed: Observed {
            queries: 0,
            errors: 0,
            first_ms: None,
            last_ms: None,
            templates: 0,
            clusters: 0,
            top_templates: Vec::new(),
        },
        proposals: Vec::new(),
        jobs: Vec::new(),
        history: Vec::new(),
        routing: Vec::new(),
        activations: Vec::new(),
        canaries: Vec::new(),
        decisions: Vec::new(),
        queries: Vec::new(),
    }
}

fn routing(cluster: &str, layout: &str, queries: u64, share: f64) -> RoutingRow {
    RoutingRow {
        cluster: cluster.into(),
        layout_id: layout.into(),
        queries,
        share,
        explored: queries / 10,
        avg_latency_ms: 10.0,
        avg_bytes_scanned: 1.5 * MIB as f64,
    }
}
