//! `T_bool_exp` to SQL. SQL's three-valued logic is kept on both databases:
//! `_neq` never matches NULL, and `_not` of an unknown stays unknown.

use super::{Link, Writer};
use crate::db::DatabaseKind;
use crate::hasura::error::{EngineError, invalid};
use crate::hasura::ir::{BoolExp, CompareOp};
use crate::hasura::meta::{Relation, RelationKind, Scalar, Table};

impl Writer<'_> {
    pub fn bool_exp(&mut self, table: &Table, alias: &str, exp: &BoolExp) -> Result<(), EngineError> {
        match exp {
            BoolExp::True => self.push("(1=1)"),
            BoolExp::And(parts) => self.joined(table, alias, parts, " AND ", "(1=1)")?,
            BoolExp::Or(parts) => self.joined(table, alias, parts, " OR ", "(1=0)")?,
            BoolExp::Not(inner) => {
                self.push("(NOT ");
                self.bool_exp(table, alias, inner)?;
                self.push(")");
            }
            // `_is_null` on a column that cannot be null (the seed's
            // `{point_count: {id: {_is_null: false}}}`) is decided here:
            // PostgreSQL 15 would test it on every row, which keeps an
            // EXISTS probe from being answered by an index alone.
            BoolExp::Compare { column, op: CompareOp::IsNull(null), .. } if table.column(column).is_some_and(|c| !c.nullable) => {
                self.push(if *null { "(1=0)" } else { "(1=1)" });
            }
            BoolExp::Compare { column, scalar, op } => {
                self.push("(");
                self.indexed_json_paths(&table.name, alias, column, *scalar, op);
                self.compare(&format!("{alias}.\"{column}\""), *scalar, op)?;
                self.push(")");
            }
            BoolExp::Exists { relation, filter } => {
                let target = self.table(&relation.target)?;
                let inner = self.alias();
                let permission = self.permission(target, crate::hasura::permission::Operation::Select)?;
                let filters: Vec<&BoolExp> = permission.iter().chain(std::iter::once(filter.as_ref())).collect();
                if self.kind == DatabaseKind::Sqlite
                    && relation.kind == RelationKind::Array
                    && !self.sizes.as_ref().is_some_and(|sizes| sizes.probe_parents(&table.name, &target.name))
                {
                    return self.in_related(alias, relation, &inner, &filters);
                }
                self.push("EXISTS (SELECT 1 FROM ");
                self.table_name(&target.name);
                self.push(&format!(" AS {inner} WHERE "));
                self.conditions(target, &inner, Some(Link { parent_alias: alias, relation }), &filters)?;
                self.push(")");
            }
        }
        Ok(())
    }

    /// SQLite, a filter through an array relation: `parent.local IN (SELECT
    /// child.remote ...)` rather than `EXISTS`. SQLite runs a correlated
    /// `EXISTS` once per parent row, so the seed's `notice` query read every
    /// account to find the few with unread rows; from `IN` it can start at
    /// the child rows and fetch their parents by key. Listing the children
    /// costs more than probing each parent once they outnumber the parents,
    /// so then, by SQLite's statistics, the filter stays an `EXISTS` (see
    /// [`crate::hasura::statistics`]). The NULL guards keep `EXISTS`'s
    /// two-valued answer (under `_not` too).
    fn in_related(&mut self, alias: &str, relation: &Relation, inner: &str, filters: &[&BoolExp]) -> Result<(), EngineError> {
        let target = self.table(&relation.target)?;
        let (local, remote) = (&relation.local, &relation.remote);
        self.push(&format!("({alias}.\"{local}\" IS NOT NULL AND {alias}.\"{local}\" IN (SELECT {inner}.\"{remote}\" FROM "));
        self.table_name(&target.name);
        self.push(&format!(" AS {inner} WHERE {inner}.\"{remote}\" IS NOT NULL AND "));
        self.conditions(target, inner, None, filters)?;
        self.push("))");
        Ok(())
    }

    fn joined(&mut self, table: &Table, alias: &str, parts: &[BoolExp], op: &str, empty: &str) -> Result<(), EngineError> {
        if parts.is_empty() {
            self.push(empty);
            return Ok(());
        }
        self.push("(");
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                self.push(op);
            }
            self.bool_exp(table, alias, part)?;
        }
        self.push(")");
        Ok(())
    }

    fn compare(&mut self, column: &str, scalar: Scalar, op: &CompareOp) -> Result<(), EngineError> {
        if scalar == Scalar::Jsonb && self.kind == DatabaseKind::Sqlite && !matches!(op, CompareOp::IsNull(_)) {
            return self.compare_json_sqlite(column, op);
        }
        let binary = |w: &mut Self, sql_op: &str, value: &sea_orm::Value| {
            w.push(&format!("{column} {sql_op} "));
            w.param(value.clone());
        };
        match op {
            CompareOp::Eq(v) => binary(self, "=", v),
            CompareOp::Neq(v) => binary(self, "<>", v),
            CompareOp::Gt(v) => binary(self, ">", v),
            CompareOp::Gte(v) => binary(self, ">=", v),
            CompareOp::Lt(v) => binary(self, "<", v),
            CompareOp::Lte(v) => binary(self, "<=", v),
            CompareOp::In(values) | CompareOp::Nin(values) => {
                let negated = matches!(op, CompareOp::Nin(_));
                if values.is_empty() {
                    // As PostgreSQL's `= ANY('{}')`: nothing is in the empty list.
                    self.push(if negated { "1=1" } else { "1=0" });
                    return Ok(());
                }
                self.push(&format!("{column} {}IN (", if negated { "NOT " } else { "" }));
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    self.param(value.clone());
                }
                self.push(")");
            }
            CompareOp::IsNull(true) => self.push(&format!("{column} IS NULL")),
            CompareOp::IsNull(false) => self.push(&format!("{column} IS NOT NULL")),
            CompareOp::Like { pattern, negated, case_insensitive } => self.like(column, pattern, *negated, *case_insensitive),
            CompareOp::Contains(json) => binary(self, "@>", &json.clone().into()),
            CompareOp::ContainedIn(json) => binary(self, "<@", &json.clone().into()),
            CompareOp::HasKey(key) => self.has_keys_postgres(column, std::slice::from_ref(key), " OR "),
            CompareOp::HasKeysAny(keys) => self.has_keys_postgres(column, keys, " OR "),
            CompareOp::HasKeysAll(keys) => self.has_keys_postgres(column, keys, " AND "),
        }
        Ok(())
    }

    fn has_keys_postgres(&mut self, column: &str, keys: &[String], joiner: &str) {
        if keys.is_empty() {
            // `?| '{}'` holds for nothing; `?& '{}'` for every non-null value.
            self.push(&if joiner == " OR " { "1=0".to_string() } else { format!("{column} IS NOT NULL") });
            return;
        }
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                self.push(joiner);
            }
            self.push(&format!("{column} ? "));
            self.param(key.clone());
        }
    }

    /// `LIKE` is case-sensitive in PostgreSQL with `\` as its escape. SQLite's
    /// `LIKE` ignores ASCII case, so the case-sensitive forms use `GLOB` with
    /// the pattern translated.
    fn like(&mut self, column: &str, pattern: &str, negated: bool, case_insensitive: bool) {
        let not = if negated { "NOT " } else { "" };
        let pattern = &literal_trailing_escape(pattern);
        match (self.kind, case_insensitive) {
            (DatabaseKind::Postgres, false) => self.push(&format!("{column} {not}LIKE ")),
            (DatabaseKind::Postgres, true) => self.push(&format!("{column} {not}ILIKE ")),
            (DatabaseKind::Sqlite, false) => {
                self.push(&format!("{column} {not}GLOB "));
                self.param(like_to_glob(pattern));
                return;
            }
            (DatabaseKind::Sqlite, true) => {
                self.push(&format!("{column} {not}LIKE "));
                self.param(pattern.to_string());
                self.push(" ESCAPE '\\'");
                return;
            }
        }
        self.param(pattern.to_string());
    }

    fn compare_json_sqlite(&mut self, column: &str, op: &CompareOp) -> Result<(), EngineError> {
        // An SQL NULL column is unknown to every operator, as in PostgreSQL.
        self.push(&format!("CASE WHEN {column} IS NULL THEN NULL ELSE ("));
        match op {
            CompareOp::Contains(pattern) => self.json_contains(column, pattern),
            CompareOp::ContainedIn(pattern) => self.json_contained_in(column, pattern),
            CompareOp::Eq(value) | CompareOp::Neq(value) => {
                let pattern = json_of(value)?;
                if matches!(op, CompareOp::Neq(_)) {
                    self.push("NOT ");
                }
                self.json_equals(column, &pattern);
            }
            CompareOp::In(values) | CompareOp::Nin(values) => {
                if matches!(op, CompareOp::Nin(_)) {
                    self.push("NOT ");
                }
                self.push("(1=0");
                for value in values {
                    self.push(" OR ");
                    self.json_equals(column, &json_of(value)?);
                }
                self.push(")");
            }
            CompareOp::IsNull(_) => return Err(invalid("`_is_null` is not a JSON comparison")),
            CompareOp::HasKey(key) => self.json_has_keys(column, std::slice::from_ref(key), " OR "),
            CompareOp::HasKeysAny(keys) => self.json_has_keys(column, keys, " OR "),
            CompareOp::HasKeysAll(keys) => self.json_has_keys(column, keys, " AND "),
            CompareOp::Gt(_) | CompareOp::Gte(_) | CompareOp::Lt(_) | CompareOp::Lte(_) | CompareOp::Like { .. } => {
                return Err(invalid("jsonb columns cannot be ordered or matched as text"));
            }
        }
        self.push(") END");
        Ok(())
    }
}

fn json_of(value: &sea_orm::Value) -> Result<serde_json::Value, EngineError> {
    match value {
        sea_orm::Value::Json(Some(json)) => Ok((**json).clone()),
        _ => Err(invalid("a jsonb comparison needs a JSON operand")),
    }
}

/// A pattern ending in a lone `\` escapes nothing, which PostgreSQL refuses;
/// it means a literal backslash.
fn literal_trailing_escape(pattern: &str) -> String {
    let trailing = pattern.chars().rev().take_while(|c| *c == '\\').count();
    if trailing % 2 == 1 { format!("{pattern}\\") } else { pattern.to_string() }
}

/// PostgreSQL `LIKE` (with `\` escapes) to SQLite `GLOB`.
pub fn like_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '\\' => match chars.next() {
                Some(escaped) => push_literal(&mut out, escaped),
                None => push_literal(&mut out, '\\'),
            },
            c => push_literal(&mut out, c),
        }
    }
    out
}

fn push_literal(out: &mut String, c: char) {
    match c {
        '*' | '?' | '[' => {
            out.push('[');
            out.push(c);
            out.push(']');
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::like_to_glob;

    #[test]
    fn a_trailing_backslash_is_literal() {
        assert_eq!(super::literal_trailing_escape("a\\"), "a\\\\");
        assert_eq!(super::literal_trailing_escape("a\\\\"), "a\\\\");
        assert_eq!(super::literal_trailing_escape("a%"), "a%");
    }

    #[test]
    fn like_patterns_become_globs() {
        assert_eq!(like_to_glob("ab%"), "ab*");
        assert_eq!(like_to_glob("a_c"), "a?c");
        assert_eq!(like_to_glob("100\\%"), "100%");
        assert_eq!(like_to_glob("*[?]"), "[*][[][?]]");
    }
}
