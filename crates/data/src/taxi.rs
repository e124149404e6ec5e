//! NYC TLC taxi trip records: the real file schema, a small generated sample with that
//! schema (for tests, which have no internet), and weighted query templates over a month of
//! trips (pickup time ranges, zone lookups, passenger count, fare and distance ranges,
//! payment-type group-bys, top-N trips).

use arrow::array::{
    ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{Datelike, NaiveDate, TimeDelta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

use crate::sampling::{Weighted, Zipf, log_normal};

/// The two trip-record files with the shared schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxiColor {
    /// Yellow cabs (`tpep_` timestamps).
    Yellow,
    /// Green cabs (`lpep_` timestamps).
    Green,
}

impl TaxiColor {
    /// "yellow" or "green", as in the file names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Yellow => "yellow",
            Self::Green => "green",
        }
    }

    /// The prefix of the timestamp columns.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Yellow => "tpep",
            Self::Green => "lpep",
        }
    }

    /// The pickup timestamp column.
    pub fn pickup_column(self) -> String {
        format!("{}_pickup_datetime", self.prefix())
    }

    /// The drop-off timestamp column.
    pub fn dropoff_column(self) -> String {
        format!("{}_dropoff_datetime", self.prefix())
    }

    /// The color whose pickup column is `column`, if any.
    pub fn from_pickup_column(column: &str) -> Option<Self> {
        [Self::Yellow, Self::Green]
            .into_iter()
            .find(|c| c.pickup_column() == column)
    }

    /// The trip-record file name of a month, e.g. `yellow_tripdata_2024-01.parquet`.
    pub fn file_name(self, year: i32, month: u32) -> String {
        format!("{}_tripdata_{year:04}-{month:02}.parquet", self.name())
    }
}

/// Number of TLC taxi zones (LocationID 1..=265).
pub const NUM_ZONES: i32 = 265;

/// The schema of a TLC trip-record file (2024 layout).
pub fn taxi_schema(color: TaxiColor) -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
    let mut fields = vec![
        Field::new("VendorID", DataType::Int32, true),
        Field::new(color.pickup_column(), ts.clone(), true),
        Field::new(color.dropoff_column(), ts, true),
        Field::new("passenger_count", DataType::Int64, true),
        Field::new("trip_distance", DataType::Float64, true),
        Field::new("RatecodeID", DataType::Int64, true),
        Field::new("store_and_fwd_flag", DataType::Utf8, true),
        Field::new("PULocationID", DataType::Int32, true),
        Field::new("DOLocationID", DataType::Int32, true),
        Field::new("payment_type", DataType::Int64, true),
    ];
    for money in [
        "fare_amount",
        "extra",
        "mta_tax",
        "tip_amount",
        "tolls_amount",
        "improvement_surcharge",
        "total_amount",
        "congestion_surcharge",
        "Airport_fee",
    ] {
        fields.push(Field::new(money, DataType::Float64, true));
    }
    Arc::new(Schema::new(fields))
}

/// `rows` generated trips of one month with the real schema (zones Zipf-skewed, fares from
/// distance, some null passenger counts), deterministic for `seed`.
pub fn taxi_sample(color: TaxiColor, year: i32, month: u32, rows: usize, seed: u64) -> RecordBatch {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = NaiveDate::from_ymd_opt(year, month, 1)
        .unwrap_or_default()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_micros();
    let month_us = i64::from(days_in_month(year, month)) * 86_400_000_000;
    let zones = Zipf::new(NUM_ZONES as u64, 1.0);
    let payments = Weighted::from_weights([0.75, 0.2, 0.03, 0.02]);
    let mut cols: Vec<Vec<f64>> = (0..9).map(|_| Vec::with_capacity(rows)).collect();
    let (
        mut vendor,
        mut pu,
        mut du,
        mut pass,
        mut dist,
        mut rate,
        mut flag,
        mut pul,
        mut dol,
        mut pay,
    ) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    for _ in 0..rows {
        let pickup = start + rng.random_range(0..month_us);
        let d = log_normal(&mut rng, 0.6, 0.8).min(80.0);
        let minutes = (d * 3.5 + rng.random_range(1.0..10.0)) as i64;
        vendor.push(Some(rng.random_range(1..=2)));
        pu.push(Some(pickup));
        du.push(Some(pickup + minutes * 60_000_000));
        pass.push((rng.random::<f64>() > 0.05).then(|| rng.random_range(1..=4)));
        dist.push(Some((d * 100.0).round() / 100.0));
        rate.push(Some(if rng.random::<f64>() < 0.95 { 1 } else { 2 }));
        flag.push(Some(if rng.random::<f64>() < 0.99 { "N" } else { "Y" }));
        pul.push(Some(zones.sample(&mut rng) as i32));
        dol.push(Some(zones.sample(&mut rng) as i32));
        pay.push(Some(payments.sample(&mut rng) as i64 + 1));
        let fare = ((3.0 + d * 2.8) * 100.0).round() / 100.0;
        let tip = if pay.last() == Some(&Some(1)) {
            (fare * 0.2 * 100.0).round() / 100.0
        } else {
            0.0
        };
        let congestion = 2.5;
        let total = fare + 1.0 + 0.5 + tip + 1.0 + congestion;
        // fare, extra, mta_tax, tip, tolls, improvement, total, congestion, airport fee
        let money = [fare, 1.0, 0.5, tip, 0.0, 1.0, total, congestion, 0.0];
        for (col, v) in cols.iter_mut().zip(money) {
            col.push((v * 100.0).round() / 100.0);
        }
    }
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(vendor)),
        Arc::new(TimestampMicrosecondArray::from(pu)),
        Arc::new(TimestampMicrosecondArray::from(du)),
        Arc::new(Int64Array::from(pass)),
        Arc::new(Float64Array::from(dist)),
        Arc::new(Int64Array::from(rate)),
        Arc::new(StringArray::from(flag)),
        Arc::new(Int32Array::from(pul)),
        Arc::new(Int32Array::from(dol)),
        Arc::new(Int64Array::from(pay)),
    ];
    for c in cols {
        arrays.push(Arc::new(Float64Array::from(c)));
    }
    RecordBatch::try_new(taxi_schema(color), arrays).expect("columns match the schema")
}

/// Days in a calendar month.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default();
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    (next - first).num_days().max(1) as u32
}

/// What the taxi queries refer to: the table, its timestamp columns, the month of most trips
/// and the pickup zones ranked by trips (most first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxiDomain {
    /// The table name.
    pub table: String,
    /// yellow or green.
    pub color: TaxiColor,
    /// First day of the month the trips are in.
    pub month_start: NaiveDate,
    /// Zone ids ranked by pickups (most first); empty means 1..=265.
    pub zones: Vec<i32>,
}

/// The taxi query templates with their relative weights.
pub const TAXI_TEMPLATES: &[(&str, f64)] = &[
    ("pickup_window_by_payment", 18.0),
    ("daily_trips", 12.0),
    ("pickup_zone_destinations", 14.0),
    ("dropoff_zone_fares", 10.0),
    ("zone_pair", 8.0),
    ("passenger_count_payment", 8.0),
    ("fare_range_tips", 10.0),
    ("distance_range_by_ratecode", 8.0),
    ("top_trips_day", 8.0),
    ("payment_summary", 4.0),
];

/// A deterministic stream of taxi queries.
pub struct TaxiWorkload {
    domain: TaxiDomain,
    rng: StdRng,
    templates: Weighted,
    zones: Zipf,
    days: u32,
}

impl TaxiWorkload {
    /// A workload whose query sequence is fixed by `seed`.
    pub fn new(seed: u64, mut domain: TaxiDomain) -> Self {
        if domain.zones.is_empty() {
            domain.zones = (1..=NUM_ZONES).collect();
        }
        Self {
            rng: StdRng::seed_from_u64(seed),
            templates: Weighted::new(TAXI_TEMPLATES),
            zones: Zipf::new(domain.zones.len() as u64, 1.0),
            days: days_in_month(domain.month_start.year(), domain.month_start.month()),
            domain,
        }
    }

    fn zone(&mut self) -> i32 {
        self.domain.zones[(self.zones.sample(&mut self.rng) - 1) as usize]
    }

    /// A `[start, end)` pickup window of `minutes` inside the month.
    fn window(&mut self, minutes: i64) -> String {
        let total = i64::from(self.days) * 24 * 60;
        let start_min = self.rng.random_range(0..=(total - minutes).max(0)) / 15 * 15;
        let base = self
            .domain
            .month_start
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists");
        let s = base + TimeDelta::minutes(start_min);
        let e = s + TimeDelta::minutes(minutes);
        let c = self.domain.color.pickup_column();
        let f = "%Y-%m-%d %H:%M:%S";
        format!(
            "{c} >= TIMESTAMP '{}' AND {c} < TIMESTAMP '{}'",
            s.format(f),
            e.format(f)
        )
    }

    fn days_window(&mut self, lo: i64, hi: i64) -> String {
        let w = self.rng.random_range(lo..=hi);
        self.window(w * 24 * 60)
    }

    /// Draws the next query: its template name and SQL.
    pub fn next_query(&mut self) -> (&'static str, String) {
        let (name, _) = TAXI_TEMPLATES[self.templates.sample(&mut self.rng)];
        (name, self.render(name))
    }

    /// Renders one template with fresh parameters.
    pub fn render(&mut self, name: &str) -> String {
        let t = self.domain.table.clone();
        let pickup = self.domain.color.pickup_column();
        match name {
            "pickup_window_by_payment" => {
                let hours = self.rng.random_range(1..=6);
                let w = self.window(hours * 60);
                format!(
                    "SELECT payment_type, COUNT(*) AS trips, AVG(fare_amount) AS avg_fare, SUM(tip_amount) AS tips \
                     FROM {t} WHERE {w} GROUP BY payment_type ORDER BY trips DESC"
                )
            }
            "daily_trips" => {
                let w = self.days_window(1, 7);
                format!(
                    "SELECT date_trunc('day', {pickup}) AS day, COUNT(*) AS trips, SUM(total_amount) AS revenue \
                     FROM {t} WHERE {w} GROUP BY 1 ORDER BY 1"
                )
            }
            "pickup_zone_destinations" => {
                let z = self.zone();
                let w = self.days_window(1, 14);
                format!(
                    "SELECT \"DOLocationID\", COUNT(*) AS trips, AVG(trip_distance) AS avg_distance \
                     FROM {t} WHERE \"PULocationID\" = {z} AND {w} GROUP BY 1 ORDER BY trips DESC LIMIT 10"
                )
            }
            "dropoff_zone_fares" => {
                let z = self.zone();
                format!(
                    "SELECT COUNT(*) AS trips, AVG(fare_amount) AS avg_fare, AVG(tip_amount) AS avg_tip \
                     FROM {t} WHERE \"DOLocationID\" = {z}"
                )
            }
            "zone_pair" => {
                let (a, b) = (self.zone(), self.zone());
                format!(
                    "SELECT COUNT(*) AS trips, AVG(trip_distance) AS avg_distance, AVG(total_amount) AS avg_total \
                     FROM {t} WHERE \"PULocationID\" = {a} AND \"DOLocationID\" = {b}"
                )
            }
            "passenger_count_payment" => {
                let n = self.rng.random_range(1..=6);
                format!(
                    "SELECT payment_type, COUNT(*) AS trips, AVG(total_amount) AS avg_total \
                     FROM {t} WHERE passenger_count = {n} GROUP BY payment_type ORDER BY payment_type"
                )
            }
            "fare_range_tips" => {
                let lo = self.rng.random_range(5..=60);
                let hi = lo + self.rng.random_range(2..=20);
                format!(
                    "SELECT payment_type, COUNT(*) AS trips, AVG(tip_amount) AS avg_tip \
                     FROM {t} WHERE fare_amount >= {lo}.0 AND fare_amount < {hi}.0 GROUP BY payment_type ORDER BY trips DESC"
                )
            }
            "distance_range_by_ratecode" => {
                let lo = self.rng.random_range(0..=20);
                let hi = lo + self.rng.random_range(1..=10);
                format!(
                    "SELECT \"RatecodeID\", COUNT(*) AS trips, AVG(fare_amount) AS avg_fare \
                     FROM {t} WHERE trip_distance >= {lo}.0 AND trip_distance < {hi}.0 GROUP BY 1 ORDER BY 1"
                )
            }
            "top_trips_day" => {
                let w = self.days_window(1, 1);
                format!(
                    "SELECT {pickup}, \"PULocationID\", \"DOLocationID\", trip_distance, total_amount \
                     FROM {t} WHERE {w} ORDER BY total_amount DESC LIMIT 10"
                )
            }
            _ => format!(
                "SELECT payment_type, COUNT(*) AS trips, SUM(total_amount) AS revenue, AVG(trip_distance) AS avg_distance \
                 FROM {t} GROUP BY payment_type ORDER BY payment_type"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_has_the_real_schema_and_the_month() {
        let b = taxi_sample(TaxiColor::Green, 2024, 2, 500, 3);
        assert_eq!(b.num_rows(), 500);
        assert_eq!(b.schema(), taxi_schema(TaxiColor::Green));
        assert!(b.schema().field_with_name("lpep_pickup_datetime").is_ok());
        let pu = b
            .column(1)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        let lo = NaiveDate::from_ymd_opt(2024, 2, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_micros();
        let hi = lo + 29 * 86_400_000_000;
        assert!(pu.values().iter().all(|v| (lo..hi).contains(v)));
        assert_eq!(
            taxi_sample(TaxiColor::Green, 2024, 2, 50, 3),
            taxi_sample(TaxiColor::Green, 2024, 2, 50, 3)
        );
        let total = b
            .column(16)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        let fare = b
            .column(10)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert!((0..500).all(|i| total.value(i) > fare.value(i)));
    }

    #[test]
    fn workload_covers_templates_and_stays_in_month() {
        let domain = TaxiDomain {
            table: "nyc_taxi".into(),
            color: TaxiColor::Yellow,
            month_start: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            zones: vec![],
        };
        let mut w = TaxiWorkload::new(1, domain);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..400 {
            let (name, sql) = w.next_query();
            seen.insert(name);
            assert!(sql.contains("FROM nyc_taxi"), "{sql}");
            if sql.contains("TIMESTAMP") {
                assert!(
                    sql.contains("TIMESTAMP '2024-01-")
                        || sql.contains("TIMESTAMP '2024-02-01 00:00:00'"),
                    "{sql}"
                );
            }
        }
        assert_eq!(seen.len(), TAXI_TEMPLATES.len());
        assert_eq!(
            TaxiColor::Yellow.file_name(2024, 1),
            "yellow_tripdata_2024-01.parquet"
        );
        assert_eq!(days_in_month(2024, 2), 29);
    }
}
