//! The GraphQL types of the table surface, generated from the catalog with
//! Hasura's names: for each table `T` the object `T`, `T_aggregate`,
//! `T_bool_exp`, `T_order_by`, the column and constraint enums, the
//! insert/set/inc inputs, `T_on_conflict`, `T_mutation_response`; once, the
//! scalars, `order_by` and the `<scalar>_comparison_exp` inputs.

use async_graphql::dynamic::{Enum, EnumItem, Field, InputObject, InputValue, Object, Scalar as GqlScalar, SchemaBuilder, TypeRef};

use super::input::{parse_bigint, parse_timestamptz};
use super::ir::AggregateFn;
use super::meta::{Catalog, RelationKind, Scalar, Table};
use super::resolve::{self, Engine};

/// Registers every table type, and returns the root fields to add to
/// `query_root` and `mutation_root`.
///
/// Only types a root field can reach are registered, so the printed schema is
/// exactly the served one: a `<scalar>_comparison_exp` exists for the scalars
/// some column has, and `T_aggregate_order_by` (with its `T_<fn>_order_by`
/// parts) only for tables that are the target of an array relation.
pub fn register(builder: SchemaBuilder, catalog: &Catalog, engine: &Engine) -> (SchemaBuilder, Vec<Field>, Vec<Field>) {
    let column_scalars: Vec<Scalar> =
        Scalar::ALL.into_iter().filter(|s| catalog.tables().iter().any(|t| t.columns.iter().any(|c| c.scalar == *s))).collect();
    let mut builder = register_shared(builder, &column_scalars);
    let mut queries = Vec::new();
    let mut mutations = Vec::new();
    for table in catalog.tables() {
        let array_target =
            catalog.tables().iter().any(|t| t.relations.iter().any(|r| r.kind == RelationKind::Array && r.target == table.name));
        builder = register_table(builder, table, array_target);
        queries.extend(resolve::query_fields(engine, table));
        mutations.extend(resolve::mutation_fields(engine, table));
    }
    (builder, queries, mutations)
}

fn register_shared(mut builder: SchemaBuilder, column_scalars: &[Scalar]) -> SchemaBuilder {
    builder = builder
        .register(
            GqlScalar::new("bigint")
                .description("A 64-bit integer. Accepted as a JSON number or a numeric string; returned as a number.")
                .validator(|v| parse_bigint(v).is_some()),
        )
        .register(
            GqlScalar::new("timestamptz")
                .description(
                    "A point in time: RFC 3339 with an offset (`2026-11-21T08:00:00+08:00`). Unix milliseconds are accepted as input.",
                )
                .validator(|v| parse_timestamptz(v).is_some()),
        )
        .register(GqlScalar::new("jsonb").description("Any JSON value, stored as jsonb."));
    let order = [
        ("asc", "in ascending order, nulls last"),
        ("asc_nulls_first", "in ascending order, nulls first"),
        ("asc_nulls_last", "in ascending order, nulls last"),
        ("desc", "in descending order, nulls first"),
        ("desc_nulls_first", "in descending order, nulls first"),
        ("desc_nulls_last", "in descending order, nulls last"),
    ];
    builder = builder.register(
        Enum::new("order_by").description("Column ordering options").items(order.map(|(name, text)| EnumItem::new(name).description(text))),
    );
    for scalar in column_scalars {
        builder = builder.register(comparison_exp(*scalar));
    }
    builder
}

fn comparison_exp(scalar: Scalar) -> InputObject {
    let name = scalar.graphql_name();
    let one = TypeRef::named(name);
    let list = TypeRef::named_nn_list(name);
    let mut input = InputObject::new(format!("{name}_comparison_exp"))
        .description(format!("Boolean expression to compare columns of type \"{name}\". All fields are combined with logical 'AND'. A null operand is an error."))
        .field(InputValue::new("_eq", one.clone()).description("equal"))
        .field(InputValue::new("_neq", one.clone()).description("not equal (never matches NULL)"))
        .field(InputValue::new("_in", list.clone()).description("one of the values"))
        .field(InputValue::new("_nin", list).description("none of the values"))
        .field(InputValue::new("_is_null", TypeRef::named(TypeRef::BOOLEAN)).description("true: the column is NULL; false: it is not"));
    if scalar.is_comparable() {
        input = input
            .field(InputValue::new("_gt", one.clone()).description("greater than"))
            .field(InputValue::new("_gte", one.clone()).description("greater than or equal"))
            .field(InputValue::new("_lt", one.clone()).description("less than"))
            .field(InputValue::new("_lte", one.clone()).description("less than or equal"));
    }
    if scalar == Scalar::String {
        input = input
            .field(
                InputValue::new("_like", one.clone())
                    .description("matches the LIKE pattern (`%` any text, `_` one character), case-sensitive"),
            )
            .field(InputValue::new("_nlike", one.clone()).description("does not match the LIKE pattern"))
            .field(InputValue::new("_ilike", one.clone()).description("matches the LIKE pattern, ignoring case"))
            .field(InputValue::new("_nilike", one).description("does not match the LIKE pattern, ignoring case"));
    }
    if scalar == Scalar::Jsonb {
        let strings = TypeRef::named_nn_list(TypeRef::STRING);
        input = input
            .field(InputValue::new("_contains", TypeRef::named("jsonb")).description("the column contains this JSON value (`@>`)"))
            .field(
                InputValue::new("_contained_in", TypeRef::named("jsonb")).description("the column is contained in this JSON value (`<@`)"),
            )
            .field(
                InputValue::new("_has_key", TypeRef::named(TypeRef::STRING))
                    .description("the string is a top-level key of the column (`?`)"),
            )
            .field(InputValue::new("_has_keys_any", strings.clone()).description("any of these strings is a top-level key (`?|`)"))
            .field(InputValue::new("_has_keys_all", strings).description("all these strings are top-level keys (`?&`)"));
    }
    input
}

fn register_table(mut builder: SchemaBuilder, table: &Table, array_target: bool) -> SchemaBuilder {
    let t = table.name.as_str();
    builder = builder.register(object_type(table));
    builder = builder.register(
        Object::new(format!("{t}_aggregate"))
            .description(format!("aggregated selection of \"{t}\""))
            .field(
                resolve::object_field("aggregate", TypeRef::named(format!("{t}_aggregate_fields")))
                    .description("aggregates over the selected rows"),
            )
            .field(resolve::object_field("nodes", TypeRef::named_nn_list_nn(t)).description("the selected rows")),
    );
    builder = builder.register(aggregate_fields(table));
    for function in AggregateFn::ALL {
        if let Some(object) = function_fields(table, function) {
            builder = builder.register(object);
        }
    }
    if array_target {
        builder = register_aggregate_order_by(builder, table);
    }
    builder = builder.register(bool_exp(table));
    builder = builder.register(order_by(table));
    builder = builder.register(column_enum(format!("{t}_select_column"), table, false, "select columns of table"));
    builder = builder.register(column_enum(format!("{t}_update_column"), table, true, "update columns of table"));
    builder = builder.register(
        Enum::new(format!("{t}_constraint")).description(format!("unique or primary key constraints on table \"{t}\"")).items(
            table.uniques.iter().map(|u| {
                EnumItem::new(u.name.as_str())
                    .description(format!("unique or primary key constraint on columns {}", quoted_list(&u.columns)))
            }),
        ),
    );
    builder = builder.register(write_input(format!("{t}_insert_input"), table, |_| true, "input type for inserting data into table"));
    builder = builder.register(write_input(format!("{t}_set_input"), table, |_| true, "input type for updating data in table"));
    if table.writable_columns().any(|c| c.scalar.is_numeric()) {
        builder = builder.register(write_input(
            format!("{t}_inc_input"),
            table,
            |s| s.is_numeric(),
            "input type for incrementing numeric columns in table",
        ));
    }
    builder = builder.register(
        InputObject::new(format!("{t}_pk_columns_input"))
            .description(format!("primary key columns input for table: {t}"))
            .field(InputValue::new("id", TypeRef::named_nn("bigint")).description("the row's id")),
    );
    builder = builder.register(
        InputObject::new(format!("{t}_on_conflict"))
            .description(format!(
                "on_conflict condition type for table \"{t}\": what an insert does when a row with the same unique key exists"
            ))
            .field(
                InputValue::new("constraint", TypeRef::named_nn(format!("{t}_constraint")))
                    .description("the unique constraint that conflicts"),
            )
            .field(
                InputValue::new("update_columns", TypeRef::named_nn_list_nn(format!("{t}_update_column")))
                    .default_value(async_graphql::Value::List(Vec::new()))
                    .description("columns to overwrite from the new row; [] means do nothing"),
            )
            .field(InputValue::new("where", TypeRef::named(format!("{t}_bool_exp"))).description("update only existing rows that match")),
    );
    builder.register(
        Object::new(format!("{t}_mutation_response"))
            .description(format!("response of any mutation on the table \"{t}\""))
            .field(
                resolve::scalar_field("affected_rows", TypeRef::named_nn(TypeRef::INT))
                    .description("number of rows affected by the mutation"),
            )
            .field(
                resolve::object_field("returning", TypeRef::named_nn_list_nn(t)).description("data from the rows affected by the mutation"),
            ),
    )
}

/// `T_aggregate_order_by` and its `T_<fn>_order_by` parts: how a parent
/// orders by an aggregate of its related `T` rows.
fn register_aggregate_order_by(mut builder: SchemaBuilder, table: &Table) -> SchemaBuilder {
    let t = table.name.as_str();
    for function in AggregateFn::ALL {
        if let Some(input) = function_order_by(table, function) {
            builder = builder.register(input);
        }
    }
    builder.register(with_fields(
        InputObject::new(format!("{t}_aggregate_order_by"))
            .description(format!("order by aggregate values of table \"{t}\""))
            .field(InputValue::new("count", TypeRef::named("order_by")).description("the number of rows")),
        AggregateFn::ALL.into_iter().filter(|f| has_columns(table, *f)).map(|f| {
            InputValue::new(f.name(), TypeRef::named(format!("{t}_{}_order_by", f.name())))
                .description(format!("the {} of a column", f.name()))
        }),
    ))
}

fn object_type(table: &Table) -> Object {
    let t = table.name.as_str();
    let mut object = Object::new(t).description(if table.description.is_empty() {
        format!("columns and relationships of \"{t}\"")
    } else {
        table.description.clone()
    });
    for column in &table.columns {
        let ty =
            if column.nullable { TypeRef::named(column.scalar.graphql_name()) } else { TypeRef::named_nn(column.scalar.graphql_name()) };
        object = object.field(resolve::scalar_field(&column.name, ty).description(column.description.as_str()));
    }
    for relation in &table.relations {
        let target = relation.target.as_str();
        match relation.kind {
            RelationKind::Object => {
                object = object.field(
                    resolve::object_field(&relation.name, TypeRef::named(target))
                        .description(format!("the related \"{target}\" row ({}.{} = {target}.{})", t, relation.local, relation.remote)),
                );
            }
            RelationKind::Array => {
                let list = resolve::list_arguments(
                    resolve::object_field(&relation.name, TypeRef::named_nn_list_nn(target))
                        .description(format!("the related \"{target}\" rows ({target}.{} = {t}.{})", relation.remote, relation.local)),
                    target,
                );
                let aggregate = resolve::list_arguments(
                    resolve::object_field(format!("{}_aggregate", relation.name), TypeRef::named_nn(format!("{target}_aggregate")))
                        .description(format!("an aggregate over the related \"{target}\" rows")),
                    target,
                );
                object = object.field(list).field(aggregate);
            }
        }
    }
    object
}

fn aggregate_fields(table: &Table) -> Object {
    let t = table.name.as_str();
    let mut object = Object::new(format!("{t}_aggregate_fields")).description(format!("aggregate fields of \"{t}\"")).field(
        resolve::scalar_field("count", TypeRef::named_nn(TypeRef::INT))
            .description("the number of rows; with `columns`, of rows where those are not null; with `distinct`, of distinct values")
            .argument(
                InputValue::new("columns", TypeRef::named_nn_list(format!("{t}_select_column")))
                    .description("count only rows where these columns are not null"),
            )
            .argument(InputValue::new("distinct", TypeRef::named(TypeRef::BOOLEAN)).description("count distinct values of `columns`")),
    );
    for function in AggregateFn::ALL.into_iter().filter(|f| has_columns(table, *f)) {
        object = object.field(
            resolve::object_field(function.name(), TypeRef::named(format!("{t}_{}_fields", function.name())))
                .description(format!("the {} of each column", function.name())),
        );
    }
    object
}

fn has_columns(table: &Table, function: AggregateFn) -> bool {
    table.columns.iter().any(|c| function.applies_to(c.scalar))
}

fn function_fields(table: &Table, function: AggregateFn) -> Option<Object> {
    if !has_columns(table, function) {
        return None;
    }
    let t = table.name.as_str();
    let name = function.name();
    let mut object = Object::new(format!("{t}_{name}_fields")).description(format!("aggregate {name} on columns of \"{t}\""));
    for column in table.columns.iter().filter(|c| function.applies_to(c.scalar)) {
        let ty = TypeRef::named(function.result_scalar(column.scalar).graphql_name());
        object = object.field(resolve::scalar_field(&column.name, ty).description(format!("the {name} of `{}`", column.name)));
    }
    Some(object)
}

fn function_order_by(table: &Table, function: AggregateFn) -> Option<InputObject> {
    if !has_columns(table, function) {
        return None;
    }
    let t = table.name.as_str();
    let name = function.name();
    Some(with_fields(
        InputObject::new(format!("{t}_{name}_order_by")).description(format!("order by {name}() on columns of table \"{t}\"")),
        table.columns.iter().filter(|c| function.applies_to(c.scalar)).map(|c| {
            InputValue::new(c.name.as_str(), TypeRef::named("order_by")).description(format!("order by the {name} of `{}`", c.name))
        }),
    ))
}

fn bool_exp(table: &Table) -> InputObject {
    let t = table.name.as_str();
    let own = format!("{t}_bool_exp");
    let mut input = InputObject::new(own.clone())
        .description(format!("Boolean expression to filter rows from the table \"{t}\". All fields are combined with a logical 'AND'; {{}} matches every row."))
        .field(InputValue::new("_and", TypeRef::named_nn_list(own.clone())).description("all of these hold ([] is true)"))
        .field(InputValue::new("_or", TypeRef::named_nn_list(own.clone())).description("any of these holds ([] is false)"))
        .field(InputValue::new("_not", TypeRef::named(own.clone())).description("this does not hold"));
    for column in &table.columns {
        input = input.field(
            InputValue::new(column.name.as_str(), TypeRef::named(format!("{}_comparison_exp", column.scalar.graphql_name())))
                .description(column.description.as_str()),
        );
    }
    for relation in &table.relations {
        input = input.field(
            InputValue::new(relation.name.as_str(), TypeRef::named(format!("{}_bool_exp", relation.target)))
                .description(format!("some related \"{}\" row matches", relation.target)),
        );
    }
    input
}

fn order_by(table: &Table) -> InputObject {
    let t = table.name.as_str();
    let mut input = InputObject::new(format!("{t}_order_by")).description(format!("Ordering options when selecting data from \"{t}\"."));
    for column in table.columns.iter().filter(|c| c.scalar.is_comparable()) {
        input = input.field(InputValue::new(column.name.as_str(), TypeRef::named("order_by")).description(column.description.as_str()));
    }
    for relation in &table.relations {
        input = match relation.kind {
            RelationKind::Object => input.field(
                InputValue::new(relation.name.as_str(), TypeRef::named(format!("{}_order_by", relation.target)))
                    .description(format!("order by a column of the related \"{}\" row", relation.target)),
            ),
            RelationKind::Array => input.field(
                InputValue::new(format!("{}_aggregate", relation.name), TypeRef::named(format!("{}_aggregate_order_by", relation.target)))
                    .description(format!("order by an aggregate of the related \"{}\" rows", relation.target)),
            ),
        };
    }
    input
}

fn column_enum(name: String, table: &Table, writable_only: bool, what: &str) -> Enum {
    Enum::new(name).description(format!("{what} \"{}\"", table.name)).items(
        table
            .columns
            .iter()
            .filter(|c| !(writable_only && c.system))
            .map(|c| EnumItem::new(c.name.as_str()).description(c.description.as_str())),
    )
}

fn write_input(name: String, table: &Table, keep: impl Fn(Scalar) -> bool, what: &str) -> InputObject {
    with_fields(
        InputObject::new(name).description(format!("{what} \"{}\"; id, created_at and updated_at are set by the server", table.name)),
        table
            .writable_columns()
            .filter(|c| keep(c.scalar))
            .map(|c| InputValue::new(c.name.as_str(), TypeRef::named(c.scalar.graphql_name())).description(c.description.as_str())),
    )
}

fn quoted_list(columns: &[String]) -> String {
    columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
}

fn with_fields(input: InputObject, fields: impl IntoIterator<Item = InputValue>) -> InputObject {
    fields.into_iter().fold(input, InputObject::field)
}
