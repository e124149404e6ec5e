//! Filters a join carries into the scan: the keys of a hash join's build side, which
//! DataFusion pushes into the probe-side scan as a dynamic filter. On the sample they become
//! two things: the keys' bounds, a range predicate that prunes row groups and pages like any
//! other, and the sample rows whose key is a member, which narrow the rows the reader still
//! selects when it fetches the columns after the key column.

use super::{QueryMatch, WhatIfQuery};
use crate::sample::{Key, Sample, keys_of};
use arrow::array::ArrayRef;
use dbopt_core::plan_summary::{Bound, Lit, Predicate, PredicateKind};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};

/// The keys a join's build side carries into one column of the priced table's scan.
#[derive(Debug, Clone)]
pub struct JoinKeys {
    /// The priced table's column the keys filter.
    pub column: String,
    /// The build side's keys (duplicates and nulls allowed; nulls never match).
    pub keys: ArrayRef,
}

impl PartialEq for JoinKeys {
    fn eq(&self, other: &Self) -> bool {
        self.column == other.column && self.keys.to_data() == other.keys.to_data()
    }
}

/// A join-carried filter evaluated on the sample.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct JoinFilter {
    /// The keys' bounds (an empty IN when there are no keys: nothing survives).
    pub bounds: Predicate,
    /// Per sample row: whether its key is one of the keys.
    pub members: Vec<bool>,
}

/// A key in hashable form (numbers by their bits, -0 as 0).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyBits {
    Num(u64),
    Str(String),
}

impl KeyBits {
    fn of(key: &Key) -> Self {
        match key {
            Key::Num(v) => KeyBits::Num(if *v == 0.0 { 0 } else { v.to_bits() }),
            Key::Str(s) => KeyBits::Str(s.clone()),
        }
    }
}

impl JoinFilter {
    /// `join` on `sample`; `None` when the sample lacks the column or the keys' type cannot be
    /// compared (the filter is then not priced).
    pub fn of(sample: &Sample, join: &JoinKeys) -> Option<Self> {
        let column = sample.keys(&join.column)?;
        let keys = keys_of(&join.keys)?;
        let set: HashSet<KeyBits> = keys.iter().flatten().map(KeyBits::of).collect();
        let members = column
            .iter()
            .map(|k| k.as_ref().is_some_and(|k| set.contains(&KeyBits::of(k))))
            .collect();
        let mut low: Option<&Key> = None;
        let mut high: Option<&Key> = None;
        for k in keys.iter().flatten() {
            if low.is_none_or(|l| k.compare(l) == Some(Ordering::Less)) {
                low = Some(k);
            }
            if high.is_none_or(|h| k.compare(h) == Some(Ordering::Greater)) {
                high = Some(k);
            }
        }
        let bound = |k: &Key| {
            Some(Bound {
                value: lit_of(k),
                inclusive: true,
            })
        };
        let kind = match (low, high) {
            (Some(l), Some(h)) => PredicateKind::Range {
                low: bound(l),
                high: bound(h),
            },
            _ => PredicateKind::In { values: Vec::new() },
        };
        Some(Self {
            bounds: Predicate {
                column: join.column.clone(),
                kind,
            },
            members,
        })
    }
}

/// The literal a key compares as (numbers as floats, which compare with every numeric kind).
fn lit_of(key: &Key) -> Lit {
    match key {
        Key::Num(v) => Lit::Float(*v),
        Key::Str(s) => Lit::Str(s.clone()),
    }
}

/// The query's matches narrowed to the rows every join lets through. Its rate is the hit
/// rate; when no sample row is left (a join to a few keys), the rate before the joins times
/// the share of the sample the joins let through (the two taken as independent), at least
/// half a row of the table.
pub(super) fn narrow(sample: &Sample, matched: QueryMatch, joins: &[JoinFilter]) -> QueryMatch {
    if joins.is_empty() {
        return matched;
    }
    let member = |r: usize| joins.iter().all(|j| j.members[r]);
    let rows: Vec<bool> = matched
        .rows
        .iter()
        .enumerate()
        .map(|(r, hit)| *hit && member(r))
        .collect();
    let hits = rows.iter().filter(|h| **h).count();
    let total = rows.len().max(1) as f64;
    let rate = if hits > 0 {
        hits as f64 / total
    } else {
        let members = (0..rows.len()).filter(|r| member(*r)).count() as f64;
        (matched.rate * members / total).max(0.5 / sample.table_rows as f64)
    };
    QueryMatch { rows, rate }
}

/// The join-carried filters of `query` on `sample`; their bounds join the query's filters.
pub(super) fn add_filters(sample: &Sample, query: &mut WhatIfQuery) -> Vec<JoinFilter> {
    let joins: Vec<JoinFilter> = query
        .join_keys
        .iter()
        .filter_map(|j| JoinFilter::of(sample, j))
        .collect();
    query
        .usage
        .filters
        .extend(joins.iter().map(|j| j.bounds.clone()));
    joins
}

/// Each filter column's kept rows (`by_column`) narrowed to the members of the joins on it.
pub(super) fn narrow_columns(
    mut by_column: BTreeMap<String, Vec<bool>>,
    joins: &[JoinFilter],
) -> BTreeMap<String, Vec<bool>> {
    for j in joins {
        if let Some(rows) = by_column.get_mut(&j.bounds.column) {
            rows.iter_mut().zip(&j.members).for_each(|(r, m)| *r &= *m);
        }
    }
    by_column
}
