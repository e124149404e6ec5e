//! Zone maps and predicates: the min/max/null summary of a run of rows, whether a predicate
//! may match inside it (false means the run is pruned), and whether one value matches.

use crate::sample::Key;
use dbopt_core::plan_summary::PredicateKind;
use std::cmp::Ordering;

/// min/max/null zone map of one column over a run of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Smallest non-null value.
    pub min: Option<Key>,
    /// Largest non-null value.
    pub max: Option<Key>,
    /// Null values.
    pub nulls: usize,
    /// All values.
    pub count: usize,
}

impl Zone {
    /// The zone of `keys` at `rows`.
    pub fn of(keys: &[Option<Key>], rows: &[usize]) -> Zone {
        let mut z = Zone {
            min: None,
            max: None,
            nulls: 0,
            count: rows.len(),
        };
        for &r in rows {
            match &keys[r] {
                None => z.nulls += 1,
                Some(k) => {
                    if z.min
                        .as_ref()
                        .is_none_or(|m| k.compare(m) == Some(Ordering::Less))
                    {
                        z.min = Some(k.clone());
                    }
                    if z.max
                        .as_ref()
                        .is_none_or(|m| k.compare(m) == Some(Ordering::Greater))
                    {
                        z.max = Some(k.clone());
                    }
                }
            }
        }
        z
    }

    /// Widens this zone to cover `other` too (a row group's zone from its pages' zones).
    pub(super) fn merge(&mut self, other: &Zone) {
        if let Some(m) = &other.min
            && self
                .min
                .as_ref()
                .is_none_or(|s| m.compare(s) == Some(Ordering::Less))
        {
            self.min = Some(m.clone());
        }
        if let Some(m) = &other.max
            && self
                .max
                .as_ref()
                .is_none_or(|s| m.compare(s) == Some(Ordering::Greater))
        {
            self.max = Some(m.clone());
        }
        self.nulls += other.nulls;
        self.count += other.count;
    }

    /// Whether rows matching `kind` may exist in the zone (false means prunable).
    pub fn may_match(&self, kind: &PredicateKind) -> bool {
        let in_range = |v: &Key| {
            let (Some(lo), Some(hi)) = (&self.min, &self.max) else {
                return false;
            };
            !matches!(v.compare(lo), Some(Ordering::Less))
                && !matches!(v.compare(hi), Some(Ordering::Greater))
        };
        let has_values = self.count > self.nulls;
        match kind {
            PredicateKind::Eq { value } => has_values && in_range(&Key::of_lit(value)),
            PredicateKind::In { values } => {
                has_values && values.iter().any(|v| in_range(&Key::of_lit(v)))
            }
            PredicateKind::Range { low, high } => {
                let (Some(min), Some(max)) = (&self.min, &self.max) else {
                    return false;
                };
                let low_ok =
                    low.as_ref()
                        .is_none_or(|b| match max.compare(&Key::of_lit(&b.value)) {
                            Some(Ordering::Less) => false,
                            Some(Ordering::Equal) => b.inclusive,
                            _ => true,
                        });
                let high_ok =
                    high.as_ref()
                        .is_none_or(|b| match min.compare(&Key::of_lit(&b.value)) {
                            Some(Ordering::Greater) => false,
                            Some(Ordering::Equal) => b.inclusive,
                            _ => true,
                        });
                low_ok && high_ok
            }
            PredicateKind::PrefixLike { prefix } => match (&self.min, &self.max) {
                (Some(Key::Str(min)), Some(Key::Str(max))) => {
                    max.as_str() >= prefix.as_str()
                        && (min.as_str() <= prefix.as_str() || min.starts_with(prefix.as_str()))
                }
                (None, None) => false,
                _ => true,
            },
            PredicateKind::IsNull => self.nulls > 0,
            PredicateKind::IsNotNull => has_values,
            PredicateKind::Other => true,
        }
    }
}

/// Whether one value satisfies `kind` (unknown kinds and incomparable values count as true).
pub fn row_matches(key: &Option<Key>, kind: &PredicateKind) -> bool {
    let cmp = |v: &Key| key.as_ref().and_then(|k| k.compare(v));
    match kind {
        // A value that cannot be compared with the literal (e.g. hive text) is kept.
        PredicateKind::Eq { value } => {
            key.is_some() && cmp(&Key::of_lit(value)).is_none_or(|o| o == Ordering::Equal)
        }
        PredicateKind::In { values } => {
            key.is_some()
                && values
                    .iter()
                    .any(|v| cmp(&Key::of_lit(v)).is_none_or(|o| o == Ordering::Equal))
        }
        PredicateKind::Range { low, high } => {
            if key.is_none() {
                return false;
            }
            let lo = low
                .as_ref()
                .is_none_or(|b| match cmp(&Key::of_lit(&b.value)) {
                    Some(Ordering::Greater) => true,
                    Some(Ordering::Equal) => b.inclusive,
                    Some(Ordering::Less) => false,
                    None => true,
                });
            let hi = high
                .as_ref()
                .is_none_or(|b| match cmp(&Key::of_lit(&b.value)) {
                    Some(Ordering::Less) => true,
                    Some(Ordering::Equal) => b.inclusive,
                    Some(Ordering::Greater) => false,
                    None => true,
                });
            lo && hi
        }
        PredicateKind::PrefixLike { prefix } => match key {
            Some(Key::Str(s)) => s.starts_with(prefix.as_str()),
            Some(_) => true,
            None => false,
        },
        PredicateKind::IsNull => key.is_none(),
        PredicateKind::IsNotNull => key.is_some(),
        PredicateKind::Other => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbopt_core::plan_summary::{Bound, Lit};

    fn num(v: f64) -> Option<Key> {
        Some(Key::Num(v))
    }

    fn range(low: f64, high: f64) -> PredicateKind {
        PredicateKind::Range {
            low: Some(Bound {
                value: Lit::Float(low),
                inclusive: true,
            }),
            high: Some(Bound {
                value: Lit::Float(high),
                inclusive: false,
            }),
        }
    }

    #[test]
    fn a_zone_covers_its_rows_and_merges_with_another() {
        let keys = vec![num(5.0), None, num(2.0), num(9.0)];
        let mut a = Zone::of(&keys, &[0, 1]);
        assert_eq!(
            (a.min.clone(), a.max.clone(), a.nulls, a.count),
            (num(5.0), num(5.0), 1, 2)
        );
        a.merge(&Zone::of(&keys, &[2, 3]));
        assert_eq!((a.min, a.max, a.nulls, a.count), (num(2.0), num(9.0), 1, 4));
    }

    #[test]
    fn ranges_prune_zones_outside_them_with_bounds_respected() {
        let keys: Vec<Option<Key>> = (10..20).map(|v| num(f64::from(v))).collect();
        let zone = Zone::of(&keys, &(0..10).collect::<Vec<_>>());
        assert!(zone.may_match(&range(12.0, 15.0)));
        assert!(
            zone.may_match(&range(19.0, 30.0)),
            "inclusive low bound at max"
        );
        assert!(
            !zone.may_match(&range(0.0, 10.0)),
            "exclusive high bound at min"
        );
        assert!(!zone.may_match(&range(20.0, 30.0)));
        assert!(!zone.may_match(&PredicateKind::IsNull));
        assert!(zone.may_match(&PredicateKind::Eq {
            value: Lit::Int(10)
        }));
        assert!(!zone.may_match(&PredicateKind::Eq {
            value: Lit::Int(20)
        }));
    }

    #[test]
    fn single_values_match_like_sql_and_incomparable_ones_are_kept() {
        assert!(row_matches(&num(12.0), &range(12.0, 15.0)));
        assert!(!row_matches(&num(15.0), &range(12.0, 15.0)));
        assert!(!row_matches(&None, &range(12.0, 15.0)));
        assert!(row_matches(&None, &PredicateKind::IsNull));
        let text = Some(Key::Str("2025".into()));
        assert!(row_matches(
            &text,
            &PredicateKind::Eq { value: Lit::Int(7) }
        ));
        assert!(row_matches(
            &Some(Key::Str("abc".into())),
            &PredicateKind::PrefixLike {
                prefix: "ab".into()
            }
        ));
    }
}
