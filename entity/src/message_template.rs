//! A named message with `{{placeholders}}`, rendered per account when sent.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(
    table_name = "message_template",
    comment = "A named message whose data values hold {{placeholders}}, rendered per account when sent."
)]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(unique)]
    pub name: String,
    pub channel: String,
    pub template_id: String,
    pub page: Option<String>,
    pub url: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub data: Json,
}

/// What each column means; the GraphQL schema shows these.
pub const DOCS: &[(&str, &str)] = &[
    ("name", "The name senders refer to (digest, realtime_single, ...); unique."),
    ("channel", "OA_TEMPLATE, OA_SUBSCRIBE, MP_SUBSCRIBE or MP_FORM."),
    ("template_id", "WeChat's template id."),
    ("page", "The mini-program page the message opens."),
    ("url", "The web page the message opens, when no mini-program page is given."),
    ("data", "WeChat's data object, e.g. {\"thing1\":{\"value\":\"{{summary}}\"}}."),
];

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

system_timestamps!();
