//! Physical layouts: what a layout asks for (`LayoutSpec`), what it holds (`LayoutManifest`)
//! and its content-addressed id (`LayoutId`).

use crate::CoreError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The file name of the manifest inside every layout directory.
pub const MANIFEST_FILE: &str = "_dbopt_layout.json";

/// The id of the layout a table is loaded or generated into.
pub const INITIAL_LAYOUT: &str = "initial";

/// One key of a sort order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SortKey {
    /// The column to sort on.
    pub column: String,
    /// Descending instead of ascending.
    #[serde(default)]
    pub descending: bool,
}

impl SortKey {
    /// Reads `col`, `col:asc` or `col:desc` (the form of `--sort-by` and spec files).
    pub fn parse(text: &str) -> Result<SortKey, String> {
        let (column, descending) = match text.rsplit_once(':') {
            Some((c, "desc")) => (c, true),
            Some((c, "asc")) => (c, false),
            Some(_) => {
                return Err(format!(
                    "bad sort key '{text}': use `col`, `col:asc` or `col:desc`"
                ));
            }
            None => (text, false),
        };
        Ok(SortKey {
            column: column.to_string(),
            descending,
        })
    }
}

/// The space-filling curve used to cluster on several columns at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Curve {
    /// Bit-interleaved Morton order.
    #[default]
    ZOrder,
    /// Hilbert curve order (better locality, slightly more work per row).
    Hilbert,
}

/// What a physical layout asks for: partitioning, ordering, clustering and Parquet sizing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct LayoutSpec {
    /// Hive partition columns, outermost first.
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// Sort order within each partition (applied after the cluster key, if any).
    #[serde(default)]
    pub sort_by: Vec<SortKey>,
    /// Columns to cluster on with a space-filling curve (two to four).
    #[serde(default)]
    pub cluster_by: Vec<String>,
    /// The curve used for `cluster_by`.
    #[serde(default)]
    pub curve: Curve,
    /// Rows per Parquet row group; None keeps the writer default.
    #[serde(default)]
    pub row_group_rows: Option<usize>,
    /// Rows per data page (limit); None keeps the writer default.
    #[serde(default)]
    pub page_rows: Option<usize>,
    /// Columns that get a Parquet bloom filter.
    #[serde(default)]
    pub bloom_filter_columns: Vec<String>,
}

/// Rows per Parquet file before a writer rolls to the next one, unless told otherwise.
pub const ROWS_PER_FILE: u64 = 4 * 1024 * 1024;

/// How a rewrite cuts its output into files, beyond what the spec asks: it changes the bytes
/// written, so a shape other than the default enters the layout id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FileShape {
    /// Source files per unit when the rewrite is incremental (each unit sorted on its own);
    /// None for a full rewrite.
    pub incremental_batch_files: Option<usize>,
    /// Rows per output file before rolling.
    pub rows_per_file: u64,
}

impl Default for FileShape {
    /// A full rewrite with `ROWS_PER_FILE` rows per file (what autopilot and proposals build).
    fn default() -> Self {
        Self {
            incremental_batch_files: None,
            rows_per_file: ROWS_PER_FILE,
        }
    }
}

/// Rows per row group when a spec does not say.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 128 * 1024;
/// Rows per data page when a spec does not say.
pub const DEFAULT_PAGE_ROWS: usize = 8 * 1024;
/// ZSTD level of every Parquet file dbopt writes (and of the sample the what-if model
/// compresses to predict a layout's size). Level 1 against 3, measured on a rewrite of 2M
/// events and of TPC-H SF 0.5 lineitem (with `DICTIONARY_PAGE_BYTES`): 9-13% less time per
/// rewrite for 2.8% more bytes on lineitem and 3.6% fewer on events.
pub const ZSTD_LEVEL: i32 = 1;

/// Largest dictionary page a column chunk keeps before the writer falls back to plain
/// encoding. A high-cardinality column (ids, session keys, timestamps) otherwise interns up to
/// 1 MiB of values per row group and writes a dictionary it then abandons: at 128 KiB the
/// same rewrites ran 8-20% faster and wrote 10-13% fewer bytes; low-cardinality columns
/// (countries, devices, flags) stay dictionary encoded.
pub const DICTIONARY_PAGE_BYTES: usize = 128 << 10;

/// False-positive rate of the Parquet bloom filters a layout's `bloom_filter_columns` get
/// (the writer builds them at this rate; the what-if model prices them with it).
pub const BLOOM_FPP: f64 = 0.01;

impl LayoutSpec {
    /// Every column the spec names, for validation against a schema.
    pub fn referenced_columns(&self) -> Vec<&str> {
        let mut cols: Vec<&str> = Vec::new();
        let all = self
            .partition_by
            .iter()
            .chain(self.sort_by.iter().map(|k| &k.column))
            .chain(self.cluster_by.iter())
            .chain(self.bloom_filter_columns.iter());
        for c in all {
            if !cols.contains(&c.as_str()) {
                cols.push(c);
            }
        }
        cols
    }

    /// Checks the spec is internally consistent (not against a schema).
    pub fn validate(&self) -> Result<(), CoreError> {
        if !self.cluster_by.is_empty() && !(2..=4).contains(&self.cluster_by.len()) {
            return Err(CoreError::InvalidSpec(format!(
                "cluster on 2 to 4 columns, got {}",
                self.cluster_by.len()
            )));
        }
        for c in &self.partition_by {
            if self.cluster_by.contains(c) || self.sort_by.iter().any(|k| &k.column == c) {
                return Err(CoreError::InvalidSpec(format!(
                    "column '{c}' is both a partition column and a sort/cluster column"
                )));
            }
        }
        if self.row_group_rows == Some(0) || self.page_rows == Some(0) {
            return Err(CoreError::InvalidSpec(
                "row group and page sizes must be positive".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for c in self.partition_by.iter().chain(&self.cluster_by) {
            if !seen.insert(c) {
                return Err(CoreError::InvalidSpec(format!(
                    "column '{c}' is named twice"
                )));
            }
        }
        let mut sorted = std::collections::HashSet::new();
        if let Some(k) = self.sort_by.iter().find(|k| !sorted.insert(&k.column)) {
            return Err(CoreError::InvalidSpec(format!(
                "sort key '{}' is named twice",
                k.column
            )));
        }
        let mut blooms = std::collections::HashSet::new();
        if let Some(c) = self
            .bloom_filter_columns
            .iter()
            .find(|c| !blooms.insert(*c))
        {
            return Err(CoreError::InvalidSpec(format!(
                "bloom filter column '{c}' is named twice"
            )));
        }
        Ok(())
    }

    /// Rows per row group the writer will use.
    pub fn effective_row_group_rows(&self) -> usize {
        self.row_group_rows.unwrap_or(DEFAULT_ROW_GROUP_ROWS)
    }

    /// Rows per page the writer will use.
    pub fn effective_page_rows(&self) -> usize {
        self.page_rows.unwrap_or(DEFAULT_PAGE_ROWS)
    }

    /// `hilbert(a,b)` or `zorder(a,b)`; None without clustering.
    fn cluster_label(&self) -> Option<String> {
        if self.cluster_by.is_empty() {
            return None;
        }
        let curve = match self.curve {
            Curve::ZOrder => "zorder",
            Curve::Hilbert => "hilbert",
        };
        Some(format!("{curve}({})", self.cluster_by.join(",")))
    }

    /// Each sort key as `col` or `col desc`.
    fn sort_labels(&self) -> Vec<String> {
        self.sort_by
            .iter()
            .map(|k| {
                if k.descending {
                    format!("{} desc", k.column)
                } else {
                    k.column.clone()
                }
            })
            .collect()
    }

    /// What changes from this spec to `to`, one entry per part that differs, in a fixed
    /// order: `partition: [] -> [country]`, `sort: [] -> [event_date]`, ...
    pub fn delta(&self, to: &LayoutSpec) -> Vec<SpecChange> {
        let cluster = |s: &LayoutSpec| -> Vec<String> { s.cluster_label().into_iter().collect() };
        let parts: [(&'static str, Vec<String>, Vec<String>); 6] = [
            (
                "partition",
                self.partition_by.clone(),
                to.partition_by.clone(),
            ),
            ("cluster", cluster(self), cluster(to)),
            ("sort", self.sort_labels(), to.sort_labels()),
            (
                "row_group_rows",
                vec![self.effective_row_group_rows().to_string()],
                vec![to.effective_row_group_rows().to_string()],
            ),
            (
                "page_rows",
                vec![self.effective_page_rows().to_string()],
                vec![to.effective_page_rows().to_string()],
            ),
            (
                "bloom",
                self.bloom_filter_columns.clone(),
                to.bloom_filter_columns.clone(),
            ),
        ];
        parts
            .into_iter()
            .filter(|(_, from, to)| from != to)
            .map(|(part, from, to)| SpecChange { part, from, to })
            .collect()
    }

    /// A short human description, e.g. `partition(country) cluster-zorder(a,b) rg=131072`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.partition_by.is_empty() {
            parts.push(format!("partition({})", self.partition_by.join(",")));
        }
        parts.extend(self.cluster_label());
        if !self.sort_by.is_empty() {
            parts.push(format!("sort({})", self.sort_labels().join(",")));
        }
        if let Some(rg) = self.row_group_rows {
            parts.push(format!("rg={rg}"));
        }
        if let Some(p) = self.page_rows {
            parts.push(format!("page={p}"));
        }
        if !self.bloom_filter_columns.is_empty() {
            parts.push(format!("bloom({})", self.bloom_filter_columns.join(",")));
        }
        if parts.is_empty() {
            "as-is".to_string()
        } else {
            parts.join(" ")
        }
    }
}

/// One part of a layout spec that changes (see [`LayoutSpec::delta`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecChange {
    /// `partition`, `cluster`, `sort`, `row_group_rows`, `page_rows` or `bloom`.
    pub part: &'static str,
    /// The current value.
    pub from: Vec<String>,
    /// The new value.
    pub to: Vec<String>,
}

impl std::fmt::Display for SpecChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: [{}] -> [{}]",
            self.part,
            self.from.join(", "),
            self.to.join(", ")
        )
    }
}

/// A content-addressed layout id: `initial` or 16 hex digits of SHA-256 over (source, spec).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LayoutId(String);

impl LayoutId {
    /// The id of a table's initial layout.
    pub fn initial() -> Self {
        Self(INITIAL_LAYOUT.to_string())
    }

    /// The id derived from the source layout and the canonical JSON of the spec.
    pub fn derive(source: &LayoutId, spec: &LayoutSpec) -> Self {
        let canonical = serde_json::to_string(spec).expect("a LayoutSpec always serializes");
        let mut hasher = Sha256::new();
        hasher.update(source.0.as_bytes());
        hasher.update([0u8]);
        hasher.update(canonical.as_bytes());
        let digest = hasher.finalize();
        Self(hex::encode(&digest[..8]))
    }

    /// The id of `spec` built from `source` with the file `shape`: the same as `derive` for the
    /// default shape, and a different id for every other shape, so two rewrites that write
    /// different bytes never share an id.
    pub fn derive_shaped(source: &LayoutId, spec: &LayoutSpec, shape: &FileShape) -> Self {
        if *shape == FileShape::default() {
            return Self::derive(source, spec);
        }
        let shaped = format!(
            "{}\0{}",
            source.0,
            serde_json::to_string(shape).expect("a FileShape always serializes")
        );
        Self::derive(&LayoutId(shaped), spec)
    }

    /// Parses an id typed by a user: `initial` or 1 to 64 lowercase hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = text == INITIAL_LAYOUT
            || (!text.is_empty()
                && text.len() <= 64
                && text
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        ok.then(|| Self(text.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory name of this layout under the table directory.
    pub fn dir_name(&self) -> String {
        format!("layout_{}", self.0)
    }

    /// The layout's directory relative to the data directory, as the catalog records it by
    /// default: `<table>/layout_<id>`.
    pub fn path_in(&self, table: &crate::TableName) -> String {
        format!("{table}/{}", self.dir_name())
    }

    /// The layout a directory name under a table directory holds: `layout_<id>`, or
    /// `layout_<id>.<generation>` (an initial layout written again by `--replace` on object
    /// storage, beside the one it replaces). None for any other name.
    pub fn from_dir_name(name: &str) -> Option<Self> {
        let rest = name.strip_prefix("layout_")?;
        let id = match rest.split_once('.') {
            Some((id, generation))
                if !generation.is_empty() && generation.chars().all(|c| c.is_ascii_digit()) =>
            {
                id
            }
            Some(_) => return None,
            None => rest,
        };
        Self::parse(id)
    }
}

impl fmt::Display for LayoutId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One Parquet file of a layout, relative to the layout directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path relative to the layout directory (`part-00000.parquet` or `col=v/part-00000.parquet`).
    pub path: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Rows in the file.
    pub rows: u64,
    /// Row groups in the file.
    pub row_groups: u64,
}

/// What a layout directory holds, written as `_dbopt_layout.json` beside its files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayoutManifest {
    /// The layout id.
    pub layout_id: LayoutId,
    /// The table.
    pub table: String,
    /// The layout it was rewritten from (None for the initial layout).
    pub source_layout: Option<LayoutId>,
    /// What was asked for.
    pub spec: LayoutSpec,
    /// The files, sorted by path.
    pub files: Vec<ManifestFile>,
    /// Total rows.
    pub row_count: u64,
    /// Order-insensitive digest of all rows (`RowDigest` text form).
    pub digest: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The table's columns in order, each with its Arrow type (`Int64`, `Date32`, ...), kept
    /// when the files do not hold them all: a partitioned initial layout (a registered Delta
    /// table), whose hive keys live only in its directory names. Empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<(String, String)>,
}

impl LayoutManifest {
    /// Total bytes of all files.
    pub fn total_bytes(&self) -> u64 {
        // Saturating: a hand-edited manifest must not overflow the sum.
        self.files
            .iter()
            .fold(0u64, |a, f| a.saturating_add(f.size_bytes))
    }

    /// Total row groups of all files.
    pub fn total_row_groups(&self) -> u64 {
        self.files
            .iter()
            .fold(0u64, |a, f| a.saturating_add(f.row_groups))
    }

    /// Parses a manifest read from `path`.
    pub fn from_json(path: &str, text: &str) -> Result<Self, CoreError> {
        let manifest: Self =
            serde_json::from_str(text).map_err(|e| CoreError::CorruptManifest {
                path: path.to_string(),
                message: e.to_string(),
            })?;
        // File paths are joined to the layout directory: never let an edited manifest point
        // outside it.
        if let Some(bad) = manifest.files.iter().find(|f| {
            let p = std::path::Path::new(&f.path);
            f.path.is_empty()
                || p.components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
        }) {
            return Err(CoreError::CorruptManifest {
                path: path.to_string(),
                message: format!(
                    "file path '{}' is not relative to the layout directory",
                    bad.path
                ),
            });
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names_give_their_layout_with_or_without_a_generation() {
        let id = |name: &str| LayoutId::from_dir_name(name).map(|l| l.0);
        assert_eq!(id("layout_initial").as_deref(), Some("initial"));
        assert_eq!(
            id("layout_initial.1733000000000").as_deref(),
            Some("initial")
        );
        assert_eq!(id("layout_3f2a9c0d").as_deref(), Some("3f2a9c0d"));
        for other in [
            "layout_initial.",
            "layout_initial.x1",
            "_staging",
            "layout_XY",
            "trash",
        ] {
            assert_eq!(id(other), None, "{other}");
        }
        let table = crate::TableName::new("events").unwrap();
        assert_eq!(LayoutId::initial().path_in(&table), "events/layout_initial");
    }

    fn spec() -> LayoutSpec {
        LayoutSpec {
            sort_by: vec![SortKey {
                column: "event_date".into(),
                descending: false,
            }],
            row_group_rows: Some(65536),
            ..Default::default()
        }
    }

    #[test]
    fn id_is_stable_and_content_addressed() {
        let a = LayoutId::derive(&LayoutId::initial(), &spec());
        let b = LayoutId::derive(&LayoutId::initial(), &spec());
        assert_eq!(a, b);
        assert_eq!(a.as_str().len(), 16);
        let mut other = spec();
        other.row_group_rows = Some(1000);
        assert_ne!(a, LayoutId::derive(&LayoutId::initial(), &other));
        assert_ne!(a, LayoutId::derive(&a, &spec()));
        let shaped = |batch, rows| {
            let shape = FileShape {
                incremental_batch_files: batch,
                rows_per_file: rows,
            };
            LayoutId::derive_shaped(&LayoutId::initial(), &spec(), &shape)
        };
        assert_eq!(shaped(None, ROWS_PER_FILE), a);
        let distinct = [
            shaped(None, 1000),
            shaped(Some(4), ROWS_PER_FILE),
            shaped(Some(2), ROWS_PER_FILE),
            shaped(Some(2), 1000),
        ];
        for (i, x) in distinct.iter().enumerate() {
            assert_ne!(x, &a);
            for y in &distinct[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }

    #[test]
    fn validate_rejects_inconsistent_specs() {
        let mut s = spec();
        s.cluster_by = vec!["a".into()];
        assert!(s.validate().is_err());
        s.cluster_by = vec!["a".into(), "b".into()];
        assert!(s.validate().is_ok());
        s.partition_by = vec!["a".into()];
        assert!(s.validate().is_err());
        let zero = LayoutSpec {
            row_group_rows: Some(0),
            ..Default::default()
        };
        assert!(zero.validate().is_err());
        let key = |c: &str| SortKey {
            column: c.into(),
            descending: false,
        };
        let twice = LayoutSpec {
            sort_by: vec![key("a"), key("b"), key("a")],
            ..Default::default()
        };
        let err = twice.validate().unwrap_err().to_string();
        assert!(err.contains("sort key 'a' is named twice"), "{err}");
        let blooms = LayoutSpec {
            bloom_filter_columns: vec!["x".into(), "x".into()],
            ..Default::default()
        };
        let err = blooms.validate().unwrap_err().to_string();
        assert!(
            err.contains("bloom filter column 'x' is named twice"),
            "{err}"
        );
    }

    #[test]
    fn parse_layout_ids() {
        assert!(LayoutId::parse("initial").is_some());
        assert!(LayoutId::parse("0123abcd").is_some());
        assert!(LayoutId::parse("../x").is_none());
        assert!(LayoutId::parse("").is_none());
    }

    #[test]
    fn describe_is_readable() {
        assert_eq!(LayoutSpec::default().describe(), "as-is");
        assert_eq!(spec().describe(), "sort(event_date) rg=65536");
    }

    #[test]
    fn delta_names_each_changed_part() {
        let from = LayoutSpec::default();
        let to = LayoutSpec {
            partition_by: vec!["country".into()],
            sort_by: vec![SortKey {
                column: "event_date".into(),
                descending: true,
            }],
            page_rows: Some(2048),
            ..LayoutSpec::default()
        };
        let lines: Vec<String> = from.delta(&to).iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "partition: [] -> [country]",
                "sort: [] -> [event_date desc]",
                "page_rows: [8192] -> [2048]",
            ]
        );
        assert!(to.delta(&to).is_empty());
    }
}
