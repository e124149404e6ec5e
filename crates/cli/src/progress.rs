//! Progress bars on a terminal (hidden when stderr is not one, e.g. in tests and pipes, and
//! when plain output is asked for with `DBOPT_PLAIN` or `NO_COLOR`).

use crate::output::plain_requested;
use dbopt::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// An indicatif bar implementing the library's `Progress`.
pub struct Bar(ProgressBar);

impl Bar {
    fn new(label: &str, unit: &str) -> Self {
        let target = if std::io::stderr().is_terminal() && !plain_requested() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        let template = format!(
            "{label} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, eta {{eta}}) {{msg}}"
        );
        bar.set_style(
            ProgressStyle::with_template(&template)
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        Self(bar)
    }

    /// A bar counting rows.
    pub fn rows(label: &str) -> Self {
        Self::new(label, "rows")
    }

    /// A bar counting queries.
    pub fn queries(label: &str) -> Self {
        Self::new(label, "queries")
    }

    /// A bar counting bytes.
    pub fn bytes(label: &str) -> Self {
        Self::new(label, "bytes")
    }
}

impl Progress for Bar {
    fn set_total(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self, delta: u64) {
        self.0.inc(delta);
    }
    fn message(&self, text: &str) {
        self.0.set_message(text.to_string());
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
