//! Sending: everything that puts a message in front of a user,
//! built so that nothing is lost and nothing is sent twice.
//!
//! - [`outbox`]: every message is first a `delivery` row with a unique
//!   `dedupe_key`, then claimed, sent, and its outcome recorded; pending rows
//!   are picked up again when a server starts ([`recover_in_background`]).
//! - [`render`]: `message_template` rows with `{{placeholders}}`, filled from
//!   the account and the unread rows, cut to WeChat's limits.
//! - [`digest`]: `notifyDigest`, one message per following account with
//!   unread `point_count` rows, counted per type in one aggregate query.
//! - [`realtime`]: `notifyAccount`, at most one message per account per
//!   throttle window (claimed atomically in `notice`), falling back to
//!   mini-program credits for accounts that do not follow.
//! - [`credits`]: `collectFormIds`, `grantSubscription`, `pushBroadcast`:
//!   the mini-program send credits of `push_code`, each used at most once.
//! - [`graphql`]: the GraphQL operations over all of the above.

pub mod credits;
pub mod digest;
mod error;
mod graphql;
pub mod outbox;
mod preview;
pub mod realtime;
pub mod render;
mod route;

use std::sync::Arc;

pub use error::NotifyError;
pub use graphql::operations;

use crate::services::Services;

/// Starts the outbox recovery in the background: stale in-flight rows of a
/// process that died are settled and pending rows are sent. Called once
/// when a server starts; several servers doing so at once is safe, since
/// every row is claimed atomically.
pub fn recover_in_background(services: Arc<Services>) {
    let started = chrono::Utc::now();
    services.clone().spawn(async move {
        match outbox::recover(&services, started).await {
            Ok(tally) if tally.is_empty() => {}
            Ok(tally) => tracing::info!(?tally, "outbox recovery finished"),
            Err(e) => tracing::error!(error = %e, "outbox recovery failed; pending deliveries wait for the next start or run"),
        }
    });
}

/// Starts the outbox sweeper: every half `WXNOTIFY_DELIVERY_LEASE` or
/// quarter `WXNOTIFY_PENDING_RETRY_AFTER`, whichever is shorter (at most
/// every minute), it runs [`outbox::sweep`], until the server stops. Every
/// server runs one; rows are claimed atomically, so they never clash, and a
/// dead server's rows are settled within a lease and half of it. With
/// `WXNOTIFY_OUTBOX_HELP` it also helps send other servers' runs ([`help`]).
pub fn spawn_sweeper(services: Arc<Services>) -> tokio::task::JoinHandle<()> {
    let every = sweep_every(&services.settings);
    tokio::spawn(async move {
        let helper = services.settings.outbox_help.then(|| tokio::spawn(help(services.clone())));
        let mut reviews_checked = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = services.stopping.cancelled() => break,
            }
            match outbox::sweep(&services).await {
                Ok(tally) if tally.is_empty() => {}
                Ok(tally) => tracing::info!(?tally, "outbox sweep: sent deliveries left pending"),
                Err(e) => tracing::warn!(error = %e, "outbox sweep failed; trying again later"),
            }
            if reviews_checked.elapsed() >= REVIEWS_EVERY && services.wechat.require(crate::wechat::App::Oa).is_ok() {
                reviews_checked = std::time::Instant::now();
                match outbox::settle_reviews(&services, REVIEW_SETTLE_AFTER).await {
                    Ok(0) => {}
                    Ok(settled) => tracing::info!(settled, "template messages intercepted by WeChat's review marked FAILED"),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not list the template messages WeChat's review intercepted; trying again later")
                    }
                }
            }
        }
        if let Some(helper) = helper {
            let _ = helper.await;
        }
    })
}

/// How often a server looks for delivery runs other servers announced.
const HELP_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Helps send the runs other servers announce ([`outbox::help`]) until the
/// server stops; a run it is helping when the stop comes ends like its own
/// would (sends in flight finish and are recorded, the rest stays PENDING).
async fn help(services: Arc<Services>) {
    let mut done = std::collections::HashSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(HELP_EVERY) => {}
            _ = services.stopping.cancelled() => break,
        }
        match outbox::help(&services, &mut done).await {
            Ok(tally) if tally.is_empty() => {}
            Ok(tally) => tracing::info!(?tally, "helped another server send its delivery run"),
            Err(e) => tracing::warn!(error = %e, "helping another server send its delivery run failed; trying again later"),
        }
    }
}

/// How often the sweeper asks `queryblocktmplmsg` about messages in review.
const REVIEWS_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// How long a message may stay in WeChat's review before a listing of
/// intercepted messages is believed about it.
pub const REVIEW_SETTLE_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

/// How often the sweeper runs: a lapsed lease is noticed within half a
/// lease, and an idle PENDING row within a quarter of its wait.
pub fn sweep_every(settings: &crate::settings::Settings) -> std::time::Duration {
    (settings.pending_retry_after / 4)
        .min(settings.delivery_lease / 2)
        .clamp(std::time::Duration::from_millis(250), std::time::Duration::from_secs(60))
}

/// Starts the heartbeat that renews this process's leases on the deliveries
/// it is sending, three times per `WXNOTIFY_DELIVERY_LEASE`. It outlives the
/// stop signal while sends are still in flight (they get the shutdown grace)
/// and ends once none are; when the process dies, the leases lapse and
/// another server settles the rows.
pub fn spawn_heartbeat(services: Arc<Services>) -> tokio::task::JoinHandle<()> {
    let every = (services.settings.delivery_lease / 3).max(std::time::Duration::from_millis(30));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let held = services.leases.held();
            if held.is_empty() {
                if services.stopping.is_cancelled() {
                    break;
                }
                continue;
            }
            if let Err(e) = outbox::renew_leases(&services).await {
                tracing::warn!(error = %e, rows = held.len(), "renewing the leases of deliveries in flight failed; trying again");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_the_defaults_a_dead_servers_messages_are_taken_over_within_a_minute() {
        let settings = crate::settings::Settings::with_overrides([]).unwrap();
        // The lease lapses, then the next sweep of any server takes the rows.
        let worst = settings.delivery_lease + sweep_every(&settings);
        assert!(worst < std::time::Duration::from_secs(60), "{worst:?}");
    }
}
