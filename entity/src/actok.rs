//! The access-token cache: one row per appid, shared by every server process.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "actok", comment = "The WeChat access-token cache: one row per appid, shared by every server process. Admin only.")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(unique)]
    pub appid: String,
    #[sea_orm(column_type = "Text")]
    pub tok: String,
    pub expiredtime: DateTimeUtc,
}

/// What each column means; the GraphQL schema shows these.
pub const DOCS: &[(&str, &str)] = &[
    ("appid", "The appid the token belongs to; unique."),
    ("tok", "The access token itself."),
    ("expiredtime", "When WeChat stops accepting the token."),
];

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

system_timestamps!();
