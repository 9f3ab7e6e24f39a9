//! The generated table surface: root fields, operators, relations,
//! aggregates, ordering, mutations, and its guarantees (null operands are
//! errors, statements do not grow with rows). Every test runs on SQLite and
//! PostgreSQL and expects the same answers from both.

use serde_json::{Value, json};
use wxnotify::auth::Role;

use crate::both_databases;
use crate::common::TestApp;

/// Five accounts with ids 1..5 (inserted in one group, so in order) and five
/// unread rows: alice 聊天 hi, 聊天 yo, 投递邀约 job; bob 聊天 hey; dave 投递邀约 job2.
async fn fixture(app: &TestApp) {
    let accounts = json!([
        {"nickname": "Alice", "user_status": "经纪人", "unionid": "u1", "oaopenid": "oa1", "mp_openid": "mp1",
         "oauth2_user_info_map": {"WECHAT": {"openId": "mp1", "unionId": "u1"}, "tags": ["vip", "new"], "level": 3}},
        {"nickname": "bob", "user_status": "新人", "unionid": null, "oaopenid": null, "mp_openid": "mp2",
         "oauth2_user_info_map": {"WECHAT": {"openId": "mp2"}}},
        {"nickname": "Carol", "user_status": null, "unionid": "u3", "oaopenid": "oa3", "mp_openid": null,
         "oauth2_user_info_map": null},
        {"nickname": null, "user_status": "经纪人", "unionid": "u4", "oaopenid": null, "mp_openid": "mp4",
         "oauth2_user_info_map": ["a", "b"]},
        {"nickname": "erin_%", "user_status": "游客", "unionid": null, "oaopenid": null, "mp_openid": "mp5",
         "oauth2_user_info_map": "scalar-string"}
    ]);
    let data = app
        .data(
            "mutation($a: [account_insert_input!]!) { insert_account(objects: $a) { affected_rows returning { id } } }",
            json!({ "a": accounts }),
        )
        .await;
    assert_eq!(data["insert_account"]["affected_rows"], 5);
    assert_eq!(ids(&data["insert_account"]["returning"]), vec![1, 2, 3, 4, 5]);
    let rows = json!([
        {"account_account": 1, "type": "聊天", "sender": "x", "content": "hi"},
        {"account_account": 1, "type": "聊天", "sender": "y", "content": "yo"},
        {"account_account": 1, "type": "投递邀约", "sender": "z", "content": "job"},
        {"account_account": 2, "type": "聊天", "sender": "x", "content": "hey"},
        {"account_account": 4, "type": "投递邀约", "sender": "y", "content": "job2"}
    ]);
    app.data("mutation($r: [point_count_insert_input!]!) { insert_point_count(objects: $r) { affected_rows } }", json!({ "r": rows }))
        .await;
}

fn ids(rows: &Value) -> Vec<i64> {
    rows.as_array().expect("a list").iter().map(|r| r["id"].as_i64().expect("an id")).collect()
}

/// The ids of accounts matching `where`, in id order.
async fn order(app: &TestApp, order_by: Value) -> Vec<i64> {
    let data = app.data("query($o: [account_order_by!]) { account(order_by: $o) { id } }", json!({ "o": order_by })).await;
    ids(&data["account"])
}

async fn accounts_where(app: &TestApp, filter: Value) -> Vec<i64> {
    let data = app.data("query($w: account_bool_exp) { account(where: $w, order_by: {id: asc}) { id } }", json!({ "w": filter })).await;
    ids(&data["account"])
}

/// The statement counter sees the whole pool, so this server runs no
/// scheduler beside the requests it counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statement_count_does_not_grow_with_rows() {
    for backend in [wxnotify::db::DatabaseKind::Sqlite, wxnotify::db::DatabaseKind::Postgres] {
        if let Some(app) = crate::common::spawn_app_with(backend, &[("SCHEDULER", "false"), ("OUTBOX_HELP", "false")]).await {
            statement_count_does_not_grow_with_rows(&app).await;
        }
    }
}

async fn statement_count_does_not_grow_with_rows(app: &TestApp) {
    let accounts: Vec<Value> = (0..1000).map(|i| json!({ "nickname": format!("n{i}"), "oaopenid": format!("oa{i}") })).collect();
    app.data("mutation($a: [account_insert_input!]!) { insert_account(objects: $a) { affected_rows } }", json!({ "a": accounts })).await;
    let rows: Vec<Value> = (1..=1000)
        .flat_map(|id| {
            [
                json!({"account_account": id, "type": "聊天", "content": "c"}),
                json!({"account_account": id, "type": "投递邀约", "content": "j"}),
            ]
        })
        .collect();
    app.data("mutation($r: [point_count_insert_input!]!) { insert_point_count(objects: $r) { affected_rows } }", json!({ "r": rows }))
        .await;
    let query = r#"query($n: Int) { account(limit: $n) { id oaopenid point_count { id type }
        chat: point_count_aggregate(where: {type: {_eq: "聊天"}}) { aggregate { count } }
        jobs: point_count_aggregate(where: {type: {_eq: "投递邀约"}}) { aggregate { count } } } }"#;
    let mut counts = Vec::new();
    for n in [10, 1000] {
        let before = app.state.sql_statements.get();
        let data = app.data(query, json!({ "n": n })).await;
        counts.push(app.state.sql_statements.get() - before);
        let rows = data["account"].as_array().unwrap();
        assert_eq!(rows.len(), n as usize);
        assert_eq!(rows[n as usize - 1]["chat"]["aggregate"]["count"], 1);
        assert_eq!(rows[n as usize - 1]["point_count"].as_array().unwrap().len(), 2);
    }
    assert_eq!(counts, vec![1, 1], "one statement per root field, whatever the rows ({:?})", app.backend);
}

both_databases! {
    async fn every_table_has_the_hasura_root_fields_and_types(app) {
        let data = app.data("{ __schema { queryType { fields { name } } mutationType { fields { name } } } }", json!({})).await;
        let names = |root: &str| -> Vec<String> {
            data["__schema"][root]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect()
        };
        let (queries, mutations) = (names("queryType"), names("mutationType"));
        for t in ["account", "point_count", "actok", "notice", "oa_follower", "push_code", "message_template", "delivery",
                  "action_flow", "scheduled_job", "job_run"] {
            for q in [t.to_string(), format!("{t}_by_pk"), format!("{t}_aggregate")] {
                assert!(queries.contains(&q), "query_root lacks {q}");
            }
            for m in [format!("insert_{t}"), format!("insert_{t}_one"), format!("update_{t}"), format!("update_{t}_by_pk"),
                      format!("delete_{t}"), format!("delete_{t}_by_pk")] {
                assert!(mutations.contains(&m), "mutation_root lacks {m}");
            }
            for ty in ["bool_exp", "order_by", "select_column", "update_column", "constraint", "insert_input", "set_input",
                       "pk_columns_input", "on_conflict", "mutation_response", "aggregate", "aggregate_fields"] {
                let name = format!("{t}_{ty}");
                let found = app.data("query($n: String!) { __type(name: $n) { name description } }", json!({ "n": name })).await;
                assert_eq!(found["__type"]["name"], name.as_str());
                assert!(!found["__type"]["description"].as_str().unwrap_or_default().is_empty(), "{name} is not described");
            }
        }
        let inputs = app.data(r#"{ __type(name: "account_insert_input") { inputFields { name } } }"#, json!({})).await;
        let fields: Vec<&str> = inputs["__type"]["inputFields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
        for system in ["id", "created_at", "updated_at"] {
            assert!(!fields.contains(&system), "{system} must not be insertable");
        }
    }

    async fn scalar_operators_follow_sql_semantics(app) {
        fixture(&app).await;
        let cases = [
            (json!({"nickname": {"_eq": "Alice"}}), vec![1]),
            (json!({"nickname": {"_neq": "Alice"}}), vec![2, 3, 5]),
            (json!({"id": {"_gt": 3}}), vec![4, 5]),
            (json!({"id": {"_gte": "3"}}), vec![3, 4, 5]),
            (json!({"id": {"_lt": 2}}), vec![1]),
            (json!({"id": {"_lte": 2}}), vec![1, 2]),
            (json!({"nickname": {"_in": ["bob", "Carol"]}}), vec![2, 3]),
            (json!({"nickname": {"_nin": ["bob"]}}), vec![1, 3, 5]),
            (json!({"nickname": {"_in": []}}), vec![]),
            (json!({"nickname": {"_nin": []}}), vec![1, 2, 3, 4, 5]),
            (json!({"nickname": {"_is_null": true}}), vec![4]),
            (json!({"nickname": {"_is_null": false}}), vec![1, 2, 3, 5]),
            (json!({"nickname": {"_like": "A%"}}), vec![1]),
            (json!({"nickname": {"_like": "a%"}}), vec![]),
            (json!({"nickname": {"_like": "%o%"}}), vec![2, 3]),
            (json!({"nickname": {"_like": "bo_"}}), vec![2]),
            (json!({"nickname": {"_like": "erin\\_\\%"}}), vec![5]),
            (json!({"nickname": {"_like": "erin\\_"}}), vec![]),
            (json!({"nickname": {"_nlike": "%o%"}}), vec![1, 5]),
            (json!({"nickname": {"_ilike": "a%"}}), vec![1]),
            (json!({"nickname": {"_ilike": "%B%"}}), vec![2]),
            (json!({"nickname": {"_nilike": "%O%"}}), vec![1, 5]),
            (json!({"_not": {"nickname": {"_eq": "Alice"}}}), vec![2, 3, 5]),
            (json!({}), vec![1, 2, 3, 4, 5]),
            (json!({"nickname": {}}), vec![1, 2, 3, 4, 5]),
            (json!({"_and": []}), vec![1, 2, 3, 4, 5]),
            (json!({"_or": []}), vec![]),
            (json!({"_or": [{"id": {"_eq": 1}}, {"id": {"_eq": 5}}]}), vec![1, 5]),
            // One object where a list is expected is a one-element list, so
            // its keys AND together.
            (json!({"_or": {"nickname": {"_eq": "bob"}, "id": {"_eq": 1}}}), vec![]),
            (json!({"_and": {"nickname": {"_eq": "bob"}, "id": {"_eq": 2}}}), vec![2]),
            (json!({"point_count": {"type": {"_eq": "聊天"}}}), vec![1, 2]),
            (json!({"point_count": {}}), vec![1, 2, 4]),
            (json!({"_not": {"point_count": {}}}), vec![3, 5]),
            (json!({"created_at": {"_gt": "2000-01-01T08:00:00+08:00"}}), vec![1, 2, 3, 4, 5]),
            (json!({"created_at": {"_lt": "2000-01-01T00:00:00Z"}}), vec![]),
        ];
        for (filter, expected) in cases {
            assert_eq!(accounts_where(&app, filter.clone()).await, expected, "where: {filter}");
        }
        let data = app.data(r#"{ point_count(where: {account: {nickname: {_eq: "bob"}}}) { content } }"#, json!({})).await;
        assert_eq!(data, json!({ "point_count": [{ "content": "hey" }] }));

        app.data(r#"mutation { insert_oa_follower(objects: [{openid: "f1", subscribed: true}, {openid: "f2", subscribed: false}]) { affected_rows } }"#, json!({})).await;
        let data = app.data("{ oa_follower(where: {subscribed: {_eq: false}}) { openid subscribed } }", json!({})).await;
        assert_eq!(data, json!({ "oa_follower": [{ "openid": "f2", "subscribed": false }] }));
    }

    async fn jsonb_operators_answer_as_postgres_does(app) {
        fixture(&app).await;
        // Documents: 1 {"WECHAT":{"openId":"mp1","unionId":"u1"},"tags":["vip","new"],"level":3},
        // 2 {"WECHAT":{"openId":"mp2"}}, 3 SQL NULL, 4 ["a","b"], 5 "scalar-string".
        let m = |op: &str, operand: Value| json!({ "oauth2_user_info_map": { op: operand } });
        let cases = [
            (m("_contains", json!({"WECHAT": {"unionId": "u1"}})), vec![1]),
            (m("_contains", json!({"WECHAT": {}})), vec![1, 2]),
            (m("_contains", json!({})), vec![1, 2]),
            (m("_contains", json!({"tags": ["vip"]})), vec![1]),
            (m("_contains", json!({"tags": ["new", "vip", "vip"]})), vec![1]),
            (m("_contains", json!({"tags": ["vip", "old"]})), vec![]),
            (m("_contains", json!({"tags": "vip"})), vec![]),
            (m("_contains", json!({"level": 3})), vec![1]),
            (m("_contains", json!({"level": 3.0})), vec![1]),
            (m("_contains", json!({"level": "3"})), vec![]),
            (m("_contains", json!(["a"])), vec![4]),
            (m("_contains", json!([])), vec![4]),
            (m("_contains", json!("a")), vec![4]),
            (m("_contains", json!("scalar-string")), vec![5]),
            (m("_contains", json!(["scalar-string"])), vec![]),
            (m("_contained_in", json!({"WECHAT": {"openId": "mp2", "unionId": "x"}, "extra": 1})), vec![2]),
            (m("_contained_in", json!({"WECHAT": {"openId": "mp1", "unionId": "u1"}, "tags": ["new", "vip", "x"], "level": 3})), vec![1]),
            (m("_contained_in", json!(["a", "b", "c"])), vec![4]),
            (m("_contained_in", json!(["scalar-string"])), vec![5]),
            (m("_contained_in", json!({})), vec![]),
            (m("_has_key", json!("WECHAT")), vec![1, 2]),
            (m("_has_key", json!("a")), vec![4]),
            (m("_has_key", json!("scalar-string")), vec![5]),
            (m("_has_key", json!("openId")), vec![]),
            (m("_has_keys_any", json!(["tags", "nope"])), vec![1]),
            (m("_has_keys_any", json!([])), vec![]),
            (m("_has_keys_all", json!(["WECHAT", "tags"])), vec![1]),
            (m("_has_keys_all", json!(["WECHAT", "nope"])), vec![]),
            (m("_has_keys_all", json!([])), vec![1, 2, 4, 5]),
            (m("_eq", json!({"WECHAT": {"openId": "mp2"}})), vec![2]),
            (m("_neq", json!({"WECHAT": {"openId": "mp2"}})), vec![1, 4, 5]),
            (m("_in", json!([["a", "b"], "scalar-string"])), vec![4, 5]),
            (m("_is_null", json!(true)), vec![3]),
            (json!({"_not": {"oauth2_user_info_map": {"_contains": {"WECHAT": {}}}}}), vec![4, 5]),
        ];
        for (filter, expected) in cases {
            assert_eq!(accounts_where(&app, filter.clone()).await, expected, "where: {filter}");
        }
        // Keys and values are data, never SQL.
        let hostile = m("_contains", json!({"x' OR 1=1 --": "\") OR 1=1 --"}));
        assert_eq!(accounts_where(&app, hostile).await, Vec::<i64>::new());
    }

    async fn aggregates_count_sum_avg_max_min_and_nodes(app) {
        fixture(&app).await;
        let data = app.data(r#"{ account_aggregate {
            aggregate {
                count
                named: count(columns: [nickname])
                statuses: count(columns: [user_status], distinct: true)
                pairs: count(columns: [user_status, unionid], distinct: true)
                sum { id } avg { id } max { id nickname } min { nickname id }
            }
            nodes { id }
        } }"#, json!({})).await;
        let aggregate = &data["account_aggregate"]["aggregate"];
        assert_eq!(aggregate["count"], 5);
        assert_eq!(aggregate["named"], 4);
        assert_eq!(aggregate["statuses"], 3);
        assert_eq!(aggregate["pairs"], 2);
        assert_eq!(aggregate["sum"]["id"], 15);
        assert_eq!(aggregate["avg"]["id"].as_f64(), Some(3.0));
        assert_eq!(aggregate["max"], json!({ "id": 5, "nickname": "erin_%" }));
        assert_eq!(aggregate["min"], json!({ "nickname": "Alice", "id": 1 }));
        assert_eq!(ids(&data["account_aggregate"]["nodes"]), vec![1, 2, 3, 4, 5]);

        let data = app.data(r#"{ account(where: {id: {_eq: 1}}) {
            chats: point_count_aggregate(where: {type: {_eq: "聊天"}}, order_by: {id: desc}) {
                aggregate { count max { content created_at } }
                nodes { content }
            }
            none: point_count_aggregate(where: {type: {_eq: "nothing"}}) { aggregate { count sum { id } } nodes { id } }
        } }"#, json!({})).await;
        let chats = &data["account"][0]["chats"];
        assert_eq!(chats["aggregate"]["count"], 2);
        assert_eq!(chats["aggregate"]["max"]["content"], "yo");
        assert!(chats["aggregate"]["max"]["created_at"].as_str().unwrap().contains('T'));
        assert_eq!(chats["nodes"], json!([{ "content": "yo" }, { "content": "hi" }]));
        assert_eq!(data["account"][0]["none"], json!({ "aggregate": { "count": 0, "sum": { "id": null } }, "nodes": [] }));
    }

    async fn relations_nest_with_their_own_arguments(app) {
        fixture(&app).await;
        app.data(r#"mutation { insert_notice_one(object: {account_account: 2, expire_time: "2026-01-01T00:00:00Z"}) { id } }"#, json!({})).await;
        let data = app.data(r#"{ point_count(where: {account_account: {_eq: 2}}) {
            content account { nickname notice { expire_time account { id } } point_count { content } }
        } }"#, json!({})).await;
        let row = &data["point_count"][0];
        assert_eq!(row["account"]["nickname"], "bob");
        assert!(row["account"]["notice"]["expire_time"].as_str().unwrap().starts_with("2026-01-01T00:00:00"));
        assert_eq!(row["account"]["notice"]["account"]["id"], 2);
        assert_eq!(row["account"]["point_count"], json!([{ "content": "hey" }]));

        let data = app.data(r#"{ account(where: {id: {_in: [1, 3]}}) {
            id notice { id }
            latest: point_count(order_by: {id: desc}, limit: 2) { content }
            rest: point_count(order_by: {id: desc}, offset: 2) { content }
            chats: point_count(where: {type: {_eq: "聊天"}}) { content }
        } }"#, json!({})).await;
        assert_eq!(data["account"], json!([
            { "id": 1, "notice": null, "latest": [{ "content": "job" }, { "content": "yo" }], "rest": [{ "content": "hi" }],
              "chats": [{ "content": "hi" }, { "content": "yo" }] },
            { "id": 3, "notice": null, "latest": [], "rest": [], "chats": [] }
        ]));

        let data = app.data(r#"{ point_count(distinct_on: [account_account], order_by: [{account_account: asc}, {id: desc}]) { account_account content } }"#, json!({})).await;
        assert_eq!(data["point_count"], json!([
            { "account_account": 1, "content": "job" }, { "account_account": 2, "content": "hey" }, { "account_account": 4, "content": "job2" }
        ]));
        let data = app.data("{ account(order_by: {id: asc}, limit: 2, offset: 1) { id } account_by_pk(id: 3) { nickname } missing: account_by_pk(id: 99) { id } }", json!({})).await;
        assert_eq!(data, json!({ "account": [{ "id": 2 }, { "id": 3 }], "account_by_pk": { "nickname": "Carol" }, "missing": null }));
    }

    async fn order_by_columns_relations_aggregates_and_null_placement(app) {
        fixture(&app).await;
        assert_eq!(order(&app, json!([{"unionid": "asc"}, {"id": "asc"}])).await, vec![1, 3, 4, 2, 5]);
        assert_eq!(order(&app, json!([{"unionid": "asc_nulls_first"}, {"id": "asc"}])).await, vec![2, 5, 1, 3, 4]);
        assert_eq!(order(&app, json!([{"unionid": "desc"}, {"id": "asc"}])).await, vec![2, 5, 4, 3, 1]);
        assert_eq!(order(&app, json!([{"unionid": "desc_nulls_last"}, {"id": "asc"}])).await, vec![4, 3, 1, 2, 5]);
        assert_eq!(order(&app, json!([{"point_count_aggregate": {"count": "desc"}}, {"id": "asc"}])).await, vec![1, 2, 4, 3, 5]);
        assert_eq!(order(&app, json!([{"point_count_aggregate": {"max": {"id": "desc_nulls_last"}}}, {"id": "asc"}])).await, vec![4, 2, 1, 3, 5]);
        assert_eq!(order(&app, json!({"id": "desc"})).await, vec![5, 4, 3, 2, 1]);
        let data = app.data("{ point_count(order_by: [{account: {unionid: desc_nulls_last}}, {id: asc}]) { content } }", json!({})).await;
        let contents: Vec<&str> = data["point_count"].as_array().unwrap().iter().map(|r| r["content"].as_str().unwrap()).collect();
        assert_eq!(contents, vec!["job2", "hi", "yo", "job", "hey"]);
    }

    async fn inserts_upserts_and_their_returning_relations(app) {
        fixture(&app).await;
        let data = app.data(r#"mutation { insert_point_count(objects: [{account_account: 3, type: "聊天", content: "new"}]) {
            affected_rows returning { id content account { nickname point_count_aggregate { aggregate { count } } } }
        } }"#, json!({})).await;
        let inserted = &data["insert_point_count"];
        assert_eq!(inserted["affected_rows"], 1);
        assert_eq!(inserted["returning"][0]["account"]["nickname"], "Carol");

        let upsert = r#"mutation($o: account_insert_input!, $c: [account_update_column!]!, $w: account_bool_exp) {
            insert_account_one(object: $o, on_conflict: {constraint: account_mp_openid_key, update_columns: $c, where: $w}) { id nickname }
        }"#;
        let data = app.data(upsert, json!({ "o": {"mp_openid": "mp2", "nickname": "Bobby"}, "c": ["nickname"] })).await;
        assert_eq!(data["insert_account_one"], json!({ "id": 2, "nickname": "Bobby" }));
        // The conflict's `where` does not hold: nothing changes, nothing returns.
        let data = app.data(upsert, json!({ "o": {"mp_openid": "mp2", "nickname": "Robert"}, "c": ["nickname"], "w": {"nickname": {"_eq": "nobody"}} })).await;
        assert_eq!(data["insert_account_one"], Value::Null);
        // `update_columns: []` ignores the conflicting row.
        let data = app.data(upsert, json!({ "o": {"mp_openid": "mp2", "nickname": "Robert"}, "c": [] })).await;
        assert_eq!(data["insert_account_one"], Value::Null);
        assert_eq!(app.count("account").await, 5);
        assert_eq!(accounts_where(&app, json!({"nickname": {"_eq": "Bobby"}})).await, vec![2]);

        let data = app.data(r#"mutation { insert_account(objects: [{mp_openid: "mp1", nickname: "A2"}, {mp_openid: "mp9", nickname: "new"}],
            on_conflict: {constraint: account_mp_openid_key, update_columns: [nickname]}) { affected_rows returning { id nickname } } }"#, json!({})).await;
        // (Conflicting attempts above used up sequence values, as in PostgreSQL.)
        let inserted = &data["insert_account"];
        assert_eq!(inserted["affected_rows"], 2);
        assert_eq!(inserted["returning"][0], json!({ "id": 1, "nickname": "A2" }));
        assert_eq!(inserted["returning"][1]["nickname"], "new");

        let body = app.graphql(r#"mutation { insert_account_one(object: {mp_openid: "mp4"}) { id } }"#, json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "constraint-violation", "{body}");
        let body = app.graphql(r#"mutation { insert_account_one(object: {id: 77, nickname: "x"}) { id } }"#, json!({})).await;
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("id"), "{body}");
        assert_eq!(app.count("account").await, 6);
        let data = app.data("mutation { insert_account(objects: []) { affected_rows returning { id } } }", json!({})).await;
        assert_eq!(data["insert_account"], json!({ "affected_rows": 0, "returning": [] }));
    }

    async fn updates_set_and_increment_and_move_updated_at(app) {
        fixture(&app).await;
        let data = app.data(r#"mutation { insert_delivery_one(object: {channel: "OA_TEMPLATE", touser: "oa1", template_id: "t",
            payload: {data: {}}, dedupe_key: "k1", status: "PENDING", attempts: 1}) { id created_at updated_at } }"#, json!({})).await;
        let before = data["insert_delivery_one"].clone();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let data = app.data(r#"mutation($id: bigint!) { update_delivery_by_pk(pk_columns: {id: $id}, _set: {status: "SENT", msgid: "9007199254740993"}, _inc: {attempts: 2}) {
            status attempts msgid created_at updated_at } }"#, json!({ "id": before["id"] })).await;
        let after = &data["update_delivery_by_pk"];
        assert_eq!(after["status"], "SENT");
        assert_eq!(after["attempts"], 3);
        assert_eq!(after["msgid"].as_i64(), Some(9_007_199_254_740_993));
        assert_eq!(after["created_at"], before["created_at"]);
        let moved = |t: &Value| chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap();
        assert!(moved(&after["updated_at"]) > moved(&before["updated_at"]), "{before} {after}");

        let data = app.data(r#"mutation { update_account(where: {user_status: {_eq: "经纪人"}}, _set: {user_status: "资深"}) {
            affected_rows returning { id user_status } } }"#, json!({})).await;
        assert_eq!(data["update_account"], json!({ "affected_rows": 2, "returning": [{ "id": 1, "user_status": "资深" }, { "id": 4, "user_status": "资深" }] }));
        let data = app.data("mutation { update_account_by_pk(pk_columns: {id: 99}, _set: {nickname: \"x\"}) { id } }", json!({})).await;
        assert_eq!(data["update_account_by_pk"], Value::Null);
    }

    async fn deletes_return_what_they_removed(app) {
        fixture(&app).await;
        let data = app.data(r#"mutation { delete_point_count(where: {account_account: {_eq: 1}, type: {_eq: "聊天"}}) {
            affected_rows returning { content account { nickname } } } }"#, json!({})).await;
        assert_eq!(data["delete_point_count"], json!({ "affected_rows": 2, "returning": [
            { "content": "hi", "account": { "nickname": "Alice" } }, { "content": "yo", "account": { "nickname": "Alice" } }
        ] }));
        assert_eq!(app.count("point_count").await, 3);
        let data = app.data("mutation { delete_account_by_pk(id: 5) { id nickname } gone: delete_account_by_pk(id: 5) { id } }", json!({})).await;
        assert_eq!(data, json!({ "delete_account_by_pk": { "id": 5, "nickname": "erin_%" }, "gone": null }));
        // Deleting an account takes its unread rows with it.
        app.data("mutation { delete_account(where: {id: {_eq: 1}}) { affected_rows } }", json!({})).await;
        assert_eq!(app.count("point_count").await, 2);
    }

    async fn a_null_operand_is_an_error_and_changes_nothing(app) {
        fixture(&app).await;
        for document in [
            "mutation($id: bigint) { delete_account(where: {id: {_eq: $id}}) { affected_rows } }",
            "mutation($id: bigint) { update_account(where: {id: {_eq: $id}}, _set: {nickname: \"gone\"}) { affected_rows } }",
            "mutation($id: bigint) { delete_point_count(where: {_or: [{id: {_gt: 100}}, {account: {id: {_neq: $id}}}]}) { affected_rows } }",
            "query($id: bigint) { account(where: {id: {_eq: $id}}) { id } }",
        ] {
            let body = app.graphql(document, json!({ "id": null })).await;
            assert_eq!(body["errors"][0]["extensions"]["code"], "validation-failed", "{document}: {body}");
            assert!(body["errors"][0]["message"].as_str().unwrap().contains("null"), "{body}");
        }
        let body = app.graphql("mutation { delete_account(where: {_not: null}) { affected_rows } }", json!({})).await;
        assert!(body.get("errors").is_some(), "{body}");
        let body = app.graphql("mutation { delete_account(where: {nickname: {_in: [\"bob\", null]}}) { affected_rows } }", json!({})).await;
        assert!(body.get("errors").is_some(), "{body}");
        assert_eq!(app.count("account").await, 5);
        assert_eq!(accounts_where(&app, json!({"nickname": {"_eq": "gone"}})).await, Vec::<i64>::new());
        assert_eq!(app.count("point_count").await, 5);
    }

    async fn values_are_typed_as_hasura_types_them(app) {
        fixture(&app).await;
        let data = app.data(r#"{ account_by_pk(id: "2") { id oauth2_user_info_map created_at } }"#, json!({})).await;
        let row = &data["account_by_pk"];
        assert_eq!(row["id"], 2);
        assert_eq!(row["oauth2_user_info_map"], json!({"WECHAT": {"openId": "mp2"}}));
        assert!(chrono::DateTime::parse_from_rfc3339(row["created_at"].as_str().unwrap()).is_ok(), "{row}");
        for (value, ok) in [(json!("2026-11-21T08:00:00+08:00"), true), (json!("2026-11-21 08:00"), false), (json!(true), false)] {
            let body = app.graphql(
                "mutation($t: timestamptz!) { insert_notice_one(object: {account_account: 1, expire_time: $t}, on_conflict: {constraint: notice_account_account_key, update_columns: [expire_time]}) { expire_time } }",
                json!({ "t": value }),
            ).await;
            assert_eq!(body.get("errors").is_none(), ok, "{value}: {body}");
        }
        let data = app.data("{ notice { expire_time } }", json!({})).await;
        assert!(data["notice"][0]["expire_time"].as_str().unwrap().starts_with("2026-11-21T00:00:00"), "{data}");
        let body = app.graphql(r#"{ account_by_pk(id: "12a") { id } }"#, json!({})).await;
        assert!(body.get("errors").is_some(), "{body}");
    }

    async fn roles_filter_rows_and_refuse_tables(app) {
        fixture(&app).await;
        let bob = app.token(Role::User, Some("2"));
        let body = app.graphql_with(Some(&bob), "{ account { id } point_count { content } }", json!({})).await;
        assert_eq!(body["data"], json!({ "account": [{ "id": 2 }], "point_count": [{ "content": "hey" }] }), "{body}");
        let body = app.graphql_with(Some(&bob), "{ account_by_pk(id: 1) { id } }", json!({})).await;
        assert_eq!(body["data"]["account_by_pk"], Value::Null);
        let body = app.graphql_with(Some(&bob), "{ actok { tok } }", json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "access-denied", "{body}");
        assert_eq!(body["data"], Value::Null);
        let body = app.graphql_with(None, "{ account { id } }", json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "access-denied", "{body}");
        let body = app.graphql_with(Some(&bob), "mutation { delete_account(where: {}) { affected_rows } }", json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "access-denied", "{body}");
        assert_eq!(app.count("account").await, 5);
    }
}

/// Runs the graphql-core oracle in `tests/oracle/graphql_schema.py`.
fn graphql_core(args: &[&str]) -> std::process::Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/graphql_schema.py");
    let output = std::process::Command::new("python3").arg(script).args(args).output().expect("python3 runs (the schema oracle needs it)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("ModuleNotFoundError"), "the schema oracle needs graphql-core: `pip install graphql-core==3.2.8`\n{stderr}");
    output
}

both_databases! {
    async fn schema_graphql_is_exactly_what_introspection_serves(app) {
        let query = graphql_core(&["query"]);
        assert!(query.status.success(), "{}", String::from_utf8_lossy(&query.stderr));
        let answer = app.graphql(&String::from_utf8(query.stdout).unwrap(), json!({})).await;
        assert!(answer["errors"].is_null(), "{answer}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("introspection.json");
        std::fs::write(&path, answer.to_string()).unwrap();
        let sdl = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
        let check = graphql_core(&["check", path.to_str().unwrap(), sdl]);
        assert!(
            check.status.success(),
            "schema.graphql is not the served schema (regenerate it with `cargo run -- schema > schema.graphql`):\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

#[test]
fn schema_graphql_matches_the_program() {
    let printed = wxnotify::graphql::sdl().unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap_or_default();
    assert!(printed == committed, "schema.graphql is out of date: regenerate it with `cargo run -- schema > schema.graphql`");
}

both_databases! {
    async fn every_generated_type_and_field_is_described(app) {
        let data = app.data(r#"{ __schema { types { name description
            fields { name description args { name description } }
            inputFields { name description } enumValues { name description } } } }"#, json!({})).await;
        let builtin = ["String", "Int", "Float", "Boolean", "ID"];
        let mut missing = Vec::new();
        for ty in data["__schema"]["types"].as_array().unwrap() {
            let name = ty["name"].as_str().unwrap();
            if name.starts_with("__") || builtin.contains(&name) {
                continue;
            }
            let empty = |v: &Value| v.as_str().map(str::is_empty).unwrap_or(true);
            if empty(&ty["description"]) {
                missing.push(name.to_string());
            }
            for list in ["fields", "inputFields", "enumValues"] {
                for item in ty[list].as_array().into_iter().flatten() {
                    if empty(&item["description"]) {
                        missing.push(format!("{name}.{}", item["name"].as_str().unwrap()));
                    }
                    for arg in item["args"].as_array().into_iter().flatten() {
                        if empty(&arg["description"]) {
                            missing.push(format!("{name}.{}({})", item["name"].as_str().unwrap(), arg["name"].as_str().unwrap()));
                        }
                    }
                }
            }
        }
        assert!(missing.is_empty(), "undescribed: {missing:?}");
    }
}
