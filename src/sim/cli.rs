//! `wxnotify sim`: the simulator as a program of its own, for benchmarks and
//! for trying a server build against it by hand.

use std::net::SocketAddr;
use std::time::Duration;

use crate::settings::Settings;

use super::{SimConfig, SimFollower, Simulator};

/// What `wxnotify sim` was asked for.
pub struct SimOptions {
    pub listen: SocketAddr,
    /// Generated followers to seed (see [`SimFollower::generated`]).
    pub followers: usize,
    pub latency: Duration,
    /// Daily limits replacing the defaults, per API path.
    pub daily_quotas: Vec<(String, u64)>,
}

/// `PATH=N`: a daily limit for `--daily-quota`.
pub fn parse_quota(text: &str) -> Result<(String, u64), String> {
    let (path, limit) =
        text.split_once('=').ok_or_else(|| format!("{text:?}: write PATH=N, e.g. /cgi-bin/message/template/send=1000000"))?;
    if !path.starts_with('/') {
        return Err(format!("{path:?}: an API path starts with '/', e.g. /cgi-bin/message/template/send"));
    }
    let limit = limit.trim().parse().map_err(|_| format!("{limit:?}: the daily limit must be a whole number"))?;
    Ok((path.to_string(), limit))
}

/// Serves until Ctrl-C. Appids and secrets come from the settings when
/// set, so a server with the same settings talks to it unchanged.
pub async fn run(settings: &Settings, options: SimOptions) -> anyhow::Result<()> {
    let defaults = SimConfig::default();
    let mut config = SimConfig {
        listen: options.listen,
        oa_appid: settings.oa_appid.clone().unwrap_or(defaults.oa_appid.clone()),
        oa_secret: settings.oa_secret.as_ref().map_or(defaults.oa_secret.clone(), |s| s.expose().to_string()),
        mp_appid: settings.mp_appid.clone().unwrap_or(defaults.mp_appid.clone()),
        mp_secret: settings.mp_secret.as_ref().map_or(defaults.mp_secret.clone(), |s| s.expose().to_string()),
        latency: options.latency,
        followers: (0..options.followers).map(SimFollower::generated).collect(),
        ..defaults
    };
    config.daily_quotas.extend(options.daily_quotas);
    let (oa_appid, mp_appid) = (config.oa_appid.clone(), config.mp_appid.clone());
    let sim = Simulator::start(config).await.map_err(|e| anyhow::anyhow!("--listen: cannot bind {}: {e}", options.listen))?;
    eprintln!("WeChat simulator at {} with {} followers", sim.base_url(), options.followers);
    eprintln!("  point a server at it: WXNOTIFY_WECHAT_API_BASE={}", sim.base_url());
    eprintln!("  service account {oa_appid}, mini-program {mp_appid} (secrets as configured, or the simulator's defaults)");
    eprintln!(
        "  steer it: GET /_sim/calls, GET /_sim/sent, POST /_sim/faults {{\"path\",\"errcode\",\"times\"}}, /_sim/latency {{\"ms\"}}, /_sim/followers [..], /_sim/invalidate {{\"appid\"}}, /_sim/templates [..], /_sim/review-share {{\"share\"}}, GET /_sim/blocked"
    );
    crate::shutdown_signal().await;
    Ok(())
}
