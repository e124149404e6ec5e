//! HTTP(S) requests: the only network code of dbopt. [`download`] fetches a URL into a
//! partial file, resuming a broken transfer with an HTTP Range request and trying again under
//! the one retry policy of `dbopt_core::retry`; [`request_text`] makes one API call (a query
//! log pull) and returns the answer's status and body, once, within a timeout. Ok means the server sent the whole body (as
//! far as Content-Length and Content-Range tell); what the bytes are is the caller's to
//! check. A refused request (a 4xx status, an HTML page) removes the partial file and is not
//! tried again; so does giving up after the last attempt.

use crate::{DbError, Progress};
use backon::{BackoffBuilder, BlockingRetryable};
use dbopt_core::text::first_line;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

/// What a finished download took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fetched {
    /// HTTP requests made.
    pub attempts: u32,
    /// True when a partial transfer was resumed with a Range request.
    pub resumed: bool,
}

/// Why a download did not finish; the caller words the error for its users.
#[derive(Debug)]
pub enum FetchFailure {
    /// The server answered with an HTML page (a sign-in or error page), with this HTTP status.
    Html(u16),
    /// The file is not there (HTTP 404 or 403).
    NotFound(u16),
    /// Another client error (HTTP 4xx).
    Refused(u16),
    /// Every attempt broke off; how many were made and the last problem.
    GaveUp {
        /// HTTP requests made.
        attempts: u32,
        /// What went wrong the last time.
        last_problem: String,
    },
    /// The partial file could not be written.
    Local(DbError),
}

/// How one request failed: worth another attempt, or final.
enum TransferError {
    /// A retryable problem (no connection, a 5xx, a transfer that broke off); the partial
    /// file is kept for the next attempt to resume.
    Broken(String),
    /// Trying again cannot help.
    Final(FetchFailure),
}

/// Downloads `url` into `part`, resuming from what `part` already holds; retries broken
/// transfers under `dbopt_core::retry::POLICY`. `progress` counts bytes.
pub fn download(url: &str, part: &Path, progress: &dyn Progress) -> Result<Fetched, FetchFailure> {
    download_under(dbopt_core::retry::POLICY, url, part, progress)
}

/// `download` with the retry schedule given (tests use a short one).
fn download_under(
    policy: impl BackoffBuilder,
    url: &str,
    part: &Path,
    progress: &dyn Progress,
) -> Result<Fetched, FetchFailure> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A stalled transfer breaks off and is resumed by the next attempt.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut fetched = Fetched::default();
    let result = (|| {
        fetched.attempts += 1;
        transfer(&agent, url, part, progress, &mut fetched.resumed)
    })
    .retry(policy)
    .when(|e| matches!(e, TransferError::Broken(_)))
    .notify(|e, wait| {
        if let TransferError::Broken(problem) = e {
            tracing::debug!("{url}: {problem}; trying again in {wait:?}");
        }
    })
    .call();
    match result {
        Ok(()) => {
            progress.finish();
            Ok(fetched)
        }
        Err(TransferError::Broken(last_problem)) => {
            progress.finish();
            let _ = std::fs::remove_file(part);
            Err(FetchFailure::GaveUp {
                attempts: fetched.attempts,
                last_problem,
            })
        }
        Err(TransferError::Final(failure)) => Err(failure),
    }
}

/// A final failure that also drops the partial file (the server refused it).
fn refused(part: &Path, failure: FetchFailure) -> TransferError {
    let _ = std::fs::remove_file(part);
    TransferError::Final(failure)
}

/// A local file error (final).
fn local(context: String, e: std::io::Error) -> TransferError {
    TransferError::Final(FetchFailure::Local(DbError::io(context, e)))
}

/// One request: resumes `part` from its size with a Range header when it is not empty.
fn transfer(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    progress: &dyn Progress,
    resumed: &mut bool,
) -> Result<(), TransferError> {
    let offset = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(url);
    if offset > 0 {
        request = request.header("Range", format!("bytes={offset}-"));
    }
    let response = request
        .call()
        .map_err(|e| TransferError::Broken(first_line(&e.to_string())))?;
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
        return Err(refused(part, FetchFailure::Html(status)));
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
                return Err(TransferError::Broken(
                    "the server answered a different range".into(),
                ));
            }
        },
        416 if offset > 0 => return Ok(()),
        404 | 403 => return Err(refused(part, FetchFailure::NotFound(status))),
        s if (400..500).contains(&s) => return Err(refused(part, FetchFailure::Refused(s))),
        s => return Err(TransferError::Broken(format!("HTTP {s}"))),
    };
    *resumed |= start > 0;
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(start == 0)
        .open(part)
        .map_err(|e| local(format!("opening {}", part.display()), e))?;
    file.seek(SeekFrom::Start(start))
        .map_err(|e| local(format!("seeking {}", part.display()), e))?;
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
                return Err(TransferError::Broken(format!(
                    "transfer broke off at byte {written}: {}",
                    first_line(&e.to_string())
                )));
            }
        };
        file.write_all(&buf[..n])
            .map_err(|e| local(format!("writing {}", part.display()), e))?;
        written += n as u64;
        progress.advance(n as u64);
    }
    file.flush()
        .map_err(|e| local(format!("writing {}", part.display()), e))?;
    match total {
        Some(total) if written < total => Err(TransferError::Broken(format!(
            "transfer ended at byte {written} of {total}"
        ))),
        _ => Ok(()),
    }
}

/// An API call whose answer is text: a live query-log pull.
#[derive(Debug, Clone)]
pub struct TextRequest {
    /// POST with this body, or GET without one.
    pub body: Option<String>,
    /// The URL.
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Longest wait for the connection, the answer and each read of its body.
    pub timeout: Duration,
}

/// Why an API call got no answer.
#[derive(Debug)]
pub enum TextFailure {
    /// No connection (refused, unknown host).
    Unreachable(String),
    /// The server did not answer within the timeout.
    TimedOut(String),
    /// The answer broke off or was not text.
    Broken(String),
}

/// Largest answer body read by [`request_text`].
pub const MAX_TEXT_BYTES: u64 = 256 << 20;

/// Makes `request` once and returns the answer's HTTP status and body (any status: the
/// caller reads the server's own error message from the body).
pub fn request_text(request: &TextRequest) -> Result<(u16, String), TextFailure> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(request.timeout))
        .timeout_recv_response(Some(request.timeout))
        .timeout_per_read(Some(request.timeout))
        .build()
        .into();
    let classify = |e: ureq::Error| {
        let text = first_line(&e.to_string());
        match e {
            ureq::Error::Timeout(_) => TextFailure::TimedOut(text),
            ureq::Error::Io(ref io) if io.kind() == std::io::ErrorKind::TimedOut => {
                TextFailure::TimedOut(text)
            }
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                TextFailure::Unreachable(text)
            }
            ureq::Error::Io(ref io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
                ) =>
            {
                TextFailure::Unreachable(text)
            }
            _ => TextFailure::Broken(text),
        }
    };
    let response = match &request.body {
        Some(body) => {
            let mut call = agent.post(&request.url);
            for (k, v) in &request.headers {
                call = call.header(k, v);
            }
            call.send(body.as_str())
        }
        None => {
            let mut call = agent.get(&request.url);
            for (k, v) in &request.headers {
                call = call.header(k, v);
            }
            call.call()
        }
    }
    .map_err(classify)?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .with_config()
        .limit(MAX_TEXT_BYTES)
        .read_to_string()
        .map_err(classify)?;
    Ok((status, body))
}

/// `bytes START-END/TOTAL` as (START, TOTAL).
fn parse_content_range(text: &str) -> Option<(u64, Option<u64>)> {
    let rest = text.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[test]
    fn an_unreachable_server_is_given_up_on_and_leaves_no_part_file() {
        // A port that was free a moment ago: every connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("x.part");
        std::fs::write(&part, b"stale").unwrap();
        let quick = backon::ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(1))
            .with_max_times(2);
        let url = format!("http://127.0.0.1:{port}/x");
        let failure = download_under(quick, &url, &part, &crate::NoProgress).unwrap_err();
        match failure {
            FetchFailure::GaveUp { attempts, .. } => assert_eq!(attempts, 3),
            other => panic!("expected GaveUp, got {other:?}"),
        }
        assert!(!part.exists());
    }
}
