use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut t = table("account");
        t.col(col("username").string())
            .col(col("nickname").string())
            .col(col("user_status").string())
            .col(col("mp_openid").string())
            .col(col("unionid").string())
            .col(col("oaopenid").string())
            .col(col("oauth2_user_info_map").json_binary());
        create_table(manager, t, vec![unique("account", &["mp_openid"]), index("account", "unionid"), index("account", "oaopenid")]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "account").await
    }
}
