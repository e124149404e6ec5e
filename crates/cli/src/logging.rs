//! Where progress and decisions go: a `tracing` subscriber writing to stderr.
//!
//! The level comes from `RUST_LOG` when it is set, else from `-v`/`-q` (default info for dbopt's
//! own events, warn for dependencies). At the default verbosity each event is one line holding
//! its message only (warnings and errors prefixed `warning: ` / `error: `), the lines dbopt
//! always printed; with `-v` or `RUST_LOG` lines also show the level, span context and fields.
//! Timestamps and ANSI colours appear only when stderr is a terminal and plain output was not
//! asked for (`DBOPT_PLAIN`, `NO_COLOR`).

use crate::output::plain_requested;
use std::fmt::{self, Write as _};
use std::io::IsTerminal;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter for `-v` repeated `verbose` times or `-q`: dbopt's targets at the chosen level,
/// everything else at warn (info with -vv).
pub fn default_filter(verbose: u8, quiet: bool) -> String {
    match (quiet, verbose) {
        (true, _) => "warn".into(),
        (false, 0) => "warn,dbopt=info".into(),
        (false, 1) => "warn,dbopt=debug".into(),
        (false, _) => "info,dbopt=trace".into(),
    }
}

/// Installs the global subscriber; call once, before any command runs.
pub fn init(verbose: u8, quiet: bool) {
    let fancy = std::io::stderr().is_terminal() && !plain_requested();
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let mut bad_rust_log = None;
    let filter = match &rust_log {
        Some(spec) => EnvFilter::try_new(spec).unwrap_or_else(|e| {
            bad_rust_log = Some(format!("ignoring RUST_LOG={spec}: {e}"));
            EnvFilter::new(default_filter(verbose, quiet))
        }),
        None => EnvFilter::new(default_filter(verbose, quiet)),
    };
    let detailed = rust_log.is_some() || verbose > 0;
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(fancy);
    let layer = if !detailed {
        layer.event_format(MessageOnly { ansi: fancy }).boxed()
    } else if fancy {
        layer.with_target(false).boxed()
    } else {
        layer.with_target(false).without_time().boxed()
    };
    // Fails only when a subscriber is already installed (never in the binary).
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
    if let Some(warning) = bad_rust_log {
        tracing::warn!("{warning}");
    }
}

/// One line per event: its message, warnings and errors prefixed like the CLI's own errors.
struct MessageOnly {
    ansi: bool,
}

impl<S, N> FormatEvent<S, N> for MessageOnly
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let prefix = match *event.metadata().level() {
            Level::ERROR => Some(("error: ", "\x1b[1;31m")),
            Level::WARN => Some(("warning: ", "\x1b[1;33m")),
            _ => None,
        };
        match prefix {
            Some((text, colour)) if self.ansi => write!(writer, "{colour}{text}\x1b[0m")?,
            Some((text, _)) => writer.write_str(text)?,
            None => {}
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        writeln!(writer, "{}", message.0)
    }
}

/// Collects an event's `message` field.
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_filters() {
        assert_eq!(default_filter(0, false), "warn,dbopt=info");
        assert_eq!(default_filter(1, false), "warn,dbopt=debug");
        assert_eq!(default_filter(3, false), "info,dbopt=trace");
        assert_eq!(default_filter(0, true), "warn");
        for spec in [default_filter(0, false), default_filter(2, false)] {
            assert!(EnvFilter::try_new(&spec).is_ok(), "{spec}");
        }
    }
}
