//! How many rows each table holds, as SQLite's own statistics say
//! (`sqlite_stat1`, which `ANALYZE` and `PRAGMA optimize` write), for the
//! one plan choice the table engine makes that SQLite's planner cannot: how
//! to write "some child row matches" (see `sql::filter`).
//!
//! The two spellings ask the same question and SQLite runs each one way
//! only. `parent.id IN (SELECT child.parent_id ...)` lists every child row
//! first, then fetches each parent by key: cheap when children are few (the
//! seed's documents: 100 accounts with unread rows among 20,000). `EXISTS
//! (... WHERE child.parent_id = parent.id)` reads every parent and probes the
//! child index once for each: cheap when most parents have children (the
//! `notice` bench: 1,000,000 unread rows under 100,000 accounts, where the
//! semi-join took 180–190 ms as a list and 40–80 ms as probes, see
//! docs/performance.md). [`TableSizes::probe_parents`]
//! picks `EXISTS` when the child table has at least as many rows as the
//! parent table; without statistics for both, the list.
//!
//! The server gathers statistics with `PRAGMA optimize=0x10002` at start and
//! every [`REFRESH`] (see [`crate::db::optimize`]), then re-reads the sizes
//! ([`crate::hasura::Engine::refresh_statistics`]). PostgreSQL plans the
//! `EXISTS` as a semi-join starting from either side, so it needs none.

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DbErr};

use crate::db::sql::Sql;

/// How often the server refreshes SQLite's statistics and re-reads them.
pub const REFRESH: Duration = Duration::from_secs(3600);

/// Rows per table, from `sqlite_stat1`; empty when nothing was analyzed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableSizes {
    rows: HashMap<String, u64>,
}

impl TableSizes {
    /// Reads `sqlite_stat1` (SQLite only; none yet is no error).
    pub async fn read(db: &impl ConnectionTrait) -> Result<TableSizes, DbErr> {
        let exists = Sql::new("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sqlite_stat1'").one(db).await?;
        if exists.is_none() {
            return Ok(TableSizes::default());
        }
        let mut sizes = TableSizes::default();
        for row in Sql::new("SELECT tbl, stat FROM sqlite_stat1").all(db).await? {
            let table: String = row.try_get_by_index(0)?;
            let stat: Option<String> = row.try_get_by_index(1)?;
            sizes.note(&table, stat.as_deref().unwrap_or_default());
        }
        Ok(sizes)
    }

    /// One `sqlite_stat1` row: its `stat` starts with the table's row count
    /// (for every index of the table, and for the table itself when it has
    /// no index); anything else is ignored.
    fn note(&mut self, table: &str, stat: &str) {
        if let Some(rows) = stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()) {
            let known = self.rows.entry(table.to_string()).or_default();
            *known = (*known).max(rows);
        }
    }

    /// The rows `table` held when last analyzed.
    pub fn rows(&self, table: &str) -> Option<u64> {
        self.rows.get(table).copied()
    }

    /// Whether "some `child` row matches" is cheaper probed once per `parent`
    /// row (`EXISTS`) than listed from every child row (`IN`): when both
    /// were analyzed and the children are at least as many as the parents.
    pub fn probe_parents(&self, parent: &str, child: &str) -> bool {
        matches!((self.rows(parent), self.rows(child)), (Some(parents), Some(children)) if children >= parents.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::TableSizes;

    #[test]
    fn sizes_come_from_the_first_number_of_each_stat() {
        let mut sizes = TableSizes::default();
        sizes.note("point_count", "1000000 10 5");
        sizes.note("account", "100000 1");
        sizes.note("account", "99990 2");
        sizes.note("account_map", "");
        sizes.note("broken", "many rows");
        assert_eq!(sizes.rows("point_count"), Some(1_000_000));
        assert_eq!(sizes.rows("account"), Some(100_000));
        assert_eq!(sizes.rows("account_map"), None);
        assert_eq!(sizes.rows("broken"), None);
        assert!(sizes.probe_parents("account", "point_count"));
        assert!(!sizes.probe_parents("point_count", "account"));
        assert!(!sizes.probe_parents("account", "unknown"), "without statistics the rows are listed");
        sizes.note("empty", "0");
        assert!(sizes.probe_parents("empty", "point_count"));
        assert!(!sizes.probe_parents("account", "empty"));
    }
}
