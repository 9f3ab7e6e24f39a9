//! The delivery vocabulary every part shares: how a message travels
//! ([`Channel`], `delivery.channel`), where a delivery is in its life
//! ([`Status`], `delivery.status`), and this process's claims on rows in
//! flight ([`Leases`]). A leaf: it imports nothing from the crate, so
//! settings and services can name these without depending on the outbox
//! (`crate::notify::outbox`), which owns the `delivery` table.

use std::collections::HashSet;

/// How a message travels; `delivery.channel` and `message_template.channel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// A service-account template message to a follower.
    OaTemplate,
    /// A service-account subscription notice (`subscribe/bizsend`), paid
    /// with a credit WeChat reported; it reaches non-followers too.
    OaSubscribe,
    /// A mini-program subscribe message, paid with a subscription credit.
    MpSubscribe,
    /// A legacy mini-program template message, paid with a form id.
    MpForm,
}

impl Channel {
    /// Every channel, in the default order of `WXNOTIFY_CHANNEL_ORDER`.
    pub const ALL: [Channel; 4] = [Channel::OaTemplate, Channel::OaSubscribe, Channel::MpSubscribe, Channel::MpForm];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::OaTemplate => "OA_TEMPLATE",
            Channel::OaSubscribe => "OA_SUBSCRIBE",
            Channel::MpSubscribe => "MP_SUBSCRIBE",
            Channel::MpForm => "MP_FORM",
        }
    }

    pub fn parse(text: &str) -> Option<Channel> {
        match text {
            "OA_TEMPLATE" => Some(Channel::OaTemplate),
            "OA_SUBSCRIBE" => Some(Channel::OaSubscribe),
            "MP_SUBSCRIBE" => Some(Channel::MpSubscribe),
            "MP_FORM" => Some(Channel::MpForm),
            _ => None,
        }
    }
}

/// Where a delivery is in its life; `delivery.status`. The only place these
/// names are written: SQL and comparisons use [`Status::as_str`] and
/// [`Status::sql`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Queued, not yet claimed (or handed back for a later run).
    Pending,
    /// Claimed by a sender under a lease; its outcome is not yet recorded.
    Sending,
    /// WeChat accepted it (msgid, sent_at).
    Sent,
    /// WeChat took it for review (errcode 40252); its TEMPLATESENDJOBFINISH
    /// report (or `queryblocktmplmsg`) settles it. Never sent again.
    InReview,
    /// WeChat refused it, or its outcome can no longer be known.
    Failed,
    /// Not sent, on purpose (no longer following, nothing to send).
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Sending => "SENDING",
            Status::Sent => "SENT",
            Status::InReview => "IN_REVIEW",
            Status::Failed => "FAILED",
            Status::Skipped => "SKIPPED",
        }
    }

    /// The status as an SQL string literal, for statements that name it.
    pub fn sql(self) -> &'static str {
        match self {
            Status::Pending => "'PENDING'",
            Status::Sending => "'SENDING'",
            Status::Sent => "'SENT'",
            Status::InReview => "'IN_REVIEW'",
            Status::Failed => "'FAILED'",
            Status::Skipped => "'SKIPPED'",
        }
    }
}

/// This process's claims on rows in flight: its name on them, and the ids
/// whose lease its heartbeat renews.
pub struct Leases {
    owner: String,
    held: std::sync::Mutex<HashSet<i64>>,
}

impl Default for Leases {
    fn default() -> Self {
        let owner = format!("pid{}-{:012x}", std::process::id(), rand::random::<u64>() & 0xffff_ffff_ffff);
        Leases { owner, held: std::sync::Mutex::new(HashSet::new()) }
    }
}

impl Leases {
    /// The name this process writes into `lease_owner`.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub(crate) fn hold(&self, ids: impl IntoIterator<Item = i64>) {
        if let Ok(mut held) = self.held.lock() {
            held.extend(ids);
        }
    }

    pub(crate) fn release(&self, ids: impl IntoIterator<Item = i64>) {
        if let Ok(mut held) = self.held.lock() {
            for id in ids {
                held.remove(&id);
            }
        }
    }

    /// The ids this process is sending right now.
    pub fn held(&self) -> Vec<i64> {
        self.held.lock().map(|held| held.iter().copied().collect()).unwrap_or_default()
    }
}
