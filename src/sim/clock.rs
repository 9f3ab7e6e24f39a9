//! The simulator's latency, kept to the microsecond.
//!
//! A tokio sleep rounds its deadline up to the next millisecond tick of the
//! runtime's timer wheel and then waits for the driver's next turn: a
//! 20 ms `tokio::time::sleep` took 21.3 ms on average in the notify bench
//! (see docs/performance.md), so every simulated call was slower than the
//! latency it was configured with, and a sender could never reach the bound
//! `concurrency / latency`. Here one thread keeps the deadlines of every
//! simulator in the process and wakes each waiting call when its deadline
//! passes, with the operating system's own timer precision (tens of
//! microseconds). A call is never answered before its latency has passed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Waits until `latency` after `since`, at least (none for zero).
pub(crate) async fn wait(since: Instant, latency: Duration) {
    if latency.is_zero() {
        return;
    }
    let deadline = since + latency;
    if deadline <= Instant::now() {
        return;
    }
    let (tx, rx) = oneshot::channel();
    clock().add(deadline, tx);
    if rx.await.is_err() {
        // The clock thread cannot go away; should it ever, keep the latency.
        tokio::time::sleep_until(deadline.into()).await;
    }
}

struct Clock {
    due: Mutex<BinaryHeap<Reverse<Waiter>>>,
    changed: Condvar,
}

struct Waiter {
    at: Instant,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

fn clock() -> &'static Clock {
    static CLOCK: OnceLock<&'static Clock> = OnceLock::new();
    CLOCK.get_or_init(|| {
        let clock: &'static Clock = Box::leak(Box::new(Clock { due: Mutex::new(BinaryHeap::new()), changed: Condvar::new() }));
        std::thread::Builder::new()
            .name("wechat-sim-clock".into())
            .spawn(move || clock.run())
            .expect("the simulator's clock thread starts");
        clock
    })
}

impl Clock {
    fn add(&self, at: Instant, wake: oneshot::Sender<()>) {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut due = self.due.lock().unwrap_or_else(PoisonError::into_inner);
        let earliest = due.peek().is_none_or(|Reverse(first)| at < first.at);
        due.push(Reverse(Waiter { at, seq, wake }));
        drop(due);
        if earliest {
            self.changed.notify_one();
        }
    }

    fn run(&self) {
        let mut due = self.due.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now = Instant::now();
            while due.peek().is_some_and(|Reverse(first)| first.at <= now) {
                if let Some(Reverse(waiter)) = due.pop() {
                    // A call whose client went away no longer listens.
                    let _ = waiter.wake.send(());
                }
            }
            due = match due.peek().map(|Reverse(first)| first.at - now) {
                Some(left) => self.changed.wait_timeout(due, left).unwrap_or_else(PoisonError::into_inner).0,
                None => self.changed.wait(due).unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_never_ends_before_its_latency() {
        let waits = (0..50u64).map(|n| async move {
            let started = Instant::now();
            let latency = Duration::from_micros(1_000 + 97 * n);
            wait(started, latency).await;
            started.elapsed() >= latency
        });
        assert!(futures::future::join_all(waits).await.into_iter().all(|kept| kept));
    }
}
