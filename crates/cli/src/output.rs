//! Rendering for people and machines: tables, JSON and CSV of rows and Arrow batches.

use crate::cli::Format;
use anyhow::Result;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

/// True when the user asked for plain output: `DBOPT_PLAIN` set to anything but "" or "0",
/// or `NO_COLOR` set and non-empty.
pub fn plain_requested() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    (set("DBOPT_PLAIN") && std::env::var("DBOPT_PLAIN").is_ok_and(|v| v != "0")) || set("NO_COLOR")
}

/// How tables are drawn: boxes on a terminal, plain aligned text in pipes or when asked.
pub fn text_style() -> dbopt_report::Style {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() && !plain_requested() {
        dbopt_report::Style::Pretty
    } else {
        dbopt_report::Style::Plain
    }
}

/// A small text table: a header and rows of cells.
#[derive(Debug, Clone)]
pub struct Rows {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Rows {
    /// An empty table with these column names.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }
}

/// Prints `rows` in `format`.
pub fn print_rows(rows: &Rows, format: Format) {
    match format {
        Format::Table => {
            let header: Vec<&str> = rows.header.iter().map(String::as_str).collect();
            print!(
                "{}",
                dbopt_report::table_text(&header, &rows.rows, text_style())
            );
        }
        Format::Json => {
            let objects: Vec<serde_json::Map<String, serde_json::Value>> = rows
                .rows
                .iter()
                .map(|r| {
                    rows.header
                        .iter()
                        .cloned()
                        .zip(r.iter().map(|c| serde_json::Value::String(c.clone())))
                        .collect()
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&objects).expect("strings always serialize")
            );
        }
        Format::Csv => {
            println!(
                "{}",
                rows.header
                    .iter()
                    .map(|c| csv_cell(c))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            for r in &rows.rows {
                println!(
                    "{}",
                    r.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",")
                );
            }
        }
    }
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Prints query results in `format`.
pub fn print_batches(batches: &[RecordBatch], schema: &SchemaRef, format: Format) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Table => {
            let text =
                arrow::util::pretty::pretty_format_batches_with_schema(schema.clone(), batches)?;
            std::io::Write::write_all(&mut out, format!("{text}\n").as_bytes())?;
        }
        Format::Json => {
            let mut writer = arrow::json::ArrayWriter::new(&mut out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            writer.write_batches(&refs)?;
            writer.finish()?;
            drop(writer);
            std::io::Write::write_all(&mut out, b"\n")?;
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            if batches.is_empty() {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                drop(writer);
                println!("{}", names.join(","));
            } else {
                for b in batches {
                    writer.write(b)?;
                }
            }
        }
    }
    Ok(())
}

/// Prints one line about a written initial layout: rows, files, bytes, time and rows/s.
pub fn print_initial_layout(r: &dbopt::initial_layout::InitialLayoutReport) {
    println!(
        "{}: {} rows, {} files, {} in {:.2}s ({} rows/s)",
        r.table,
        human_count(r.rows),
        r.files,
        human_bytes(r.bytes),
        r.elapsed.as_secs_f64(),
        human_count(r.rows_per_second() as u64)
    );
}

/// `1.5 GiB`-style byte counts.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `1,234,567`-style counts.
pub fn human_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Prints proposals' predicted figures beside the ones a canary measured on the built layout.
pub fn print_predicted_vs_measured(proposals: &[dbopt_catalog::ProposalRecord], format: Format) {
    let mut rows = Rows::new(&[
        "id",
        "layout",
        "spec",
        "predicted scan",
        "measured scan",
        "predicted reduction",
        "measured reduction",
        "predicted size",
        "built size",
    ]);
    for p in proposals {
        rows.push(vec![
            p.id.to_string(),
            p.proposal.target_layout.to_string(),
            p.proposal.description.clone(),
            human_bytes(p.proposal.predicted_bytes as u64),
            p.measured_bytes
                .map_or("-".into(), |b| human_bytes(b as u64)),
            format!("{:.0}%", p.proposal.predicted_reduction * 100.0),
            p.measured_reduction
                .map_or("-".into(), |m| format!("{:.0}%", m * 100.0)),
            human_bytes(p.proposal.rewrite_write_bytes),
            p.built_size_bytes.map_or("-".into(), human_bytes),
        ]);
    }
    print_rows(&rows, format);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanized_numbers() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_count(1234567), "1,234,567");
        assert_eq!(human_count(12), "12");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
    }
}
