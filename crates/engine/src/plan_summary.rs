//! Optimized logical plan -> `PlanSummary`: per scanned table, the typed filter predicates
//! (after pushdown, from `TableScan.filters` and `Filter` nodes), join keys, group-by and
//! order-by columns and the scan projection. Internal names of partitioned layouts
//! (`__<table>_<layout>`) are mapped back to the table.

use crate::sql_guard::check_read_only;
use crate::{EngineError, Session};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator, TableScan};
use dbopt_core::plan_summary::{
    Bound, Lit, PlanSummary, Predicate, PredicateKind, ScanUsage, TableUsage,
};
use std::collections::BTreeMap;

/// Plans `sql` in `session` (nothing runs) and summarizes its optimized logical plan.
pub async fn summarize_sql(session: &Session, sql: &str) -> Result<PlanSummary, EngineError> {
    check_read_only(sql)?;
    let df = session
        .ctx()
        .sql(sql)
        .await
        .map_err(EngineError::from_plan)?;
    let plan = df.into_optimized_plan().map_err(EngineError::from_plan)?;
    Ok(summarize_plan(&plan))
}

/// Maps a scan's table name back to the managed table: `__events_ab12` -> `events`.
pub fn table_of_scan_name(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("__")
        && let Some((table, layout)) = rest.rsplit_once('_')
        && !table.is_empty()
        && !layout.is_empty()
    {
        return table.to_string();
    }
    name.to_string()
}

struct ScanInfo {
    table: String,
    columns: Vec<String>,
}

/// Resolves column references to scanned tables through scan names and aliases.
struct Resolver {
    scans: Vec<ScanInfo>,
    aliases: BTreeMap<String, String>,
}

impl Resolver {
    fn table_of(&self, col: &Column) -> Option<String> {
        if let Some(rel) = &col.relation {
            let name = rel.table();
            if let Some(t) = self.aliases.get(name) {
                return Some(t.clone());
            }
            let mapped = table_of_scan_name(name);
            if self.scans.iter().any(|s| s.table == mapped) {
                return Some(mapped);
            }
            return None;
        }
        let mut owners = self
            .scans
            .iter()
            .filter(|s| s.columns.iter().any(|c| c == &col.name));
        let first = owners.next()?;
        owners.next().is_none().then(|| first.table.clone())
    }
}

/// Summarizes an optimized logical plan (subqueries included).
pub(crate) fn summarize_plan(plan: &LogicalPlan) -> PlanSummary {
    let mut resolver = Resolver {
        scans: Vec::new(),
        aliases: BTreeMap::new(),
    };
    let mut usage: Vec<TableUsage> = Vec::new();
    let mut each_scan: Vec<(String, ScanUsage)> = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(scan) => {
                let table = table_of_scan_name(scan.table_name.table());
                let schema = scan.source.schema();
                let all: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
                let projected: Vec<String> = match &scan.projection {
                    Some(idx) => idx.iter().filter_map(|i| all.get(*i).cloned()).collect(),
                    None => all.clone(),
                };
                resolver.scans.push(ScanInfo {
                    table: table.clone(),
                    columns: all,
                });
                each_scan.push((table.clone(), scan_usage(scan, &projected)));
                let entry = usage_entry(&mut usage, &table);
                for c in projected {
                    push_unique(&mut entry.projected, c);
                }
            }
            LogicalPlan::SubqueryAlias(alias) => {
                let mut inner = Vec::new();
                let _ = alias.input.apply_with_subqueries(|n| {
                    if let LogicalPlan::TableScan(s) = n {
                        inner.push(table_of_scan_name(s.table_name.table()));
                    }
                    Ok(TreeNodeRecursion::Continue)
                });
                if inner.len() == 1 {
                    resolver
                        .aliases
                        .insert(alias.alias.table().to_string(), inner.remove(0));
                }
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });

    let mut filters: Vec<(String, Predicate)> = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(scan) => {
                let table = table_of_scan_name(scan.table_name.table());
                for f in &scan.filters {
                    for conj in split_conjunction(f) {
                        for p in predicates_of(conj) {
                            filters.push((table.clone(), p));
                        }
                    }
                }
            }
            LogicalPlan::Filter(filter) => {
                for conj in split_conjunction(&filter.predicate) {
                    let cols = conj.column_refs();
                    let tables: Vec<String> =
                        cols.iter().filter_map(|c| resolver.table_of(c)).collect();
                    if tables.len() != cols.len() || tables.is_empty() {
                        continue;
                    }
                    if tables.iter().any(|t| t != &tables[0]) {
                        continue;
                    }
                    for p in predicates_of(conj) {
                        filters.push((tables[0].clone(), p));
                    }
                }
            }
            LogicalPlan::Join(join) => {
                for (l, r) in &join.on {
                    for c in l.column_refs().into_iter().chain(r.column_refs()) {
                        if let Some(t) = resolver.table_of(c) {
                            push_unique(&mut usage_entry(&mut usage, &t).join_keys, c.name.clone());
                        }
                    }
                }
            }
            LogicalPlan::Aggregate(agg) => {
                for e in &agg.group_expr {
                    for c in e.column_refs() {
                        if let Some(t) = resolver.table_of(c) {
                            push_unique(&mut usage_entry(&mut usage, &t).group_by, c.name.clone());
                        }
                    }
                }
            }
            LogicalPlan::Sort(sort) => {
                for s in &sort.expr {
                    for c in s.expr.column_refs() {
                        if let Some(t) = resolver.table_of(c) {
                            push_unique(&mut usage_entry(&mut usage, &t).order_by, c.name.clone());
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    for (table, p) in filters {
        let entry = usage_entry(&mut usage, &table);
        if !entry.filters.contains(&p) {
            entry.filters.push(p);
        }
    }
    attach_scans(&mut usage, &each_scan);
    PlanSummary { tables: usage }
}

/// Intersects each table's range predicates, and gives a table scanned more than once the
/// list of its scans.
fn attach_scans(usage: &mut [TableUsage], each_scan: &[(String, ScanUsage)]) {
    for u in usage {
        u.filters = merge_ranges(std::mem::take(&mut u.filters));
        let scans: Vec<ScanUsage> = each_scan
            .iter()
            .filter(|(t, _)| *t == u.table)
            .map(|(_, s)| s.clone())
            .collect();
        if scans.len() > 1 {
            u.scans = scans;
        }
    }
}

/// What one scan reads: the predicates pushed into it (ranges on a column intersected) and
/// its projection. Filters left above the scan are not attributed to one scan of a table
/// scanned twice; after DataFusion's pushdown the prunable ones are in the scan.
fn scan_usage(scan: &TableScan, projected: &[String]) -> ScanUsage {
    let filters = scan
        .filters
        .iter()
        .flat_map(|f| split_conjunction(f))
        .flat_map(predicates_of)
        .collect();
    ScanUsage {
        filters: merge_ranges(filters),
        projected: projected.to_vec(),
    }
}

fn usage_entry<'a>(usage: &'a mut Vec<TableUsage>, table: &str) -> &'a mut TableUsage {
    let pos = match usage.iter().position(|u| u.table == table) {
        Some(p) => p,
        None => {
            usage.push(TableUsage {
                table: table.to_string(),
                ..Default::default()
            });
            usage.len() - 1
        }
    };
    &mut usage[pos]
}

/// Appends `s` unless `v` holds it already.
pub(crate) fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// Intersects the range predicates on each column into one.
pub(crate) fn merge_ranges(preds: Vec<Predicate>) -> Vec<Predicate> {
    let mut out: Vec<Predicate> = Vec::new();
    for p in preds {
        let PredicateKind::Range { low, high } = &p.kind else {
            out.push(p);
            continue;
        };
        let existing = out
            .iter_mut()
            .find(|q| q.column == p.column && matches!(q.kind, PredicateKind::Range { .. }));
        match existing {
            Some(Predicate {
                kind:
                    PredicateKind::Range {
                        low: ql, high: qh, ..
                    },
                ..
            }) => {
                if let Some(l) = low
                    && ql.as_ref().is_none_or(|q| {
                        l.value.compare(&q.value) == Some(std::cmp::Ordering::Greater)
                    })
                {
                    *ql = Some(l.clone());
                }
                if let Some(h) = high
                    && qh
                        .as_ref()
                        .is_none_or(|q| h.value.compare(&q.value) == Some(std::cmp::Ordering::Less))
                {
                    *qh = Some(h.clone());
                }
            }
            _ => out.push(p),
        }
    }
    out
}

/// Converts a literal scalar to a `Lit` (None for NULL and unsupported types).
pub fn lit_of_scalar(value: &ScalarValue) -> Option<Lit> {
    use ScalarValue as S;
    Some(match value {
        S::Int8(v) => Lit::Int(i64::from((*v)?)),
        S::Int16(v) => Lit::Int(i64::from((*v)?)),
        S::Int32(v) => Lit::Int(i64::from((*v)?)),
        S::Int64(v) => Lit::Int((*v)?),
        S::UInt8(v) => Lit::Int(i64::from((*v)?)),
        S::UInt16(v) => Lit::Int(i64::from((*v)?)),
        S::UInt32(v) => Lit::Int(i64::from((*v)?)),
        S::UInt64(v) => Lit::Int(i64::try_from((*v)?).ok()?),
        S::Float32(v) => Lit::Float(f64::from((*v)?)),
        S::Float64(v) => Lit::Float((*v)?),
        S::Decimal128(v, _, s) => Lit::Float((*v)? as f64 / 10f64.powi(i32::from(*s))),
        S::Utf8(v) | S::LargeUtf8(v) | S::Utf8View(v) => Lit::Str(v.clone()?),
        S::Date32(v) => Lit::Date((*v)?),
        S::Date64(v) => Lit::Date(i32::try_from((*v)?.div_euclid(86_400_000)).ok()?),
        S::TimestampSecond(v, _) => Lit::Timestamp((*v)?.saturating_mul(1_000_000)),
        S::TimestampMillisecond(v, _) => Lit::Timestamp((*v)?.saturating_mul(1_000)),
        S::TimestampMicrosecond(v, _) => Lit::Timestamp((*v)?),
        S::TimestampNanosecond(v, _) => Lit::Timestamp((*v)?.div_euclid(1_000)),
        S::Boolean(v) => Lit::Bool((*v)?),
        _ => return None,
    })
}

fn column_of(expr: &Expr) -> Option<&Column> {
    match expr {
        Expr::Column(c) => Some(c),
        _ => None,
    }
}

fn literal_of(expr: &Expr) -> Option<Lit> {
    match expr {
        Expr::Literal(v, _) => lit_of_scalar(v),
        _ => None,
    }
}

fn range(op: Operator, value: Lit) -> Option<PredicateKind> {
    let bound = |inclusive| Bound { value, inclusive };
    Some(match op {
        Operator::Gt => PredicateKind::Range {
            low: Some(bound(false)),
            high: None,
        },
        Operator::GtEq => PredicateKind::Range {
            low: Some(bound(true)),
            high: None,
        },
        Operator::Lt => PredicateKind::Range {
            low: None,
            high: Some(bound(false)),
        },
        Operator::LtEq => PredicateKind::Range {
            low: None,
            high: Some(bound(true)),
        },
        _ => return None,
    })
}

/// `col = v OR col = w OR col IN (...)` on one column -> the column and its values.
fn or_of_equalities(expr: &Expr) -> Option<(&Column, Vec<Lit>)> {
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let (lc, mut lv) = or_of_equalities(left)?;
            let (rc, rv) = or_of_equalities(right)?;
            (lc == rc).then(|| {
                lv.extend(rv);
                (lc, lv)
            })
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => {
            let (c, v) = match (column_of(left), column_of(right)) {
                (Some(c), None) => (c, literal_of(right)?),
                (None, Some(c)) => (c, literal_of(left)?),
                _ => return None,
            };
            Some((c, vec![v]))
        }
        Expr::InList(list) if !list.negated => {
            let c = column_of(&list.expr)?;
            let values: Option<Vec<Lit>> = list.list.iter().map(literal_of).collect();
            Some((c, values?))
        }
        _ => None,
    }
}

/// The typed predicates of one conjunct: one for a recognised shape, otherwise `Other` on
/// every column it references.
pub fn predicates_of(expr: &Expr) -> Vec<Predicate> {
    if let Some(p) = typed_predicate(expr) {
        return vec![p];
    }
    let mut cols: Vec<String> = expr.column_refs().iter().map(|c| c.name.clone()).collect();
    cols.sort();
    cols.dedup();
    cols.into_iter()
        .map(|column| Predicate {
            column,
            kind: PredicateKind::Other,
        })
        .collect()
}

fn typed_predicate(expr: &Expr) -> Option<Predicate> {
    let make = |c: &Column, kind| {
        Some(Predicate {
            column: c.name.clone(),
            kind,
        })
    };
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            if *op == Operator::Or {
                let (c, mut values) = or_of_equalities(expr)?;
                values.dedup();
                return make(c, PredicateKind::In { values });
            }
            let (c, v, op) = match (column_of(left), column_of(right)) {
                (Some(c), None) => (c, literal_of(right)?, *op),
                (None, Some(c)) => (c, literal_of(left)?, op.swap()?),
                _ => return None,
            };
            if op == Operator::Eq {
                make(c, PredicateKind::Eq { value: v })
            } else {
                make(c, range(op, v)?)
            }
        }
        Expr::Between(b) if !b.negated => {
            let c = column_of(&b.expr)?;
            make(
                c,
                PredicateKind::Range {
                    low: Some(Bound {
                        value: literal_of(&b.low)?,
                        inclusive: true,
                    }),
                    high: Some(Bound {
                        value: literal_of(&b.high)?,
                        inclusive: true,
                    }),
                },
            )
        }
        Expr::InList(list) if !list.negated => {
            let (c, values) = or_of_equalities(expr)?;
            let _ = list;
            make(c, PredicateKind::In { values })
        }
        Expr::Like(like) if !like.negated && !like.case_insensitive => {
            let c = column_of(&like.expr)?;
            let Some(Lit::Str(pattern)) = literal_of(&like.pattern) else {
                return None;
            };
            let prefix = pattern.strip_suffix('%')?;
            if prefix.contains(['%', '_', '\\']) || prefix.is_empty() {
                return None;
            }
            make(
                c,
                PredicateKind::PrefixLike {
                    prefix: prefix.to_string(),
                },
            )
        }
        Expr::ScalarFunction(f) if f.name() == "starts_with" && f.args.len() == 2 => {
            let c = column_of(&f.args[0])?;
            let Some(Lit::Str(prefix)) = literal_of(&f.args[1]) else {
                return None;
            };
            make(c, PredicateKind::PrefixLike { prefix })
        }
        Expr::IsNull(e) => make(column_of(e)?, PredicateKind::IsNull),
        Expr::IsNotNull(e) => make(column_of(e)?, PredicateKind::IsNotNull),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn ctx() -> Session {
        let ctx = datafusion::prelude::SessionContext::new();
        let schema = Arc::new(Schema::new(vec![
            Field::new("d", DataType::Date32, false),
            Field::new("customer_id", DataType::Int64, false),
            Field::new("country", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Date32Array::from(vec![1, 2])),
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["DE", "US"])),
            ],
        )
        .unwrap();
        ctx.register_batch("__events_initial", batch.clone())
            .unwrap();
        ctx.register_batch("customers", batch).unwrap();
        Session::from_context(ctx)
    }

    #[tokio::test]
    async fn typed_predicates_from_optimized_plan() {
        let ctx = ctx();
        let s = summarize_sql(
            &ctx,
            "SELECT country, count(*) FROM __events_initial WHERE d >= DATE '1970-01-02' \
             AND d < DATE '1970-01-05' AND country IN ('DE', 'FR') AND customer_id = 7 \
             GROUP BY country ORDER BY country",
        )
        .await
        .unwrap();
        let t = s.table("events").expect("internal name mapped back");
        let kinds: Vec<(&str, &str)> = t
            .filters
            .iter()
            .map(|p| (p.column.as_str(), p.kind.tag()))
            .collect();
        assert!(kinds.contains(&("d", "range")), "{kinds:?}");
        assert!(kinds.contains(&("country", "in")), "{kinds:?}");
        assert!(kinds.contains(&("customer_id", "eq")), "{kinds:?}");
        assert_eq!(kinds.iter().filter(|k| k.0 == "d").count(), 1, "merged");
        let d = t.filters.iter().find(|p| p.column == "d").unwrap();
        assert_eq!(
            d.kind,
            PredicateKind::Range {
                low: Some(Bound {
                    value: Lit::Date(1),
                    inclusive: true
                }),
                high: Some(Bound {
                    value: Lit::Date(4),
                    inclusive: false
                }),
            }
        );
        assert_eq!(t.group_by, vec!["country"]);
        assert!(t.projected.contains(&"country".to_string()));
    }

    #[tokio::test]
    async fn joins_aliases_like_and_nulls() {
        let ctx = ctx();
        let s = summarize_sql(
            &ctx,
            "SELECT e.d FROM __events_initial e JOIN customers c ON e.customer_id = c.customer_id \
             WHERE c.country LIKE 'D%' AND e.country IS NULL",
        )
        .await
        .unwrap();
        let e = s.table("events").unwrap();
        let c = s.table("customers").unwrap();
        assert_eq!(e.join_keys, vec!["customer_id"]);
        assert_eq!(c.join_keys, vec!["customer_id"]);
        assert!(
            c.filters.iter().any(|p| p.kind.tag() == "prefix"),
            "{:?}",
            c.filters
        );
        assert!(e.filters.iter().any(|p| p.kind == PredicateKind::IsNull));
    }

    #[tokio::test]
    async fn a_table_scanned_twice_keeps_each_scan_s_filters_and_columns() {
        // A Parquet table, so filters are pushed into the scans (as for every layout).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("d", DataType::Date32, false),
            Field::new("v", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(Date32Array::from(vec![1, 2])),
                Arc::new(Int64Array::from(vec![5, 6])),
            ],
        )
        .unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            schema,
            None,
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_parquet("t", path.to_str().unwrap(), Default::default())
            .await
            .unwrap();
        let session = Session::from_context(ctx);
        let s = summarize_sql(
            &session,
            "SELECT a.k FROM t a WHERE a.d >= DATE '1970-01-02' \
             AND EXISTS (SELECT 1 FROM t b WHERE b.k = a.k AND b.v > 5)",
        )
        .await
        .unwrap();
        let t = s.table("t").unwrap();
        assert_eq!(t.scans.len(), 2, "{t:?}");
        let cols = |i: usize| {
            let mut c: Vec<&str> = t.scans[i]
                .filters
                .iter()
                .map(|p| p.column.as_str())
                .collect();
            c.sort_unstable();
            c
        };
        assert_eq!((cols(0), cols(1)), (vec!["d"], vec!["v"]), "{t:?}");
        assert!(!t.scans[1].projected.contains(&"d".to_string()), "{t:?}");
        let per_scan = t.per_scan();
        assert_eq!(per_scan.len(), 2);
        assert_eq!(per_scan[0].join_keys, t.join_keys);
        // A table scanned once keeps no per-scan list: its usage is its one scan.
        let once = summarize_sql(&session, "SELECT k FROM t WHERE v > 5")
            .await
            .unwrap();
        let t = once.table("t").unwrap();
        assert!(t.scans.is_empty());
        assert_eq!(t.per_scan(), vec![t.clone()]);
    }

    #[test]
    fn internal_names_map_back() {
        assert_eq!(table_of_scan_name("__events_0123abcd"), "events");
        assert_eq!(table_of_scan_name("__my_table_initial"), "my_table");
        assert_eq!(table_of_scan_name("events"), "events");
    }
}
