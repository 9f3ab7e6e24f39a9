//! An unread message for an account: what digests count and notices tell.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "point_count", comment = "An unread message for an account: what digests count and real-time notices tell.")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub account_account: i64,
    pub r#type: Option<String>,
    pub sender: Option<String>,
    pub content: Option<String>,
}

/// What each column means; the GraphQL schema shows these.
pub const DOCS: &[(&str, &str)] = &[
    ("account_account", "The account the message is for."),
    ("type", "The kind of message (e.g. 聊天); digests count per type."),
    ("sender", "Who sent it; shown in a single-message notice."),
    ("content", "The message text; shown in a single-message notice."),
];

/// Every reader of this table asks per account and per type: the digest's
/// counts per type, the `notice` query's filtered aggregates, a notice's
/// newest row. One B-tree over (account, type) answers them all, grouped
/// rows arriving in order without a sort, and serves the foreign key's
/// lookups by its first column, so the table carries no other index.
pub const INDEXES: &[crate::index::Index] = {
    use crate::index::{Index, Key};
    &[Index { name: "point_count_account_account_type_idx", key: Key::Columns(&["account_account", "type"]) }]
};

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
