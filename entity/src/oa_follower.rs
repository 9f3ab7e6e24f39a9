//! A follower of the service account, as WeChat lists it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oa_follower", comment = "A follower of the service account, as WeChat lists it.")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(unique)]
    pub openid: String,
    #[sea_orm(indexed)]
    pub unionid: Option<String>,
    pub subscribed: bool,
    pub subscribe_time: Option<DateTimeUtc>,
}

/// What each column means; the GraphQL schema shows these.
pub const DOCS: &[(&str, &str)] = &[
    ("openid", "The follower's openid on the service account; unique."),
    ("unionid", "The follower's unionid, when the accounts are bound on the Open Platform."),
    ("subscribed", "False once the follower has left (an unsubscribe event, or a sync that no longer lists them)."),
    ("subscribe_time", "When the follower last followed."),
];

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

system_timestamps!();
