//! The order-insensitive, duplicate-sensitive digest of a multiset of rows.
//!
//! The digest is the row count plus the wrapping sum of 128-bit row hashes. A sum (not XOR)
//! keeps duplicates visible: two copies of a row change the digest, where XOR would cancel.

/// Relative tolerance within which two floating-point results count as equal when a canary
/// compares a candidate layout's answers with the baseline's (sums in another order may differ
/// in the last bits): `|a - b| <= FLOAT_RELATIVE_TOLERANCE * max(|a|, |b|)`.
pub const FLOAT_RELATIVE_TOLERANCE: f64 = 1e-9;

use std::fmt;

/// Row count plus wrapping sum of 128-bit row hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowDigest {
    /// Number of rows folded in.
    pub rows: u64,
    /// Wrapping sum of the rows' 128-bit hashes.
    pub sum: u128,
}

impl RowDigest {
    /// Folds one row hash in.
    pub fn add_row_hash(&mut self, hash: u128) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(hash);
    }

    /// Combines two digests of disjoint row sets.
    pub fn merge(&mut self, other: &RowDigest) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
    }

    /// Parses the `rows:hex` text form written by `Display`.
    pub fn parse(text: &str) -> Option<RowDigest> {
        let (rows, sum) = text.split_once(':')?;
        Some(RowDigest {
            rows: rows.parse().ok()?,
            sum: u128::from_str_radix(sum, 16).ok()?,
        })
    }
}

impl fmt::Display for RowDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{:032x}", self.rows, self.sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(hashes: &[u128]) -> RowDigest {
        let mut d = RowDigest::default();
        for h in hashes {
            d.add_row_hash(*h);
        }
        d
    }

    #[test]
    fn order_insensitive() {
        assert_eq!(digest_of(&[1, 2, 3]), digest_of(&[3, 1, 2]));
    }

    #[test]
    fn duplicate_sensitive() {
        let a = u128::MAX - 7;
        assert_ne!(digest_of(&[a, 5]), digest_of(&[a, a, 5]));
        assert_ne!(digest_of(&[a, a]), digest_of(&[]));
    }

    #[test]
    fn merge_equals_single_pass_and_roundtrips() {
        let mut left = digest_of(&[u128::MAX, 9]);
        left.merge(&digest_of(&[4]));
        assert_eq!(left, digest_of(&[4, u128::MAX, 9]));
        assert_eq!(RowDigest::parse(&left.to_string()), Some(left));
    }
}
