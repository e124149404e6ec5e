//! Live query-log pulls for `import-queries --from`: ClickHouse's `system.query_log` over its
//! HTTP interface, Trino's `system.runtime.queries` over its client REST protocol, each over
//! HTTP or, with `+https` in the scheme, HTTPS. Each pull
//! returns the log as text in a format `dbopt_logs` reads, so a pulled log is parsed exactly
//! like an exported file. The HTTP calls go through [`crate::fetch::request_text`].
//!
//! Errors: a server that cannot be reached, refuses the credentials or rejects the query is
//! a configuration problem (exit code 2) named with the server's own message; a server that
//! fails or does not answer within the timeout is a failure (exit code 1). Nothing is
//! imported from a pull that did not finish.

use crate::DbError;
use crate::fetch::{TextFailure, TextRequest, request_text};
use dbopt_core::text::first_line;
use dbopt_logs::LogFormat;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Default HTTP port of ClickHouse.
pub const CLICKHOUSE_PORT: u16 = 8123;
/// Default port of a Trino coordinator.
pub const TRINO_PORT: u16 = 8080;
/// Default Trino catalog.
pub const TRINO_CATALOG: &str = "iceberg";
/// Most result pages a Trino pull follows.
const MAX_TRINO_PAGES: usize = 100_000;
/// Times a Trino page answered with 503 (busy) is asked again.
const TRINO_BUSY_RETRIES: u32 = 20;

/// A server to pull a query log from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullSource {
    /// ClickHouse's HTTP interface.
    Clickhouse {
        /// Host name or address.
        host: String,
        /// HTTP port.
        port: u16,
        /// HTTPS instead of HTTP (`clickhouse+https://`).
        tls: bool,
    },
    /// A Trino coordinator.
    Trino {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// The catalog sent with the request (`X-Trino-Catalog`).
        catalog: String,
        /// HTTPS instead of HTTP (`trino+https://`).
        tls: bool,
    },
}

impl PullSource {
    /// Reads `clickhouse://HOST:PORT`, `trino://HOST:PORT/CATALOG`, or a bare `clickhouse` /
    /// `trino` whose host, port and catalog come from `env` (`CLICKHOUSE_HOST`,
    /// `CLICKHOUSE_PORT`, `TRINO_HOST`, `TRINO_PORT`, `TRINO_CATALOG`).
    pub fn parse(text: &str, env: &BTreeMap<String, String>) -> Result<PullSource, DbError> {
        let bad = |why: &str| {
            DbError::BadArgument(format!(
                "--from {text}: {why}; write clickhouse://HOST:PORT or trino://HOST:PORT/CATALOG"
            ))
        };
        let (scheme, rest) = text.split_once("://").unwrap_or((text, ""));
        let (scheme, tls) = match scheme.strip_suffix("+https") {
            Some(engine) => (engine, true),
            None => (scheme, false),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                Some(
                    p.parse::<u16>()
                        .map_err(|_| bad("the port is not a number"))?,
                ),
            ),
            None => (authority.to_string(), None),
        };
        let env_port = |key: &str, default: u16| -> Result<u16, DbError> {
            match env.get(key) {
                Some(v) => v
                    .parse()
                    .map_err(|_| DbError::BadArgument(format!("{key}={v} is not a port number"))),
                None => Ok(default),
            }
        };
        let host_or = |key: &str| -> Result<String, DbError> {
            if !host.is_empty() {
                return Ok(host.clone());
            }
            env.get(key)
                .cloned()
                .ok_or_else(|| bad(&format!("no host given and {key} is not set")))
        };
        match scheme {
            "clickhouse" => Ok(PullSource::Clickhouse {
                host: host_or("CLICKHOUSE_HOST")?,
                port: port.map_or_else(|| env_port("CLICKHOUSE_PORT", CLICKHOUSE_PORT), Ok)?,
                tls,
            }),
            "trino" => Ok(PullSource::Trino {
                host: host_or("TRINO_HOST")?,
                port: port.map_or_else(|| env_port("TRINO_PORT", TRINO_PORT), Ok)?,
                catalog: if path.is_empty() {
                    env.get("TRINO_CATALOG")
                        .cloned()
                        .unwrap_or_else(|| TRINO_CATALOG.to_string())
                } else {
                    path.to_string()
                },
                tls,
            }),
            _ => Err(bad("unknown source")),
        }
    }

    /// `clickhouse://host:port` or `trino://host:port/catalog` (`+https` when it is TLS).
    pub fn label(&self) -> String {
        let suffix = if self.tls() { "+https" } else { "" };
        match self {
            PullSource::Clickhouse { host, port, .. } => {
                format!("clickhouse{suffix}://{host}:{port}")
            }
            PullSource::Trino {
                host,
                port,
                catalog,
                ..
            } => format!("trino{suffix}://{host}:{port}/{catalog}"),
        }
    }

    /// Whether the server is reached over HTTPS.
    pub fn tls(&self) -> bool {
        match self {
            PullSource::Clickhouse { tls, .. } | PullSource::Trino { tls, .. } => *tls,
        }
    }

    /// `http://host:port` or `https://host:port`.
    fn base_url(&self) -> String {
        let scheme = if self.tls() { "https" } else { "http" };
        match self {
            PullSource::Clickhouse { host, port, .. } | PullSource::Trino { host, port, .. } => {
                format!("{scheme}://{host}:{port}")
            }
        }
    }

    /// The log format the pull's text is in.
    pub fn format(&self) -> LogFormat {
        match self {
            PullSource::Clickhouse { .. } => LogFormat::Clickhouse,
            PullSource::Trino { .. } => LogFormat::TrinoQueries,
        }
    }
}

/// A pull: where from, as whom, since when, and how long to wait.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The server.
    pub source: PullSource,
    /// User name (ClickHouse's `default` and Trino's `dbopt` when None).
    pub user: Option<String>,
    /// Password (from `CLICKHOUSE_PASSWORD` / `TRINO_PASSWORD`, never a flag).
    pub password: Option<String>,
    /// Only queries started at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Longest wait for each answer.
    pub timeout: Duration,
}

/// Pulls the query log and returns it as text in [`PullSource::format`].
pub fn pull(options: &PullOptions) -> Result<String, DbError> {
    match &options.source {
        PullSource::Clickhouse { .. } => pull_clickhouse(options),
        PullSource::Trino { catalog, .. } => pull_trino(options, catalog),
    }
}

/// The `system.query_log` query: finished and failed queries since the window's start, with
/// `event_time` as Unix seconds so the server's zone does not matter.
pub fn clickhouse_query(since_ms: Option<i64>) -> String {
    let window = match since_ms {
        Some(ms) => format!("event_time >= toDateTime({})", ms.div_euclid(1000)),
        None => "1".to_string(),
    };
    format!(
        "SELECT type, toUnixTimestamp(event_time) AS event_time, query_duration_ms, read_rows, \
         read_bytes, query, user, query_id, tables, exception FROM system.query_log \
         WHERE {window} AND type != 'QueryStart' ORDER BY event_time_microseconds \
         FORMAT JSONEachRow"
    )
}

fn pull_clickhouse(options: &PullOptions) -> Result<String, DbError> {
    let label = options.source.label();
    let mut headers = vec![(
        "X-ClickHouse-User".to_string(),
        options.user.clone().unwrap_or_else(|| "default".into()),
    )];
    if let Some(password) = &options.password {
        headers.push(("X-ClickHouse-Key".to_string(), password.clone()));
    }
    let request = TextRequest {
        body: Some(clickhouse_query(options.since_ms)),
        url: format!("{}/", options.source.base_url()),
        headers,
        timeout: options.timeout,
    };
    let (status, body) = request_text(&request).map_err(|f| failure(&label, options, f))?;
    if status != 200 {
        return Err(answered_error(&label, status, first_line(body.trim())));
    }
    Ok(body)
}

/// The `system.runtime.queries` query.
pub fn trino_query(since_ms: Option<i64>) -> String {
    let window = match since_ms {
        Some(ms) => format!(" WHERE created >= from_unixtime({})", ms.div_euclid(1000)),
        None => String::new(),
    };
    format!(
        "SELECT query_id, state, \"user\", source, query, created, started, \"end\", error_type, \
         error_code FROM system.runtime.queries{window}"
    )
}

fn pull_trino(options: &PullOptions, catalog: &str) -> Result<String, DbError> {
    let label = options.source.label();
    if options.password.is_some() && !options.source.tls() {
        return Err(DbError::BadArgument(format!(
            "{label}: Trino accepts a password only over HTTPS; write trino+https://HOST:PORT/CATALOG"
        )));
    }
    let mut headers = vec![
        (
            "X-Trino-User".to_string(),
            options.user.clone().unwrap_or_else(|| "dbopt".into()),
        ),
        ("X-Trino-Catalog".to_string(), catalog.to_string()),
        ("X-Trino-Source".to_string(), "dbopt".to_string()),
    ];
    if let Some(password) = &options.password {
        // Over HTTPS only (checked above), as Trino requires.
        let user = options.user.clone().unwrap_or_else(|| "dbopt".into());
        headers.push((
            "Authorization".to_string(),
            format!("Basic {}", base64(&format!("{user}:{password}"))),
        ));
    }
    let mut request = TextRequest {
        body: Some(trino_query(options.since_ms)),
        url: format!("{}/v1/statement", options.source.base_url()),
        headers,
        timeout: options.timeout,
    };
    let mut columns: Vec<String> = Vec::new();
    let mut lines = String::new();
    for _ in 0..MAX_TRINO_PAGES {
        let page = trino_page(options, &label, &request)?;
        if let Some(error) = page.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("query failed");
            let name = error.get("errorName").and_then(Value::as_str).unwrap_or("");
            let user_error = error.get("errorType").and_then(Value::as_str) == Some("USER_ERROR");
            let text = format!(
                "{label} answered with an error: {name}: {}",
                first_line(message)
            );
            return Err(if user_error {
                DbError::BadSource(text)
            } else {
                DbError::Network(text)
            });
        }
        if columns.is_empty()
            && let Some(cols) = page.get("columns").and_then(Value::as_array)
        {
            columns = cols
                .iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect();
        }
        for row in page
            .get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let values = row.as_array().cloned().unwrap_or_default();
            let object: Map<String, Value> = columns.iter().cloned().zip(values).collect();
            lines.push_str(&Value::Object(object).to_string());
            lines.push('\n');
        }
        match page.get("nextUri").and_then(Value::as_str) {
            Some(next) => {
                request.url = next.to_string();
                request.body = None;
            }
            None => return Ok(lines),
        }
    }
    Err(DbError::Network(format!(
        "{label}: more than {MAX_TRINO_PAGES} result pages; narrow the window with --since"
    )))
}

/// One page of a Trino answer, asked again while the coordinator says it is busy (503).
fn trino_page(options: &PullOptions, label: &str, request: &TextRequest) -> Result<Value, DbError> {
    for attempt in 0..=TRINO_BUSY_RETRIES {
        let (status, body) = request_text(request).map_err(|f| failure(label, options, f))?;
        match status {
            200 => {
                return serde_json::from_str(&body).map_err(|e| {
                    DbError::Network(format!(
                        "{label} answered with something other than Trino's JSON: {e}"
                    ))
                });
            }
            503 if attempt < TRINO_BUSY_RETRIES => {
                std::thread::sleep(Duration::from_millis(50 << attempt.min(4)));
            }
            _ => return Err(answered_error(label, status, first_line(body.trim()))),
        }
    }
    Err(DbError::Network(format!("{label} stayed busy (HTTP 503)")))
}

/// A server's error answer: the request's fault (4xx: credentials, query) or the server's.
fn answered_error(label: &str, status: u16, message: String) -> DbError {
    let text = format!("{label} answered HTTP {status}: {message}");
    if (400..500).contains(&status) {
        DbError::BadSource(format!("{text}; check the user, password and address"))
    } else {
        DbError::Network(text)
    }
}

fn failure(label: &str, options: &PullOptions, f: TextFailure) -> DbError {
    match f {
        TextFailure::Unreachable(e) => DbError::BadSource(format!(
            "cannot reach {label}: {e}; check the host and port (or CLICKHOUSE_HOST / TRINO_HOST)"
        )),
        TextFailure::TimedOut(_) => DbError::Network(format!(
            "{label} did not answer within {:?}; raise --timeout or try again",
            options.timeout
        )),
        TextFailure::Broken(e) => DbError::Network(format!("{label}: {e}")),
    }
}

/// Standard base64 (for HTTP basic authentication).
fn base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sources_from_urls_and_the_environment() {
        let none = env(&[]);
        assert_eq!(
            PullSource::parse("clickhouse://ch.local:9000", &none).unwrap(),
            PullSource::Clickhouse {
                host: "ch.local".into(),
                port: 9000,
                tls: false
            }
        );
        assert_eq!(
            PullSource::parse("trino://coord:8443/hive", &none).unwrap(),
            PullSource::Trino {
                host: "coord".into(),
                port: 8443,
                catalog: "hive".into(),
                tls: false
            }
        );
        let seeded = env(&[("TRINO_HOST", "t.local"), ("CLICKHOUSE_HOST", "c.local")]);
        assert_eq!(
            PullSource::parse("trino", &seeded).unwrap().label(),
            "trino://t.local:8080/iceberg"
        );
        assert_eq!(
            PullSource::parse("clickhouse", &seeded).unwrap().label(),
            "clickhouse://c.local:8123"
        );
        let secure = PullSource::parse("trino+https://coord:8443/hive", &none).unwrap();
        assert!(secure.tls());
        assert_eq!(secure.base_url(), "https://coord:8443");
        assert_eq!(secure.label(), "trino+https://coord:8443/hive");
        assert_eq!(
            PullSource::parse("clickhouse+https://c:8443", &none)
                .unwrap()
                .base_url(),
            "https://c:8443"
        );
        for bad in [
            "clickhouse",
            "mysql://h:1",
            "trino://h:port",
            "trino+tls://h:1",
        ] {
            assert!(PullSource::parse(bad, &none).is_err(), "{bad}");
        }
    }

    #[test]
    fn base64_matches_the_standard_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain), encoded);
        }
    }

    #[test]
    fn window_queries_use_unix_seconds() {
        assert!(clickhouse_query(Some(1_796_032_800_500)).contains("toDateTime(1796032800)"));
        assert!(clickhouse_query(None).contains("WHERE 1 AND type != 'QueryStart'"));
        assert!(trino_query(Some(1_000)).ends_with("WHERE created >= from_unixtime(1)"));
    }
}
