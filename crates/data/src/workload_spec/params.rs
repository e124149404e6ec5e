//! Typed template parameters: how a `[template.params]` entry is written (`ParamSpec`), the
//! sampler it compiles to after its bounds are checked, and the SQL literals it draws.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use rand::Rng;
use rand::rngs::StdRng;
use serde::Deserialize;
use std::collections::BTreeMap;

use crate::sampling::{Weighted, Zipf};

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

/// A width: a fixed number of minutes or an inclusive range of them.
pub(super) fn parse_width(text: &str, unit_days_only: bool) -> Result<(i64, i64), String> {
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
pub(super) enum Sampler {
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
pub(super) enum Drawn {
    /// A scalar parameter's literal.
    One(String),
    /// A range parameter's start and end literals.
    Range(String, String),
}

impl Sampler {
    /// Draws one value.
    pub(super) fn draw(&self, rng: &mut StdRng) -> Drawn {
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

/// Largest Zipf exponent a file may ask for (beyond it every draw is the top value anyway,
/// and the sampler's arithmetic leaves the range of f64).
const MAX_ZIPF_EXPONENT: f64 = 100.0;

/// Checks a parameter's bounds and prepares its sampler (`column_values`: per Zipf column,
/// its values as SQL literals, most frequent first).
pub(super) fn compile(
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
    use rand::SeedableRng;

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

    #[test]
    fn widths_are_minutes_and_date_ranges_take_days_only() {
        assert!(parse_width("5h", true).is_err());
        assert_eq!(parse_width("1h..2d", false).unwrap(), (60, 2880));
        assert_eq!(parse_width("90m", false).unwrap(), (90, 90));
        assert!(parse_width("99999999999999999d", false).is_err());
        assert!(parse_width("2d..1d", false).is_err());
    }

    #[test]
    fn literals_quote_strings_and_keep_numbers() {
        assert_eq!(quote_string("it's"), "'it''s'");
        assert_eq!(sql_literal(&toml::Value::Integer(3)).unwrap(), "3");
        assert_eq!(
            sql_literal(&toml::Value::String("a'b".into())).unwrap(),
            "'a''b'"
        );
        assert!(sql_literal(&toml::Value::Array(vec![])).is_err());
    }
}
