//! Reading: rows as JSON, lists, object relations, aggregates, ordering.

use super::{Link, Writer};
use crate::db::DatabaseKind;
use crate::db::sql::Sql;
use crate::hasura::error::EngineError;
use crate::hasura::ir::{AggregateField, AggregatePart, FieldSel, Leaf, ListArgs, OrderBy, OrderTarget};
use crate::hasura::meta::{Relation, Scalar, Table};
use crate::hasura::permission::Operation;

/// A query root field, compiled to one statement returning one JSON text.
pub enum RootOutput<'s> {
    /// `T(...)`: a JSON array of rows.
    List { args: &'s ListArgs, fields: &'s [FieldSel] },
    /// `T_by_pk(id)`: a row, or SQL NULL.
    ByPk { id: i64, fields: &'s [FieldSel] },
    /// `T_aggregate(...)`.
    Aggregate { args: &'s ListArgs, parts: &'s [AggregatePart] },
}

pub fn compile_select(mut w: Writer<'_>, table: &Table, root: RootOutput<'_>) -> Result<Sql, EngineError> {
    w.push("SELECT CAST((");
    match root {
        RootOutput::List { args, fields } => w.list_body(table, None, args, fields)?,
        RootOutput::ByPk { id, fields } => {
            let alias = w.alias();
            w.push("SELECT ");
            w.row_json(&alias, fields)?;
            w.push(" FROM ");
            w.table_name(&table.name);
            w.push(&format!(" AS {alias} WHERE "));
            let permission = w.permission(table, Operation::Select)?;
            w.column(&alias, "id");
            w.push(" = ");
            w.param(id);
            w.push(" AND ");
            w.conditions(table, &alias, None, &permission.iter().collect::<Vec<_>>())?;
        }
        RootOutput::Aggregate { args, parts } => w.aggregate_body(table, None, args, parts)?,
    }
    w.push(") AS TEXT) AS wx_result");
    Ok(w.finish())
}

/// What the rows subquery exposes besides its JSON columns.
#[derive(Clone, Copy)]
struct RowsShape {
    /// Also select every column (`tN.*`), for aggregates over them.
    columns: bool,
    /// Number the rows (`wx_rn`) in order, for ordered JSON arrays.
    ranked: bool,
}

impl Writer<'_> {
    /// A row of `table` (aliased `alias`) as a JSON object of `fields`.
    pub(super) fn row_json(&mut self, alias: &str, fields: &[FieldSel]) -> Result<(), EngineError> {
        self.object(fields, |w, field| match field {
            FieldSel::Typename { key, name } => {
                w.typename(key, name);
                Ok(())
            }
            FieldSel::Column { key, column, scalar } => {
                w.key(key);
                w.json_value(&format!("{alias}.\"{column}\""), *scalar);
                Ok(())
            }
            FieldSel::Object { key, relation, fields } => {
                w.key(key);
                w.object_relation(alias, relation, fields)
            }
            FieldSel::Array { key, relation, args, fields } => {
                w.key(key);
                let target = w.table(&relation.target)?;
                w.open_embedded();
                w.list_body(target, Some(Link { parent_alias: alias, relation }), args, fields)?;
                w.close_embedded();
                Ok(())
            }
            FieldSel::Aggregate { key, relation, args, parts } => {
                w.key(key);
                let target = w.table(&relation.target)?;
                w.open_embedded();
                w.aggregate_body(target, Some(Link { parent_alias: alias, relation }), args, parts)?;
                w.close_embedded();
                Ok(())
            }
        })
    }

    fn object_relation(&mut self, parent_alias: &str, relation: &Relation, fields: &[FieldSel]) -> Result<(), EngineError> {
        let target = self.table(&relation.target)?;
        let alias = self.alias();
        let permission = self.permission(target, Operation::Select)?;
        self.open_embedded();
        self.push("SELECT ");
        self.row_json(&alias, fields)?;
        self.push(" FROM ");
        self.table_name(&target.name);
        self.push(&format!(" AS {alias} WHERE "));
        self.conditions(target, &alias, Some(Link { parent_alias, relation }), &permission.iter().collect::<Vec<_>>())?;
        self.push(" LIMIT 1");
        self.close_embedded();
        Ok(())
    }

    /// `SELECT <json array of rows> FROM (<rows>) AS s`.
    pub(super) fn list_body(
        &mut self,
        table: &Table,
        link: Option<Link<'_>>,
        args: &ListArgs,
        fields: &[FieldSel],
    ) -> Result<(), EngineError> {
        self.push("SELECT ");
        self.json_array_agg("s.wx_j0", "s.wx_rn");
        self.push(" FROM (");
        self.rows(table, link, args, &[fields], RowsShape { columns: false, ranked: true })?;
        self.push(") AS s");
        Ok(())
    }

    /// `SELECT {aggregate: {...}, nodes: [...]} FROM (<rows>) AS s`.
    pub(super) fn aggregate_body(
        &mut self,
        table: &Table,
        link: Option<Link<'_>>,
        args: &ListArgs,
        parts: &[AggregatePart],
    ) -> Result<(), EngineError> {
        let nodes: Vec<&[FieldSel]> = parts
            .iter()
            .filter_map(|p| match p {
                AggregatePart::Nodes { fields, .. } => Some(fields.as_slice()),
                AggregatePart::Aggregate { .. } | AggregatePart::Typename { .. } => None,
            })
            .collect();
        self.push("SELECT ");
        let mut node_index = 0;
        self.object(parts, |w, part| {
            match part {
                AggregatePart::Aggregate { key, fields } => {
                    w.key(key);
                    w.object(fields, |w, field| w.aggregate_field(field))?;
                }
                AggregatePart::Nodes { key, .. } => {
                    w.key(key);
                    w.json_array_agg(&format!("s.wx_j{node_index}"), "s.wx_rn");
                    node_index += 1;
                }
                AggregatePart::Typename { key, name } => w.typename(key, name),
            }
            Ok(())
        })?;
        self.push(" FROM (");
        let shape = RowsShape { columns: true, ranked: !nodes.is_empty() };
        self.rows(table, link, args, &nodes, shape)?;
        self.push(") AS s");
        Ok(())
    }

    fn aggregate_field(&mut self, field: &AggregateField) -> Result<(), EngineError> {
        match field {
            AggregateField::Typename { key, name } => self.typename(key, name),
            AggregateField::Count { key, columns, distinct } => {
                self.key(key);
                let distinct = if *distinct { "DISTINCT " } else { "" };
                let count = match columns.as_slice() {
                    [] => "count(*)".to_string(),
                    [column] => format!("count({distinct}s.\"{column}\")"),
                    many => {
                        let all_set: Vec<String> = many.iter().map(|c| format!("s.\"{c}\" IS NOT NULL")).collect();
                        let cols: Vec<String> = many.iter().map(|c| format!("s.\"{c}\"")).collect();
                        let tuple = match self.kind {
                            DatabaseKind::Postgres => format!("ROW({})", cols.join(", ")),
                            DatabaseKind::Sqlite => format!("json_array({})", cols.join(", ")),
                        };
                        format!("count({distinct}CASE WHEN {} THEN {tuple} END)", all_set.join(" AND "))
                    }
                };
                self.json_value(&count, Scalar::Bigint);
            }
            AggregateField::Function { key, function, leaves } => {
                self.key(key);
                self.object(leaves, |w, leaf| {
                    match leaf {
                        Leaf::Typename { key, name } => w.typename(key, name),
                        Leaf::Column { key, column, scalar } => {
                            w.key(key);
                            let expr = format!("{}(s.\"{column}\")", function.name());
                            w.json_value(&expr, function.result_scalar(*scalar));
                        }
                    }
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    /// The rows of `table` a list argument set selects, each with its JSON
    /// objects (`wx_j0`, `wx_j1`, ...), in order.
    fn rows(
        &mut self,
        table: &Table,
        link: Option<Link<'_>>,
        args: &ListArgs,
        json: &[&[FieldSel]],
        shape: RowsShape,
    ) -> Result<(), EngineError> {
        let alias = self.alias();
        let permission = self.permission(table, Operation::Select)?;
        let filters: Vec<_> = permission.iter().chain(args.filter.iter()).collect();
        self.push("SELECT ");
        let mut items = 0;
        if shape.columns {
            self.push(&format!("{alias}.*"));
            items += 1;
        }
        for (i, fields) in json.iter().enumerate() {
            if items > 0 {
                self.push(", ");
            }
            self.row_json(&alias, fields)?;
            self.push(&format!(" AS wx_j{i}"));
            items += 1;
        }
        if items == 0 {
            self.push("1 AS wx_row");
        }
        let ordered = shape.ranked || args.limit.is_some() || args.offset.is_some();
        if shape.ranked {
            self.push(", row_number() OVER (ORDER BY ");
            self.order_list(&alias, &args.order_by)?;
            self.push(") AS wx_rn");
        }
        self.push(" FROM ");
        if args.distinct_on.is_empty() {
            self.table_name(&table.name);
            self.push(&format!(" AS {alias} WHERE "));
            self.conditions(table, &alias, link, &filters)?;
        } else {
            self.distinct_source(table, link, args, &filters)?;
            self.push(&format!(" AS {alias} WHERE {alias}.wx_dn = 1"));
        }
        if ordered {
            self.push(" ORDER BY ");
            self.order_list(&alias, &args.order_by)?;
        }
        match (args.limit, args.offset, self.kind) {
            (Some(limit), _, _) => self.push(&format!(" LIMIT {limit}")),
            (None, Some(_), DatabaseKind::Sqlite) => self.push(" LIMIT -1"),
            _ => {}
        }
        if let Some(offset) = args.offset {
            self.push(&format!(" OFFSET {offset}"));
        }
        Ok(())
    }

    /// `distinct_on`: the first row of each group in `order_by` order, found
    /// with a window so it runs the same on both databases.
    fn distinct_source(
        &mut self,
        table: &Table,
        link: Option<Link<'_>>,
        args: &ListArgs,
        filters: &[&crate::hasura::ir::BoolExp],
    ) -> Result<(), EngineError> {
        let alias = self.alias();
        self.push(&format!("(SELECT {alias}.*, row_number() OVER (PARTITION BY "));
        for (i, column) in args.distinct_on.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.column(&alias, column);
        }
        self.push(" ORDER BY ");
        self.order_list(&alias, &args.order_by)?;
        self.push(") AS wx_dn FROM ");
        self.table_name(&table.name);
        self.push(&format!(" AS {alias} WHERE "));
        self.conditions(table, &alias, link, filters)?;
        self.push(")");
        Ok(())
    }

    /// `ORDER BY` items; the primary key when none are given, so results are
    /// stable from one call to the next.
    fn order_list(&mut self, alias: &str, order_by: &[OrderBy]) -> Result<(), EngineError> {
        if order_by.is_empty() {
            self.column(alias, "id");
            self.push(" ASC");
            return Ok(());
        }
        for (i, order) in order_by.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.order_target(alias, &order.target)?;
            self.push(if order.descending { " DESC" } else { " ASC" });
            self.push(if order.nulls_first { " NULLS FIRST" } else { " NULLS LAST" });
        }
        Ok(())
    }

    fn order_target(&mut self, alias: &str, target: &OrderTarget) -> Result<(), EngineError> {
        match target {
            OrderTarget::Column(column) => {
                self.column(alias, column);
                Ok(())
            }
            OrderTarget::Object { relation, inner } => {
                let target = self.table(&relation.target)?;
                let inner_alias = self.alias();
                self.push("(SELECT ");
                self.order_target(&inner_alias, inner)?;
                self.related_from(target, &inner_alias, alias, relation)?;
                self.push(" LIMIT 1)");
                Ok(())
            }
            OrderTarget::Aggregate { relation, function } => {
                let target = self.table(&relation.target)?;
                let inner_alias = self.alias();
                match function {
                    None => self.push("(SELECT count(*)"),
                    Some((function, column)) => self.push(&format!("(SELECT {}({inner_alias}.\"{column}\")", function.name())),
                }
                self.related_from(target, &inner_alias, alias, relation)?;
                self.push(")");
                Ok(())
            }
        }
    }

    /// ` FROM "R" AS alias WHERE <link> AND <permission>`.
    pub(super) fn related_from(&mut self, target: &Table, alias: &str, parent_alias: &str, relation: &Relation) -> Result<(), EngineError> {
        let permission = self.permission(target, Operation::Select)?;
        self.push(" FROM ");
        self.table_name(&target.name);
        self.push(&format!(" AS {alias} WHERE "));
        self.conditions(target, alias, Some(Link { parent_alias, relation }), &permission.iter().collect::<Vec<_>>())
    }
}
