//! Splitting a `.sql` file into statements with sqlparser's tokenizer, so semicolons inside
//! strings, quoted identifiers, comments and dollar-quoted strings never split a statement.
//!
//! The text is tokenized in windows that end after a semicolon token, so memory stays
//! proportional to the window and the longest statement, not to the whole file.

use sqlparser::dialect::GenericDialect;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

/// One statement of a `.sql` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlStatement {
    /// 1-based line where the statement starts.
    pub line: usize,
    /// The statement text, trimmed, without its terminating semicolon.
    pub sql: String,
}

/// Bytes tokenized at a time (a window grows when it holds no semicolon).
const WINDOW_BYTES: usize = 1 << 20;

/// Splits SQL text into statements at semicolons, as the engine's SQL dialect (sqlparser's
/// generic dialect, which DataFusion uses) reads them.
///
/// Semicolons inside `'...'` strings, `"..."` and `` `...` `` identifiers, `--` and nested
/// `/* */` comments and `$$...$$` strings do not split; statements that hold only comments
/// are dropped. Text that does not tokenize (an unclosed quote) runs to the end of the file
/// as one statement, so the parser reports it with its line.
pub fn split_sql(text: &str) -> Vec<SqlStatement> {
    split_in_windows(text, WINDOW_BYTES)
}

/// `split_sql` with windows of `window` bytes (small windows in tests).
fn split_in_windows(text: &str, window: usize) -> Vec<SqlStatement> {
    let mut out = Vec::new();
    let mut at = Position { byte: 0, line: 1 };
    let mut size = window.max(1);
    while at.byte < text.len() {
        let end = char_boundary_at_or_before(text, at.byte.saturating_add(size));
        let last = end == text.len();
        let (tokens, failed) = tokenize(&text[at.byte..end]);
        let cut = if last {
            tokens.len()
        } else {
            // Tokens after the last semicolon may be cut by the window's end: take them again
            // with the next window. Without a semicolon, take a larger window.
            match tokens.iter().rposition(|t| t.token == Token::SemiColon) {
                Some(i) => i + 1,
                None => {
                    size = size.saturating_mul(2);
                    continue;
                }
            }
        };
        let mut walker = Walker::new(&text[at.byte..end], at);
        let mut start: Option<Position> = None;
        for t in &tokens[..cut] {
            match t.token {
                Token::SemiColon => {
                    let semicolon = walker.to(t.span.start);
                    if let Some(s) = start.take() {
                        out.push(statement(text, s, semicolon.byte));
                    }
                }
                Token::Whitespace(_) | Token::EOF => {}
                _ => {
                    if start.is_none() {
                        start = Some(walker.to(t.span.start));
                    }
                }
            }
        }
        if !last {
            let after = tokens[cut - 1].span.end;
            at = walker.to(after);
            size = window.max(1);
            continue;
        }
        if failed {
            // The tokenizer stopped at a token it could not finish (an unclosed quote or
            // comment); like an unclosed quote, it runs to the end of the text. An unclosed
            // comment alone is no statement.
            let rest = walker.to(tokens.last().map_or(Location::new(1, 1), |t| t.span.end));
            if start.is_none() && !text[rest.byte..].starts_with("/*") {
                start = Some(rest);
            }
        }
        if let Some(s) = start {
            out.push(statement(text, s, text.len()));
        }
        break;
    }
    out
}

/// Tokens of `text` up to the first it cannot tokenize, and whether it stopped early.
fn tokenize(text: &str) -> (Vec<TokenWithSpan>, bool) {
    let mut tokens = Vec::new();
    let failed = Tokenizer::new(&GenericDialect {}, text)
        .tokenize_with_location_into_buf(&mut tokens)
        .is_err();
    (tokens, failed)
}

fn statement(text: &str, start: Position, end: usize) -> SqlStatement {
    SqlStatement {
        line: start.line,
        sql: text[start.byte..end].trim().to_string(),
    }
}

/// The largest char boundary of `text` at or before `byte`.
fn char_boundary_at_or_before(text: &str, byte: usize) -> usize {
    let mut b = byte.min(text.len());
    while !text.is_char_boundary(b) {
        b -= 1;
    }
    b
}

/// A place in the whole text: byte offset and 1-based line.
#[derive(Debug, Clone, Copy)]
struct Position {
    byte: usize,
    line: usize,
}

/// Turns the tokenizer's locations (line and column, counted in chars, from the start of the
/// window) into positions in the whole text, walking forward only.
struct Walker<'a> {
    chars: std::str::CharIndices<'a>,
    base: Position,
    /// Window-relative line and column of `pos`.
    line: u64,
    column: u64,
    pos: Position,
}

impl<'a> Walker<'a> {
    fn new(window: &'a str, base: Position) -> Self {
        Self {
            chars: window.char_indices(),
            base,
            line: 1,
            column: 1,
            pos: base,
        }
    }

    /// The position of window location `to` (at or after the last one asked for).
    fn to(&mut self, to: Location) -> Position {
        while (self.line, self.column) < (to.line, to.column) {
            let Some((offset, c)) = self.chars.next() else {
                break;
            };
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
            self.pos = Position {
                byte: self.base.byte + offset + c.len_utf8(),
                line: self.base.line + (self.line - 1) as usize,
            };
        }
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqls(text: &str) -> Vec<(usize, String)> {
        split_sql(text)
            .into_iter()
            .map(|s| (s.line, s.sql))
            .collect()
    }

    #[test]
    fn split_sql_tracks_lines_quotes_and_comments() {
        let text = "-- header; not a statement\nSELECT 'a;b' FROM t;\n\n/* x;\n y */ SELECT \"c;d\"\nFROM u ;\n  -- trailing comment\n";
        let s = split_sql(text);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].line, 2);
        assert_eq!(s[0].sql, "SELECT 'a;b' FROM t");
        assert_eq!(s[1].line, 5);
        assert_eq!(s[1].sql, "SELECT \"c;d\"\nFROM u");
        assert_eq!(split_sql("SELECT 'it''s; fine'").len(), 1);
        assert!(split_sql("  ;; -- nothing\n").is_empty());
        assert!(split_sql("").is_empty());
    }

    #[test]
    fn comments_inside_a_statement_stay_with_it() {
        assert_eq!(
            sqls("SELECT 1 -- one; two\n, 2 /* three; */ FROM t\n-- end\n"),
            vec![(
                1,
                "SELECT 1 -- one; two\n, 2 /* three; */ FROM t\n-- end".to_string()
            )]
        );
    }

    #[test]
    fn dollar_quotes_backticks_and_nested_comments_do_not_split() {
        assert_eq!(
            sqls("SELECT $$a;b$$, `c;d` /* x /* y; */ z; */ FROM t; SELECT 2"),
            vec![
                (
                    1,
                    "SELECT $$a;b$$, `c;d` /* x /* y; */ z; */ FROM t".to_string()
                ),
                (1, "SELECT 2".to_string()),
            ]
        );
    }

    #[test]
    fn an_unclosed_quote_runs_to_the_end_and_an_unclosed_comment_is_dropped() {
        assert_eq!(
            sqls("SELECT 1;\nSELECT 'oops;\nSELECT 2;"),
            vec![
                (1, "SELECT 1".to_string()),
                (2, "SELECT 'oops;\nSELECT 2;".to_string()),
            ]
        );
        assert_eq!(
            sqls("SELECT 1;\n/* never closed; SELECT 2"),
            vec![(1, "SELECT 1".to_string())]
        );
        assert_eq!(
            sqls("SELECT 1 /* never closed; SELECT 2"),
            vec![(1, "SELECT 1 /* never closed; SELECT 2".to_string())]
        );
    }

    #[test]
    fn lines_count_across_crlf_and_multibyte_text() {
        assert_eq!(
            sqls("SELECT 'é;ü'\r\nFROM t;\r\n\r\nSELECT \"ß\" -- ä;\r\n;"),
            vec![
                (1, "SELECT 'é;ü'\r\nFROM t".to_string()),
                (4, "SELECT \"ß\" -- ä;".to_string()),
            ]
        );
    }

    #[test]
    fn small_windows_split_like_one_window() {
        let text = "-- head\nSELECT 'a;b', \"é;\" FROM t; /* c; */ SELECT $$x;y$$;\n\nSELECT 1 -- z;\n; SELECT 'never closed; SELECT 3";
        let whole = split_in_windows(text, usize::MAX);
        assert_eq!(whole.len(), 4, "{whole:?}");
        for window in 1..=text.len() + 1 {
            assert_eq!(split_in_windows(text, window), whole, "window {window}");
        }
    }
}
