//! User workload files: a `.sql` file of concrete queries, or a `.toml` file of weighted
//! templates with typed parameters. Pure parsing and parameter drawing; the facade reads the
//! file, supplies column values for Zipf parameters, plans and runs the queries.
//!
//! TOML format (see `examples/events_workload.toml`):
//!
//! ```toml
//! [[template]]
//! name = "customer_daily"          # unique; logged as the query's workload
//! weight = 3.0                     # relative frequency [default: 1]
//! sql = "SELECT event_date, count(*) FROM {table} WHERE customer_id = {customer} GROUP BY 1"
//! [template.params]
//! customer = { type = "zipf", column = "customer_id", exponent = 1.1 }
//! ```
//!
//! Placeholders: `{table}` (the table name), `{p}` for a scalar parameter, `{p.start}` and
//! `{p.end}` for a range parameter; `{{` and `}}` are literal braces.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

use crate::sampling::{Weighted, Zipf};

/// A problem in a workload file, with the file and (when known) the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct WorkloadFileError {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl WorkloadFileError {
    /// An error at `line` of `file`.
    pub fn at(file: &str, line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }
}

/// One statement of a `.sql` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlStatement {
    /// 1-based line where the statement starts.
    pub line: usize,
    /// The statement text, trimmed, without its terminating semicolon.
    pub sql: String,
}

/// Splits SQL text into statements at semicolons outside quotes and comments.
///
/// Handles `'...'` strings (with `''`), `"..."` identifiers, `--` line comments and `/* */`
/// block comments; statements that hold only comments are dropped.
pub fn split_sql(text: &str) -> Vec<SqlStatement> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let (mut i, mut line) = (0usize, 1usize);
    let mut current = String::new();
    let mut start_line: Option<usize> = None;
    let mut has_code = false;
    let flush = |current: &mut String,
                 start_line: &mut Option<usize>,
                 has_code: &mut bool,
                 out: &mut Vec<SqlStatement>| {
        if *has_code {
            out.push(SqlStatement {
                line: start_line.unwrap_or(1),
                sql: current.trim().to_string(),
            });
        }
        current.clear();
        *start_line = None;
        *has_code = false;
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '-' if next == Some('-') => {
                while i < chars.len() && chars[i] != '\n' {
                    if has_code {
                        current.push(chars[i]);
                    }
                    i += 1;
                }
                continue;
            }
            '/' if next == Some('*') => {
                let begin = i;
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i = (i + 2).min(chars.len());
                if has_code {
                    current.extend(&chars[begin..i]);
                }
                continue;
            }
            '\'' | '"' => {
                if start_line.is_none() {
                    start_line = Some(line);
                }
                has_code = true;
                current.push(c);
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    current.push(d);
                    i += 1;
                    if d == '\n' {
                        line += 1;
                    }
                    if d == c {
                        if chars.get(i) == Some(&c) {
                            current.push(c);
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
                continue;
            }
            ';' => {
                flush(&mut current, &mut start_line, &mut has_code, &mut out);
                i += 1;
                continue;
            }
            '\n' => line += 1,
            c if !c.is_whitespace() => {
                if start_line.is_none() {
                    start_line = Some(line);
                }
                has_code = true;
            }
            _ => {}
        }
        if has_code {
            current.push(c);
        }
        i += 1;
    }
    flush(&mut current, &mut start_line, &mut has_code, &mut out);
    out
}

/// A parsed `.toml` workload: weighted templates with typed parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateFile {
    /// The templates, drawn by weight.
    #[serde(rename = "template", default)]
    pub templates: Vec<QueryTemplate>,
}

/// One weighted query template.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryTemplate {
    /// Unique name, logged as the query's workload.
    pub name: String,
    /// Relative frequency (positive).
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// SQL with `{table}`, `{param}`, `{param.start}`, `{param.end}` placeholders.
    pub sql: String,
    /// The parameters by name.
    #[serde(default)]
    pub params: BTreeMap<String, ParamSpec>,
}

fn default_weight() -> f64 {
    1.0
}

/// A typed parameter of a template.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ParamSpec {
    /// A uniform integer in `min..=max`.
    Int {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// A uniform float in `min..max`, rendered with `decimals` digits [default: 2].
    Float {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
        /// Digits after the point.
        #[serde(default = "default_decimals")]
        decimals: usize,
    },
    /// One of `values` (strings are quoted, numbers are not), uniformly or by `weights`.
    Choice {
        /// The values.
        values: Vec<toml::Value>,
        /// Optional weights, one per value.
        #[serde(default)]
        weights: Option<Vec<f64>>,
    },
    /// A half-open date range `[start, end)` of `width` days ("7d" or "1d..31d") inside
    /// `[from, to]`; placeholders `{p.start}` and `{p.end}` render `DATE '...'`.
    DateRange {
        /// First day a range may start on, `YYYY-MM-DD`.
        from: String,
        /// Last day a range may end on, `YYYY-MM-DD`.
        to: String,
        /// Width, e.g. "7d" or "1d..31d".
        width: String,
    },
    /// A half-open timestamp range of `width` ("90m", "6h", "1h..6h", "2d") inside
    /// `[from, to]`, aligned to minutes; renders `TIMESTAMP '...'`.
    TimestampRange {
        /// Earliest start, `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS`.
        from: String,
        /// Latest end, same format.
        to: String,
        /// Width, e.g. "6h" or "15m..6h".
        width: String,
    },
    /// A value of `column` of the table; the most frequent values are the likeliest
    /// (Zipf over values ranked by frequency).
    Zipf {
        /// The column the values come from.
        column: String,
        /// Zipf exponent [default: 1.1].
        #[serde(default = "default_exponent")]
        exponent: f64,
        /// How many of the most frequent values to draw from [default: 1000].
        #[serde(default = "default_max_values")]
        max_values: usize,
    },
}

fn default_decimals() -> usize {
    2
}
fn default_exponent() -> f64 {
    1.1
}
fn default_max_values() -> usize {
    1000
}

impl ParamSpec {
    /// True for parameters used as `{p.start}` / `{p.end}`.
    pub fn is_range(&self) -> bool {
        matches!(self, Self::DateRange { .. } | Self::TimestampRange { .. })
    }
}

/// One piece of a template's SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Table,
    Param(String),
    Start(String),
    End(String),
}

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

/// A width: a fixed number of minutes or an inclusive range of them.
fn parse_width(text: &str, unit_days_only: bool) -> Result<(i64, i64), String> {
    let one = |t: &str| -> Result<i64, String> {
        let t = t.trim();
        let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
        let n: i64 = num.parse().map_err(|_| {
            format!("width '{text}' is not valid: write e.g. \"7d\", \"6h\", \"90m\" or \"1h..6h\"")
        })?;
        // Checked: "99999999999999999d" is a bad width, not an overflow panic.
        let too_big = || format!("width '{text}' is too large: keep it within the from..to span");
        let minutes = match unit.trim() {
            "d" => n.checked_mul(24 * 60).ok_or_else(too_big)?,
            "h" if !unit_days_only => n.checked_mul(60).ok_or_else(too_big)?,
            "m" if !unit_days_only => n,
            _ if unit_days_only => {
                return Err(format!(
                    "width '{text}' of a date range must be in days: write e.g. \"7d\" or \"1d..31d\""
                ));
            }
            _ => {
                return Err(format!(
                    "width '{text}' is not valid: write e.g. \"7d\", \"6h\", \"90m\" or \"1h..6h\""
                ));
            }
        };
        Ok(minutes)
    };
    let (lo, hi) = match text.split_once("..") {
        Some((a, b)) => (one(a)?, one(b)?),
        None => {
            let w = one(text)?;
            (w, w)
        }
    };
    if lo <= 0 || hi < lo {
        return Err(format!(
            "width '{text}' must be positive and its range ascending"
        ));
    }
    Ok((lo, hi))
}

fn parse_day(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("date '{text}' is not valid: write YYYY-MM-DD"))
}

fn parse_ts(text: &str) -> Result<NaiveDateTime, String> {
    let t = text.trim();
    NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| parse_day(t).map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists")))
        .map_err(|_| format!("timestamp '{text}' is not valid: write YYYY-MM-DD HH:MM:SS"))
}

/// A value as a SQL literal: strings quoted (with `''`), numbers and booleans as written.
pub fn sql_literal(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(quote_string(s)),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Datetime(d) => Ok(format!("TIMESTAMP '{d}'")),
        other => Err(format!(
            "choice value {other} is not a string, number or boolean"
        )),
    }
}

/// `text` as a SQL string literal.
pub fn quote_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A parameter ready to draw from.
#[derive(Debug, Clone)]
enum Sampler {
    Int(i64, i64),
    Float(f64, f64, usize),
    Choice(Vec<String>, Weighted),
    Date {
        from: NaiveDate,
        days: i64,
        width: (i64, i64),
    },
    Timestamp {
        from: NaiveDateTime,
        minutes: i64,
        width: (i64, i64),
    },
    Zipf(Vec<String>, Zipf),
}

/// A drawn value: one literal or a range's start and end.
#[derive(Debug, Clone)]
enum Drawn {
    One(String),
    Range(String, String),
}

impl Sampler {
    fn draw(&self, rng: &mut StdRng) -> Drawn {
        match self {
            Sampler::Int(lo, hi) => Drawn::One(rng.random_range(*lo..=*hi).to_string()),
            Sampler::Float(lo, hi, d) => {
                let v = if hi > lo {
                    rng.random_range(*lo..*hi)
                } else {
                    *lo
                };
                Drawn::One(format!("{v:.d$}", d = *d))
            }
            Sampler::Choice(values, w) => Drawn::One(values[w.sample(rng)].clone()),
            Sampler::Date { from, days, width } => {
                let w = rng.random_range(width.0..=width.1) / (24 * 60);
                let start = rng.random_range(0..=(*days - w).max(0));
                let s = *from + TimeDelta::days(start);
                let e = s + TimeDelta::days(w);
                Drawn::Range(
                    format!("DATE '{}'", s.format("%Y-%m-%d")),
                    format!("DATE '{}'", e.format("%Y-%m-%d")),
                )
            }
            Sampler::Timestamp {
                from,
                minutes,
                width,
            } => {
                let w = rng.random_range(width.0..=width.1);
                let start = rng.random_range(0..=(*minutes - w).max(0));
                let s = *from + TimeDelta::minutes(start);
                let e = s + TimeDelta::minutes(w);
                let f = "%Y-%m-%d %H:%M:%S";
                Drawn::Range(
                    format!("TIMESTAMP '{}'", s.format(f)),
                    format!("TIMESTAMP '{}'", e.format(f)),
                )
            }
            Sampler::Zipf(values, z) => {
                Drawn::One(values[(z.sample(rng) - 1) as usize % values.len()].clone())
            }
        }
    }
}

/// A template checked and ready to render.
#[derive(Debug, Clone)]
struct Compiled {
    name: String,
    pieces: Vec<Piece>,
    params: BTreeMap<String, Sampler>,
}

/// One drawn query of a template workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawnQuery {
    /// The template's name.
    pub template: String,
    /// The rendered SQL.
    pub sql: String,
}

/// Parses TOML text into a template file; errors carry the file and line.
pub fn parse_template_file(file: &str, text: &str) -> Result<TemplateFile, WorkloadFileError> {
    let parsed: TemplateFile = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        WorkloadFileError::at(file, line, one_line(e.message()))
    })?;
    if parsed.templates.is_empty() {
        return Err(WorkloadFileError::at(
            file,
            None,
            "no templates: add at least one [[template]] with name and sql",
        ));
    }
    let mut names = BTreeSet::new();
    for t in &parsed.templates {
        let line = line_of(text, &format!("\"{}\"", t.name));
        if !names.insert(t.name.as_str()) {
            return Err(WorkloadFileError::at(
                file,
                line,
                format!(
                    "template name '{}' is used twice: names must be unique",
                    t.name
                ),
            ));
        }
        if !(t.weight.is_finite() && t.weight > 0.0) {
            return Err(WorkloadFileError::at(
                file,
                line,
                format!(
                    "template '{}' has weight {}: use a positive number",
                    t.name, t.weight
                ),
            ));
        }
    }
    Ok(parsed)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first line of `text` containing `needle` (to point errors at a template).
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

impl TemplateFile {
    /// Columns that Zipf parameters draw from (the facade loads their values).
    pub fn zipf_columns(&self) -> BTreeSet<String> {
        self.templates
            .iter()
            .flat_map(|t| t.params.values())
            .filter_map(|p| match p {
                ParamSpec::Zipf { column, .. } => Some(column.clone()),
                _ => None,
            })
            .collect()
    }

    /// The largest `max_values` any Zipf parameter asks of `column`.
    pub fn zipf_max_values(&self, column: &str) -> usize {
        self.templates
            .iter()
            .flat_map(|t| t.params.values())
            .filter_map(|p| match p {
                ParamSpec::Zipf {
                    column: c,
                    max_values,
                    ..
                } if c == column => Some(*max_values),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }
}

/// A deterministic stream of queries drawn from a template file.
#[derive(Debug, Clone)]
pub struct TemplateWorkload {
    table: String,
    templates: Vec<Compiled>,
    weights: Weighted,
    rng: StdRng,
}

impl TemplateWorkload {
    /// Checks every template (placeholders, parameter types, ranges) and prepares samplers.
    ///
    /// `column_values` holds, per Zipf column, its values as SQL literals, most frequent
    /// first. `text` is the file's text, used to point errors at a line.
    pub fn new(
        file: &str,
        text: &str,
        parsed: &TemplateFile,
        table: &str,
        column_values: &BTreeMap<String, Vec<String>>,
        seed: u64,
    ) -> Result<Self, WorkloadFileError> {
        let mut templates = Vec::new();
        for t in &parsed.templates {
            let line = line_of(text, &format!("\"{}\"", t.name));
            let err = |m: String| {
                WorkloadFileError::at(file, line, format!("template '{}': {m}", t.name))
            };
            let pieces = parse_placeholders(&t.sql).map_err(err)?;
            let mut used = BTreeSet::new();
            for piece in &pieces {
                let (name, range) = match piece {
                    Piece::Param(p) => (p, false),
                    Piece::Start(p) | Piece::End(p) => (p, true),
                    _ => continue,
                };
                let Some(spec) = t.params.get(name) else {
                    let known: Vec<&str> = t.params.keys().map(String::as_str).collect();
                    return Err(err(format!(
                        "unknown parameter '{name}' in sql: define it under [template.params] (defined: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    )));
                };
                if spec.is_range() != range {
                    return Err(err(if range {
                        format!("parameter '{name}' is not a range: write {{{name}}}")
                    } else {
                        format!(
                            "parameter '{name}' is a range: write {{{name}.start}} and {{{name}.end}}"
                        )
                    }));
                }
                used.insert(name.clone());
            }
            if let Some(unused) = t.params.keys().find(|k| !used.contains(*k)) {
                return Err(err(format!(
                    "parameter '{unused}' is never used in sql: remove it or add {{{unused}}}"
                )));
            }
            let mut params = BTreeMap::new();
            for (name, spec) in &t.params {
                let sampler = compile(spec, column_values)
                    .map_err(|m| err(format!("parameter '{name}': {m}")))?;
                params.insert(name.clone(), sampler);
            }
            templates.push(Compiled {
                name: t.name.clone(),
                pieces,
                params,
            });
        }
        Ok(Self {
            table: table.to_string(),
            weights: Weighted::from_weights(parsed.templates.iter().map(|t| t.weight)),
            templates,
            rng: StdRng::seed_from_u64(seed),
        })
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    /// True when there is no template (never, once built).
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// Renders template `index` once with freshly drawn parameters.
    pub fn render(&mut self, index: usize) -> DrawnQuery {
        let t = &self.templates[index];
        let drawn: BTreeMap<&String, Drawn> = t
            .params
            .iter()
            .map(|(n, s)| (n, s.draw(&mut self.rng)))
            .collect();
        let mut sql = String::new();
        for piece in &t.pieces {
            match piece {
                Piece::Text(s) => sql.push_str(s),
                Piece::Table => sql.push_str(&self.table),
                Piece::Param(p) | Piece::Start(p) | Piece::End(p) => match (&drawn[p], piece) {
                    (Drawn::One(v), _) => sql.push_str(v),
                    (Drawn::Range(s, _), Piece::Start(_)) => sql.push_str(s),
                    (Drawn::Range(_, e), _) => sql.push_str(e),
                },
            }
        }
        DrawnQuery {
            template: t.name.clone(),
            sql,
        }
    }

    /// Draws a template by weight and renders it.
    pub fn next_query(&mut self) -> DrawnQuery {
        let index = self.weights.sample(&mut self.rng);
        self.render(index)
    }
}

/// Largest Zipf exponent a file may ask for (beyond it every draw is the top value anyway,
/// and the sampler's arithmetic leaves the range of f64).
const MAX_ZIPF_EXPONENT: f64 = 100.0;

fn compile(
    spec: &ParamSpec,
    column_values: &BTreeMap<String, Vec<String>>,
) -> Result<Sampler, String> {
    Ok(match spec {
        ParamSpec::Int { min, max } => {
            if max < min {
                return Err(format!("max {max} is below min {min}"));
            }
            Sampler::Int(*min, *max)
        }
        ParamSpec::Float { min, max, decimals } => {
            if !(min.is_finite() && max.is_finite() && (max - min).is_finite()) || max < min {
                return Err(format!(
                    "min {min} and max {max} must be finite and ascending"
                ));
            }
            Sampler::Float(*min, *max, (*decimals).min(12))
        }
        ParamSpec::Choice { values, weights } => {
            if values.is_empty() {
                return Err("choice has no values: list at least one".into());
            }
            let literals = values
                .iter()
                .map(sql_literal)
                .collect::<Result<Vec<_>, _>>()?;
            let weights = match weights {
                Some(w) if w.len() != values.len() => {
                    return Err(format!(
                        "{} weights for {} values: give one weight per value",
                        w.len(),
                        values.len()
                    ));
                }
                Some(w)
                    if !w.iter().any(|x| *x > 0.0)
                        || w.iter().any(|x| !x.is_finite() || *x < 0.0) =>
                {
                    return Err("weights must be non-negative with at least one positive".into());
                }
                Some(w) => w.clone(),
                None => vec![1.0; values.len()],
            };
            Sampler::Choice(literals, Weighted::from_weights(weights))
        }
        ParamSpec::DateRange { from, to, width } => {
            let (f, t) = (parse_day(from)?, parse_day(to)?);
            let width = parse_width(width, true)?;
            let days = (t - f).num_days();
            if days < width.0 / (24 * 60) {
                return Err(format!("from {from} to {to} is shorter than the width"));
            }
            // A range never reaches past `to` (and `from + width` cannot overflow a date).
            Sampler::Date {
                from: f,
                days,
                width: (width.0, width.1.min(days.saturating_mul(24 * 60))),
            }
        }
        ParamSpec::TimestampRange { from, to, width } => {
            let (f, t) = (parse_ts(from)?, parse_ts(to)?);
            let width = parse_width(width, false)?;
            let minutes = (t - f).num_minutes();
            if minutes < width.0 {
                return Err(format!("from {from} to {to} is shorter than the width"));
            }
            Sampler::Timestamp {
                from: f,
                minutes,
                width: (width.0, width.1.min(minutes)),
            }
        }
        ParamSpec::Zipf {
            column,
            exponent,
            max_values,
        } => {
            if !(exponent.is_finite() && *exponent > 0.0 && *exponent <= MAX_ZIPF_EXPONENT) {
                return Err(format!(
                    "exponent {exponent} must be positive and at most {MAX_ZIPF_EXPONENT}"
                ));
            }
            let values = column_values.get(column).map(Vec::as_slice).unwrap_or(&[]);
            let values: Vec<String> = values.iter().take((*max_values).max(1)).cloned().collect();
            if values.is_empty() {
                return Err(format!(
                    "column '{column}' has no non-null values to draw from: pick another column"
                ));
            }
            Sampler::Zipf(values.clone(), Zipf::new(values.len() as u64, *exponent))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sql_tracks_lines_quotes_and_comments() {
        let text = "-- header; not a statement\nSELECT 'a;b' FROM t;\n\n/* x;\n y */ SELECT \"c;d\"\nFROM u ;\n  -- trailing comment\n";
        let s = split_sql(text);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].line, 2);
        assert_eq!(s[0].sql, "SELECT 'a;b' FROM t");
        assert_eq!(s[1].line, 5);
        assert!(s[1].sql.contains("\"c;d\""));
        assert_eq!(split_sql("SELECT 'it''s; fine'").len(), 1);
        assert!(split_sql("  ;; -- nothing\n").is_empty());
    }

    const FILE: &str = r#"
[[template]]
name = "by_day"
weight = 2
sql = "SELECT count(*) FROM {table} WHERE d >= {days.start} AND d < {days.end} AND c = {cust} AND k IN ({kind}) AND n > {n} AND a < {amt} AND ts >= {win.start}"
[template.params]
days = { type = "date_range", from = "2025-01-01", to = "2025-12-31", width = "1d..7d" }
cust = { type = "zipf", column = "customer_id" }
kind = { type = "choice", values = ["it's", 3] }
n = { type = "int", min = 1, max = 3 }
amt = { type = "float", min = 1.0, max = 2.0, decimals = 1 }
win = { type = "timestamp_range", from = "2025-01-01", to = "2025-01-02", width = "1h" }

[[template]]
name = "plain"
sql = "SELECT {{x}} FROM {table}"
"#;

    fn values() -> BTreeMap<String, Vec<String>> {
        BTreeMap::from([("customer_id".to_string(), vec!["7".into(), "9".into()])])
    }

    #[test]
    fn templates_render_every_parameter_type() {
        let parsed = parse_template_file("w.toml", FILE).unwrap();
        assert_eq!(
            parsed.zipf_columns(),
            BTreeSet::from(["customer_id".to_string()])
        );
        let mut w = TemplateWorkload::new("w.toml", FILE, &parsed, "events", &values(), 5).unwrap();
        let q = w.render(0);
        assert_eq!(q.template, "by_day");
        assert!(
            q.sql
                .starts_with("SELECT count(*) FROM events WHERE d >= DATE '2025-"),
            "{}",
            q.sql
        );
        assert!(
            q.sql.contains("c = 7") || q.sql.contains("c = 9"),
            "{}",
            q.sql
        );
        assert!(
            q.sql.contains("IN ('it''s')") || q.sql.contains("IN (3)"),
            "{}",
            q.sql
        );
        assert!(q.sql.contains("ts >= TIMESTAMP '2025-01-01 "), "{}", q.sql);
        assert!(!q.sql.contains('{'), "{}", q.sql);
        assert_eq!(w.render(1).sql, "SELECT {x} FROM events");
        let mut a = TemplateWorkload::new("w.toml", FILE, &parsed, "events", &values(), 9).unwrap();
        let mut b = TemplateWorkload::new("w.toml", FILE, &parsed, "events", &values(), 9).unwrap();
        let names: BTreeSet<String> = (0..50)
            .map(|_| {
                let (x, y) = (a.next_query(), b.next_query());
                assert_eq!(x, y, "same seed, same queries");
                x.template
            })
            .collect();
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn date_ranges_respect_width_and_bounds() {
        let s = compile(
            &ParamSpec::DateRange {
                from: "2025-01-01".into(),
                to: "2025-01-10".into(),
                width: "3d".into(),
            },
            &BTreeMap::new(),
        )
        .unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let Drawn::Range(s, e) = s.draw(&mut rng) else {
                panic!()
            };
            let (s, e) = (parse_day(&s[6..16]).unwrap(), parse_day(&e[6..16]).unwrap());
            assert_eq!((e - s).num_days(), 3);
            assert!(s >= parse_day("2025-01-01").unwrap() && e <= parse_day("2025-01-10").unwrap());
        }
    }

    fn new_err(text: &str) -> String {
        let parsed = match parse_template_file("w.toml", text) {
            Ok(p) => p,
            Err(e) => return e.to_string(),
        };
        TemplateWorkload::new("w.toml", text, &parsed, "t", &values(), 1)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let e = new_err("[[template]]\nname = \"a\"\nsql = \"SELECT 1\nweight = 2\n");
        assert!(e.starts_with("w.toml:3:"), "{e}");
        let e = new_err("[[template]]\nname = \"a\"\nsql = \"SELECT {nope}\"\n");
        assert!(
            e.starts_with("w.toml:2: template 'a': unknown parameter 'nope'"),
            "{e}"
        );
        let e = new_err(
            "[[template]]\nname = \"a\"\nsql = \"SELECT {d}\"\nparams.d = { type = \"date_range\", from = \"2025-01-01\", to = \"2025-02-01\", width = \"2d\" }\n",
        );
        assert!(e.contains("is a range"), "{e}");
        let e = new_err(
            "[[template]]\nname = \"a\"\nsql = \"SELECT {n}\"\nparams.n = { type = \"integer\", min = 1, max = 2 }\n",
        );
        assert!(
            e.starts_with("w.toml:4:") && e.contains("unknown variant"),
            "{e}"
        );
        let e = new_err(
            "[[template]]\nname = \"a\"\nsql = \"SELECT {n}\"\nparams.n = { type = \"int\", min = 3, max = 2 }\n",
        );
        assert!(e.contains("max 2 is below min 3"), "{e}");
        let e = new_err(
            "[[template]]\nname = \"a\"\nsql = \"SELECT {z}\"\nparams.z = { type = \"zipf\", column = \"other\" }\n",
        );
        assert!(e.contains("column 'other' has no non-null values"), "{e}");
        let e = new_err("[[template]]\nname = \"a\"\nsql = \"SELECT 1\"\nbogus = 1\n");
        assert!(e.contains("unknown field `bogus`"), "{e}");
        let e = new_err("# empty\n");
        assert!(e.contains("no templates"), "{e}");
        let e = new_err("[[template]]\nname = \"a\"\nsql = \"SELECT {t.middle}\"\n");
        assert!(e.contains("not valid"), "{e}");
        assert!(parse_width("5h", true).is_err());
        assert_eq!(parse_width("1h..2d", false).unwrap(), (60, 2880));
    }
}
