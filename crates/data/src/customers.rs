//! The synthetic `customers` dimension table that `events.customer_id` refers to.

use std::fmt::Write;
use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, Date32Builder, Int64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::blocks::{BlockSource, DEFAULT_BATCH_SIZE, Rebatcher, block_rng};
use crate::events::{COUNTRIES, START_EPOCH_DAYS};
use crate::sampling::Weighted;

/// Customer segments with their share of customers (percent).
pub const SEGMENTS: &[(&str, f64)] = &[
    ("consumer", 55.0),
    ("smb", 30.0),
    ("enterprise", 10.0),
    ("public", 5.0),
];

/// Earliest signup date (2019-01-01) as days since the Unix epoch.
pub const SIGNUP_START_EPOCH_DAYS: i32 = 17_897;
/// Signup dates fall in `SIGNUP_START_EPOCH_DAYS .. START_EPOCH_DAYS` (2019 through 2024).
pub const SIGNUP_DAYS: i32 = START_EPOCH_DAYS - SIGNUP_START_EPOCH_DAYS;

/// RNG stream id of the customers generator.
const CUSTOMERS_STREAM: u64 = 0xC057_0002;

/// What to generate: number of customers, seed and batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomersParams {
    /// Number of customers (ids `1..=num_customers`); use [`crate::events::num_customers`].
    pub num_customers: u64,
    /// Seed; identical params give identical rows.
    pub seed: u64,
    /// Rows per emitted batch (0 is treated as 1); does not affect row content.
    pub batch_size: usize,
}

impl Default for CustomersParams {
    fn default() -> Self {
        Self {
            num_customers: 0,
            seed: 0,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }
}

/// Streams the customers table as RecordBatches with O(batch) memory.
pub struct CustomersGenerator {
    inner: Rebatcher<CustomersBlocks>,
}

impl CustomersGenerator {
    /// A generator for `params`.
    pub fn new(params: CustomersParams) -> Self {
        let blocks = CustomersBlocks {
            seed: params.seed,
            segments: Weighted::new(SEGMENTS),
            countries: Weighted::new(COUNTRIES),
        };
        Self {
            inner: Rebatcher::new(blocks, params.num_customers, params.batch_size),
        }
    }

    /// Schema of the customers table.
    pub fn schema() -> SchemaRef {
        static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
        SCHEMA
            .get_or_init(|| {
                Arc::new(Schema::new(vec![
                    Field::new("customer_id", DataType::Int64, false),
                    Field::new("name", DataType::Utf8, false),
                    Field::new("segment", DataType::Utf8, false),
                    Field::new("country", DataType::Utf8, false),
                    Field::new("signup_date", DataType::Date32, false),
                ]))
            })
            .clone()
    }
}

impl Iterator for CustomersGenerator {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for CustomersGenerator {}

/// Block source of the customers table.
struct CustomersBlocks {
    seed: u64,
    segments: Weighted,
    countries: Weighted,
}

impl BlockSource for CustomersBlocks {
    fn schema(&self) -> SchemaRef {
        CustomersGenerator::schema()
    }

    fn block(&self, index: u64, first_row: u64, rows: usize) -> RecordBatch {
        let mut rng = block_rng(self.seed, CUSTOMERS_STREAM, index);
        let mut customer_id = Int64Builder::with_capacity(rows);
        let mut name = StringBuilder::with_capacity(rows, rows * 15);
        let mut segment = StringBuilder::with_capacity(rows, rows * 8);
        let mut country = StringBuilder::with_capacity(rows, rows * 2);
        let mut signup_date = Date32Builder::with_capacity(rows);
        let mut name_buf = String::with_capacity(24);

        for id in first_row + 1..=first_row + rows as u64 {
            customer_id.append_value(id as i64);
            name_buf.clear();
            write!(name_buf, "Customer {id:06}").expect("writing to a String cannot fail");
            name.append_value(&name_buf);
            segment.append_value(SEGMENTS[self.segments.sample(&mut rng)].0);
            country.append_value(COUNTRIES[self.countries.sample(&mut rng)].0);
            // sqrt skews signups toward recent years (the business grows).
            let offset = (f64::from(SIGNUP_DAYS) * rng.random::<f64>().sqrt()) as i32;
            signup_date.append_value(SIGNUP_START_EPOCH_DAYS + offset.min(SIGNUP_DAYS - 1));
        }

        let columns: Vec<ArrayRef> = vec![
            Arc::new(customer_id.finish()),
            Arc::new(name.finish()),
            Arc::new(segment.finish()),
            Arc::new(country.finish()),
            Arc::new(signup_date.finish()),
        ];
        RecordBatch::try_new(self.schema(), columns).expect("columns match the customers schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::compute::concat_batches;
    use arrow::datatypes::{Date32Type, Int64Type};

    fn table(num_customers: u64, seed: u64, batch_size: usize) -> RecordBatch {
        let batches: Vec<_> = CustomersGenerator::new(CustomersParams {
            num_customers,
            seed,
            batch_size,
        })
        .collect();
        assert_eq!(
            batches.len() as u64,
            num_customers.div_ceil(batch_size as u64)
        );
        concat_batches(&CustomersGenerator::schema(), &batches).unwrap()
    }

    #[test]
    fn signup_start_is_2019() {
        let d = chrono::NaiveDate::from_ymd_opt(2019, 1, 1).unwrap();
        assert_eq!(
            (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days(),
            i64::from(SIGNUP_START_EPOCH_DAYS)
        );
    }

    #[test]
    fn rows_ids_and_domains() {
        for (n, batch) in [(0, 10), (1, 10), (100, 7), (10_000, 8192)] {
            let b = table(n, 1, batch);
            assert_eq!(b.num_rows() as u64, n);
            let ids = b.column(0).as_primitive::<Int64Type>();
            assert!(ids.values().iter().copied().eq(1..=n as i64));
        }
        let b = table(10_000, 1, 1000);
        let names = b.column_by_name("name").unwrap().as_string::<i32>();
        assert_eq!(names.value(0), "Customer 000001");
        assert_eq!(names.value(9999), "Customer 010000");
        let segments = b.column_by_name("segment").unwrap().as_string::<i32>();
        assert!(
            segments
                .iter()
                .flatten()
                .all(|s| SEGMENTS.iter().any(|(v, _)| *v == s))
        );
        let consumer = segments.iter().filter(|s| *s == Some("consumer")).count();
        assert!((5000..6000).contains(&consumer), "consumers {consumer}");
        let countries = b.column_by_name("country").unwrap().as_string::<i32>();
        assert!(
            countries
                .iter()
                .flatten()
                .all(|c| COUNTRIES.iter().any(|(v, _)| *v == c))
        );
        let dates = b
            .column_by_name("signup_date")
            .unwrap()
            .as_primitive::<Date32Type>();
        assert!(
            dates
                .values()
                .iter()
                .all(|d| (SIGNUP_START_EPOCH_DAYS..START_EPOCH_DAYS).contains(d))
        );
    }

    #[test]
    fn deterministic_by_seed() {
        assert_eq!(table(20_000, 5, 8192), table(20_000, 5, 999));
        assert_ne!(table(20_000, 5, 8192), table(20_000, 6, 8192));
    }
}
