//! The store as SQL tables: the DuckDB views `dbopt exp views` prints, and the same shapes
//! dbopt registers in DataFusion, so both answer a query with the same rows.
//!
//! `grids` holds one row per grid (grid_id and its parameters); `events` and `seeds` hold
//! their files' columns, the hive keys (partition-by parameters, grid_id, seed) and the
//! grid's other parameters joined in, so `WHERE algo = 'ucb1' AND latency_ms < 5` needs no
//! join by hand.

use crate::store::{Kind, StoreMeta};
use std::fmt::Write;
use std::path::Path;

/// Quotes an SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The hive partition keys of `kind`'s files with their DuckDB types, outermost first.
pub fn hive_keys(meta: &StoreMeta, kind: Option<Kind>) -> Vec<(String, &'static str)> {
    let Some(_) = kind else {
        return vec![("grid_id".to_string(), "VARCHAR")];
    };
    let mut keys: Vec<(String, &'static str)> = meta
        .partition_by
        .iter()
        .map(|k| (k.clone(), "VARCHAR"))
        .collect();
    keys.push(("grid_id".into(), "VARCHAR"));
    keys.push(("seed".into(), "BIGINT"));
    keys
}

/// Parameter columns joined into `events` and `seeds`: every parameter except the
/// partition-by keys (already in the path).
pub fn joined_params(meta: &StoreMeta) -> Vec<String> {
    meta.params
        .iter()
        .filter(|c| !meta.partition_by.contains(&c.name))
        .map(|c| c.name.clone())
        .collect()
}

fn read_parquet(glob: &str, meta: &StoreMeta, kind: Option<Kind>) -> String {
    let types = hive_keys(meta, kind)
        .iter()
        .map(|(k, t)| format!("{}: {t}", literal(k)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "read_parquet({}, hive_partitioning = true, hive_types = {{{types}}}, union_by_name = true)",
        literal(glob)
    )
}

/// The DuckDB statements that expose the store at `base` as views `grids`, `events` and
/// `seeds` (a table with no files yet gets no view: DuckDB refuses an empty glob).
pub fn duckdb_views(base: &Path, meta: &StoreMeta, has: impl Fn(Kind) -> bool) -> String {
    let base = base.display().to_string();
    let mut out = format!(
        "-- dbopt experiment store {base}\nCREATE OR REPLACE VIEW grids AS SELECT * FROM {};\n",
        read_parquet(&format!("{base}/grids/*/params.parquet"), meta, None)
    );
    let params = joined_params(meta);
    for kind in [Kind::Events, Kind::Seeds] {
        if !has(kind) {
            continue;
        }
        let depth = meta.partition_by.len() + 2;
        let glob = format!("{base}/{}/{}*.parquet", kind.name(), "*/".repeat(depth));
        let joined = params
            .iter()
            .map(|p| format!(", g.{}", ident(p)))
            .collect::<String>();
        let _ = writeln!(
            out,
            "CREATE OR REPLACE VIEW {name} AS SELECT e.*{joined} FROM {scan} AS e LEFT JOIN grids AS g ON e.grid_id = g.grid_id;",
            name = kind.name(),
            scan = read_parquet(&glob, meta, Some(kind)),
        );
    }
    out
}

/// The DataFusion table name of a kind's files (`None`: the grids' parameters).
pub fn raw_table(kind: Option<Kind>) -> &'static str {
    match kind {
        Some(Kind::Events) => "__exp_events",
        Some(Kind::Seeds) => "__exp_seeds",
        None => "__exp_grids",
    }
}

/// The view name of a kind (`None`: grids), the same in DuckDB and DataFusion.
pub fn view_name(kind: Option<Kind>) -> &'static str {
    kind.map_or("grids", Kind::name)
}

/// The DataFusion query that defines the `kind` view (`None`: grids) over the tables named
/// by [`raw_table`]; columns in DuckDB's order: the files' columns, the hive keys, then the
/// joined parameters.
pub fn view_query(meta: &StoreMeta, kind: Option<Kind>) -> String {
    let files = kind.map_or(meta.params.as_slice(), |k| meta.columns(k));
    let mut select: Vec<String> = files
        .iter()
        .map(|c| format!("e.{}", ident(&c.name)))
        .collect();
    select.extend(
        hive_keys(meta, kind)
            .iter()
            .map(|(k, _)| format!("e.{}", ident(k))),
    );
    let mut from = format!("{} AS e", raw_table(kind));
    if kind.is_some() {
        select.extend(
            joined_params(meta)
                .iter()
                .map(|p| format!("g.{}", ident(p))),
        );
        let _ = write!(
            from,
            " LEFT JOIN {} AS g ON e.\"grid_id\" = g.\"grid_id\"",
            raw_table(None)
        );
    }
    format!("SELECT {} FROM {from}", select.join(", "))
}

/// A query of the `kind` view filtered by `filter` (an SQL boolean expression) and cut at
/// `limit`.
pub fn filtered(kind: Option<Kind>, filter: Option<&str>, limit: Option<u64>) -> String {
    let mut sql = format!("SELECT * FROM {}", view_name(kind));
    if let Some(f) = filter {
        let _ = write!(sql, " WHERE ({f})");
    }
    if let Some(n) = limit {
        let _ = write!(sql, " LIMIT {n}");
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::Column;

    #[test]
    fn duckdb_views_name_hive_types_and_join_parameters() {
        let meta = StoreMeta {
            format: 1,
            id_chars: 8,
            partition_by: vec!["algo".into()],
            params: vec![
                Column {
                    name: "algo".into(),
                    data_type: "Utf8".into(),
                },
                Column {
                    name: "lr".into(),
                    data_type: "Float64".into(),
                },
            ],
            events: vec![],
            seeds: vec![],
        };
        let sql = duckdb_views(Path::new("/x/st"), &meta, |k| k == Kind::Events);
        assert!(sql.contains("read_parquet('/x/st/grids/*/params.parquet'"));
        assert!(
            sql.contains("read_parquet('/x/st/events/*/*/*/*.parquet'"),
            "{sql}"
        );
        assert!(sql.contains("'seed': BIGINT"));
        assert!(sql.contains("SELECT e.*, g.\"lr\" FROM"), "{sql}");
        assert!(!sql.contains("VIEW seeds"));
        let mut meta = meta;
        meta.events = vec![Column {
            name: "x".into(),
            data_type: "Int64".into(),
        }];
        let q = view_query(&meta, Some(Kind::Events));
        assert_eq!(
            q,
            "SELECT e.\"x\", e.\"algo\", e.\"grid_id\", e.\"seed\", g.\"lr\" FROM __exp_events AS e LEFT JOIN __exp_grids AS g ON e.\"grid_id\" = g.\"grid_id\""
        );
        let q = view_query(&meta, None);
        assert_eq!(
            q,
            "SELECT e.\"algo\", e.\"lr\", e.\"grid_id\" FROM __exp_grids AS e"
        );
        assert_eq!(
            filtered(Some(Kind::Seeds), Some("lr > 1"), Some(5)),
            "SELECT * FROM seeds WHERE (lr > 1) LIMIT 5"
        );
    }
}
