//! How long and how often the client waits when WeChat says "not now".
//!
//! Two kinds of "not now" exist: -1 (system busy, retried with exponential
//! backoff) and 45011 (the per-minute limit, waited out until the next
//! minute). Both are bounded, because unbounded retry loops are what burns
//! daily quotas. Tests shrink the delays; nothing else should.

use std::time::Duration;

/// The bounded waits of one client.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all when WeChat answers -1 or the connection fails on a
    /// call that is safe to repeat (5 by default: 1 + 4 retries).
    pub busy_attempts: u32,
    /// The first backoff; each further one doubles (1 s, 2 s, 4 s, 8 s).
    pub busy_base_delay: Duration,
    /// How many times a 45011 is waited out before giving up.
    pub rate_limit_waits: u32,
    /// How long one 45011 wait lasts; `None` waits until the next minute
    /// starts, as WeChat's per-minute counters reset then.
    pub rate_limit_wait: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { busy_attempts: 5, busy_base_delay: Duration::from_secs(1), rate_limit_waits: 2, rate_limit_wait: None }
    }
}

impl RetryPolicy {
    /// Millisecond waits with the default bounds, for tests.
    pub fn fast() -> Self {
        RetryPolicy { busy_base_delay: Duration::from_millis(1), rate_limit_wait: Some(Duration::from_millis(5)), ..RetryPolicy::default() }
    }

    /// The pause before busy retry number `retry` (0-based).
    pub(crate) fn busy_delay(&self, retry: u32) -> Duration {
        self.busy_base_delay.saturating_mul(1 << retry.min(16))
    }

    /// The pause after a 45011.
    pub(crate) fn rate_limit_delay(&self) -> Duration {
        self.rate_limit_wait.unwrap_or_else(until_next_minute)
    }
}

fn until_next_minute() -> Duration {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    // A little past the boundary, so clocks that differ slightly agree.
    Duration::from_secs(60 - now.as_secs() % 60) + Duration::from_millis(200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_backoff_doubles_from_the_base() {
        let policy = RetryPolicy::default();
        let delays: Vec<u64> = (0..4).map(|n| policy.busy_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8]);
    }

    #[test]
    fn the_rate_limit_wait_ends_within_the_next_minute() {
        let wait = RetryPolicy::default().rate_limit_delay();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(60_200), "{wait:?}");
    }
}
