//! The outbox: one row per message, written before it is sent.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(
    table_name = "delivery",
    comment = "The outbox: one row per message, written before it is sent, so nothing is sent twice or lost."
)]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(indexed)]
    pub account_account: Option<i64>,
    pub channel: String,
    pub touser: String,
    pub template_id: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    #[sea_orm(unique)]
    pub dedupe_key: String,
    #[sea_orm(indexed)]
    pub status: String,
    pub attempts: i32,
    pub errcode: Option<i32>,
    pub errmsg: Option<String>,
    #[sea_orm(indexed)]
    pub msgid: Option<i64>,
    pub sent_at: Option<DateTimeUtc>,
    pub claimed_at: Option<DateTimeUtc>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    pub notes: Option<String>,
}

/// What each column means; the GraphQL schema shows these.
pub const DOCS: &[(&str, &str)] = &[
    ("account_account", "The account the message is for, when known."),
    ("channel", "OA_TEMPLATE, OA_SUBSCRIBE, MP_SUBSCRIBE or MP_FORM."),
    ("touser", "The openid the message goes to."),
    ("template_id", "WeChat's template id."),
    ("payload", "The request body sent to WeChat."),
    ("dedupe_key", "Unique: a second send with the same key is impossible."),
    (
        "status",
        "PENDING (waiting), SENDING (claimed by a sender, or its outcome unknown and due to be re-sent with the same client_msg_id), \
         SENT, IN_REVIEW (WeChat holds it for review, errcode 40252; its report settles it), FAILED (errmsg \"outcome unknown ...\" when WeChat may have it and it cannot be re-sent safely) or SKIPPED.",
    ),
    ("attempts", "How many times sending was tried."),
    ("errcode", "WeChat's errcode of the last failure."),
    ("errmsg", "WeChat's errmsg of the last failure, or why the message was skipped."),
    ("msgid", "WeChat's id of the sent message; TEMPLATESENDJOBFINISH names it."),
    ("sent_at", "When WeChat accepted the message."),
    ("claimed_at", "When the message was first handed to WeChat: its client_msg_id re-send window starts here."),
    ("lease_owner", "The server process sending the message right now, if any."),
    ("lease_until", "Until when that process's claim holds without a heartbeat; then any server settles the row."),
    ("notes", "What wxnotify changed before sending, e.g. values cut to their keyword's limit (and how)."),
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
