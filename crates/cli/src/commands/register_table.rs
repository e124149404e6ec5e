//! `dbopt register-table`: bring a Delta Lake or Iceberg table under dbopt where it is, read
//! through its own log or metadata, without copying its data.

use super::table_name;
use crate::cli::Format;
use crate::output::{human_bytes, human_count};
use crate::progress::Bar;
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use dbopt::lake::IcebergLocation;
use std::path::PathBuf;

/// `dbopt register-table`
#[derive(Debug, Args)]
#[command(
    after_help = "Example (a table written by Spark, delta-rs or the deltalake package):
  dbopt register-table --table-name events --delta /lake/events
  DATA_DIR=s3://bucket/dbopt/ dbopt register-table --table-name events --delta s3://bucket/lake/events
  dbopt query --table-name events \"SELECT count(*) FROM events\"
  dbopt promote --table-name events --layout <id>   # one commit of the table's log
  dbopt rollback --table-name events                # a RESTORE commit

The table stays where it is and stays the source of truth: its current version becomes the
initial layout (hard links to its files, no copy), and a layout becomes the table's content
only by a commit of its log (remove + add, dataChange false). A Delta or Iceberg table on
object storage needs DATA_DIR in the same bucket: its files are copied into the initial layout
by the store (server-side, no byte through dbopt, one more copy stored), a layout is copied
into the table the same way when promoted, and new log entries and metadata files are
conditional puts that never overwrite a writer. Registered again with --replace,
dbopt reads the table's newest version. Tables partitioned by Delta partition columns or
Iceberg identity partitions keep that partitioning in every layout. Deletion vectors, delete
files, column mapping and other partition transforms are refused, the table left untouched."
)]
pub struct RegisterTableArgs {
    /// The name queries use for the table.
    #[arg(long)]
    pub table_name: String,
    /// A Delta table's root: the directory holding `_delta_log`, or its prefix on object
    /// storage (`s3://bucket/lake/events`, in DATA_DIR's bucket).
    #[arg(
        long,
        required_unless_present_any = ["iceberg", "iceberg_catalog"],
        conflicts_with_all = ["iceberg", "iceberg_catalog"]
    )]
    pub delta: Option<String>,
    /// An Iceberg table's directory (holding `metadata/`) or its current metadata file, on
    /// local disk or in DATA_DIR's bucket (read-only: publishing needs --iceberg-catalog).
    #[arg(long, conflicts_with = "iceberg_catalog")]
    pub iceberg: Option<PathBuf>,
    /// An Iceberg SQL catalog on SQLite, `sqlite:///path/catalog.db` (with --iceberg-table).
    #[arg(long, requires = "iceberg_table")]
    pub iceberg_catalog: Option<String>,
    /// The Iceberg table in --iceberg-catalog, as `namespace.table`.
    #[arg(long, requires = "iceberg_catalog")]
    pub iceberg_table: Option<String>,
    /// Replace a table of the same name (its query log stays).
    #[arg(long)]
    pub replace: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt register-table`.
pub async fn run(ws: Workspace, args: RegisterTableArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let progress = Bar::rows("reading");
    let iceberg = match (&args.iceberg, &args.iceberg_catalog, &args.iceberg_table) {
        (Some(path), _, _) => Some(IcebergLocation::Path(path.clone())),
        (None, Some(uri), Some(table)) => Some(IcebergLocation::SqlCatalog {
            uri: uri.clone(),
            table: table.clone(),
        }),
        _ => None,
    };
    let report = match (&args.delta, iceberg) {
        (Some(delta), _) => {
            ws.register_delta_table(&table, delta, args.replace, &progress)
                .await?
        }
        (None, Some(iceberg)) => {
            ws.register_iceberg_table(&table, &iceberg, args.replace, &progress)
                .await?
        }
        (None, None) => anyhow::bail!(
            "give --delta PATH, --iceberg PATH or --iceberg-catalog URI --iceberg-table NAME"
        ),
    };
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let version = if report.format == "iceberg" {
        "snapshot"
    } else {
        "version"
    };
    println!(
        "{}: registered {} table {} at {version} {} ({} files, {}, {} rows; digest recorded)",
        report.table,
        report.format,
        report.location,
        report.version,
        report.files,
        human_bytes(report.bytes),
        human_count(report.rows)
    );
    if report.declared != "as-is" {
        println!(
            "  the table declares {}: that is its initial layout's spec",
            report.declared
        );
    }
    if !report.not_carried.is_empty() {
        println!(
            "  not carried into the spec (no equivalent yet): {}",
            report.not_carried.join(", ")
        );
    }
    Ok(())
}
