//! NYC TLC taxi trips: download a month's trip-record Parquet file over HTTP(S) into
//! DATA_DIR/_downloads/ (progress, resume with HTTP Range, clean retry, Parquet validation),
//! load it as a table's initial layout, and run realistic taxi queries against it.

use crate::initial_layout::InitialLayoutReport;
use crate::workload::{Routing, Runner, SummaryBuilder, WorkloadSummary, run_logged};
use crate::workload_file::first_column;
use crate::{DbError, Progress, Workspace};
use dbopt_core::TableName;
use dbopt_data::taxi::{TaxiColor, TaxiDomain, TaxiWorkload};
use dbopt_engine::EngineError;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where TLC publishes trip records.
pub const DEFAULT_NYC_TAXI_BASE_URL: &str = "https://d37ci6vzurychx.cloudfront.net/trip-data";
/// Environment variable that overrides the base URL (a mirror, or a test server).
pub const NYC_TAXI_BASE_URL_ENV: &str = "DBOPT_NYC_TAXI_BASE_URL";
/// Folder of DATA_DIR holding downloaded source files.
pub const DOWNLOADS_DIR: &str = "_downloads";
/// Transfer attempts before giving up (each resumes where the last one broke off).
const MAX_ATTEMPTS: u32 = 4;

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
            return Err(DbError::Invalid(format!(
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
            .await?;
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
            .table_provider(table.as_str())
            .await
            .map_err(EngineError::from_plan)?
            .schema();
        let color = schema
            .fields()
            .iter()
            .find_map(|f| TaxiColor::from_pickup_column(f.name()))
            .ok_or_else(|| {
                DbError::Invalid(format!(
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
                return Err(DbError::Invalid(format!(
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
                DbError::Invalid(format!(
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

/// Downloads `url` to `dest` (via `dest.part`), resuming a broken transfer with HTTP Range
/// and retrying, then checks that the file is Parquet (magic at both ends, readable footer).
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
        if let Ok(bytes) = validate_parquet(dest) {
            outcome.bytes = bytes;
            outcome.reused = true;
            return Ok(outcome);
        }
        remove(dest)?;
    }
    let part = dest.with_extension("parquet.part");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A stalled transfer breaks off and is resumed by the next attempt.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut last_problem = String::new();
    let mut complete = false;
    while outcome.attempts < MAX_ATTEMPTS && !complete {
        if outcome.attempts > 0 {
            std::thread::sleep(Duration::from_millis(250 * u64::from(outcome.attempts)));
        }
        outcome.attempts += 1;
        match transfer(&agent, url, &part, progress, &mut outcome)? {
            Transfer::Complete => complete = true,
            Transfer::Broken(problem) => last_problem = problem,
        }
    }
    progress.finish();
    if !complete {
        let _ = std::fs::remove_file(&part);
        return Err(DbError::Network(format!(
            "downloading {url} failed after {} attempts ({last_problem}); check the network, or set {NYC_TAXI_BASE_URL_ENV} to a reachable mirror",
            outcome.attempts
        )));
    }
    match validate_parquet(&part) {
        Ok(bytes) => outcome.bytes = bytes,
        Err(why) => {
            remove(&part)?;
            return Err(DbError::Invalid(format!(
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

/// How one HTTP request ended.
enum Transfer {
    /// The body arrived in full (or the server says the range is already complete).
    Complete,
    /// A retryable problem; the partial file is kept for the next attempt.
    Broken(String),
}

/// One request: resumes `part` from its size with a Range header when it is not empty.
fn transfer(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    progress: &dyn Progress,
    outcome: &mut DownloadOutcome,
) -> Result<Transfer, DbError> {
    let offset = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(url);
    if offset > 0 {
        request = request.header("Range", format!("bytes={offset}-"));
    }
    let response = match request.call() {
        Ok(r) => r,
        Err(e) => return Ok(Transfer::Broken(one_line(&e.to_string()))),
    };
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type").unwrap_or_default();
    if content_type.to_ascii_lowercase().contains("text/html") {
        let _ = std::fs::remove_file(part);
        return Err(DbError::Invalid(format!(
            "{url} returned an HTML page (HTTP {status}), not a Parquet file; check --year/--month/--color or {NYC_TAXI_BASE_URL_ENV}"
        )));
    }
    let (start, total) = match status {
        200 => (0, header("content-length").and_then(|v| v.parse().ok())),
        206 => match header("content-range")
            .as_deref()
            .and_then(parse_content_range)
        {
            Some((start, total)) if start == offset => (offset, total),
            _ => {
                // A range we did not ask for: start over cleanly.
                let _ = std::fs::remove_file(part);
                return Ok(Transfer::Broken(
                    "the server answered a different range".into(),
                ));
            }
        },
        416 if offset > 0 => return Ok(Transfer::Complete),
        404 | 403 => {
            let _ = std::fs::remove_file(part);
            return Err(DbError::Invalid(format!(
                "{url} was not found (HTTP {status}): TLC publishes a month about two months after it ends; check --year, --month and --color"
            )));
        }
        s if (400..500).contains(&s) => {
            let _ = std::fs::remove_file(part);
            return Err(DbError::Invalid(format!("{url} was refused (HTTP {s})")));
        }
        s => return Ok(Transfer::Broken(format!("HTTP {s}"))),
    };
    outcome.resumed |= start > 0;
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(start == 0)
        .open(part)
        .map_err(|e| DbError::io(format!("opening {}", part.display()), e))?;
    file.seek(SeekFrom::Start(start))
        .map_err(|e| DbError::io(format!("seeking {}", part.display()), e))?;
    if let Some(total) = total {
        progress.set_total(total);
    }
    progress.advance(0);
    let mut written = start;
    progress.message(&format!("from byte {start}"));
    let mut reader = response.into_body().into_reader();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                file.flush().ok();
                return Ok(Transfer::Broken(format!(
                    "transfer broke off at byte {written}: {}",
                    one_line(&e.to_string())
                )));
            }
        };
        file.write_all(&buf[..n])
            .map_err(|e| DbError::io(format!("writing {}", part.display()), e))?;
        written += n as u64;
        progress.advance(n as u64);
    }
    file.flush()
        .map_err(|e| DbError::io(format!("writing {}", part.display()), e))?;
    match total {
        Some(total) if written < total => Ok(Transfer::Broken(format!(
            "transfer ended at byte {written} of {total}"
        ))),
        _ => Ok(Transfer::Complete),
    }
}

/// `bytes START-END/TOTAL` as (START, TOTAL).
fn parse_content_range(text: &str) -> Option<(u64, Option<u64>)> {
    let rest = text.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

/// The size of a Parquet file whose magic bytes are at both ends and whose footer reads.
fn validate_parquet(path: &Path) -> Result<u64, String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len < 12 {
        return Err(format!("only {len} bytes"));
    }
    let mut head = [0u8; 4];
    let mut tail = [0u8; 4];
    file.read_exact(&mut head).map_err(|e| e.to_string())?;
    file.seek(SeekFrom::End(-4)).map_err(|e| e.to_string())?;
    file.read_exact(&mut tail).map_err(|e| e.to_string())?;
    if &head != b"PAR1" {
        let mut start = vec![0u8; 64.min(len as usize)];
        file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        file.read_exact(&mut start).map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&start).to_ascii_lowercase();
        return Err(if text.contains("<html") || text.contains("<!doctype") {
            "it is an HTML page".to_string()
        } else {
            "it does not start with the Parquet magic bytes PAR1".to_string()
        });
    }
    if &tail != b"PAR1" {
        return Err(format!(
            "it does not end with PAR1: the {len}-byte file is truncated"
        ));
    }
    parquet::file::reader::SerializedFileReader::new(file)
        .map_err(|e| format!("its footer does not read: {}", one_line(&e.to_string())))?;
    Ok(len)
}

fn remove(path: &Path) -> Result<(), DbError> {
    std::fs::remove_file(path).map_err(|e| DbError::io(format!("removing {}", path.display()), e))
}

fn one_line(text: &str) -> String {
    dbopt_engine::error::one_line(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_content_ranges() {
        assert_eq!(
            taxi_url(DEFAULT_NYC_TAXI_BASE_URL, TaxiColor::Yellow, 2024, 1),
            "https://d37ci6vzurychx.cloudfront.net/trip-data/yellow_tripdata_2024-01.parquet"
        );
        assert_eq!(
            taxi_url("http://127.0.0.1:9/x/", TaxiColor::Green, 2023, 11),
            "http://127.0.0.1:9/x/green_tripdata_2023-11.parquet"
        );
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[test]
    fn validation_names_html_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let html = dir.path().join("a.parquet");
        std::fs::write(
            &html,
            "<!DOCTYPE html><html><body>Access denied</body></html>",
        )
        .unwrap();
        assert!(validate_parquet(&html).unwrap_err().contains("HTML"));
        let cut = dir.path().join("b.parquet");
        std::fs::write(&cut, b"PAR1\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00").unwrap();
        assert!(validate_parquet(&cut).unwrap_err().contains("truncated"));
        let fake = dir.path().join("c.parquet");
        std::fs::write(&fake, b"PAR1\x00\x00\x00\x00\x00\x00\x00\x00PAR1").unwrap();
        assert!(validate_parquet(&fake).unwrap_err().contains("footer"));
    }
}
