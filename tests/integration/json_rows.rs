//! Where a root list's rows become JSON (see the module doc of
//! `wxnotify::hasura::sql::select`, `WXNOTIFY_TABLE_JSON`): servers on one
//! database, one writing the whole response in the database and one framing
//! the rows' values itself, answer many generated documents, and every
//! response body must be the same text, byte for byte. Each aggregate plan
//! is compared on its own, and which JSON path each server took is checked
//! from the statements it ran, so the comparison cannot pass by both sides
//! taking the same path. On SQLite and PostgreSQL.

use serde_json::{Value, json};
use wxnotify::auth::Role;
use wxnotify::db::DatabaseKind;

use crate::common::{self, TestApp};

/// For each aggregate plan, a server building JSON in the database and one
/// framing rows itself, all on the first one's database.
struct Paths {
    /// (plan, database, server)
    pairs: Vec<(&'static str, TestApp, TestApp)>,
    /// Dropping a server's stop signal stops it: kept while the test runs.
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

const PLANS: [&str; 2] = ["correlated", "grouped"];

impl Paths {
    async fn start(backend: DatabaseKind) -> Option<Paths> {
        let settings = |plan: &'static str, json: &'static str| [("SCHEDULER", "false"), ("TABLE_AGGREGATES", plan), ("TABLE_JSON", json)];
        let first = common::spawn_app_with(backend, &settings(PLANS[0], "database")).await?;
        let url = first.test_db.url.clone();
        let mut stops = Vec::new();
        let mut servers = Vec::new();
        for (plan, json) in [(PLANS[0], "server"), (PLANS[1], "database"), (PLANS[1], "server")] {
            let (state, address, stop, _) = common::start_server(url.clone(), &settings(plan, json)).await;
            stops.push(stop);
            servers.push(common::attach(state, address, &first.test_db));
        }
        let [correlated_server, grouped_database, grouped_server] = <[TestApp; 3]>::try_from(servers).ok()?;
        let pairs = vec![(PLANS[0], first, correlated_server), (PLANS[1], grouped_database, grouped_server)];
        Some(Paths { pairs, _stops: stops })
    }

    fn first(&self) -> &TestApp {
        &self.pairs[0].1
    }

    /// Asks `query` as `token` of every pair and checks each pair's bodies
    /// are the same text; returns the first body.
    async fn same_text(&self, token: &str, query: &str) -> Value {
        self.same(token, query, true).await
    }

    /// [`Paths::same_text`], or with `bytes` false the same JSON values:
    /// for several root fields, which async-graphql answers in the order
    /// they finish (on either path).
    async fn same(&self, token: &str, query: &str, bytes: bool) -> Value {
        let mut first = None;
        for (plan, database, server) in &self.pairs {
            let (database_body, database_sql) = raw(database, token, query).await;
            let (server_body, server_sql) = raw(server, token, query).await;
            let value: Value = serde_json::from_str(&database_body).expect("a JSON body");
            assert!(value.get("errors").is_none(), "{plan}: {query}\n{value:#}\n{database_sql}");
            if bytes {
                assert_eq!(server_body, database_body, "{plan}: the framed rows differ from the database's JSON: {query}\n{server_sql}");
            } else {
                let framed: Value = serde_json::from_str(&server_body).expect("a JSON body");
                assert_eq!(framed, value, "{plan}: the framed rows differ from the database's JSON: {query}\n{server_sql}");
            }
            // Every document here has a root list: the one server frames it
            // (its statement returns rows, not one text), the other never does.
            // (The table engine's statements alias their tables `t1`, ...;
            // the server's own reads do not.)
            let framed = |sql: &str| sql.split(";\n").filter(|s| s.contains(" AS t1") && !s.ends_with(") AS TEXT) AS wx_result")).count();
            assert_eq!(framed(&database_sql), 0, "{plan}: framed: {database_sql}");
            assert!(framed(&server_sql) > 0, "{plan}: not framed: {server_sql}");
            first.get_or_insert(value);
        }
        first.expect("one pair at least")
    }
}

/// The response body of `query` as `token`, as text, and the statements it ran.
async fn raw(app: &TestApp, token: &str, query: &str) -> (String, String) {
    app.state.sql_statements.record();
    let response = app
        .client
        .post(format!("{}/api/graphql", app.address))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": {} }))
        .send()
        .await
        .expect("POST /api/graphql");
    let body = response.text().await.expect("a body");
    let statements: Vec<String> = app.state.sql_statements.take_recorded().into_iter().map(|s| s.sql).collect();
    (body, statements.join(";\n"))
}

/// Accounts whose text needs escaping (quotes, backslashes, control
/// characters, non-ASCII, an empty string) and NULLs, with login maps,
/// unread rows, push codes and notices; followers with booleans.
async fn fixture(app: &TestApp) {
    let nicknames = ["plain", "say \"hi\"", "back\\slash", "line\nbreak\ttab", "\u{1}\u{1f}ctl", "中文 ✓ 😀", "", "</script>"];
    let statuses = [Value::from("经纪人"), "新人".into(), "游客".into(), Value::Null];
    let accounts: Vec<Value> = nicknames
        .iter()
        .enumerate()
        .map(|(i, nickname)| {
            let oaopenid = if i % 3 == 2 { Value::Null } else { json!(format!("oa{i}")) };
            let map = match i % 4 {
                0 => json!({ "WECHAT": { "openId": format!("o{i}"), "unionId": format!("u{i}") } }),
                1 => json!({ "list": [1, 2.5, "three", null, true], "nested": { "\"q\"": "\\" } }),
                2 => Value::Null,
                _ => json!("中文"),
            };
            json!({
                "nickname": nickname, "user_status": statuses[i % statuses.len()], "oaopenid": oaopenid,
                "username": if i % 2 == 0 { Value::Null } else { json!(format!("u\"{i}")) },
                "oauth2_user_info_map": map,
            })
        })
        .collect();
    app.data("mutation($a: [account_insert_input!]!) { insert_account(objects: $a) { affected_rows } }", json!({ "a": accounts })).await;
    let mut rows = Vec::new();
    for (account, n) in [(1, 5), (2, 3), (3, 1), (5, 4), (8, 2)] {
        for k in 0..n {
            let sender = if k % 3 == 2 { Value::Null } else { json!(format!("s\"{}", k % 2)) };
            let kind = if k % 2 == 0 { "聊天" } else { "投递邀约" };
            rows.push(json!({ "account_account": account, "type": kind, "sender": sender, "content": format!("c\n{}", k % 3) }));
        }
    }
    app.data("mutation($r: [point_count_insert_input!]!) { insert_point_count(objects: $r) { affected_rows } }", json!({ "r": rows }))
        .await;
    let codes = json!([
        { "account_account": 1, "kind": "FORM_ID", "code": "f1", "expire_at": "2030-01-02T03:04:05.678Z" },
        { "account_account": 1, "kind": "FORM_ID", "code": null },
        { "account_account": 3, "kind": "FORM_ID", "code": "f\\3", "expire_at": "1999-12-31T23:59:59Z" },
    ]);
    app.data("mutation($o: [push_code_insert_input!]!) { insert_push_code(objects: $o) { affected_rows } }", json!({ "o": codes })).await;
    app.data(
        r#"mutation {
            a: insert_notice_one(object: {account_account: 2, expire_time: "2020-01-01T00:00:00Z"}) { id }
            b: insert_notice_one(object: {account_account: 5, expire_time: "2026-06-01T12:30:00.5Z"}) { id }
            insert_oa_follower(objects: [{openid: "f1", subscribed: true, subscribe_time: "2025-01-01T00:00:00Z"}, {openid: "f\"2", subscribed: false, unionid: "u"}]) { affected_rows }
        }"#,
        json!({}),
    )
    .await;
}

/// The parent list's arguments (every order ends on a unique key, so both
/// paths have one order to agree on).
const LIST_ARGS: [&str; 11] = [
    "",
    "(order_by: {id: desc})",
    "(where: {point_count: {}}, order_by: {id: asc})",
    "(limit: 2, offset: 1)",
    "(offset: 3)",
    "(order_by: [{user_status: desc_nulls_first}, {id: asc}], limit: 5)",
    "(distinct_on: [user_status], order_by: [{user_status: asc_nulls_first}, {id: desc}])",
    r#"(where: {_or: [{nickname: {_like: "%\"%"}}, {oaopenid: {_is_null: true}}]})"#,
    "(where: {id: {_eq: -1}})",
    "(order_by: [{notice: {expire_time: desc_nulls_last}}, {id: asc}])",
    r#"(where: {_and: [{oaopenid: {_is_null: false}}, {point_count: {id: {_is_null: false}}}]}, order_by: [{point_count_aggregate: {count: desc}}, {id: desc}])"#,
];

/// What each account selects.
const SELECTIONS: [&str; 15] = [
    "id",
    "__typename",
    "__typename id n: nickname",
    "nickname username oaopenid user_status created_at updated_at oauth2_user_info_map",
    "id point_count(order_by: {id: asc}) { id type sender content __typename }",
    "id notice { expire_time account { id nickname } } push_code(limit: 1, order_by: {id: desc}) { code expire_at }",
    "id point_count_aggregate { aggregate { count } }",
    r#"id a: point_count_aggregate(where: {type: {_eq: "聊天"}}) { __typename aggregate { __typename c: count(columns: [sender], distinct: true) } }"#,
    "id point_count_aggregate { aggregate { count sum { id } avg { id } max { sender created_at } min { content } } }",
    "id point_count_aggregate(order_by: {id: desc}, limit: 2) { aggregate { max { id } } nodes { id sender } }",
    "id push_code_aggregate { aggregate { avg { account_account } } }",
    "id point_count_aggregate { __typename }",
    "id point_count_aggregate(distinct_on: [type], order_by: [{type: asc}, {id: asc}]) { aggregate { count } }",
    r#"oaopenid, chatnotice: point_count_aggregate(where: {type: {_eq: "聊天"}}) { aggregate { count } }, nonchatnotice: point_count_aggregate(where: {type: {_eq: "投递邀约"}}) { aggregate { count } }"#,
    "id point_count_aggregate { aggregate { max { __typename id } } } push_code_aggregate { aggregate { count } }",
];

async fn lists_of_accounts_match(paths: &Paths) {
    fixture(paths.first()).await;
    let admin = paths.first().admin_token();
    let mut rows = 0;
    for list in LIST_ARGS {
        for selection in SELECTIONS {
            let query = format!("{{ account{list} {{ {selection} }} }}");
            let body = paths.same_text(&admin, &query).await;
            rows += body["data"]["account"].as_array().map_or(0, Vec::len);
        }
    }
    assert!(rows > 500, "only {rows} rows compared");
}

async fn other_roots_and_roles_match(paths: &Paths) {
    fixture(paths.first()).await;
    let admin = paths.first().admin_token();
    let queries = [
        "{ point_count(order_by: {id: asc}) { id account_account type account { id nickname point_count_aggregate { aggregate { count } } } } }",
        "{ oa_follower(order_by: {id: asc}) { id openid unionid subscribed subscribe_time created_at } }",
        r#"{ oa_follower(where: {subscribed: {_eq: true}}) { subscribed } }"#,
        "{ notice(order_by: {expire_time: asc}) { account_account expire_time account { oaopenid } } }",
        "{ push_code(order_by: {id: asc}) { __typename kind code expire_at account { __typename id } } }",
        r#"query notice{ account(where:{_and:[ {oaopenid:{_is_null:false}}, {point_count:{id:{_is_null:false}}} {_or:[ {user_status:{_eq:"经纪人"}}, {user_status:{_eq:"新人"}}]} ]}){ oaopenid, chatnotice:point_count_aggregate(where:{type:{_eq:"聊天"}}){ aggregate{ count } }, nonchatnotice:point_count_aggregate(where:{type:{_eq:"投递邀约"}}){ aggregate{ count } } } }"#,
    ];
    for query in queries {
        paths.same_text(&admin, query).await;
    }
    // Root fields, one of them framed, aliased, beside an aggregate root.
    let query = "{ a: account(limit: 2) { id } b: account_aggregate { aggregate { count } } c: account_by_pk(id: 2) { nickname } }";
    paths.same(&admin, query, false).await;
    // An aggregate of `__typename`s alone is one object whatever the rows,
    // none or many (it used to be one per row, or null).
    let data = paths
        .first()
        .data(
            "{ account_aggregate { __typename } none: account_aggregate(where: {id: {_eq: -1}}) { __typename aggregate { __typename } } \
             account(where: {id: {_in: [1, 4]}}, order_by: {id: asc}) { point_count_aggregate { __typename } } }",
            json!({}),
        )
        .await;
    let expected = json!({
        "account_aggregate": { "__typename": "account_aggregate" },
        "none": { "__typename": "account_aggregate", "aggregate": { "__typename": "account_aggregate_fields" } },
        "account": [
            { "point_count_aggregate": { "__typename": "point_count_aggregate" } },
            { "point_count_aggregate": { "__typename": "point_count_aggregate" } }
        ]
    });
    assert_eq!(data, expected);
    // A user reads only its own account and unread rows.
    let user = paths.first().token(Role::User, Some("1"));
    for query in [
        "{ account { id nickname point_count_aggregate { aggregate { count } } point_count { id } } }",
        "{ point_count(order_by: {id: desc}) { id type account { id } } }",
        "{ push_code { code } }",
    ] {
        let body = paths.same_text(&user, query).await;
        assert!(body["data"].as_object().is_some_and(|d| d.values().all(|v| v.as_array().is_some_and(|rows| !rows.is_empty()))), "{body}");
    }
}

crate::on_both_databases! {
    Paths;
    framed_rows_give_the_databases_text_for_generated_lists => lists_of_accounts_match;
    framed_rows_give_the_databases_text_for_other_roots_and_roles => other_roots_and_roles_match;
}
