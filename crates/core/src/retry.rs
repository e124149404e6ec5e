//! The one retry policy of dbopt, for work that can fail for a while and then succeed: an
//! HTTP transfer that broke off (retried in place) and a migration job that hit a machine
//! error (queued again in the catalog). At most [`MAX_ATTEMPTS`] tries are made; the wait
//! before the next try starts at [`FIRST_DELAY`] and doubles, capped at [`MAX_DELAY`], with no
//! jitter. [`POLICY`] is that schedule as a backon builder (it drives an in-process retry
//! loop); [`delay_after_attempt`] reads the same schedule for a retry scheduled elsewhere.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

/// Tries made at most, the first one included.
pub const MAX_ATTEMPTS: u32 = 5;
/// The wait after the first failed try.
pub const FIRST_DELAY: Duration = Duration::from_secs(2);
/// The longest wait between two tries.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// The retry schedule: `MAX_ATTEMPTS - 1` waits of `FIRST_DELAY`, doubling, at most
/// `MAX_DELAY` (2 s, 4 s, 8 s, 16 s).
pub const POLICY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(FIRST_DELAY)
    .with_max_delay(MAX_DELAY)
    .with_factor(2.0)
    .with_max_times(MAX_ATTEMPTS as usize - 1);

/// The wait before trying again after failed try number `attempt` (1-based); None when that
/// was the last try the policy allows (or `attempt` is 0).
pub fn delay_after_attempt(attempt: u64) -> Option<Duration> {
    let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
    POLICY.build().nth(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_stop_after_the_last_attempt() {
        let secs = |a| delay_after_attempt(a).map(|d| d.as_secs());
        assert_eq!(secs(1), Some(2));
        assert_eq!(secs(2), Some(4));
        assert_eq!(secs(3), Some(8));
        assert_eq!(secs(4), Some(16));
        assert_eq!(secs(u64::from(MAX_ATTEMPTS)), None);
        assert_eq!(secs(30), None);
        assert_eq!(secs(0), None);
    }

    #[test]
    fn the_builder_and_the_lookup_agree() {
        let schedule: Vec<Duration> = POLICY.build().collect();
        assert_eq!(schedule.len(), MAX_ATTEMPTS as usize - 1);
        for (i, d) in schedule.iter().enumerate() {
            assert_eq!(delay_after_attempt(i as u64 + 1), Some(*d));
            assert!(*d <= MAX_DELAY);
        }
    }
}
