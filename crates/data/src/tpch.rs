//! The eight TPC-H tables, generated in-process by tpchgen / tpchgen-arrow as Arrow batches.
//!
//! A table at a scale factor is split into tpchgen "parts" (contiguous key ranges that
//! concatenate to exactly the full table); worker threads generate parts in parallel and
//! [`TpchBatches`] hands their batches out in part order, so the output does not depend on the
//! number of threads and memory stays bounded by about one part per worker.

use crate::DataError;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow,
    SupplierArrow,
};

/// The largest scale factor accepted (the largest one TPC publishes results for).
pub const MAX_SCALE_FACTOR: f64 = 100_000.0;

/// Rows a worker generates per tpchgen part (bounds the memory buffered per worker).
pub const DEFAULT_PART_ROWS: u64 = 256 * 1024;

/// One of the eight TPC-H tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TpchTable {
    /// NATION: 25 rows at every scale factor.
    Nation,
    /// REGION: 5 rows at every scale factor.
    Region,
    /// PART: 200,000 x SF rows.
    Part,
    /// SUPPLIER: 10,000 x SF rows.
    Supplier,
    /// PARTSUPP: 800,000 x SF rows.
    PartSupp,
    /// CUSTOMER: 150,000 x SF rows.
    Customer,
    /// ORDERS: 1,500,000 x SF rows.
    Orders,
    /// LINEITEM: about 6,000,000 x SF rows (1 to 7 per order).
    LineItem,
}

impl TpchTable {
    /// All eight tables, dimensions first.
    pub const ALL: [TpchTable; 8] = [
        TpchTable::Nation,
        TpchTable::Region,
        TpchTable::Part,
        TpchTable::Supplier,
        TpchTable::PartSupp,
        TpchTable::Customer,
        TpchTable::Orders,
        TpchTable::LineItem,
    ];

    /// The table name used in SQL and in the catalog (lower case, as in the queries).
    pub fn name(self) -> &'static str {
        match self {
            TpchTable::Nation => "nation",
            TpchTable::Region => "region",
            TpchTable::Part => "part",
            TpchTable::Supplier => "supplier",
            TpchTable::PartSupp => "partsupp",
            TpchTable::Customer => "customer",
            TpchTable::Orders => "orders",
            TpchTable::LineItem => "lineitem",
        }
    }

    /// Parses one table name (case-insensitive).
    pub fn parse(text: &str) -> Result<Self, DataError> {
        let wanted = text.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|t| t.name() == wanted)
            .ok_or_else(|| DataError::UnknownTpchTable(text.trim().to_string()))
    }

    /// Parses a comma-separated list into distinct tables in canonical order.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, DataError> {
        let mut tables = Vec::new();
        for item in text.split(',').filter(|s| !s.trim().is_empty()) {
            let table = Self::parse(item)?;
            if !tables.contains(&table) {
                tables.push(table);
            }
        }
        if tables.is_empty() {
            return Err(DataError::UnknownTpchTable(text.to_string()));
        }
        tables.sort();
        Ok(tables)
    }

    /// The Arrow schema tpchgen-arrow produces for this table.
    pub fn schema(self) -> SchemaRef {
        match self {
            TpchTable::Nation => NationArrow::schema_ref(),
            TpchTable::Region => RegionArrow::schema_ref(),
            TpchTable::Part => PartArrow::schema_ref(),
            TpchTable::Supplier => SupplierArrow::schema_ref(),
            TpchTable::PartSupp => PartSuppArrow::schema_ref(),
            TpchTable::Customer => CustomerArrow::schema_ref(),
            TpchTable::Orders => OrderArrow::schema_ref(),
            TpchTable::LineItem => LineItemArrow::schema_ref(),
        }
    }

    /// The exact row count at `scale_factor`, or None for lineitem (known only once generated).
    pub fn row_count(self, scale_factor: f64) -> Option<u64> {
        let n = match self {
            TpchTable::Nation => 25,
            TpchTable::Region => 5,
            TpchTable::Part => PartGenerator::calculate_row_count(scale_factor, 1, 1),
            TpchTable::Supplier => SupplierGenerator::calculate_row_count(scale_factor, 1, 1),
            // tpchgen counts parts here; each part has four suppliers.
            TpchTable::PartSupp => 4 * PartSuppGenerator::calculate_row_count(scale_factor, 1, 1),
            TpchTable::Customer => CustomerGenerator::calculate_row_count(scale_factor, 1, 1),
            TpchTable::Orders => OrderGenerator::calculate_row_count(scale_factor, 1, 1),
            TpchTable::LineItem => return None,
        };
        Some(n.max(0) as u64)
    }

    /// The row count, estimated for lineitem as four lines per order (for progress and sizing).
    pub fn estimated_rows(self, scale_factor: f64) -> u64 {
        match self.row_count(scale_factor) {
            Some(n) => n,
            None => TpchTable::Orders.row_count(scale_factor).unwrap_or(0) * 4,
        }
    }

    /// How many tpchgen parts to split the table into for `part_rows` rows per part.
    fn parts(self, scale_factor: f64, part_rows: u64) -> usize {
        match self {
            TpchTable::Nation | TpchTable::Region => 1,
            _ => {
                let rows = self.estimated_rows(scale_factor);
                rows.div_ceil(part_rows.max(1)).clamp(1, i32::MAX as u64) as usize
            }
        }
    }

    /// Batches of part `part` (1-based) of `part_count`.
    fn part_batches(
        self,
        scale_factor: f64,
        part: i32,
        part_count: i32,
        batch_size: usize,
    ) -> Box<dyn Iterator<Item = Result<RecordBatch, arrow::error::ArrowError>> + Send> {
        let (sf, p, n, b) = (scale_factor, part, part_count, batch_size);
        match self {
            TpchTable::Nation => {
                Box::new(NationArrow::new(NationGenerator::new(sf, p, n)).with_batch_size(b))
            }
            TpchTable::Region => {
                Box::new(RegionArrow::new(RegionGenerator::new(sf, p, n)).with_batch_size(b))
            }
            TpchTable::Part => {
                Box::new(PartArrow::new(PartGenerator::new(sf, p, n)).with_batch_size(b))
            }
            TpchTable::Supplier => {
                Box::new(SupplierArrow::new(SupplierGenerator::new(sf, p, n)).with_batch_size(b))
            }
            TpchTable::PartSupp => {
                Box::new(PartSuppArrow::new(PartSuppGenerator::new(sf, p, n)).with_batch_size(b))
            }
            TpchTable::Customer => {
                Box::new(CustomerArrow::new(CustomerGenerator::new(sf, p, n)).with_batch_size(b))
            }
            TpchTable::Orders => {
                Box::new(OrderArrow::new(OrderGenerator::new(sf, p, n)).with_batch_size(b))
            }
            TpchTable::LineItem => {
                Box::new(LineItemArrow::new(LineItemGenerator::new(sf, p, n)).with_batch_size(b))
            }
        }
    }
}

impl std::fmt::Display for TpchTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The table names, comma-separated (for error messages and help).
pub fn tpch_table_names() -> String {
    TpchTable::ALL.map(TpchTable::name).join(",")
}

/// Checks a scale factor: finite, above 0, at most `MAX_SCALE_FACTOR`, and large enough
/// that every table has at least one row.
pub fn check_scale_factor(scale_factor: f64) -> Result<(), DataError> {
    if !scale_factor.is_finite() || scale_factor <= 0.0 || scale_factor > MAX_SCALE_FACTOR {
        return Err(DataError::InvalidScaleFactor(scale_factor.to_string()));
    }
    if TpchTable::Supplier.row_count(scale_factor) == Some(0) {
        return Err(DataError::InvalidScaleFactor(scale_factor.to_string()));
    }
    Ok(())
}

/// How to generate one table.
#[derive(Debug, Clone, Copy)]
pub struct TpchGenParams {
    /// The table.
    pub table: TpchTable,
    /// TPC-H scale factor (1 = about 1 GB of raw data).
    pub scale_factor: f64,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Rows per Arrow batch.
    pub batch_size: usize,
    /// Rows per tpchgen part (a worker's unit of work and buffered memory).
    pub part_rows: u64,
}

enum Message {
    Batch(RecordBatch),
    EndOfPart,
    Failed(String),
}

/// The batches of one TPC-H table in key order, generated by parallel workers.
pub struct TpchBatches {
    table: TpchTable,
    receivers: Vec<Receiver<Message>>,
    workers: Vec<JoinHandle<()>>,
    parts: usize,
    next_part: usize,
    failed: bool,
}

impl TpchBatches {
    /// Starts the workers for `params` (checks the scale factor first).
    pub fn start(params: TpchGenParams) -> Result<Self, DataError> {
        check_scale_factor(params.scale_factor)?;
        let table = params.table;
        let parts = table.parts(params.scale_factor, params.part_rows);
        let threads = params.threads.clamp(1, parts);
        let batch_size = params.batch_size.max(1);
        // A worker may buffer one whole part ahead of the reader, and no more.
        let part_batches = (params.part_rows as usize).div_ceil(batch_size) + 2;
        let mut receivers = Vec::with_capacity(threads);
        let mut workers = Vec::with_capacity(threads);
        for worker in 0..threads {
            let (tx, rx) = sync_channel(part_batches);
            receivers.push(rx);
            let sf = params.scale_factor;
            let handle = std::thread::Builder::new()
                .name(format!("tpchgen-{table}-{worker}"))
                .spawn(move || generate_parts(table, sf, worker, threads, parts, batch_size, tx))
                .map_err(|e| DataError::Generator(format!("cannot start a worker thread: {e}")))?;
            workers.push(handle);
        }
        Ok(Self {
            table,
            receivers,
            workers,
            parts,
            next_part: 0,
            failed: false,
        })
    }

    /// The table being generated.
    pub fn table(&self) -> TpchTable {
        self.table
    }
}

fn generate_parts(
    table: TpchTable,
    scale_factor: f64,
    worker: usize,
    threads: usize,
    parts: usize,
    batch_size: usize,
    tx: SyncSender<Message>,
) {
    for part in (worker..parts).step_by(threads) {
        let batches = table.part_batches(scale_factor, part as i32 + 1, parts as i32, batch_size);
        for batch in batches {
            let message = match batch {
                Ok(b) => Message::Batch(b),
                Err(e) => Message::Failed(e.to_string()),
            };
            let stop = matches!(message, Message::Failed(_));
            if tx.send(message).is_err() || stop {
                return; // the reader is gone or the part failed
            }
        }
        if tx.send(Message::EndOfPart).is_err() {
            return;
        }
    }
}

impl Iterator for TpchBatches {
    type Item = Result<RecordBatch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed && self.next_part < self.parts {
            let rx = &self.receivers[self.next_part % self.receivers.len()];
            match rx.recv() {
                Ok(Message::Batch(b)) if b.num_rows() == 0 => continue,
                Ok(Message::Batch(b)) => return Some(Ok(b)),
                Ok(Message::EndOfPart) => self.next_part += 1,
                Ok(Message::Failed(e)) => {
                    self.failed = true;
                    return Some(Err(DataError::Generator(format!(
                        "generating {}: {e}",
                        self.table
                    ))));
                }
                Err(_) => {
                    self.failed = true;
                    return Some(Err(DataError::Generator(format!(
                        "a worker generating {} stopped unexpectedly",
                        self.table
                    ))));
                }
            }
        }
        None
    }
}

impl Drop for TpchBatches {
    fn drop(&mut self) {
        // Dropping the receivers makes every blocked worker's next send fail, so it returns.
        self.receivers.clear();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array};

    #[test]
    fn parses_table_lists() {
        assert_eq!(
            TpchTable::parse_list("orders, LINEITEM,orders").unwrap(),
            [TpchTable::Orders, TpchTable::LineItem]
        );
        assert_eq!(
            TpchTable::parse_list("lineitems"),
            Err(DataError::UnknownTpchTable("lineitems".into()))
        );
        assert!(TpchTable::parse_list(" , ").is_err());
        assert_eq!(tpch_table_names().split(',').count(), 8);
    }

    #[test]
    fn scale_factor_bounds() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e6, 1e-9] {
            assert!(check_scale_factor(bad).is_err(), "{bad}");
        }
        for good in [0.001, 0.01, 1.0, 10.0] {
            assert!(check_scale_factor(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn specification_row_counts_at_sf_0_01() {
        let expected = [
            (TpchTable::Nation, 25),
            (TpchTable::Region, 5),
            (TpchTable::Part, 2000),
            (TpchTable::Supplier, 100),
            (TpchTable::PartSupp, 8000),
            (TpchTable::Customer, 1500),
            (TpchTable::Orders, 15000),
        ];
        for (table, rows) in expected {
            assert_eq!(table.row_count(0.01), Some(rows), "{table}");
        }
        assert_eq!(TpchTable::LineItem.row_count(0.01), None);
        assert_eq!(TpchTable::LineItem.estimated_rows(0.01), 60000);
    }

    fn collect(params: TpchGenParams) -> Vec<RecordBatch> {
        TpchBatches::start(params)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    #[test]
    fn parallel_parts_concatenate_to_the_whole_table_in_key_order() {
        let base = TpchGenParams {
            table: TpchTable::Orders,
            scale_factor: 0.01,
            threads: 1,
            batch_size: 1000,
            part_rows: 1 << 30,
        };
        let serial = collect(base);
        let parallel = collect(TpchGenParams {
            threads: 3,
            part_rows: 1700,
            batch_size: 333,
            ..base
        });
        let keys = |batches: &[RecordBatch]| -> Vec<i64> {
            batches
                .iter()
                .flat_map(|b| {
                    let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                    a.values().to_vec()
                })
                .collect()
        };
        let (a, b) = (keys(&serial), keys(&parallel));
        assert_eq!(a.len(), 15000);
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(parallel[0].schema(), TpchTable::Orders.schema());
    }

    #[test]
    fn dropping_early_stops_the_workers() {
        let mut batches = TpchBatches::start(TpchGenParams {
            table: TpchTable::LineItem,
            scale_factor: 0.01,
            threads: 2,
            batch_size: 100,
            part_rows: 1000,
        })
        .unwrap();
        let first = batches.next().unwrap().unwrap();
        assert!(first.num_rows() > 0 && first.column(0).len() == first.num_rows());
        drop(batches); // must not hang
    }
}
