//! The GraphQL schema: the generated Zion/Hasura table surface plus the
//! operations of contract §5. Built once at start-up; `wxnotify schema`
//! prints it and `schema.graphql` must match (a test checks).

mod limits;
pub mod ops;

use std::sync::Arc;

use async_graphql::dynamic::{Object, Schema};
use entity::*;
use sea_orm::DatabaseConnection;

use crate::hasura::sql::Dialect;
use crate::hasura::{Catalog, Engine};
use crate::services::Services;
use crate::settings::{DatabaseKind, Settings};
use ops::Operations;

/// Every table of contract §3, in the order the schema lists them.
pub fn catalog() -> Catalog {
    Catalog::default()
        .register(account::Entity, account::DOCS)
        .register(point_count::Entity, point_count::DOCS)
        .register(actok::Entity, actok::DOCS)
        .register(notice::Entity, notice::DOCS)
        .register(oa_follower::Entity, oa_follower::DOCS)
        .register(push_code::Entity, push_code::DOCS)
        .register(message_template::Entity, message_template::DOCS)
        .register(delivery::Entity, delivery::DOCS)
        .register(action_flow::Entity, action_flow::DOCS)
        .register(scheduled_job::Entity, scheduled_job::DOCS)
        .register(job_run::Entity, job_run::DOCS)
}

/// The operations beyond tables, one entry per capability.
fn operations() -> Vec<Operations> {
    vec![crate::linking::operations(), crate::notify::operations(), crate::scheduler::graphql::operations()]
}

/// The schema the server runs, with its services attached.
pub fn build_schema(services: Arc<Services>) -> anyhow::Result<Schema> {
    let dialect = match services.settings.database_kind {
        DatabaseKind::Sqlite => Dialect::Sqlite,
        DatabaseKind::Postgres => Dialect::Postgres,
    };
    let settings = services.settings.clone();
    build(Some(services.db.clone()), dialect, Some(&settings), Some(services))
}

/// The SDL, without needing a database.
pub fn sdl() -> anyhow::Result<String> {
    Ok(build(None, Dialect::Sqlite, None, None)?.sdl())
}

fn build(
    db: Option<DatabaseConnection>,
    dialect: Dialect,
    settings: Option<&Settings>,
    services: Option<Arc<Services>>,
) -> anyhow::Result<Schema> {
    let mut catalog = catalog();
    catalog.max_limit = settings.map(|s| s.max_limit);
    let catalog = Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), db, dialect);
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
    builder.register(query).register(mutation).finish().map_err(|e| anyhow::anyhow!("building the GraphQL schema failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_of_every_table_is_described() {
        for table in catalog().tables() {
            assert!(!table.description.is_empty(), "{} has no comment", table.name);
            for column in &table.columns {
                assert!(!column.description.is_empty(), "{}.{} is not in its DOCS", table.name, column.name);
            }
        }
    }

    #[test]
    fn constraints_carry_postgres_names() {
        let catalog = catalog();
        let names = |t: &str| catalog.table(t).unwrap().uniques.iter().map(|u| u.name.clone()).collect::<Vec<_>>();
        assert!(names("notice").contains(&"notice_account_account_key".to_string()));
        assert!(names("account").contains(&"account_mp_openid_key".to_string()));
        assert!(names("scheduled_job").contains(&"scheduled_job_group_name_key".to_string()), "{:?}", names("scheduled_job"));
        let point_count = catalog.table("point_count").unwrap();
        assert_eq!(point_count.relation("account").unwrap().local, "account_account");
        let account = catalog.table("account").unwrap();
        assert!(account.relation("point_count").is_some() && account.relation("notice").is_some());
    }
}
