//! A follower of the service account, as WeChat lists it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oa_follower")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The follower's openid on the service account.
    #[sea_orm(unique)]
    pub openid: String,
    #[sea_orm(indexed)]
    pub unionid: Option<String>,
    /// False once the follower has left (unsubscribe event or a sync that no
    /// longer lists them).
    pub subscribed: bool,
    pub subscribe_time: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

system_timestamps!();
