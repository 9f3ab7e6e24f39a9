//! The two plans of aggregates over an array relation (see the module doc of
//! `wxnotify::hasura::sql::select`): three servers on one database, planning
//! `correlated`, `grouped` (wherever it can) and `auto`, answer many
//! generated queries, and every answer must be the same. The plan each one
//! used is checked from the statements it ran, so the comparison cannot pass
//! by both sides taking the same plan. On SQLite and PostgreSQL.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use wxnotify::auth::Role;
use wxnotify::db::DatabaseKind;

use crate::common::{self, TestApp};

/// The three servers, sharing the first one's database.
struct Plans {
    correlated: TestApp,
    grouped: TestApp,
    auto: TestApp,
    backend: DatabaseKind,
    /// Dropping a server's stop signal stops it: kept while the test runs.
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Plans {
    async fn start(backend: DatabaseKind) -> Option<Plans> {
        let correlated = common::spawn_app_with(backend, &[("SCHEDULER", "false"), ("TABLE_AGGREGATES", "correlated")]).await?;
        let other = |plan: &'static str| {
            let url = correlated.test_db.url.clone();
            async move { common::start_server(url, &[("SCHEDULER", "false"), ("TABLE_AGGREGATES", plan)]).await }
        };
        let (state, address, grouped_stop, _) = other("grouped").await;
        let grouped = common::attach(state, address, &correlated.test_db);
        let (state, address, auto_stop, _) = other("auto").await;
        let auto = common::attach(state, address, &correlated.test_db);
        Some(Plans { correlated, grouped, auto, backend, _stops: vec![grouped_stop, auto_stop] })
    }

    /// The answers of the three plans to `query` as `token`, and the
    /// statements the grouped and auto servers ran.
    async fn ask(&self, token: &str, query: &str) -> ([Value; 3], [String; 2]) {
        let mut answers = Vec::new();
        let mut sql = Vec::new();
        for app in [&self.correlated, &self.grouped, &self.auto] {
            app.state.sql_statements.record();
            let body = app.graphql_with(Some(token), query, json!({})).await;
            let statements: Vec<String> = app.state.sql_statements.take_recorded().into_iter().map(|s| s.sql).collect();
            assert!(body.get("errors").is_none(), "{query}\n{body:#}");
            if std::ptr::eq(app, &self.correlated) {
                assert!(!statements.iter().any(|s| s.contains("GROUP BY")), "the correlated plan grouped: {query}");
            } else {
                sql.push(statements.join(";\n"));
            }
            answers.push(body["data"].clone());
        }
        let [c, g, a] = <[Value; 3]>::try_from(answers).expect("three answers");
        let [g_sql, a_sql] = <[String; 2]>::try_from(sql).expect("two statements");
        ([c, g, a], [g_sql, a_sql])
    }
}

/// Whether `sql` joins and groups `table`'s rows.
fn joins(sql: &str, table: &str) -> bool {
    // LEFT JOIN, or JOIN where a "some child exists" filter was folded in.
    sql.contains(&format!(" JOIN \"{table}\"")) && sql.contains("GROUP BY")
}

/// Six accounts and their unread rows and push codes: some accounts have
/// none, senders repeat and are sometimes NULL, so distinct counts, NULLs and
/// empty groups all occur.
async fn fixture(app: &TestApp) {
    let statuses = ["经纪人", "新人", "游客", "经纪人", "新人", "游客"];
    let accounts: Vec<Value> = (0..6)
        .map(|i| {
            let oaopenid = if i % 3 == 2 { Value::Null } else { json!(format!("oa{i}")) };
            json!({ "nickname": format!("n{i}"), "user_status": statuses[i], "oaopenid": oaopenid })
        })
        .collect();
    app.data("mutation($a: [account_insert_input!]!) { insert_account(objects: $a) { affected_rows } }", json!({ "a": accounts })).await;
    let mut rows = Vec::new();
    for (account, n) in [(1, 5), (2, 3), (3, 1), (5, 4)] {
        for k in 0..n {
            let sender = if k % 3 == 2 { Value::Null } else { json!(format!("s{}", k % 2)) };
            let kind = if k % 2 == 0 { "聊天" } else { "投递邀约" };
            rows.push(json!({ "account_account": account, "type": kind, "sender": sender, "content": format!("c{}", k % 3) }));
        }
    }
    app.data("mutation($r: [point_count_insert_input!]!) { insert_point_count(objects: $r) { affected_rows } }", json!({ "r": rows }))
        .await;
    let codes = json!([
        { "account_account": 1, "kind": "FORM_ID", "code": "f1" },
        { "account_account": 1, "kind": "FORM_ID", "code": "f2" },
        { "account_account": 3, "kind": "FORM_ID", "code": "f3" },
    ]);
    app.data("mutation($o: [push_code_insert_input!]!) { insert_push_code(objects: $o) { affected_rows } }", json!({ "o": codes })).await;
}

/// What an aggregate field selects, and whether the grouped join can answer it.
const SELECTIONS: [(&str, bool); 7] = [
    ("aggregate { count }", true),
    ("aggregate { count(columns: [sender]) c2: count(columns: [sender], distinct: true) }", true),
    ("aggregate { count(columns: [sender, content], distinct: true) }", true),
    ("aggregate { sum { id account_account } avg { id } }", true),
    ("aggregate { min { id type created_at sender } max { id content created_at } }", true),
    ("__typename aggregate { __typename count max { __typename sender } }", true),
    ("aggregate { count } nodes { id type }", false),
];

/// An aggregate field's own arguments, and whether the grouped join can answer them.
const AGGREGATE_ARGS: [(&str, bool); 8] = [
    ("", true),
    (r#"(where: {type: {_eq: "聊天"}})"#, true),
    (r#"(where: {_or: [{sender: {_is_null: true}}, {_not: {content: {_in: ["c0", "c2"]}}}]})"#, true),
    (r#"(where: {account: {user_status: {_eq: "新人"}}})"#, true),
    (r#"(order_by: {sender: desc_nulls_last}, where: {sender: {_like: "s%"}})"#, true),
    ("(order_by: {id: desc}, limit: 2)", false),
    ("(order_by: {id: asc}, offset: 1)", false),
    ("(distinct_on: [type], order_by: [{type: asc}, {id: desc}])", false),
];

/// The parent list's arguments, and whether `auto` groups its rows (on
/// PostgreSQL; on SQLite it never does).
const LIST_ARGS: [(&str, bool); 8] = [
    ("", true),
    (r#"(where: {point_count: {type: {_eq: "聊天"}}})"#, true),
    (
        r#"(where: {_and: [{oaopenid: {_is_null: false}}, {point_count: {id: {_is_null: false}}}, {_or: [{user_status: {_eq: "经纪人"}}, {user_status: {_eq: "新人"}}]}]})"#,
        true,
    ),
    (r#"(where: {_not: {point_count: {}}})"#, true),
    (
        r#"(where: {_or: [{point_count: {sender: {_eq: "s1"}}}, {push_code: {}}]}, order_by: [{point_count_aggregate: {count: desc}}, {id: asc}])"#,
        true,
    ),
    ("(order_by: [{user_status: desc}, {id: desc}], limit: 4, offset: 1)", false),
    ("(limit: 3)", false),
    ("(distinct_on: [user_status], order_by: [{user_status: asc}, {id: desc}])", false),
];

/// On SQLite, whether `sql` writes "some `table` row matches" as a probe per
/// account (`EXISTS`) and whether as a list of the rows (`IN`); see
/// `wxnotify::hasura::statistics`.
fn semi_joins(sql: &str, table: &str) -> (bool, bool) {
    (sql.contains(&format!("EXISTS (SELECT 1 FROM \"{table}\"")), sql.contains(&format!("\"account_account\" FROM \"{table}\" AS")))
}

async fn plans_answer_alike(plans: &Plans) {
    fixture(&plans.correlated).await;
    // Only the auto server reads statistics: 13 unread rows under 6
    // accounts, so on SQLite it probes each account for "some unread row"
    // and lists the 3 push codes, where the other two list both.
    plans.correlated.db.execute_unprepared("ANALYZE").await.unwrap();
    plans.auto.state.engine.refresh_statistics().await.unwrap();
    let admin = plans.correlated.admin_token();
    let mut grouped_plans = 0;
    for (list, auto_groups) in LIST_ARGS {
        let distinct_list = list.contains("distinct_on");
        for (a, &(args, args_groupable)) in AGGREGATE_ARGS.iter().enumerate() {
            // Each query asks two aggregates of point_count (the second with
            // the next selection) and one of push_code, beside plain columns.
            for (s, &(selection, selection_groupable)) in SELECTIONS.iter().enumerate() {
                let (second, second_groupable) = SELECTIONS[(s + a + 1) % SELECTIONS.len()];
                let query = format!(
                    "{{ account{list} {{ id oaopenid first: point_count_aggregate{args} {{ {selection} }} \
                     second: point_count_aggregate {{ {second} }} push_code_aggregate {{ aggregate {{ count }} }} }} }}"
                );
                let ([correlated, grouped, auto], [grouped_sql, auto_sql]) = plans.ask(&admin, &query).await;
                assert_eq!(correlated, grouped, "grouped differs from correlated: {query}");
                assert_eq!(correlated, auto, "auto differs from correlated: {query}");
                // The first groupable aggregate's relation is joined; the
                // push_code aggregate always is groupable.
                let joined = match (args_groupable && selection_groupable, second_groupable) {
                    _ if distinct_list => None,
                    (true, _) | (_, true) => Some("point_count"),
                    (false, false) => Some("push_code"),
                };
                let did_group = joined.is_some_and(|table| joins(&grouped_sql, table));
                assert_eq!(did_group, joined.is_some(), "grouped plan chosen wrongly ({joined:?}): {query}\n{grouped_sql}");
                let auto_grouped = joined.is_some_and(|table| joins(&auto_sql, table));
                let auto_should = joined.is_some() && auto_groups && plans.backend == DatabaseKind::Postgres;
                assert_eq!(auto_grouped, auto_should, "auto plan chosen wrongly on {:?}: {query}\n{auto_sql}", plans.backend);
                if joined.is_none() {
                    assert!(!grouped_sql.contains("GROUP BY"), "a distinct_on list grouped: {query}");
                }
                if plans.backend == DatabaseKind::Sqlite {
                    let filters = |table: &str| list.contains(&format!("{table}: {{"));
                    for (table, probed) in [("point_count", true), ("push_code", false)] {
                        if filters(table) {
                            assert_eq!(semi_joins(&auto_sql, table), (probed, !probed), "{table} with statistics: {query}\n{auto_sql}");
                            assert_eq!(semi_joins(&grouped_sql, table), (false, true), "{table} without: {query}\n{grouped_sql}");
                        }
                    }
                }
                grouped_plans += usize::from(did_group);
            }
        }
    }
    assert!(grouped_plans > 100, "only {grouped_plans} queries were grouped");
}

async fn other_shapes_answer_alike(plans: &Plans) {
    fixture(&plans.correlated).await;
    let queries = [
        // The root aggregate's nodes carry the aggregate of a relation.
        r#"{ account_aggregate(where: {point_count: {}}) { aggregate { count sum { id } } nodes { id p: point_count_aggregate(where: {type: {_eq: "聊天"}}) { aggregate { count max { sender } } } } } }"#,
        // Nested under a parent row: auto stays correlated, grouped groups.
        r#"{ point_count(order_by: {id: asc}) { id account { id point_count_aggregate { aggregate { count } } } } }"#,
        r#"{ account(order_by: {id: desc}) { id point_count(order_by: {id: asc}, limit: 2) { id account { point_count_aggregate(where: {sender: {_is_null: false}}) { aggregate { count(columns: [sender], distinct: true) } } } } } }"#,
        // The seed's question.
        r#"query notice{ account(where:{_and:[ {oaopenid:{_is_null:false}}, {point_count:{id:{_is_null:false}}} {_or:[ {user_status:{_eq:"经纪人"}}, {user_status:{_eq:"新人"}}]} ]}){ oaopenid, chatnotice:point_count_aggregate(where:{type:{_eq:"聊天"}}){ aggregate{ count } }, nonchatnotice:point_count_aggregate(where:{type:{_eq:"投递邀约"}}){ aggregate{ count } } } }"#,
        // Both relations filtered, one joined.
        r#"{ account(where: {push_code: {}, point_count: {type: {_eq: "聊天"}}}) { id push_code_aggregate { aggregate { count } } point_count_aggregate { aggregate { count } } } }"#,
    ];
    let admin = plans.correlated.admin_token();
    for query in queries {
        let ([correlated, grouped, auto], _) = plans.ask(&admin, query).await;
        assert_eq!(correlated, grouped, "grouped differs from correlated: {query}");
        assert_eq!(correlated, auto, "auto differs from correlated: {query}");
    }
    // A user reads only its own account and unread rows: the joined rows
    // keep the child's read permission.
    let user = plans.correlated.token(Role::User, Some("1"));
    for query in [
        "{ account { id point_count_aggregate { aggregate { count } } } }",
        r#"{ account(where: {point_count: {type: {_eq: "聊天"}}}) { id point_count_aggregate(where: {type: {_eq: "聊天"}}) { aggregate { count max { sender } } } } }"#,
    ] {
        let ([correlated, grouped, auto], [grouped_sql, _]) = plans.ask(&user, query).await;
        assert!(joins(&grouped_sql, "point_count"), "{query}");
        assert_eq!(correlated, grouped, "grouped differs from correlated as a user: {query}");
        assert_eq!(correlated, auto, "auto differs from correlated as a user: {query}");
        assert_eq!(correlated["account"].as_array().map(Vec::len), Some(1), "{correlated}");
    }
}

/// The seed query's answer is right, not only alike: accounts 1 (经纪人),
/// 2 and 5 (新人) have an oaopenid and rows (3 + 2, 2 + 1 and 2 + 2); 3 has
/// no oaopenid, 4 no rows and 6 is a 游客.
async fn the_seed_question_is_answered(plans: &Plans) {
    fixture(&plans.correlated).await;
    let query = r#"{ account(where:{_and:[ {oaopenid:{_is_null:false}}, {point_count:{id:{_is_null:false}}} {_or:[ {user_status:{_eq:"经纪人"}}, {user_status:{_eq:"新人"}}]} ]}){ id chat:point_count_aggregate(where:{type:{_eq:"聊天"}}){ aggregate{ count } } job:point_count_aggregate(where:{type:{_eq:"投递邀约"}}){ aggregate{ count } } } }"#;
    let expected = json!({ "account": [
        { "id": 1, "chat": { "aggregate": { "count": 3 } }, "job": { "aggregate": { "count": 2 } } },
        { "id": 2, "chat": { "aggregate": { "count": 2 } }, "job": { "aggregate": { "count": 1 } } },
        { "id": 5, "chat": { "aggregate": { "count": 2 } }, "job": { "aggregate": { "count": 2 } } }
    ] });
    let admin = plans.correlated.admin_token();
    let (answers, [grouped_sql, auto_sql]) = plans.ask(&admin, query).await;
    // `auto` groups on PostgreSQL only (see `hasura::sql::select`).
    assert!(joins(&grouped_sql, "point_count"), "{grouped_sql}");
    assert_eq!(joins(&auto_sql, "point_count"), plans.backend == DatabaseKind::Postgres, "{:?}: {auto_sql}", plans.backend);
    for answer in answers {
        assert_eq!(answer, expected);
    }
}

crate::on_both_databases! {
    Plans;
    grouped_and_correlated_aggregates_answer_alike => plans_answer_alike;
    grouped_and_correlated_agree_on_roots_nesting_and_permissions => other_shapes_answer_alike;
    the_grouped_plan_answers_the_seed_question => the_seed_question_is_answered;
}
