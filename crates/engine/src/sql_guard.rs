//! Read-only guard and template fingerprints for SQL text.
//!
//! Both parse with sqlparser (the same version DataFusion uses) so that the checks follow SQL
//! structure, not text patterns.

use crate::EngineError;
use sha2::{Digest, Sha256};
use sqlparser::ast::{Expr, Statement, Value, visit_expressions_mut};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use std::ops::ControlFlow;

/// A query's shape: its literals replaced by `?`, and a short hash of that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// 16 hex digits of SHA-256 over the normalized text.
    pub hash: String,
    /// The SQL with literals replaced by `?` and IN lists collapsed to `(?)`.
    pub normalized: String,
}

fn parse(sql: &str) -> Result<Vec<Statement>, EngineError> {
    Parser::parse_sql(&GenericDialect {}, sql)
        .map_err(|e| EngineError::Syntax(dbopt_core::text::first_line(&e.to_string())))
}

/// The table names `sql` mentions (the last part of a qualified name, in order of first
/// appearance, CTE names included); empty when it does not parse.
pub fn referenced_tables(sql: &str) -> Vec<String> {
    let Ok(statements) = parse(sql) else {
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    let _ = sqlparser::ast::visit_relations(&statements, |relation| {
        if let Some(part) = relation.0.last().and_then(|p| p.as_ident()) {
            let name = crate::foreign_sql::ident_name(part);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    names
}

/// Parses `sql` and refuses anything but a single SELECT, WITH or EXPLAIN of one.
pub fn check_read_only(sql: &str) -> Result<(), EngineError> {
    check_statements_read_only(&parse(sql)?)
}

/// Refuses anything but a single SELECT, WITH or EXPLAIN of one among parsed `statements`.
pub(crate) fn check_statements_read_only(statements: &[Statement]) -> Result<(), EngineError> {
    match statements {
        [] => Err(EngineError::Syntax(
            "empty statement: give a SELECT query".into(),
        )),
        [one] => check_statement(one),
        _ => Err(EngineError::NotReadOnly(format!(
            "{} statements given; run one query at a time",
            statements.len()
        ))),
    }
}

fn check_statement(statement: &Statement) -> Result<(), EngineError> {
    match statement {
        Statement::Query(_) => Ok(()),
        Statement::Explain { statement, .. } => check_statement(statement),
        other => {
            let kind = statement_kind(other);
            Err(EngineError::NotReadOnly(format!(
                "{kind} is not a read-only query; dbopt runs only SELECT, WITH and EXPLAIN (change data and schemas with your own tools, then `dbopt load-dataset`)"
            )))
        }
    }
}

/// The leading keywords of a statement, e.g. `DROP TABLE` or `INSERT`.
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    match words.as_slice() {
        [first, second]
            if matches!(
                second.to_ascii_uppercase().as_str(),
                "TABLE" | "VIEW" | "INDEX" | "SCHEMA" | "DATABASE" | "FUNCTION" | "EXTERNAL"
            ) =>
        {
            format!(
                "{} {}",
                first.to_ascii_uppercase(),
                second.to_ascii_uppercase()
            )
        }
        [first, ..] => first.to_ascii_uppercase(),
        [] => "statement".to_string(),
    }
}

/// The template fingerprint of `sql`: the same shape with other literals gives the same hash.
pub fn fingerprint(sql: &str) -> Result<Fingerprint, EngineError> {
    Ok(normalized_fingerprint(parse(sql)?))
}

/// The template fingerprint of parsed `statements` (see [`fingerprint`]).
pub(crate) fn normalized_fingerprint(mut statements: Vec<Statement>) -> Fingerprint {
    let _ = visit_expressions_mut(&mut statements, |expr: &mut Expr| {
        match expr {
            Expr::Value(v) => v.value = Value::Placeholder("?".into()),
            Expr::TypedString(ts) => ts.value.value = Value::Placeholder("?".into()),
            Expr::InList { list, .. } => {
                *list = vec![Expr::Value(Value::Placeholder("?".into()).into())];
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    let normalized = statements
        .iter()
        .map(std::string::ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let digest = Sha256::digest(normalized.to_lowercase().as_bytes());
    Fingerprint {
        hash: hex::encode(&digest[..8]),
        normalized,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referenced_tables_in_order_without_repeats() {
        assert_eq!(
            referenced_tables(
                "SELECT * FROM Events e JOIN cat.db.users u ON e.u = u.id WHERE e.x IN (SELECT x FROM events)"
            ),
            vec!["events".to_string(), "users".to_string()]
        );
        assert!(referenced_tables("SELECT 1").is_empty());
        assert!(referenced_tables("SELEC nonsense").is_empty());
    }

    #[test]
    fn read_only_statements_pass() {
        for sql in [
            "SELECT 1",
            "select * from events where a = 1",
            "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
            "EXPLAIN SELECT * FROM events",
            "SELECT a FROM t UNION ALL SELECT b FROM u",
        ] {
            check_read_only(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    #[test]
    fn ddl_and_dml_are_refused_with_their_kind() {
        for (sql, kind) in [
            ("DROP TABLE events", "DROP TABLE"),
            ("CREATE TABLE x (a int)", "CREATE TABLE"),
            ("INSERT INTO events VALUES (1)", "INSERT"),
            ("DELETE FROM events", "DELETE"),
            ("UPDATE events SET a = 1", "UPDATE"),
            ("EXPLAIN DELETE FROM events", "DELETE"),
        ] {
            let err = check_read_only(sql).unwrap_err();
            assert!(matches!(err, EngineError::NotReadOnly(_)), "{sql}: {err}");
            assert!(err.to_string().contains(kind), "{sql}: {err}");
        }
        assert!(matches!(
            check_read_only("SELECT 1; DROP TABLE events").unwrap_err(),
            EngineError::NotReadOnly(_)
        ));
    }

    #[test]
    fn syntax_errors_are_classified() {
        assert!(matches!(
            check_read_only("SELEC * FROM x").unwrap_err(),
            EngineError::Syntax(_)
        ));
        assert!(matches!(
            check_read_only("").unwrap_err(),
            EngineError::Syntax(_)
        ));
    }

    #[test]
    fn fingerprint_strips_literals() {
        let a = fingerprint(
            "SELECT count(*) FROM events WHERE customer_id = 42 AND event_date >= DATE '2025-01-01' AND country IN ('US', 'DE')",
        )
        .unwrap();
        let b = fingerprint(
            "select count(*) from events where customer_id = 7 and event_date >= DATE '2025-06-30' and country in ('FR')",
        )
        .unwrap();
        assert_eq!(a.hash, b.hash);
        assert!(!a.normalized.contains("42"), "{}", a.normalized);
        let c = fingerprint("SELECT count(*) FROM events WHERE user_id = 42").unwrap();
        assert_ne!(a.hash, c.hash, "another column is another shape");
        let d = fingerprint("SELECT count(*) FROM events WHERE customer_id > 42").unwrap();
        let e = fingerprint("SELECT count(*) FROM events WHERE customer_id = 42").unwrap();
        assert_ne!(d.hash, e.hash, "another operator is another shape");
    }
}
