//! The service account's followers: the paged openid list, and who each one
//! is (`user/info`, `user/info/batchget`).

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;

use super::transport::{Call, decode};
use super::{App, WechatClient, WechatError};

/// Most openids `user/info/batchget` takes in one call (45035 beyond).
pub const BATCHGET_LIMIT: usize = 100;

/// One page of `user/get`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerPage {
    /// WeChat's count of followers; it moves during a scan, do not trust it
    /// to end a loop.
    pub total: u64,
    /// Up to 10,000 openids.
    pub openids: Vec<String>,
    /// Where the next page starts; WeChat sets it on the last page too.
    pub next_openid: String,
}

impl FollowerPage {
    /// The cursor for the next call, or `None` when the listing is complete
    /// (an empty page, or no cursor).
    pub fn next(&self) -> Option<&str> {
        (!self.openids.is_empty() && !self.next_openid.is_empty()).then_some(self.next_openid.as_str())
    }
}

/// One user as the service account sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub openid: String,
    /// Follows the service account now. Unfollowed users carry only openid
    /// and unionid.
    pub subscribe: bool,
    pub unionid: Option<String>,
    /// When they (last) followed.
    pub subscribe_time: Option<DateTime<Utc>>,
    /// How they followed, e.g. `ADD_SCENE_QR_CODE`.
    pub subscribe_scene: Option<String>,
    /// The scene of the parametric QR code they followed through, if any.
    pub qr_scene_str: Option<String>,
    pub language: Option<String>,
    pub remark: Option<String>,
    pub tagid_list: Vec<i64>,
}

#[derive(Deserialize)]
struct PageWire {
    #[serde(default)]
    total: u64,
    #[serde(default)]
    data: Option<PageData>,
    #[serde(default)]
    next_openid: String,
}

#[derive(Deserialize)]
struct PageData {
    #[serde(default)]
    openid: Vec<String>,
}

#[derive(Deserialize)]
struct UserWire {
    openid: String,
    #[serde(default)]
    subscribe: i64,
    #[serde(default)]
    unionid: Option<String>,
    #[serde(default)]
    subscribe_time: Option<i64>,
    #[serde(default)]
    subscribe_scene: Option<String>,
    #[serde(default)]
    qr_scene_str: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    remark: Option<String>,
    #[serde(default)]
    tagid_list: Vec<i64>,
}

#[derive(Deserialize)]
struct BatchWire {
    #[serde(default)]
    user_info_list: Vec<UserWire>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

impl From<UserWire> for UserInfo {
    fn from(w: UserWire) -> UserInfo {
        let subscribe = w.subscribe == 1;
        UserInfo {
            openid: w.openid,
            subscribe,
            unionid: non_empty(w.unionid),
            subscribe_time: w.subscribe_time.filter(|t| subscribe && *t > 0).and_then(|t| DateTime::from_timestamp(t, 0)),
            subscribe_scene: non_empty(w.subscribe_scene),
            qr_scene_str: non_empty(w.qr_scene_str),
            language: non_empty(w.language),
            remark: non_empty(w.remark),
            tagid_list: w.tagid_list,
        }
    }
}

impl WechatClient {
    /// One page of the follower list, starting after `next_openid` (`None`
    /// for the first page). Loop while [`FollowerPage::next`] is `Some`.
    pub async fn follower_page(&self, next_openid: Option<&str>) -> Result<FollowerPage, WechatError> {
        const API: &str = "/cgi-bin/user/get";
        let query = vec![("next_openid", next_openid.unwrap_or_default().to_string())];
        let wire: PageWire = decode(API, self.call_with_token(Call::get(App::Oa, API, query)).await?)?;
        let openids = wire.data.map(|d| d.openid).unwrap_or_default();
        Ok(FollowerPage { total: wire.total, openids, next_openid: wire.next_openid })
    }

    /// One user, by service-account openid.
    pub async fn user_info(&self, openid: &str) -> Result<UserInfo, WechatError> {
        const API: &str = "/cgi-bin/user/info";
        let query = vec![("openid", openid.to_string()), ("lang", "zh_CN".to_string())];
        let wire: UserWire = decode(API, self.call_with_token(Call::get(App::Oa, API, query)).await?)?;
        Ok(wire.into())
    }

    /// Many users, in the order asked: calls `batchget` with 100 openids at a
    /// time, `WXNOTIFY_WECHAT_CONCURRENCY` calls at once. The first failure
    /// stops the batch (no further chunk starts) and is returned.
    pub async fn user_info_batch(&self, openids: &[String]) -> Result<Vec<UserInfo>, WechatError> {
        // Owned chunks: a closure over borrowed slices makes the future's
        // Send-ness unprovable (rustc #100013), and callers need it Send.
        let chunks: Vec<Vec<UserInfo>> = futures::stream::iter(openids.chunks(BATCHGET_LIMIT).map(<[String]>::to_vec))
            .map(|chunk| async move { self.user_info_chunk(&chunk).await })
            .buffered(self.inner.concurrency)
            .try_collect()
            .await?;
        Ok(chunks.into_iter().flatten().collect())
    }

    async fn user_info_chunk(&self, openids: &[String]) -> Result<Vec<UserInfo>, WechatError> {
        const API: &str = "/cgi-bin/user/info/batchget";
        let user_list: Vec<_> = openids.iter().map(|openid| json!({ "openid": openid, "lang": "zh_CN" })).collect();
        let call = Call::post(App::Oa, API, json!({ "user_list": user_list })).idempotent();
        let wire: BatchWire = decode(API, self.call_with_token(call).await?)?;
        Ok(wire.user_info_list.into_iter().map(UserInfo::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(openids: &[&str], next: &str) -> FollowerPage {
        FollowerPage { total: 3, openids: openids.iter().map(|s| s.to_string()).collect(), next_openid: next.into() }
    }

    #[test]
    fn the_listing_ends_on_an_empty_page_or_an_empty_cursor() {
        assert_eq!(page(&["a", "b"], "b").next(), Some("b"));
        assert_eq!(page(&[], "").next(), None);
        assert_eq!(page(&["a"], "").next(), None);
    }

    #[test]
    fn an_unfollowed_user_has_no_subscribe_time() {
        let wire: UserWire = serde_json::from_value(json!({ "subscribe": 0, "openid": "o1", "unionid": "u1" })).unwrap();
        let info = UserInfo::from(wire);
        assert!(!info.subscribe);
        assert_eq!(info.unionid.as_deref(), Some("u1"));
        assert_eq!(info.subscribe_time, None);
    }
}
