//! `wxnotify templates sync`: one template-library sync from the command line.

use std::sync::Arc;

use crate::auth::Jwt;
use crate::services::Services;
use crate::settings::{Secret, Settings};
use crate::wechat::WechatClient;

/// Connects, migrates, syncs once and prints the report.
pub async fn sync(settings: Settings) -> anyhow::Result<()> {
    let db = crate::db::connect(&settings).await?;
    crate::db::migrate(&db).await?;
    let settings = Arc::new(settings);
    let wechat = WechatClient::new(&settings, db.clone()).map_err(|e| anyhow::anyhow!("setting up the WeChat client failed: {e}"))?;
    // A sync mints no token; a throwaway key keeps PostgreSQL setups from
    // needing WXNOTIFY_JWT_SECRET just for this.
    let jwt = Jwt::new(&Secret::new(hex::encode(rand::random::<[u8; 32]>())));
    let services = Services::new(db.clone(), settings, wechat, jwt);
    eprintln!("reading the template lists from WeChat ...");
    let report = super::sync(&services).await;
    db.close().await.ok();
    let report = report.map_err(|e| anyhow::anyhow!("the template sync failed: {e}"))?;
    println!("listed   {}", report.listed);
    println!("added    {}", report.added);
    println!("updated  {}", report.updated);
    println!("removed  {}", report.removed);
    for skipped in &report.skipped {
        println!("skipped  {skipped}");
    }
    Ok(())
}
