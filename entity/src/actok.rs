//! The access-token cache: one row per appid, shared by every server process.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "actok")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(unique)]
    pub appid: String,
    /// The access token itself; never shown to anyone but admin.
    #[sea_orm(column_type = "Text")]
    pub tok: String,
    /// When WeChat stops accepting `tok`.
    pub expiredtime: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

system_timestamps!();
