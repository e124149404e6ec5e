//! `dbopt export-layout`: copy a layout to an object-storage prefix for engines that read the
//! lake there.

use super::{layout_id, table_name};
use crate::cli::Format;
use crate::output::{human_bytes, human_count};
use crate::progress::Bar;
use anyhow::Result;
use clap::Args;
use dbopt::Workspace;
use dbopt_core::LayoutId;

/// `dbopt export-layout`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dbopt export-layout --table-name events --to s3://lake/events-adapted/
  AWS_ENDPOINT_URL=http://127.0.0.1:9000 dbopt export-layout --table-name events --layout 3f2a9c0d11e4b7a2 --to s3://lake/events/

The files go up first, each as a multipart upload (8 MiB parts, 4 in flight), and the
manifest (_dbopt_layout.json) last: a prefix holding the manifest holds the whole layout. An
export killed half-way is finished by running it again. A prefix holding anything else is
refused. Credentials, region and endpoint come from the standard variables (AWS_*, GOOGLE_*,
AZURE_*), as for load-dataset.")]
pub struct ExportLayoutArgs {
    /// The table.
    #[arg(long)]
    pub table_name: String,
    /// The layout to copy [default: the active layout].
    #[arg(long)]
    pub layout: Option<String>,
    /// The object-storage prefix to copy it to: s3://bucket/prefix/, gs://..., az://...
    #[arg(long)]
    pub to: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `dbopt export-layout`.
pub async fn run(ws: Workspace, args: ExportLayoutArgs) -> Result<()> {
    let table = table_name(&args.table_name)?;
    let layout: Option<LayoutId> = args.layout.as_deref().map(layout_id).transpose()?;
    let progress = Bar::bytes("uploading");
    let report = ws
        .export_layout(&table, layout.as_ref(), &args.to, &progress)
        .await?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{}: exported layout {} to {} ({} files, {}, {} rows; manifest written last)",
        report.table,
        report.layout,
        report.to,
        report.files,
        human_bytes(report.bytes),
        human_count(report.rows)
    );
    Ok(())
}
