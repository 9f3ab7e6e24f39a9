use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut t = table("oa_follower");
        t.col(col("openid").string().not_null())
            .col(col("unionid").string())
            .col(col("subscribed").boolean().not_null().default(true))
            .col(col("subscribe_time").timestamp_with_time_zone());
        create_table(manager, t, vec![unique("oa_follower", &["openid"]), index("oa_follower", "unionid")]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "oa_follower").await
    }
}
