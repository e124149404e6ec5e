//! The layout-spec flags shared by the commands that take a target layout
//! (`enqueue-migration`, `whatif`): a typed spec, or a stored proposal, or the best one.

use anyhow::Result;
use clap::Args;
use dbopt::DbError;
use dbopt::migrate::SpecSource;
use dbopt_core::{Curve, LayoutSpec, SortKey};

/// A target layout: typed with the spec flags, or a stored proposal id; neither means the
/// table's best stored proposal.
#[derive(Debug, Args)]
pub struct SpecFlags {
    /// A stored proposal id (`dbopt propose` lists them) [default: the best proposal]
    #[arg(long, conflicts_with_all = ["partition_by", "sort_by", "zorder_by", "hilbert_by"])]
    pub proposal: Option<i64>,
    /// Hive partition columns, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub partition_by: Vec<String>,
    /// Sort keys, comma separated; `col:desc` sorts descending.
    #[arg(long, value_delimiter = ',')]
    pub sort_by: Vec<String>,
    /// Cluster on 2-4 columns with a Z-order curve, comma separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "hilbert_by")]
    pub zorder_by: Vec<String>,
    /// Cluster on 2-4 columns with a Hilbert curve, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub hilbert_by: Vec<String>,
    /// Rows per Parquet row group [default: 131072]
    #[arg(long)]
    pub row_group_rows: Option<usize>,
    /// Rows per data page [default: 8192]
    #[arg(long)]
    pub page_rows: Option<usize>,
    /// Columns that get a bloom filter, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub bloom: Vec<String>,
}

impl SpecFlags {
    /// Where the target spec comes from: the typed spec, else the proposal, else the best.
    pub fn source(&self) -> Result<SpecSource> {
        Ok(match (self.typed_spec()?, self.proposal) {
            (Some(spec), _) => SpecSource::Given(spec),
            (None, Some(id)) => SpecSource::Proposal(id),
            (None, None) => SpecSource::Best,
        })
    }

    /// The spec typed on the command line, or None when no spec flag was given.
    fn typed_spec(&self) -> Result<Option<LayoutSpec>> {
        let sort_by = self
            .sort_by
            .iter()
            .map(|key| SortKey::parse(key))
            .collect::<Result<Vec<_>, _>>()
            .map_err(DbError::BadArgument)?;
        let (cluster_by, curve) = if self.hilbert_by.is_empty() {
            (self.zorder_by.clone(), Curve::ZOrder)
        } else {
            (self.hilbert_by.clone(), Curve::Hilbert)
        };
        let spec = LayoutSpec {
            partition_by: self.partition_by.clone(),
            sort_by,
            cluster_by,
            curve,
            row_group_rows: self.row_group_rows,
            page_rows: self.page_rows,
            bloom_filter_columns: self.bloom.clone(),
        };
        Ok((spec != LayoutSpec::default()).then_some(spec))
    }
}
