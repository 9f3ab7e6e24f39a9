//! SQL for the table surface: one statement per query root field, with the
//! database building the response JSON as text (or, for a root list on
//! SQLite, each row's values as JSON text that the server frames, see
//! `select`). Nested lists and aggregates
//! are correlated subqueries inside that statement, or for aggregates over
//! an array relation one grouped join (see `select`), so the number of
//! statements never grows with the rows returned.
//!
//! [`Writer`] writes into the crate's one statement builder,
//! [`crate::db::sql::Sql`] (which numbers the parameters), and adds what the
//! engine needs on top: aliases, quoted identifiers, JSON built as text.
//! Identifiers come from the catalog and JSON keys from GraphQL names, both
//! of which are restricted to `[_A-Za-z0-9]`; every value from a request is a
//! bound parameter.

mod filter;
mod jsonb_sqlite;
mod mutate;
mod select;

pub use mutate::{InsertRequest, MutationOutput, UpdateRequest};
pub use select::{RootOutput, RowFrame, compile_framed_list, compile_select};

use std::fmt::Write as _;

use super::error::EngineError;
use super::ir::BoolExp;
use super::meta::{Catalog, Scalar, Table};
use super::permission::{Operation, Permissions};
use super::statistics::TableSizes;
use crate::db::DatabaseKind;
use crate::db::sql::Sql;

/// Writes one statement (an [`Sql`]) for the table surface.
pub struct Writer<'a> {
    sql: Sql,
    pub kind: DatabaseKind,
    pub catalog: &'a Catalog,
    pub perms: &'a Permissions,
    aliases: usize,
    /// The grouped join of the rows whose select list is being written, if
    /// their aggregates over one array relation read it (`select`).
    grouped: Option<select::GroupedJoin>,
    /// The tables' sizes, for how a filter through an array relation is
    /// written on SQLite (`filter`); none known when not given.
    sizes: Option<std::sync::Arc<TableSizes>>,
}

impl<'a> Writer<'a> {
    pub fn new(kind: DatabaseKind, catalog: &'a Catalog, perms: &'a Permissions) -> Self {
        Writer { sql: Sql::new(String::with_capacity(1024)), kind, catalog, perms, aliases: 0, grouped: None, sizes: None }
    }

    /// The same writer, choosing plans by `sizes` (see [`TableSizes`]).
    pub fn with_sizes(mut self, sizes: std::sync::Arc<TableSizes>) -> Self {
        self.sizes = Some(sizes);
        self
    }

    /// A fresh writer for another statement of the same request.
    pub fn sibling(&self) -> Writer<'a> {
        Writer { sizes: self.sizes.clone(), ..Writer::new(self.kind, self.catalog, self.perms) }
    }

    /// The statement, ready to run.
    pub fn finish(self) -> Sql {
        self.sql
    }

    /// Appends `text`; a literal concatenated to a literal the statement
    /// ends with is merged into it (`'a' || 'b'` is written `'ab'`), so the
    /// database concatenates once per value rather than once per piece of
    /// JSON punctuation. No literal of ours contains `'` or `' || '`, and
    /// `||` is associative, so the result is the same text.
    pub fn push(&mut self, text: &str) {
        let statement = &mut self.sql.text;
        // `... 'a' || ` + `'b' ...`
        if let Some(rest) = text.strip_prefix('\'')
            && statement.ends_with(LITERAL_THEN)
        {
            statement.truncate(statement.len() - LITERAL_THEN.len());
            statement.push_str(rest);
            return;
        }
        // `... 'a'` + ` || 'b' ...`
        if let Some(rest) = text.strip_prefix(THEN_LITERAL)
            && statement.ends_with('\'')
        {
            statement.pop();
            statement.push_str(rest);
            return;
        }
        statement.push_str(text);
    }

    /// Binds `value` where the text stands.
    pub fn param(&mut self, value: impl Into<sea_orm::Value>) {
        self.sql.bind(value);
    }

    /// A fresh table alias, `t1`, `t2`, ...
    pub fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("t{}", self.aliases)
    }

    /// `alias."column"`.
    pub fn column(&mut self, alias: &str, column: &str) {
        let _ = write!(self.sql, "{alias}.\"{column}\"");
    }

    pub fn table_name(&mut self, table: &str) {
        let _ = write!(self.sql, "\"{table}\"");
    }

    /// A JSON object key; keys are GraphQL names, never request data.
    pub fn key(&mut self, key: &str) {
        debug_assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{key}");
        self.push(&format!("'\"{key}\":' || "));
    }

    /// `"key":"TypeName"`; type names are GraphQL names too.
    pub fn typename(&mut self, key: &str, name: &str) {
        self.key(key);
        self.push(&format!("'\"{name}\"'"));
    }

    /// A JSON object whose entries `each` writes (`key` then value), as text.
    ///
    /// The response JSON is concatenated text rather than `json_build_object`
    /// / `json_object`: PostgreSQL resolves every argument's type on every
    /// call of the latter, which doubled the cost of a large query, and
    /// SQLite would re-parse each nested object.
    pub fn object<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T) -> Result<(), EngineError>) -> Result<(), EngineError> {
        if items.is_empty() {
            self.push("'{}'");
            return Ok(());
        }
        // No parentheses: `||` is associative, and they would keep
        // [`Writer::push`] from merging this object's literals with its
        // neighbours'.
        self.push("'{' || ");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.push(" || ',' || ");
            }
            each(self, item)?;
        }
        self.push(" || '}'");
        Ok(())
    }

    /// A column (or an aggregate of one) as JSON text of its scalar; never
    /// NULL (SQL NULL is `null`), so it can be concatenated.
    pub fn json_value(&mut self, expr: &str, scalar: Scalar) {
        let text = self.json_template(scalar).replace(EXPR, expr);
        self.push(&text);
    }

    /// [`Writer::json_value`] of an expression that `write` writes (so it
    /// may bind parameters); only for scalars that name it once, which is
    /// every scalar but `Boolean`.
    pub fn json_value_written(
        &mut self,
        scalar: Scalar,
        write: impl FnOnce(&mut Self) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let template = self.json_template(scalar);
        let Some((before, after)) = template.split_once(EXPR).filter(|(_, after)| !after.contains(EXPR)) else {
            return Err(EngineError::Database(sea_orm::DbErr::Custom(format!("no single-use JSON text for {scalar:?}"))));
        };
        let (before, after) = (before.to_string(), after.to_string());
        self.push(&before);
        write(self)?;
        self.push(&after);
        Ok(())
    }

    /// The JSON text of a value of `scalar`, with [`EXPR`] where the value goes.
    fn json_template(&self, scalar: Scalar) -> String {
        let expr = EXPR;
        match (self.kind, scalar) {
            (DatabaseKind::Postgres, Scalar::Bigint | Scalar::Int | Scalar::Jsonb) => format!("coalesce(({expr})::text, 'null')"),
            (DatabaseKind::Postgres, Scalar::String | Scalar::Float) => format!("coalesce(to_json({expr})::text, 'null')"),
            (DatabaseKind::Postgres, Scalar::Timestamptz) => {
                format!("coalesce('\"' || to_char(({expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') || '\"', 'null')")
            }
            (_, Scalar::Boolean) => {
                format!("(CASE WHEN ({expr}) IS NULL THEN 'null' WHEN ({expr}) THEN 'true' ELSE 'false' END)")
            }
            // Stored JSON text is already JSON.
            (DatabaseKind::Sqlite, Scalar::Jsonb) => format!("coalesce({expr}, 'null')"),
            (DatabaseKind::Sqlite, _) => format!("json_quote({expr})"),
        }
    }

    /// Opens a JSON-valued subquery embedded in an object (`null` when it
    /// finds no row).
    pub fn open_embedded(&mut self) {
        self.push("coalesce((");
    }

    pub fn close_embedded(&mut self) {
        self.push("), 'null')");
    }

    /// A JSON array of the texts `expr`, in `order`; `[]` for no rows.
    pub fn json_array_agg(&mut self, expr: &str, order: &str) {
        let function = match self.kind {
            DatabaseKind::Postgres => "string_agg",
            DatabaseKind::Sqlite => "group_concat",
        };
        self.push(&format!("('[' || coalesce({function}({expr}, ',' ORDER BY {order}), '') || ']')"));
    }

    /// The row filter the caller's role puts on `table`, if any.
    pub fn permission(&self, table: &Table, operation: Operation) -> Result<Option<BoolExp>, EngineError> {
        self.perms.filter(table, operation)
    }

    pub fn table(&self, name: &str) -> Result<&'a Table, EngineError> {
        self.catalog.require(name)
    }

    /// `WHERE`-clause conditions joined by `AND`; `(1=1)` when there are none.
    pub fn conditions(&mut self, table: &Table, alias: &str, link: Option<Link<'_>>, filters: &[&BoolExp]) -> Result<(), EngineError> {
        let mut first = true;
        let mut and = |w: &mut Self| {
            if !std::mem::take(&mut first) {
                w.push(" AND ");
            }
        };
        if let Some(link) = link {
            and(self);
            self.column(alias, &link.relation.remote);
            self.push(" = ");
            self.column(link.parent_alias, &link.relation.local);
        }
        for filter in filters {
            if matches!(filter, BoolExp::True) {
                continue;
            }
            and(self);
            self.bool_exp(table, alias, filter)?;
        }
        if first {
            self.push("(1=1)");
        }
        Ok(())
    }
}

/// A literal's end, concatenated to what follows.
const LITERAL_THEN: &str = "' || ";
/// A concatenation of a literal, which starts after this.
const THEN_LITERAL: &str = " || '";

/// Where [`Writer::json_template`] puts the value: a character no SQL text
/// of ours contains.
const EXPR: &str = "\u{0}";

/// How a related table's rows are tied to the parent row.
#[derive(Clone, Copy)]
pub struct Link<'l> {
    pub parent_alias: &'l str,
    pub relation: &'l super::meta::Relation,
}
