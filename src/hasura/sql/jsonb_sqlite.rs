//! PostgreSQL's jsonb operators on SQLite, where JSON is text.
//!
//! The operand is known when the SQL is written, so containment is unrolled
//! over the operand's structure into `json_type` checks and `json_each`
//! lookups, following PostgreSQL's rules:
//! - an object contains an object when every key of the operand is present
//!   and its value contains the operand's value;
//! - an array contains an array when every operand element is contained in
//!   some element; a top-level array also contains a bare scalar it holds;
//! - scalars contain equal scalars (numbers compare numerically).
//!
//! Keys and values are bound parameters. The caller wraps the result so an
//! SQL NULL column stays unknown.
//!
//! SQLite cannot index that unrolled form, so where the entity declares an
//! expression index on a JSON path (`entity::index`), a pattern holding a
//! string at that path is also written as `json_extract(column, '$.path') =
//! value AND ...`, the indexed expression verbatim, which the planner uses.

use serde_json::Value as Json;

use super::Writer;
use crate::db::DatabaseKind;
use crate::hasura::ir::CompareOp;
use crate::hasura::meta::Scalar;

/// Where the JSON under test is: a whole document, or a `json_each` row.
#[derive(Clone)]
enum Node {
    /// An SQL expression holding JSON text.
    Document(String),
    /// The current row of `json_each(...) AS alias`.
    Element(String),
}

impl Node {
    fn type_of(&self) -> String {
        match self {
            Node::Document(doc) => format!("json_type({doc})"),
            Node::Element(alias) => format!("{alias}.type"),
        }
    }

    /// The SQL value of a scalar.
    fn atom(&self) -> String {
        match self {
            Node::Document(doc) => format!("json_extract({doc}, '$')"),
            Node::Element(alias) => format!("{alias}.atom"),
        }
    }

    /// JSON text of an array or object, to iterate.
    fn container(&self) -> String {
        match self {
            Node::Document(doc) => doc.clone(),
            Node::Element(alias) => format!("{alias}.value"),
        }
    }
}

impl Writer<'_> {
    /// SQLite, `_contains` or `_eq` on a jsonb column: `json_extract(column,
    /// '$.path') = value AND ` for each indexed path at which the pattern
    /// holds a string. Every document the full check accepts has that string
    /// there, so the conjunct changes no answer (an SQL NULL column gives NULL
    /// either way); it only lets the index find the candidates. Strings only:
    /// `json_extract` turns JSON into SQL values, and other types would need
    /// the type check the full condition already makes.
    pub(super) fn indexed_json_paths(&mut self, table: &str, alias: &str, column: &str, scalar: Scalar, op: &CompareOp) {
        if self.kind != DatabaseKind::Sqlite || scalar != Scalar::Jsonb {
            return;
        }
        let pattern = match op {
            CompareOp::Contains(pattern) => pattern.clone(),
            CompareOp::Eq(sea_orm::Value::Json(Some(pattern))) => (**pattern).clone(),
            _ => return,
        };
        for path in entity::index::sqlite_json_paths(table, column) {
            let leaf = path.iter().try_fold(&pattern, |node, key| node.as_object()?.get(*key));
            if let Some(Json::String(value)) = leaf {
                self.push(&format!("json_extract({alias}.\"{column}\", '{}') = ", entity::index::Key::sqlite_path(path)));
                self.param(value.clone());
                self.push(" AND ");
            }
        }
    }

    /// `column @> pattern`.
    pub(super) fn json_contains(&mut self, column: &str, pattern: &Json) {
        let doc = Node::Document(column.to_string());
        if is_scalar(pattern) {
            // The top-level exception: an array contains a bare scalar it holds.
            self.push("(");
            self.contains(&doc, pattern);
            self.push(&format!(" OR ({} = 'array' AND EXISTS (SELECT 1 FROM json_each({column}) AS ", doc.type_of()));
            let element = self.alias();
            self.push(&format!("{element} WHERE "));
            self.scalar_equals(&Node::Element(element), pattern);
            self.push(")))");
        } else {
            self.contains(&doc, pattern);
        }
    }

    /// `column <@ pattern`.
    pub(super) fn json_contained_in(&mut self, column: &str, pattern: &Json) {
        let doc = Node::Document(column.to_string());
        match pattern {
            Json::Array(items) => {
                // The mirror of the exception: a bare scalar is contained in a
                // top-level array that holds it.
                self.push("(");
                self.contained_in(&doc, pattern);
                self.push(&format!(" OR ({} NOT IN ('array', 'object') AND (1=0", doc.type_of()));
                for item in items.iter().filter(|i| is_scalar(i)) {
                    self.push(" OR ");
                    self.scalar_equals(&doc, item);
                }
                self.push(")))");
            }
            _ => self.contained_in(&doc, pattern),
        }
    }

    /// `column = pattern` as mutual containment (jsonb equality up to
    /// duplicate array elements).
    pub(super) fn json_equals(&mut self, column: &str, pattern: &Json) {
        let doc = Node::Document(column.to_string());
        self.push("(");
        self.contains(&doc, pattern);
        self.push(" AND ");
        self.contained_in(&doc, pattern);
        self.push(")");
    }

    /// `column ? key` (or `?|`, `?&`): a top-level key, a string element of
    /// a top-level array, or the string itself.
    pub(super) fn json_has_keys(&mut self, column: &str, keys: &[String], joiner: &str) {
        if keys.is_empty() {
            self.push(if joiner == " OR " { "1=0" } else { "1=1" });
            return;
        }
        self.push("(");
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                self.push(joiner);
            }
            let element = self.alias();
            self.push(&format!(
                "(CASE json_type({column}) WHEN 'object' THEN EXISTS (SELECT 1 FROM json_each({column}) AS {element} WHERE {element}.key = "
            ));
            self.param(key.clone());
            let element = self.alias();
            self.push(&format!(
                ") WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each({column}) AS {element} WHERE {element}.type = 'text' AND {element}.atom = "
            ));
            self.param(key.clone());
            self.push(&format!(") WHEN 'text' THEN json_extract({column}, '$') = "));
            self.param(key.clone());
            self.push(" ELSE 0 END)");
        }
        self.push(")");
    }

    fn contains(&mut self, node: &Node, pattern: &Json) {
        match pattern {
            Json::Object(map) => {
                self.push(&format!("({} = 'object'", node.type_of()));
                for (key, value) in map {
                    let element = self.alias();
                    self.push(&format!(" AND EXISTS (SELECT 1 FROM json_each({}) AS {element} WHERE {element}.key = ", node.container()));
                    self.param(key.clone());
                    self.push(" AND ");
                    self.contains(&Node::Element(element), value);
                    self.push(")");
                }
                self.push(")");
            }
            Json::Array(items) => {
                self.push(&format!("({} = 'array'", node.type_of()));
                for item in items {
                    let element = self.alias();
                    self.push(&format!(" AND EXISTS (SELECT 1 FROM json_each({}) AS {element} WHERE ", node.container()));
                    self.contains(&Node::Element(element), item);
                    self.push(")");
                }
                self.push(")");
            }
            scalar => self.scalar_equals(node, scalar),
        }
    }

    fn contained_in(&mut self, node: &Node, pattern: &Json) {
        match pattern {
            Json::Object(map) if map.is_empty() => {
                self.push(&format!("({} = 'object' AND NOT EXISTS (SELECT 1 FROM json_each({})))", node.type_of(), node.container()));
            }
            Json::Object(map) => {
                let element = self.alias();
                self.push(&format!(
                    "({} = 'object' AND NOT EXISTS (SELECT 1 FROM json_each({}) AS {element} WHERE NOT (CASE {element}.key",
                    node.type_of(),
                    node.container()
                ));
                for (key, value) in map {
                    self.push(" WHEN ");
                    self.param(key.clone());
                    self.push(" THEN ");
                    self.contained_in(&Node::Element(element.clone()), value);
                }
                self.push(" ELSE 0 END)))");
            }
            Json::Array(items) => {
                let element = self.alias();
                self.push(&format!(
                    "({} = 'array' AND NOT EXISTS (SELECT 1 FROM json_each({}) AS {element} WHERE NOT (1=0",
                    node.type_of(),
                    node.container()
                ));
                for item in items {
                    self.push(" OR ");
                    self.contained_in(&Node::Element(element.clone()), item);
                }
                self.push(")))");
            }
            scalar => self.scalar_equals(node, scalar),
        }
    }

    fn scalar_equals(&mut self, node: &Node, scalar: &Json) {
        let type_of = node.type_of();
        match scalar {
            Json::Null => self.push(&format!("({type_of} = 'null')")),
            Json::Bool(true) => self.push(&format!("({type_of} = 'true')")),
            Json::Bool(false) => self.push(&format!("({type_of} = 'false')")),
            Json::String(s) => {
                self.push(&format!("({type_of} = 'text' AND {} = ", node.atom()));
                self.param(s.clone());
                self.push(")");
            }
            Json::Number(n) => {
                self.push(&format!("({type_of} IN ('integer', 'real') AND {} = ", node.atom()));
                match n.as_i64() {
                    Some(i) => self.param(i),
                    None => self.param(n.as_f64().unwrap_or(f64::NAN)),
                }
                self.push(")");
            }
            Json::Array(_) | Json::Object(_) => self.push("(1=0)"),
        }
    }
}

fn is_scalar(value: &Json) -> bool {
    !matches!(value, Json::Array(_) | Json::Object(_))
}
