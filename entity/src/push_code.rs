//! A send credit: a form id, a prepay id or a subscription (mini-program,
//! or service-account subscription notice).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(
    table_name = "push_code",
    comment = "A send credit: a form id, a prepay id or a subscription (mini-program or service account); each is used once."
)]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(indexed)]
    pub account_account: i64,
    #[sea_orm(unique_key = "push_code_kind_code_key")]
    pub kind: String,
    #[sea_orm(unique_key = "push_code_kind_code_key")]
    pub code: Option<String>,
    pub template_id: Option<String>,
    pub expire_at: Option<DateTimeUtc>,
    pub openid: Option<String>,
    pub source: Option<String>,
}

/// What each column means; the GraphQL schema shows these.
pub const DOCS: &[(&str, &str)] = &[
    ("account_account", "The account the credit belongs to."),
    ("kind", "FORM_ID, PREPAY_ID, SUBSCRIBE (a mini-program subscription) or OA_SUBSCRIBE (a service-account subscription notice)."),
    ("code", "The form id or prepay id; null for subscription credits. Unique per kind (push_code_kind_code_key)."),
    ("template_id", "For subscription credits: the template the user accepted."),
    ("expire_at", "The credit is worthless after this instant (form ids live 7 days)."),
    ("openid", "The openid WeChat reported the credit for; an OA_SUBSCRIBE notice is sent to it, follower or not."),
    (
        "source",
        "Who reported the credit: CLIENT (grantSubscription), WECHAT (WeChat's subscribe_msg_popup_event) or BOTH (the two reports of one acceptance, counted once).",
    ),
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
