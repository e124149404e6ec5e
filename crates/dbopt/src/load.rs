//! `load-dataset`: a Parquet/CSV file or directory becomes a managed table's initial layout.

use crate::initial_layout::{InitialLayoutReport, InitialLayoutRequest};
use crate::{DbError, Progress, Workspace};
use dbopt_core::{LayoutSpec, TableName};
use dbopt_engine::new_session;
use dbopt_engine::source::{inspect_source, stream_source};
use dbopt_engine::writer::DEFAULT_ROWS_PER_FILE;
use futures::StreamExt;
use std::path::Path;

impl Workspace {
    /// Converts the source at `source` into the initial layout of `table` (ZSTD Parquet).
    #[tracing::instrument(name = "load", skip_all, fields(table = %table))]
    pub async fn load_dataset(
        &self,
        table: &TableName,
        source: &Path,
        replace: bool,
        progress: &dyn Progress,
    ) -> Result<InitialLayoutReport, DbError> {
        self.check_can_create(table, replace)?;
        let info = inspect_source(source)?;
        let data_dir = self.data_dir();
        if let Ok(abs) = std::path::absolute(source)
            && abs.starts_with(data_dir)
            && !abs.starts_with(data_dir.join(crate::nyc_taxi::DOWNLOADS_DIR))
        {
            return Err(DbError::SourceInsideDataDir {
                source_path: source.to_path_buf(),
                data_dir: data_dir.to_path_buf(),
            });
        }
        let session = new_session(&self.engine_settings());
        let rows = stream_source(&session, &info).await?;
        let request = InitialLayoutRequest {
            table: table.clone(),
            source: format!("load-dataset {}", source.display()),
            replace,
            rows_per_file: DEFAULT_ROWS_PER_FILE,
            spec: LayoutSpec::default(),
            writers: 1,
        };
        let batches = rows.batches.map(|b| b.map_err(DbError::from));
        self.write_initial_layout(&request, rows.schema, batches, progress)
            .await
    }
}
