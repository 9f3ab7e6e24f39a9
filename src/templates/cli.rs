//! `wxnotify templates sync`: one template-library sync from the command line.

use crate::services::Services;
use crate::settings::Settings;

/// Connects, migrates, syncs once and prints the report.
pub async fn sync(settings: Settings) -> anyhow::Result<()> {
    let services = Services::for_command(settings).await?;
    eprintln!("reading the template lists from WeChat ...");
    let report = super::sync(&services).await;
    services.db.clone().close().await.ok();
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
