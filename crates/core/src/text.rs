//! Text helpers for messages and table cells: keeping user-visible text on one line.
//!
//! Error messages and report cells are shown one per line (exit-code-2 errors, `--format
//! table`, awk-friendly plain output), so text that may carry line breaks, tabs or terminal
//! escape codes goes through one of these before it is shown.

/// Folds `text` onto one line: every run of whitespace and control characters (line breaks,
/// tabs, escape codes) becomes one space, and the ends are trimmed.
pub fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for word in text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    line
}

/// The first non-blank line of `text`, trimmed: drops what a library appends after the
/// message itself (backtraces, hints, "caused by" chains).
pub fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_folds_breaks_tabs_and_escape_codes() {
        assert_eq!(one_line("a\nb\r\x1b[31mc\td\n"), "a b [31mc d");
        assert_eq!(
            one_line("  unknown field `x`,\n   expected `y`  "),
            "unknown field `x`, expected `y`"
        );
        assert_eq!(one_line(""), "");
        assert_eq!(one_line(" \n\t "), "");
    }

    #[test]
    fn first_line_keeps_the_message_and_drops_what_follows() {
        assert_eq!(
            first_line("\n  syntax error near x  \nbacktrace:\n  0: f"),
            "syntax error near x"
        );
        assert_eq!(first_line(""), "");
        assert_eq!(first_line("\n\n"), "");
    }
}
