//! From GraphQL to the [`ir`](super::ir): arguments (`where`, `order_by`,
//! `_set`, ...) and selection sets, checked against the catalog and converted
//! to typed SQL values.
//!
//! async-graphql has already validated the document against the schema; what
//! is left here is what a schema cannot say: null operands, value ranges,
//! and GraphQL's input coercion of a single object to a one-element list.

use async_graphql::{Name, SelectionField, Value};
use chrono::{DateTime, Utc};
use indexmap::IndexMap;

use super::error::{EngineError, invalid};
use super::ir::*;
use super::meta::{Catalog, Column, RelationKind, Scalar, Table};

/// GraphQL input coercion: a single value where a list is expected is a
/// one-element list.
pub fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::List(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    }
}

fn as_object<'v>(value: &'v Value, what: &str) -> Result<&'v IndexMap<Name, Value>, EngineError> {
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Err(invalid(format!("{what} is null: pass an object ({{}} matches every row)"))),
        other => Err(invalid(format!("{what} must be an object, not {other}"))),
    }
}

/// Parses a `T_bool_exp`.
pub fn bool_exp(catalog: &Catalog, table: &Table, value: &Value) -> Result<BoolExp, EngineError> {
    let map = as_object(value, &format!("a `{}_bool_exp`", table.name))?;
    let mut parts = Vec::with_capacity(map.len());
    for (key, value) in map {
        let part = match key.as_str() {
            "_and" => BoolExp::And(list_of_bool_exps(catalog, table, value)?),
            "_or" => BoolExp::Or(list_of_bool_exps(catalog, table, value)?),
            "_not" => BoolExp::Not(Box::new(bool_exp(catalog, table, value)?)),
            name => {
                if let Some(column) = table.column(name) {
                    comparison(table, column, value)?
                } else if let Some(relation) = table.relation(name) {
                    let target = target_table(catalog, &relation.target)?;
                    BoolExp::Exists { relation: relation.clone(), filter: Box::new(bool_exp(catalog, target, value)?) }
                } else {
                    return Err(invalid(format!("`{}_bool_exp` has no field `{name}`", table.name)));
                }
            }
        };
        parts.push(part);
    }
    Ok(BoolExp::and(parts))
}

fn list_of_bool_exps(catalog: &Catalog, table: &Table, value: &Value) -> Result<Vec<BoolExp>, EngineError> {
    as_list(value).into_iter().map(|v| bool_exp(catalog, table, v)).collect()
}

pub fn target_table<'c>(catalog: &'c Catalog, name: &str) -> Result<&'c Table, EngineError> {
    catalog.require(name)
}

fn comparison(table: &Table, column: &Column, value: &Value) -> Result<BoolExp, EngineError> {
    let what = |op: &str| format!("`{}.{}.{op}`", table.name, column.name);
    let map = as_object(value, &format!("the filter on `{}.{}`", table.name, column.name))?;
    let mut parts = Vec::with_capacity(map.len());
    for (op, operand) in map {
        let op = op.as_str();
        if matches!(operand, Value::Null) {
            return Err(invalid(format!(
                "{} is null. A null operand is an error (a forgotten variable must not match every row); \
                 use `_is_null: true` to look for nulls",
                what(op)
            )));
        }
        let scalar = column.scalar;
        let one = |v: &Value| sql_value(scalar, v, &what(op));
        let compare = match op {
            "_eq" => CompareOp::Eq(one(operand)?),
            "_neq" => CompareOp::Neq(one(operand)?),
            "_gt" => CompareOp::Gt(one(operand)?),
            "_gte" => CompareOp::Gte(one(operand)?),
            "_lt" => CompareOp::Lt(one(operand)?),
            "_lte" => CompareOp::Lte(one(operand)?),
            "_in" | "_nin" => {
                let values = as_list(operand)
                    .into_iter()
                    .map(|v| match v {
                        Value::Null => Err(invalid(format!("{} contains null; use `_is_null`", what(op)))),
                        v => one(v),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if op == "_in" { CompareOp::In(values) } else { CompareOp::Nin(values) }
            }
            "_is_null" => CompareOp::IsNull(boolean(operand, &what(op))?),
            "_like" | "_nlike" | "_ilike" | "_nilike" => CompareOp::Like {
                pattern: string(operand, &what(op))?,
                negated: op.starts_with("_n"),
                case_insensitive: op.ends_with("ilike"),
            },
            "_contains" => CompareOp::Contains(operand.clone().into_json().map_err(|e| invalid(e.to_string()))?),
            "_contained_in" => CompareOp::ContainedIn(operand.clone().into_json().map_err(|e| invalid(e.to_string()))?),
            "_has_key" => CompareOp::HasKey(string(operand, &what(op))?),
            "_has_keys_any" | "_has_keys_all" => {
                let keys = as_list(operand).into_iter().map(|v| string(v, &what(op))).collect::<Result<Vec<_>, _>>()?;
                if op == "_has_keys_any" { CompareOp::HasKeysAny(keys) } else { CompareOp::HasKeysAll(keys) }
            }
            other => return Err(invalid(format!("unknown operator `{other}` on `{}.{}`", table.name, column.name))),
        };
        parts.push(BoolExp::Compare { column: column.name.clone(), scalar, op: compare });
    }
    Ok(BoolExp::and(parts))
}

fn boolean(value: &Value, what: &str) -> Result<bool, EngineError> {
    match value {
        Value::Boolean(b) => Ok(*b),
        other => Err(invalid(format!("{what} must be true or false, not {other}"))),
    }
}

fn string(value: &Value, what: &str) -> Result<String, EngineError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(invalid(format!("{what} must be a string, not {other}"))),
    }
}

/// Converts a GraphQL value to a SQL value of the column's type. `Null`
/// becomes a typed SQL NULL (callers that must refuse nulls check first).
pub fn sql_value(scalar: Scalar, value: &Value, what: &str) -> Result<sea_orm::Value, EngineError> {
    let wrong = |expected: &str| invalid(format!("{what} expects {expected}, not {value}"));
    Ok(match (scalar, value) {
        (Scalar::Bigint, Value::Null) => Option::<i64>::None.into(),
        (Scalar::Int, Value::Null) => Option::<i32>::None.into(),
        (Scalar::Float, Value::Null) => Option::<f64>::None.into(),
        (Scalar::String, Value::Null) => Option::<String>::None.into(),
        (Scalar::Boolean, Value::Null) => Option::<bool>::None.into(),
        (Scalar::Timestamptz, Value::Null) => Option::<DateTime<Utc>>::None.into(),
        (Scalar::Jsonb, Value::Null) => Option::<serde_json::Value>::None.into(),
        (Scalar::Bigint, v) => parse_bigint(v).ok_or_else(|| wrong("a bigint (a whole number or a numeric string)"))?.into(),
        (Scalar::Int, Value::Number(n)) => {
            n.as_i64().and_then(|n| i32::try_from(n).ok()).ok_or_else(|| wrong("a 32-bit whole number"))?.into()
        }
        (Scalar::Float, Value::Number(n)) => n.as_f64().ok_or_else(|| wrong("a number"))?.into(),
        (Scalar::String, Value::String(s)) => s.clone().into(),
        (Scalar::Boolean, Value::Boolean(b)) => (*b).into(),
        (Scalar::Timestamptz, v) => parse_timestamptz(v).ok_or_else(|| wrong("an RFC 3339 time with offset"))?.into(),
        (Scalar::Jsonb, v) => v.clone().into_json().map_err(|e| invalid(format!("{what}: {e}")))?.into(),
        (Scalar::Int, _) => return Err(wrong("a 32-bit whole number")),
        (Scalar::Float, _) => return Err(wrong("a number")),
        (Scalar::String, _) => return Err(wrong("a string")),
        (Scalar::Boolean, _) => return Err(wrong("true or false")),
    })
}

/// A `bigint` is a JSON number or a numeric string.
pub fn parse_bigint(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A `timestamptz` is RFC 3339 with an offset; a number is taken as Unix
/// milliseconds, which is what Zion action code (`Date.getTime()`) sends.
pub fn parse_timestamptz(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => DateTime::parse_from_rfc3339(s.trim()).ok().map(|t| t.with_timezone(&Utc)),
        Value::Number(n) => n.as_i64().and_then(DateTime::from_timestamp_millis),
        _ => None,
    }
}

/// Parses `order_by` (a list, or one object).
pub fn order_by(catalog: &Catalog, table: &Table, value: &Value) -> Result<Vec<OrderBy>, EngineError> {
    let mut out = Vec::new();
    for item in as_list(value) {
        order_by_object(catalog, table, item, &mut |target, dir| Ok(wrap(target, dir)), &mut out)?;
    }
    Ok(out)
}

fn wrap(target: OrderTarget, (descending, nulls_first): (bool, bool)) -> OrderBy {
    OrderBy { target, descending, nulls_first }
}

type Lift<'l> = dyn FnMut(OrderTarget, (bool, bool)) -> Result<OrderBy, EngineError> + 'l;

fn order_by_object(
    catalog: &Catalog,
    table: &Table,
    value: &Value,
    lift: &mut Lift<'_>,
    out: &mut Vec<OrderBy>,
) -> Result<(), EngineError> {
    let map = as_object(value, &format!("a `{}_order_by`", table.name))?;
    for (key, value) in map {
        if matches!(value, Value::Null) {
            continue;
        }
        let key = key.as_str();
        if table.column(key).is_some() {
            out.push(lift(OrderTarget::Column(key.to_string()), direction(value)?)?);
        } else if let Some(relation) = table.relation(key).filter(|r| r.kind == RelationKind::Object) {
            let target = target_table(catalog, &relation.target)?;
            let relation = relation.clone();
            let mut nested =
                |inner: OrderTarget, dir| lift(OrderTarget::Object { relation: relation.clone(), inner: Box::new(inner) }, dir);
            order_by_object(catalog, target, value, &mut nested, out)?;
        } else if let Some(relation) =
            key.strip_suffix("_aggregate").and_then(|name| table.relation(name)).filter(|r| r.kind == RelationKind::Array)
        {
            let target = target_table(catalog, &relation.target)?;
            for (function, value) in as_object(value, &format!("`{key}` in order_by"))? {
                if matches!(value, Value::Null) {
                    continue;
                }
                if function.as_str() == "count" {
                    out.push(lift(OrderTarget::Aggregate { relation: relation.clone(), function: None }, direction(value)?)?);
                    continue;
                }
                let function = AggregateFn::ALL
                    .into_iter()
                    .find(|f| f.name() == function.as_str())
                    .ok_or_else(|| invalid(format!("unknown aggregate `{function}` in order_by")))?;
                for (column, value) in as_object(value, "an aggregate order_by")? {
                    if matches!(value, Value::Null) {
                        continue;
                    }
                    target.column(column.as_str()).ok_or_else(|| invalid(format!("unknown column `{column}`")))?;
                    let target = OrderTarget::Aggregate { relation: relation.clone(), function: Some((function, column.to_string())) };
                    out.push(lift(target, direction(value)?)?);
                }
            }
        } else {
            return Err(invalid(format!("`{}_order_by` has no field `{key}`", table.name)));
        }
    }
    Ok(())
}

/// `(descending, nulls_first)` of an `order_by` enum value. As in
/// PostgreSQL, `asc` puts nulls last and `desc` puts them first.
fn direction(value: &Value) -> Result<(bool, bool), EngineError> {
    let name = match value {
        Value::Enum(name) => name.as_str(),
        Value::String(s) => s.as_str(),
        other => return Err(invalid(format!("{other} is not an order_by value"))),
    };
    Ok(match name {
        "asc" | "asc_nulls_last" => (false, false),
        "asc_nulls_first" => (false, true),
        "desc" | "desc_nulls_first" => (true, true),
        "desc_nulls_last" => (true, false),
        other => return Err(invalid(format!("`{other}` is not an order_by value"))),
    })
}

/// A list of column names (`distinct_on`, `columns`, `update_columns`).
pub fn column_names(table: &Table, value: &Value, writable_only: bool) -> Result<Vec<String>, EngineError> {
    as_list(value)
        .into_iter()
        .map(|v| {
            let name = match v {
                Value::Enum(name) => name.as_str(),
                Value::String(s) => s.as_str(),
                other => return Err(invalid(format!("{other} is not a column of `{}`", table.name))),
            };
            match table.column(name) {
                Some(c) if !(writable_only && c.system) => Ok(name.to_string()),
                _ => Err(invalid(format!("`{name}` is not a column of `{}` that can be named here", table.name))),
            }
        })
        .collect()
}

fn non_negative(value: &Value, what: &str) -> Result<Option<u64>, EngineError> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_u64().map(Some).ok_or_else(|| invalid(format!("`{what}` must be zero or more"))),
        other => Err(invalid(format!("`{what}` must be a whole number, not {other}"))),
    }
}

/// `where`, `order_by`, `distinct_on`, `limit`, `offset` of a list field.
pub fn list_args(catalog: &Catalog, table: &Table, args: &[(Name, Value)]) -> Result<ListArgs, EngineError> {
    let mut out = ListArgs::default();
    for (name, value) in args {
        match name.as_str() {
            "where" if !matches!(value, Value::Null) => out.filter = Some(bool_exp(catalog, table, value)?),
            "order_by" => out.order_by = order_by(catalog, table, value)?,
            "distinct_on" => out.distinct_on = column_names(table, value, false)?,
            "limit" => {
                out.limit = non_negative(value, "limit")?;
                if let (Some(limit), Some(max)) = (out.limit, catalog.max_limit)
                    && limit > max
                {
                    return Err(invalid(format!(
                        "limit {limit} on `{}` is more than the {max} rows one list may return (WXNOTIFY_MAX_LIMIT)",
                        table.name
                    )));
                }
            }
            "offset" => out.offset = non_negative(value, "offset")?,
            _ => {}
        }
    }
    Ok(out)
}

/// The arguments of a field, with variables substituted.
pub fn arguments(field: &SelectionField<'_>) -> Result<Vec<(Name, Value)>, EngineError> {
    field.arguments().map_err(|e| invalid(e.message))
}

/// The fields selected on a row of `table`.
pub fn selection(catalog: &Catalog, table: &Table, field: &SelectionField<'_>) -> Result<Vec<FieldSel>, EngineError> {
    let mut out = Vec::new();
    for child in field.selection_set() {
        let name = child.name();
        let key = child.alias().unwrap_or(name).to_string();
        let selected = if name == "__typename" {
            FieldSel::Typename { key, name: table.name.clone() }
        } else if let Some(column) = table.column(name) {
            FieldSel::Column { key, column: column.name.clone(), scalar: column.scalar }
        } else if let Some(relation) = table.relation(name) {
            let target = target_table(catalog, &relation.target)?;
            let fields = selection(catalog, target, &child)?;
            let relation = relation.clone();
            match relation.kind {
                RelationKind::Object => FieldSel::Object { key, relation, fields },
                RelationKind::Array => {
                    let args = list_args(catalog, target, &arguments(&child)?)?;
                    FieldSel::Array { key, relation, args, fields }
                }
            }
        } else if let Some(relation) = name.strip_suffix("_aggregate").and_then(|n| table.relation(n)) {
            let target = target_table(catalog, &relation.target)?;
            let args = list_args(catalog, target, &arguments(&child)?)?;
            let parts = aggregate_parts(catalog, target, &child)?;
            FieldSel::Aggregate { key, relation: relation.clone(), args, parts }
        } else {
            return Err(invalid(format!("`{}` has no field `{name}`", table.name)));
        };
        FieldSel::push_merged(&mut out, selected);
    }
    Ok(out)
}

/// The fields of a `T_aggregate` selection.
pub fn aggregate_parts(catalog: &Catalog, table: &Table, field: &SelectionField<'_>) -> Result<Vec<AggregatePart>, EngineError> {
    let mut parts = Vec::new();
    for child in field.selection_set() {
        let key = child.alias().unwrap_or(child.name()).to_string();
        let part = match child.name() {
            "__typename" => AggregatePart::Typename { key, name: format!("{}_aggregate", table.name) },
            "aggregate" => AggregatePart::Aggregate { key, fields: aggregate_fields(table, &child)? },
            "nodes" => AggregatePart::Nodes { key, fields: selection(catalog, table, &child)? },
            _ => continue,
        };
        AggregatePart::push_merged(&mut parts, part);
    }
    Ok(parts)
}

fn aggregate_fields(table: &Table, field: &SelectionField<'_>) -> Result<Vec<AggregateField>, EngineError> {
    let mut out = Vec::new();
    for child in field.selection_set() {
        let key = child.alias().unwrap_or(child.name()).to_string();
        if child.name() == "__typename" {
            let name = format!("{}_aggregate_fields", table.name);
            AggregateField::push_merged(&mut out, AggregateField::Typename { key, name });
        } else if child.name() == "count" {
            let mut columns = Vec::new();
            let mut distinct = false;
            for (name, value) in arguments(&child)? {
                match name.as_str() {
                    "columns" => columns = column_names(table, &value, false)?,
                    "distinct" => distinct = matches!(value, Value::Boolean(true)),
                    _ => {}
                }
            }
            AggregateField::push_merged(&mut out, AggregateField::Count { key, columns, distinct });
        } else if let Some(function) = AggregateFn::ALL.into_iter().find(|f| f.name() == child.name()) {
            let mut leaves = Vec::new();
            for leaf in child.selection_set() {
                let key = leaf.alias().unwrap_or(leaf.name()).to_string();
                let selected = match table.column(leaf.name()) {
                    Some(column) => Leaf::Column { key, column: column.name.clone(), scalar: column.scalar },
                    None if leaf.name() == "__typename" => {
                        Leaf::Typename { key, name: format!("{}_{}_fields", table.name, function.name()) }
                    }
                    None => continue,
                };
                Leaf::push_merged(&mut leaves, selected);
            }
            AggregateField::push_merged(&mut out, AggregateField::Function { key, function, leaves });
        }
    }
    Ok(out)
}
