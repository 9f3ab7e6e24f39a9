//! Rate limits per client address (`WXNOTIFY_LOGIN_RATE_LIMIT`).
//!
//! Logging in is the one operation anyone may call, and each login costs a
//! WeChat call and a database write, so it is limited per client address: a
//! token bucket of `count` logins refilled over `per` (GCRA, from the
//! `governor` crate). State lives in this process; with several server
//! processes behind a balancer each allows the rate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::settings::Rate;

/// Every this many checks, addresses whose bucket is full again are
/// forgotten, so the table does not grow with every address ever seen.
const FORGET_EVERY: u64 = 4096;

pub struct RateLimit {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    rate: Option<Rate>,
    checks: AtomicU64,
}

/// A refused attempt: when the next one would be allowed.
#[derive(Clone, Copy, Debug)]
pub struct Refused {
    pub retry_after: Duration,
    pub rate: Rate,
}

impl RateLimit {
    /// A limit of `rate` per address; `None` allows everything.
    pub fn new(rate: Option<Rate>) -> RateLimit {
        let limiter = rate.map(|rate| {
            let quota =
                Quota::with_period(rate.per / rate.count.get()).unwrap_or_else(|| Quota::per_second(rate.count)).allow_burst(rate.count);
            DefaultKeyedRateLimiter::keyed(quota)
        });
        RateLimit { limiter, rate, checks: AtomicU64::new(0) }
    }

    /// Counts one attempt from `address`. An unknown address (no peer, no
    /// header) shares one bucket with every other unknown one.
    pub fn check(&self, address: Option<IpAddr>) -> Result<(), Refused> {
        let (Some(limiter), Some(rate)) = (&self.limiter, self.rate) else { return Ok(()) };
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            limiter.retain_recent();
        }
        let address = address.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), bucket_of);
        limiter
            .check_key(&address)
            .map_err(|not_until| Refused { retry_after: not_until.wait_time_from(DefaultClock::default().now()), rate })
    }
}

/// The bucket an address counts against: IPv4 addresses one by one, IPv6
/// by /64 (one subscriber's network; a single host can hold a whole /64).
fn bucket_of(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u64::MAX as u128))),
        v4 => v4,
    }
}

impl Refused {
    pub fn message(&self, what: &str, setting: &str) -> String {
        format!(
            "too many {what} from this address: at most {} per {} s ({setting}); try again in {} s",
            self.rate.count,
            self.rate.per.as_secs(),
            self.retry_after.as_secs().max(1)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(count: u32, seconds: u64) -> Option<Rate> {
        Some(Rate { count: count.try_into().unwrap(), per: Duration::from_secs(seconds) })
    }

    #[test]
    fn each_address_has_its_own_bucket() {
        let limit = RateLimit::new(rate(2, 60));
        let (a, b) = (Some("10.0.0.1".parse().unwrap()), Some("10.0.0.2".parse().unwrap()));
        assert!(limit.check(a).is_ok() && limit.check(a).is_ok());
        let refused = limit.check(a).unwrap_err();
        assert!(refused.retry_after > Duration::from_secs(1), "{refused:?}");
        assert!(limit.check(b).is_ok(), "another address is not limited by the first");
    }

    #[test]
    fn an_ipv6_network_shares_one_bucket() {
        let limit = RateLimit::new(rate(1, 60));
        assert!(limit.check(Some("2001:db8:1:2::1".parse().unwrap())).is_ok());
        assert!(limit.check(Some("2001:db8:1:2:ffff::9".parse().unwrap())).is_err(), "same /64");
        assert!(limit.check(Some("2001:db8:1:3::1".parse().unwrap())).is_ok(), "another /64");
        assert_eq!(bucket_of("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn off_allows_everything() {
        let limit = RateLimit::new(None);
        assert!((0..1000).all(|_| limit.check(None).is_ok()));
    }
}
