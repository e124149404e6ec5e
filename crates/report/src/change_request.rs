//! A layout change as a reviewable pull request: the model ([`ChangeRequest`]) and its
//! `PR.md` text. The facade fills the model from a stored proposal; the text says what
//! changes, what the model expects (with the figures a reviewer can check afterwards), which
//! query clusters it serves, what a canary measured if one ran, and how to apply and undo it.

use crate::format::{bytes, bytes_u64};
use serde::Serialize;
use std::fmt::Write;

/// One query cluster the change serves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterChange {
    /// The cluster id.
    pub cluster_id: String,
    /// Predicted bytes per run on the current layout.
    pub current_bytes: f64,
    /// Predicted bytes per run on the proposed layout.
    pub predicted_bytes: f64,
}

/// What a canary of the proposed layout measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryLine {
    /// `promote`, `hold` or `reject`.
    pub verdict: String,
    /// Query shapes replayed.
    pub queries: u64,
    /// Shapes whose results differed.
    pub mismatches: u64,
    /// Measured bytes reduction.
    pub reduction: f64,
    /// Measured latency change (negative is faster).
    pub latency_change: f64,
    /// Why, in one line.
    pub reason: String,
}

/// A proposed layout change, ready to be reviewed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeRequest {
    /// The table.
    pub table: String,
    /// The stored proposal's id.
    pub proposal_id: i64,
    /// The content-addressed id of the layout it builds.
    pub target_layout: String,
    /// The current layout, described.
    pub current: String,
    /// The proposed layout, described.
    pub proposed: String,
    /// The parts of the spec that change, one line each (`sort: [] -> [event_date]`).
    pub delta: Vec<String>,
    /// Queries of the logged workload the prediction covers.
    pub queries_analyzed: u64,
    /// Predicted bytes per run of the workload on the current layout.
    pub current_bytes: f64,
    /// Predicted bytes per run on the proposed layout.
    pub predicted_bytes: f64,
    /// Predicted scan reduction (0..1).
    pub predicted_reduction: f64,
    /// The table's size on disk now.
    pub current_size_bytes: u64,
    /// The proposed layout's predicted size.
    pub predicted_size_bytes: u64,
    /// Runs of the workload until the rewrite's bytes are paid back.
    pub payback_runs: Option<f64>,
    /// The model's reasons.
    pub reasons: Vec<String>,
    /// Clusters served, most helped first.
    pub clusters: Vec<ClusterChange>,
    /// The canary, when one ran for this layout.
    pub canary: Option<CanaryLine>,
    /// The spec file in the repository (`tables/<table>.toml`).
    pub spec_path: String,
}

impl ChangeRequest {
    /// The pull request's title.
    pub fn title(&self) -> String {
        format!(
            "dbopt: {} for {} ({:.0}% fewer bytes predicted)",
            self.proposed,
            self.table,
            self.predicted_reduction * 100.0
        )
    }

    /// The `PR.md` text: title, change, expected effect, clusters, canary, apply, roll back.
    pub fn markdown(&self) -> String {
        let mut out = format!("# {}\n\n", self.title());
        let _ = write!(
            out,
            "Layout change for table `{}`, from dbopt proposal {} (target layout `{}`).\n\n",
            self.table, self.proposal_id, self.target_layout
        );
        out.push_str("## Change\n\n");
        let _ = write!(
            out,
            "`{}` -> `{}`\n\n```\n{}\n```\n\n",
            self.current,
            self.proposed,
            self.delta.join("\n")
        );
        out.push_str(&self.expected_section());
        out.push_str(&self.clusters_section());
        out.push_str("## Canary\n\n");
        match &self.canary {
            Some(c) => {
                let _ = writeln!(
                    out,
                    "Verdict **{}**: {}.\n",
                    c.verdict,
                    c.reason.trim_end_matches('.')
                );
            }
            None => out.push_str(
                "No canary has run for this layout yet: after the rewrite, `dbopt canary` replays the hottest logged query shapes on both layouts and must find identical results and the measured reduction before the layout is promoted.\n\n",
            ),
        }
        let _ = write!(
            out,
            "## Apply\n\nOnce merged, `dbopt apply --spec {}` queues the rewrite; `dbopt migration-worker` builds it as a routed candidate, and `dbopt canary --table-name {}` proves it before promotion.\n\n",
            self.spec_path, self.table
        );
        let _ = write!(
            out,
            "## Roll back\n\n`dbopt rollback --table-name {}` makes the previous layout active again in one catalog transaction; its files are kept until `gc` (after `gc_grace`). Reverting this file does not rewrite anything by itself.\n",
            self.table
        );
        out
    }

    fn expected_section(&self) -> String {
        let mut out = String::from("## Expected effect (predicted, to be checked)\n\n");
        out.push_str("| figure | current | proposed |\n|---|---|---|\n");
        let _ = writeln!(
            out,
            "| bytes scanned per run of the logged workload ({} queries) | {} | {} ({:.0}% fewer) |",
            self.queries_analyzed,
            bytes(self.current_bytes),
            bytes(self.predicted_bytes),
            self.predicted_reduction * 100.0
        );
        let _ = writeln!(
            out,
            "| table size | {} | {} |",
            bytes_u64(self.current_size_bytes),
            bytes_u64(self.predicted_size_bytes)
        );
        let payback = self
            .payback_runs
            .map_or_else(|| "never".to_string(), |r| format!("{r:.2} runs"));
        let _ = write!(out, "| rewrite paid back after | | {payback} |\n\n");
        if !self.reasons.is_empty() {
            for r in &self.reasons {
                let _ = writeln!(out, "- {r}");
            }
            out.push('\n');
        }
        out.push_str("`dbopt history` and `dbopt report` show these predictions beside what the layout measures once it serves queries.\n\n");
        out
    }

    fn clusters_section(&self) -> String {
        if self.clusters.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "## Query clusters served\n\n| cluster | bytes now | bytes after | change |\n|---|---|---|---|\n",
        );
        for c in &self.clusters {
            let change = if c.current_bytes > 0.0 {
                format!(
                    "{:+.0}%",
                    (c.predicted_bytes / c.current_bytes - 1.0) * 100.0
                )
            } else {
                "-".into()
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {change} |",
                c.cluster_id,
                bytes(c.current_bytes),
                bytes(c.predicted_bytes)
            );
        }
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ChangeRequest {
        ChangeRequest {
            table: "events".into(),
            proposal_id: 7,
            target_layout: "2e070a732dbbd0e9".into(),
            current: "as-is".into(),
            proposed: "hilbert(event_date,customer_id)".into(),
            delta: vec!["cluster: [] -> [hilbert(event_date,customer_id)]".into()],
            queries_analyzed: 300,
            current_bytes: 1000.0 * 1024.0 * 1024.0,
            predicted_bytes: 100.0 * 1024.0 * 1024.0,
            predicted_reduction: 0.9,
            current_size_bytes: 300 << 20,
            predicted_size_bytes: 250 << 20,
            payback_runs: Some(0.34),
            reasons: vec!["event_date is filtered by 60% of queries".into()],
            clusters: vec![ClusterChange {
                cluster_id: "c1".into(),
                current_bytes: 200.0,
                predicted_bytes: 50.0,
            }],
            canary: None,
            spec_path: "tables/events.toml".into(),
        }
    }

    #[test]
    fn pr_text_has_every_section_with_the_figures() {
        let text = request().markdown();
        for needle in [
            "# dbopt: hilbert(event_date,customer_id) for events (90% fewer bytes predicted)",
            "cluster: [] -> [hilbert(event_date,customer_id)]",
            "| bytes scanned per run of the logged workload (300 queries) | 1000.0 MiB | 100.0 MiB (90% fewer) |",
            "| table size | 300.0 MiB | 250.0 MiB |",
            "0.34 runs",
            "| `c1` | 200 B | 50 B | -75% |",
            "No canary has run",
            "dbopt apply --spec tables/events.toml",
            "dbopt rollback --table-name events",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        let mut with_canary = request();
        with_canary.canary = Some(CanaryLine {
            verdict: "promote".into(),
            queries: 10,
            mismatches: 0,
            reduction: 0.85,
            latency_change: -0.4,
            reason: "identical results on 10 shapes".into(),
        });
        assert!(
            with_canary
                .markdown()
                .contains("Verdict **promote**: identical results on 10 shapes.")
        );
    }
}
