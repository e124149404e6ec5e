//! The pure migration plan: which source files are rewritten in which units into which layout.
//! Built and printed before any IO (`--dry-run`), stored with the job, and followed by workers.

use crate::MigrateError;
use dbopt_catalog::MigrationMode;
use dbopt_core::{FileShape, LayoutId, LayoutManifest, LayoutSpec};
use serde::{Deserialize, Serialize};

/// Source files per unit in incremental mode when the caller does not say.
pub const DEFAULT_BATCH_FILES: usize = 4;

/// What the caller asks for, with the source layout's facts (no IO in planning).
#[derive(Debug, Clone)]
pub struct PlanRequest<'a> {
    /// The table name.
    pub table: &'a str,
    /// The source layout's manifest.
    pub source: &'a LayoutManifest,
    /// The table's columns in canonical order.
    pub columns: &'a [String],
    /// Those of them that are nested (struct, list, map): no spec may key on them.
    pub nested_columns: &'a [String],
    /// The target spec.
    pub spec: &'a LayoutSpec,
    /// Full or incremental.
    pub mode: MigrationMode,
    /// Source files per unit (incremental mode).
    pub batch_files: usize,
    /// Rows per output file before rolling.
    pub rows_per_file: u64,
    /// Activate the layout when published.
    pub activate: bool,
}

/// A plain, printable migration plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationPlan {
    /// The table.
    pub table: String,
    /// The layout read.
    pub source_layout: LayoutId,
    /// The layout built: the content hash of (source layout, spec).
    pub target_layout: LayoutId,
    /// What is built.
    pub spec: LayoutSpec,
    /// Full or incremental.
    pub mode: MigrationMode,
    /// Make the layout active on publish.
    pub activate: bool,
    /// Source files of each unit, relative to the source layout directory.
    pub units: Vec<Vec<String>>,
    /// Source files rewritten.
    pub files_to_rewrite: u64,
    /// Source bytes rewritten.
    pub bytes_to_rewrite: u64,
    /// Rows rewritten.
    pub rows: u64,
    /// Rows per output file before rolling.
    pub rows_per_file: u64,
    /// Output files expected (a minimum when partitioned: one or more per partition).
    pub expected_output_files: u64,
}

impl MigrationPlan {
    /// Plans the rewrite; refuses specs naming unknown columns or modes the source cannot do.
    pub fn build(req: &PlanRequest<'_>) -> Result<MigrationPlan, MigrateError> {
        req.spec.validate().map_err(MigrateError::Spec)?;
        for col in req.spec.referenced_columns() {
            if !req.columns.iter().any(|c| c == col) {
                return Err(MigrateError::UnknownColumn {
                    column: col.to_string(),
                    table: req.table.to_string(),
                    columns: req.columns.join(", "),
                });
            }
            if req.nested_columns.iter().any(|c| c == col) {
                return Err(MigrateError::NestedColumn {
                    column: col.to_string(),
                    table: req.table.to_string(),
                });
            }
        }
        if req.source.files.is_empty() || req.source.row_count == 0 {
            return Err(MigrateError::EmptySource {
                table: req.table.to_string(),
                layout: req.source.layout_id.to_string(),
            });
        }
        if req.rows_per_file == 0 {
            return Err(MigrateError::ZeroRowsPerFile);
        }
        if req.batch_files == 0 {
            return Err(MigrateError::ZeroBatchFiles);
        }
        let partitioned_source = !req.source.spec.partition_by.is_empty();
        let files: Vec<&dbopt_core::ManifestFile> = req.source.files.iter().collect();
        let units: Vec<Vec<&dbopt_core::ManifestFile>> = match req.mode {
            MigrationMode::Full => vec![files],
            MigrationMode::Incremental => {
                if partitioned_source {
                    return Err(MigrateError::IncrementalOnPartitioned(
                        req.source.layout_id.to_string(),
                    ));
                }
                files.chunks(req.batch_files).map(<[_]>::to_vec).collect()
            }
        };
        let expected_output_files = units
            .iter()
            .map(|u| {
                let rows: u64 = u.iter().map(|f| f.rows).sum();
                rows.div_ceil(req.rows_per_file).max(1)
            })
            .sum();
        Ok(MigrationPlan {
            table: req.table.to_string(),
            source_layout: req.source.layout_id.clone(),
            target_layout: LayoutId::derive_shaped(
                &req.source.layout_id,
                req.spec,
                &FileShape {
                    incremental_batch_files: (req.mode == MigrationMode::Incremental)
                        .then_some(req.batch_files),
                    rows_per_file: req.rows_per_file,
                },
            ),
            spec: req.spec.clone(),
            mode: req.mode,
            activate: req.activate,
            units: units
                .iter()
                .map(|u| u.iter().map(|f| f.path.clone()).collect())
                .collect(),
            files_to_rewrite: req.source.files.len() as u64,
            bytes_to_rewrite: req.source.total_bytes(),
            rows: req.source.row_count,
            rows_per_file: req.rows_per_file,
            expected_output_files,
        })
    }

    /// The plan as human-readable lines.
    pub fn describe(&self) -> Vec<String> {
        let partitioned = !self.spec.partition_by.is_empty();
        vec![
            format!("table:          {}", self.table),
            format!("source layout:  {}", self.source_layout),
            format!("target layout:  {}", self.target_layout),
            format!("target spec:    {}", self.spec.describe()),
            format!(
                "mode:           {} ({} unit{})",
                self.mode.as_str(),
                self.units.len(),
                if self.units.len() == 1 { "" } else { "s" }
            ),
            format!(
                "rewrite:        {} files, {} bytes, {} rows",
                self.files_to_rewrite, self.bytes_to_rewrite, self.rows
            ),
            format!(
                "output files:   {}{} (at most {} rows each)",
                if partitioned { "at least " } else { "" },
                self.expected_output_files,
                self.rows_per_file
            ),
            format!(
                "activate:       {}",
                if self.activate {
                    "yes, on publish"
                } else {
                    "no"
                }
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Fault;
    use dbopt_core::{ManifestFile, SortKey};

    fn manifest(files: usize, rows_each: u64) -> LayoutManifest {
        LayoutManifest {
            layout_id: LayoutId::initial(),
            table: "t".into(),
            source_layout: None,
            spec: LayoutSpec::default(),
            files: (0..files)
                .map(|i| ManifestFile {
                    path: format!("part-{i:05}.parquet"),
                    size_bytes: 100,
                    rows: rows_each,
                    row_groups: 1,
                })
                .collect(),
            row_count: files as u64 * rows_each,
            digest: "0:0".into(),
            created_at_ms: 0,
            columns: Vec::new(),
        }
    }

    fn spec(col: &str) -> LayoutSpec {
        LayoutSpec {
            sort_by: vec![SortKey {
                column: col.into(),
                descending: false,
            }],
            ..Default::default()
        }
    }

    fn request<'a>(
        m: &'a LayoutManifest,
        cols: &'a [String],
        s: &'a LayoutSpec,
        mode: MigrationMode,
    ) -> PlanRequest<'a> {
        PlanRequest {
            table: "t",
            source: m,
            columns: cols,
            nested_columns: &[],
            spec: s,
            mode,
            batch_files: 4,
            rows_per_file: 250,
            activate: true,
        }
    }

    #[test]
    fn full_plan_is_one_unit_with_totals() {
        let m = manifest(10, 100);
        let cols = vec!["a".to_string(), "b".into()];
        let s = spec("a");
        let plan = MigrationPlan::build(&request(&m, &cols, &s, MigrationMode::Full)).unwrap();
        assert_eq!(plan.units.len(), 1);
        assert_eq!(plan.units[0].len(), 10);
        assert_eq!(
            (plan.files_to_rewrite, plan.bytes_to_rewrite, plan.rows),
            (10, 1000, 1000)
        );
        assert_eq!(plan.expected_output_files, 4);
        // 250 rows per file is not the default shape, so it enters the id.
        let shape = FileShape {
            incremental_batch_files: None,
            rows_per_file: 250,
        };
        assert_eq!(
            plan.target_layout,
            LayoutId::derive_shaped(&LayoutId::initial(), &s, &shape)
        );
        assert_ne!(
            plan.target_layout,
            LayoutId::derive(&LayoutId::initial(), &s)
        );
        assert!(plan.describe().iter().any(|l| l.contains("sort(a)")));
    }

    #[test]
    fn a_spec_on_a_nested_column_is_refused() {
        let m = manifest(10, 100);
        let cols = vec!["a".to_string(), "tags".into()];
        let nested = vec!["tags".to_string()];
        let s = LayoutSpec {
            bloom_filter_columns: vec!["tags".into()],
            ..Default::default()
        };
        let mut req = request(&m, &cols, &s, MigrationMode::Full);
        req.nested_columns = &nested;
        let err = MigrationPlan::build(&req).unwrap_err();
        assert!(matches!(err, MigrateError::NestedColumn { ref column, .. } if column == "tags"));
        assert_eq!(err.fault(), Fault::Input);
    }

    #[test]
    fn incremental_plan_batches_files_and_is_deterministic() {
        let m = manifest(10, 100);
        let cols = vec!["a".to_string()];
        let s = spec("a");
        let req = request(&m, &cols, &s, MigrationMode::Incremental);
        let plan = MigrationPlan::build(&req).unwrap();
        let sizes: Vec<usize> = plan.units.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        // 400 rows -> 2 files, 400 -> 2, 200 -> 1.
        assert_eq!(plan.expected_output_files, 5);
        assert_eq!(plan, MigrationPlan::build(&req).unwrap());
    }

    #[test]
    fn unknown_columns_and_bad_specs_are_refused() {
        let m = manifest(2, 10);
        let cols = vec!["a".to_string()];
        let s = spec("nope");
        let err = MigrationPlan::build(&request(&m, &cols, &s, MigrationMode::Full)).unwrap_err();
        assert!(err.to_string().contains("unknown column 'nope'"), "{err}");
        assert!(!err.is_retryable());
        let bad = LayoutSpec {
            cluster_by: vec!["a".into()],
            ..Default::default()
        };
        assert!(MigrationPlan::build(&request(&m, &cols, &bad, MigrationMode::Full)).is_err());
        let empty = manifest(0, 0);
        let ok = spec("a");
        assert!(MigrationPlan::build(&request(&empty, &cols, &ok, MigrationMode::Full)).is_err());
    }

    #[test]
    fn partitioned_source_cannot_be_incremental() {
        let mut m = manifest(3, 10);
        m.spec.partition_by = vec!["a".into()];
        let cols = vec!["a".to_string(), "b".into()];
        let s = spec("b");
        assert!(MigrationPlan::build(&request(&m, &cols, &s, MigrationMode::Incremental)).is_err());
        assert!(MigrationPlan::build(&request(&m, &cols, &s, MigrationMode::Full)).is_ok());
    }
}
