//! Between Arrow and the wire: result batches to PostgreSQL rows (types mapped by `arrow-pg`:
//! timestamps with a zone to `timestamptz`, decimals to `numeric`, dates to `date`, nulls as
//! nulls), client parameters to SQL literals, and dbopt's errors to PostgreSQL error codes.

use arrow::datatypes::{DataType, Schema};
use dbopt::DbError;
use dbopt_engine::{EngineError, ParamValue, QueryOutcome};
use pgwire::api::Type;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use std::sync::Arc;

/// The wire columns of `schema` in `format`.
pub fn fields(schema: &Schema, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    arrow_pg::datatypes::arrow_schema_to_pg_fields(schema, format, None)
}

/// A query's result as rows in `format`.
pub fn rows(outcome: QueryOutcome, format: &Format) -> PgWireResult<Response> {
    let fields = Arc::new(fields(&outcome.schema, format)?);
    let mut rows = Vec::with_capacity(outcome.rows as usize);
    for batch in outcome.batches {
        rows.extend(arrow_pg::datatypes::encode_recordbatch(
            fields.clone(),
            batch,
        ));
    }
    let mut response = QueryResponse::new(fields, futures::stream::iter(rows));
    // pgwire appends the row count to the tag itself ("SELECT n").
    response.set_command_tag("SELECT");
    Ok(Response::Query(response))
}

/// A one-row, one-text-column result (`SHOW name`).
pub fn single_value(name: &str, value: &str) -> PgWireResult<Response> {
    let field = FieldInfo::new(
        name.to_string(),
        None,
        None,
        Type::TEXT,
        pgwire::api::results::FieldFormat::Text,
    );
    let fields = Arc::new(vec![field]);
    let mut encoder = pgwire::api::results::DataRowEncoder::new(fields.clone());
    encoder.encode_field(&value)?;
    let row = encoder.take_row();
    let mut response = QueryResponse::new(fields, futures::stream::iter(vec![Ok(row)]));
    response.set_command_tag("SHOW");
    Ok(Response::Query(response))
}

/// A command's reply with only its tag.
pub fn tag(command: &str) -> Response {
    Response::Execution(Tag::new(command))
}

/// The wire type the engine's inferred parameter type maps to (text when unknown).
pub fn param_type(inferred: Option<&DataType>) -> Type {
    inferred
        .and_then(|t| arrow_pg::datatypes::into_pg_type(t).ok())
        .unwrap_or(Type::UNKNOWN)
}

/// The portal's parameters as values for `dbopt_engine::bind_parameters`; `declared` are the
/// types the statement was described with (the client's own types win).
pub fn params<S: Clone>(portal: &Portal<S>, declared: &[Type]) -> PgWireResult<Vec<ParamValue>> {
    (0..portal.parameter_len())
        .map(|i| {
            let ty = portal
                .statement
                .parameter_types
                .get(i)
                .cloned()
                .flatten()
                .or_else(|| declared.get(i).cloned())
                .unwrap_or(Type::UNKNOWN);
            match portal.parameters.get(i).cloned().flatten() {
                None => Ok(ParamValue::Null),
                Some(_) if portal.parameter_format.is_binary(i) => binary_param(portal, i, &ty),
                Some(bytes) => text_param(i, &ty, &bytes),
            }
        })
        .collect()
}

fn text_param(i: usize, ty: &Type, bytes: &[u8]) -> PgWireResult<ParamValue> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| user_error("22021", &format!("parameter ${} is not UTF-8", i + 1)))?
        .to_string();
    let bad = || {
        user_error(
            "22P02",
            &format!("parameter ${} '{text}' is not a valid {}", i + 1, ty.name()),
        )
    };
    Ok(match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 => {
            ParamValue::Integer(text.trim().parse().map_err(|_| bad())?)
        }
        Type::FLOAT4 | Type::FLOAT8 => ParamValue::Float(text.trim().parse().map_err(|_| bad())?),
        Type::NUMERIC => {
            text.trim().parse::<f64>().map_err(|_| bad())?;
            typed(text, "DECIMAL(38,10)")
        }
        Type::BOOL => ParamValue::Boolean(match text.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "1" | "yes" | "on" => true,
            "f" | "false" | "0" | "no" | "off" => false,
            _ => return Err(bad()),
        }),
        Type::DATE => typed(text, "DATE"),
        Type::TIMESTAMP => typed(text, "TIMESTAMP"),
        Type::TIMESTAMPTZ => typed(text, "TIMESTAMPTZ"),
        _ => ParamValue::Text(text),
    })
}

fn binary_param<S: Clone>(portal: &Portal<S>, i: usize, ty: &Type) -> PgWireResult<ParamValue> {
    let value = match *ty {
        Type::BOOL => portal.parameter::<bool>(i, ty)?.map(ParamValue::Boolean),
        Type::INT2 => portal
            .parameter::<i16>(i, ty)?
            .map(|v| ParamValue::Integer(v.into())),
        Type::INT4 => portal
            .parameter::<i32>(i, ty)?
            .map(|v| ParamValue::Integer(v.into())),
        Type::INT8 => portal.parameter::<i64>(i, ty)?.map(ParamValue::Integer),
        Type::FLOAT4 => portal
            .parameter::<f32>(i, ty)?
            .map(|v| ParamValue::Float(v.into())),
        Type::FLOAT8 => portal.parameter::<f64>(i, ty)?.map(ParamValue::Float),
        Type::NUMERIC => portal
            .parameter::<rust_decimal::Decimal>(i, ty)?
            .map(|v| typed(v.to_string(), "DECIMAL(38,10)")),
        Type::DATE => portal
            .parameter::<chrono::NaiveDate>(i, ty)?
            .map(|v| typed(v.to_string(), "DATE")),
        Type::TIMESTAMP => portal
            .parameter::<chrono::NaiveDateTime>(i, ty)?
            .map(|v| typed(v.to_string(), "TIMESTAMP")),
        Type::TIMESTAMPTZ => portal
            .parameter::<chrono::DateTime<chrono::FixedOffset>>(i, ty)?
            .map(|v| typed(v.to_rfc3339(), "TIMESTAMPTZ")),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            portal.parameter::<String>(i, ty)?.map(ParamValue::Text)
        }
        _ => {
            return Err(user_error(
                "0A000",
                &format!(
                    "parameter ${} has type {}, which dbopt cannot bind: send it as text",
                    i + 1,
                    ty.name()
                ),
            ));
        }
    };
    Ok(value.unwrap_or(ParamValue::Null))
}

fn typed(text: String, sql_type: &str) -> ParamValue {
    ParamValue::Typed {
        text,
        sql_type: sql_type.to_string(),
    }
}

/// An error for the client with SQLSTATE `code`.
pub fn user_error(code: &str, message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        code.to_string(),
        message.to_string(),
    )))
}

/// dbopt's error as a PostgreSQL error: the one-line message with the SQLSTATE class that
/// fits (read-only violation, syntax, cancelled, out of memory, or the catch-alls for a bad
/// input and an internal failure).
pub fn db_error(e: &DbError) -> PgWireError {
    let code = match e {
        DbError::Engine(EngineError::NotReadOnly(_)) => "25006",
        DbError::Engine(EngineError::Syntax(_)) => "42601",
        DbError::Engine(EngineError::Timeout(_)) => "57014",
        DbError::Engine(EngineError::Resources(_)) => "53200",
        e if e.is_user_error() => "42000",
        _ => "XX000",
    };
    user_error(code, &dbopt_core::text::one_line(&e.to_string()))
}
