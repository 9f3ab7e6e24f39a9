//! The account's templates as WeChat lists them: what a message may fill.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(
    table_name = "wechat_template",
    comment = "The templates WeChat lists for the account (syncTemplates): their keywords and types, so messages are checked before they are sent."
)]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(unique)]
    pub template_id: String,
    pub channel: String,
    pub kind: String,
    pub title: String,
    #[sea_orm(column_type = "Text")]
    pub content: String,
    #[sea_orm(column_type = "Text")]
    pub example: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub keywords: Json,
    pub synced_at: DateTimeUtc,
    pub removed_at: Option<DateTimeUtc>,
}

/// What each column means; the GraphQL schema shows these.
pub const DOCS: &[(&str, &str)] = &[
    ("template_id", "WeChat's template id; unique."),
    ("channel", "Whose library it is in: OA_TEMPLATE (template messages), OA_SUBSCRIBE or MP_SUBSCRIBE (subscription messages)."),
    (
        "kind",
        "LEGACY (keyword1..., first, remark: WeChat cuts overlong values) or CATEGORY (typed keywords: WeChat refuses a value that breaks its type's rule).",
    ),
    ("title", "The template's title."),
    ("content", "The template's content with its {{key.DATA}} placeholders, one line each."),
    ("example", "WeChat's example of a filled message."),
    ("keywords", "The placeholders in order, each {\"key\": \"thing1\", \"type\": \"thing\"} (type null for legacy keys)."),
    ("synced_at", "When a sync last saw it in WeChat's list."),
    ("removed_at", "When a sync found it gone from WeChat's list; null while it exists."),
];

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

system_timestamps!();
