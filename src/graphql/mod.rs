//! The GraphQL schema: the generated Zion/Hasura table surface plus the
//! operations of contract §5. Built once at start-up; `wxnotify schema`
//! prints it and `schema.graphql` must match (a test checks).

use std::sync::Arc;

use async_graphql::dynamic::{Field, FieldFuture, Object, Schema, TypeRef};
use sea_orm::DatabaseConnection;

use crate::settings::Settings;

/// What resolvers need at run time.
#[derive(Clone)]
pub struct SchemaContext {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
}

pub fn build_schema(_cx: SchemaContext) -> anyhow::Result<Schema> {
    schema_builder().map_err(|e| anyhow::anyhow!("building the GraphQL schema failed: {e}"))
}

/// The SDL, without needing a database.
pub fn sdl() -> anyhow::Result<String> {
    Ok(schema_builder()?.sdl())
}

fn schema_builder() -> anyhow::Result<Schema> {
    let query = Object::new("query_root").field(Field::new("version", TypeRef::named_nn(TypeRef::STRING), |_| {
        FieldFuture::from_value(Some(env!("CARGO_PKG_VERSION").into()))
    }));
    Ok(Schema::build("query_root", None, None).register(query).finish()?)
}
