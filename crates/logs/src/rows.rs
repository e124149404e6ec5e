//! Records of a log as JSON objects, whatever the encoding: JSON lines and arrays as they
//! are, CSV and TSV rows keyed by their header (values as text, `\N` as null).

use crate::{BadLine, Encoding, LogError};
use serde_json::{Map, Value};

/// One record: field name -> value.
pub(crate) type Row = Map<String, Value>;

/// A record with its 1-based line, or the line that is not one.
pub(crate) type RowResult = Result<(usize, Row), BadLine>;

/// The encoding of `text`, from its first non-blank character and its header line.
pub(crate) fn encoding(text: &str) -> Option<Encoding> {
    let first = text.lines().find(|l| !l.trim().is_empty())?;
    Some(match first.trim_start().chars().next()? {
        '[' => Encoding::JsonArray,
        '{' => Encoding::JsonLines,
        _ if first.contains('\t') => Encoding::Tsv,
        _ => Encoding::Csv,
    })
}

/// The encoding and field names of the first record, for format detection.
pub(crate) fn first_keys(text: &str) -> Option<(Encoding, Vec<String>)> {
    let encoding = encoding(text)?;
    let keys = match encoding {
        Encoding::JsonLines | Encoding::JsonArray => {
            let (_, row) = rows(text, encoding).ok()?.into_iter().next()?.ok()?;
            row.keys().cloned().collect()
        }
        Encoding::Csv => csv::ReaderBuilder::new()
            .from_reader(text.as_bytes())
            .headers()
            .ok()?
            .iter()
            .map(str::to_string)
            .collect(),
        Encoding::Tsv => header(text)?.split('\t').map(unescape_tsv).collect(),
    };
    Some((encoding, keys))
}

fn header(text: &str) -> Option<&str> {
    text.lines().find(|l| !l.trim().is_empty())
}

/// Every record of `text` in `encoding`, in order.
pub(crate) fn rows(text: &str, encoding: Encoding) -> Result<Vec<RowResult>, LogError> {
    match encoding {
        Encoding::JsonLines => Ok(json_lines(text)),
        Encoding::JsonArray => json_array(text),
        Encoding::Csv => Ok(csv_rows(text)),
        Encoding::Tsv => Ok(tsv_rows(text)),
    }
}

fn json_lines(text: &str) -> Vec<RowResult> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(row)) => Ok((i + 1, row)),
            Ok(_) => Err(bad(i + 1, "not a JSON object")),
            Err(e) => Err(bad(i + 1, &format!("not JSON: {e}"))),
        })
        .collect()
}

/// A JSON array's records, numbered from 1 in array order (the line of the array's n-th
/// object is not kept by the parser).
fn json_array(text: &str) -> Result<Vec<RowResult>, LogError> {
    let values: Vec<Value> = serde_json::from_str(text).map_err(|e| LogError::BadLine {
        format: "JSON array",
        line: e.line(),
        reason: e.to_string(),
    })?;
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(row) => Ok((i + 1, row)),
            _ => Err(bad(i + 1, "array element is not a JSON object")),
        })
        .collect())
}

fn csv_rows(text: &str) -> Vec<RowResult> {
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let names: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_string).collect(),
        Err(e) => return vec![Err(bad(1, &format!("unreadable CSV header: {e}")))],
    };
    reader
        .records()
        .map(|record| {
            let record = record.map_err(|e| {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                bad(line, &format!("not a CSV row: {e}"))
            })?;
            let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
            Ok((line, keyed(&names, record.iter().map(str::to_string))))
        })
        .collect()
}

fn tsv_rows(text: &str) -> Vec<RowResult> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, head)) = lines.next() else {
        return Vec::new();
    };
    let names: Vec<String> = head.split('\t').map(unescape_tsv).collect();
    lines
        .map(|(i, l)| {
            let fields: Vec<&str> = l.split('\t').collect();
            if fields.len() != names.len() {
                return Err(bad(
                    i + 1,
                    &format!(
                        "{} tab-separated fields where the header has {}",
                        fields.len(),
                        names.len()
                    ),
                ));
            }
            Ok((i + 1, keyed(&names, fields.into_iter().map(unescape_tsv))))
        })
        .collect()
}

/// A row of text fields keyed by the header; ClickHouse's `\N` is null.
fn keyed(names: &[String], fields: impl Iterator<Item = String>) -> Row {
    names
        .iter()
        .cloned()
        .zip(fields.map(|f| {
            if f == "\\N" {
                Value::Null
            } else {
                Value::String(f)
            }
        }))
        .collect()
}

/// Undoes ClickHouse's TSV escapes (`\t`, `\n`, `\\`, `\'`, ...); `\N` stays as it is.
fn unescape_tsv(field: &str) -> String {
    if field == "\\N" || !field.contains('\\') {
        return field.to_string();
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn bad(line: usize, reason: &str) -> BadLine {
    BadLine {
        line,
        reason: reason.to_string(),
    }
}

/// A field as text (numbers too); None when absent, null or empty.
pub(crate) fn text(row: &Row, key: &str) -> Option<String> {
    match row.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A field as a count: a JSON number or a numeric string (64-bit integers are quoted by
/// some exports).
pub(crate) fn count(row: &Row, key: &str) -> Option<u64> {
    match row.get(key)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A field holding a list of names: a JSON array, or ClickHouse's text form
/// `['db.a','db.b']` in CSV and TSV.
pub(crate) fn names(row: &Row, key: &str) -> Vec<String> {
    match row.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => array_literal(s),
        _ => Vec::new(),
    }
}

/// `['a','b\'c']` -> `a`, `b'c`.
fn array_literal(text: &str) -> Vec<String> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '\'' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut current)),
            c if quoted => current.push(c),
            _ => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_fields_are_unescaped_and_null_kept() {
        let text = "query\texception\ttables\nSELECT 1\\nFROM t WHERE s = \\'a\\tb\\'\t\\N\t['db.t','db.u']\n";
        let rows = rows(text, Encoding::Tsv).unwrap();
        let (line, row) = rows[0].clone().unwrap();
        assert_eq!(line, 2);
        assert_eq!(text_of(&row, "query"), "SELECT 1\nFROM t WHERE s = 'a\tb'");
        assert_eq!(row["exception"], Value::Null);
        assert_eq!(names(&row, "tables"), vec!["db.t", "db.u"]);
    }

    #[test]
    fn csv_rows_keep_quoted_newlines_and_their_first_line() {
        let text = "query,read_rows\n\"SELECT 1\nFROM t\",\"42\"\n\"SELECT 2\",7\n";
        let rows = rows(text, Encoding::Csv).unwrap();
        let (line, row) = rows[1].clone().unwrap();
        assert_eq!(line, 4);
        assert_eq!(count(&row, "read_rows"), Some(7));
        let (_, first) = rows[0].clone().unwrap();
        assert_eq!(text_of(&first, "query"), "SELECT 1\nFROM t");
        assert_eq!(count(&first, "read_rows"), Some(42));
    }

    #[test]
    fn tsv_row_with_the_wrong_field_count_is_a_bad_line() {
        let rows = rows("a\tb\n1\t2\n3\n", Encoding::Tsv).unwrap();
        assert!(rows[0].is_ok());
        assert_eq!(rows[1].clone().unwrap_err().line, 3);
    }

    #[test]
    fn array_literals_split_on_top_level_commas() {
        assert_eq!(array_literal("['a,b','c']"), vec!["a,b", "c"]);
        assert!(array_literal("[]").is_empty());
    }

    fn text_of(row: &Row, key: &str) -> String {
        text(row, key).unwrap()
    }
}
