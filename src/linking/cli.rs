//! `wxnotify sync`: one follower sync from the command line, with a
//! progress bar on the terminal and the report printed at the end.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use super::sync::{ProgressFn, SyncPhase, sync_followers};
use crate::services::Services;
use crate::settings::Settings;

/// Connects, migrates, syncs once and prints the report.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let services = Services::for_command(settings).await?;
    services.wechat.require(crate::wechat::App::Oa).map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = services.db.clone();

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
