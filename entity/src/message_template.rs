//! A named message with `{{placeholders}}`, rendered per account when sent.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "message_template")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(unique)]
    pub name: String,
    /// OA_TEMPLATE, MP_SUBSCRIBE or MP_FORM.
    pub channel: String,
    pub template_id: String,
    pub page: Option<String>,
    pub url: Option<String>,
    /// WeChat's `data` object, e.g. `{"thing1":{"value":"{{summary}}"}}`.
    #[sea_orm(column_type = "JsonBinary")]
    pub data: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

system_timestamps!();
