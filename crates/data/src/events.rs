//! The synthetic `events` table: a year of web/app analytics events, generated block by block.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, Date32Builder, Float64Builder, Int32Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::NaiveDate;
use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::DataError;
use crate::blocks::{BlockSource, DEFAULT_BATCH_SIZE, Rebatcher, block_rng};
use crate::sampling::{Weighted, Zipf, log_normal, mix64, unit_f64};

/// First day covered by the events table (2025-01-01, UTC).
pub const START_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2025, 1, 1) {
    Some(d) => d,
    None => panic!("valid date"),
};
/// [`START_DATE`] as days since the Unix epoch (the Date32 value).
pub const START_EPOCH_DAYS: i32 = 20_089;
/// Number of days covered: event_date is in `START_DATE .. START_DATE + DAYS`.
pub const DAYS: i32 = 365;
/// Microseconds per day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;
/// [`START_DATE`] midnight UTC in microseconds since the epoch.
pub const START_MICROS: i64 = START_EPOCH_DAYS as i64 * MICROS_PER_DAY;
/// End (exclusive) of the covered time range in microseconds since the epoch.
pub const END_MICROS: i64 = START_MICROS + DAYS as i64 * MICROS_PER_DAY;

/// Country codes with their share of users (percent).
pub const COUNTRIES: &[(&str, f64)] = &[
    ("US", 30.0),
    ("DE", 9.0),
    ("GB", 8.0),
    ("IN", 8.0),
    ("BR", 6.0),
    ("FR", 5.0),
    ("JP", 5.0),
    ("CA", 4.0),
    ("AU", 3.0),
    ("ES", 3.0),
    ("IT", 3.0),
    ("NL", 2.5),
    ("MX", 2.5),
    ("KR", 2.0),
    ("SE", 1.5),
    ("PL", 1.5),
    ("ID", 1.5),
    ("TR", 1.5),
    ("ZA", 1.0),
    ("SG", 1.0),
];

/// Device kinds with their share of events (percent).
pub const DEVICES: &[(&str, f64)] = &[
    ("mobile", 56.0),
    ("desktop", 34.0),
    ("tablet", 7.0),
    ("tv", 3.0),
];

/// Event types with their share of events (percent).
pub const EVENT_TYPES: &[(&str, f64)] = &[
    ("page_view", 55.0),
    ("click", 25.0),
    ("search", 7.0),
    ("add_to_cart", 6.0),
    ("purchase", 3.0),
    ("logout", 2.5),
    ("signup", 1.5),
];

/// HTTP status codes with their share of events (percent).
pub const STATUS_CODES: &[(i32, f64)] = &[
    (200, 91.0),
    (201, 1.5),
    (204, 1.0),
    (301, 0.5),
    (302, 1.0),
    (304, 2.0),
    (400, 0.8),
    (401, 0.5),
    (403, 0.3),
    (404, 1.0),
    (429, 0.2),
    (500, 0.12),
    (502, 0.05),
    (503, 0.03),
];

/// Referrers of events that have one (relative weights).
pub const REFERRERS: &[(&str, f64)] = &[
    ("https://www.google.com/", 45.0),
    ("https://www.facebook.com/", 10.0),
    ("https://www.bing.com/", 7.0),
    ("https://partner.example.net/", 7.0),
    ("https://mail.example.com/newsletter", 6.0),
    ("https://t.co/", 5.0),
    ("https://duckduckgo.com/", 4.0),
    ("https://www.linkedin.com/", 4.0),
    ("https://www.reddit.com/", 4.0),
    ("https://news.ycombinator.com/", 2.0),
];

/// Fraction of events without a referrer.
pub const REFERRER_NULL_FRACTION: f64 = 0.40;
/// Fraction of events without a duration.
pub const DURATION_NULL_FRACTION: f64 = 0.05;

/// App versions with their release day relative to [`START_DATE`]; older versions linger.
pub const APP_VERSIONS: &[(&str, i32)] = &[
    ("5.9.3", -120),
    ("6.0.0", -30),
    ("6.1.0", 45),
    ("6.2.0", 130),
    ("6.2.1", 160),
    ("6.3.0", 250),
    ("7.0.0", 330),
];

/// Zipf exponent of customer popularity (customer 1 is the busiest).
pub const CUSTOMER_ZIPF_EXPONENT: f64 = 1.1;
/// Zipf exponent of user activity (user 1 is the most active).
pub const USER_ZIPF_EXPONENT: f64 = 0.8;

/// Relative event rate per hour of day (UTC), peaking in the afternoon.
const HOURLY_RATE: [f64; 24] = [
    0.30, 0.22, 0.17, 0.15, 0.15, 0.20, 0.35, 0.60, 0.85, 1.00, 1.10, 1.15, //
    1.20, 1.20, 1.15, 1.10, 1.05, 1.05, 1.10, 1.15, 1.10, 0.90, 0.65, 0.45,
];
/// Relative event rate per weekday, Monday first.
const WEEKDAY_RATE: [f64; 7] = [1.00, 1.02, 1.03, 1.02, 0.97, 0.85, 0.82];
/// Weekday of [`START_DATE`] (Monday = 0; 2025-01-01 is a Wednesday).
const START_WEEKDAY: usize = 2;
/// Traffic grows by this fraction over the year.
const YEARLY_GROWTH: f64 = 0.3;

/// Ingestion sources in arrival order: ((min lag s, max lag s), share of runs).
const SOURCES: &[((i64, i64), f64)] = &[
    ((0, 2), 80.0),          // web beacons, near real time
    ((60, 1_800), 12.0),     // mobile SDK flushes: minutes
    ((3_600, 14_400), 5.0),  // partner feed: hours
    ((21_600, 86_400), 3.0), // nightly batch import: up to a day
];
/// Rows in one contiguous run of a single source (arrival order).
const RUN_ROWS: std::ops::Range<u32> = 32..512;
/// Fraction of rows that straggle in days late (offline devices).
const STRAGGLER_FRACTION: f64 = 0.015;
/// Lag of a straggler in seconds: one to five days.
const STRAGGLER_LAG_S: std::ops::Range<i64> = 86_400..5 * 86_400;
/// A session groups a user's events within one bucket of this many microseconds.
const SESSION_MICROS: i64 = 30 * 60 * 1_000_000;

/// RNG stream id of the events generator.
const EVENTS_STREAM: u64 = 0xE7E7_0001;

/// Number of customers for an events table of `num_rows` rows.
pub fn num_customers(num_rows: u64) -> u64 {
    (num_rows / 50).clamp(100, 1_000_000)
}

/// Number of users for an events table of `num_rows` rows.
pub fn num_users(num_rows: u64) -> u64 {
    (num_rows / 20).max(1_000)
}

/// Physical order of the generated rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowOrder {
    /// Rows in ingestion order: event_ts roughly increasing, with late arrivals.
    #[default]
    Arrival,
    /// Rows in random order: event_ts independent of position.
    Shuffled,
}

impl RowOrder {
    /// The lowercase name used in configs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Arrival => "arrival",
            Self::Shuffled => "shuffled",
        }
    }
}

impl fmt::Display for RowOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RowOrder {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "arrival" => Ok(Self::Arrival),
            "shuffled" => Ok(Self::Shuffled),
            _ => Err(DataError::UnknownRowOrder(s.to_string())),
        }
    }
}

/// What to generate: size, seed, row order and batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsParams {
    /// Total rows to generate.
    pub num_rows: u64,
    /// Seed; identical params give identical rows.
    pub seed: u64,
    /// Physical row order.
    pub order: RowOrder,
    /// Rows per emitted batch (0 is treated as 1); does not affect row content.
    pub batch_size: usize,
}

impl Default for EventsParams {
    fn default() -> Self {
        Self {
            num_rows: 0,
            seed: 0,
            order: RowOrder::Arrival,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }
}

/// Streams the events table as RecordBatches with O(batch) memory.
pub struct EventsGenerator {
    inner: Rebatcher<EventsBlocks>,
}

impl EventsGenerator {
    /// A generator for `params`.
    pub fn new(params: EventsParams) -> Self {
        let blocks = EventsBlocks::new(params);
        Self {
            inner: Rebatcher::new(blocks, params.num_rows, params.batch_size),
        }
    }

    /// The parameters this generator was created with.
    pub fn params(&self) -> &EventsParams {
        &self.inner.source().params
    }

    /// Schema of the events table.
    pub fn schema() -> SchemaRef {
        static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
        SCHEMA
            .get_or_init(|| {
                Arc::new(Schema::new(vec![
                    Field::new("event_id", DataType::Int64, false),
                    Field::new(
                        "event_ts",
                        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                        false,
                    ),
                    Field::new("event_date", DataType::Date32, false),
                    Field::new("user_id", DataType::Int64, false),
                    Field::new("customer_id", DataType::Int64, false),
                    Field::new("session_id", DataType::Utf8, false),
                    Field::new("country", DataType::Utf8, false),
                    Field::new("device", DataType::Utf8, false),
                    Field::new("event_type", DataType::Utf8, false),
                    Field::new("amount", DataType::Float64, true),
                    Field::new("duration_ms", DataType::Int32, true),
                    Field::new("status_code", DataType::Int32, false),
                    Field::new("referrer", DataType::Utf8, true),
                    Field::new("app_version", DataType::Utf8, false),
                ]))
            })
            .clone()
    }
}

impl Iterator for EventsGenerator {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for EventsGenerator {}

/// Inverse CDF of the event rate over the year, hour by hour.
struct TimeProfile {
    /// Normalized cumulative rate at the start of each hour; `DAYS * 24 + 1` entries.
    cumulative: Vec<f64>,
}

impl TimeProfile {
    fn get() -> &'static TimeProfile {
        static PROFILE: OnceLock<TimeProfile> = OnceLock::new();
        PROFILE.get_or_init(|| {
            let hours = DAYS as usize * 24;
            let mut cumulative = Vec::with_capacity(hours + 1);
            let mut total = 0.0;
            cumulative.push(0.0);
            for hour in 0..hours {
                let day = hour / 24;
                let weekday = (START_WEEKDAY + day) % 7;
                let growth = 1.0 + YEARLY_GROWTH * day as f64 / f64::from(DAYS);
                total += HOURLY_RATE[hour % 24] * WEEKDAY_RATE[weekday] * growth;
                cumulative.push(total);
            }
            for c in &mut cumulative {
                *c /= total;
            }
            TimeProfile { cumulative }
        })
    }

    /// The instant (microseconds since the epoch) at quantile `u` in [0, 1) of the yearly rate.
    fn at(&self, u: f64) -> i64 {
        let hours = self.cumulative.len() - 1;
        let hour = self.cumulative.partition_point(|&c| c <= u).clamp(1, hours) - 1;
        let (lo, hi) = (self.cumulative[hour], self.cumulative[hour + 1]);
        let frac = ((u - lo) / (hi - lo)).clamp(0.0, 1.0);
        let micros = START_MICROS + ((hour as f64 + frac) * 3_600_000_000.0) as i64;
        micros.min(END_MICROS - 1)
    }
}

/// Block source of the events table: the samplers, built once.
struct EventsBlocks {
    params: EventsParams,
    profile: &'static TimeProfile,
    users: Zipf,
    customers: Zipf,
    countries: Weighted,
    devices: Weighted,
    event_types: Weighted,
    status_codes: Weighted,
    referrers: Weighted,
    sources: Weighted,
    /// Log-normal (mu, sigma) of `amount` per event type; None means amount is null.
    amount_params: Vec<Option<(f64, f64)>>,
}

/// Amount distribution of an event type: purchases and cart additions carry money.
fn amount_params(event_type: &str) -> Option<(f64, f64)> {
    match event_type {
        "purchase" => Some((45f64.ln(), 0.9)),
        "add_to_cart" => Some((30f64.ln(), 0.8)),
        _ => None,
    }
}

/// The app version of an event on `day` (days since START_DATE): mostly the latest release.
fn app_version(day: i32, u: f64) -> &'static str {
    let latest = APP_VERSIONS
        .iter()
        .rposition(|&(_, released)| released <= day)
        .unwrap_or(0);
    let behind = if u < 0.65 {
        0
    } else if u < 0.92 {
        1
    } else {
        2
    };
    APP_VERSIONS[latest.saturating_sub(behind)].0
}

/// Writes "s-" and 12 lowercase hex digits of `hash` into `buf`.
fn session_id(hash: u64, buf: &mut [u8; 14]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf[0] = b's';
    buf[1] = b'-';
    for (i, b) in buf[2..].iter_mut().enumerate() {
        *b = HEX[((hash >> (44 - 4 * i)) & 0xF) as usize];
    }
    std::str::from_utf8(buf).expect("ascii")
}

impl EventsBlocks {
    fn new(params: EventsParams) -> Self {
        Self {
            params,
            profile: TimeProfile::get(),
            users: Zipf::new(num_users(params.num_rows), USER_ZIPF_EXPONENT),
            customers: Zipf::new(num_customers(params.num_rows), CUSTOMER_ZIPF_EXPONENT),
            countries: Weighted::new(COUNTRIES),
            devices: Weighted::new(DEVICES),
            event_types: Weighted::new(EVENT_TYPES),
            status_codes: Weighted::new(STATUS_CODES),
            referrers: Weighted::new(REFERRERS),
            sources: Weighted::new(SOURCES),
            amount_params: EVENT_TYPES
                .iter()
                .map(|(name, _)| amount_params(name))
                .collect(),
        }
    }

    /// event_ts of every row of a block, in row order.
    fn timestamps(&self, rng: &mut StdRng, first_row: u64, rows: usize) -> Vec<i64> {
        let n = self.params.num_rows as f64;
        match self.params.order {
            RowOrder::Shuffled => (0..rows)
                .map(|_| self.profile.at(rng.random::<f64>()))
                .collect(),
            RowOrder::Arrival => {
                let mut run_left = 0u32;
                let mut run_lag = 0i64;
                (0..rows)
                    .map(|r| {
                        if run_left == 0 {
                            let (lo, hi) = SOURCES[self.sources.sample(rng)].0;
                            run_left = rng.random_range(RUN_ROWS);
                            run_lag = rng.random_range(lo..=hi) * 1_000_000;
                        }
                        run_left -= 1;
                        // Jitter inside the row's own quantile slot keeps arrival monotone.
                        let u = (first_row as f64 + r as f64 + rng.random::<f64>()) / n;
                        let arrival = self.profile.at(u);
                        let mut lag = if rng.random::<f64>() < STRAGGLER_FRACTION {
                            rng.random_range(STRAGGLER_LAG_S) * 1_000_000
                        } else {
                            run_lag
                        };
                        let room = arrival - START_MICROS;
                        if lag > room {
                            lag = (room as f64 * rng.random::<f64>()) as i64;
                        }
                        arrival - lag
                    })
                    .collect()
            }
        }
    }
}

impl BlockSource for EventsBlocks {
    fn schema(&self) -> SchemaRef {
        EventsGenerator::schema()
    }

    fn block(&self, index: u64, first_row: u64, rows: usize) -> RecordBatch {
        let seed = self.params.seed;
        let mut rng = block_rng(seed, EVENTS_STREAM, index);
        let timestamps = self.timestamps(&mut rng, first_row, rows);

        let mut event_id = Int64Builder::with_capacity(rows);
        let mut event_ts = TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC");
        let mut event_date = Date32Builder::with_capacity(rows);
        let mut user_id = Int64Builder::with_capacity(rows);
        let mut customer_id = Int64Builder::with_capacity(rows);
        let mut session = StringBuilder::with_capacity(rows, rows * 14);
        let mut country = StringBuilder::with_capacity(rows, rows * 2);
        let mut device = StringBuilder::with_capacity(rows, rows * 7);
        let mut event_type = StringBuilder::with_capacity(rows, rows * 9);
        let mut amount = Float64Builder::with_capacity(rows);
        let mut duration_ms = Int32Builder::with_capacity(rows);
        let mut status_code = Int32Builder::with_capacity(rows);
        let mut referrer = StringBuilder::with_capacity(rows, rows * 16);
        let mut app = StringBuilder::with_capacity(rows, rows * 5);
        let mut session_buf = [0u8; 14];

        for (r, &ts) in timestamps.iter().enumerate() {
            let user = self.users.sample(&mut rng);
            let kind = self.event_types.sample(&mut rng);

            event_id.append_value((first_row + r as u64) as i64);
            event_ts.append_value(ts);
            event_date.append_value(ts.div_euclid(MICROS_PER_DAY) as i32);
            user_id.append_value(user as i64);
            customer_id.append_value(self.customers.sample(&mut rng) as i64);
            let session_hash =
                mix64(seed ^ mix64(user ^ mix64(ts.div_euclid(SESSION_MICROS) as u64)));
            session.append_value(session_id(session_hash, &mut session_buf));
            // A user's country is stable: picked by a hash of (seed, user).
            let country_u = unit_f64(mix64(seed.rotate_left(17) ^ mix64(user)));
            country.append_value(COUNTRIES[self.countries.pick(country_u)].0);
            device.append_value(DEVICES[self.devices.sample(&mut rng)].0);
            event_type.append_value(EVENT_TYPES[kind].0);
            amount.append_option(
                self.amount_params[kind]
                    .map(|(mu, sigma)| (log_normal(&mut rng, mu, sigma) * 100.0).round() / 100.0),
            );
            duration_ms
                .append_option((rng.random::<f64>() >= DURATION_NULL_FRACTION).then(|| {
                    log_normal(&mut rng, 900f64.ln(), 1.1).clamp(1.0, 3_600_000.0) as i32
                }));
            status_code.append_value(STATUS_CODES[self.status_codes.sample(&mut rng)].0);
            referrer.append_option(
                (rng.random::<f64>() >= REFERRER_NULL_FRACTION)
                    .then(|| REFERRERS[self.referrers.sample(&mut rng)].0),
            );
            let day = ((ts - START_MICROS) / MICROS_PER_DAY) as i32;
            app.append_value(app_version(day, rng.random::<f64>()));
        }

        let columns: Vec<ArrayRef> = vec![
            Arc::new(event_id.finish()),
            Arc::new(event_ts.finish()),
            Arc::new(event_date.finish()),
            Arc::new(user_id.finish()),
            Arc::new(customer_id.finish()),
            Arc::new(session.finish()),
            Arc::new(country.finish()),
            Arc::new(device.finish()),
            Arc::new(event_type.finish()),
            Arc::new(amount.finish()),
            Arc::new(duration_ms.finish()),
            Arc::new(status_code.finish()),
            Arc::new(referrer.finish()),
            Arc::new(app.finish()),
        ];
        RecordBatch::try_new(self.schema(), columns).expect("columns match the events schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{
        Date32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
    };
    use std::collections::HashMap;

    fn params(num_rows: u64, seed: u64, order: RowOrder, batch_size: usize) -> EventsParams {
        EventsParams {
            num_rows,
            seed,
            order,
            batch_size,
        }
    }

    fn collect(p: EventsParams) -> Vec<RecordBatch> {
        EventsGenerator::new(p).collect()
    }

    /// All batches concatenated into one (test sizes only).
    fn table(p: EventsParams) -> RecordBatch {
        arrow::compute::concat_batches(&EventsGenerator::schema(), &collect(p)).unwrap()
    }

    fn i64s(batch: &RecordBatch, name: &str) -> Vec<i64> {
        batch
            .column_by_name(name)
            .unwrap()
            .as_primitive::<Int64Type>()
            .values()
            .to_vec()
    }

    fn timestamps(batch: &RecordBatch) -> Vec<i64> {
        let col = batch.column_by_name("event_ts").unwrap();
        col.as_primitive::<TimestampMicrosecondType>()
            .values()
            .to_vec()
    }

    fn strings<'a>(batch: &'a RecordBatch, name: &str) -> Vec<Option<&'a str>> {
        batch
            .column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .iter()
            .collect()
    }

    #[test]
    fn row_order_parses_and_prints() {
        for order in [RowOrder::Arrival, RowOrder::Shuffled] {
            assert_eq!(order.to_string().parse::<RowOrder>().unwrap(), order);
        }
        assert_eq!("Shuffled".parse::<RowOrder>().unwrap(), RowOrder::Shuffled);
        assert!(
            matches!("sorted".parse::<RowOrder>(), Err(DataError::UnknownRowOrder(s)) if s == "sorted")
        );
    }

    #[test]
    fn row_counts_and_schema() {
        for (num_rows, batch_size) in [
            (0, 100),
            (1, 100),
            (1000, 1000),
            (1000, 333),
            (20_000, 8192),
            (20_000, 5000),
            (9000, 1),
        ] {
            let batches = collect(params(num_rows, 3, RowOrder::Arrival, batch_size));
            assert_eq!(
                batches.iter().map(|b| b.num_rows() as u64).sum::<u64>(),
                num_rows
            );
            assert_eq!(batches.len() as u64, num_rows.div_ceil(batch_size as u64));
            for b in &batches {
                assert_eq!(b.schema(), EventsGenerator::schema());
                assert!(b.num_rows() <= batch_size);
            }
            let ids: Vec<i64> = batches.iter().flat_map(|b| i64s(b, "event_id")).collect();
            assert!(ids.iter().copied().eq(0..num_rows as i64));
        }
        assert_eq!(
            EventsGenerator::new(params(20_000, 1, RowOrder::Shuffled, 5000)).len(),
            4
        );
    }

    #[test]
    fn deterministic_and_independent_of_batch_size() {
        for order in [RowOrder::Arrival, RowOrder::Shuffled] {
            let a = table(params(20_000, 42, order, 8192));
            assert_eq!(a, table(params(20_000, 42, order, 8192)));
            assert_eq!(a, table(params(20_000, 42, order, 777)));
            assert_eq!(a, table(params(20_000, 42, order, 100_000)));
            assert_ne!(
                timestamps(&a),
                timestamps(&table(params(20_000, 43, order, 8192)))
            );
        }
    }

    #[test]
    fn arrival_roughly_sorted_shuffled_not() {
        let n = 200_000;
        let non_decreasing = |ts: &[i64]| {
            ts.windows(2).filter(|w| w[0] <= w[1]).count() as f64 / (ts.len() - 1) as f64
        };

        let arrival = timestamps(&table(params(n, 5, RowOrder::Arrival, 8192)));
        let frac = non_decreasing(&arrival);
        assert!(frac > 0.9, "arrival non-decreasing fraction {frac}");
        let mut max_so_far = i64::MIN;
        let mut max_lag = 0;
        let mut late_hour = 0;
        for &ts in &arrival {
            max_so_far = max_so_far.max(ts);
            let lag = max_so_far - ts;
            max_lag = max_lag.max(lag);
            late_hour += usize::from(lag > 3_600_000_000);
        }
        // Lag is bounded by the largest straggler lag plus the arrival spacing.
        assert!(max_lag < 6 * MICROS_PER_DAY, "max lag {max_lag}");
        // Late arrivals exist: sources hours behind and days-late stragglers.
        assert!(
            (late_hour as f64) > 0.01 * n as f64,
            "rows over an hour late: {late_hour}"
        );
        assert!(
            (late_hour as f64) < 0.2 * n as f64,
            "rows over an hour late: {late_hour}"
        );
        // The year is spread across the rows in order.
        let first = arrival[..1000].iter().max().unwrap();
        let last = arrival[arrival.len() - 1000..].iter().min().unwrap();
        assert!(*first < START_MICROS + 10 * MICROS_PER_DAY);
        assert!(*last > END_MICROS - 10 * MICROS_PER_DAY);

        let shuffled = timestamps(&table(params(n, 5, RowOrder::Shuffled, 8192)));
        let frac = non_decreasing(&shuffled);
        assert!(
            (0.4..0.6).contains(&frac),
            "shuffled non-decreasing fraction {frac}"
        );
    }

    #[test]
    fn diurnal_pattern() {
        for order in [RowOrder::Arrival, RowOrder::Shuffled] {
            let ts = timestamps(&table(params(100_000, 9, order, 8192)));
            let mut by_hour = [0usize; 24];
            for t in ts {
                by_hour[(t.rem_euclid(MICROS_PER_DAY) / 3_600_000_000) as usize] += 1;
            }
            let day: usize = by_hour[10..16].iter().sum();
            let night: usize = by_hour[1..7].iter().sum();
            assert!(day > 3 * night, "{order}: day {day} night {night}");
        }
    }

    #[test]
    fn values_within_domains() {
        let n = 50_000;
        let b = table(params(n, 11, RowOrder::Arrival, 4096));
        let dates = b
            .column_by_name("event_date")
            .unwrap()
            .as_primitive::<Date32Type>();
        for (date, ts) in dates.values().iter().zip(timestamps(&b)) {
            assert!((START_MICROS..END_MICROS).contains(&ts));
            assert_eq!(i64::from(*date), ts.div_euclid(MICROS_PER_DAY));
            assert!((START_EPOCH_DAYS..START_EPOCH_DAYS + DAYS).contains(date));
        }
        let users = num_users(n) as i64;
        assert!(i64s(&b, "user_id").iter().all(|u| (1..=users).contains(u)));
        let customers = num_customers(n) as i64;
        assert!(
            i64s(&b, "customer_id")
                .iter()
                .all(|c| (1..=customers).contains(c))
        );
        let in_domain = |name: &str, domain: &[&str]| {
            strings(&b, name)
                .iter()
                .flatten()
                .all(|v| domain.contains(v))
        };
        let names =
            |table: &[(&'static str, f64)]| table.iter().map(|(v, _)| *v).collect::<Vec<_>>();
        assert!(in_domain("country", &names(COUNTRIES)));
        assert!(in_domain("device", &names(DEVICES)));
        assert!(in_domain("event_type", &names(EVENT_TYPES)));
        assert!(in_domain("referrer", &names(REFERRERS)));
        assert!(in_domain(
            "app_version",
            &APP_VERSIONS.iter().map(|(v, _)| *v).collect::<Vec<_>>()
        ));
        let codes: Vec<i32> = STATUS_CODES.iter().map(|(c, _)| *c).collect();
        let status = b
            .column_by_name("status_code")
            .unwrap()
            .as_primitive::<Int32Type>();
        assert!(status.values().iter().all(|c| codes.contains(c)));
        assert!(
            strings(&b, "session_id")
                .iter()
                .flatten()
                .all(|s| s.len() == 14 && s.starts_with("s-"))
        );

        let amounts = b
            .column_by_name("amount")
            .unwrap()
            .as_primitive::<Float64Type>();
        for (amount, kind) in amounts.iter().zip(strings(&b, "event_type")) {
            let kind = kind.unwrap();
            assert_eq!(amount.is_some(), amount_params(kind).is_some(), "{kind}");
            assert!(amount.is_none_or(|a| a > 0.0));
        }
    }

    #[test]
    fn null_fractions_and_skew() {
        let n = 100_000;
        let b = table(params(n, 13, RowOrder::Shuffled, 8192));
        let null_frac = |name: &str| b.column_by_name(name).unwrap().null_count() as f64 / n as f64;
        let referrer = null_frac("referrer");
        assert!(
            (0.37..0.43).contains(&referrer),
            "referrer nulls {referrer}"
        );
        let duration = null_frac("duration_ms");
        assert!(
            (0.04..0.06).contains(&duration),
            "duration nulls {duration}"
        );
        let amount = null_frac("amount");
        assert!((0.88..0.93).contains(&amount), "amount nulls {amount}");
        for name in [
            "event_id",
            "event_ts",
            "user_id",
            "customer_id",
            "country",
            "event_type",
        ] {
            assert_eq!(b.column_by_name(name).unwrap().null_count(), 0, "{name}");
        }

        let mut per_customer: HashMap<i64, usize> = HashMap::new();
        for c in i64s(&b, "customer_id") {
            *per_customer.entry(c).or_default() += 1;
        }
        let mut counts: Vec<usize> = per_customer.values().copied().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(counts[0], per_customer[&1], "customer 1 is the busiest");
        assert!(
            counts[0] > 50 * counts[counts.len() / 2],
            "top {} median {}",
            counts[0],
            counts[counts.len() / 2]
        );

        let share = |name: &str, value: &str| {
            strings(&b, name)
                .iter()
                .filter(|v| **v == Some(value))
                .count() as f64
                / n as f64
        };
        let page_views = share("event_type", "page_view");
        assert!((0.53..0.57).contains(&page_views), "page_view {page_views}");
        let mobile = share("device", "mobile");
        assert!((0.53..0.59).contains(&mobile), "mobile {mobile}");
        let us = share("country", "US");
        assert!((0.2..0.4).contains(&us), "US {us}");
    }

    #[test]
    fn sessions_group_a_users_nearby_events() {
        let b = table(params(50_000, 17, RowOrder::Shuffled, 8192));
        let mut users_per_session: HashMap<&str, i64> = HashMap::new();
        for (s, u) in strings(&b, "session_id")
            .into_iter()
            .zip(i64s(&b, "user_id"))
        {
            assert_eq!(*users_per_session.entry(s.unwrap()).or_insert(u), u);
        }
        assert!(users_per_session.len() < 50_000);
    }

    #[test]
    fn app_versions_follow_releases() {
        assert_eq!(app_version(0, 0.0), "6.0.0");
        assert_eq!(app_version(0, 0.99), "5.9.3");
        assert_eq!(app_version(364, 0.0), "7.0.0");
        assert_eq!(app_version(364, 0.8), "6.3.0");
    }

    #[test]
    #[ignore = "timing; run with --release -- --ignored --nocapture"]
    fn throughput() {
        for order in [RowOrder::Arrival, RowOrder::Shuffled] {
            let n = 2_000_000;
            let start = std::time::Instant::now();
            let rows: usize = EventsGenerator::new(params(n, 1, order, 8192))
                .map(|b| b.num_rows())
                .sum();
            let secs = start.elapsed().as_secs_f64();
            println!(
                "events {order}: {rows} rows in {secs:.2}s = {:.0} rows/s",
                rows as f64 / secs
            );
        }
    }
}
