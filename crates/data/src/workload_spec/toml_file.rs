//! The `.toml` workload file: weighted templates whose `sql` uses the template language
//! (`template`) and whose typed parameters draw values (`params`); parsing with errors that
//! name file and line, checking every template, and drawing a deterministic query stream.

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

use super::WorkloadFileError;
use super::params::{Drawn, ParamSpec, Sampler, compile};
use super::template::SqlTemplate;
use crate::sampling::Weighted;
use dbopt_core::text::one_line;

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

/// A template checked and ready to render.
#[derive(Debug, Clone)]
struct Compiled {
    name: String,
    sql: SqlTemplate,
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
            let sql = SqlTemplate::parse(&t.sql).map_err(err)?;
            sql.check_params(&t.params).map_err(err)?;
            let mut params = BTreeMap::new();
            for (name, spec) in &t.params {
                let sampler = compile(spec, column_values)
                    .map_err(|m| err(format!("parameter '{name}': {m}")))?;
                params.insert(name.clone(), sampler);
            }
            templates.push(Compiled {
                name: t.name.clone(),
                sql,
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
        let drawn: BTreeMap<&str, Drawn> = t
            .params
            .iter()
            .map(|(n, s)| (n.as_str(), s.draw(&mut self.rng)))
            .collect();
        let sql = t.sql.render(&self.table, &drawn);
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
