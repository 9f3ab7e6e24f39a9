//! The GraphQL schema: the generated Zion/Hasura table surface (the tables of
//! [`crate::tables`]) plus the operations beyond tables that each capability
//! contributes. Built once at start-up; `wxnotify schema` prints it and
//! `schema.graphql` must match what the server serves (a test checks).

pub mod execute;
mod limits;
pub mod ops;

use std::sync::Arc;

use async_graphql::dynamic::{Object, Schema};
use sea_orm::DatabaseConnection;

use crate::db::DatabaseKind;
use crate::hasura::Engine;
use crate::services::Services;
use crate::settings::Settings;
use ops::Operations;

/// The operations beyond tables, one entry per capability.
fn operations() -> Vec<Operations> {
    vec![crate::linking::operations(), crate::notify::operations(), crate::templates::operations(), crate::scheduler::graphql::operations()]
}

/// The schema the server runs, with its services attached, and the table
/// engine it runs (whose statistics the server refreshes).
pub fn build_schema(services: Arc<Services>) -> anyhow::Result<(Schema, Engine)> {
    let settings = services.settings.clone();
    build(Some(services.db.clone()), settings.database_kind, Some(&settings), Some(services))
}

/// The SDL, without needing a database.
pub fn sdl() -> anyhow::Result<String> {
    Ok(build(None, DatabaseKind::Sqlite, None, None)?.0.sdl())
}

fn build(
    db: Option<DatabaseConnection>,
    kind: DatabaseKind,
    settings: Option<&Settings>,
    services: Option<Arc<Services>>,
) -> anyhow::Result<(Schema, Engine)> {
    let mut catalog = crate::tables::catalog();
    catalog.max_limit = settings.map(|s| s.max_limit);
    catalog.aggregate_plan = settings.map(|s| s.table_aggregates).unwrap_or_default();
    catalog.json_rows = settings.map(|s| s.table_json).unwrap_or_default();
    let catalog = Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), db, kind);
    let mut builder = Schema::build("query_root", Some("mutation_root"), None);
    if let Some(settings) = settings {
        builder = builder.limit_depth(settings.max_query_depth).limit_complexity(settings.max_query_complexity).extension(limits::Limits {
            max_aliases: settings.max_query_aliases,
            max_depth: settings.max_query_depth,
            max_complexity: settings.max_query_complexity,
        });
    }
    if let Some(services) = services {
        builder = builder.data(services);
    }
    builder = builder.data(engine.clone());
    let (mut builder, mut queries, mut mutations) = crate::hasura::schema::register(builder, &catalog, &engine);
    for capability in operations() {
        builder = capability.types.into_iter().fold(builder, |b, t| b.register(t));
        queries.extend(capability.queries);
        mutations.extend(capability.mutations);
    }
    let query = queries.into_iter().fold(
        Object::new("query_root").description("The queries: every table, by list, key and aggregate, and the operations beyond tables."),
        Object::field,
    );
    let mutation = mutations.into_iter().fold(
        Object::new("mutation_root")
            .description("The mutations: insert, update and delete on every table, and the operations beyond tables."),
        Object::field,
    );
    let schema =
        builder.register(query).register(mutation).finish().map_err(|e| anyhow::anyhow!("building the GraphQL schema failed: {e}"))?;
    Ok((schema, engine))
}
