//! `load-dataset`: a Parquet/CSV file or directory becomes a managed table's initial layout.
//! For a CSV source it also measures what the conversion bought: both sizes, and one full scan
//! of each through the same reader path (every column decoded).

use crate::initial_layout::{InitialLayoutReport, InitialLayoutRequest};
use crate::{DbError, Progress, Workspace};
use dbopt_core::{LayoutSpec, TableName};
use dbopt_engine::source::{
    SourceFormat, SourceInfo, inspect_remote_source, inspect_source, stream_source,
};
use dbopt_engine::store::is_remote;
use dbopt_engine::writer::DEFAULT_ROWS_PER_FILE;
use futures::StreamExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// A CSV source against the Parquet it became.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvComparison {
    /// Bytes of the CSV files.
    pub csv_bytes: u64,
    /// Bytes of the Parquet files written.
    pub parquet_bytes: u64,
    /// One full scan of the CSV (parse every column).
    pub csv_scan: Duration,
    /// One full scan of the Parquet (decode every column).
    pub parquet_scan: Duration,
    /// Rows each scan read.
    pub rows: u64,
}

impl CsvComparison {
    /// CSV bytes per Parquet byte.
    pub fn compression_ratio(&self) -> f64 {
        self.csv_bytes as f64 / self.parquet_bytes.max(1) as f64
    }

    /// How many times faster the Parquet scan was.
    pub fn scan_speedup(&self) -> f64 {
        self.csv_scan.as_secs_f64() / self.parquet_scan.as_secs_f64().max(1e-9)
    }
}

/// What `load-dataset` did.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// The initial layout written.
    pub layout: InitialLayoutReport,
    /// For a CSV source: sizes and scan times of both formats.
    pub csv: Option<CsvComparison>,
}

impl Workspace {
    /// Converts the source at `source` into the initial layout of `table` (ZSTD Parquet).
    #[tracing::instrument(name = "load", skip_all, fields(table = %table))]
    pub async fn load_dataset(
        &self,
        table: &TableName,
        source: &Path,
        replace: bool,
        progress: &dyn Progress,
    ) -> Result<LoadReport, DbError> {
        self.check_can_create(table, replace)?;
        let info = self.inspect_load_source(source).await?;
        let session = self.engine_session();
        let rows = stream_source(&session, &info).await?;
        let request = InitialLayoutRequest {
            table: table.clone(),
            source: format!("load-dataset {}", source.display()),
            replace,
            rows_per_file: DEFAULT_ROWS_PER_FILE,
            spec: LayoutSpec::default(),
            writers: 1,
        };
        let batches = rows.batches.map(|b| b.map_err(DbError::from));
        let layout = self
            .write_initial_layout(&request, rows.schema, batches, progress)
            .await?;
        // The table is loaded: a comparison that fails is a warning, not a failed load.
        let csv = match info.format {
            // With the layouts on object storage the comparison would download the table.
            SourceFormat::Csv if self.remote_data().is_none() => {
                progress.message("scanning the CSV and the Parquet once each");
                let compared = self.compare_with_csv(table, &info, &layout).await;
                match compared {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::warn!("cannot compare the CSV with its Parquet: {e}");
                        None
                    }
                }
            }
            SourceFormat::Csv | SourceFormat::Parquet => None,
        };
        Ok(LoadReport { layout, csv })
    }

    /// The source at `source`, checked: a local file or directory outside DATA_DIR, or an
    /// object-storage prefix (`s3://bucket/prefix/`).
    async fn inspect_load_source(&self, source: &Path) -> Result<SourceInfo, DbError> {
        let location = source.to_string_lossy();
        if is_remote(&location) {
            return Ok(inspect_remote_source(&location).await?);
        }
        let info = inspect_source(source)?;
        let data_dir = self.data_dir();
        if let Ok(abs) = std::path::absolute(source)
            && abs.starts_with(data_dir)
            && !abs.starts_with(data_dir.join(crate::nyc_taxi::DOWNLOADS_DIR))
        {
            return Err(DbError::SourceInsideDataDir {
                source_path: source.to_path_buf(),
                data_dir: data_dir.to_path_buf(),
            });
        }
        Ok(info)
    }

    /// Sizes of the CSV source and the table's initial layout, and one full scan of each.
    async fn compare_with_csv(
        &self,
        table: &TableName,
        csv: &SourceInfo,
        layout: &InitialLayoutReport,
    ) -> Result<CsvComparison, DbError> {
        let csv_bytes = csv.total_bytes()?;
        let parquet = inspect_source(&self.layout_dir(table, &dbopt_core::LayoutId::initial()))?;
        let (rows, csv_scan) = self.full_scan(csv).await?;
        let (_, parquet_scan) = self.full_scan(&parquet).await?;
        Ok(CsvComparison {
            csv_bytes,
            parquet_bytes: layout.bytes,
            csv_scan,
            parquet_scan,
            rows,
        })
    }

    /// Reads every row and column of `source` once: rows and wall time.
    async fn full_scan(&self, source: &SourceInfo) -> Result<(u64, Duration), DbError> {
        let session = self.engine_session();
        let started = Instant::now();
        let mut stream = stream_source(&session, source).await?.batches;
        let mut rows = 0u64;
        while let Some(batch) = stream.next().await {
            rows += batch?.num_rows() as u64;
        }
        Ok((rows, started.elapsed()))
    }
}
