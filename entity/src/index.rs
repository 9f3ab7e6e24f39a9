//! The indexes a table carries beyond its keys and `#[sea_orm(indexed)]`
//! columns: each entity module lists its own in `INDEXES`, a migration
//! creates them from that list, and the SQLite filter writer reads it to
//! emit, for a containment filter, exactly the expression an index holds.
//!
//! A declaration says what the index serves; each database gets the form
//! its planner can use. PostgreSQL answers `@>` from one GIN index over the
//! whole document; SQLite has no such index, so each JSON path that filters
//! reach gets an expression index of its own.

/// One declared index, named `<table>_<what>_idx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Index {
    pub name: &'static str,
    pub key: Key,
}

/// What an index is built over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A B-tree over columns, on both databases.
    Columns(&'static [&'static str]),
    /// PostgreSQL: `USING gin (column jsonb_path_ops) WITH (fastupdate = off)`,
    /// serving `column @> pattern`. The pending list is off because it made
    /// each update of the row pay for merging it later; SQLite: nothing (see
    /// [`Key::JsonPath`]).
    JsonContainment(&'static str),
    /// SQLite: `json_extract(column, '$.a.b')`, serving containment patterns
    /// that give a string at that path. PostgreSQL: nothing, the column's
    /// [`Key::JsonContainment`] index serves them.
    JsonPath { column: &'static str, path: &'static [&'static str] },
}

impl Key {
    /// The JSON path in SQLite's syntax, `$.WECHAT.unionId`. Path keys are
    /// identifiers (checked by a test), so the text needs no quoting.
    pub fn sqlite_path(path: &[&str]) -> String {
        let mut text = String::from("$");
        for key in path {
            text.push('.');
            text.push_str(key);
        }
        text
    }
}

/// Every table's declared indexes, by table name.
pub fn declared() -> Vec<(&'static str, &'static [Index])> {
    vec![("account", crate::account::INDEXES), ("point_count", crate::point_count::INDEXES)]
}

/// The JSON paths of `table.column` that SQLite holds expression indexes on.
pub fn sqlite_json_paths(table: &str, column: &str) -> Vec<&'static [&'static str]> {
    declared()
        .into_iter()
        .filter(|(name, _)| *name == table)
        .flat_map(|(_, indexes)| indexes.iter())
        .filter_map(|index| match index.key {
            Key::JsonPath { column: c, path } if c == column => Some(path),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identifier(text: &str) -> bool {
        !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    /// Names and path keys are written into SQL as they are, so they must be
    /// plain identifiers; index names are unique across the schema.
    #[test]
    fn declarations_are_identifiers_and_unique() {
        let mut names = std::collections::HashSet::new();
        for (table, indexes) in declared() {
            for index in indexes {
                assert!(identifier(index.name) && index.name.starts_with(&format!("{table}_")), "{}", index.name);
                assert!(names.insert(index.name), "{} declared twice", index.name);
                let words: Vec<&str> = match index.key {
                    Key::Columns(columns) => columns.to_vec(),
                    Key::JsonContainment(column) => vec![column],
                    Key::JsonPath { column, path } => std::iter::once(column).chain(path.iter().copied()).collect(),
                };
                assert!(!words.is_empty() && words.iter().all(|w| identifier(w)), "{}: {words:?}", index.name);
            }
        }
    }

    #[test]
    fn the_login_map_paths_are_indexed_for_sqlite() {
        let paths = sqlite_json_paths("account", "oauth2_user_info_map");
        let texts: Vec<String> = paths.iter().map(|p| Key::sqlite_path(p)).collect();
        assert_eq!(texts, ["$.WECHAT.unionId", "$.WECHAT.openId"]);
        assert!(sqlite_json_paths("account", "nickname").is_empty());
    }
}
