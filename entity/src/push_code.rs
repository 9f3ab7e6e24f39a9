//! A mini-program send credit: a form id, a prepay id or a subscription.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "push_code")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(indexed)]
    pub account_account: i64,
    /// FORM_ID, PREPAY_ID or SUBSCRIBE.
    pub kind: String,
    /// The form id or prepay id; empty for subscription credits.
    pub code: Option<String>,
    pub template_id: Option<String>,
    /// The credit is worthless after this instant (form ids live 7 days).
    pub expire_at: Option<DateTimeUtc>,
}

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
