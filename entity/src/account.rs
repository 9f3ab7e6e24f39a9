//! A mini-program user, linked to a service-account follower by unionid.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account", comment = "A mini-program user, linked to a service-account follower by unionid.")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub username: Option<String>,
    pub nickname: Option<String>,
    pub user_status: Option<String>,
    #[sea_orm(unique)]
    pub mp_openid: Option<String>,
    #[sea_orm(indexed)]
    pub unionid: Option<String>,
    #[sea_orm(indexed)]
    pub oaopenid: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub oauth2_user_info_map: Option<Json>,
}

/// What each column means; the GraphQL schema shows these.
pub const DOCS: &[(&str, &str)] = &[
    ("username", "The user's login name in the mini-program."),
    ("nickname", "Display name."),
    ("user_status", "Application-defined status (e.g. 经纪人, 新人); digests can filter on it."),
    ("mp_openid", "The openid WeChat gives this user in the mini-program; unique."),
    ("unionid", "The user's unionid across the Open Platform account; links the mini-program and the service account."),
    ("oaopenid", "The same user's openid on the service account, set while they follow it; null when they do not."),
    ("oauth2_user_info_map", "Login data as Zion stores it: {\"WECHAT\":{\"openId\":..,\"unionId\":..}}."),
];

/// The login map is what the seed's follower sync filters on
/// (`oauth2_user_info_map: {_contains: {WECHAT: {unionId}}}`), once per
/// follower, so it must not cost a scan of every account.
pub const INDEXES: &[crate::index::Index] = {
    use crate::index::{Index, Key};
    &[
        Index { name: "account_oauth2_user_info_map_idx", key: Key::JsonContainment("oauth2_user_info_map") },
        Index {
            name: "account_oauth2_user_info_map_unionid_idx",
            key: Key::JsonPath { column: "oauth2_user_info_map", path: &["WECHAT", "unionId"] },
        },
        Index {
            name: "account_oauth2_user_info_map_openid_idx",
            key: Key::JsonPath { column: "oauth2_user_info_map", path: &["WECHAT", "openId"] },
        },
    ]
};

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::point_count::Entity")]
    PointCount,
    #[sea_orm(has_one = "super::notice::Entity")]
    Notice,
    #[sea_orm(has_many = "super::push_code::Entity")]
    PushCode,
    #[sea_orm(has_many = "super::delivery::Entity")]
    Delivery,
}

impl Related<super::point_count::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PointCount.def()
    }
}
impl Related<super::notice::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Notice.def()
    }
}
impl Related<super::push_code::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PushCode.def()
    }
}
impl Related<super::delivery::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Delivery.def()
    }
}

system_timestamps!();
