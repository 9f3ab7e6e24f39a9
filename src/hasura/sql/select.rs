//! Reading: rows as JSON, lists, object relations, aggregates, ordering.
//!
//! # Aggregates over an array relation
//!
//! `account { point_count_aggregate(where: ...) { aggregate { count } } }`
//! has two plans. Correlated (as Hasura writes it): a subquery per parent
//! row, which the database answers by an index probe of the child's foreign
//! key per row and per aggregate. Grouped: the rows subquery LEFT JOINs the
//! child table once and groups by the parent's `id`; each aggregate of that
//! relation is then `fn(...) FILTER (WHERE <its where>)` over the group, so
//! every aggregate of the relation comes from one pass over the children.
//! The database still picks how to join: a hash join when many parents are
//! read, index probes when few. A `where` "some child matches" stays a
//! semi-join in `WHERE` rather than becoming a `HAVING` over the join: that
//! lets the database start from the few parents that have children (the
//! seed's documents have 100 such accounts among 20,000), where a `HAVING`
//! would read every parent first. Only a top-level "some child row exists"
//! over the joined relation itself, whose test every child passes (the
//! seed's `{point_count: {id: {_is_null: false}}}`), is folded into the
//! join on PostgreSQL, which then turns inner: that says the same, and
//! PostgreSQL still starts from either table (SQLite's planner would read
//! every parent first, so there the probe stays).
//!
//! The grouped join expresses an aggregate whose own arguments have no
//! `limit`, `offset` or `distinct_on` and which selects no `nodes`, on rows
//! that are not themselves a `distinct_on` list; anything else stays
//! correlated. Of several array relations aggregated on the same rows only
//! the first is joined (two would multiply each other's rows).
//!
//! When: [`AggregatePlan::Auto`] (the default) groups, on PostgreSQL, the
//! rows of a root list without `limit`, which reads every parent the filter
//! keeps, so one pass over the children costs at most what a probe per
//! parent costs. With a `limit`, or nested under a parent row, the list is
//! usually a few rows and the correlated probes touch only their children,
//! so they stay. On SQLite `auto` never groups: its planner reads the
//! grouped join's rows at about half the speed of the correlated probes
//! (the `(account_account, type)` index makes each probe index-only), and
//! the seed's `notice` query measured faster correlated than grouped there
//! at every size, by 7 % at 1,000 accounts to 34 % at 100,000 (medians of
//! several runs, docs/performance.md).
//! [`AggregatePlan::Grouped`] groups wherever it can and
//! [`AggregatePlan::Correlated`] never does; tests run each to check they
//! answer alike (`WXNOTIFY_TABLE_AGGREGATES`).
//!
//! # Root lists framed in the server
//!
//! A root list's JSON is otherwise one text the database concatenates:
//! each value's JSON text, `||` per key and value, and the rows folded into
//! an array by `group_concat(... ORDER BY ...)` / `string_agg`. With
//! `WXNOTIFY_TABLE_JSON=server` a root list's statement
//! ([`compile_framed_list`]) returns the rows themselves, in order, one
//! column per value, each still the JSON text the database would have
//! concatenated (`json_quote(...)`, a nested relation's embedded JSON, an
//! aggregate's one value from a subquery of its own or from the grouped
//! join); a [`RowFrame`] holds the text between the values (keys, braces,
//! `__typename`s) and writes each row's object and the array around them.
//! The text is the same as the database's, byte for byte
//! (`tests/integration/json_rows.rs` compares both over generated
//! documents). An aggregate of several values, or with `nodes`, that the
//! grouped join does not answer stays one embedded column. The default
//! (`auto`) keeps the database's text on both databases, which measured
//! faster: SQLite's concatenation costs less than the rows themselves, each
//! of which the driver hands from its worker thread to the server with a
//! wake-up (docs/performance.md).

use super::{Link, Writer};
use crate::db::DatabaseKind;
use crate::db::sql::Sql;
use crate::hasura::error::EngineError;
use crate::hasura::error::invalid;
use crate::hasura::ir::{AggregateField, AggregatePart, BoolExp, CompareOp, FieldSel, Leaf, ListArgs, OrderBy, OrderTarget};
use crate::hasura::meta::{AggregatePlan, Relation, RelationKind, Scalar, Table};
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

/// A root list for the server to frame ([`JsonRows::Server`]): the statement
/// returns the rows in order, one JSON value per column (each the text
/// [`compile_select`] would have the database concatenate), and the frame
/// writes the text around them, so the response is the same text.
///
/// [`JsonRows::Server`]: crate::hasura::meta::JsonRows::Server
pub fn compile_framed_list(mut w: Writer<'_>, table: &Table, args: &ListArgs, fields: &[FieldSel]) -> Result<(Sql, RowFrame), EngineError> {
    let shape = RowsShape { columns: false, ranked: false, keyed: false, framed: true };
    let frame = w.rows(table, None, args, &[fields], shape)?.ok_or_else(|| invalid("a framed list wrote no frame"))?;
    Ok((w.finish(), frame))
}

/// How the server writes the JSON array of a framed statement's rows: each
/// row's object is the text between its values and the values, column by
/// column, as the database wrote them.
#[derive(Debug, Default)]
pub struct RowFrame {
    pieces: Vec<Piece>,
    /// Value columns so far (`wx_c0` ... ).
    columns: usize,
}

#[derive(Debug)]
enum Piece {
    Text(String),
    /// The value in this column of the row (JSON text, never NULL).
    Column(usize),
}

impl RowFrame {
    fn text(&mut self, text: &str) {
        match self.pieces.last_mut() {
            Some(Piece::Text(last)) => last.push_str(text),
            _ => self.pieces.push(Piece::Text(text.to_string())),
        }
    }

    /// `"key":`, as [`Writer::key`] writes it.
    fn key(&mut self, key: &str) {
        debug_assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{key}");
        self.text(&format!("\"{key}\":"));
    }

    /// `"key":"TypeName"`, as [`Writer::typename`] writes it.
    fn typename(&mut self, key: &str, name: &str) {
        self.key(key);
        self.text(&format!("\"{name}\""));
    }

    /// The JSON array of `rows`, in their order: `[]` for none.
    pub fn array(&self, rows: &[sea_orm::QueryResult]) -> Result<String, EngineError> {
        let mut out = String::from("[");
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let start = out.len();
            for piece in &self.pieces {
                match piece {
                    Piece::Text(text) => out.push_str(text),
                    Piece::Column(column) => out.push_str(&row.try_get_by_index::<String>(*column)?),
                }
            }
            if i == 0 {
                // The first row tells roughly how long the rest are.
                out.reserve((out.len() - start + 1) * (rows.len() - 1) + 1);
            }
        }
        out.push(']');
        Ok(out)
    }
}

/// What the rows subquery exposes besides its JSON columns.
#[derive(Clone, Copy)]
struct RowsShape {
    /// Also select every column (`tN.*`), for aggregates over them.
    columns: bool,
    /// Number the rows (`wx_rn`) in order, for JSON arrays of the same rows
    /// in the same order (the `nodes` of an aggregate).
    ranked: bool,
    /// Select the `order_by` values (`wx_o0`, `wx_o1`, ...), which one JSON
    /// array sorts by itself: cheaper than numbering the rows, which sorts
    /// them once for the window and again in the array.
    keyed: bool,
    /// One JSON value per column (`wx_c0`, `wx_c1`, ...) for the server to
    /// frame (see [`RowFrame`]), the rows in order, in place of `wx_j0`.
    framed: bool,
}

/// The child table a rows subquery joins and groups by for the aggregates
/// of one array relation (see the module doc).
pub(super) struct GroupedJoin {
    /// The alias of the parent rows.
    parent: String,
    relation: Relation,
    /// The alias of the joined child rows.
    alias: String,
}

/// Where an aggregate reads its rows from.
enum AggregateSource<'a> {
    /// The rows subquery `s` of its own (correlated or root).
    Rows,
    /// The grouped join: the child rows of the group that match `filter`.
    Grouped { join: &'a GroupedJoin, table: &'a Table, filter: Option<&'a BoolExp> },
    /// A subquery of its own per value, over the rows `args` selects of
    /// `table` under the parent row (a framed row's aggregate of one value).
    Subquery { table: &'a Table, link: Link<'a>, args: &'a ListArgs },
}

/// The `ORDER BY` of a JSON array over the `wx_oN` columns of
/// [`RowsShape::keyed`] rows; the primary key when no order is given, as
/// [`Writer::order_list`] does.
fn order_keys(order_by: &[OrderBy]) -> String {
    if order_by.is_empty() {
        return "s.wx_o0 ASC".into();
    }
    let keys: Vec<String> = order_by
        .iter()
        .enumerate()
        .map(|(i, order)| {
            let direction = if order.descending { "DESC" } else { "ASC" };
            let nulls = if order.nulls_first { "NULLS FIRST" } else { "NULLS LAST" };
            format!("s.wx_o{i} {direction} {nulls}")
        })
        .collect();
    keys.join(", ")
}

/// How many values (counts, function columns) an aggregate's parts select;
/// `None` when they select `nodes`. A framed row reads an aggregate of at
/// most one value from a subquery of that value, framing the rest.
fn aggregate_values(parts: &[AggregatePart]) -> Option<usize> {
    let mut values = 0;
    for part in parts {
        match part {
            AggregatePart::Nodes { .. } => return None,
            AggregatePart::Typename { .. } => {}
            AggregatePart::Aggregate { fields, .. } => {
                for field in fields {
                    values += match field {
                        AggregateField::Typename { .. } => 0,
                        AggregateField::Count { .. } => 1,
                        AggregateField::Function { leaves, .. } => leaves.iter().filter(|l| matches!(l, Leaf::Column { .. })).count(),
                    };
                }
            }
        }
    }
    Some(values)
}

impl AggregateSource<'_> {
    /// The alias an aggregate's expressions read the rows from.
    fn rows(&self) -> &str {
        match self {
            AggregateSource::Rows | AggregateSource::Subquery { .. } => "s",
            AggregateSource::Grouped { join, .. } => join.alias.as_str(),
        }
    }
}

/// Whether the grouped join can answer an aggregate with these arguments.
fn groupable(args: &ListArgs, parts: &[AggregatePart]) -> bool {
    args.limit.is_none()
        && args.offset.is_none()
        && args.distinct_on.is_empty()
        && parts.iter().all(|p| !matches!(p, AggregatePart::Nodes { .. }))
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
                if let Some(join) = w.grouped.take_if(|g| g.parent == alias && g.relation.name == relation.name && groupable(args, parts)) {
                    let written = w.grouped_aggregate(&join, target, args.filter.as_ref(), parts);
                    w.grouped = Some(join);
                    return written;
                }
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
        self.json_array_agg("s.wx_j0", &order_keys(&args.order_by));
        self.push(" FROM (");
        self.rows(table, link, args, &[fields], RowsShape { columns: false, ranked: false, keyed: true, framed: false })?;
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
        if aggregate_values(parts) == Some(0) {
            // Only `__typename`s: one object whatever the rows (selecting it
            // from them would give a row per row, or none).
            return self.object(parts, |w, part| {
                match part {
                    AggregatePart::Aggregate { key, fields } => {
                        w.key(key);
                        w.object(fields, |w, field| w.aggregate_field(field, &AggregateSource::Rows))?;
                    }
                    AggregatePart::Typename { key, name } => w.typename(key, name),
                    AggregatePart::Nodes { .. } => return Err(invalid("`nodes` select rows")),
                }
                Ok(())
            });
        }
        let mut node_index = 0;
        self.object(parts, |w, part| {
            match part {
                AggregatePart::Aggregate { key, fields } => {
                    w.key(key);
                    w.object(fields, |w, field| w.aggregate_field(field, &AggregateSource::Rows))?;
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
        let shape = RowsShape { columns: true, ranked: !nodes.is_empty(), keyed: false, framed: false };
        self.rows(table, link, args, &nodes, shape)?;
        self.push(") AS s");
        Ok(())
    }

    /// `{aggregate: {...}}` of one array relation's rows in the grouped join.
    fn grouped_aggregate(
        &mut self,
        join: &GroupedJoin,
        table: &Table,
        filter: Option<&BoolExp>,
        parts: &[AggregatePart],
    ) -> Result<(), EngineError> {
        let source = AggregateSource::Grouped { join, table, filter };
        self.object(parts, |w, part| {
            match part {
                AggregatePart::Aggregate { key, fields } => {
                    w.key(key);
                    w.object(fields, |w, field| w.aggregate_field(field, &source))?;
                }
                AggregatePart::Typename { key, name } => w.typename(key, name),
                AggregatePart::Nodes { .. } => return Err(invalid("`nodes` cannot be read from a grouped join")),
            }
            Ok(())
        })
    }

    /// `count(...)` over the rows aliased `rows`.
    fn count_expr(&self, rows: &str, columns: &[String], distinct: bool) -> String {
        let distinct = if distinct { "DISTINCT " } else { "" };
        match columns {
            [] => "count(*)".to_string(),
            [column] => format!("count({distinct}{rows}.\"{column}\")"),
            many => {
                let all_set: Vec<String> = many.iter().map(|c| format!("{rows}.\"{c}\" IS NOT NULL")).collect();
                let cols: Vec<String> = many.iter().map(|c| format!("{rows}.\"{c}\"")).collect();
                let tuple = match self.kind {
                    DatabaseKind::Postgres => format!("ROW({})", cols.join(", ")),
                    DatabaseKind::Sqlite => format!("json_array({})", cols.join(", ")),
                };
                format!("count({distinct}CASE WHEN {} THEN {tuple} END)", all_set.join(" AND "))
            }
        }
    }

    fn aggregate_field(&mut self, field: &AggregateField, source: &AggregateSource<'_>) -> Result<(), EngineError> {
        let rows = source.rows();
        match field {
            AggregateField::Typename { key, name } => self.typename(key, name),
            AggregateField::Count { key, columns, distinct } => {
                self.key(key);
                let count = self.count_expr(rows, columns, *distinct);
                self.aggregate_value(&count, Scalar::Bigint, source)?;
            }
            AggregateField::Function { key, function, leaves } => {
                self.key(key);
                self.object(leaves, |w, leaf| {
                    match leaf {
                        Leaf::Typename { key, name } => w.typename(key, name),
                        Leaf::Column { key, column, scalar } => {
                            w.key(key);
                            let expr = format!("{}({rows}.\"{column}\")", function.name());
                            w.aggregate_value(&expr, function.result_scalar(*scalar), source)?;
                        }
                    }
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    /// The JSON text of the aggregate `expr`; in the grouped join, over the
    /// group's child rows that match the aggregate's `where`.
    fn aggregate_value(&mut self, expr: &str, scalar: Scalar, source: &AggregateSource<'_>) -> Result<(), EngineError> {
        match source {
            AggregateSource::Rows => {
                self.json_value(expr, scalar);
                Ok(())
            }
            AggregateSource::Grouped { join, table, filter } => self.json_value_written(scalar, |w| {
                w.push(expr);
                w.group_filter(join, table, *filter)
            }),
            // What `aggregate_body` writes, with this one value for the object.
            AggregateSource::Subquery { table, link, args } => {
                self.open_embedded();
                self.push("SELECT ");
                self.json_value(expr, scalar);
                self.push(" FROM (");
                self.rows(table, Some(*link), args, &[], RowsShape { columns: true, ranked: false, keyed: false, framed: false })?;
                self.push(") AS s");
                self.close_embedded();
                Ok(())
            }
        }
    }

    /// [`Writer::row_json`] for the server to frame: each value a column of
    /// the select list (`wx_c0`, ...), the text around them in the frame.
    /// Relations and aggregates of several values are one column each, the
    /// JSON text `row_json` would embed.
    fn row_frame(&mut self, alias: &str, fields: &[FieldSel]) -> Result<RowFrame, EngineError> {
        let mut frame = RowFrame::default();
        frame.text("{");
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                frame.text(",");
            }
            match field {
                FieldSel::Typename { key, name } => frame.typename(key, name),
                FieldSel::Column { key, column, scalar } => {
                    frame.key(key);
                    self.frame_column(&mut frame, |w| {
                        w.json_value(&format!("{alias}.\"{column}\""), *scalar);
                        Ok(())
                    })?;
                }
                FieldSel::Object { key, relation, fields } => {
                    frame.key(key);
                    self.frame_column(&mut frame, |w| w.object_relation(alias, relation, fields))?;
                }
                FieldSel::Array { key, relation, args, fields } => {
                    frame.key(key);
                    let target = self.table(&relation.target)?;
                    self.frame_column(&mut frame, |w| {
                        w.open_embedded();
                        w.list_body(target, Some(Link { parent_alias: alias, relation }), args, fields)?;
                        w.close_embedded();
                        Ok(())
                    })?;
                }
                FieldSel::Aggregate { key, relation, args, parts } => {
                    frame.key(key);
                    let target = self.table(&relation.target)?;
                    let link = Link { parent_alias: alias, relation };
                    if let Some(join) =
                        self.grouped.take_if(|g| g.parent == alias && g.relation.name == relation.name && groupable(args, parts))
                    {
                        let source = AggregateSource::Grouped { join: &join, table: target, filter: args.filter.as_ref() };
                        let written = self.aggregate_frame(&mut frame, parts, &source);
                        self.grouped = Some(join);
                        written?;
                    } else if aggregate_values(parts).is_some_and(|values| values <= 1) {
                        self.aggregate_frame(&mut frame, parts, &AggregateSource::Subquery { table: target, link, args })?;
                    } else {
                        self.frame_column(&mut frame, |w| {
                            w.open_embedded();
                            w.aggregate_body(target, Some(link), args, parts)?;
                            w.close_embedded();
                            Ok(())
                        })?;
                    }
                }
            }
        }
        frame.text("}");
        Ok(frame)
    }

    /// `{aggregate: {...}}` framed: what `grouped_aggregate` and
    /// `aggregate_body` write, each value a column read from `source`.
    fn aggregate_frame(&mut self, frame: &mut RowFrame, parts: &[AggregatePart], source: &AggregateSource<'_>) -> Result<(), EngineError> {
        let rows = source.rows();
        frame.text("{");
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                frame.text(",");
            }
            match part {
                AggregatePart::Typename { key, name } => frame.typename(key, name),
                AggregatePart::Nodes { .. } => return Err(invalid("`nodes` cannot be framed")),
                AggregatePart::Aggregate { key, fields } => {
                    frame.key(key);
                    frame.text("{");
                    for (j, field) in fields.iter().enumerate() {
                        if j > 0 {
                            frame.text(",");
                        }
                        match field {
                            AggregateField::Typename { key, name } => frame.typename(key, name),
                            AggregateField::Count { key, columns, distinct } => {
                                frame.key(key);
                                let count = self.count_expr(rows, columns, *distinct);
                                self.frame_column(frame, |w| w.aggregate_value(&count, Scalar::Bigint, source))?;
                            }
                            AggregateField::Function { key, function, leaves } => {
                                frame.key(key);
                                frame.text("{");
                                for (k, leaf) in leaves.iter().enumerate() {
                                    if k > 0 {
                                        frame.text(",");
                                    }
                                    match leaf {
                                        Leaf::Typename { key, name } => frame.typename(key, name),
                                        Leaf::Column { key, column, scalar } => {
                                            frame.key(key);
                                            let expr = format!("{}({rows}.\"{column}\")", function.name());
                                            let scalar = function.result_scalar(*scalar);
                                            self.frame_column(frame, |w| w.aggregate_value(&expr, scalar, source))?;
                                        }
                                    }
                                }
                                frame.text("}");
                            }
                        }
                    }
                    frame.text("}");
                }
            }
        }
        frame.text("}");
        Ok(())
    }

    /// The next value column of a framed row, ` AS wx_cN`: the JSON text
    /// `write` writes, as text whatever the database's type of it.
    fn frame_column(&mut self, frame: &mut RowFrame, write: impl FnOnce(&mut Self) -> Result<(), EngineError>) -> Result<(), EngineError> {
        if frame.columns > 0 {
            self.push(", ");
        }
        self.push("CAST((");
        write(self)?;
        self.push(&format!(") AS TEXT) AS wx_c{}", frame.columns));
        frame.pieces.push(Piece::Column(frame.columns));
        frame.columns += 1;
        Ok(())
    }

    /// ` FILTER (WHERE <the joined row exists> AND <filter>)`: an unmatched
    /// parent's one all-NULL joined row is never counted.
    fn group_filter(&mut self, join: &GroupedJoin, table: &Table, filter: Option<&BoolExp>) -> Result<(), EngineError> {
        self.push(" FILTER (WHERE ");
        self.column(&join.alias, &join.relation.remote);
        self.push(" IS NOT NULL");
        if let Some(filter) = filter.filter(|f| !matches!(f, BoolExp::True)) {
            self.push(" AND (");
            self.bool_exp(table, &join.alias, filter)?;
            self.push(")");
        }
        self.push(")");
        Ok(())
    }

    /// The array relation whose aggregates the rows of `args` read from a
    /// grouped join, if the plan groups them (see the module doc).
    fn grouped_relation(&self, link: Option<Link<'_>>, args: &ListArgs, json: &[&[FieldSel]]) -> Option<Relation> {
        let wanted = match self.catalog.aggregate_plan {
            AggregatePlan::Correlated => false,
            AggregatePlan::Auto => self.kind == DatabaseKind::Postgres && link.is_none() && args.limit.is_none(),
            AggregatePlan::Grouped => true,
        };
        if !wanted || !args.distinct_on.is_empty() {
            return None;
        }
        json.iter().flat_map(|fields| fields.iter()).find_map(|field| match field {
            FieldSel::Aggregate { relation, args, parts, .. } if relation.kind == RelationKind::Array && groupable(args, parts) => {
                Some(relation.clone())
            }
            _ => None,
        })
    }

    /// The rows of `table` a list argument set selects, each with its JSON
    /// objects (`wx_j0`, `wx_j1`, ...), in order; or, [`RowsShape::framed`],
    /// with the value columns of `json[0]` and the frame around them.
    fn rows(
        &mut self,
        table: &Table,
        link: Option<Link<'_>>,
        args: &ListArgs,
        json: &[&[FieldSel]],
        shape: RowsShape,
    ) -> Result<Option<RowFrame>, EngineError> {
        let alias = self.alias();
        let permission = self.permission(table, Operation::Select)?;
        let grouped =
            self.grouped_relation(link, args, json).map(|relation| GroupedJoin { parent: alias.clone(), relation, alias: self.alias() });
        let outer = std::mem::replace(&mut self.grouped, grouped);
        let written = self.rows_select(&alias, args, json, shape);
        let grouped = std::mem::replace(&mut self.grouped, outer);
        let frame = written?;
        // "Some child row exists" over the grouped relation is what an inner
        // join says: the join turns inner and the probe goes, so the
        // database may start from either table.
        let narrowed = match (&grouped, &args.filter) {
            (Some(join), Some(filter)) => self.without_child_probe(&join.relation, filter)?,
            _ => None,
        };
        let inner = narrowed.is_some();
        let filter = narrowed.or_else(|| args.filter.clone());
        let filters: Vec<&BoolExp> = permission.iter().chain(filter.iter()).collect();
        self.push(" FROM ");
        if args.distinct_on.is_empty() {
            self.table_name(&table.name);
            self.push(&format!(" AS {alias}"));
            if let Some(join) = &grouped {
                self.group_join(join, inner)?;
            }
            self.push(" WHERE ");
            self.conditions(table, &alias, link, &filters)?;
        } else {
            self.distinct_source(table, link, args, &filters)?;
            self.push(&format!(" AS {alias} WHERE {alias}.wx_dn = 1"));
        }
        if grouped.is_some() {
            self.push(" GROUP BY ");
            self.column(&alias, "id");
        }
        let ordered = shape.ranked || shape.framed || args.limit.is_some() || args.offset.is_some();
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
        Ok(frame)
    }

    /// `SELECT` and the select list of [`Writer::rows`].
    fn rows_select(
        &mut self,
        alias: &str,
        args: &ListArgs,
        json: &[&[FieldSel]],
        shape: RowsShape,
    ) -> Result<Option<RowFrame>, EngineError> {
        self.push("SELECT ");
        if shape.framed {
            let [fields] = json else { return Err(invalid("a framed row has one JSON object")) };
            let frame = self.row_frame(alias, fields)?;
            if frame.columns == 0 {
                self.push("1 AS wx_row");
            }
            return Ok(Some(frame));
        }
        let mut items = 0;
        if shape.columns {
            self.push(&format!("{alias}.*"));
            items += 1;
        }
        for (i, fields) in json.iter().enumerate() {
            if items > 0 {
                self.push(", ");
            }
            self.row_json(alias, fields)?;
            self.push(&format!(" AS wx_j{i}"));
            items += 1;
        }
        if items == 0 {
            self.push("1 AS wx_row");
        }
        if shape.ranked {
            self.push(", row_number() OVER (ORDER BY ");
            self.order_list(alias, &args.order_by)?;
            self.push(") AS wx_rn");
        }
        if shape.keyed {
            if args.order_by.is_empty() {
                self.push(", ");
                self.column(alias, "id");
                self.push(" AS wx_o0");
            }
            for (i, order) in args.order_by.iter().enumerate() {
                self.push(", ");
                self.order_target(alias, &order.target)?;
                self.push(&format!(" AS wx_o{i}"));
            }
        }
        Ok(None)
    }

    /// `filter` without its top-level "some `relation` row exists" part,
    /// when it has one whose test every such row passes (`{point_count: {}}`,
    /// `{point_count: {id: {_is_null: false}}}`); `None` when it has none.
    fn without_child_probe(&self, relation: &Relation, filter: &BoolExp) -> Result<Option<BoolExp>, EngineError> {
        if self.kind != DatabaseKind::Postgres {
            // SQLite's planner reads every parent first for the inner join
            // (the probe lets it start from the children): it keeps the probe.
            return Ok(None);
        }
        let child = self.table(&relation.target)?;
        let probe = |exp: &BoolExp| matches!(exp, BoolExp::Exists { relation: r, filter } if r.name == relation.name && r.target == relation.target && always_true(child, filter));
        Ok(match filter {
            exp if probe(exp) => Some(BoolExp::True),
            BoolExp::And(parts) => parts.iter().position(probe).map(|at| {
                let mut rest = parts.clone();
                rest.remove(at);
                BoolExp::and(rest)
            }),
            _ => None,
        })
    }

    /// ` LEFT JOIN "child" AS g ON g.remote = parent.local AND <child's
    /// read permission>` (` JOIN` when `inner`: only parents with a child).
    fn group_join(&mut self, join: &GroupedJoin, inner: bool) -> Result<(), EngineError> {
        let target = self.table(&join.relation.target)?;
        let permission = self.permission(target, Operation::Select)?;
        self.push(if inner { " JOIN " } else { " LEFT JOIN " });
        self.table_name(&target.name);
        self.push(&format!(" AS {} ON ", join.alias));
        let link = Link { parent_alias: &join.parent, relation: &join.relation };
        self.conditions(target, &join.alias, Some(link), &permission.iter().collect::<Vec<_>>())
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

/// Whether every row of `table` passes `exp` (no test, or only
/// `_is_null: false` on columns that cannot be null).
fn always_true(table: &Table, exp: &BoolExp) -> bool {
    match exp {
        BoolExp::True => true,
        BoolExp::And(parts) => parts.iter().all(|p| always_true(table, p)),
        BoolExp::Compare { column, op: CompareOp::IsNull(false), .. } => table.column(column).is_some_and(|c| !c.nullable),
        _ => false,
    }
}
