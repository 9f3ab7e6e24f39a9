//! `wxnotify sync`: one follower sync from the command line, with a
//! progress bar on the terminal and the report printed at the end.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use super::sync::{ProgressFn, SyncPhase, sync_followers};
use crate::auth::Jwt;
use crate::services::Services;
use crate::settings::{Secret, Settings};
use crate::wechat::WechatClient;

/// Connects, migrates, syncs once and prints the report.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let db = crate::db::connect(&settings).await?;
    crate::db::migrate(&db).await?;
    let settings = Arc::new(settings);
    let wechat = WechatClient::new(&settings, db.clone()).map_err(|e| anyhow::anyhow!("setting up the WeChat client failed: {e}"))?;
    wechat.require(crate::wechat::App::Oa).map_err(|e| anyhow::anyhow!("{e}"))?;
    // A sync mints no token; a throwaway key keeps PostgreSQL setups from
    // needing WXNOTIFY_JWT_SECRET just for this.
    let jwt = Jwt::new(&Secret::new(hex::encode(rand::random::<[u8; 32]>())));
    let services = Services::new(db.clone(), settings, wechat, jwt);

    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<22} [{bar:40}] {pos}/{len} followers ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("listing followers");
    let shown = bar.clone();
    let progress: ProgressFn = Arc::new(move |p| {
        shown.set_length(p.total.max(p.listed));
        shown.set_position(p.fetched);
        if p.phase == SyncPhase::Applying {
            shown.set_message("applying links");
        }
    });
    let report = sync_followers(&services, Some(progress)).await;
    bar.finish_and_clear();
    db.close().await.ok();
    let report = report.map_err(|e| anyhow::anyhow!("the follower sync failed: {e}"))?;
    println!("followers   {}", report.followers);
    println!("matched     {}", report.matched);
    println!("updated     {}", report.updated);
    println!("cleared     {}", report.cleared);
    println!("unmatched   {}", report.unmatched);
    println!("api_calls   {}", report.api_calls);
    println!("duration_ms {}", report.duration_ms);
    Ok(())
}
