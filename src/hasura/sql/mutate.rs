//! Writing: insert (with `on_conflict` upserts), update, delete.
//!
//! On PostgreSQL each mutation is one statement: the change in a CTE with
//! `RETURNING *`, and the response JSON built over it. SQLite cannot use
//! `RETURNING` inside a CTE, so there the change returns ids and a second
//! statement builds the response from them (deletes read first); the engine
//! runs those steps in one transaction.

use super::Writer;
use crate::db::DatabaseKind;
use crate::db::sql::Sql;
use crate::hasura::error::EngineError;
use crate::hasura::ir::{BoolExp, FieldSel, MutationPart, OnConflict};
use crate::hasura::meta::Table;
use crate::hasura::permission::Operation;

pub struct InsertRequest {
    /// One entry per object: its columns and values, system columns excluded.
    pub rows: Vec<Vec<(String, sea_orm::Value)>>,
    pub on_conflict: Option<OnConflict>,
}

pub struct UpdateRequest {
    pub filter: BoolExp,
    pub set: Vec<(String, sea_orm::Value)>,
    pub inc: Vec<(String, sea_orm::Value)>,
}

/// What a mutation field returns.
#[derive(Clone, Copy)]
pub enum MutationOutput<'s> {
    /// `T_mutation_response { affected_rows returning }`.
    Response(&'s [MutationPart]),
    /// `insert_T_one`, `update_T_by_pk`, `delete_T_by_pk`: a row or null.
    Row(&'s [FieldSel]),
}

impl Writer<'_> {
    /// PostgreSQL: one statement, the whole insert and its response. SQLite:
    /// one `INSERT ... RETURNING "id"` per group of objects giving the same
    /// columns.
    pub fn insert(mut self, table: &Table, request: &InsertRequest, output: MutationOutput<'_>) -> Result<Vec<Sql>, EngineError> {
        self.permission(table, Operation::Insert)?;
        let now = chrono::Utc::now();
        let groups = group_by_columns(&request.rows);
        if self.kind == DatabaseKind::Sqlite {
            let mut statements = Vec::with_capacity(groups.len());
            for (columns, rows) in &groups {
                let mut w = self.sibling();
                w.insert_values(table, columns, rows, request.on_conflict.as_ref(), now)?;
                w.push(" RETURNING \"id\"");
                statements.push(w.finish());
            }
            return Ok(statements);
        }
        self.push("WITH ");
        if groups.is_empty() {
            self.push(&format!("wx_m0 AS (SELECT * FROM \"{}\" WHERE 1=0)", table.name));
        }
        for (g, (columns, rows)) in groups.iter().enumerate() {
            self.push(&format!("{}wx_m{g} AS (", if g > 0 { ", " } else { "" }));
            self.insert_values(table, columns, rows, request.on_conflict.as_ref(), now)?;
            self.push(" RETURNING *)");
        }
        self.push(", wx_m AS (");
        for g in 0..groups.len().max(1) {
            self.push(&format!("{}SELECT * FROM wx_m{g}", if g > 0 { " UNION ALL " } else { "" }));
        }
        self.push(") ");
        self.response(table, "wx_m", None, output)?;
        Ok(vec![self.finish()])
    }

    /// `INSERT INTO "T" AS tN (...) VALUES (...), ... [ON CONFLICT ...]`.
    fn insert_values(
        &mut self,
        table: &Table,
        columns: &[String],
        rows: &[&Vec<(String, sea_orm::Value)>],
        on_conflict: Option<&OnConflict>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), EngineError> {
        let alias = self.alias();
        self.push("INSERT INTO ");
        self.table_name(&table.name);
        self.push(&format!(" AS {alias} (\"created_at\", \"updated_at\""));
        for column in columns {
            self.push(&format!(", \"{column}\""));
        }
        self.push(") VALUES ");
        for (r, row) in rows.iter().enumerate() {
            self.push(if r > 0 { ", (" } else { "(" });
            self.param(now);
            self.push(", ");
            self.param(now);
            for (_, value) in row.iter() {
                self.push(", ");
                self.param(value.clone());
            }
            self.push(")");
        }
        if let Some(on_conflict) = on_conflict {
            self.on_conflict(table, &alias, on_conflict)?;
        }
        Ok(())
    }

    fn on_conflict(&mut self, table: &Table, alias: &str, on_conflict: &OnConflict) -> Result<(), EngineError> {
        let target: Vec<String> = on_conflict.columns.iter().map(|c| format!("\"{c}\"")).collect();
        self.push(&format!(" ON CONFLICT ({})", target.join(", ")));
        if on_conflict.update_columns.is_empty() {
            self.push(" DO NOTHING");
            return Ok(());
        }
        self.push(" DO UPDATE SET ");
        for column in on_conflict.update_columns.iter().map(String::as_str).chain(["updated_at"]) {
            self.push(&format!("\"{column}\" = excluded.\"{column}\", "));
        }
        self.sql_truncate(2);
        if let Some(filter) = &on_conflict.filter {
            self.push(" WHERE ");
            self.bool_exp(table, alias, filter)?;
        }
        Ok(())
    }

    /// PostgreSQL: the whole update and its response. SQLite: the update,
    /// returning the ids of the rows changed.
    pub fn update(mut self, table: &Table, request: &UpdateRequest, output: MutationOutput<'_>) -> Result<Sql, EngineError> {
        let permission = self.permission(table, Operation::Update)?;
        let postgres = self.kind == DatabaseKind::Postgres;
        let alias = self.alias();
        self.push(if postgres { "WITH wx_m AS (UPDATE " } else { "UPDATE " });
        self.table_name(&table.name);
        self.push(&format!(" AS {alias} SET "));
        for (column, value) in &request.set {
            self.push(&format!("\"{column}\" = "));
            self.param(value.clone());
            self.push(", ");
        }
        for (column, value) in &request.inc {
            self.push(&format!("\"{column}\" = {alias}.\"{column}\" + "));
            self.param(value.clone());
            self.push(", ");
        }
        self.push("\"updated_at\" = ");
        self.param(chrono::Utc::now());
        self.push(" WHERE ");
        let filters: Vec<&BoolExp> = permission.iter().chain([&request.filter]).collect();
        self.conditions(table, &alias, None, &filters)?;
        if !postgres {
            self.push(" RETURNING \"id\"");
            return Ok(self.finish());
        }
        self.push(" RETURNING *) ");
        self.response(table, "wx_m", None, output)?;
        Ok(self.finish())
    }

    /// PostgreSQL: the whole delete and its response. SQLite: the ids of the
    /// rows the delete will remove (see [`Writer::delete_ids`]).
    pub fn delete(mut self, table: &Table, filter: &BoolExp, output: MutationOutput<'_>) -> Result<Sql, EngineError> {
        let permission = self.permission(table, Operation::Delete)?;
        let alias = self.alias();
        let filters: Vec<&BoolExp> = permission.iter().chain([filter]).collect();
        if self.kind == DatabaseKind::Sqlite {
            self.push(&format!("SELECT {alias}.\"id\" FROM "));
            self.table_name(&table.name);
            self.push(&format!(" AS {alias} WHERE "));
            self.conditions(table, &alias, None, &filters)?;
            return Ok(self.finish());
        }
        self.push("WITH wx_m AS (DELETE FROM ");
        self.table_name(&table.name);
        self.push(&format!(" AS {alias} WHERE "));
        self.conditions(table, &alias, None, &filters)?;
        self.push(" RETURNING *) ");
        self.response(table, "wx_m", None, output)?;
        Ok(self.finish())
    }

    /// SQLite: `DELETE` of the rows with these ids.
    pub fn delete_ids(mut self, table: &Table, ids: &[i64]) -> Sql {
        self.push("DELETE FROM ");
        self.table_name(&table.name);
        self.push(&format!(" WHERE \"id\" IN (SELECT value FROM json_each('{}'))", ids_json(ids)));
        self.finish()
    }

    /// SQLite: the response of a mutation that touched the rows with `ids`.
    pub fn mutation_result(mut self, table: &Table, ids: &[i64], output: MutationOutput<'_>) -> Result<Sql, EngineError> {
        let source = format!("(SELECT * FROM \"{}\" WHERE \"id\" IN (SELECT value FROM json_each('{}')))", table.name, ids_json(ids));
        self.response(table, &source, Some(ids.len()), output)?;
        Ok(self.finish())
    }

    /// `SELECT CAST(<response JSON over the rows in source> AS TEXT)`.
    fn response(&mut self, table: &Table, source: &str, affected: Option<usize>, output: MutationOutput<'_>) -> Result<(), EngineError> {
        // Rows the caller may not read are changed but not shown.
        let permission = self.permission(table, Operation::Select).unwrap_or(Some(BoolExp::Or(Vec::new())));
        let visible: Vec<&BoolExp> = permission.iter().collect();
        self.push("SELECT CAST(");
        match output {
            MutationOutput::Row(fields) => {
                let alias = self.alias();
                self.push("(SELECT ");
                self.row_json(&alias, fields)?;
                self.push(&format!(" FROM {source} AS {alias} WHERE "));
                self.conditions(table, &alias, None, &visible)?;
                self.push(" LIMIT 1)");
            }
            MutationOutput::Response(parts) => {
                self.object(parts, |w, part| {
                    match part {
                        MutationPart::AffectedRows { key } => {
                            w.key(key);
                            match affected {
                                Some(n) => w.push(&n.to_string()),
                                None => w.push(&format!("(SELECT count(*) FROM {source} AS wx_c)")),
                            }
                        }
                        MutationPart::Returning { key, fields } => {
                            w.key(key);
                            let alias = w.alias();
                            w.open_embedded();
                            w.push("SELECT ");
                            w.json_array_agg("s.wx_j0", "s.wx_rn");
                            w.push(" FROM (SELECT ");
                            w.row_json(&alias, fields)?;
                            w.push(&format!(
                                " AS wx_j0, row_number() OVER (ORDER BY {alias}.\"id\") AS wx_rn FROM {source} AS {alias} WHERE "
                            ));
                            w.conditions(table, &alias, None, &visible)?;
                            w.push(") AS s");
                            w.close_embedded();
                        }
                    }
                    Ok(())
                })?;
            }
        }
        self.push(" AS TEXT) AS wx_result");
        Ok(())
    }

    fn sql_truncate(&mut self, chars: usize) {
        let len = self.sql.text.len().saturating_sub(chars);
        self.sql.text.truncate(len);
    }
}

/// Ids as a JSON array literal. They are integers from the database, so
/// inlining them cannot inject anything.
fn ids_json(ids: &[i64]) -> String {
    let items: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("[{}]", items.join(","))
}

/// One object to insert: its columns and values, in order.
type Row = Vec<(String, sea_orm::Value)>;

/// Objects grouped by the set of columns they give, so each group is one
/// `VALUES` list (SQLite has no `DEFAULT` inside `VALUES`). Order is kept.
fn group_by_columns(rows: &[Row]) -> Vec<(Vec<String>, Vec<&Row>)> {
    let mut groups: Vec<(Vec<String>, Vec<&Row>)> = Vec::new();
    for row in rows {
        let columns: Vec<String> = row.iter().map(|(c, _)| c.clone()).collect();
        match groups.iter_mut().find(|(cols, _)| *cols == columns) {
            Some((_, members)) => members.push(row),
            None => groups.push((columns, vec![row])),
        }
    }
    groups
}
