//! Filter pushdown chosen per query shape and layout (`adaptive_pushdown`).
//!
//! DataFusion's filter pushdown evaluates a scan's filters inside the Parquet decoder and
//! decodes the other columns only for the rows they keep. That pays when a filter keeps few
//! rows that a layout leaves scattered, and costs up to 2.4x the instructions when it keeps a
//! few percent, or when pruning has already cut the scan to the rows that match
//! (BENCHMARKS.md, "Filter pushdown decides the latency targets"). Which one a query shape
//! gets on a layout is measured, not predicted:
//! - each choice runs `EXPLORE_RUNS` times, alternating, the configured `pushdown_filters`
//!   first;
//! - then the choice with the lower mean latency, leaving out each choice's slowest run,
//!   runs: the configured choice takes a shape's cold first run, and one slow run of two
//!   decided wrongly in the first benchmark of this rule (BENCHMARKS.md);
//! - the other choice replaces the configured one only when it measured faster by more than
//!   `SWITCH_MARGIN` and by more than `SWITCH_MIN_MS`: a shape's queries differ by parameter,
//!   so a few runs of each choice compare different queries, and on lookups of a few
//!   milliseconds that spread decided wrongly in the second benchmark (13-60% slower);
//! - every `REEXPLORE_EVERY`-th query of the shape runs the other choice, so a change (more
//!   data, another machine load) is noticed; less often when the other choice measured much
//!   slower, so that re-exploring costs at most `REEXPLORE_COST` of the shape's time (at one
//!   query in 16, a lookup whose other choice is 2.4x slower lost 9% to it in the benchmark).
//!
//! The latencies are summed per (table, fingerprint, layout, choice) in the catalog, in the
//! query's own log transaction (`Catalog::pushdown_stats`), so every process that runs the
//! workload learns from the others. Pushdown never changes an answer, only its cost.

use crate::{DbError, Workspace};
use dbopt_catalog::PushdownStat;
use dbopt_core::{LayoutId, TableName};

/// Runs of each choice before the faster one is kept (its slowest left out of its score).
pub(crate) const EXPLORE_RUNS: u64 = 3;

/// One query in this many of a shape (at least) runs the choice that measured slower.
pub(crate) const REEXPLORE_EVERY: u64 = 16;

/// Re-exploring costs at most this share of a shape's time, in expectation.
pub(crate) const REEXPLORE_COST: f64 = 0.02;

/// One query in at most this many of a shape re-runs the slower choice, however slow it was.
pub(crate) const REEXPLORE_MAX: u64 = 256;

/// How many queries of a shape apart the slower choice is re-run: `REEXPLORE_EVERY`, or more
/// when the slower choice measured so much slower (`slow_ms` against `fast_ms`) that running
/// it once in `REEXPLORE_EVERY` would cost more than `REEXPLORE_COST` of the shape's time;
/// at most `REEXPLORE_MAX`.
pub(crate) fn reexplore_period(fast_ms: f64, slow_ms: f64) -> u64 {
    if fast_ms <= 0.0 || !fast_ms.is_finite() || !slow_ms.is_finite() {
        return REEXPLORE_EVERY;
    }
    let extra = (slow_ms / fast_ms - 1.0).max(0.0);
    let period = (extra / REEXPLORE_COST).ceil() as u64;
    period.clamp(REEXPLORE_EVERY, REEXPLORE_MAX)
}

/// How much faster (a share of the configured choice's score) the other choice must measure
/// to replace it.
pub const SWITCH_MARGIN: f64 = 0.15;

/// How many milliseconds faster the other choice must measure to replace the configured one.
pub const SWITCH_MIN_MS: f64 = 1.0;

/// The pushdown the next query of a shape runs with, from what each choice measured on its
/// layout (`default`: the configured `pushdown_filters`).
pub(crate) fn choose(stats: &[PushdownStat], default: bool) -> bool {
    let stat = |choice: bool| stats.iter().find(|s| s.pushdown == choice);
    let runs = |choice: bool| stat(choice).map_or(0, |s| s.runs);
    let (ran_default, ran_other) = (runs(default), runs(!default));
    if ran_default < EXPLORE_RUNS || ran_other < EXPLORE_RUNS {
        return if ran_default <= ran_other {
            default
        } else {
            !default
        };
    }
    let mean = |choice: bool| stat(choice).map_or(f64::INFINITY, PushdownStat::trimmed_mean_ms);
    let saved = mean(default) - mean(!default);
    let faster = if saved > SWITCH_MIN_MS && saved > SWITCH_MARGIN * mean(default) {
        !default
    } else {
        default
    };
    let period = reexplore_period(mean(faster), mean(!faster));
    if (ran_default + ran_other) % period == 0 {
        !faster
    } else {
        faster
    }
}

impl Workspace {
    /// The pushdown the next query with `fingerprint` on `layout` of `table` runs with; None
    /// when `adaptive_pushdown` is off or the query has no fingerprint (it does not parse),
    /// and the session's fixed setting applies.
    pub(crate) fn pushdown_for(
        &self,
        table: &TableName,
        fingerprint: &str,
        layout: Option<&LayoutId>,
    ) -> Result<Option<bool>, DbError> {
        let settings = self.config().settings();
        let Some(layout) = layout.filter(|_| settings.adaptive_pushdown && !fingerprint.is_empty())
        else {
            return Ok(None);
        };
        let stats = self.catalog().pushdown_stats(table, fingerprint, layout)?;
        Ok(Some(choose(&stats, settings.pushdown_filters)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pushdown: bool, runs: u64, mean_latency_ms: f64) -> PushdownStat {
        PushdownStat {
            pushdown,
            runs,
            mean_latency_ms,
            max_latency_ms: mean_latency_ms,
        }
    }

    #[test]
    fn both_choices_run_three_times_alternating_the_configured_one_first() {
        let mut stats = Vec::new();
        let mut order = Vec::new();
        for _ in 0..6 {
            let choice = choose(&stats, true);
            order.push(choice);
            match stats
                .iter_mut()
                .find(|s: &&mut PushdownStat| s.pushdown == choice)
            {
                Some(s) => s.runs += 1,
                None => stats.push(stat(choice, 1, 10.0)),
            }
        }
        assert_eq!(order, [true, false, true, false, true, false]);
        assert!(!choose(&[], false), "the configured choice first");
    }

    #[test]
    fn a_cold_first_run_does_not_decide() {
        // On ran 10, 10, 40 ms (its first run cold), off 15, 15, 15: on is faster without
        // its slowest run, although its mean (20) is the higher.
        let on = PushdownStat {
            pushdown: true,
            runs: 3,
            mean_latency_ms: 20.0,
            max_latency_ms: 40.0,
        };
        assert!((on.trimmed_mean_ms() - 10.0).abs() < 1e-9);
        assert!(choose(&[stat(false, 3, 15.0), on], true));
    }

    #[test]
    fn then_the_faster_choice_runs_and_the_slower_one_now_and_then() {
        let slower_on = [stat(false, 3, 8.0), stat(true, 4, 20.0)];
        assert!(!choose(&slower_on, true), "off measured faster");
        let faster_on = [stat(false, 4, 20.0), stat(true, 3, 8.0)];
        assert!(choose(&faster_on, true));
        // Equal scores keep the configured choice, and so do scores within the margin.
        assert!(choose(&[stat(false, 3, 9.0), stat(true, 4, 9.0)], true));
        assert!(choose(&[stat(false, 3, 90.0), stat(true, 4, 100.0)], true));
        assert!(!choose(&[stat(false, 3, 80.0), stat(true, 4, 100.0)], true));
        // A lookup of a few milliseconds switches only for more than SWITCH_MIN_MS.
        assert!(choose(&[stat(false, 3, 2.2), stat(true, 4, 3.0)], true));
        assert!(!choose(&[stat(false, 3, 1.5), stat(true, 4, 3.0)], true));
        // Every REEXPLORE_EVERY-th query runs the slower choice once (off 25% faster).
        let at_16 = [stat(false, 10, 8.0), stat(true, 6, 10.0)];
        assert!(
            choose(&at_16, true),
            "the 16th query re-explores pushdown on"
        );
        let at_17 = [stat(false, 10, 8.0), stat(true, 7, 10.0)];
        assert!(!choose(&at_17, true));
    }

    #[test]
    fn a_much_slower_choice_is_re_explored_less_often() {
        assert_eq!(reexplore_period(10.0, 12.0), REEXPLORE_EVERY);
        // 2.4x slower: one run in 70 costs 1.4 / 70 = 2% of the shape's time.
        assert_eq!(reexplore_period(100.0, 240.0), 70);
        assert_eq!(reexplore_period(1.0, 1000.0), REEXPLORE_MAX);
        assert_eq!(reexplore_period(0.0, 5.0), REEXPLORE_EVERY);
        // Pushdown on 2.4x faster than off: at query 16 it is not re-explored, at 70 it is.
        let at = |runs_on: u64| [stat(false, 3, 240.0), stat(true, runs_on, 100.0)];
        assert!(choose(&at(13), true), "16 runs: on again");
        assert!(!choose(&at(67), true), "70 runs: off once");
        assert!(choose(&at(68), true));
    }
}
