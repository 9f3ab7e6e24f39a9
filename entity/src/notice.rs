//! The real-time notice throttle: one row per account, the window's end.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notice", comment = "The real-time notice throttle: one row per account holding the end of its quiet window.")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(unique)]
    pub account_account: i64,
    pub expire_time: DateTimeUtc,
}

/// What each column means; the GraphQL schema shows these.
pub const DOCS: &[(&str, &str)] = &[
    ("account_account", "The account throttled; unique (notice_account_account_key)."),
    ("expire_time", "No real-time notice is sent to the account before this instant."),
];

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::account::Entity",
        from = "Column::AccountAccount",
        to = "super::account::Column::Id",
        on_delete = "Cascade"
    )]
    Account,
}

impl Related<super::account::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Account.def()
    }
}

system_timestamps!();
