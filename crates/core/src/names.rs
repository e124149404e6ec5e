//! Validated table names: the only names allowed to become directories under DATA_DIR.

use crate::CoreError;
use std::fmt;

/// A table name matching `[A-Za-z_][A-Za-z0-9_]{0,63}`, safe as a directory and SQL identifier.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct TableName(String);

impl TableName {
    /// Validates `name` and wraps it.
    pub fn new(name: &str) -> Result<Self, CoreError> {
        let mut chars = name.chars();
        let valid_first = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_');
        let valid_rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid_first && valid_rest && name.len() <= 64 {
            Ok(Self(name.to_string()))
        } else {
            Err(CoreError::InvalidTableName(name.to_string()))
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TableName {
    type Error = CoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<TableName> for String {
    fn from(value: TableName) -> Self {
        value.0
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_identifiers() {
        for ok in ["events", "_t", "T1", "a_b_c", &"x".repeat(64)] {
            assert!(TableName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_paths_and_bad_identifiers() {
        for bad in [
            "",
            "1abc",
            "../etc",
            "a/b",
            "a.b",
            "a b",
            "événement",
            &"x".repeat(65),
            "a;drop",
        ] {
            assert!(TableName::new(bad).is_err(), "{bad}");
        }
    }
}
