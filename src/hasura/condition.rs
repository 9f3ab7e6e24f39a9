//! A `T_bool_exp` value compiled to a bare SQL condition, for server code
//! (digests) that filters rows in the same language as the table surface
//! instead of a second filter language of its own.

use async_graphql::Value;

use super::sql::Writer;
use crate::auth::Caller;
use crate::db::DatabaseKind;
use crate::db::sql::Sql;
use crate::hasura::error::EngineError;
use crate::hasura::input;
use crate::hasura::meta::Catalog;
use crate::hasura::permission::Permissions;

/// Compiles `value`, a `<table>_bool_exp`, to a condition on the rows of
/// `table` aliased `alias` (which must not look like `t1`, `t2`, ...: those
/// name the subqueries). Runs as admin; parameters are numbered from `$1`.
pub fn condition(catalog: &Catalog, kind: DatabaseKind, table: &str, alias: &str, value: &Value) -> Result<Sql, EngineError> {
    let table = catalog.require(table)?;
    let exp = input::bool_exp(catalog, table, value)?;
    let perms = Permissions::new(Caller::ADMIN);
    let mut writer = Writer::new(kind, catalog, &perms);
    writer.bool_exp(table, alias, &exp)?;
    Ok(writer.finish())
}
