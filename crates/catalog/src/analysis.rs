//! Analysis storage: the column statistics cache and proposals with predicted figures (and
//! nullable measured figures set once the proposed layout has been built and used).

use crate::error::SqlContext;
use crate::{Catalog, CatalogError, collect_rows, get, get_layout_id, get_table_name, sql_int};
use dbopt_core::plan_summary::TableStats;
use dbopt_core::{LayoutId, LayoutSpec, TableName};
use rusqlite::{OptionalExtension, Params, Row, params};
use serde::{Deserialize, Serialize};

/// Cached column statistics of one layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedStats {
    /// The statistics.
    pub stats: TableStats,
    /// Rows in the sample the sample-based figures came from.
    pub sample_rows: u64,
    /// When they were computed, ms since the Unix epoch.
    pub computed_at_ms: i64,
}

/// A proposal to store: one ranked candidate of one propose run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewProposal {
    /// 1 = best.
    pub rank: u64,
    /// The layout it would be rewritten from.
    pub source_layout: LayoutId,
    /// `LayoutId::derive(source, spec)` (the source itself for "keep current").
    pub target_layout: LayoutId,
    /// The spec.
    pub spec: LayoutSpec,
    /// Short description.
    pub description: String,
    /// Whether this is "leave the layout as it is".
    pub is_current: bool,
    /// Whether it passed the thresholds.
    pub recommended: bool,
    /// Queries the prediction was made over.
    pub queries: u64,
    /// Predicted bytes of the workload on the current layout.
    pub current_bytes: f64,
    /// Predicted bytes on this layout.
    pub predicted_bytes: f64,
    /// 1 - predicted / current.
    pub predicted_reduction: f64,
    /// Predicted files opened.
    pub predicted_files: f64,
    /// Predicted row groups visited.
    pub predicted_row_groups: f64,
    /// Predicted cost (bytes plus file and row-group prices).
    pub predicted_cost: f64,
    /// Bytes the rewrite reads.
    pub rewrite_read_bytes: u64,
    /// Bytes the rewrite writes.
    pub rewrite_write_bytes: u64,
    /// Workload runs to repay the rewrite.
    pub payback_runs: Option<f64>,
    /// Reasons in words.
    pub reasons: Vec<String>,
    /// The full proposal as JSON (per-cluster figures and everything else).
    pub detail_json: String,
}

/// A stored proposal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposalRecord {
    /// Row id.
    pub id: i64,
    /// The propose run it belongs to.
    pub run_id: String,
    /// The table.
    pub table: TableName,
    /// When it was stored.
    pub created_at_ms: i64,
    /// What was proposed and predicted.
    #[serde(flatten)]
    pub proposal: NewProposal,
    /// Measured bytes of the workload on the built layout.
    pub measured_bytes: Option<f64>,
    /// Measured reduction against the source layout.
    pub measured_reduction: Option<f64>,
    /// Measured mean latency.
    pub measured_latency_ms: Option<f64>,
    /// When the measurement was stored.
    pub measured_at_ms: Option<i64>,
    /// Size on disk of the proposed layout once built (None until then): the measured
    /// figure beside the predicted `rewrite_write_bytes`.
    pub built_size_bytes: Option<u64>,
}

const PROPOSAL_COLUMNS: &str = "id, run_id, table_name, created_at_ms, rank, source_layout, \
     target_layout, spec_json, description, is_current, recommended, queries, current_bytes, \
     predicted_bytes, predicted_reduction, predicted_files, predicted_row_groups, predicted_cost, \
     rewrite_read_bytes, rewrite_write_bytes, payback_runs, reasons_json, detail_json, \
     measured_bytes, measured_reduction, measured_latency_ms, measured_at_ms, \
     (SELECT l.total_bytes FROM layouts l WHERE l.table_name = proposals.table_name \
      AND l.layout_id = proposals.target_layout) AS built_size_bytes";

/// Filter on the proposals of table ?1's latest propose run.
const LATEST_RUN: &str = "table_name = ?1 AND run_id = (SELECT run_id FROM proposals \
     WHERE table_name = ?1 ORDER BY created_at_ms DESC, id DESC LIMIT 1)";

fn json<T: serde::de::DeserializeOwned>(row: &Row<'_>, col: &str) -> Result<T, CatalogError> {
    let text: String = get(row, col)?;
    serde_json::from_str(&text).map_err(|e| CatalogError::Corrupt(format!("column {col}: {e}")))
}

fn proposal_from_row(row: &Row<'_>) -> Result<ProposalRecord, CatalogError> {
    let rank: i64 = get(row, "rank")?;
    let int = |col: &str| -> Result<u64, CatalogError> {
        let v: i64 = get(row, col)?;
        Ok(v.max(0) as u64)
    };
    Ok(ProposalRecord {
        id: get(row, "id")?,
        run_id: get(row, "run_id")?,
        table: get_table_name(row, "table_name")?,
        created_at_ms: get(row, "created_at_ms")?,
        proposal: NewProposal {
            rank: rank.max(0) as u64,
            source_layout: get_layout_id(row, "source_layout")?,
            target_layout: get_layout_id(row, "target_layout")?,
            spec: json(row, "spec_json")?,
            description: get(row, "description")?,
            is_current: get::<i64>(row, "is_current")? != 0,
            recommended: get::<i64>(row, "recommended")? != 0,
            queries: int("queries")?,
            current_bytes: get(row, "current_bytes")?,
            predicted_bytes: get(row, "predicted_bytes")?,
            predicted_reduction: get(row, "predicted_reduction")?,
            predicted_files: get(row, "predicted_files")?,
            predicted_row_groups: get(row, "predicted_row_groups")?,
            predicted_cost: get(row, "predicted_cost")?,
            rewrite_read_bytes: int("rewrite_read_bytes")?,
            rewrite_write_bytes: int("rewrite_write_bytes")?,
            payback_runs: get(row, "payback_runs")?,
            reasons: json(row, "reasons_json")?,
            detail_json: get(row, "detail_json")?,
        },
        measured_bytes: get(row, "measured_bytes")?,
        measured_reduction: get(row, "measured_reduction")?,
        measured_latency_ms: get(row, "measured_latency_ms")?,
        measured_at_ms: get(row, "measured_at_ms")?,
        built_size_bytes: get::<Option<i64>>(row, "built_size_bytes")?.map(|b| b.max(0) as u64),
    })
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain serde values always serialize")
}

impl Catalog {
    /// Caches the column statistics of a layout (replacing older ones).
    pub fn put_column_stats(
        &self,
        table: &TableName,
        layout: &LayoutId,
        stats: &TableStats,
        sample_rows: u64,
    ) -> Result<(), CatalogError> {
        let now = self.now_ms();
        self.write("caching column statistics", |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO column_stats \
                 (table_name, layout_id, computed_at_ms, sample_rows, stats_json) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    table.as_str(),
                    layout.as_str(),
                    now,
                    sql_int(sample_rows),
                    to_json(stats)
                ],
            )
            .ctx("caching column statistics")?;
            Ok(())
        })
    }

    /// The cached column statistics of a layout, if any.
    pub fn column_stats(
        &self,
        table: &TableName,
        layout: &LayoutId,
    ) -> Result<Option<CachedStats>, CatalogError> {
        self.read("reading column statistics", |tx| {
            tx.query_row(
                "SELECT computed_at_ms, sample_rows, stats_json FROM column_stats \
                 WHERE table_name = ?1 AND layout_id = ?2",
                [table.as_str(), layout.as_str()],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()
            .ctx("reading column statistics")?
            .map(|(at, rows, text)| {
                let stats = serde_json::from_str(&text).map_err(|e| {
                    CatalogError::Corrupt(format!("column statistics of {table}@{layout}: {e}"))
                })?;
                Ok(CachedStats {
                    stats,
                    sample_rows: rows.max(0) as u64,
                    computed_at_ms: at,
                })
            })
            .transpose()
        })
    }

    /// Stores the ranked proposals of one propose run in one transaction; returns their ids.
    pub fn insert_proposals(
        &self,
        table: &TableName,
        run_id: &str,
        proposals: &[NewProposal],
    ) -> Result<Vec<i64>, CatalogError> {
        let now = self.now_ms();
        self.write("storing proposals", |tx| {
            let mut ids = Vec::new();
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO proposals (run_id, table_name, created_at_ms, rank, \
                     source_layout, target_layout, spec_json, description, is_current, \
                     recommended, queries, current_bytes, predicted_bytes, predicted_reduction, \
                     predicted_files, predicted_row_groups, predicted_cost, rewrite_read_bytes, \
                     rewrite_write_bytes, payback_runs, reasons_json, detail_json) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
                      ?17, ?18, ?19, ?20, ?21, ?22)",
                )
                .ctx("storing a proposal")?;
            for p in proposals {
                stmt.execute(params![
                    run_id,
                    table.as_str(),
                    now,
                    sql_int(p.rank),
                    p.source_layout.as_str(),
                    p.target_layout.as_str(),
                    to_json(&p.spec),
                    p.description,
                    i64::from(p.is_current),
                    i64::from(p.recommended),
                    sql_int(p.queries),
                    p.current_bytes,
                    p.predicted_bytes,
                    p.predicted_reduction,
                    p.predicted_files,
                    p.predicted_row_groups,
                    p.predicted_cost,
                    sql_int(p.rewrite_read_bytes),
                    sql_int(p.rewrite_write_bytes),
                    p.payback_runs,
                    to_json(&p.reasons),
                    p.detail_json,
                ])
                .ctx("storing a proposal")?;
                ids.push(tx.last_insert_rowid());
            }
            Ok(ids)
        })
    }

    /// One stored proposal by id.
    pub fn get_proposal(&self, id: i64) -> Result<Option<ProposalRecord>, CatalogError> {
        Ok(self
            .proposals_where("reading a proposal", "id = ?1", [id])?
            .into_iter()
            .next())
    }

    /// The best recommended proposal of the table's latest propose run (None when the latest
    /// run recommends keeping the layout, or no run exists).
    pub fn best_proposal(&self, table: &TableName) -> Result<Option<ProposalRecord>, CatalogError> {
        let filter = format!("recommended = 1 AND {LATEST_RUN} ORDER BY rank LIMIT 1");
        Ok(self
            .proposals_where("reading the best proposal", &filter, [table.as_str()])?
            .into_iter()
            .next())
    }

    /// The newest proposal of `table` whose target is `layout` (where its prediction was made).
    pub fn proposal_for_target(
        &self,
        table: &TableName,
        layout: &LayoutId,
    ) -> Result<Option<ProposalRecord>, CatalogError> {
        let filter = "table_name = ?1 AND target_layout = ?2 AND is_current = 0 \
                      ORDER BY id DESC LIMIT 1";
        Ok(self
            .proposals_where(
                "reading a proposal",
                filter,
                [table.as_str(), layout.as_str()],
            )?
            .into_iter()
            .next())
    }

    /// Proposals of `table` whose measured figures are set, newest first.
    pub fn measured_proposals(
        &self,
        table: &TableName,
    ) -> Result<Vec<ProposalRecord>, CatalogError> {
        self.proposals_where(
            "reading measured proposals",
            "table_name = ?1 AND measured_at_ms IS NOT NULL ORDER BY id DESC",
            [table.as_str()],
        )
    }

    /// The proposals of the table's latest propose run, by rank.
    pub fn latest_proposals(&self, table: &TableName) -> Result<Vec<ProposalRecord>, CatalogError> {
        let filter = format!("{LATEST_RUN} ORDER BY rank");
        self.proposals_where("reading proposals", &filter, [table.as_str()])
    }

    /// Every proposal of `table` from every propose run, oldest first.
    pub fn proposals(&self, table: &TableName) -> Result<Vec<ProposalRecord>, CatalogError> {
        self.proposals_where(
            "reading proposals",
            "table_name = ?1 ORDER BY id",
            [table.as_str()],
        )
    }

    /// The proposals matching `filter` (the SQL after `WHERE`, ordering included).
    fn proposals_where(
        &self,
        context: &str,
        filter: &str,
        params: impl Params,
    ) -> Result<Vec<ProposalRecord>, CatalogError> {
        self.read(context, |tx| {
            let sql = format!("SELECT {PROPOSAL_COLUMNS} FROM proposals WHERE {filter}");
            collect_rows(tx, context, &sql, params, proposal_from_row)
        })
    }

    /// Sets the cluster of many queries in one transaction; returns how many were updated.
    pub fn set_cluster_ids(&self, assignments: &[(i64, String)]) -> Result<u64, CatalogError> {
        self.write("setting query clusters", |tx| {
            let mut stmt = tx
                .prepare_cached("UPDATE query_log SET cluster_id = ?2 WHERE id = ?1")
                .ctx("setting query clusters")?;
            let mut n = 0u64;
            for (id, cluster) in assignments {
                n += stmt
                    .execute(params![id, cluster])
                    .ctx("setting query clusters")? as u64;
            }
            Ok(n)
        })
    }

    /// Sets the measured figures beside a proposal's predicted ones; false if no such id.
    pub fn set_proposal_measured(
        &self,
        id: i64,
        measured_bytes: f64,
        measured_reduction: f64,
        measured_latency_ms: Option<f64>,
    ) -> Result<bool, CatalogError> {
        let now = self.now_ms();
        self.write("storing measured proposal figures", |tx| {
            let n = tx
                .execute(
                    "UPDATE proposals SET measured_bytes = ?2, measured_reduction = ?3, \
                     measured_latency_ms = ?4, measured_at_ms = ?5 WHERE id = ?1",
                    params![
                        id,
                        measured_bytes,
                        measured_reduction,
                        measured_latency_ms,
                        now
                    ],
                )
                .ctx("storing measured proposal figures")?;
            Ok(n == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbopt_core::ManualClock;
    use std::sync::Arc;

    fn proposal(rank: u64, recommended: bool) -> NewProposal {
        let spec = LayoutSpec {
            partition_by: vec![format!("c{rank}")],
            ..Default::default()
        };
        NewProposal {
            rank,
            source_layout: LayoutId::initial(),
            target_layout: LayoutId::derive(&LayoutId::initial(), &spec),
            spec,
            description: format!("p{rank}"),
            is_current: false,
            recommended,
            queries: 10,
            current_bytes: 100.0,
            predicted_bytes: 40.0,
            predicted_reduction: 0.6,
            predicted_files: 1.0,
            predicted_row_groups: 2.0,
            predicted_cost: 50.0,
            rewrite_read_bytes: 1000,
            rewrite_write_bytes: 1000,
            payback_runs: Some(16.7),
            reasons: vec!["because".into()],
            detail_json: "{}".into(),
        }
    }

    #[test]
    fn proposals_round_trip_and_best_is_from_latest_run() {
        let clock = Arc::new(ManualClock::new(1000));
        let cat = Catalog::open_in_memory(clock.clone()).unwrap();
        let t = TableName::new("events").unwrap();
        assert!(cat.best_proposal(&t).unwrap().is_none());
        let ids = cat
            .insert_proposals(&t, "run1", &[proposal(1, true), proposal(2, false)])
            .unwrap();
        let best = cat.best_proposal(&t).unwrap().unwrap();
        assert_eq!(best.id, ids[0]);
        assert_eq!(best.proposal, proposal(1, true));
        assert!(best.measured_bytes.is_none());
        assert_eq!(best.built_size_bytes, None, "no layout built yet");
        assert!(
            cat.set_proposal_measured(ids[0], 42.0, 0.58, Some(3.0))
                .unwrap()
        );
        let got = cat.get_proposal(ids[0]).unwrap().unwrap();
        assert_eq!(got.measured_bytes, Some(42.0));
        clock.advance(10);
        cat.insert_proposals(&t, "run2", &[proposal(1, false)])
            .unwrap();
        assert!(
            cat.best_proposal(&t).unwrap().is_none(),
            "latest run keeps the layout"
        );
        assert_eq!(cat.latest_proposals(&t).unwrap().len(), 1);
        assert!(cat.get_proposal(9999).unwrap().is_none());
    }

    #[test]
    fn proposals_lists_every_run_oldest_first() {
        let clock = Arc::new(ManualClock::new(1000));
        let cat = Catalog::open_in_memory(clock.clone()).unwrap();
        let (t, other) = (
            TableName::new("events").unwrap(),
            TableName::new("customers").unwrap(),
        );
        assert!(cat.proposals(&t).unwrap().is_empty());
        let first = cat
            .insert_proposals(&t, "run1", &[proposal(1, true), proposal(2, false)])
            .unwrap();
        cat.insert_proposals(&other, "run1", &[proposal(1, true)])
            .unwrap();
        clock.advance(10);
        let second = cat
            .insert_proposals(&t, "run2", &[proposal(1, false)])
            .unwrap();
        let all = cat.proposals(&t).unwrap();
        let ids: Vec<i64> = all.iter().map(|p| p.id).collect();
        assert_eq!(ids, [first[0], first[1], second[0]]);
        assert_eq!(all.iter().filter(|p| p.proposal.recommended).count(), 1);
        assert_eq!(all[1].run_id, "run1");
        assert_eq!(all[2].run_id, "run2");
        assert_eq!(cat.latest_proposals(&t).unwrap().len(), 1, "only run2");
    }

    #[test]
    fn column_stats_cache_round_trips() {
        let cat = Catalog::open_in_memory(Arc::new(ManualClock::new(7))).unwrap();
        let t = TableName::new("events").unwrap();
        let stats = TableStats {
            rows: 10,
            files: 1,
            row_groups: 1,
            total_bytes: 100,
            metadata_bytes: 10,
            row_group_rows: 10,
            page_rows: 10,
            columns: Vec::new(),
        };
        assert!(
            cat.column_stats(&t, &LayoutId::initial())
                .unwrap()
                .is_none()
        );
        cat.put_column_stats(&t, &LayoutId::initial(), &stats, 5)
            .unwrap();
        cat.put_column_stats(&t, &LayoutId::initial(), &stats, 6)
            .unwrap();
        let got = cat.column_stats(&t, &LayoutId::initial()).unwrap().unwrap();
        assert_eq!(
            (got.stats, got.sample_rows, got.computed_at_ms),
            (stats, 6, 7)
        );
    }
}
