//! The seed's documents reach their rows through indexes, not scans: each
//! document runs against 20,000 accounts (statistics gathered), the server
//! records the SQL it compiled, and the database's own planner (`EXPLAIN`
//! on PostgreSQL, `EXPLAIN QUERY PLAN` on SQLite) says how it would run it.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::both_databases;
use crate::common::TestApp;
use crate::common::seed_docs::{self, GETCACHE, NOTICE, NOTICE_UPSERT, SYNC_UPDATE};
use wxnotify::db::DatabaseKind;
use wxnotify::db::sql::Sql;

const ACCOUNTS: i64 = 20_000;

/// One compiled statement and its plan, one line per plan node.
struct Planned {
    sql: String,
    plan: Vec<String>,
}

impl std::fmt::Display for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.sql)?;
        for line in &self.plan {
            writeln!(f, "    {line}")?;
        }
        Ok(())
    }
}

/// Runs `document` and plans every statement it ran that touches `table`.
async fn planned(app: &TestApp, table: &str, document: &str, variables: Value) -> Vec<Planned> {
    app.state.sql_statements.record();
    app.data(document, variables).await;
    let statements = app.state.sql_statements.take_recorded();
    let quoted = format!("\"{table}\"");
    let mut out = Vec::new();
    for statement in statements.into_iter().filter(|s| s.sql.contains(&quoted)) {
        let explain = match app.backend {
            DatabaseKind::Postgres => "EXPLAIN (COSTS OFF) ",
            DatabaseKind::Sqlite => "EXPLAIN QUERY PLAN ",
        };
        let mut explained = statement.clone();
        explained.sql = format!("{explain}{}", statement.sql);
        let rows = app.db.query_all_raw(explained).await.unwrap_or_else(|e| panic!("{e}: {}", statement.sql));
        let plan = rows
            .iter()
            .map(|row| match app.backend {
                DatabaseKind::Postgres => row.try_get::<String>("", "QUERY PLAN").expect("a plan line"),
                DatabaseKind::Sqlite => row.try_get::<String>("", "detail").expect("a plan line"),
            })
            .collect();
        out.push(Planned { sql: statement.sql, plan });
    }
    assert!(!out.is_empty(), "no statement on {table} was recorded");
    out
}

fn show(plans: &[Planned]) -> String {
    plans.iter().map(ToString::to_string).collect()
}

/// Plan lines that read a whole table of `tables`: a sequential scan, or
/// an index walked end to end (PostgreSQL's `Index Scan` with no `Index
/// Cond`, SQLite's `SCAN t USING INDEX`). SQLite names the alias (`SCAN
/// t1`), so aliases of those tables in the SQL count too.
fn scans(plans: &[Planned], tables: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for planned in plans {
        let names = names_of(&planned.sql, tables);
        for (i, line) in planned.plan.iter().enumerate() {
            let words: Vec<&str> = line.split_whitespace().filter(|w| *w != "->").collect();
            let whole = match words.as_slice() {
                ["Seq", "Scan", "on", name, ..] => Some(*name),
                ["Index", "Scan", "using", _, "on", name, ..] | ["Index", "Only", "Scan", "using", _, "on", name, ..] => {
                    let details = planned.plan[i + 1..].iter().take_while(|l| !l.contains("->") && !l.contains("Plan "));
                    (!details.into_iter().any(|l| l.contains("Index Cond"))).then_some(*name)
                }
                ["SCAN", name, ..] => Some(*name),
                _ => None,
            };
            if let Some(name) = whole.filter(|n| names.iter().any(|t| t == n)) {
                found.push(format!("{name}: {}", line.trim()));
            }
        }
    }
    found
}

/// The tables and every alias the SQL gives them (`"account" AS t1`).
fn names_of(sql: &str, tables: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    for table in tables {
        let marker = format!("\"{table}\" AS ");
        for (at, _) in sql.match_indices(&marker) {
            names.push(sql[at + marker.len()..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect());
        }
    }
    names
}

fn uses(plans: &[Planned], index: &str) -> bool {
    plans.iter().any(|p| p.plan.iter().any(|line| line.contains(index)))
}

both_databases! {
    async fn the_seed_sync_update_finds_its_account_through_a_login_map_index(app) {
        seed_docs::load(&app.db, ACCOUNTS).await;
        let n = ACCOUNTS / 2 + 1;
        let plans = planned(&app, "account", SYNC_UPDATE, json!({
            "unionid": seed_docs::unionid(n), "unionobject": { "WECHAT": { "unionId": seed_docs::unionid(n) } }, "openid": "oNewOa"
        })).await;
        let index = match app.backend {
            DatabaseKind::Postgres => "account_oauth2_user_info_map_idx",
            DatabaseKind::Sqlite => "account_oauth2_user_info_map_unionid_idx",
        };
        assert!(uses(&plans, index), "{index} unused:\n{}", show(&plans));
        assert_eq!(scans(&plans, &["account"]), Vec::<String>::new(), "\n{}", show(&plans));
    }
}

both_databases! {
    async fn the_notice_query_reaches_accounts_through_their_unread_rows(app) {
        seed_docs::load(&app.db, ACCOUNTS).await;
        // As the server does after each refresh of the statistics: 1,000
        // unread rows among 20,000 accounts, so on SQLite the rows are listed.
        app.state.engine.refresh_statistics().await.unwrap();
        let plans = planned(&app, "account", NOTICE, json!({})).await;
        // Reading the unread rows themselves is the query's work; accounts
        // are fetched by key from them. SQLite counts through the index;
        // PostgreSQL joins the rows once and groups them (see
        // `hasura::sql::select`), reading them however is cheapest.
        assert_eq!(scans(&plans, &["account"]), Vec::<String>::new(), "\n{}", show(&plans));
        if app.backend == DatabaseKind::Sqlite {
            assert!(uses(&plans, "point_count_account_account_type_idx"), "\n{}", show(&plans));
        }
    }

    async fn the_notice_query_probes_each_account_once_most_have_unread_rows(app) {
        // The notice bench's shape: ten unread rows under every account.
        // Listing them (1,000 rows per 100 accounts) costs more than probing
        // each account's rows through the index (`hasura::statistics`).
        seed_docs::load(&app.db, 2_000).await;
        for kind in ["聊天", "投递邀约"] {
            for _ in 0..5 {
                let mut fill = Sql::new("INSERT INTO point_count (created_at, updated_at, account_account, type, sender, content) SELECT created_at, updated_at, id, ");
                fill.bind(kind).push(", 'sender', 'content' FROM account");
                fill.execute(&app.db).await.unwrap();
            }
        }
        app.db.execute_unprepared("ANALYZE").await.unwrap();
        let listed = planned(&app, "account", NOTICE, json!({})).await;
        let before = app.data(NOTICE, json!({})).await;
        app.state.engine.refresh_statistics().await.unwrap();
        let probed = planned(&app, "account", NOTICE, json!({})).await;
        let after = app.data(NOTICE, json!({})).await;
        assert_eq!(before, after, "both spellings answer alike");
        assert_eq!(after["account"].as_array().map(Vec::len), Some(666), "every following 经纪人 or 新人");
        let exists = |plans: &[Planned]| plans.iter().any(|p| p.sql.contains("EXISTS (SELECT 1 FROM \"point_count\""));
        let list = |plans: &[Planned]| plans.iter().any(|p| p.sql.contains("\"account_account\" FROM \"point_count\" AS"));
        if app.backend == DatabaseKind::Sqlite {
            assert!(list(&listed) && !exists(&listed), "without statistics read, the rows are listed:\n{}", show(&listed));
            assert!(exists(&probed) && !list(&probed), "\n{}", show(&probed));
            assert!(!probed.iter().any(|p| p.plan.iter().any(|l| l.starts_with("LIST SUBQUERY"))), "\n{}", show(&probed));
            assert!(uses(&probed, "point_count_account_account_type_idx"), "\n{}", show(&probed));
        } else {
            // PostgreSQL joins the rows (see `hasura::sql::select`), whatever
            // the statistics: the engine reads none there.
            assert_eq!(listed[0].sql, probed[0].sql);
            assert!(!list(&probed), "\n{}", show(&probed));
        }
    }

    async fn getcache_reads_the_token_cache_alone(app) {
        seed_docs::load(&app.db, ACCOUNTS).await;
        app.data(r#"mutation { insert_actok_one(object: {appid: "wxcc99eeed41fadcbd", tok: "t", expiredtime: "2030-01-01T00:00:00Z"}) { id } }"#, json!({})).await;
        // `getcache` has no filter: it reads the whole cache, which the unique
        // appid key keeps at one row per appid. Nothing else may be read.
        let plans = planned(&app, "actok", GETCACHE, json!({})).await;
        let others = ["account", "point_count", "notice", "oa_follower", "delivery"];
        assert_eq!(scans(&plans, &others), Vec::<String>::new(), "\n{}", show(&plans));
        for planned in &plans {
            let outside: Vec<&String> = planned.plan.iter().filter(|l| others.iter().any(|t| l.contains(t))).collect();
            assert!(outside.is_empty(), "getcache reads {outside:?}\n{}", show(&plans));
        }
        assert_eq!(unique_index_columns(&app, "actok", "actok_appid_key").await, ["appid"]);
    }

    async fn the_notice_upsert_finds_its_row_through_the_unique_key(app) {
        seed_docs::load(&app.db, ACCOUNTS).await;
        for expire in ["2026-11-21T10:00:00+08:00", "2026-11-21T10:10:00+08:00"] {
            // First an insert, then the conflicting update of the same row.
            let plans = planned(&app, "notice", NOTICE_UPSERT, json!({ "account": 7, "expire": expire })).await;
            assert_eq!(scans(&plans, &["notice", "account"]), Vec::<String>::new(), "\n{}", show(&plans));
            match app.backend {
                DatabaseKind::Postgres => assert!(uses(&plans, "Conflict Arbiter Indexes: notice_account_account_key"), "\n{}", show(&plans)),
                // SQLite's plan does not show the conflict lookup; it resolves
                // `ON CONFLICT (col)` only through a unique index on exactly
                // those columns, so that index must exist.
                DatabaseKind::Sqlite => assert!(plans[0].sql.contains("ON CONFLICT (\"account_account\")"), "\n{}", show(&plans)),
            }
        }
        assert_eq!(unique_index_columns(&app, "notice", "notice_account_account_key").await, ["account_account"]);
        assert_eq!(app.count("notice").await, 1);
    }
}

/// The columns of the unique index `name` on `table`, from the catalog.
async fn unique_index_columns(app: &TestApp, table: &str, name: &str) -> Vec<String> {
    let sql = match app.backend {
        DatabaseKind::Postgres => format!(
            "SELECT a.attname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_attribute a \
             ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE c.relname = '{name}' AND i.indisunique \
             AND i.indrelid = '{table}'::regclass ORDER BY a.attnum"
        ),
        DatabaseKind::Sqlite => format!(
            "SELECT ii.name AS name FROM pragma_index_list('{table}') AS il, pragma_index_info(il.name) AS ii \
             WHERE il.name = '{name}' AND il.\"unique\" = 1 ORDER BY ii.seqno"
        ),
    };
    let rows = wxnotify::db::sql::Sql::new(sql).all(&app.db).await.expect("the catalog");
    rows.iter().map(|r| r.try_get::<String>("", "name").expect("a column name")).collect()
}
