//! Human-readable formatting of times, byte counts, durations and fractions, shared by the
//! text and Markdown renderers (CSV and JSON keep raw numbers).

use chrono::DateTime;

/// The text shown for a missing value.
pub const NONE: &str = "-";

const KIB: f64 = 1024.0;
const BYTE_UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];

/// Formats milliseconds since the Unix epoch as UTC `YYYY-MM-DD HH:MM:SS`; a time outside
/// chrono's range prints as the raw number with `ms`.
pub fn utc_time(ms: i64) -> String {
    match DateTime::from_timestamp_millis(ms) {
        Some(time) => time.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => format!("{ms} ms"),
    }
}

/// Formats a byte count as `B`, `KiB`, `MiB`, `GiB`, `TiB` or `PiB` with one decimal.
pub fn bytes(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    if value.abs() < KIB {
        return format!("{value:.0} B");
    }
    let mut scaled = value / KIB;
    let mut unit = 0;
    while scaled.abs() >= KIB && unit + 1 < BYTE_UNITS.len() {
        scaled /= KIB;
        unit += 1;
    }
    format!("{scaled:.1} {}", BYTE_UNITS[unit])
}

/// Formats an unsigned byte count like [`bytes`].
pub fn bytes_u64(value: u64) -> String {
    bytes(value as f64)
}

/// Formats a latency in milliseconds: `0.42 ms`, `12.30 ms`, or `1.25 s` from one second.
pub fn latency(ms: f64) -> String {
    if ms.abs() >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.2} ms")
    }
}

/// Formats a duration in milliseconds: `850 ms`, `12.3 s`, `4m 05s` or `2h 03m`.
pub fn duration(ms: u64) -> String {
    let secs = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, secs / 60 % 60),
    }
}

/// Formats a fraction as a percentage with one decimal (`0.123` -> `12.3%`).
pub fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// Formats a reward (dimensionless) with three decimals.
pub fn reward(value: f64) -> String {
    format!("{value:.3}")
}

/// Formats an optional value with `format`, or [`NONE`] when missing.
pub fn opt<T>(value: Option<T>, format: impl FnOnce(T) -> String) -> String {
    value.map_or_else(|| NONE.to_string(), format)
}

/// Formats migration progress as `done/total (pct%)`, the percentage rounded down so only a
/// finished job shows 100%; a job without units shows `0/0`.
pub fn progress(done: u64, total: u64) -> String {
    if total == 0 {
        return format!("{done}/{total}");
    }
    let pct = u128::from(done) * 100 / u128::from(total);
    format!("{done}/{total} ({pct}%)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times_and_out_of_range() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00");
        assert_eq!(utc_time(1_700_000_000_123), "2023-11-14 22:13:20");
        assert_eq!(utc_time(i64::MAX), format!("{} ms", i64::MAX));
    }

    #[test]
    fn formats_bytes_with_binary_units() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
        assert_eq!(bytes(f64::NAN), "NaN");
        assert_eq!(bytes(1e30), "888178419700125.2 PiB");
    }

    #[test]
    fn formats_durations_and_progress() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(245_000), "4m 05s");
        assert_eq!(duration(7_380_000), "2h 03m");
        assert_eq!(progress(3, 4), "3/4 (75%)");
        assert_eq!(progress(3, 8), "3/8 (37%)");
        assert_eq!(
            progress(u64::MAX, u64::MAX),
            format!("{0}/{0} (100%)", u64::MAX)
        );
        assert_eq!(progress(0, 0), "0/0");
    }
}
