//! The outbox: one row per message, written before it is sent.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "delivery")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(indexed)]
    pub account_account: Option<i64>,
    /// OA_TEMPLATE, MP_SUBSCRIBE or MP_FORM.
    pub channel: String,
    pub touser: String,
    pub template_id: String,
    /// The request body sent to WeChat.
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    /// Sending twice with one key is impossible: the row exists once.
    #[sea_orm(unique)]
    pub dedupe_key: String,
    /// PENDING, SENT, FAILED or SKIPPED.
    pub status: String,
    pub attempts: i32,
    pub errcode: Option<i32>,
    pub errmsg: Option<String>,
    /// WeChat's id for the sent message; TEMPLATESENDJOBFINISH names it.
    #[sea_orm(indexed)]
    pub msgid: Option<i64>,
    pub sent_at: Option<DateTimeUtc>,
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
