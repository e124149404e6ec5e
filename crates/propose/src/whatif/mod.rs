//! The what-if cost model: lay a sample out as a candidate would (partitions, curve key, sort),
//! cut it into row groups and pages at sizes scaled to the full table, build min/max zone
//! maps, and count for each logged query (with its literals) the files, row groups and pages
//! that survive pruning, converted to bytes with the per-column compressed sizes.
//!
//! `estimate` reads as its steps: `arrange` the sample, `Scale` sizes down to the sample,
//! `ColumnRates` (bytes per row, adjusted for the new order's compression), `ZoneLayout`
//! (zone maps per part, row group and page), then per query a `QueryScan` counted by
//! `scan_query` / `scan_row_group`, weighted into the `Estimate` and priced by `Estimate::price`.
//! A `QueryScan` reads its columns in `fetch_stages`, as DataFusion's filter pushdown does:
//! each filter column only on the pages where the cheaper filters before it kept rows, the
//! other columns only where every filter did (late materialization).

mod arrange;
mod join;
mod zone;

pub use arrange::{Part, arrange, compression_ratios};
use join::JoinFilter;
pub use join::JoinKeys;
pub use zone::{Zone, row_matches};

use crate::ProposeError;
use crate::calibrate::Prices;
use crate::sample::{Key, Sample};
use dbopt_core::LayoutSpec;
use dbopt_core::layout::{BLOOM_FPP, ROWS_PER_FILE};
use dbopt_core::plan_summary::{Predicate, PredicateKind, TableStats, TableUsage};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Price of opening one file, in byte-equivalents (metadata read, request setup).
pub const FILE_PRICE_BYTES: f64 = 256.0 * 1024.0;
/// Price of visiting one row group, in byte-equivalents (decoder setup).
pub const ROW_GROUP_PRICE_BYTES: f64 = 16.0 * 1024.0;
/// Price of decoding one data page of one column, in byte-equivalents (page header, page
/// index entry, decoder call).
pub const PAGE_PRICE_BYTES: f64 = 1024.0;

/// One logged query to price, with its weight (how many times it ran).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatIfQuery {
    /// Its workload cluster.
    pub cluster_id: String,
    /// What it asks of the table (filters with literals, columns read).
    pub usage: TableUsage,
    /// Times it ran.
    pub weight: f64,
    /// Keys hash joins carry into the table's scan, priced as filters of the scan (found by
    /// planning the query; never stored).
    #[serde(skip)]
    pub join_keys: Vec<JoinKeys>,
}

/// The predicted cost of the workload on one layout.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Estimate {
    /// Bytes scanned (column data, as DataFusion counts it), summed over the weighted queries.
    pub bytes_scanned: f64,
    /// Footer and page-index bytes read besides (priced in `cost`).
    pub metadata_bytes: f64,
    /// Files opened, summed over queries.
    pub files_read: f64,
    /// Row groups visited, summed over queries.
    pub row_groups_read: f64,
    /// Column pages decoded, summed over queries.
    #[serde(default)]
    pub pages_read: f64,
    /// Files in the layout.
    pub files_total: u64,
    /// Row groups in the layout.
    pub row_groups_total: u64,
    /// Bytes plus the prices of files and row groups.
    pub cost: f64,
    /// Predicted size of the layout on disk: each column's compressed size in the new order,
    /// partition columns left out (they live in directory names), plus footer metadata per
    /// row group. The current layout's measured size when it is kept as it is.
    #[serde(default)]
    pub size_bytes: f64,
    /// Bytes per cluster.
    pub cluster_bytes: BTreeMap<String, f64>,
}

/// Per query: which sample rows match all its prunable predicates, and the overall rate.
struct QueryMatch {
    rows: Vec<bool>,
    rate: f64,
}

/// The sample rows matching every predicate of `filters` (a column the sample lacks keeps
/// every row).
fn rows_matching(sample: &Sample, filters: &[Predicate]) -> Vec<bool> {
    let mut rows = vec![true; sample.rows()];
    for p in filters {
        let Some(keys) = sample.keys(&p.column) else {
            continue;
        };
        for (r, ok) in rows.iter_mut().enumerate() {
            if *ok && !row_matches(&keys[r], &p.kind) {
                *ok = false;
            }
        }
    }
    rows
}

/// The sample rows matching all of `filters`, and the query's match rate (from the hits, or
/// `unseen_rate` when there are none; `distinct` caches the columns' distinct estimates).
fn match_rows(
    sample: &Sample,
    filters: &[Predicate],
    distinct: &mut HashMap<String, Option<u64>>,
) -> QueryMatch {
    let rows = rows_matching(sample, filters);
    let rate = match_rate(sample, &rows, filters, distinct);
    QueryMatch { rows, rate }
}

/// The share of the table `rows` (the sample rows matching `filters`) stands for: the hit
/// rate, or `unseen_rate` when no sample row matches.
fn match_rate(
    sample: &Sample,
    rows: &[bool],
    filters: &[Predicate],
    distinct: &mut HashMap<String, Option<u64>>,
) -> f64 {
    let hits = rows.iter().filter(|b| **b).count();
    if hits == 0 {
        unseen_rate(sample, filters, distinct)
    } else {
        hits as f64 / rows.len() as f64
    }
}

/// The match rate of a query no sample row matches. An equality or IN lookup matches about
/// its values' share of the column's distinct values (a user's events, an order's lines):
/// values / distinct estimate, at most one row in the sample's size (it saw none). Without a
/// lookup, half a row of the table.
fn unseen_rate(
    sample: &Sample,
    filters: &[Predicate],
    distinct: &mut HashMap<String, Option<u64>>,
) -> f64 {
    let floor = 0.5 / sample.table_rows as f64;
    let ceiling = 1.0 / sample.rows().max(1) as f64;
    filters
        .iter()
        .filter_map(|p| {
            let values = match &p.kind {
                PredicateKind::Eq { .. } => 1.0,
                PredicateKind::In { values } => values.len() as f64,
                _ => return None,
            };
            let d = *distinct
                .entry(p.column.clone())
                .or_insert_with(|| sample.distinct_estimate(&p.column));
            d.filter(|d| *d > 0).map(|d| values / d as f64)
        })
        .reduce(f64::min)
        .map_or(floor, |rate| rate.clamp(floor, ceiling.max(floor)))
}

/// Probability that a run of `full_rows` rows holds at least one row matching at `rate`.
fn p_any(rate: f64, full_rows: f64) -> f64 {
    1.0 - (1.0 - rate.clamp(0.0, 1.0)).powf(full_rows.max(0.0))
}

/// How one query's matches spread over a layout's pages: the per-row match rate of a page is
/// taken as Gamma(`shape`, `scale`) distributed, fitted to the sample's hits per page by the
/// method of moments (a negative binomial). Matches scattered at random (hits per page no more
/// variable than Poisson) have no `scale`; matches that cluster (a date range on a table in
/// time order: a few pages hold them all) have a large variance and a small `shape`.
///
/// It answers the question the zone maps leave open: a page that may match by its min/max
/// but whose sample rows hold no match, does the page hold one among the rows not sampled?
/// For scattered matches, probably (a rare value is missed by the sample); for clustered
/// ones, hardly (a run of matches would have been sampled).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Dispersion {
    /// The query's match rate (matches per row) over the whole layout.
    rate: f64,
    /// Gamma shape and scale of the per-page rate; `None` when matches look scattered.
    gamma: Option<(f64, f64)>,
}

impl Dispersion {
    /// Fits the hits per page, given as (sample rows, sample hits) of every page.
    fn fit(pages: &[(usize, usize)], rate: f64) -> Self {
        let scattered = Self { rate, gamma: None };
        let count = pages.len() as f64;
        let rows: usize = pages.iter().map(|p| p.0).sum();
        if pages.len() < 2 || rows == 0 {
            return scattered;
        }
        let rows_per_page = rows as f64 / count;
        let mean = pages.iter().map(|p| p.1 as f64).sum::<f64>() / count;
        let var = pages
            .iter()
            .map(|p| (p.1 as f64 - mean).powi(2))
            .sum::<f64>()
            / (count - 1.0);
        // Equal up to rounding is Poisson too: a variance a hair above the mean would fit an
        // absurd shape whose powers lose all precision.
        if mean <= 0.0 || var <= mean * (1.0 + 1e-9) {
            return scattered;
        }
        let scale = (var - mean) / (rows_per_page * mean);
        let shape = mean / (rows_per_page * scale);
        Self {
            rate,
            gamma: Some((shape, scale)),
        }
    }

    /// The chance that `unsampled` table rows of a page hold a match when its `sampled` sample
    /// rows hold none.
    fn unseen_match(&self, sampled: usize, unsampled: f64) -> f64 {
        match self.gamma {
            None => p_any(self.rate, unsampled),
            Some((shape, scale)) => {
                // The page's rate after seeing no hit in `sampled` rows is Gamma(shape,
                // scale / (1 + sampled * scale)); no match in `unsampled` more rows has
                // probability (1 + unsampled * that scale)^-shape.
                let posterior = scale / (1.0 + sampled as f64 * scale);
                1.0 - (1.0 + unsampled.max(0.0) * posterior).powf(-shape)
            }
        }
    }
}

/// Precomputed row matches of the workload over a sample, shared by every candidate.
pub struct Workload {
    /// One entry per scan: a query that scans the table twice (a self-join, a subquery over
    /// the same table) is priced as two scans, each with its own filters and columns.
    queries: Vec<WhatIfQuery>,
    matches: Vec<QueryMatch>,
    /// Per query: the sample rows each filter column's prunable predicates keep.
    column_matches: Vec<BTreeMap<String, Vec<bool>>>,
    filter_columns: BTreeSet<String>,
    /// Distinct-value estimates of lookup columns, computed when first needed.
    distinct: RefCell<HashMap<String, Option<u64>>>,
    prices: Prices,
}

impl Workload {
    /// Evaluates every query's predicates on the sample rows once (for each of its scans).
    pub fn new(sample: &Sample, queries: &[WhatIfQuery]) -> Self {
        let mut queries: Vec<WhatIfQuery> = queries
            .iter()
            .flat_map(|q| {
                let scans = q.usage.per_scan();
                // Join keys reach a table scanned once (see `dbopt_engine::join_keys`).
                let join_keys = if scans.len() == 1 {
                    q.join_keys.clone()
                } else {
                    Vec::new()
                };
                scans.into_iter().map(move |usage| WhatIfQuery {
                    cluster_id: q.cluster_id.clone(),
                    usage,
                    weight: q.weight,
                    join_keys: join_keys.clone(),
                })
            })
            .collect();
        let joins: Vec<Vec<JoinFilter>> = queries
            .iter_mut()
            .map(|q| join::add_filters(sample, q))
            .collect();
        let mut distinct: HashMap<String, Option<u64>> = HashMap::new();
        let matches = queries
            .iter()
            .zip(&joins)
            .map(|(q, joins)| {
                let filters = prunable(&q.usage.filters);
                let matched = match_rows(sample, &filters, &mut distinct);
                join::narrow(sample, matched, joins)
            })
            .collect();
        let column_matches = queries
            .iter()
            .zip(&joins)
            .map(|(q, joins)| join::narrow_columns(column_matches(sample, &q.usage.filters), joins))
            .collect();
        let filter_columns = queries
            .iter()
            .flat_map(|q| q.usage.filters.iter().map(|p| p.column.clone()))
            .collect();
        Workload {
            queries,
            matches,
            column_matches,
            filter_columns,
            distinct: RefCell::new(distinct),
            prices: Prices::default(),
        }
    }

    /// The same workload priced at `prices` (calibrated for this machine) instead of the
    /// built-in defaults.
    pub fn with_prices(mut self, prices: Prices) -> Self {
        self.prices = prices;
        self
    }
}

/// Per filter column with prunable predicates, the sample rows they keep.
fn column_matches(sample: &Sample, filters: &[Predicate]) -> BTreeMap<String, Vec<bool>> {
    let mut by_column: BTreeMap<String, Vec<Predicate>> = BTreeMap::new();
    for p in filters.iter().filter(|p| p.kind.prunable()) {
        by_column
            .entry(p.column.clone())
            .or_default()
            .push(p.clone());
    }
    by_column
        .into_iter()
        .map(|(c, preds)| {
            let rows = rows_matching(sample, &preds);
            (c, rows)
        })
        .collect()
}

fn prunable(filters: &[Predicate]) -> Vec<Predicate> {
    filters
        .iter()
        .filter(|p| p.kind.prunable())
        .cloned()
        .collect()
}

/// Geometry of a layout: rows per row group and page, and metadata bytes per row group.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    /// Rows per row group.
    pub row_group_rows: u64,
    /// Rows per data page.
    pub page_rows: u64,
}

impl Geometry {
    /// The sizes `spec` asks the writer for (a candidate's geometry).
    pub fn of_spec(spec: &LayoutSpec) -> Self {
        Self {
            row_group_rows: spec.effective_row_group_rows() as u64,
            page_rows: spec.effective_page_rows() as u64,
        }
    }

    /// A written layout's geometry: its row groups as the footers measure them, its pages
    /// as its `spec` asked.
    pub fn as_written(stats: &TableStats, spec: &LayoutSpec) -> Self {
        Self {
            row_group_rows: stats.row_group_rows.max(1),
            page_rows: spec.effective_page_rows() as u64,
        }
    }
}

/// How the sample stands for the table: the sampled fraction, and the layout's row-group
/// and page sizes in sample rows.
#[derive(Debug, Clone, Copy)]
struct Scale {
    /// Sample rows over table rows.
    fraction: f64,
    /// Table rows per row group (the layout's geometry).
    row_group_rows: u64,
    /// Sample rows per row group.
    sample_row_group_rows: usize,
    /// Sample rows per page (at most a row group).
    sample_page_rows: usize,
}

impl Scale {
    /// Scales `geometry` to a sample of `fraction` of the table (at least one row each).
    fn new(fraction: f64, geometry: Geometry) -> Self {
        let scaled = |rows: u64| ((rows as f64 * fraction).round() as usize).max(1);
        let sample_row_group_rows = scaled(geometry.row_group_rows);
        Self {
            fraction,
            row_group_rows: geometry.row_group_rows,
            sample_row_group_rows,
            sample_page_rows: scaled(geometry.page_rows).min(sample_row_group_rows),
        }
    }

    /// The table rows that `sample_rows` sample rows stand for.
    fn full_rows(&self, sample_rows: usize) -> f64 {
        sample_rows as f64 / self.fraction
    }
}

/// Compressed bytes per table row of each column, data pages and dictionary pages apart
/// (data pages are read page by page; a dictionary page whenever its row group is read).
#[derive(Debug, Default)]
struct ColumnRates {
    data: HashMap<String, f64>,
    dictionary: HashMap<String, f64>,
}

impl ColumnRates {
    /// The rates of `stats`, each column scaled by its compression `ratios` (1 when absent).
    fn new(stats: &TableStats, ratios: &HashMap<String, f64>) -> Self {
        let rows_total = stats.rows.max(1) as f64;
        let ratio = |c: &str| ratios.get(c).copied().unwrap_or(1.0);
        let mut rates = Self::default();
        for c in &stats.columns {
            let data = c.compressed_bytes.saturating_sub(c.dictionary_bytes);
            rates.data.insert(
                c.column.clone(),
                data as f64 / rows_total * ratio(&c.column),
            );
            rates.dictionary.insert(
                c.column.clone(),
                c.dictionary_bytes as f64 / rows_total * ratio(&c.column),
            );
        }
        rates
    }
}

/// The sum of `rates` over `columns` (columns without a rate count nothing).
fn sum_rates<'c>(rates: &HashMap<String, f64>, columns: impl Iterator<Item = &'c String>) -> f64 {
    columns.filter_map(|c| rates.get(c.as_str())).sum()
}

/// One page of the laid-out sample: its rows and a zone map per filtered column.
#[derive(Debug)]
struct PageZones {
    rows: Vec<usize>,
    zones: HashMap<String, Zone>,
}

/// One row group of the laid-out sample: its pages, and their zones merged.
#[derive(Debug)]
struct RowGroupZones {
    pages: Vec<PageZones>,
    zones: HashMap<String, Zone>,
}

impl RowGroupZones {
    /// A row group of `pages`, its zone per column merged from theirs in page order.
    fn new(pages: Vec<PageZones>) -> Self {
        let mut zones: HashMap<String, Zone> = HashMap::new();
        for page in &pages {
            for (c, z) in &page.zones {
                match zones.get_mut(c) {
                    Some(acc) => acc.merge(z),
                    None => {
                        zones.insert(c.clone(), z.clone());
                    }
                }
            }
        }
        Self { pages, zones }
    }

    /// Sample rows in the row group.
    fn rows(&self) -> usize {
        self.pages.iter().map(|p| p.rows.len()).sum()
    }

    /// Sample rows of the row group that match the query.
    fn hits(&self, matched: &[bool]) -> usize {
        self.pages
            .iter()
            .flat_map(|p| &p.rows)
            .filter(|r| matched[**r])
            .count()
    }
}

/// One part (hive partition) of the laid-out sample.
#[derive(Debug)]
struct PartZones {
    /// Partition values, one per partition column.
    values: Vec<Option<Key>>,
    /// Files the part is written to (0 when the current files are kept).
    files: f64,
    /// Table row groups each sample row group stands for.
    row_group_weight: f64,
    row_groups: Vec<RowGroupZones>,
}

/// The sample laid out with zone maps: part -> row group -> page.
#[derive(Debug)]
struct ZoneLayout {
    parts: Vec<PartZones>,
    /// Files of the whole table in this layout.
    files_total: u64,
    /// Row groups of the whole table in this layout.
    row_groups_total: u64,
}

impl ZoneLayout {
    /// Cuts each part into row groups and pages of `scale`'s sample sizes, with zone maps of
    /// `columns`; counts files at `ROWS_PER_FILE` unless `keep_order` keeps the current files.
    fn build(
        sample: &Sample,
        parts: &[Part],
        scale: &Scale,
        keep_order: bool,
        columns: &BTreeSet<String>,
    ) -> Self {
        let mut layout = Self {
            parts: Vec::new(),
            files_total: 0,
            row_groups_total: 0,
        };
        for part in parts {
            let full_rows = scale.full_rows(part.rows.len());
            let full_rgs = (full_rows / scale.row_group_rows as f64).ceil().max(1.0);
            let files = if keep_order {
                0.0
            } else {
                (full_rows / ROWS_PER_FILE as f64).ceil().max(1.0)
            };
            layout.files_total += files as u64;
            layout.row_groups_total += full_rgs as u64;
            let row_groups: Vec<RowGroupZones> = part
                .rows
                .chunks(scale.sample_row_group_rows)
                .map(|rg| {
                    RowGroupZones::new(
                        rg.chunks(scale.sample_page_rows)
                            .map(|page| PageZones {
                                rows: page.to_vec(),
                                zones: columns
                                    .iter()
                                    .filter_map(|c| {
                                        Some((c.clone(), Zone::of(sample.keys(c)?, page)))
                                    })
                                    .collect(),
                            })
                            .collect(),
                    )
                })
                .collect();
            layout.parts.push(PartZones {
                values: part.values.clone(),
                files,
                // Each sample row group stands for full_rgs / row_groups.len() real ones.
                row_group_weight: full_rgs / row_groups.len().max(1) as f64,
                row_groups,
            });
        }
        layout
    }
}

/// Whether every filter may match in `zones` (a column without a zone cannot prune).
fn zones_may_match(zones: &HashMap<String, Zone>, filters: &[Predicate]) -> bool {
    filters.iter().all(|p| {
        zones
            .get(p.column.as_str())
            .is_none_or(|z| z.may_match(&p.kind))
    })
}

/// Whether a hive partition with `values` (of `columns`) survives the filters on them.
fn part_survives(columns: &[String], values: &[Option<Key>], filters: &[Predicate]) -> bool {
    columns.iter().zip(values).all(|(c, v)| {
        filters
            .iter()
            .filter(|p| &p.column == c)
            .all(|p| row_matches(v, &p.kind))
    })
}

/// Columns the Parquet reader fetches together, and the sample rows still selected when it
/// does. With filter pushdown (and `reorder_filters`) DataFusion evaluates the filter
/// conjuncts one column at a time, the column with the fewest compressed bytes first, and
/// fetches each next column only on the pages holding rows the earlier ones kept; the
/// columns it does not filter on come last, on the pages holding rows every filter kept. A
/// column fetched once is not fetched again.
struct Stage<'q> {
    /// Data bytes per row of the stage's columns.
    data: f64,
    /// Dictionary bytes per row of the stage's columns (read with any page of the row group).
    dictionary: f64,
    /// Columns in the stage (one page each per page read).
    columns: usize,
    /// Sample rows still selected; `None` when every row of a surviving page is.
    selected: Option<Cow<'q, [bool]>>,
    /// How the selected rows spread over the layout's pages.
    dispersion: Dispersion,
}

impl Stage<'_> {
    /// The share of `page` the stage reads: all of it when a selected sample row is on it
    /// (or every row is selected), else the chance that its rows not sampled hold one.
    fn read_share(&self, page: &PageZones, scale: &Scale) -> f64 {
        let Some(selected) = &self.selected else {
            return 1.0;
        };
        if page.rows.iter().any(|r| selected[*r]) {
            return 1.0;
        }
        let unsampled = scale.full_rows(page.rows.len()) - page.rows.len() as f64;
        self.dispersion.unseen_match(page.rows.len(), unsampled)
    }
}

/// One query as the scan sees it: its prunable filters, its matches on the sample, and the
/// stages in which the reader fetches the columns it reads outside the partition directories.
struct QueryScan<'q> {
    filters: Vec<Predicate>,
    matched: &'q QueryMatch,
    /// The fetch stages, in the reader's order.
    stages: Vec<Stage<'q>>,
    /// Whether a bloom filter can answer one of its equality or IN filters.
    uses_bloom: bool,
}

/// What `QueryScan::new` needs of the workload for one query.
struct QueryInput<'q> {
    usage: &'q TableUsage,
    matched: &'q QueryMatch,
    /// Sample rows each filter column's prunable predicates keep.
    column_matches: &'q BTreeMap<String, Vec<bool>>,
}

impl<'q> QueryScan<'q> {
    /// The scan of one query on `layout`, laid out as `spec` asks (its partition columns live
    /// in directory names; its bloom filters answer lookups).
    fn new(
        input: QueryInput<'q>,
        sample: &Sample,
        distinct: &mut HashMap<String, Option<u64>>,
        rates: &ColumnRates,
        spec: &LayoutSpec,
        layout: &ZoneLayout,
    ) -> Self {
        let (partition_by, bloom_columns) = (&spec.partition_by, &spec.bloom_filter_columns);
        let filters = prunable(&input.usage.filters);
        let read_cols: Vec<String> = input
            .usage
            .columns_read()
            .into_iter()
            .filter(|c| !partition_by.contains(c))
            .collect();
        let uses_bloom = filters.iter().any(|p| {
            bloom_columns.contains(&p.column)
                && matches!(p.kind, PredicateKind::Eq { .. } | PredicateKind::In { .. })
        });
        let stages = fetch_stages(
            &input,
            &read_cols,
            partition_by,
            sample,
            distinct,
            rates,
            layout,
        );
        Self {
            filters,
            matched: input.matched,
            stages,
            uses_bloom,
        }
    }

    /// The share of a surviving row group that is read: a bloom filter drops row groups that
    /// hold none of the looked-up values, but for false positives and unseen matches.
    fn bloom_keep(&self, rg: &RowGroupZones, scale: &Scale) -> f64 {
        if self.uses_bloom && rg.hits(&self.matched.rows) == 0 {
            (p_any(self.matched.rate, scale.full_rows(rg.rows())) + BLOOM_FPP).min(1.0)
        } else {
            1.0
        }
    }
}

/// The reader's fetch stages for the columns `read_cols` of one query: each filter column in
/// turn, fewest bytes per row first (DataFusion orders conjuncts by their columns'
/// compressed size), selected by the partition filters and the columns before it; then the
/// other columns, selected by every filter.
fn fetch_stages<'q>(
    input: &QueryInput<'q>,
    read_cols: &[String],
    partition_by: &[String],
    sample: &Sample,
    distinct: &mut HashMap<String, Option<u64>>,
    rates: &ColumnRates,
    layout: &ZoneLayout,
) -> Vec<Stage<'q>> {
    let rate_of = |c: &str| {
        rates.data.get(c).copied().unwrap_or(0.0) + rates.dictionary.get(c).copied().unwrap_or(0.0)
    };
    let filter_cols: BTreeSet<&str> = input
        .usage
        .filters
        .iter()
        .map(|p| p.column.as_str())
        .collect();
    let mut ordered: Vec<&String> = read_cols
        .iter()
        .filter(|c| filter_cols.contains(c.as_str()))
        .collect();
    ordered.sort_by(|a, b| rate_of(a).total_cmp(&rate_of(b)).then(a.cmp(b)));
    let stage = |columns: &[&String], selected: Option<Cow<'q, [bool]>>, rate: f64| {
        let dispersion = selected
            .as_deref()
            .map_or(Dispersion { rate, gamma: None }, |rows| {
                page_dispersion(layout, rows, rate)
            });
        Stage {
            data: sum_rates(&rates.data, columns.iter().copied()),
            dictionary: sum_rates(&rates.dictionary, columns.iter().copied()),
            columns: columns.len(),
            selected,
            dispersion,
        }
    };
    // Rows the partition filters keep are all the rows of the surviving parts.
    let mut selection = Selection::default();
    for c in partition_by {
        selection.narrow(input, c);
    }
    let mut narrowed_by_read_column = false;
    let mut stages = Vec::with_capacity(ordered.len() + 1);
    for c in &ordered {
        let this = match (&selection.rows, narrowed_by_read_column) {
            (Some(rows), true) => {
                let rate = match_rate(sample, rows, &selection.applied, distinct);
                stage(&[*c], Some(Cow::Owned(rows.clone())), rate)
            }
            _ => stage(&[*c], None, 1.0),
        };
        stages.push(this);
        narrowed_by_read_column |= selection.narrow(input, c);
    }
    let others: Vec<&String> = read_cols
        .iter()
        .filter(|c| !filter_cols.contains(c.as_str()))
        .collect();
    if !others.is_empty() {
        let selected = input
            .usage
            .filters
            .iter()
            .any(|p| p.kind.prunable())
            .then_some(Cow::Borrowed(input.matched.rows.as_slice()));
        stages.push(stage(&others, selected, input.matched.rate));
    }
    stages
}

/// The sample rows still selected as the reader applies a query's filters column by column,
/// and the prunable predicates applied so far.
#[derive(Default)]
struct Selection {
    /// `None` until a column with prunable predicates is applied.
    rows: Option<Vec<bool>>,
    applied: Vec<Predicate>,
}

impl Selection {
    /// Applies the prunable predicates `input` has on `column`; false when it has none.
    fn narrow(&mut self, input: &QueryInput<'_>, column: &str) -> bool {
        let Some(rows) = input.column_matches.get(column) else {
            return false;
        };
        let predicates = input.usage.filters.iter();
        let on_column = predicates.filter(|p| p.column == column && p.kind.prunable());
        self.applied.extend(on_column.cloned());
        match &mut self.rows {
            Some(selected) => selected.iter_mut().zip(rows).for_each(|(s, r)| *s &= *r),
            None => self.rows = Some(rows.clone()),
        }
        true
    }
}

/// How the sample rows `rows` (matching at `rate` over the whole layout) spread over the
/// pages of `layout`.
fn page_dispersion(layout: &ZoneLayout, rows: &[bool], rate: f64) -> Dispersion {
    let pages: Vec<(usize, usize)> = layout
        .parts
        .iter()
        .flat_map(|part| &part.row_groups)
        .flat_map(|rg| &rg.pages)
        .map(|page| {
            let hits = page.rows.iter().filter(|r| rows[**r]).count();
            (page.rows.len(), hits)
        })
        .collect();
    Dispersion::fit(&pages, rate)
}

/// What one run of one query reads on a layout (before its weight).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Scan {
    bytes: f64,
    metadata_bytes: f64,
    files: f64,
    row_groups: f64,
    pages: f64,
}

/// Counts what `query` reads on `layout`: the parts its partition filters keep, and in each
/// their files, metadata and surviving row groups.
fn scan_query(
    layout: &ZoneLayout,
    partition_by: &[String],
    meta_per_rg: f64,
    query: &QueryScan<'_>,
    scale: &Scale,
) -> Scan {
    let mut scan = Scan::default();
    for part in &layout.parts {
        if !part_survives(partition_by, &part.values, &query.filters) {
            continue;
        }
        scan.files += part.files;
        scan.metadata_bytes += meta_per_rg * part.row_group_weight * part.row_groups.len() as f64;
        for rg in &part.row_groups {
            scan_row_group(&mut scan, rg, part.row_group_weight, query, scale);
        }
    }
    scan
}

/// Adds to `scan` what `query` reads of one sample row group standing for `weight` real
/// ones: nothing when its zone maps prune it, else on each surviving page what each fetch
/// stage reads there, and the dictionaries of the stages that read any page.
fn scan_row_group(
    scan: &mut Scan,
    rg: &RowGroupZones,
    weight: f64,
    query: &QueryScan<'_>,
    scale: &Scale,
) {
    if !zones_may_match(&rg.zones, &query.filters) {
        return;
    }
    let keep = query.bloom_keep(rg, scale);
    scan.row_groups += weight * keep;
    let mut dictionary_share = vec![0.0_f64; query.stages.len()];
    for page in &rg.pages {
        if !zones_may_match(&page.zones, &query.filters) {
            continue;
        }
        let full_rows = scale.full_rows(page.rows.len());
        for (stage, dictionary) in query.stages.iter().zip(dictionary_share.iter_mut()) {
            let share = stage.read_share(page, scale);
            scan.bytes += keep * full_rows * stage.data * share;
            scan.pages += keep * weight * stage.columns as f64 * share;
            *dictionary = dictionary.max(share);
        }
    }
    for (stage, share) in query.stages.iter().zip(dictionary_share) {
        scan.bytes += keep * scale.full_rows(rg.rows()) * stage.dictionary * share;
    }
}

impl Estimate {
    /// Adds `scan`, run `weight` times by a query of `cluster_id`.
    ///
    /// DataFusion's bytes_scanned counts column data only (footers and page indexes are read
    /// through the metadata path), so metadata is priced in `cost`, not in bytes.
    fn add_query(&mut self, cluster_id: &str, weight: f64, scan: &Scan) {
        let total = scan.bytes * weight;
        self.bytes_scanned += total;
        self.metadata_bytes += scan.metadata_bytes * weight;
        self.files_read += scan.files * weight;
        self.row_groups_read += scan.row_groups * weight;
        self.pages_read += scan.pages * weight;
        *self
            .cluster_bytes
            .entry(cluster_id.to_string())
            .or_default() += total;
    }

    /// Bytes plus metadata plus the fixed `prices` of the files, row groups and pages read.
    pub fn price(&self, prices: &Prices) -> f64 {
        self.bytes_scanned
            + self.metadata_bytes
            + self.files_read * prices.file
            + self.row_groups_read * prices.row_group
            + self.pages_read * prices.page
    }
}

/// Predicts the workload's cost on `spec` (laid out from the current order when `keep_order`).
pub fn estimate(
    sample: &Sample,
    stats: &TableStats,
    spec: &LayoutSpec,
    keep_order: bool,
    geometry: Geometry,
    workload: &Workload,
) -> Result<Estimate, ProposeError> {
    let parts = arrange(sample, spec, keep_order)?;
    let scale = Scale::new(sample.fraction(), geometry);
    // A new order compresses differently: scale each column's size by how much better (or
    // worse) the sample compresses in the candidate's order than in its current order.
    let ratios = if keep_order {
        HashMap::new()
    } else {
        compression_ratios(sample, &parts, geometry.page_rows)?
    };
    let rates = ColumnRates::new(stats, &ratios);
    let layout = ZoneLayout::build(sample, &parts, &scale, keep_order, &workload.filter_columns);
    let meta_per_rg = if stats.row_groups > 0 {
        stats.metadata_bytes as f64 / stats.row_groups as f64
    } else {
        0.0
    };
    let mut est = Estimate {
        // Kept files are counted from the table as it is.
        files_total: if keep_order {
            stats.files
        } else {
            layout.files_total
        },
        row_groups_total: if keep_order {
            stats.row_groups
        } else {
            layout.row_groups_total
        },
        ..Default::default()
    };
    let mut distinct = workload.distinct.borrow_mut();
    let per_query = workload.matches.iter().zip(&workload.column_matches);
    for (q, (matched, column_matches)) in workload.queries.iter().zip(per_query) {
        let input = QueryInput {
            usage: &q.usage,
            matched,
            column_matches,
        };
        let query = QueryScan::new(input, sample, &mut distinct, &rates, spec, &layout);
        let scan = scan_query(&layout, &spec.partition_by, meta_per_rg, &query, &scale);
        est.add_query(&q.cluster_id, q.weight, &scan);
    }
    if keep_order {
        // The current files are all opened unless every row group is pruned; count them.
        est.files_read =
            workload.queries.iter().map(|q| q.weight).sum::<f64>() * stats.files as f64;
        est.size_bytes = stats.total_bytes as f64;
    } else {
        est.size_bytes = predicted_size(stats, &rates, &spec.partition_by, est.row_groups_total);
    }
    est.cost = est.price(&workload.prices);
    Ok(est)
}

/// The size on disk of the table written at `rates` in `row_groups` row groups: column data
/// and dictionaries (partition columns left out), plus the current footer bytes per row group.
fn predicted_size(
    stats: &TableStats,
    rates: &ColumnRates,
    partition_by: &[String],
    row_groups: u64,
) -> f64 {
    let rows = stats.rows as f64;
    let stored = stats
        .columns
        .iter()
        .map(|c| &c.column)
        .filter(|c| !partition_by.contains(c));
    let per_row: f64 = stored
        .map(|c| rates.data.get(c).unwrap_or(&0.0) + rates.dictionary.get(c).unwrap_or(&0.0))
        .sum();
    let meta_per_rg = stats.metadata_bytes as f64 / stats.row_groups.max(1) as f64;
    per_row * rows + meta_per_rg * row_groups as f64
}

#[cfg(test)]
mod tests {
    //! A 30-row table held whole in the sample (fraction 1): `x` = 0..30 in order, `k` = "a"
    //! for the first 15 rows and "b" after, `c` = 7x mod 30 (every value once, scattered).
    //! With 10-row row groups and 5-row pages it is three row groups of two pages each, and
    //! `x` costs 10 bytes a row, `c` 3, `k` 1 plus 1 of dictionary.
    use super::*;
    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use dbopt_core::plan_summary::{Bound, ColumnStats, Lit, ScanUsage};
    use std::sync::Arc;

    const GEOMETRY: Geometry = Geometry {
        row_group_rows: 10,
        page_rows: 5,
    };

    fn sample() -> Sample {
        sample_of(30)
    }

    /// The 30-row fixture as a sample of a table of `table_rows` rows.
    fn sample_of(table_rows: u64) -> Sample {
        let x: Vec<i64> = (0..30).collect();
        let k: Vec<&str> = (0..30).map(|i| if i < 15 { "a" } else { "b" }).collect();
        let c: Vec<i64> = (0..30).map(|i| i * 7 % 30).collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Int64, false),
            Field::new("k", DataType::Utf8, false),
            Field::new("c", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(x)),
                Arc::new(StringArray::from(k)),
                Arc::new(Int64Array::from(c)),
            ],
        )
        .unwrap();
        Sample::new(&[batch], table_rows).unwrap()
    }

    fn stats() -> TableStats {
        let col = |column: &str, compressed_bytes: u64, dictionary_bytes: u64| ColumnStats {
            column: column.into(),
            data_type: String::new(),
            compressed_bytes,
            dictionary_bytes,
            null_count: 0,
            distinct_estimate: 0,
            min: None,
            max: None,
            clustering: 0.0,
        };
        TableStats {
            rows: 30,
            files: 1,
            row_groups: 3,
            total_bytes: 480,
            metadata_bytes: 300,
            row_group_rows: 10,
            page_rows: 5,
            columns: vec![col("x", 300, 0), col("k", 60, 30), col("c", 90, 0)],
        }
    }

    fn query(filters: Vec<Predicate>, projected: &[&str]) -> WhatIfQuery {
        WhatIfQuery {
            cluster_id: "q".into(),
            usage: TableUsage {
                table: "t".into(),
                filters,
                projected: projected
                    .iter()
                    .map(std::string::ToString::to_string)
                    .collect(),
                ..Default::default()
            },
            weight: 1.0,
            join_keys: Vec::new(),
        }
    }

    /// `low <= column < high`.
    fn range(column: &str, low: i64, high: i64) -> Predicate {
        Predicate {
            column: column.into(),
            kind: PredicateKind::Range {
                low: Some(Bound {
                    value: Lit::Int(low),
                    inclusive: true,
                }),
                high: Some(Bound {
                    value: Lit::Int(high),
                    inclusive: false,
                }),
            },
        }
    }

    fn eq(column: &str, value: Lit) -> Predicate {
        Predicate {
            column: column.into(),
            kind: PredicateKind::Eq { value },
        }
    }

    fn run(spec: &LayoutSpec, keep_order: bool, q: WhatIfQuery) -> Estimate {
        let sample = sample();
        let queries = [q];
        let workload = Workload::new(&sample, &queries);
        estimate(&sample, &stats(), spec, keep_order, GEOMETRY, &workload).unwrap()
    }

    #[test]
    fn scale_sizes_row_groups_and_pages_down_to_the_sample() {
        let s = Scale::new(
            0.1,
            Geometry {
                row_group_rows: 100,
                page_rows: 30,
            },
        );
        assert_eq!((s.sample_row_group_rows, s.sample_page_rows), (10, 3));
        assert_eq!(s.full_rows(5), 50.0);
        let wide_pages = Scale::new(
            0.1,
            Geometry {
                row_group_rows: 100,
                page_rows: 500,
            },
        );
        assert_eq!(
            wide_pages.sample_page_rows, 10,
            "a page is at most a row group"
        );
        let tiny = Scale::new(0.001, GEOMETRY);
        assert_eq!((tiny.sample_row_group_rows, tiny.sample_page_rows), (1, 1));
    }

    #[test]
    fn column_rates_split_data_and_dictionary_bytes_per_row() {
        let ratios = HashMap::from([("x".to_string(), 0.5)]);
        let rates = ColumnRates::new(&stats(), &ratios);
        assert_eq!(rates.data["x"], 5.0, "300 bytes over 30 rows, halved");
        assert_eq!((rates.data["k"], rates.dictionary["k"]), (1.0, 1.0));
        let read = ["x".to_string(), "c".to_string(), "nope".to_string()];
        assert_eq!(sum_rates(&rates.data, read.iter()), 8.0);
    }

    #[test]
    fn the_predicted_size_drops_partition_columns_and_prices_footers_per_row_group() {
        let ratios = HashMap::from([("x".to_string(), 0.5)]);
        let rates = ColumnRates::new(&stats(), &ratios);
        let partitioned = vec!["k".to_string()];
        // x halves to 5 bytes a row, c stays at 3, k lives in directory names: 8 x 30 rows,
        // plus 100 footer bytes per row group (300 over 3) for 4 row groups.
        assert_eq!(
            predicted_size(&stats(), &rates, &partitioned, 4),
            240.0 + 400.0
        );
        // Unpartitioned, k's data and dictionary (1 + 1 a row) count too.
        assert_eq!(predicted_size(&stats(), &rates, &[], 3), 300.0 + 300.0);
        let kept = run(&LayoutSpec::default(), true, query(vec![], &["x"]));
        assert_eq!(kept.size_bytes, 480.0, "a kept layout is its measured size");
    }

    #[test]
    fn a_lookup_the_sample_never_saw_matches_its_share_of_the_distinct_values() {
        // 30 sample rows of a 300-row table: c's 30 values are each seen once, so GEE
        // estimates sqrt(300 / 30) * 30 = 94.9, rounded to 95 distinct values; one is 1/95.
        let sample = sample_of(300);
        let mut cache = HashMap::new();
        let lookup = unseen_rate(&sample, &[eq("c", Lit::Int(1000))], &mut cache);
        assert!((lookup - 1.0 / 95.0).abs() < 1e-12, "{lookup}");
        assert!(
            cache.contains_key("c"),
            "the estimate is computed once per column"
        );
        // Three IN values, three times the share; a range keeps half a row of the table.
        let values = vec![Lit::Int(1000), Lit::Int(1001), Lit::Int(1002)];
        let three = PredicateKind::In { values };
        let p = Predicate {
            column: "c".into(),
            kind: three,
        };
        assert!((unseen_rate(&sample, &[p], &mut cache) - 3.0 * lookup).abs() < 1e-12);
        assert_eq!(
            unseen_rate(&sample, &[range("x", 100, 200)], &mut cache),
            0.5 / 300.0
        );
        // k has two values: one of them would be half the rows, more than the sample allows
        // for a value it never saw (at most one row in its 30).
        let rare = unseen_rate(&sample, &[eq("k", Lit::Str("z".into()))], &mut cache);
        assert_eq!(rare, 1.0 / 30.0);
    }

    #[test]
    fn hits_per_page_tell_scattered_from_clustered_matches() {
        // Poisson-like hits (variance 0.7 under the mean 0.8): scattered, the global rate.
        let scattered = Dispersion::fit(&[(100, 1), (100, 0), (100, 2), (100, 1), (100, 0)], 0.008);
        assert_eq!(scattered.gamma, None);
        assert_eq!(scattered.unseen_match(100, 400.0), p_any(0.008, 400.0));
        // One hit in six pages: variance equals the mean (1/6) but for rounding; still Poisson.
        let one = [(5, 0), (5, 0), (5, 1), (5, 0), (5, 0), (5, 0)];
        assert_eq!(Dispersion::fit(&one, 1.0 / 30.0).gamma, None);
        // All 50 hits in one page of four: mean 12.5, variance 625, so scale
        // (625 - 12.5) / (100 * 12.5) = 0.49 and shape 12.5 / (100 * 0.49).
        let clustered = Dispersion::fit(&[(100, 50), (100, 0), (100, 0), (100, 0)], 0.125);
        let (shape, scale) = clustered.gamma.expect("overdispersed");
        assert!((scale - 0.49).abs() < 1e-12 && (shape - 12.5 / 49.0).abs() < 1e-12);
        // A page without sample hits: Gamma posterior scale 0.49 / (1 + 100 * 0.49).
        let expected = 1.0 - (1.0 + 400.0 * 0.49 / 50.0_f64).powf(-12.5 / 49.0);
        assert!((clustered.unseen_match(100, 400.0) - expected).abs() < 1e-12);
        assert!(
            expected < 0.35,
            "a run of matches would have been sampled: {expected}"
        );
        assert!(
            p_any(0.125, 400.0) > 0.999,
            "the scattered model would read the page"
        );
        // Nothing unsampled (the sample is the table), nothing unseen.
        assert_eq!(clustered.unseen_match(100, 0.0), 0.0);
        assert_eq!(
            Dispersion::fit(&[(100, 3)], 0.03).gamma,
            None,
            "one page fits nothing"
        );
    }

    #[test]
    fn the_zone_layout_is_three_row_groups_of_two_pages() {
        let sample = sample();
        let parts = arrange(&sample, &LayoutSpec::default(), true).unwrap();
        let columns = BTreeSet::from(["x".to_string(), "missing".to_string()]);
        let layout =
            ZoneLayout::build(&sample, &parts, &Scale::new(1.0, GEOMETRY), false, &columns);
        assert_eq!((layout.files_total, layout.row_groups_total), (1, 3));
        let [part] = layout.parts.as_slice() else {
            panic!("one part: {layout:?}")
        };
        assert_eq!((part.files, part.row_group_weight), (1.0, 1.0));
        let bounds: Vec<(Option<Key>, Option<Key>)> = part
            .row_groups
            .iter()
            .map(|rg| (rg.zones["x"].min.clone(), rg.zones["x"].max.clone()))
            .collect();
        let num = |v: f64| Some(Key::Num(v));
        assert_eq!(
            bounds,
            vec![
                (num(0.0), num(9.0)),
                (num(10.0), num(19.0)),
                (num(20.0), num(29.0))
            ]
        );
        let second = &part.row_groups[1];
        assert_eq!(second.pages.len(), 2);
        assert_eq!(second.pages[1].rows, vec![15, 16, 17, 18, 19]);
        assert_eq!(second.pages[1].zones["x"].min, num(15.0));
        assert!(!second.zones.contains_key("missing"), "no keys, no zone");
    }

    #[test]
    fn a_range_keeps_exactly_one_row_group_and_one_page() {
        let e = run(
            &LayoutSpec::default(),
            true,
            query(vec![range("x", 12, 15)], &["x", "c"]),
        );
        assert_eq!(e.row_groups_read, 1.0);
        assert_eq!(
            e.pages_read, 2.0,
            "one page of each of the two columns read"
        );
        // Rows 10..15 of x (10 bytes) and c (3 bytes); no dictionaries.
        assert_eq!(e.bytes_scanned, 5.0 * (10.0 + 3.0));
        // The table's one file is opened; its footer covers all three row groups.
        assert_eq!((e.files_read, e.metadata_bytes), (1.0, 300.0));
        assert_eq!((e.files_total, e.row_groups_total), (1, 3));
        assert_eq!(
            e.cost,
            65.0 + 300.0 + FILE_PRICE_BYTES + ROW_GROUP_PRICE_BYTES + 2.0 * PAGE_PRICE_BYTES
        );
        assert_eq!(e.cluster_bytes["q"], 65.0);
    }

    #[test]
    fn each_filter_column_is_fetched_where_the_cheaper_ones_kept_rows() {
        // c (3 bytes a row) is cheaper than x (10), so the reader evaluates c in [1, 2) first.
        // Its zone maps keep pages 0 (rows 0..5, c from 0 to 28) and 2 (rows 10..15, c from 1
        // to 24); only row 13 holds c = 1. x is then fetched on page 2 alone, and k (not
        // filtered) where both filters kept a row: page 2 again, with k's dictionary of
        // row group 1.
        let e = run(
            &LayoutSpec::default(),
            true,
            query(vec![range("c", 1, 2), range("x", 0, 100)], &["x", "k"]),
        );
        assert_eq!(e.row_groups_read, 2.0);
        assert_eq!(e.pages_read, 2.0 + 1.0 + 1.0, "c twice, x and k once");
        assert_eq!(
            e.bytes_scanned,
            10.0 * 3.0 + 5.0 * 10.0 + 5.0 * 1.0 + 10.0 * 1.0
        );
    }

    #[test]
    fn an_unsampled_page_is_fetched_at_the_chance_it_holds_a_selected_row() {
        // The same query on a table ten times the sample: page 0 holds no sample row with
        // c = 1, but its 45 unsampled rows may. c's matches are one row in six pages, no
        // more variable than Poisson, so x and k are read there at p_any(1/30, 45).
        let sample = sample_of(300);
        let queries = [query(
            vec![range("c", 1, 2), range("x", 0, 100)],
            &["x", "k"],
        )];
        let workload = Workload::new(&sample, &queries);
        let mut stats = stats();
        stats.rows = 300;
        for c in &mut stats.columns {
            c.compressed_bytes *= 10;
            c.dictionary_bytes *= 10;
        }
        let geometry = Geometry {
            row_group_rows: 100,
            page_rows: 50,
        };
        let e = estimate(
            &sample,
            &stats,
            &LayoutSpec::default(),
            true,
            geometry,
            &workload,
        )
        .unwrap();
        let unseen = p_any(1.0 / 30.0, 45.0);
        let expected = 100.0 * 3.0 + (50.0 + 50.0 * unseen) * (10.0 + 1.0) + 100.0 * (1.0 + unseen);
        assert!(
            (e.bytes_scanned - expected).abs() < 1e-9,
            "{} against {expected}",
            e.bytes_scanned
        );
    }

    #[test]
    fn a_table_scanned_twice_is_priced_once_per_scan() {
        // A self-join: one scan keeps rows 10..15 of x and c (65 bytes, as above), the other
        // reads x and k whole (360 bytes, as below). The merged usage (both filters, both
        // projections) alone would price one pruned scan.
        let mut q = query(vec![range("x", 12, 15)], &["x", "c", "k"]);
        q.usage.scans = vec![
            ScanUsage {
                filters: vec![range("x", 12, 15)],
                projected: vec!["x".into(), "c".into()],
            },
            ScanUsage {
                filters: vec![],
                projected: vec!["x".into(), "k".into()],
            },
        ];
        let e = run(&LayoutSpec::default(), true, q);
        assert_eq!(e.bytes_scanned, 65.0 + 360.0);
        assert_eq!(e.cluster_bytes["q"], 425.0);
        assert_eq!((e.row_groups_read, e.files_read), (1.0 + 3.0, 2.0));
    }

    #[test]
    fn keys_a_join_carries_prune_by_their_bounds_and_select_their_rows() {
        // A build side with c in {1, 2} (c = 7i mod 30: rows 13 and 26). Its bounds [1, 2]
        // keep pages 0 (c from 0 to 28), 2 (from 1) and 5 (from 2), where c is read (15 rows,
        // 3 bytes each); x is read only where a member is, pages 2 and 5 (10 rows, 10 bytes).
        let mut q = query(vec![], &["x", "c"]);
        q.join_keys = vec![JoinKeys {
            column: "c".into(),
            keys: Arc::new(Int64Array::from(vec![2, 1, 2])),
        }];
        let e = run(&LayoutSpec::default(), true, q.clone());
        assert_eq!(e.bytes_scanned, 15.0 * 3.0 + 10.0 * 10.0);
        assert_eq!((e.row_groups_read, e.pages_read), (3.0, 3.0 + 2.0));
        // The same query without the join reads both columns whole.
        q.join_keys.clear();
        assert_eq!(
            run(&LayoutSpec::default(), true, q.clone()).bytes_scanned,
            390.0
        );
        // An empty build side lets nothing through.
        q.join_keys = vec![JoinKeys {
            column: "c".into(),
            keys: Arc::new(Int64Array::from(Vec::<i64>::new())),
        }];
        let e = run(&LayoutSpec::default(), true, q);
        assert_eq!((e.bytes_scanned, e.row_groups_read), (0.0, 0.0));
    }

    #[test]
    fn without_filters_every_page_is_read() {
        let e = run(&LayoutSpec::default(), true, query(vec![], &["x", "k"]));
        assert_eq!((e.row_groups_read, e.pages_read), (3.0, 12.0));
        // x and k data on every row, plus k's dictionary in each row group.
        assert_eq!(e.bytes_scanned, 30.0 * (10.0 + 1.0) + 30.0 * 1.0);
    }

    #[test]
    fn a_partition_filter_skips_the_other_part_and_its_column() {
        let spec = LayoutSpec {
            partition_by: vec!["k".into()],
            ..Default::default()
        };
        assert!(part_survives(
            &spec.partition_by,
            &[Some(Key::Str("a".into()))],
            &[eq("k", Lit::Str("a".into())), range("x", 0, 5)]
        ));
        assert!(!part_survives(
            &spec.partition_by,
            &[Some(Key::Str("b".into()))],
            &[eq("k", Lit::Str("a".into()))]
        ));
        let e = run(
            &spec,
            false,
            query(vec![eq("k", Lit::Str("a".into()))], &["x"]),
        );
        // Part "a" is rows 0..15: a file, row groups of 10 and 5 rows, pages 5+5 and 5; k
        // lives in the directory name and is not read.
        assert_eq!((e.files_total, e.row_groups_total), (2, 4));
        assert_eq!(
            (e.files_read, e.row_groups_read, e.pages_read),
            (1.0, 2.0, 3.0)
        );
        assert_eq!(e.bytes_scanned, 15.0 * 10.0);
        assert_eq!(e.metadata_bytes, 2.0 * 100.0);
    }

    #[test]
    fn a_bloom_filter_drops_row_groups_without_the_value() {
        // c = 12 only on row 6 (row group 0), but every row group's c spans 12.
        let q = || query(vec![eq("c", Lit::Int(12))], &["c"]);
        let plain = run(&LayoutSpec::default(), true, q());
        assert_eq!(plain.row_groups_read, 3.0);
        let bloom = LayoutSpec {
            bloom_filter_columns: vec!["c".into()],
            ..Default::default()
        };
        let with_bloom = run(&bloom, true, q());
        // The two row groups without a sample hit stay with the chance that their ten rows
        // hold one at the sample's match rate (1 in 30), plus the false-positive rate.
        let stays = 1.0 - (29.0_f64 / 30.0).powf(10.0) + BLOOM_FPP;
        assert!(
            (with_bloom.row_groups_read - (1.0 + 2.0 * stays)).abs() < 1e-12,
            "{}",
            with_bloom.row_groups_read
        );
        assert!(with_bloom.bytes_scanned < plain.bytes_scanned);
    }

    #[test]
    fn weights_multiply_and_kept_files_are_all_opened() {
        let mut q = query(vec![range("x", 12, 15)], &["x"]);
        q.weight = 3.0;
        let kept = run(&LayoutSpec::default(), true, q.clone());
        assert_eq!((kept.bytes_scanned, kept.row_groups_read), (150.0, 3.0));
        assert_eq!(kept.files_read, 3.0);
        let sorted = LayoutSpec {
            sort_by: vec![dbopt_core::SortKey {
                column: "x".into(),
                descending: false,
            }],
            ..Default::default()
        };
        let rewritten = run(&sorted, false, q);
        assert_eq!(
            rewritten.files_read, 3.0,
            "one new file, opened three times"
        );
        assert_eq!(rewritten.files_total, 1);
    }
}
