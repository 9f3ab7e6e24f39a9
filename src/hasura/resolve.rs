//! Root fields and their resolvers: parse the field, compile it, run it, and
//! hand the JSON the database built to async-graphql, whose nested fields
//! then only read from it (by response key, so aliases work).

use std::sync::Arc;

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, ResolverContext, TypeRef};
use async_graphql::{Name, SelectionField, Value};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};

use super::error::{EngineError, invalid};
use super::input::{self, as_list, column_names, sql_value};
use super::ir::{BoolExp, FieldSel, MutationPart, OnConflict};
use super::meta::{Catalog, Scalar, Table};
use super::permission::Permissions;
use super::sql::{InsertRequest, MutationOutput, RootOutput, RowFrame, UpdateRequest, Writer, compile_framed_list, compile_select};
use super::statistics::TableSizes;
use crate::auth::Caller;
use crate::db::DatabaseKind;
use crate::db::sql::Sql;

/// Runs the table surface against one database.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    catalog: Arc<Catalog>,
    /// `None` when the schema is built only to be printed.
    db: Option<DatabaseConnection>,
    kind: DatabaseKind,
    /// SQLite's table sizes as last read (see [`TableSizes`]).
    sizes: std::sync::RwLock<Arc<TableSizes>>,
}

/// The response JSON of query root fields, kept as the database wrote it so
/// the transport can splice it into the response body instead of having
/// async-graphql rebuild it field by field; Hasura answers the same way.
/// A request opts in by carrying an `Arc<Splice>` in its data; the
/// resolvers then return an empty stand-in of the right shape.
#[derive(Debug, Default)]
pub struct Splice {
    entries: std::sync::Mutex<Vec<(String, String)>>,
}

impl Splice {
    fn push(&self, key: String, json: String) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.push((key, json));
        }
    }

    /// (response key, JSON text) of every spliced root field.
    pub fn take(&self) -> Vec<(String, String)> {
        self.entries.lock().map(|mut e| std::mem::take(&mut *e)).unwrap_or_default()
    }
}

fn permissions(ctx: &ResolverContext<'_>) -> Permissions {
    Permissions::new(Caller::of(ctx.ctx))
}

fn parse_json(text: &str) -> Result<Value, EngineError> {
    serde_json::from_str(text).map_err(|e| EngineError::Database(sea_orm::DbErr::Custom(format!("the database built invalid JSON: {e}"))))
}

#[derive(Clone, Copy, Debug)]
enum Root {
    List,
    ByPk,
    Aggregate,
    Insert,
    InsertOne,
    Update,
    UpdateByPk,
    Delete,
    DeleteByPk,
}

impl Root {
    fn is_query(self) -> bool {
        matches!(self, Root::List | Root::ByPk | Root::Aggregate)
    }
}

impl Engine {
    pub fn new(catalog: Arc<Catalog>, db: Option<DatabaseConnection>, kind: DatabaseKind) -> Self {
        Engine { inner: Arc::new(Inner { catalog, db, kind, sizes: Default::default() }) }
    }

    /// Re-reads SQLite's statistics of the tables' sizes, which pick how a
    /// filter through an array relation is written (see [`TableSizes`]); the
    /// server does so at start and after each refresh of the statistics
    /// (`crate::db::optimize`). Nothing to read on PostgreSQL.
    pub async fn refresh_statistics(&self) -> Result<(), sea_orm::DbErr> {
        let Some(db) = &self.inner.db else { return Ok(()) };
        if self.inner.kind != DatabaseKind::Sqlite {
            return Ok(());
        }
        let sizes = Arc::new(TableSizes::read(db).await?);
        *self.inner.sizes.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = sizes;
        Ok(())
    }

    /// A writer for one statement, with the sizes last read.
    fn writer<'a>(&'a self, perms: &'a Permissions) -> Writer<'a> {
        let sizes = self.inner.sizes.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        Writer::new(self.inner.kind, &self.inner.catalog, perms).with_sizes(sizes)
    }

    fn db(&self) -> Result<&DatabaseConnection, EngineError> {
        self.inner.db.as_ref().ok_or_else(|| invalid("this schema was built without a database"))
    }

    async fn resolve(&self, ctx: &ResolverContext<'_>, table: &str, root: Root) -> Result<Option<Value>, EngineError> {
        if root.is_query() {
            return self.query_text(ctx, table, root).await?.map(|text| parse_json(&text)).transpose();
        }
        let catalog = &self.inner.catalog;
        let table = input::target_table(catalog, table)?;
        let perms = permissions(ctx);
        let field = ctx.ctx.field();
        let args = input::arguments(&field)?;
        let mutation = self.parse_mutation(table, root, &field, &args)?;
        self.run_mutation(&perms, table, mutation).await
    }

    /// One row of `table` shaped by the current field's selection (aliases,
    /// relations, aggregates), for operations that return a table type; read
    /// with the request's permissions, as `T_by_pk` would.
    pub async fn select_by_pk(&self, ctx: &ResolverContext<'_>, table: &str, id: i64) -> Result<Option<Value>, EngineError> {
        self.select_by_pk_as(ctx, table, id, Caller::of(ctx.ctx)).await
    }

    /// [`select_by_pk`](Self::select_by_pk) with `caller`'s permissions in
    /// place of the request's: for an operation that answers on behalf of
    /// someone its token does not name (a login shows the account it has
    /// just signed in as that account, though the request was anonymous).
    pub async fn select_by_pk_as(
        &self,
        ctx: &ResolverContext<'_>,
        table: &str,
        id: i64,
        caller: Caller,
    ) -> Result<Option<Value>, EngineError> {
        let table = input::target_table(&self.inner.catalog, table)?;
        let perms = Permissions::new(caller);
        let compiled = {
            let field = ctx.ctx.field();
            let fields = input::selection(&self.inner.catalog, table, &field)?;
            let writer = self.writer(&perms);
            compile_select(writer, table, RootOutput::ByPk { id, fields: &fields })?
        };
        self.fetch_json(self.db()?, compiled).await
    }

    /// A query root field's response JSON, as the database wrote it (or,
    /// for a framed list, the database's values framed here).
    async fn query_text(&self, ctx: &ResolverContext<'_>, table: &str, root: Root) -> Result<Option<String>, EngineError> {
        let table = input::target_table(&self.inner.catalog, table)?;
        let perms = permissions(ctx);
        let compiled = {
            let field = ctx.ctx.field();
            let args = input::arguments(&field)?;
            self.compile_query(&perms, table, root, &field, &args)?
        };
        match compiled {
            Compiled::Text(sql) => self.fetch_text(self.db()?, sql).await,
            Compiled::Framed(sql, frame) => {
                Self::trace(&sql);
                let rows = sql.all(self.db()?).await?;
                Ok(Some(frame.array(&rows)?))
            }
        }
    }

    fn compile_query(
        &self,
        perms: &Permissions,
        table: &Table,
        root: Root,
        field: &SelectionField<'_>,
        args: &[(Name, Value)],
    ) -> Result<Compiled, EngineError> {
        let catalog = &self.inner.catalog;
        let writer = self.writer(perms);
        match root {
            Root::List => {
                let list_args = input::list_args(catalog, table, args)?;
                let fields = input::selection(catalog, table, field)?;
                if catalog.json_rows.in_server() {
                    let (sql, frame) = compile_framed_list(writer, table, &list_args, &fields)?;
                    return Ok(Compiled::Framed(sql, frame));
                }
                compile_select(writer, table, RootOutput::List { args: &list_args, fields: &fields }).map(Compiled::Text)
            }
            Root::ByPk => {
                let id = argument(args, "id").and_then(input::parse_bigint).ok_or_else(|| invalid("`id` must be a bigint"))?;
                let fields = input::selection(catalog, table, field)?;
                compile_select(writer, table, RootOutput::ByPk { id, fields: &fields }).map(Compiled::Text)
            }
            _ => {
                let list_args = input::list_args(catalog, table, args)?;
                let parts = input::aggregate_parts(catalog, table, field)?;
                compile_select(writer, table, RootOutput::Aggregate { args: &list_args, parts: &parts }).map(Compiled::Text)
            }
        }
    }

    fn parse_mutation(
        &self,
        table: &Table,
        root: Root,
        field: &SelectionField<'_>,
        args: &[(Name, Value)],
    ) -> Result<Mutation, EngineError> {
        let catalog = &self.inner.catalog;
        let output = match root {
            Root::Insert | Root::Update | Root::Delete => Output::Response(response_parts(catalog, table, field)?),
            _ => Output::Row(input::selection(catalog, table, field)?),
        };
        let by_pk = |name: &str| -> Result<BoolExp, EngineError> {
            let id = match name {
                "pk_columns" => argument(args, name).and_then(|v| match v {
                    Value::Object(map) => map.get("id"),
                    _ => None,
                }),
                _ => argument(args, name),
            };
            let id = id.and_then(input::parse_bigint).ok_or_else(|| invalid(format!("`{name}` needs the id, a bigint")))?;
            Ok(BoolExp::eq("id", Scalar::Bigint, id.into()))
        };
        let change = match root {
            Root::Insert | Root::InsertOne => {
                let objects = match root {
                    Root::Insert => argument(args, "objects").map(as_list).unwrap_or_default(),
                    _ => argument(args, "object").into_iter().collect(),
                };
                let rows = objects.into_iter().map(|o| insert_row(table, o)).collect::<Result<Vec<_>, _>>()?;
                let on_conflict = argument(args, "on_conflict").map(|v| on_conflict(catalog, table, v)).transpose()?;
                Change::Insert(InsertRequest { rows, on_conflict })
            }
            Root::Update | Root::UpdateByPk => {
                let filter = match root {
                    Root::Update => where_required(catalog, table, args)?,
                    _ => by_pk("pk_columns")?,
                };
                let set = column_values(table, argument(args, "_set"), "_set")?;
                let inc = column_values(table, argument(args, "_inc"), "_inc")?;
                Change::Update(UpdateRequest { filter, set, inc })
            }
            _ => Change::Delete(match root {
                Root::Delete => where_required(catalog, table, args)?,
                _ => by_pk("id")?,
            }),
        };
        Ok(Mutation { change, output })
    }

    async fn run_mutation(&self, perms: &Permissions, table: &Table, mutation: Mutation) -> Result<Option<Value>, EngineError> {
        let kind = self.inner.kind;
        let output = mutation.output.as_sql();
        let writer = || self.writer(perms);
        let statements = match &mutation.change {
            Change::Insert(request) => writer().insert(table, request, output)?,
            Change::Update(request) => vec![writer().update(table, request, output)?],
            Change::Delete(filter) => vec![writer().delete(table, filter, output)?],
        };
        let db = self.db()?;
        let check = table.write_check.filter(|_| !matches!(mutation.change, Change::Delete(_)));
        if kind == DatabaseKind::Postgres {
            let statement = statements.into_iter().next().ok_or_else(|| invalid("nothing to run"))?;
            let Some(check) = check else { return self.fetch_json(db, statement).await };
            let txn = db.begin().await?;
            let result = self.fetch_json(&txn, statement).await?;
            if let Err(problem) = (check.0)(&txn, None).await {
                txn.rollback().await?;
                return Err(invalid(problem));
            }
            txn.commit().await?;
            return Ok(result);
        }
        // SQLite: the change, then the response from the ids, in one transaction.
        let txn = db.begin().await?;
        let mut ids = Vec::new();
        for statement in statements {
            ids.extend(self.fetch_ids(&txn, statement).await?);
        }
        if let Some(check) = check
            && let Err(problem) = (check.0)(&txn, Some(&ids)).await
        {
            txn.rollback().await?;
            return Err(invalid(problem));
        }
        let result = self.fetch_json(&txn, writer().mutation_result(table, &ids, output)?).await?;
        if matches!(mutation.change, Change::Delete(_)) && !ids.is_empty() {
            self.execute(&txn, writer().delete_ids(table, &ids)).await?;
        }
        txn.commit().await?;
        Ok(result)
    }

    /// Logs the statement about to run.
    fn trace(compiled: &Sql) {
        tracing::debug!(sql = %compiled.text, params = compiled.params.len(), "table surface statement");
    }

    /// Runs a statement that returns one JSON text (or NULL).
    async fn fetch_text(&self, db: &impl ConnectionTrait, compiled: Sql) -> Result<Option<String>, EngineError> {
        Self::trace(&compiled);
        match compiled.one(db).await? {
            Some(row) => Ok(row.try_get_by_index(0)?),
            None => Ok(None),
        }
    }

    async fn fetch_json(&self, db: &impl ConnectionTrait, compiled: Sql) -> Result<Option<Value>, EngineError> {
        self.fetch_text(db, compiled).await?.map(|text| parse_json(&text)).transpose()
    }

    async fn fetch_ids(&self, db: &impl ConnectionTrait, compiled: Sql) -> Result<Vec<i64>, EngineError> {
        Self::trace(&compiled);
        let rows = compiled.all(db).await?;
        rows.iter().map(|row| row.try_get_by_index::<i64>(0).map_err(EngineError::from)).collect()
    }

    async fn execute(&self, db: &impl ConnectionTrait, compiled: Sql) -> Result<(), EngineError> {
        Self::trace(&compiled);
        compiled.execute(db).await?;
        Ok(())
    }
}

/// A query root field's statement.
enum Compiled {
    /// Returns the response JSON as one text (or NULL).
    Text(Sql),
    /// Returns a list's rows, one JSON value per column, for the frame.
    Framed(Sql, RowFrame),
}

struct Mutation {
    change: Change,
    output: Output,
}

enum Change {
    Insert(InsertRequest),
    Update(UpdateRequest),
    Delete(BoolExp),
}

enum Output {
    Response(Vec<MutationPart>),
    Row(Vec<FieldSel>),
}

impl Output {
    fn as_sql(&self) -> MutationOutput<'_> {
        match self {
            Output::Response(parts) => MutationOutput::Response(parts),
            Output::Row(fields) => MutationOutput::Row(fields),
        }
    }
}

fn argument<'a>(args: &'a [(Name, Value)], name: &str) -> Option<&'a Value> {
    args.iter().find(|(n, _)| n.as_str() == name).map(|(_, v)| v).filter(|v| !matches!(v, Value::Null))
}

/// `where` of `update_T` / `delete_T`: required, and never null.
fn where_required(catalog: &Catalog, table: &Table, args: &[(Name, Value)]) -> Result<BoolExp, EngineError> {
    let value = argument(args, "where").ok_or_else(|| invalid("`where` is required; use {} to match every row"))?;
    input::bool_exp(catalog, table, value)
}

fn response_parts(catalog: &Catalog, table: &Table, field: &SelectionField<'_>) -> Result<Vec<MutationPart>, EngineError> {
    let mut parts = Vec::new();
    for child in field.selection_set() {
        let key = child.alias().unwrap_or(child.name()).to_string();
        match child.name() {
            "affected_rows" => parts.push(MutationPart::AffectedRows { key }),
            "returning" => parts.push(MutationPart::Returning { key, fields: input::selection(catalog, table, &child)? }),
            _ => {}
        }
    }
    Ok(parts)
}

/// An insert object as (column, value) in table order, so objects giving the
/// same columns share one `VALUES` list.
fn insert_row(table: &Table, object: &Value) -> Result<Vec<(String, sea_orm::Value)>, EngineError> {
    let Value::Object(map) = object else {
        return Err(invalid(format!("an insert object for `{}` must be an object", table.name)));
    };
    writable_values(table, map, "insert")
}

fn column_values(table: &Table, value: Option<&Value>, what: &str) -> Result<Vec<(String, sea_orm::Value)>, EngineError> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Object(map)) => writable_values(table, map, what),
        Some(other) => Err(invalid(format!("`{what}` must be an object, not {other}"))),
    }
}

fn writable_values(
    table: &Table,
    map: &async_graphql::indexmap::IndexMap<Name, Value>,
    what: &str,
) -> Result<Vec<(String, sea_orm::Value)>, EngineError> {
    if let Some(unknown) = map.keys().find(|k| table.writable_columns().all(|c| c.name != k.as_str())) {
        return Err(invalid(format!("`{unknown}` is not a writable column of `{}`", table.name)));
    }
    table
        .writable_columns()
        .filter_map(|c| map.get(c.name.as_str()).map(|v| (c, v)))
        .map(|(c, v)| Ok((c.name.clone(), sql_value(c.scalar, v, &format!("`{what}.{}`", c.name))?)))
        .collect()
}

fn on_conflict(catalog: &Catalog, table: &Table, value: &Value) -> Result<OnConflict, EngineError> {
    let Value::Object(map) = value else { return Err(invalid("`on_conflict` must be an object")) };
    let constraint = match map.get("constraint") {
        Some(Value::Enum(name)) => name.to_string(),
        Some(Value::String(name)) => name.clone(),
        _ => return Err(invalid("`on_conflict.constraint` is required")),
    };
    let unique = table
        .uniques
        .iter()
        .find(|u| u.name == constraint)
        .ok_or_else(|| invalid(format!("`{constraint}` is not a constraint of `{}`", table.name)))?;
    let update_columns = match map.get("update_columns") {
        Some(v) => column_names(table, v, true)?,
        None => Vec::new(),
    };
    let filter = match map.get("where") {
        Some(Value::Null) | None => None,
        Some(v) => Some(input::bool_exp(catalog, table, v)?),
    };
    Ok(OnConflict { columns: unique.columns.clone(), update_columns, filter })
}

fn root_field(engine: &Engine, name: String, ty: TypeRef, table: &str, root: Root) -> Field {
    let engine = engine.clone();
    let table = table.to_string();
    Field::new(name, ty, move |ctx| {
        let engine = engine.clone();
        let table = table.clone();
        FieldFuture::new(async move {
            if let Some(splice) = ctx.ctx.data_opt::<Arc<Splice>>().filter(|_| root.is_query()) {
                let text = engine.query_text(&ctx, &table, root).await.map_err(EngineError::into_graphql)?;
                let field = ctx.ctx.field();
                splice.push(field.alias().unwrap_or(field.name()).to_string(), text.unwrap_or_else(|| "null".into()));
                return Ok(stand_in(root, &field));
            }
            let value = engine.resolve(&ctx, &table, root).await.map_err(EngineError::into_graphql)?;
            Ok(value.map(|v| match v {
                Value::List(items) => FieldValue::list(items.into_iter().map(FieldValue::value)),
                other => FieldValue::value(other),
            }))
        })
    })
}

/// The smallest value of a spliced root field's type: `[]`, `null`, or an
/// aggregate whose `nodes` are empty.
fn stand_in(root: Root, field: &SelectionField<'_>) -> Option<FieldValue<'static>> {
    match root {
        Root::List => Some(FieldValue::list(Vec::<FieldValue>::new())),
        Root::Aggregate => {
            let nodes = field
                .selection_set()
                .filter(|f| f.name() == "nodes")
                .map(|f| (Name::new(f.alias().unwrap_or(f.name())), Value::List(Vec::new())));
            Some(FieldValue::value(Value::Object(nodes.collect())))
        }
        _ => None,
    }
}

/// `T`, `T_by_pk`, `T_aggregate`.
pub fn query_fields(engine: &Engine, table: &Table) -> Vec<Field> {
    let t = table.name.as_str();
    vec![
        list_arguments(
            root_field(engine, t.into(), TypeRef::named_nn_list_nn(t), t, Root::List)
                .description(format!("fetch data from the table: \"{t}\"")),
            t,
        ),
        root_field(engine, format!("{t}_by_pk"), TypeRef::named(t), t, Root::ByPk)
            .description(format!("fetch data from the table: \"{t}\" using primary key columns"))
            .argument(InputValue::new("id", TypeRef::named_nn("bigint")).description("the row's id")),
        list_arguments(
            root_field(engine, format!("{t}_aggregate"), TypeRef::named_nn(format!("{t}_aggregate")), t, Root::Aggregate)
                .description(format!("fetch aggregated fields from the table: \"{t}\"")),
            t,
        ),
    ]
}

/// `insert_T`, `insert_T_one`, `update_T`, `update_T_by_pk`, `delete_T`, `delete_T_by_pk`.
pub fn mutation_fields(engine: &Engine, table: &Table) -> Vec<Field> {
    let t = table.name.as_str();
    let response = || TypeRef::named(format!("{t}_mutation_response"));
    let on_conflict = || InputValue::new("on_conflict", TypeRef::named(format!("{t}_on_conflict"))).description("upsert condition");
    let has_inc = table.writable_columns().any(|c| c.scalar.is_numeric());
    let with_set_inc = |field: Field| {
        let field = field.argument(
            InputValue::new("_set", TypeRef::named(format!("{t}_set_input")))
                .description("sets the columns of the filtered rows to the given values"),
        );
        if has_inc {
            field.argument(
                InputValue::new("_inc", TypeRef::named(format!("{t}_inc_input")))
                    .description("increments the numeric columns with given value of the filtered values"),
            )
        } else {
            field
        }
    };
    vec![
        root_field(engine, format!("insert_{t}"), response(), t, Root::Insert)
            .description(format!("insert data into the table: \"{t}\""))
            .argument(
                InputValue::new("objects", TypeRef::named_nn_list_nn(format!("{t}_insert_input"))).description("the rows to be inserted"),
            )
            .argument(on_conflict()),
        root_field(engine, format!("insert_{t}_one"), TypeRef::named(t), t, Root::InsertOne)
            .description(format!("insert a single row into the table: \"{t}\""))
            .argument(InputValue::new("object", TypeRef::named_nn(format!("{t}_insert_input"))).description("the row to be inserted"))
            .argument(on_conflict()),
        with_set_inc(
            root_field(engine, format!("update_{t}"), response(), t, Root::Update)
                .description(format!("update data of the table: \"{t}\""))
                .argument(
                    InputValue::new("where", TypeRef::named_nn(format!("{t}_bool_exp")))
                        .description("filter the rows which have to be updated"),
                ),
        ),
        with_set_inc(
            root_field(engine, format!("update_{t}_by_pk"), TypeRef::named(t), t, Root::UpdateByPk)
                .description(format!("update single row of the table: \"{t}\""))
                .argument(
                    InputValue::new("pk_columns", TypeRef::named_nn(format!("{t}_pk_columns_input"))).description("the row's primary key"),
                ),
        ),
        root_field(engine, format!("delete_{t}"), response(), t, Root::Delete)
            .description(format!("delete data from the table: \"{t}\""))
            .argument(
                InputValue::new("where", TypeRef::named_nn(format!("{t}_bool_exp")))
                    .description("filter the rows which have to be deleted"),
            ),
        root_field(engine, format!("delete_{t}_by_pk"), TypeRef::named(t), t, Root::DeleteByPk)
            .description(format!("delete single row from the table: \"{t}\""))
            .argument(InputValue::new("id", TypeRef::named_nn("bigint")).description("the row's id")),
    ]
}

/// `where`, `order_by`, `distinct_on`, `limit`, `offset`.
pub fn list_arguments(field: Field, table: &str) -> Field {
    field
        .argument(
            InputValue::new("distinct_on", TypeRef::named_nn_list(format!("{table}_select_column")))
                .description("distinct select on columns"),
        )
        .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)).description("limit the number of rows returned"))
        .argument(InputValue::new("offset", TypeRef::named(TypeRef::INT)).description("skip the first n rows. Use only with order_by"))
        .argument(
            InputValue::new("order_by", TypeRef::named_nn_list(format!("{table}_order_by")))
                .description("sort the rows by one or more columns"),
        )
        .argument(InputValue::new("where", TypeRef::named(format!("{table}_bool_exp"))).description("filter the rows returned"))
}

/// A scalar field of a generated object: the value under its response key.
pub fn scalar_field(name: impl Into<String>, ty: TypeRef) -> Field {
    Field::new(name, ty, |ctx| FieldFuture::Value(parent_entry(&ctx).map(|v| FieldValue::value(v.clone()))))
}

/// An object or list field of a generated object: borrowed from the parent,
/// never copied.
pub fn object_field(name: impl Into<String>, ty: TypeRef) -> Field {
    Field::new(name, ty, |ctx| {
        FieldFuture::Value(parent_entry(&ctx).map(|v| match v {
            Value::List(items) => FieldValue::list(items.iter().map(|item| FieldValue::borrowed_any(item))),
            other => FieldValue::borrowed_any(other),
        }))
    })
}

/// The entry under the field's response key (its alias, else its name).
fn parent_entry<'a>(ctx: &ResolverContext<'a>) -> Option<&'a Value> {
    let field = ctx.ctx.field();
    parent_field(ctx, field.alias().unwrap_or(field.name()))
}

/// The parent object's value under `key` (a null counts as absent), whether
/// the parent was given by value or borrowed from the database's JSON. Every
/// field that reads its value from its parent goes through here.
pub fn parent_field<'a>(ctx: &ResolverContext<'a>, key: &str) -> Option<&'a Value> {
    let parent: &'a FieldValue<'a> = ctx.parent_value;
    let parent = parent.as_value().or_else(|| parent.downcast_ref::<Value>())?;
    let Value::Object(map) = parent else { return None };
    map.get(key).filter(|v| !matches!(v, Value::Null))
}
