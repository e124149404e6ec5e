//! The canonical form of a parameter set and the grid id derived from it (docs/grid-ids.md).
//!
//! Steps, in order: drop volatile keys at every depth, drop the top-level `seed`, write RFC 8785
//! (JCS) text, hash it with SHA-256; the id is a prefix of the hex hash.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

use crate::ExpError;

/// Hex characters of a grid id unless the store asks for more.
pub const DEFAULT_ID_CHARS: usize = 8;
/// Hex characters of a whole SHA-256, the longest possible id.
pub const MAX_ID_CHARS: usize = 64;
/// The top-level key holding the seed, which partitions runs below a grid and is no parameter.
pub const SEED_KEY: &str = "seed";

/// Keys that are volatile whole (compared in ASCII lowercase).
const VOLATILE_KEYS: [&str; 10] = [
    "timestamp",
    "datetime",
    "hostname",
    "host",
    "pid",
    "cwd",
    "workdir",
    "tmpdir",
    "path",
    "dir",
];
/// Suffixes that make a key volatile (compared in ASCII lowercase).
const VOLATILE_SUFFIXES: [&str; 6] = ["_at", "_timestamp", "_path", "_dir", "_host", "_hostname"];
/// The largest integer magnitude every double (and so every JSON reader) holds exactly.
const MAX_EXACT_INTEGER: u64 = 1 << 53;
/// ECMAScript writes a number without exponent while its decimal exponent is at most this.
const ES_MAX_PLAIN_EXPONENT: i32 = 21;
/// ... and at least this (0.000001 is plain, 1e-7 is not).
const ES_MIN_PLAIN_EXPONENT: i32 = -5;

/// A parameter set in canonical form, with its hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Canonical {
    /// RFC 8785 text of `params`.
    pub text: String,
    /// SHA-256 of `text`'s UTF-8 bytes, 64 lowercase hex characters.
    pub hash: String,
    /// The parameters with volatile keys and the seed dropped, otherwise as given.
    pub params: Value,
}

impl Canonical {
    /// The grid id: the first `chars` hex characters of the hash (see [`grid_id`]).
    #[must_use]
    pub fn id(&self, chars: usize) -> &str {
        grid_id(&self.hash, chars)
    }
}

/// Drops volatile keys (and `extra_volatile`) at every depth and the top-level seed, then hashes.
pub fn canonicalize(params: &Value, extra_volatile: &[String]) -> Result<Canonical, ExpError> {
    let Value::Object(map) = params else {
        return Err(ExpError::NotAnObject {
            found: json_kind(params),
        });
    };
    let mut kept = strip_object(map, extra_volatile);
    kept.remove(SEED_KEY);
    let params = Value::Object(kept);
    let text = canonical_json(&params)?;
    let hash = sha256_hex(&text);
    Ok(Canonical { text, hash, params })
}

/// RFC 8785 (JSON Canonicalization Scheme) text of any JSON value; nothing is dropped.
pub fn canonical_json(value: &Value) -> Result<String, ExpError> {
    let mut out = String::new();
    write_value(&mut out, value, &mut String::new())?;
    Ok(out)
}

/// Whether a key names something that changes between runs of a grid (a time, a host, a path).
#[must_use]
pub fn is_volatile_key(key: &str) -> bool {
    if key.starts_with('_') {
        return true;
    }
    let lower = key.to_ascii_lowercase();
    VOLATILE_KEYS.contains(&lower.as_str())
        || VOLATILE_SUFFIXES
            .iter()
            .any(|suffix| lower.ends_with(suffix))
}

/// The grid id: the first `chars` characters of a hex hash (`chars` is clamped to 1..=64).
#[must_use]
pub fn grid_id(hash: &str, chars: usize) -> &str {
    let chars = chars.clamp(1, MAX_ID_CHARS);
    hash.get(..chars).unwrap_or(hash)
}

/// SHA-256 of a text's UTF-8 bytes as 64 lowercase hex characters.
#[must_use]
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Removes the top-level `seed` and returns it; a seed that is not a whole number >= 0 is an error.
///
/// A seed may be written as an integer (`42`), a double with an integral value (`42.0`) or a
/// string of ASCII digits (`"42"`). A refused seed stays in `params`.
pub fn take_seed(params: &mut Value) -> Result<Option<u64>, ExpError> {
    let found = json_kind(params);
    let Value::Object(map) = params else {
        return Err(ExpError::NotAnObject { found });
    };
    let Some(raw) = map.get(SEED_KEY) else {
        return Ok(None);
    };
    let seed = seed_value(raw).ok_or_else(|| ExpError::BadSeed {
        value: raw.to_string(),
    })?;
    map.remove(SEED_KEY);
    Ok(Some(seed))
}

/// One column of a grid's one-row parameter table.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// JSON `null`.
    Null,
    /// JSON `true` or `false`.
    Bool(bool),
    /// Any JSON number, as a double.
    Number(f64),
    /// A JSON string.
    Text(String),
    /// An array or an empty object, as its canonical JSON text.
    Json(String),
}

/// A parameter set as columns: nested object keys joined by `.`, sorted by key (byte order).
///
/// Arrays and empty objects become their canonical JSON text ([`ParamValue::Json`]); numbers
/// become doubles. Meant for a canonical parameter set ([`Canonical::params`]); a value that is
/// not an object has no columns.
#[must_use]
pub fn flatten_params(params: &Value) -> Vec<(String, ParamValue)> {
    let mut columns = Vec::new();
    if let Value::Object(map) = params {
        flatten_into(&mut columns, "", map);
    }
    columns.sort_by(|a, b| a.0.cmp(&b.0));
    columns
}

fn flatten_into(columns: &mut Vec<(String, ParamValue)>, prefix: &str, map: &Map<String, Value>) {
    for (key, value) in map {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(inner) if !inner.is_empty() => flatten_into(columns, &name, inner),
            leaf => columns.push((name, leaf_value(leaf))),
        }
    }
}

fn leaf_value(value: &Value) -> ParamValue {
    match value {
        Value::Null => ParamValue::Null,
        Value::Bool(b) => ParamValue::Bool(*b),
        Value::Number(n) => ParamValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => ParamValue::Text(s.clone()),
        // A canonical parameter set always has canonical text; anything else keeps serde's.
        Value::Array(_) | Value::Object(_) => {
            ParamValue::Json(canonical_json(value).unwrap_or_else(|_| value.to_string()))
        }
    }
}

fn strip(value: &Value, extra: &[String]) -> Value {
    match value {
        Value::Object(map) => Value::Object(strip_object(map, extra)),
        Value::Array(items) => Value::Array(items.iter().map(|v| strip(v, extra)).collect()),
        other => other.clone(),
    }
}

fn strip_object(map: &Map<String, Value>, extra: &[String]) -> Map<String, Value> {
    map.iter()
        .filter(|(key, _)| !is_volatile_key(key) && !extra.iter().any(|e| e == *key))
        .map(|(key, value)| (key.clone(), strip(value, extra)))
        .collect()
}

fn seed_value(raw: &Value) -> Option<u64> {
    match raw {
        Value::Number(n) => n.as_u64().or_else(|| {
            let x = n.as_f64()?;
            (x >= 0.0 && x.fract() == 0.0 && x < 2f64.powi(64)).then_some(x as u64)
        }),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Writes `value` as JCS text; `path` names where it is (`a.b[2]`) for errors.
fn write_value(out: &mut String, value: &Value, path: &mut String) -> Result<(), ExpError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_text(n, path)?),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let len = path.len();
                let _ = write!(path, "[{i}]");
                write_value(out, item, path)?;
                path.truncate(len);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            // RFC 8785 3.2.3: keys compare as sequences of UTF-16 code units.
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (key, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                write_value(out, member, path)?;
                path.truncate(len);
            }
            out.push('}');
        }
    }
    Ok(())
}

/// RFC 8785 3.2.2.2: the two-character escapes, `\u00xx` for other controls, the rest literal.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn key_name(path: &str) -> String {
    if path.is_empty() {
        "(top level)".to_owned()
    } else {
        path.to_owned()
    }
}

/// A JSON number's canonical text: integers beyond 2^53 are refused, the rest is a double.
fn number_text(n: &Number, path: &str) -> Result<String, ExpError> {
    let too_large = |value: String| ExpError::IntegerTooLarge {
        key: key_name(path),
        value,
    };
    if let Some(u) = n.as_u64() {
        return if u > MAX_EXACT_INTEGER {
            Err(too_large(u.to_string()))
        } else {
            Ok(u.to_string())
        };
    }
    if let Some(i) = n.as_i64() {
        return if i.unsigned_abs() > MAX_EXACT_INTEGER {
            Err(too_large(i.to_string()))
        } else {
            Ok(i.to_string())
        };
    }
    let x = n.as_f64().unwrap_or(f64::NAN);
    es_number(x).ok_or_else(|| ExpError::NonFinite {
        key: key_name(path),
        value: x.to_string(),
    })
}

/// The shortest digits that read back as `x` (> 0), in Rust's `{:e}` form (`d.ddde-7`).
///
/// When two digit strings of that length are equally close to `x`, ECMAScript takes the even
/// one (1424953923781206.25 -> ...206.2); `{:e}` may take the other, so the length is kept and
/// the digits are rounded exactly (ties to even) whenever that still reads back as `x`.
fn shortest_digits(x: f64) -> String {
    let shortest = format!("{x:e}");
    let significant = shortest
        .split_once('e')
        .map_or(0, |(m, _)| m.replace('.', "").len());
    let rounded = format!(
        "{x:.precision$e}",
        precision = significant.saturating_sub(1)
    );
    if rounded != shortest && rounded.parse::<f64>() == Ok(x) {
        rounded
    } else {
        shortest
    }
}

/// ECMAScript Number.prototype.toString of a double (RFC 8785 3.2.2.3); `None` when not finite.
///
/// [`shortest_digits`] gives the digits (as Rust's `{:e}` does); this places the decimal point as
/// ECMAScript does (ECMA-262, Number::toString, steps 6 to 10).
fn es_number(x: f64) -> Option<String> {
    if !x.is_finite() {
        return None;
    }
    if x == 0.0 {
        return Some("0".to_owned()); // also -0
    }
    let scientific = shortest_digits(x.abs());
    let (mantissa, exponent) = scientific.split_once('e')?;
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // value = 0.DIGITS * 10^n, k digits
    let n = exponent.parse::<i32>().ok()? + 1;
    let k = i32::try_from(digits.len()).ok()?;
    let mut out = String::with_capacity(24);
    if x < 0.0 {
        out.push('-');
    }
    if (k..=ES_MAX_PLAIN_EXPONENT).contains(&n) {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', usize::try_from(n - k).ok()?));
    } else if (1..=ES_MAX_PLAIN_EXPONENT).contains(&n) {
        let (whole, fraction) = digits.split_at(usize::try_from(n).ok()?);
        out.push_str(whole);
        out.push('.');
        out.push_str(fraction);
    } else if (ES_MIN_PLAIN_EXPONENT..=0).contains(&n) {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', usize::try_from(-n).ok()?));
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let e = n - 1;
        let _ = write!(
            out,
            "e{}{}",
            if e < 0 { '-' } else { '+' },
            e.unsigned_abs()
        );
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn canon(text: &str) -> Canonical {
        canonicalize(&parse(text), &[]).unwrap()
    }

    /// RFC 8785, Appendix B: IEEE-754 bits -> ECMAScript text (`None`: not representable).
    const RFC8785_NUMBERS: [(u64, Option<&str>); 26] = [
        (0x0000_0000_0000_0000, Some("0")),
        (0x8000_0000_0000_0000, Some("0")),
        (0x0000_0000_0000_0001, Some("5e-324")),
        (0x8000_0000_0000_0001, Some("-5e-324")),
        (0x7fef_ffff_ffff_ffff, Some("1.7976931348623157e+308")),
        (0xffef_ffff_ffff_ffff, Some("-1.7976931348623157e+308")),
        (0x4340_0000_0000_0000, Some("9007199254740992")),
        (0xc340_0000_0000_0000, Some("-9007199254740992")),
        (0x4430_0000_0000_0000, Some("295147905179352830000")),
        (0x7fff_ffff_ffff_ffff, None),
        (0x7ff0_0000_0000_0000, None),
        (0x44b5_2d02_c7e1_4af5, Some("9.999999999999997e+22")),
        (0x44b5_2d02_c7e1_4af6, Some("1e+23")),
        (0x44b5_2d02_c7e1_4af7, Some("1.0000000000000001e+23")),
        (0x444b_1ae4_d6e2_ef4e, Some("999999999999999700000")),
        (0x444b_1ae4_d6e2_ef4f, Some("999999999999999900000")),
        (0x444b_1ae4_d6e2_ef50, Some("1e+21")),
        (0x3eb0_c6f7_a0b5_ed8c, Some("9.999999999999997e-7")),
        (0x3eb0_c6f7_a0b5_ed8d, Some("0.000001")),
        (0x41b3_de43_5555_5553, Some("333333333.3333332")),
        (0x41b3_de43_5555_5554, Some("333333333.33333325")),
        (0x41b3_de43_5555_5555, Some("333333333.3333333")),
        (0x41b3_de43_5555_5556, Some("333333333.3333334")),
        (0x41b3_de43_5555_5557, Some("333333333.33333343")),
        (0xbecb_f647_612f_3696, Some("-0.0000033333333333333333")),
        (0x4314_3ff3_c1cb_0959, Some("1424953923781206.2")),
    ];

    #[test]
    fn rfc8785_number_table() {
        for (bits, want) in RFC8785_NUMBERS {
            let got = es_number(f64::from_bits(bits));
            assert_eq!(got.as_deref(), want, "{bits:016x}");
        }
        // through a Value too, where it can hold the double
        let v = Value::from(f64::from_bits(0x41b3_de43_5555_5555));
        assert_eq!(canonical_json(&v).unwrap(), "333333333.3333333");
    }

    #[test]
    fn number_forms_from_text() {
        let cases = [
            ("1", "1"),
            ("1.0", "1"),
            ("1.00", "1"),
            ("1e0", "1"),
            ("0.1e1", "1"),
            ("4.50", "4.5"),
            ("2e-3", "0.002"),
            ("1E30", "1e+30"),
            ("333333333.33333329", "333333333.3333333"),
            ("0.000001", "0.000001"),
            ("1e-7", "1e-7"),
            ("1.5e-7", "1.5e-7"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("123456789012345680000", "123456789012345680000"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("-1.5E-10", "-1.5e-10"),
            ("9007199254740992", "9007199254740992"),
            ("-9007199254740992", "-9007199254740992"),
            ("0.000000000000000000000000001", "1e-27"),
            // long decimals read to the nearest double (serde_json's float_roundtrip feature)
            ("33460108283341048.859574890682", "33460108283341050"),
            ("-630909864.869073662585178e-163", "-6.309098648690737e-155"),
            // beyond 64 bits serde_json reads an integer literal as a double
            ("123456789012345678901234", "1.2345678901234569e+23"),
        ];
        for (text, want) in cases {
            assert_eq!(canonical_json(&parse(text)).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn float_forms_hash_alike() {
        let hashes: Vec<String> = ["1", "1.0", "1.00", "1e0", "10e-1"]
            .iter()
            .map(|n| canon(&format!(r#"{{"budget": {n}, "algo": "ucb1"}}"#)).hash)
            .collect();
        assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");
        assert_ne!(canon(r#"{"budget": 1.5, "algo": "ucb1"}"#).hash, hashes[0]);
    }

    #[test]
    fn negative_zero_is_zero() {
        assert_eq!(
            canon(r#"{"x": -0, "y": -0.0, "z": [-0e5]}"#).text,
            r#"{"x":0,"y":0,"z":[0]}"#
        );
        assert_eq!(canonical_json(&Value::from(-0.0_f64)).unwrap(), "0");
    }

    #[test]
    fn integers_beyond_2_pow_53_are_refused() {
        for text in [
            r#"{"n": 9007199254740993}"#,
            r#"{"n": -9007199254740993}"#,
            r#"{"n": 12345678901234567890}"#,
            r#"{"n": -9223372036854775808}"#,
        ] {
            let err = canonicalize(&parse(text), &[]).unwrap_err();
            assert!(
                matches!(err, ExpError::IntegerTooLarge { .. }),
                "{text}: {err}"
            );
        }
        let err = canonicalize(&parse(r#"{"a": {"b": [1, 9007199254740993]}}"#), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "parameter `a.b[1]`: integer 9007199254740993 is beyond 2^53 and would not hash exactly; write it as a string"
        );
        let err = canonical_json(&Value::from(u64::MAX)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("parameter `(top level)`: integer 18446744073709551615")
        );
    }

    #[test]
    fn keys_sort_by_utf16_code_units() {
        // U+E000 is one code unit 0xE000; U+1F600 is the surrogate pair 0xD83D 0xDE00, so it
        // sorts first in UTF-16 though its UTF-8 bytes (and code point) sort last.
        let c = canon(r#"{"\ue000": 1, "\ud83d\ude00": 2}"#);
        assert_eq!(c.text, "{\"\u{1f600}\":2,\"\u{e000}\":1}");
        // RFC 8785 3.2.3
        let c = canon(
            r#"{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
                "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",
                "\u00f6": "Latin Small Letter O With Diaeresis"}"#,
        );
        let order: Vec<&str> = c
            .params
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(order.len(), 7);
        let positions: Vec<usize> = [
            "\r",
            "1",
            "\u{80}",
            "\u{f6}",
            "\u{20ac}",
            "\u{1f600}",
            "\u{fb33}",
        ]
        .iter()
        .map(|k| {
            c.text
                .find(&format!("\"{}\":", k.replace('\r', "\\r")))
                .unwrap()
        })
        .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{}", c.text);
        // ASCII: uppercase before lowercase, shorter prefix first
        assert_eq!(
            canon(r#"{"b": 1, "a": 2, "B": 3, "ab": 4}"#).text,
            r#"{"B":3,"a":2,"ab":4,"b":1}"#
        );
    }

    #[test]
    fn key_order_does_not_matter() {
        let a = canon(r#"{"algo": "ucb1", "grid": {"x": 1, "y": [1, 2]}}"#);
        let b = canon(r#"{"grid": {"y": [1, 2], "x": 1}, "algo": "ucb1"}"#);
        assert_eq!(a, b);
        // array order does
        assert_ne!(
            a.hash,
            canon(r#"{"algo": "ucb1", "grid": {"x": 1, "y": [2, 1]}}"#).hash
        );
    }

    #[test]
    fn volatile_keys() {
        for key in [
            "timestamp",
            "DateTime",
            "hostname",
            "HOST",
            "pid",
            "cwd",
            "workdir",
            "tmpdir",
            "Path",
            "dir",
            "started_at",
            "run_timestamp",
            "data_path",
            "out_dir",
            "db_host",
            "db_hostname",
            "OUT_DIR",
            "_private",
            "_",
        ] {
            assert!(is_volatile_key(key), "{key}");
        }
        for key in [
            "seed",
            "algo",
            "format",
            "flat",
            "path_len",
            "dirs",
            "hosts",
            "at",
            "paths",
            "dir_count",
            "ip_address",
            "x_",
            "",
        ] {
            assert!(!is_volatile_key(key), "{key}");
        }
    }

    #[test]
    fn volatile_keys_dropped_at_every_depth() {
        let c = canon(
            r#"{"algo": "ucb1", "timestamp": "t", "Host": "box", "_note": "x", "out_dir": "/tmp",
                "run": {"started_at": "now", "k": 2, "opts": {"TMPDIR": "/t", "depth": 3}},
                "runs": [{"pid": 3, "v": 1}]}"#,
        );
        assert_eq!(
            c.text,
            r#"{"algo":"ucb1","run":{"k":2,"opts":{"depth":3}},"runs":[{"v":1}]}"#
        );
        assert_eq!(
            c.params,
            json!({"algo": "ucb1", "run": {"k": 2, "opts": {"depth": 3}}, "runs": [{"v": 1}]})
        );
        assert_eq!(
            c,
            canon(r#"{"algo": "ucb1", "run": {"k": 2, "opts": {"depth": 3}}, "runs": [{"v": 1}]}"#)
        );
    }

    #[test]
    fn extra_volatile_keys_match_exactly_at_every_depth() {
        let params = parse(
            r#"{"algo": "ucb1", "run_label": "monday", "inner": {"run_label": "x", "v": 1}, "Run_Label": "kept"}"#,
        );
        let c = canonicalize(&params, &["run_label".to_owned()]).unwrap();
        assert_eq!(
            c.text,
            r#"{"Run_Label":"kept","algo":"ucb1","inner":{"v":1}}"#
        );
        let plain = canonicalize(&params, &[]).unwrap();
        assert_ne!(plain.hash, c.hash);
    }

    #[test]
    fn seed_is_dropped_at_the_top_only() {
        let with = canon(r#"{"seed": 42, "algo": "ucb1", "inner": {"seed": 7}}"#);
        let without = canon(r#"{"algo": "ucb1", "inner": {"seed": 7}}"#);
        assert_eq!(with, without);
        assert_eq!(with.text, r#"{"algo":"ucb1","inner":{"seed":7}}"#);
        // even a seed take_seed would refuse: canonicalize does not judge it
        assert_eq!(
            canon(r#"{"seed": "abc", "algo": "ucb1", "inner": {"seed": 7}}"#),
            without
        );
    }

    #[test]
    fn take_seed_forms() {
        for (text, want) in [
            (r#"{"seed": 42, "a": 1}"#, Some(42)),
            (r#"{"seed": 0}"#, Some(0)),
            (r#"{"seed": 42.0}"#, Some(42)),
            (r#"{"seed": 4.2e1}"#, Some(42)),
            (r#"{"seed": "42"}"#, Some(42)),
            (r#"{"seed": "007"}"#, Some(7)),
            (r#"{"seed": 18446744073709551615}"#, Some(u64::MAX)),
            (r#"{"a": 1}"#, None),
            (r#"{"a": {"seed": 1}}"#, None),
        ] {
            let mut params = parse(text);
            assert_eq!(take_seed(&mut params).unwrap(), want, "{text}");
            assert!(params.get(SEED_KEY).is_none(), "{text}");
        }
        for text in [
            r#"{"seed": -1}"#,
            r#"{"seed": 1.5}"#,
            r#"{"seed": -2.0}"#,
            r#"{"seed": 1e30}"#,
            r#"{"seed": "x1"}"#,
            r#"{"seed": "-1"}"#,
            r#"{"seed": "+1"}"#,
            r#"{"seed": " 1"}"#,
            r#"{"seed": ""}"#,
            r#"{"seed": "18446744073709551616"}"#,
            r#"{"seed": null}"#,
            r#"{"seed": true}"#,
            r#"{"seed": [1]}"#,
        ] {
            let mut params = parse(text);
            let err = take_seed(&mut params).unwrap_err();
            assert!(matches!(err, ExpError::BadSeed { .. }), "{text}: {err}");
            assert!(
                params.get(SEED_KEY).is_some(),
                "a refused seed stays: {text}"
            );
        }
        let err = take_seed(&mut parse(r#"{"seed": 1.5}"#)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "seed 1.5 is not a non-negative integer below 2^64: write it as a whole number, e.g. \"seed\": 42"
        );
        assert!(matches!(
            take_seed(&mut json!([1])),
            Err(ExpError::NotAnObject { found: "an array" })
        ));
    }

    #[test]
    fn nested_values() {
        let c = canon(
            r#"{"grid": {"curve": "hilbert", "keys": ["ts", "user_id"], "bits": [10, 12.0],
                "opts": {}, "none": null, "on": true, "off": false},
                "empty": [], "matrix": [[1, 2], [3, {"b": 1, "a": 2}]]}"#,
        );
        assert_eq!(
            c.text,
            r#"{"empty":[],"grid":{"bits":[10,12],"curve":"hilbert","keys":["ts","user_id"],"none":null,"off":false,"on":true,"opts":{}},"matrix":[[1,2],[3,{"a":2,"b":1}]]}"#
        );
    }

    #[test]
    fn string_escapes() {
        let v = json!(
            "q\" b\\ bs\u{8} ff\u{c} nl\n cr\r tab\t c0\u{0} c1\u{1} c1f\u{1f} del\u{7f} sl/ \u{e9}\u{20ac}\u{1f600}\u{2028}"
        );
        assert_eq!(
            canonical_json(&v).unwrap(),
            "\"q\\\" b\\\\ bs\\b ff\\f nl\\n cr\\r tab\\t c0\\u0000 c1\\u0001 c1f\\u001f del\u{7f} sl/ \u{e9}\u{20ac}\u{1f600}\u{2028}\""
        );
        // keys are escaped the same way
        assert_eq!(
            canonical_json(&json!({"a\nb": 1})).unwrap(),
            r#"{"a\nb":1}"#
        );
    }

    #[test]
    fn rfc8785_example() {
        let c = canon(
            r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
                "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
                "literals": [null, true, false]}"#,
        );
        assert_eq!(
            c.text,
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
        );
    }

    #[test]
    fn non_object_top_level_is_refused() {
        for (text, found) in [
            ("[1, 2]", "an array"),
            (r#""lr""#, "a string"),
            ("3", "a number"),
            ("null", "null"),
            ("true", "a boolean"),
        ] {
            let err = canonicalize(&parse(text), &[]).unwrap_err();
            assert!(
                matches!(err, ExpError::NotAnObject { found: f } if f == found),
                "{text}: {err}"
            );
        }
        // canonical_json itself takes any value
        assert_eq!(canonical_json(&parse("[1, 2.50]")).unwrap(), "[1,2.5]");
    }

    #[test]
    fn hash_and_id() {
        let c = canon(r#"{"lr": 0.10, "algo": "ucb1"}"#);
        assert_eq!(c.text, r#"{"algo":"ucb1","lr":0.1}"#);
        assert_eq!(c.hash, sha256_hex(&c.text));
        assert_eq!(c.hash.len(), 64);
        assert!(
            c.hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(c.id(DEFAULT_ID_CHARS), &c.hash[..8]);
        assert_eq!(grid_id(&c.hash, 12), &c.hash[..12]);
        assert_eq!(grid_id(&c.hash, 0), &c.hash[..1]);
        assert_eq!(grid_id(&c.hash, 64), c.hash);
        assert_eq!(grid_id(&c.hash, 100), c.hash);
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex("{}"),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn flatten() {
        let c = canon(
            r#"{"algo": "ucb1", "lr": 0.1, "n": 3, "grid": {"curve": "hilbert", "bits": [10, 12.0],
                "opts": {}, "deep": {"x": null, "on": true}}, "tags": ["a", {"k": 1.50}]}"#,
        );
        let columns = flatten_params(&c.params);
        assert_eq!(
            columns,
            vec![
                ("algo".to_owned(), ParamValue::Text("ucb1".to_owned())),
                (
                    "grid.bits".to_owned(),
                    ParamValue::Json("[10,12]".to_owned())
                ),
                (
                    "grid.curve".to_owned(),
                    ParamValue::Text("hilbert".to_owned())
                ),
                ("grid.deep.on".to_owned(), ParamValue::Bool(true)),
                ("grid.deep.x".to_owned(), ParamValue::Null),
                ("grid.opts".to_owned(), ParamValue::Json("{}".to_owned())),
                ("lr".to_owned(), ParamValue::Number(0.1)),
                ("n".to_owned(), ParamValue::Number(3.0)),
                (
                    "tags".to_owned(),
                    ParamValue::Json(r#"["a",{"k":1.5}]"#.to_owned())
                ),
            ]
        );
        assert!(flatten_params(&json!([1])).is_empty());
        assert!(flatten_params(&json!({})).is_empty());
    }
}
