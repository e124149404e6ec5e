//! Timestamps and durations as the engines write them.
//!
//! ClickHouse exports `event_time` without a zone (the server's zone), so a [`Zone`] says how
//! to read naive times; Trino writes zoned times (`2026-11-30 10:00:00.123 UTC`, ISO 8601 with
//! an offset) and durations as seconds, ISO 8601 (`PT1.5S`) or airlift units (`1.50s`).

use chrono::{DateTime, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde_json::Value;

/// The zone naive timestamps are read in (`--timezone`, default UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(Tz);

impl Default for Zone {
    fn default() -> Self {
        Zone(Tz::UTC)
    }
}

impl Zone {
    /// Parses an IANA zone name such as `UTC` or `Europe/Berlin`.
    pub fn parse(name: &str) -> Option<Zone> {
        name.parse::<Tz>().ok().map(Zone)
    }

    /// The zone's name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// Milliseconds since the epoch of a wall-clock time in this zone (the earlier instant
    /// when a clock change makes it ambiguous; None when it does not exist).
    fn naive_ms(&self, t: NaiveDateTime) -> Option<i64> {
        self.0
            .from_local_datetime(&t)
            .earliest()
            .map(|d| d.timestamp_millis())
    }
}

const NAIVE_FORMATS: [&str; 4] = [
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
];

/// Milliseconds since the epoch of a timestamp written as text or as epoch seconds.
///
/// Accepted: RFC 3339 (`2026-11-30T10:00:00.5Z`, `+02:00`), a naive time read in `zone`
/// (`2026-11-30 10:00:00[.fff]`), a naive time followed by a zone name (`... UTC`,
/// `... Europe/Berlin`), and a number of seconds since the epoch (Jackson's default).
pub fn timestamp_ms(value: &Value, zone: &Zone) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_f64().map(|s| (s * 1000.0).round() as i64),
        Value::String(s) => text_timestamp_ms(s.trim(), zone),
        _ => None,
    }
}

fn text_timestamp_ms(text: &str, zone: &Zone) -> Option<i64> {
    if text.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    if let Some(t) = naive(text) {
        return zone.naive_ms(t);
    }
    // `2026-11-30 10:00:00.123 UTC` (Trino's timestamp with time zone).
    let (time, name) = text.rsplit_once(' ')?;
    let t = naive(time)?;
    if let Ok(offset) =
        DateTime::parse_from_str(&format!("{time} {name}"), "%Y-%m-%d %H:%M:%S%.f %:z")
    {
        return Some(offset.timestamp_millis());
    }
    Zone::parse(name)?.naive_ms(t)
}

fn naive(text: &str) -> Option<NaiveDateTime> {
    NAIVE_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
}

/// Milliseconds of a duration written as seconds (a number), ISO 8601 (`PT1M2.5S`), or a
/// number with a unit (`1.50s`, `150.00ms`, `2.00m`, `12us`, `3ns`, `1h`, `1d`).
pub fn duration_ms(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64().map(|s| s * 1000.0),
        Value::String(s) => text_duration_ms(s.trim()),
        _ => None,
    }
}

fn text_duration_ms(text: &str) -> Option<f64> {
    if let Some(iso) = text.strip_prefix("PT").or_else(|| text.strip_prefix("pt")) {
        return iso_duration_ms(iso);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let ms_per_unit = match unit.trim() {
        "" | "s" => 1000.0,
        "ns" => 1e-6,
        "us" => 1e-3,
        "ms" => 1.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    Some(value * ms_per_unit)
}

/// `1H2M3.5S` (the part after `PT`).
fn iso_duration_ms(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut number = String::new();
    for c in text.chars() {
        match c {
            '0'..='9' | '.' | '-' => number.push(c),
            'H' | 'h' | 'M' | 'm' | 'S' | 's' => {
                let v: f64 = number.parse().ok()?;
                number.clear();
                total += v * match c.to_ascii_uppercase() {
                    'H' => 3_600_000.0,
                    'M' => 60_000.0,
                    _ => 1000.0,
                };
            }
            _ => return None,
        }
    }
    number.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: i64 = 1_796_032_800_000; // 2026-11-30 10:00:00 UTC

    #[test]
    fn timestamps_in_every_written_form() {
        let utc = Zone::default();
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let cases = [
            (json!("2026-11-30 10:00:00"), utc, T0),
            (json!("2026-11-30 11:00:00"), berlin, T0),
            (json!("2026-11-30T10:00:00.250Z"), berlin, T0 + 250),
            (json!("2026-11-30T12:00:00+02:00"), utc, T0),
            (json!("2026-11-30 10:00:00.123 UTC"), berlin, T0 + 123),
            (json!("2026-11-30 11:00:00.000 Europe/Berlin"), utc, T0),
            (json!(1_796_032_800.5), utc, T0 + 500),
        ];
        for (value, zone, want) in cases {
            assert_eq!(timestamp_ms(&value, &zone), Some(want), "{value}");
        }
        assert_eq!(timestamp_ms(&json!("yesterday"), &utc), None);
        assert_eq!(timestamp_ms(&json!(""), &utc), None);
        assert!(Zone::parse("Mars/Olympus").is_none());
    }

    #[test]
    fn durations_in_every_written_form() {
        let cases = [
            (json!(1.5), 1500.0),
            (json!("PT1.5S"), 1500.0),
            (json!("PT1M2S"), 62_000.0),
            (json!("1.50s"), 1500.0),
            (json!("150.00ms"), 150.0),
            (json!("2.00m"), 120_000.0),
            (json!("250us"), 0.25),
        ];
        for (value, want) in cases {
            let got = duration_ms(&value).unwrap();
            assert!((got - want).abs() < 1e-9, "{value}: {got}");
        }
        assert_eq!(duration_ms(&json!("fast")), None);
        assert_eq!(duration_ms(&json!("PT1X")), None);
    }
}
