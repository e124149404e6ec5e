//! NYC TLC taxi trips: download a month's trip-record Parquet file over HTTP(S) into
//! DATA_DIR/_downloads/ (through `fetch`: progress, resume with HTTP Range, retries; then
//! Parquet validation), load it as a table's initial layout, and run realistic taxi queries
//! against it.

use crate::fetch::{FetchFailure, download};
use crate::initial_layout::InitialLayoutReport;
use crate::workload::{Routing, Runner, SummaryBuilder, WorkloadSummary, run_logged};
use crate::workload_file::first_column;
use crate::{DbError, Progress, Workspace};
use dbopt_core::TableName;
use dbopt_data::taxi::{TaxiColor, TaxiDomain, TaxiWorkload};
use dbopt_engine::EngineError;
use dbopt_engine::footer::validate_file;
use serde::Serialize;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Where TLC publishes trip records.
pub const DEFAULT_NYC_TAXI_BASE_URL: &str = "https://d37ci6vzurychx.cloudfront.net/trip-data";
/// Environment variable that overrides the base URL (a mirror, or a test server).
pub const NYC_TAXI_BASE_URL_ENV: &str = "DBOPT_NYC_TAXI_BASE_URL";
/// Folder of DATA_DIR holding downloaded source files.
pub const DOWNLOADS_DIR: &str = "_downloads";

/// Which month to download and where to put it.
#[derive(Debug, Clone)]
pub struct TaxiDownloadOptions {
    /// The table to create.
    pub table: TableName,
    /// yellow or green.
    pub color: TaxiColor,
    /// Year of the trips.
    pub year: i32,
    /// Month of the trips, 1..=12.
    pub month: u32,
    /// Base URL the file name is appended to.
    pub base_url: String,
    /// Overwrite the table if it exists.
    pub replace: bool,
}

/// What a download did.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadOutcome {
    /// The URL fetched.
    pub url: String,
    /// The validated file.
    pub file: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// HTTP requests made.
    pub attempts: u32,
    /// True when a partial transfer was resumed with a Range request.
    pub resumed: bool,
    /// True when a valid earlier download was reused without a request.
    pub reused: bool,
}

/// What `download-nyc-taxi` did.
#[derive(Debug, Clone)]
pub struct TaxiDownloadReport {
    /// The transfer.
    pub download: DownloadOutcome,
    /// The load into the initial layout.
    pub load: InitialLayoutReport,
}

/// The trip-record URL of a month.
pub fn taxi_url(base_url: &str, color: TaxiColor, year: i32, month: u32) -> String {
    format!(
        "{}/{}",
        base_url.trim_end_matches('/'),
        color.file_name(year, month)
    )
}

impl Workspace {
    /// Downloads the month's trip records and loads them as the initial layout of the table.
    /// A file that is not valid Parquet is deleted and no table is created.
    pub async fn download_nyc_taxi(
        &self,
        options: &TaxiDownloadOptions,
        download_progress: &dyn Progress,
        load_progress: &dyn Progress,
    ) -> Result<TaxiDownloadReport, DbError> {
        if !(1..=12).contains(&options.month) || !(2009..=2100).contains(&options.year) {
            return Err(DbError::BadArgument(format!(
                "no trip records for {}-{:02}: TLC publishes months from 2009-01 on; pass --year YYYY --month 1..12",
                options.year, options.month
            )));
        }
        self.check_can_create(&options.table, options.replace)?;
        let dir = self.data_dir().join(DOWNLOADS_DIR);
        std::fs::create_dir_all(&dir)
            .map_err(|e| DbError::io(format!("creating {}", dir.display()), e))?;
        let url = taxi_url(
            &options.base_url,
            options.color,
            options.year,
            options.month,
        );
        let dest = dir.join(options.color.file_name(options.year, options.month));
        let download = download_parquet(&url, &dest, download_progress)?;
        let load = self
            .load_dataset(&options.table, &dest, options.replace, load_progress)
            .await?
            .layout;
        Ok(TaxiDownloadReport { download, load })
    }

    /// Runs `num_queries` taxi queries against a table with the trip-record schema.
    pub async fn run_nyc_taxi_workload(
        &self,
        table: &TableName,
        num_queries: u64,
        seed: u64,
        routing: Option<&Routing>,
        progress: &dyn Progress,
    ) -> Result<WorkloadSummary, DbError> {
        self.require_table(table)?;
        let mut runner = Runner::open(self, table, routing).await?;
        let schema = runner
            .session()
            .context()
            .registered_schema(table.as_str())
            .await?;
        let color = schema
            .fields()
            .iter()
            .find_map(|f| TaxiColor::from_pickup_column(f.name()))
            .ok_or_else(|| {
                DbError::NotATaxiTable(format!(
                    "table '{table}' has no tpep_pickup_datetime or lpep_pickup_datetime column: load a TLC month with `dbopt download-nyc-taxi --table-name {table}`"
                ))
            })?;
        for needed in [
            "PULocationID",
            "DOLocationID",
            "payment_type",
            "fare_amount",
        ] {
            if schema.field_with_name(needed).is_err() {
                return Err(DbError::NotATaxiTable(format!(
                    "table '{table}' has no {needed} column: it does not hold TLC trip records"
                )));
            }
        }
        let pickup = color.pickup_column();
        let (_, months) = first_column(
            runner.session(),
            &format!(
                "SELECT date_trunc('month', {pickup}) AS m, count(*) AS n FROM \"{table}\" \
                 WHERE {pickup} IS NOT NULL GROUP BY 1 ORDER BY n DESC LIMIT 1"
            ),
        )
        .await?;
        let month_start = months
            .first()
            .and_then(|m| chrono::NaiveDate::parse_from_str(m.get(..10)?, "%Y-%m-%d").ok())
            .ok_or_else(|| {
                DbError::NotATaxiTable(format!(
                    "table '{table}' has no trips with a pickup time: load a TLC month first"
                ))
            })?;
        let (_, zones) = first_column(
            runner.session(),
            &format!(
                "SELECT \"PULocationID\" AS z, count(*) AS n FROM \"{table}\" \
                 WHERE \"PULocationID\" IS NOT NULL GROUP BY 1 ORDER BY n DESC, 1"
            ),
        )
        .await?;
        let domain = TaxiDomain {
            table: format!("\"{table}\""),
            color,
            month_start,
            zones: zones.iter().filter_map(|z| z.parse().ok()).collect(),
        };
        let mut workload = TaxiWorkload::new(seed, domain);
        progress.set_total(num_queries);
        let mut builder = SummaryBuilder::default();
        for _ in 0..num_queries {
            let (template, sql) = workload.next_query();
            let result = run_logged(&mut runner, &sql, template).await;
            builder.record(template, &result);
            progress.advance(1);
        }
        progress.finish();
        Ok(builder.finish())
    }
}

/// Downloads `url` to `dest` (via `dest.part`, see `fetch::download`: resumed with HTTP Range
/// and retried), then checks that the file is Parquet (magic at both ends, readable footer).
/// A valid `dest` already there is reused; an invalid download is deleted.
pub fn download_parquet(
    url: &str,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<DownloadOutcome, DbError> {
    let mut outcome = DownloadOutcome {
        url: url.to_string(),
        file: dest.to_path_buf(),
        bytes: 0,
        attempts: 0,
        resumed: false,
        reused: false,
    };
    if dest.is_file() {
        if let Ok(bytes) = validate_file(dest) {
            outcome.bytes = bytes;
            outcome.reused = true;
            return Ok(outcome);
        }
        remove(dest)?;
    }
    let part = dest.with_extension("parquet.part");
    let fetched = download(url, &part, progress).map_err(|f| download_error(url, f))?;
    outcome.attempts = fetched.attempts;
    outcome.resumed = fetched.resumed;
    match validate_file(&part) {
        Ok(bytes) => outcome.bytes = bytes,
        Err(e) => {
            remove(&part)?;
            let why = match e {
                EngineError::CorruptParquet { message, .. } => message,
                other => other.to_string(),
            };
            return Err(DbError::BadDownload(format!(
                "{url} did not return a valid Parquet file ({why}); it was deleted and no table was created"
            )));
        }
    }
    File::open(&part)
        .and_then(|f| f.sync_all())
        .map_err(|e| DbError::io(format!("syncing {}", part.display()), e))?;
    std::fs::rename(&part, dest)
        .map_err(|e| DbError::io(format!("renaming {} into place", part.display()), e))?;
    if let Some(dir) = dest.parent() {
        dbopt_engine::writer::fsync_dir(dir)?;
    }
    Ok(outcome)
}

/// The error for a download of a trip-record month that did not finish, with what to check.
fn download_error(url: &str, failure: FetchFailure) -> DbError {
    match failure {
        FetchFailure::Html(status) => DbError::BadDownload(format!(
            "{url} returned an HTML page (HTTP {status}), not a Parquet file; check --year/--month/--color or {NYC_TAXI_BASE_URL_ENV}"
        )),
        FetchFailure::NotFound(status) => DbError::BadDownload(format!(
            "{url} was not found (HTTP {status}): TLC publishes a month about two months after it ends; check --year, --month and --color"
        )),
        FetchFailure::Refused(status) => {
            DbError::BadDownload(format!("{url} was refused (HTTP {status})"))
        }
        FetchFailure::GaveUp {
            attempts,
            last_problem,
        } => DbError::Network(format!(
            "downloading {url} failed after {attempts} attempts ({last_problem}); check the network, or set {NYC_TAXI_BASE_URL_ENV} to a reachable mirror"
        )),
        FetchFailure::Local(e) => e,
    }
}

fn remove(path: &Path) -> Result<(), DbError> {
    std::fs::remove_file(path).map_err(|e| DbError::io(format!("removing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            taxi_url(DEFAULT_NYC_TAXI_BASE_URL, TaxiColor::Yellow, 2024, 1),
            "https://d37ci6vzurychx.cloudfront.net/trip-data/yellow_tripdata_2024-01.parquet"
        );
        assert_eq!(
            taxi_url("http://127.0.0.1:9/x/", TaxiColor::Green, 2023, 11),
            "http://127.0.0.1:9/x/green_tripdata_2023-11.parquet"
        );
    }
}
