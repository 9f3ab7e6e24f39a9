//! The indexes entities declare in their `INDEXES` (see `entity::index`),
//! each in the form its database can use. Idempotent (`IF NOT EXISTS`), so a
//! later migration that runs [`create_declared`] again adds only what a
//! declaration gained since.
use ::entity::index::{Index as Declared, Key};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_declared(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (_, indexes) in ::entity::index::declared() {
            for index in indexes {
                manager.get_connection().execute_unprepared(&format!("DROP INDEX IF EXISTS \"{}\"", index.name)).await?;
            }
        }
        Ok(())
    }
}

/// Creates every declared index that does not exist yet.
pub async fn create_declared(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    for (table, indexes) in ::entity::index::declared() {
        for index in indexes {
            if let Some(sql) = create_sql(backend, table, index) {
                manager.get_connection().execute_unprepared(&sql).await?;
            }
        }
    }
    Ok(())
}

/// `CREATE INDEX` for one declaration, or `None` where the database serves
/// the same filters another way. Names, tables, columns and path keys are
/// identifiers from the entity crate (its tests check), never request data.
pub fn create_sql(backend: DbBackend, table: &str, index: &Declared) -> Option<String> {
    let name = index.name;
    let over = match (index.key, backend) {
        (Key::Columns(columns), _) => {
            let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
            format!("({})", quoted.join(", "))
        }
        // jsonb_path_ops: smaller and faster than the default opclass for
        // `@>`, the only operator the filters need it for.
        (Key::JsonContainment(column), DbBackend::Postgres) => format!("USING gin (\"{column}\" jsonb_path_ops) WITH (fastupdate = off)"),
        // The expression must be the one the filter writer emits, or SQLite's
        // planner will not match it.
        (Key::JsonPath { column, path }, DbBackend::Sqlite) => format!("(json_extract(\"{column}\", '{}'))", Key::sqlite_path(path)),
        (Key::JsonContainment(_) | Key::JsonPath { .. }, _) => return None,
    };
    Some(format!("CREATE INDEX IF NOT EXISTS \"{name}\" ON \"{table}\" {over}"))
}
