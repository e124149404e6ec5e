//! What a client's statement is: a query for the engine, or one of the session commands that
//! PostgreSQL drivers send on their own (`BEGIN`, `SET application_name = ...`, `SHOW
//! transaction_isolation`), which the endpoint answers itself. Every table is read-only, so a
//! transaction is only a bracket: `BEGIN` and `COMMIT` are accepted and change nothing.

/// A statement as the endpoint handles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// SQL for the engine (guarded, routed, executed and logged).
    Query(String),
    /// `BEGIN` / `START TRANSACTION`.
    Begin,
    /// `COMMIT` / `END` / `ROLLBACK` / `ABORT`, with the tag to answer.
    End(&'static str),
    /// A command answered with its tag only (`SET`, `RESET`, `DISCARD ALL`, ...).
    Accepted(&'static str),
    /// `SHOW name`: one row, one column.
    Show {
        /// The setting's name, as asked.
        name: String,
        /// Its value.
        value: String,
    },
}

/// Classifies one statement's text (without its trailing semicolon).
pub fn classify(sql: &str) -> Statement {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(3)
        .map(|w| w.trim_end_matches(';').to_ascii_lowercase())
        .collect();
    let first = words.first().map_or("", String::as_str);
    let second = words.get(1).map_or("", String::as_str);
    match (first, second) {
        ("begin", _) | ("start", "transaction") => Statement::Begin,
        ("commit" | "end", _) => Statement::End("COMMIT"),
        ("rollback" | "abort", _) => Statement::End("ROLLBACK"),
        ("set", _) => Statement::Accepted("SET"),
        ("reset", _) => Statement::Accepted("RESET"),
        ("discard", _) => Statement::Accepted("DISCARD ALL"),
        ("deallocate", _) => Statement::Accepted("DEALLOCATE"),
        ("show", name) if setting(name).is_some() => Statement::Show {
            name: name.to_string(),
            value: setting(name).unwrap_or_default().to_string(),
        },
        _ => Statement::Query(sql.to_string()),
    }
}

/// The session settings drivers ask for, with the values this endpoint works under.
fn setting(name: &str) -> Option<&'static str> {
    Some(match name {
        "transaction_isolation" => "read committed",
        "transaction" => "read committed",
        "default_transaction_read_only" | "transaction_read_only" => "on",
        "server_encoding" | "client_encoding" => "UTF8",
        "standard_conforming_strings" => "on",
        "datestyle" => "ISO, MDY",
        "timezone" => "UTC",
        "integer_datetimes" => "on",
        "max_identifier_length" => "63",
        "search_path" => "public",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_commands_are_answered_here() {
        assert_eq!(classify("BEGIN"), Statement::Begin);
        assert_eq!(classify("start transaction read only"), Statement::Begin);
        assert_eq!(classify("COMMIT;"), Statement::End("COMMIT"));
        assert_eq!(classify("rollback"), Statement::End("ROLLBACK"));
        assert_eq!(
            classify("SET application_name = 'x'"),
            Statement::Accepted("SET")
        );
        assert_eq!(
            classify("SHOW transaction_isolation"),
            Statement::Show {
                name: "transaction_isolation".into(),
                value: "read committed".into()
            }
        );
    }

    #[test]
    fn everything_else_goes_to_the_engine() {
        for sql in [
            "SELECT 1",
            "show tables",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "DROP TABLE t",
        ] {
            assert_eq!(classify(sql), Statement::Query(sql.to_string()));
        }
    }
}
