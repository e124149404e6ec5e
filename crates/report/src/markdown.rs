//! Markdown helpers for `summary.md`: escaping of untrusted text and table rendering.

/// Characters that carry meaning in (GitHub-flavoured) Markdown or inline HTML.
const SPECIAL: &[char] = &['\\', '`', '*', '_', '[', ']', '<', '>', '|', '#', '&'];

/// Escapes text for use anywhere in Markdown, including table cells: every special
/// character gets a backslash, and line breaks and other control characters become spaces.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.push(' ');
            continue;
        }
        if SPECIAL.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Renders a Markdown table; cells must already be escaped.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = row_line(header.iter().map(std::string::ToString::to_string));
    out.push_str(&row_line(header.iter().map(|_| "---".to_string())));
    for row in rows {
        out.push_str(&row_line(row.iter().cloned()));
    }
    out
}

fn row_line(cells: impl Iterator<Item = String>) -> String {
    let cells: Vec<String> = cells.collect();
    format!("| {} |\n", cells.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_hostile_text() {
        assert_eq!(escape_markdown("a|b*_<x>"), r"a\|b\*\_\<x\>");
        assert_eq!(escape_markdown("`#[x](y)`\\"), r"\`\#\[x\](y)\`\\");
        assert_eq!(escape_markdown("one\ntwo\r\nthree"), "one two  three");
        assert_eq!(escape_markdown("a & b"), r"a \& b");
    }

    #[test]
    fn renders_a_table() {
        let rows = vec![vec!["1".to_string(), "x".to_string()]];
        assert_eq!(
            table(&["id", "name"], &rows),
            "| id | name |\n| --- | --- |\n| 1 | x |\n"
        );
    }
}
