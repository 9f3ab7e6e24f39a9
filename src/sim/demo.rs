//! `wxnotify serve --demo`: the server against an in-process simulator
//! seeded with a small cast, so a newcomer can try login, follower sync and
//! sending on a fresh machine without a WeChat account.
//!
//! The cast (see the README's demo section):
//! - followers `oDemoFollower01`..`03` with unionids `uDemoUnion01`..`03`,
//!   `oDemoFollower04` and `05` without (unbound: link them by QR code),
//!   and `oDemoFollower06` (`uDemoUnion06`) who unfollowed;
//! - mini-program users logging in with `demo-code-1`..`5` (once each, as
//!   real codes): 1 and 2 share a unionid with a follower, 3 is the one who
//!   unfollowed, 4 has a unionid that follows nothing, 5 has no unionid. Any
//!   number of further logins work with `sim-code:<openid>:<anything>`.

use crate::settings::{Secret, Settings};

use super::{SimConfig, SimFollower, SimHandle, SimMpUser, Simulator};

const DEMO_OA_APPID: &str = "wxdemooa00000001";
const DEMO_MP_APPID: &str = "wxdemomp00000001";
const DEMO_OA_TOKEN: &str = "demo-callback-token";
const DEMO_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

/// Starts the demo simulator and returns the settings that point the
/// server at it. WeChat settings already given are kept (the simulator
/// accepts them); missing ones get demo values.
pub async fn start(mut settings: Settings) -> anyhow::Result<(Settings, SimHandle)> {
    let oa_appid = settings.oa_appid.get_or_insert_with(|| DEMO_OA_APPID.into()).clone();
    let mp_appid = settings.mp_appid.get_or_insert_with(|| DEMO_MP_APPID.into()).clone();
    let oa_secret = settings.oa_secret.get_or_insert_with(|| Secret::new("demo-oa-secret")).expose().to_string();
    let mp_secret = settings.mp_secret.get_or_insert_with(|| Secret::new("demo-mp-secret")).expose().to_string();
    settings.oa_token.get_or_insert_with(|| Secret::new(DEMO_OA_TOKEN));
    settings.oa_aes_key.get_or_insert_with(|| Secret::new(DEMO_AES_KEY));
    let config =
        SimConfig { oa_appid, oa_secret, mp_appid, mp_secret, followers: followers(), mp_users: mp_users(), ..SimConfig::default() };
    let sim = Simulator::start(config).await.map_err(|e| anyhow::anyhow!("cannot start the demo WeChat simulator: {e}"))?;
    settings.wechat_api_base = sim.base_url();
    tracing::warn!(
        simulator = %sim.base_url(),
        "DEMO MODE: WeChat is SIMULATED; nothing reaches real users. Log in with codes demo-code-1..demo-code-5"
    );
    Ok((settings, sim))
}

fn followers() -> Vec<SimFollower> {
    vec![
        SimFollower::new("oDemoFollower01").with_unionid("uDemoUnion01"),
        SimFollower::new("oDemoFollower02").with_unionid("uDemoUnion02"),
        SimFollower::new("oDemoFollower03").with_unionid("uDemoUnion03"),
        SimFollower::new("oDemoFollower04"),
        SimFollower::new("oDemoFollower05"),
        SimFollower::new("oDemoFollower06").with_unionid("uDemoUnion06").unsubscribed(),
    ]
}

fn mp_users() -> Vec<SimMpUser> {
    vec![
        SimMpUser::new("oDemoMpUser01", Some("uDemoUnion01"), &["demo-code-1"]),
        SimMpUser::new("oDemoMpUser02", Some("uDemoUnion02"), &["demo-code-2"]),
        SimMpUser::new("oDemoMpUser03", Some("uDemoUnion06"), &["demo-code-3"]),
        SimMpUser::new("oDemoMpUser04", Some("uDemoUnion04"), &["demo-code-4"]),
        SimMpUser::new("oDemoMpUser05", None, &["demo-code-5"]),
    ]
}
