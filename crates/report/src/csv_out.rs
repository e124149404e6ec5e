//! CSV output: one header row with the model's JSON field names, raw numbers, empty cells for
//! missing values.

use serde::Serialize;

/// Serializes flat records to CSV text.
pub(crate) fn to_csv<T: Serialize>(rows: &[T]) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row)?;
    }
    let bytes = writer.into_inner().map_err(|error| error.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
