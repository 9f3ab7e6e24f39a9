//! Table metadata read from SeaORM entities: columns and their GraphQL
//! scalars, unique keys, relations. Everything the engine generates (types,
//! SQL) comes from a [`Catalog`] of these.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ColumnType, EntityTrait, IdenStatic, Iterable, RelationTrait, RelationType};

use super::error::{EngineError, invalid};
use crate::auth::Role;

/// The GraphQL scalar a column is exposed as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scalar {
    Bigint,
    Int,
    Float,
    String,
    Boolean,
    Timestamptz,
    Jsonb,
}

impl Scalar {
    pub const ALL: [Scalar; 7] =
        [Scalar::Bigint, Scalar::Int, Scalar::Float, Scalar::String, Scalar::Boolean, Scalar::Timestamptz, Scalar::Jsonb];

    pub fn graphql_name(self) -> &'static str {
        match self {
            Scalar::Bigint => "bigint",
            Scalar::Int => "Int",
            Scalar::Float => "Float",
            Scalar::String => "String",
            Scalar::Boolean => "Boolean",
            Scalar::Timestamptz => "timestamptz",
            Scalar::Jsonb => "jsonb",
        }
    }

    /// Has `sum`, `avg` and `_inc`.
    pub fn is_numeric(self) -> bool {
        matches!(self, Scalar::Bigint | Scalar::Int | Scalar::Float)
    }

    /// Has `max`, `min`, `_gt`, `_lt` and ordering.
    pub fn is_comparable(self) -> bool {
        !matches!(self, Scalar::Jsonb)
    }

    fn of(column_type: &ColumnType) -> Option<Scalar> {
        Some(match column_type {
            ColumnType::BigInteger | ColumnType::BigUnsigned => Scalar::Bigint,
            ColumnType::Integer | ColumnType::SmallInteger | ColumnType::TinyInteger => Scalar::Int,
            ColumnType::Unsigned | ColumnType::SmallUnsigned | ColumnType::TinyUnsigned => Scalar::Int,
            ColumnType::Float | ColumnType::Double | ColumnType::Decimal(_) => Scalar::Float,
            ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => Scalar::String,
            ColumnType::Boolean => Scalar::Boolean,
            ColumnType::TimestampWithTimeZone => Scalar::Timestamptz,
            ColumnType::Json | ColumnType::JsonBinary => Scalar::Jsonb,
            _ => return None,
        })
    }
}

/// Columns the server sets itself; absent from every input type.
pub const SYSTEM_COLUMNS: [&str; 3] = ["id", "created_at", "updated_at"];

#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub scalar: Scalar,
    pub nullable: bool,
    /// `id`, `created_at`, `updated_at`: set by the server only.
    pub system: bool,
    pub description: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelationKind {
    /// N:1 or 1:1: an object field.
    Object,
    /// 1:N: a list field plus `<name>_aggregate`.
    Array,
}

/// `local` on this table equals `remote` on `target`.
#[derive(Clone, Debug)]
pub struct Relation {
    pub name: String,
    pub kind: RelationKind,
    pub target: String,
    pub local: String,
    pub remote: String,
}

/// A unique constraint, named as PostgreSQL names it (`T_pkey`, `T_col_key`).
#[derive(Clone, Debug)]
pub struct UniqueKey {
    pub name: String,
    pub columns: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Table {
    pub name: String,
    pub description: String,
    pub columns: Vec<Column>,
    pub uniques: Vec<UniqueKey>,
    pub relations: Vec<Relation>,
    /// Who may read and write which rows (admin: everything).
    pub permissions: TablePermissions,
    /// Checks the rows an insert or update wrote, before it commits.
    pub write_check: Option<WriteCheck>,
}

/// A table's own rule for the rows a mutation wrote, run in the mutation's
/// transaction before it commits: given the written ids (SQLite), or `None`
/// meaning "the rows this transaction wrote" (PostgreSQL, where the change
/// and its answer are one statement). `Err` is the message the client
/// gets (`validation-failed`) and the change is rolled back.
#[derive(Clone, Copy)]
pub struct WriteCheck(pub WriteCheckFn);

/// The check itself: the transaction and the written ids (`None`: the rows
/// this transaction wrote), to the message refusing them.
pub type WriteCheckFn =
    for<'a> fn(&'a sea_orm::DatabaseTransaction, Option<&'a [i64]>) -> futures::future::BoxFuture<'a, Result<(), String>>;

impl std::fmt::Debug for WriteCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteCheck")
    }
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn relation(&self, name: &str) -> Option<&Relation> {
        self.relations.iter().find(|r| r.name == name)
    }

    /// Columns a client may write (everything but the system columns).
    pub fn writable_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| !c.system)
    }
}

/// Every table the GraphQL surface exposes, in registration order.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    tables: Vec<Table>,
    index: HashMap<String, usize>,
    /// The largest `limit` a list may ask for (`WXNOTIFY_MAX_LIMIT`).
    pub max_limit: Option<u64>,
    /// How aggregates over array relations are planned
    /// (`WXNOTIFY_TABLE_AGGREGATES`).
    pub aggregate_plan: AggregatePlan,
    /// Where a root list's rows become JSON (`WXNOTIFY_TABLE_JSON`).
    pub json_rows: JsonRows,
}

/// Where the JSON of a root list's rows is put together (see `sql::select`):
/// all of it in the database, or the rows' objects and the array around them
/// in the server from one JSON value per column (nested relations and
/// aggregates of several values still arrive as JSON text the database
/// wrote). Both give the same text; the setting exists to compare them.
/// The database's one text measured faster on both databases: on SQLite
/// each row the driver hands over costs a thread wake-up, more than the
/// concatenation (docs/performance.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JsonRows {
    /// Whichever measured faster: the database, on both (docs/performance.md).
    #[default]
    Auto,
    /// The database writes the whole response text.
    Database,
    /// The server frames each row's values.
    Server,
}

impl JsonRows {
    /// Whether root lists are framed in the server.
    pub fn in_server(self) -> bool {
        match self {
            JsonRows::Auto | JsonRows::Database => false,
            JsonRows::Server => true,
        }
    }
}

impl std::str::FromStr for JsonRows {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value.to_ascii_lowercase().as_str() {
            "auto" => Ok(JsonRows::Auto),
            "database" => Ok(JsonRows::Database),
            "server" => Ok(JsonRows::Server),
            _ => Err("is not auto, database or server".into()),
        }
    }
}

/// How the SQL writer plans `<relation>_aggregate` fields of an array
/// relation (see `sql::select`): as one grouped join of the child table, or
/// as a correlated subquery per parent row. Every plan answers alike; the
/// setting exists to compare them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AggregatePlan {
    /// Grouped where it is cheaper: the rows of a root list without `limit`.
    #[default]
    Auto,
    /// Grouped wherever the grouped join can express the aggregate.
    Grouped,
    /// Always correlated subqueries (as Hasura writes them).
    Correlated,
}

impl std::str::FromStr for AggregatePlan {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value.to_ascii_lowercase().as_str() {
            "auto" => Ok(AggregatePlan::Auto),
            "grouped" => Ok(AggregatePlan::Grouped),
            "correlated" => Ok(AggregatePlan::Correlated),
            _ => Err("is not auto, grouped or correlated".into()),
        }
    }
}

impl Catalog {
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.index.get(name).map(|&i| &self.tables[i])
    }

    /// The table `name`, or a validation error naming it.
    pub fn require(&self, name: &str) -> Result<&Table, EngineError> {
        self.table(name).ok_or_else(|| invalid(format!("unknown table `{name}`")))
    }

    /// Registers an entity. `docs` describes its columns (name, text); the
    /// table's description is the entity's `comment`; `permissions` says
    /// what the roles other than admin may do.
    ///
    /// # Panics
    /// When a permission names a column the table does not have: the
    /// table list is fixed at build time, and a test builds it.
    pub fn register<E>(mut self, entity: E, docs: &[(&str, &str)], permissions: TablePermissions) -> Self
    where
        E: EntityTrait,
    {
        let mut table = table_of(entity, docs);
        for column in permissions.own_columns() {
            assert!(table.column(column).is_some(), "a permission of `{}` names the unknown column `{column}`", table.name);
        }
        table.permissions = permissions;
        self.index.insert(table.name.clone(), self.tables.len());
        self.tables.push(table);
        self
    }

    /// Gives the table registered last a check of the rows its inserts and
    /// updates write (see [`WriteCheck`]).
    pub fn checking_writes(mut self, check: WriteCheck) -> Self {
        if let Some(table) = self.tables.last_mut() {
            table.write_check = Some(check);
        }
        self
    }
}

fn table_of<E: EntityTrait>(entity: E, docs: &[(&str, &str)]) -> Table {
    let name = entity.table_name().to_string();
    let mut columns = Vec::new();
    let mut uniques = vec![UniqueKey { name: format!("{name}_pkey"), columns: vec!["id".into()] }];
    for column in E::Column::iter() {
        let def = column.def();
        let column_name = column.as_str().to_string();
        let scalar = Scalar::of(def.get_column_type())
            .unwrap_or_else(|| panic!("{name}.{column_name}: no GraphQL scalar for {:?}", def.get_column_type()));
        if def.is_unique() {
            uniques.push(UniqueKey { name: format!("{name}_{column_name}_key"), columns: vec![column_name.clone()] });
        }
        let description = docs
            .iter()
            .find(|(c, _)| *c == column_name)
            .map(|(_, d)| d.to_string())
            .unwrap_or_else(|| system_column_doc(&column_name).to_string());
        columns.push(Column {
            system: SYSTEM_COLUMNS.contains(&column_name.as_str()),
            nullable: def.is_null(),
            name: column_name,
            scalar,
            description,
        });
    }
    uniques.extend(composite_keys(E::default()));
    let relations = E::Relation::iter().map(|r| relation_of(r.def())).collect();
    Table {
        description: entity.comment().unwrap_or_default().to_string(),
        name,
        columns,
        uniques,
        relations,
        permissions: TablePermissions::admin_only(),
        write_check: None,
    }
}

fn system_column_doc(column: &str) -> &'static str {
    match column {
        "id" => "Primary key, assigned by the server.",
        "created_at" => "When the row was inserted; set by the server.",
        "updated_at" => "When the row last changed; set by the server.",
        _ => "",
    }
}

/// Composite keys (`#[sea_orm(unique_key = "...")]`). SeaORM keeps the key
/// name on the column private; its schema builder turns each key into a
/// unique index named `idx-<table>-<key>`, which is public.
fn composite_keys<E: EntityTrait>(entity: E) -> Vec<UniqueKey> {
    let prefix = format!("idx-{}-", entity.table_name());
    sea_orm::Schema::new(sea_orm::DbBackend::Postgres)
        .create_index_from_entity(entity)
        .into_iter()
        .filter(|index| index.is_unique_key())
        .filter_map(|index| {
            let spec = index.get_index_spec();
            let name = spec.get_name()?.strip_prefix(&prefix)?.to_string();
            Some(UniqueKey { name, columns: spec.get_column_names() })
        })
        .collect()
}

/// Zion naming: a foreign key `<relation>_<table>` gives the object relation
/// `<relation>`; the other side's list is named after the child table.
fn relation_of(def: sea_orm::RelationDef) -> Relation {
    let target = iden_of(&def.to_tbl);
    let local = identity_column(&def.from_col);
    let remote = identity_column(&def.to_col);
    if !def.is_owner {
        // belongs_to (SeaORM marks the side that declares has_one/has_many
        // as the owner): the foreign key is here, named `<relation>_<target>`.
        let name = local.strip_suffix(&format!("_{target}")).unwrap_or(&local).to_string();
        return Relation { name, kind: RelationKind::Object, target, local, remote };
    }
    let kind = match def.rel_type {
        RelationType::HasOne => RelationKind::Object,
        RelationType::HasMany => RelationKind::Array,
    };
    Relation { name: target.clone(), kind, target, local, remote }
}

fn iden_of(table: &sea_orm::sea_query::TableRef) -> String {
    match table {
        sea_orm::sea_query::TableRef::Table(name, _) => name.1.to_string(),
        other => panic!("relation to an unsupported table reference {other:?}"),
    }
}

fn identity_column(identity: &sea_orm::Identity) -> String {
    match identity {
        sea_orm::Identity::Unary(column) => column.to_string(),
        other => panic!("composite relation keys are not supported: {other:?}"),
    }
}

// Permissions as table metadata: declared at registration, evaluated per
// caller by `permission::Permissions`.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Select,
    Insert,
    Update,
    Delete,
}

impl Operation {
    pub(crate) fn verb(self) -> &'static str {
        match self {
            Operation::Select => "read",
            Operation::Insert => "insert into",
            Operation::Update => "update",
            Operation::Delete => "delete from",
        }
    }
}

/// The rows one rule lets a role touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rows {
    /// Every row.
    All,
    /// The rows whose column (a bigint) equals the caller's account id.
    Own(&'static str),
}

/// A table's permissions for the roles other than admin.
#[derive(Clone, Debug, Default)]
pub struct TablePermissions {
    rules: Vec<(Role, Operation, Rows)>,
}

impl TablePermissions {
    /// Only admin may touch the table.
    pub fn admin_only() -> Self {
        TablePermissions::default()
    }

    /// Lets `role` do `operation` on `rows`.
    pub fn allow(mut self, role: Role, operation: Operation, rows: Rows) -> Self {
        self.rules.push((role, operation, rows));
        self
    }

    pub(crate) fn rule(&self, role: Role, operation: Operation) -> Option<&Rows> {
        self.rules.iter().find(|(r, o, _)| *r == role && *o == operation).map(|(_, _, rows)| rows)
    }

    /// The columns `Own` rules name, to check them against the table.
    pub fn own_columns(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.rules.iter().filter_map(|(_, _, rows)| match rows {
            Rows::Own(column) => Some(*column),
            Rows::All => None,
        })
    }
}
