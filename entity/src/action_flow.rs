//! A stored GraphQL operation, versioned; scheduled jobs run it as admin.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(
    table_name = "action_flow",
    comment = "A stored GraphQL operation, versioned; runActionFlow and ACTION_FLOW jobs run it as admin."
)]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(unique_key = "action_flow_uuid_version_id_key")]
    pub uuid: String,
    #[sea_orm(unique_key = "action_flow_uuid_version_id_key")]
    pub version_id: i32,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub document: String,
}

/// What each column means; the GraphQL schema shows these.
pub const DOCS: &[(&str, &str)] = &[
    ("uuid", "The flow's identity across versions."),
    ("version_id", "The version; (uuid, version_id) is unique."),
    ("name", "A human name."),
    ("document", "The GraphQL document to run."),
];

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

system_timestamps!();
