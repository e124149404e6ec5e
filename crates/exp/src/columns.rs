//! Column types in the store: every run's files agree on one type per column, so DuckDB and
//! DataFusion read the whole store as one table without guessing.
//!
//! Rules: integers of any width are stored as Int64, floats as Float64, strings as Utf8; a
//! column that held decimals in an earlier run takes integers as decimals, but a column that
//! held integers cannot take decimals later (the files already written would disagree).
//! Parameters become one row per grid: text Utf8, numbers Float64, booleans Boolean, arrays
//! their canonical JSON text.

use crate::canonical::{ParamValue, flatten_params};
use crate::error::ExpError;
use crate::store::{Kind, RESERVED_COLUMNS, StoreMeta};
use arrow::array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::sync::Arc;

/// One column the store has seen: its name and Arrow type (as Arrow displays it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Arrow type, e.g. `Int64`, `Float64`, `Utf8`.
    #[serde(rename = "type")]
    pub data_type: String,
}

impl Column {
    /// The Arrow type; a marker edited to an unknown type is an error naming it.
    pub fn arrow_type(&self) -> Result<DataType, ExpError> {
        DataType::from_str(&self.data_type).map_err(|e| ExpError::Corrupt {
            path: crate::store::MARKER_FILE.into(),
            message: format!("column {} has type {}: {e}", self.name, self.data_type),
        })
    }
}

/// The type a column of `data_type` is stored as.
pub fn store_type(data_type: &DataType) -> DataType {
    match data_type {
        t if t.is_integer() => DataType::Int64,
        t if t.is_floating() || matches!(t, DataType::Decimal128(..)) => DataType::Float64,
        DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => DataType::Utf8,
        other => other.clone(),
    }
}

/// Checks the columns of a `kind` file against the store, returning the schema the file is
/// written with and the store's column list with any new columns appended.
pub fn reconcile(
    meta: &StoreMeta,
    kind: Kind,
    schema: &Schema,
) -> Result<(SchemaRef, Vec<Column>), ExpError> {
    let mut known = meta.columns(kind).to_vec();
    let mut fields = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let name = field.name();
        let reserved = RESERVED_COLUMNS.contains(&name.as_str())
            || meta.partition_by.iter().any(|p| p == name);
        if reserved || meta.params.iter().any(|c| &c.name == name) {
            return Err(ExpError::ColumnIsParameter {
                kind: kind.name(),
                column: name.clone(),
            });
        }
        let wanted = store_type(field.data_type());
        let stored = match known.iter().find(|c| &c.name == name) {
            Some(c) => {
                let had = c.arrow_type()?;
                match (&had, &wanted) {
                    _ if had == wanted => had,
                    (DataType::Float64, DataType::Int64) => had,
                    _ => {
                        return Err(ExpError::ColumnTypeConflict {
                            kind: kind.name(),
                            column: name.clone(),
                            was: c.data_type.clone(),
                            now: wanted.to_string(),
                        });
                    }
                }
            }
            None => {
                known.push(Column {
                    name: name.clone(),
                    data_type: wanted.to_string(),
                });
                wanted
            }
        };
        fields.push(Field::new(name, stored, true));
    }
    Ok((Arc::new(Schema::new(fields)), known))
}

/// `batch` cast to `target` (same column names, store types).
pub fn conform(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch, ExpError> {
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(array, field)| {
            if array.data_type() == field.data_type() {
                Ok(array.clone())
            } else {
                arrow::compute::cast(array, field.data_type()).map_err(|e| ExpError::BadValue {
                    column: field.name().clone(),
                    message: e.to_string(),
                })
            }
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    RecordBatch::try_new(target.clone(), columns).map_err(|e| ExpError::BadValue {
        column: String::new(),
        message: e.to_string(),
    })
}

/// The one-row table of a grid's parameters and the store's parameter columns with any new
/// ones appended; a parameter whose type differs from earlier grids' is an error.
pub fn params_batch(
    meta: &StoreMeta,
    params: &serde_json::Value,
) -> Result<(RecordBatch, Vec<Column>), ExpError> {
    let mut known = meta.params.clone();
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (name, value) in flatten_params(params) {
        if RESERVED_COLUMNS.contains(&name.as_str())
            || meta.events.iter().any(|c| c.name == name)
            || meta.seeds.iter().any(|c| c.name == name)
        {
            return Err(ExpError::ParameterIsColumn(name));
        }
        let own = match &value {
            ParamValue::Null => None,
            ParamValue::Bool(_) => Some(DataType::Boolean),
            ParamValue::Number(_) => Some(DataType::Float64),
            ParamValue::Text(_) | ParamValue::Json(_) => Some(DataType::Utf8),
        };
        let data_type = match (known.iter().find(|c| c.name == name), own) {
            (Some(c), own) => {
                let had = c.arrow_type()?;
                if own.as_ref().is_some_and(|t| *t != had) {
                    return Err(ExpError::ParamTypeConflict {
                        key: name,
                        was: c.data_type.clone(),
                        now: own.map(|t| t.to_string()).unwrap_or_default(),
                    });
                }
                had
            }
            (None, own) => {
                let t = own.unwrap_or(DataType::Utf8);
                known.push(Column {
                    name: name.clone(),
                    data_type: t.to_string(),
                });
                t
            }
        };
        let array: ArrayRef = match (&data_type, value) {
            (DataType::Boolean, ParamValue::Bool(b)) => Arc::new(BooleanArray::from(vec![b])),
            (DataType::Float64, ParamValue::Number(x)) => Arc::new(Float64Array::from(vec![x])),
            (DataType::Utf8, ParamValue::Text(s) | ParamValue::Json(s)) => {
                Arc::new(StringArray::from(vec![s]))
            }
            (t, _) => arrow::array::new_null_array(t, 1),
        };
        fields.push(Field::new(name, data_type, true));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = if arrays.is_empty() {
        RecordBatch::try_new_with_options(
            schema,
            arrays,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(1)),
        )
    } else {
        RecordBatch::try_new(schema, arrays)
    }
    .map_err(|e| ExpError::BadValue {
        column: String::new(),
        message: e.to_string(),
    })?;
    Ok((batch, known))
}

/// The declared schema of the files of `kind` (or of the grids' parameters when `None`).
pub fn file_schema(meta: &StoreMeta, kind: Option<Kind>) -> Result<SchemaRef, ExpError> {
    let columns = kind.map_or(meta.params.as_slice(), |k| meta.columns(k));
    let fields = columns
        .iter()
        .map(|c| Ok(Field::new(&c.name, c.arrow_type()?, true)))
        .collect::<Result<Vec<_>, ExpError>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int32Array;
    use serde_json::json;

    fn meta() -> StoreMeta {
        StoreMeta {
            format: 1,
            id_chars: 8,
            partition_by: vec![],
            params: vec![],
            events: vec![],
            seeds: vec![],
        }
    }

    #[test]
    fn integers_widen_to_int64_and_decimals_take_integers() {
        let schema = Schema::new(vec![Field::new("n", DataType::Int32, false)]);
        let (target, cols) = reconcile(&meta(), Kind::Events, &schema).unwrap();
        assert_eq!(target.field(0).data_type(), &DataType::Int64);
        assert_eq!(cols[0].data_type, "Int64");
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(Int32Array::from(vec![1, 2]))],
        )
        .unwrap();
        assert_eq!(
            conform(&batch, &target).unwrap().column(0).data_type(),
            &DataType::Int64
        );
        let mut m = meta();
        m.events = vec![Column {
            name: "n".into(),
            data_type: "Float64".into(),
        }];
        let (target, _) = reconcile(&m, Kind::Events, &schema).unwrap();
        assert_eq!(target.field(0).data_type(), &DataType::Float64);
        m.events[0].data_type = "Utf8".into();
        assert!(matches!(
            reconcile(&m, Kind::Events, &schema),
            Err(ExpError::ColumnTypeConflict { .. })
        ));
    }

    #[test]
    fn event_columns_cannot_shadow_parameters_or_partitions() {
        let mut m = meta();
        m.params = vec![Column {
            name: "algo".into(),
            data_type: "Utf8".into(),
        }];
        for name in ["algo", "grid_id", "seed"] {
            let schema = Schema::new(vec![Field::new(name, DataType::Utf8, true)]);
            assert!(matches!(
                reconcile(&m, Kind::Events, &schema),
                Err(ExpError::ColumnIsParameter { .. })
            ));
        }
    }

    #[test]
    fn parameters_become_one_typed_row() {
        let (batch, cols) = params_batch(
            &meta(),
            &json!({"algo": "ucb1", "lr": 0.5, "deep": {"on": true}, "list": [1, 2], "none": null}),
        )
        .unwrap();
        assert_eq!(batch.num_rows(), 1);
        let types: Vec<(String, String)> = cols
            .iter()
            .map(|c| (c.name.clone(), c.data_type.clone()))
            .collect();
        assert!(types.contains(&("lr".into(), "Float64".into())));
        assert!(types.contains(&("deep.on".into(), "Boolean".into())));
        assert!(types.contains(&("list".into(), "Utf8".into())));
        let mut m = meta();
        m.params = cols;
        assert!(matches!(
            params_batch(&m, &json!({"lr": "fast"})),
            Err(ExpError::ParamTypeConflict { .. })
        ));
        // A null takes the type the store already knows.
        let (batch, _) = params_batch(&m, &json!({"lr": null})).unwrap();
        assert_eq!(batch.column(0).data_type(), &DataType::Float64);
        assert_eq!(batch.column(0).null_count(), 1);
    }
}
