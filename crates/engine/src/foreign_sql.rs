//! SQL written for another engine (Trino, ClickHouse, DuckDB, PostgreSQL): parsed in its own
//! dialect, its table names mapped onto managed tables, and, when DataFusion cannot plan it
//! (an engine-specific function, say), analyzed from its syntax tree.
//!
//! The syntax-tree analysis reads each SELECT's FROM scope: a conjunct of WHERE, PREWHERE or
//! a join's ON that references only the analyzed table is a filter, typed by planning it alone
//! (`SELECT 1 FROM t WHERE <conjunct>`) so literals get the column's type as in a real plan;
//! a conjunct DataFusion cannot plan counts as an unprunable filter on its columns. `a = b`
//! between the table and another relation is a join key; GROUP BY and ORDER BY columns and
//! every column the SELECT mentions are read as such. Correlated references and columns of
//! derived tables are not resolved.

use crate::EngineError;
use crate::plan_summary::{merge_ranges, push_unique, summarize_sql};
use crate::session::Session;
use crate::sql_guard::{Fingerprint, check_statements_read_only, normalized_fingerprint};
use dbopt_core::plan_summary::{Predicate, PredicateKind, TableUsage};
use sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Ident, JoinConstraint, JoinOperator, ObjectName,
    ObjectNamePart, OrderByKind, Query, Select, SelectItem, SetExpr, Statement, TableFactor, Visit,
    Visitor, visit_relations_mut,
};
use sqlparser::dialect::{ClickHouseDialect, DuckDbDialect, GenericDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;
use std::ops::ControlFlow;

/// The SQL dialect a query was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// DataFusion's own (sqlparser's generic dialect).
    #[default]
    Generic,
    /// Trino and Presto. sqlparser has no Trino dialect; its generic dialect reads Trino's
    /// ANSI syntax.
    Trino,
    /// ClickHouse.
    Clickhouse,
    /// DuckDB.
    Duckdb,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// Every dialect, for help text.
    pub const ALL: [Dialect; 5] = [
        Dialect::Generic,
        Dialect::Trino,
        Dialect::Clickhouse,
        Dialect::Duckdb,
        Dialect::Postgres,
    ];

    /// The dialect's lowercase name (also stored with imported queries).
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Generic => "generic",
            Dialect::Trino => "trino",
            Dialect::Clickhouse => "clickhouse",
            Dialect::Duckdb => "duckdb",
            Dialect::Postgres => "postgres",
        }
    }

    /// The dialect named `name` (as [`Dialect::name`] gives it).
    pub fn from_name(name: &str) -> Option<Dialect> {
        Dialect::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Parses `sql` in this dialect.
    pub fn parse(self, sql: &str) -> Result<Vec<Statement>, EngineError> {
        let parsed = match self {
            Dialect::Generic | Dialect::Trino => Parser::parse_sql(&GenericDialect {}, sql),
            Dialect::Clickhouse => Parser::parse_sql(&ClickHouseDialect {}, sql),
            Dialect::Duckdb => Parser::parse_sql(&DuckDbDialect {}, sql),
            Dialect::Postgres => Parser::parse_sql(&PostgreSqlDialect {}, sql),
        };
        parsed.map_err(|e| EngineError::Syntax(dbopt_core::text::first_line(&e.to_string())))
    }
}

/// A foreign query made ready for the query log: its text with managed table names, the
/// managed tables it reads (in order of first mention) and its template fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignQuery {
    /// The SQL with every resolved relation renamed to its managed table.
    pub sql: String,
    /// Managed tables the query reads, in order of first mention.
    pub tables: Vec<String>,
    /// The names the query used that resolved to no managed table (CTEs excluded).
    pub unresolved: Vec<String>,
    /// The template fingerprint of `sql`.
    pub fingerprint: Fingerprint,
}

/// Parses `sql` in `dialect`, refuses anything but one read-only query, and renames each
/// relation that `resolve` maps (given the name's parts, lowercased unless quoted) to a
/// managed table.
pub fn translate(
    sql: &str,
    dialect: Dialect,
    resolve: impl Fn(&[String]) -> Option<String>,
) -> Result<ForeignQuery, EngineError> {
    let mut statements = dialect.parse(sql)?;
    check_statements_read_only(&statements)?;
    let ctes = cte_names(&statements);
    let mut tables: Vec<String> = Vec::new();
    let mut unresolved: Vec<String> = Vec::new();
    let _ = visit_relations_mut(&mut statements, |name: &mut ObjectName| {
        let parts = name_parts(name);
        match resolve(&parts) {
            Some(table) => {
                *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(&table))]);
                if !tables.contains(&table) {
                    tables.push(table);
                }
            }
            None => {
                let joined = parts.join(".");
                let cte = parts.len() == 1 && ctes.contains(&parts[0]);
                if !cte && !unresolved.contains(&joined) {
                    unresolved.push(joined);
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    let fingerprint = normalized_fingerprint(statements.clone());
    let sql = statements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Ok(ForeignQuery {
        sql,
        tables,
        unresolved,
        fingerprint,
    })
}

/// An identifier as SQL resolves it: lowercased unless quoted.
pub(crate) fn ident_name(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p.as_ident() {
            Some(i) => ident_name(i),
            None => p.to_string(),
        })
        .collect()
}

fn cte_names(statements: &[Statement]) -> Vec<String> {
    let mut names = Vec::new();
    let mut walk = QueryWalk(|q: &Query| {
        if let Some(with) = &q.with {
            names.extend(with.cte_tables.iter().map(|c| ident_name(&c.alias.name)));
        }
    });
    for statement in statements {
        let _ = statement.visit(&mut walk);
    }
    names
}

/// Calls its closure on every query (the statement's and every nested one).
struct QueryWalk<F: FnMut(&Query)>(F);

impl<F: FnMut(&Query)> Visitor for QueryWalk<F> {
    type Break = ();
    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        (self.0)(query);
        ControlFlow::Continue(())
    }
}

/// What `sql` (in `dialect`) asks of `table`, read from its syntax tree; filters are typed
/// by planning each alone in `session`. None when the query does not read `table`.
pub async fn summarize_syntax(
    session: &Session,
    sql: &str,
    dialect: Dialect,
    table: &str,
) -> Result<Option<TableUsage>, EngineError> {
    let columns = table_columns(session, table).await?;
    let statements = dialect.parse(sql)?;
    let mut reading = SyntaxUsage {
        table: table.to_string(),
        columns,
        found: false,
        conjuncts: Vec::new(),
        usage: TableUsage {
            table: table.to_string(),
            ..TableUsage::default()
        },
    };
    let mut walk = QueryWalk(|q: &Query| reading.query(q));
    for statement in &statements {
        let _ = statement.visit(&mut walk);
    }
    if !reading.found {
        return Ok(None);
    }
    let mut filters = Vec::new();
    for (qualifier, conjunct, columns) in &reading.conjuncts {
        filters.extend(type_conjunct(session, table, qualifier, conjunct, columns).await);
    }
    let mut usage = reading.usage;
    usage.filters = merge_ranges(filters);
    Ok(Some(usage))
}

async fn table_columns(session: &Session, table: &str) -> Result<Vec<String>, EngineError> {
    let provider = session
        .ctx()
        .table_provider(table)
        .await
        .map_err(EngineError::from_plan)?;
    Ok(provider
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect())
}

/// The predicates of one filter conjunct: planned alone against `table`, or unprunable on its
/// columns when DataFusion cannot plan it.
async fn type_conjunct(
    session: &Session,
    table: &str,
    qualifier: &str,
    conjunct: &str,
    columns: &[String],
) -> Vec<Predicate> {
    let probe = format!("SELECT 1 FROM {table} AS {qualifier} WHERE {conjunct}");
    match summarize_sql(session, &probe).await {
        Ok(summary) => summary
            .table(table)
            .map(|u| u.filters.clone())
            .unwrap_or_default(),
        Err(_) => columns
            .iter()
            .map(|c| Predicate {
                column: c.clone(),
                kind: PredicateKind::Other,
            })
            .collect(),
    }
}

/// The walk over a statement's SELECTs that fills a [`TableUsage`].
struct SyntaxUsage {
    table: String,
    columns: Vec<String>,
    found: bool,
    /// (qualifier, conjunct text, columns of the table it references).
    conjuncts: Vec<(String, String, Vec<String>)>,
    usage: TableUsage,
}

/// The relations of one SELECT's FROM clause: (name or alias, is the analyzed table).
struct Scope {
    relations: Vec<(String, bool)>,
}

/// A column reference resolved in a scope.
enum Ref {
    /// A column of the analyzed table, through this qualifier.
    Table(String, String),
    /// A column of another relation (or one that resolves to none).
    Other,
}

impl SyntaxUsage {
    fn query(&mut self, query: &Query) {
        let order: Vec<&Expr> = match query.order_by.as_ref().map(|o| &o.kind) {
            Some(OrderByKind::Expressions(exprs)) => exprs.iter().map(|e| &e.expr).collect(),
            _ => Vec::new(),
        };
        self.set_expr(&query.body, &order);
    }

    fn set_expr(&mut self, body: &SetExpr, order: &[&Expr]) {
        match body {
            SetExpr::Select(select) => self.select(select, order),
            SetExpr::SetOperation { left, right, .. } => {
                self.set_expr(left, &[]);
                self.set_expr(right, &[]);
            }
            _ => {}
        }
    }

    fn select(&mut self, select: &Select, order: &[&Expr]) {
        let scope = self.scope(select);
        let Some(own) = scope.relations.iter().find(|(_, mine)| *mine) else {
            return;
        };
        let own_name = own.0.clone();
        self.found = true;
        let mut conditions: Vec<&Expr> = Vec::new();
        conditions.extend(select.selection.as_ref());
        conditions.extend(select.prewhere.as_ref());
        for from in &select.from {
            for join in &from.joins {
                if let Some(JoinConstraint::On(on)) = join_constraint(&join.join_operator) {
                    conditions.push(on);
                }
            }
        }
        for condition in conditions {
            for conjunct in conjuncts(condition) {
                self.conjunct(&scope, conjunct);
            }
        }
        if let GroupByExpr::Expressions(exprs, _) = &select.group_by {
            for e in exprs {
                for c in self.own_columns(&scope, e) {
                    push_unique(&mut self.usage.group_by, c);
                }
            }
        }
        for e in order {
            for c in self.own_columns(&scope, e) {
                push_unique(&mut self.usage.order_by, c);
            }
        }
        for item in &select.projection {
            match item {
                SelectItem::Wildcard(_) => self.read_all(),
                SelectItem::QualifiedWildcard(kind, _)
                    if kind.to_string().rsplit('.').next().map(str::to_lowercase)
                        == Some(own_name.clone()) =>
                {
                    self.read_all();
                }
                _ => {}
            }
        }
        let mut read = Vec::new();
        let _ = select.visit(&mut RefWalk::new(|e: &Expr| {
            if let Some(Ref::Table(_, c)) = self.resolve(&scope, e) {
                read.push(c);
            }
        }));
        for c in read {
            push_unique(&mut self.usage.projected, c);
        }
    }

    fn read_all(&mut self) {
        for c in self.columns.clone() {
            push_unique(&mut self.usage.projected, c);
        }
    }

    fn scope(&self, select: &Select) -> Scope {
        let mut relations = Vec::new();
        for from in &select.from {
            let factors =
                std::iter::once(&from.relation).chain(from.joins.iter().map(|j| &j.relation));
            for factor in factors {
                if let TableFactor::Table { name, alias, .. } = factor {
                    let parts = name_parts(name);
                    let mine = parts.last() == Some(&self.table);
                    let label = match alias {
                        Some(a) => ident_name(&a.name),
                        None => parts.last().cloned().unwrap_or_default(),
                    };
                    relations.push((label, mine));
                }
            }
        }
        Scope { relations }
    }

    fn resolve(&self, scope: &Scope, expr: &Expr) -> Option<Ref> {
        let (qualifier, column) = match expr {
            Expr::Identifier(i) => (None, ident_name(i)),
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => (
                Some(ident_name(&parts[parts.len() - 2])),
                ident_name(&parts[parts.len() - 1]),
            ),
            _ => return None,
        };
        if !self.columns.contains(&column) {
            return Some(Ref::Other);
        }
        let relation = match &qualifier {
            Some(q) => scope.relations.iter().find(|(label, _)| label == q),
            None => scope.relations.iter().find(|(_, mine)| *mine),
        };
        Some(match relation {
            Some((label, true)) => Ref::Table(label.clone(), column),
            _ => Ref::Other,
        })
    }

    fn own_columns(&self, scope: &Scope, expr: &Expr) -> Vec<String> {
        let mut out = Vec::new();
        let _ = expr.visit(&mut RefWalk::new(|e: &Expr| {
            if let Some(Ref::Table(_, c)) = self.resolve(scope, e) {
                push_unique(&mut out, c);
            }
        }));
        out
    }

    /// Files one conjunct as a join key, a filter on the table, or neither.
    fn conjunct(&mut self, scope: &Scope, conjunct: &Expr) {
        if let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = conjunct
        {
            match (self.resolve(scope, left), self.resolve(scope, right)) {
                (Some(Ref::Table(_, c)), Some(Ref::Other))
                | (Some(Ref::Other), Some(Ref::Table(_, c))) => {
                    push_unique(&mut self.usage.join_keys, c);
                    return;
                }
                _ => {}
            }
        }
        let mut qualifier = None;
        let mut columns = Vec::new();
        let mut foreign = false;
        let _ = conjunct.visit(&mut RefWalk::new(|e: &Expr| match self.resolve(scope, e) {
            Some(Ref::Table(q, c)) => {
                qualifier.get_or_insert(q);
                push_unique(&mut columns, c);
            }
            Some(Ref::Other) => foreign = true,
            None => {}
        }));
        if let (Some(q), false) = (qualifier, foreign) {
            self.conjuncts.push((q, conjunct.to_string(), columns));
        }
    }
}

fn join_constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
    match op {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::Semi(c)
        | JoinOperator::LeftSemi(c)
        | JoinOperator::RightSemi(c)
        | JoinOperator::Anti(c)
        | JoinOperator::LeftAnti(c)
        | JoinOperator::RightAnti(c) => Some(c),
        _ => None,
    }
}

/// The AND-ed parts of a condition.
fn conjuncts(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut out = conjuncts(left);
            out.extend(conjuncts(right));
            out
        }
        Expr::Nested(inner) => conjuncts(inner),
        other => vec![other],
    }
}

/// Calls its closure on every column reference of an expression, not entering subqueries
/// (their columns belong to their own scope, which the query walk visits on its own).
struct RefWalk<F: FnMut(&Expr)> {
    f: F,
    depth: usize,
}

impl<F: FnMut(&Expr)> RefWalk<F> {
    fn new(f: F) -> Self {
        RefWalk { f, depth: 0 }
    }
}

impl<F: FnMut(&Expr)> Visitor for RefWalk<F> {
    type Break = ();
    fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }
    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if self.depth == 0 && matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            (self.f)(expr);
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_events(parts: &[String]) -> Option<String> {
        (parts.last().map(String::as_str) == Some("events")).then(|| "events".to_string())
    }

    #[test]
    fn translate_renames_qualified_tables_and_keeps_ctes() {
        let q = translate(
            "WITH recent AS (SELECT * FROM iceberg.curated.events WHERE ts > now() - INTERVAL '1' DAY) SELECT count(*) FROM recent JOIN hive.dim.users u ON recent.user_id = u.id",
            Dialect::Trino,
            resolve_events,
        )
        .unwrap();
        assert!(q.sql.contains("FROM events WHERE"), "{}", q.sql);
        assert_eq!(q.tables, vec!["events"]);
        assert_eq!(q.unresolved, vec!["hive.dim.users"]);
    }

    #[test]
    fn translate_parses_in_the_engines_dialect_and_guards() {
        let ch = "SELECT toStartOfHour(ts) AS h, count() FROM default.events FINAL WHERE country = 'DE' GROUP BY h";
        let q = translate(ch, Dialect::Clickhouse, resolve_events).unwrap();
        assert_eq!(q.tables, vec!["events"]);
        let err = translate(
            "INSERT INTO events SELECT * FROM events",
            Dialect::Clickhouse,
            resolve_events,
        )
        .unwrap_err();
        assert!(matches!(err, EngineError::NotReadOnly(_)), "{err}");
        let a = translate(
            "SELECT * FROM events WHERE id = 1",
            Dialect::Trino,
            resolve_events,
        )
        .unwrap();
        let b = translate(
            "SELECT * FROM cat.s.events WHERE id = 2",
            Dialect::Trino,
            resolve_events,
        )
        .unwrap();
        assert_eq!(
            a.fingerprint.hash, b.fingerprint.hash,
            "same shape once renamed"
        );
    }

    #[test]
    fn dialect_names_round_trip() {
        for d in Dialect::ALL {
            assert_eq!(Dialect::from_name(d.name()), Some(d));
        }
        assert_eq!(Dialect::from_name("oracle"), None);
    }

    fn session() -> Session {
        use arrow::array::{Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
        use arrow::datatypes::{DataType, Field, Schema};
        use std::sync::Arc;
        let ctx = datafusion::prelude::SessionContext::new();
        let events = Arc::new(Schema::new(vec![
            Field::new("event_date", DataType::Date32, false),
            Field::new("customer_id", DataType::Int64, false),
            Field::new("country", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            events,
            vec![
                Arc::new(Date32Array::from(vec![20_000, 20_100])),
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["DE", "US"])),
                Arc::new(Float64Array::from(vec![1.0, 2.0])),
            ],
        )
        .unwrap();
        ctx.register_batch("events", batch).unwrap();
        let users = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("segment", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            users,
            vec![
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(StringArray::from(vec!["pro"])),
            ],
        )
        .unwrap();
        ctx.register_batch("users", batch).unwrap();
        Session::from_context(ctx)
    }

    #[tokio::test]
    async fn syntax_usage_of_a_query_datafusion_cannot_plan() {
        let s = session();
        let sql = "SELECT toStartOfMonth(e.event_date) AS m, u.segment, count() \
                   FROM events AS e JOIN users AS u ON e.customer_id = u.id \
                   WHERE e.event_date >= '2024-10-01' AND e.event_date < '2024-11-01' \
                   AND e.country IN ('DE', 'FR') AND positionCaseInsensitive(e.country, 'd') > 0 \
                   AND (SELECT max(id) FROM users) > 0 \
                   GROUP BY m, u.segment, e.country ORDER BY e.country";
        assert!(
            summarize_sql(&s, sql).await.is_err(),
            "the fallback is what is tested"
        );
        let usage = summarize_syntax(&s, sql, Dialect::Clickhouse, "events")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(usage.join_keys, vec!["customer_id"]);
        assert_eq!(usage.group_by, vec!["country"]);
        assert_eq!(usage.order_by, vec!["country"]);
        let kinds: Vec<(String, &str)> = usage
            .filters
            .iter()
            .map(|p| (p.column.clone(), p.kind.tag()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("event_date".to_string(), "range"),
                ("country".to_string(), "in"),
                ("country".to_string(), "other"),
            ]
        );
        let PredicateKind::Range { low, high } = &usage.filters[0].kind else {
            unreachable!()
        };
        assert_eq!(
            low.as_ref().unwrap().value,
            dbopt_core::plan_summary::Lit::Date(19_997)
        );
        assert_eq!(
            high.as_ref().unwrap().value,
            dbopt_core::plan_summary::Lit::Date(20_028)
        );
        for c in ["event_date", "customer_id", "country"] {
            assert!(
                usage.projected.contains(&c.to_string()),
                "{c}: {:?}",
                usage.projected
            );
        }
        assert!(!usage.projected.contains(&"amount".to_string()));
    }

    #[tokio::test]
    async fn syntax_usage_is_none_for_a_query_of_other_tables() {
        let s = session();
        let got = summarize_syntax(&s, "SELECT segment FROM users", Dialect::Trino, "events")
            .await
            .unwrap();
        assert_eq!(got, None);
        let star = summarize_syntax(&s, "SELECT * FROM events", Dialect::Trino, "events")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(star.projected.len(), 4);
    }
}
