//! Prepared statements for clients of the SQL endpoint: what a statement with `$1`, `$2`, ...
//! placeholders takes and returns ([`Session::describe`]), and the statement with its
//! parameters bound as SQL literals ([`bind_parameters`]).
//!
//! Binding rewrites the syntax tree, never the text, so a `$1` inside a string literal or a
//! comment is left alone and a string value cannot escape its quotes. The bound statement is
//! ordinary SQL: it runs, is guarded and is logged exactly like a query typed at the CLI, with
//! its real literals (which is what the workload analysis and the what-if model need).

use crate::{EngineError, Session};
use arrow::datatypes::{DataType, SchemaRef};
use sqlparser::ast::{
    CastKind, DataType as SqlType, Expr, Value, ValueWithSpan, visit_expressions_mut,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use std::ops::ControlFlow;

/// What a statement takes and returns.
#[derive(Debug, Clone)]
pub struct StatementDescription {
    /// The type DataFusion infers for each placeholder `$1..$n` (None: not inferable).
    pub params: Vec<Option<DataType>>,
    /// The result columns.
    pub schema: SchemaRef,
}

/// One parameter value sent by a client.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// SQL NULL.
    Null,
    /// A boolean.
    Boolean(bool),
    /// An integer.
    Integer(i64),
    /// A floating-point number.
    Float(f64),
    /// Text, bound as a string literal.
    Text(String),
    /// Text cast to a SQL type, e.g. `DATE` or `TIMESTAMP` or `DECIMAL(12,2)`.
    Typed {
        /// The value in the type's text form.
        text: String,
        /// The SQL type name it is cast to.
        sql_type: String,
    },
}

impl Session {
    /// Plans `sql` (with `$n` placeholders) without running it: its parameter types and
    /// result schema.
    pub async fn describe(&self, sql: &str) -> Result<StatementDescription, EngineError> {
        crate::check_read_only(sql)?;
        let plan = self
            .ctx()
            .state()
            .create_logical_plan(sql)
            .await
            .map_err(EngineError::from_plan)?;
        let types = plan.get_parameter_types().map_err(EngineError::from_plan)?;
        let count = types
            .keys()
            .filter_map(|k| k.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()))
            .max()
            .unwrap_or(0);
        let params = (1..=count)
            .map(|i| types.get(&format!("${i}")).cloned().flatten())
            .collect();
        Ok(StatementDescription {
            params,
            schema: std::sync::Arc::new(plan.schema().as_arrow().clone()),
        })
    }
}

/// `sql` with each placeholder `$n` replaced by the literal for `values[n-1]`; an error when a
/// placeholder has no value or `sql` does not parse.
pub fn bind_parameters(sql: &str, values: &[ParamValue]) -> Result<String, EngineError> {
    if values.is_empty() {
        return Ok(sql.to_string());
    }
    let mut statements = Parser::parse_sql(&GenericDialect {}, sql)
        .map_err(|e| EngineError::Syntax(dbopt_core::text::first_line(&e.to_string())))?;
    let mut missing = None;
    let _ = visit_expressions_mut(&mut statements, |expr| {
        if let Expr::Value(ValueWithSpan {
            value: Value::Placeholder(name),
            ..
        }) = expr
        {
            match placeholder_index(name).and_then(|i| values.get(i)) {
                Some(value) => *expr = literal(value),
                None => missing = Some(name.clone()),
            }
        }
        ControlFlow::<()>::Continue(())
    });
    if let Some(name) = missing {
        return Err(EngineError::Syntax(format!(
            "placeholder {name} has no value: the client sent {} parameter(s)",
            values.len()
        )));
    }
    Ok(statements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; "))
}

/// `$3` -> 2.
fn placeholder_index(name: &str) -> Option<usize> {
    name.strip_prefix('$')?
        .parse::<usize>()
        .ok()?
        .checked_sub(1)
}

fn literal(value: &ParamValue) -> Expr {
    match value {
        ParamValue::Null => Expr::value(Value::Null),
        ParamValue::Boolean(b) => Expr::value(Value::Boolean(*b)),
        ParamValue::Integer(i) => Expr::value(Value::Number(i.to_string(), false)),
        // Non-finite floats have no literal: cast their text form.
        ParamValue::Float(f) if f.is_finite() => {
            Expr::value(Value::Number(format!("{f:?}"), false))
        }
        ParamValue::Float(f) => cast(
            f.to_string(),
            SqlType::Double(sqlparser::ast::ExactNumberInfo::None),
        ),
        ParamValue::Text(t) => Expr::value(Value::SingleQuotedString(t.clone())),
        ParamValue::Typed { text, sql_type } => {
            let parsed = Parser::new(&GenericDialect {})
                .try_with_sql(sql_type)
                .and_then(|mut p| p.parse_data_type());
            match parsed {
                Ok(ty) => cast(text.clone(), ty),
                Err(_) => Expr::value(Value::SingleQuotedString(text.clone())),
            }
        }
    }
}

fn cast(text: String, data_type: SqlType) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(Expr::value(Value::SingleQuotedString(text))),
        data_type,
        array: false,
        format: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_by_position_and_leaves_strings_alone() {
        let sql = "SELECT '$1' AS s, a FROM t WHERE a = $2 AND b = $1";
        let bound = bind_parameters(
            sql,
            &[ParamValue::Text("it's".into()), ParamValue::Integer(7)],
        )
        .unwrap();
        assert_eq!(
            bound,
            "SELECT '$1' AS s, a FROM t WHERE a = 7 AND b = 'it''s'"
        );
    }

    #[test]
    fn typed_values_are_cast_and_nulls_and_floats_are_literals() {
        let bound = bind_parameters(
            "SELECT * FROM t WHERE d >= $1 AND x < $2 AND y IS NOT DISTINCT FROM $3 AND z = $4",
            &[
                ParamValue::Typed {
                    text: "2024-01-31".into(),
                    sql_type: "DATE".into(),
                },
                ParamValue::Float(1.5),
                ParamValue::Null,
                ParamValue::Boolean(true),
            ],
        )
        .unwrap();
        assert_eq!(
            bound,
            "SELECT * FROM t WHERE d >= CAST('2024-01-31' AS DATE) AND x < 1.5 AND y IS NOT DISTINCT FROM NULL AND z = true"
        );
    }

    #[test]
    fn a_placeholder_without_a_value_is_an_error() {
        let err = bind_parameters("SELECT $2", &[ParamValue::Integer(1)]).unwrap_err();
        assert!(err.to_string().contains("$2"), "{err}");
    }
}
