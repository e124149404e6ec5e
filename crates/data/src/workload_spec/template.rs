//! The template language of a `.toml` workload's `sql`: `{table}`, `{p}` for a scalar
//! parameter, `{p.start}` and `{p.end}` for a range parameter, `{{` and `}}` for literal
//! braces. Parsing, checking the placeholders against the declared parameters, rendering.

use std::collections::{BTreeMap, BTreeSet};

use super::params::{Drawn, ParamSpec};

/// A template's SQL cut into text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SqlTemplate {
    pieces: Vec<Piece>,
}

impl SqlTemplate {
    /// Parses the placeholders of `sql`; the error says what is wrong and how to fix it.
    pub(super) fn parse(sql: &str) -> Result<Self, String> {
        Ok(Self {
            pieces: parse_placeholders(sql)?,
        })
    }

    /// Checks the placeholders against `params`: each names a declared parameter of its kind
    /// (scalar or range), and each parameter is used.
    pub(super) fn check_params(&self, params: &BTreeMap<String, ParamSpec>) -> Result<(), String> {
        let mut used = BTreeSet::new();
        for piece in &self.pieces {
            let (name, range) = match piece {
                Piece::Param(p) => (p, false),
                Piece::Start(p) | Piece::End(p) => (p, true),
                _ => continue,
            };
            let Some(spec) = params.get(name) else {
                let known: Vec<&str> = params.keys().map(String::as_str).collect();
                return Err(format!(
                    "unknown parameter '{name}' in sql: define it under [template.params] (defined: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            };
            if spec.is_range() != range {
                return Err(if range {
                    format!("parameter '{name}' is not a range: write {{{name}}}")
                } else {
                    format!(
                        "parameter '{name}' is a range: write {{{name}.start}} and {{{name}.end}}"
                    )
                });
            }
            used.insert(name.as_str());
        }
        if let Some(unused) = params.keys().find(|k| !used.contains(k.as_str())) {
            return Err(format!(
                "parameter '{unused}' is never used in sql: remove it or add {{{unused}}}"
            ));
        }
        Ok(())
    }

    /// The SQL with `table` and the `drawn` values in place of the placeholders (a
    /// placeholder without a drawn value, which `check_params` rules out, renders empty).
    pub(super) fn render(&self, table: &str, drawn: &BTreeMap<&str, Drawn>) -> String {
        let mut sql = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(s) => sql.push_str(s),
                Piece::Table => sql.push_str(table),
                Piece::Param(p) | Piece::Start(p) | Piece::End(p) => {
                    match (drawn.get(p.as_str()), piece) {
                        (Some(Drawn::One(v)), _) => sql.push_str(v),
                        (Some(Drawn::Range(s, _)), Piece::Start(_)) => sql.push_str(s),
                        (Some(Drawn::Range(_, e)), _) => sql.push_str(e),
                        (None, _) => {}
                    }
                }
            }
        }
        sql
    }
}

/// One piece of a template's SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Text copied as written (`{{` and `}}` already turned into braces).
    Text(String),
    /// `{table}`.
    Table,
    /// `{p}`: a scalar parameter.
    Param(String),
    /// `{p.start}`: the start of a range parameter.
    Start(String),
    /// `{p.end}`: the end of a range parameter.
    End(String),
}

/// Cuts `sql` into text and placeholders.
fn parse_placeholders(sql: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(ch) => name.push(ch),
                        None => return Err(format!("unclosed placeholder '{{{name}': add '}}'")),
                    }
                }
                pieces.push(Piece::Text(std::mem::take(&mut text)));
                let name = name.trim();
                pieces.push(match name.split_once('.') {
                    _ if name == "table" => Piece::Table,
                    Some((p, "start")) => Piece::Start(p.to_string()),
                    Some((p, "end")) => Piece::End(p.to_string()),
                    Some(_) => {
                        return Err(format!(
                            "placeholder '{{{name}}}' is not valid: use {{param}}, {{param.start}} or {{param.end}}"
                        ));
                    }
                    None => Piece::Param(name.to_string()),
                });
            }
            '}' => return Err("stray '}': write '}}' for a literal brace".into()),
            other => text.push(other),
        }
    }
    pieces.push(Piece::Text(text));
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int() -> ParamSpec {
        ParamSpec::Int { min: 1, max: 2 }
    }

    fn dates() -> ParamSpec {
        ParamSpec::DateRange {
            from: "2025-01-01".into(),
            to: "2025-02-01".into(),
            width: "2d".into(),
        }
    }

    #[test]
    fn placeholders_render_with_table_values_and_literal_braces() {
        let t = SqlTemplate::parse(
            "SELECT {{x}} FROM {table} WHERE n = { n } AND d >= {d.start} AND d < {d.end}",
        )
        .unwrap();
        let drawn = BTreeMap::from([
            ("n", Drawn::One("7".into())),
            (
                "d",
                Drawn::Range("DATE '2025-01-03'".into(), "DATE '2025-01-05'".into()),
            ),
        ]);
        assert_eq!(
            t.render("events", &drawn),
            "SELECT {x} FROM events WHERE n = 7 AND d >= DATE '2025-01-03' AND d < DATE '2025-01-05'"
        );
    }

    #[test]
    fn bad_placeholders_say_how_to_fix_them() {
        assert_eq!(
            SqlTemplate::parse("SELECT {n").unwrap_err(),
            "unclosed placeholder '{n': add '}'"
        );
        assert_eq!(
            SqlTemplate::parse("SELECT n}").unwrap_err(),
            "stray '}': write '}}' for a literal brace"
        );
        assert!(
            SqlTemplate::parse("SELECT {t.middle}")
                .unwrap_err()
                .contains("use {param}, {param.start} or {param.end}")
        );
    }

    #[test]
    fn placeholders_and_parameters_must_agree() {
        let params = BTreeMap::from([("n".to_string(), int()), ("d".to_string(), dates())]);
        let check = |sql: &str| SqlTemplate::parse(sql).unwrap().check_params(&params);
        assert_eq!(check("{n} {d.start} {d.end}"), Ok(()));
        assert_eq!(
            check("{n} {d.start} {m}").unwrap_err(),
            "unknown parameter 'm' in sql: define it under [template.params] (defined: d, n)"
        );
        assert!(
            check("{n.start} {d.end}")
                .unwrap_err()
                .contains("'n' is not a range")
        );
        assert!(check("{n} {d}").unwrap_err().contains("'d' is a range"));
        assert_eq!(
            check("{n}").unwrap_err(),
            "parameter 'd' is never used in sql: remove it or add {d}"
        );
    }
}
