//! Every GraphQL document of Zion's how-to page on service-account
//! notifications (the seed these operations were built from) that touches
//! tables, verbatim, with the answers they must give.

use serde_json::json;

use crate::both_databases;
use crate::common::TestApp;

/// Three accounts that should be notified, one without unread rows, one not
/// following, one of another status.
async fn seed_accounts(app: &TestApp) {
    app.data(
        r#"mutation { insert_account(objects: [
            {nickname: "a", user_status: "经纪人", oaopenid: "oa-a", unionid: "u-a", oauth2_user_info_map: {WECHAT: {openId: "mp-a", unionId: "u-a"}}},
            {nickname: "b", user_status: "新人", oaopenid: "oa-b"},
            {nickname: "c", user_status: "经纪人", oaopenid: "oa-c"},
            {nickname: "d", user_status: "经纪人"},
            {nickname: "e", user_status: "游客", oaopenid: "oa-e"}
        ]) { affected_rows } }"#,
        json!({}),
    )
    .await;
    let ids = app.data("{ account(order_by: {id: asc}) { id nickname } }", json!({})).await;
    let id = |n: usize| ids["account"][n]["id"].as_i64().unwrap();
    let rows = json!([
        {"account_account": id(0), "type": "聊天", "sender": "x", "content": "hi"},
        {"account_account": id(0), "type": "聊天", "sender": "y", "content": "hello"},
        {"account_account": id(0), "type": "投递邀约", "sender": "z", "content": "offer"},
        {"account_account": id(1), "type": "投递邀约", "sender": "z", "content": "offer"},
        {"account_account": id(3), "type": "聊天", "sender": "x", "content": "unseen"},
        {"account_account": id(4), "type": "聊天", "sender": "x", "content": "visitor"}
    ]);
    app.data(
        "mutation($rows: [point_count_insert_input!]!) { insert_point_count(objects: $rows) { affected_rows } }",
        json!({ "rows": rows }),
    )
    .await;
}

both_databases! {
    async fn the_notice_query_counts_unread_rows_per_type(app) {
        seed_accounts(&app).await;
        let data = app.data(
            r#"query notice{ account(where:{_and:[ {oaopenid:{_is_null:false}}, {point_count:{id:{_is_null:false}}} {_or:[ {user_status:{_eq:"经纪人"}}, {user_status:{_eq:"新人"}}]} ]}){ oaopenid, chatnotice:point_count_aggregate(where:{type:{_eq:"聊天"}}){ aggregate{ count } }, nonchatnotice:point_count_aggregate(where:{type:{_eq:"投递邀约"}}){ aggregate{ count } } } }"#,
            json!({}),
        ).await;
        assert_eq!(data, json!({ "account": [
            { "oaopenid": "oa-a", "chatnotice": { "aggregate": { "count": 2 } }, "nonchatnotice": { "aggregate": { "count": 1 } } },
            { "oaopenid": "oa-b", "chatnotice": { "aggregate": { "count": 0 } }, "nonchatnotice": { "aggregate": { "count": 1 } } }
        ]}));
    }

    async fn the_sync_update_finds_accounts_by_containment_in_the_login_map(app) {
        seed_accounts(&app).await;
        // Verbatim, with the seed's own variables (note `unionId`, not `unionid`:
        // the seed's loop therefore writes unionid = null, as Zion would).
        let body = app.graphql(
            r#"mutation account($unionid:String,$unionobject:jsonb,$openid:String){ update_account(where: {oauth2_user_info_map:{_contains:$unionobject}}, _set:{unionid:$unionid,oaopenid:$openid}){ affected_rows returning{ id unionid oaopenid } } }"#,
            json!({ "token": "57_57UJbh7x4mwpeNNv0UM63G022dgCd16J10wQCClY90yOgS2iQshit", "unionId": "u-a",
                    "unionobject": { "WECHAT": { "unionId": "u-a" } }, "openid": "oL8KI5vftjG1RFq9lnBkF05PAf" }),
        ).await;
        assert!(body.get("errors").is_none(), "{body}");
        let update = &body["data"]["update_account"];
        assert_eq!(update["affected_rows"], 1);
        assert_eq!(update["returning"][0]["oaopenid"], "oL8KI5vftjG1RFq9lnBkF05PAf");
        assert_eq!(update["returning"][0]["unionid"], serde_json::Value::Null);

        // The action-code variant, with the variables it means to pass.
        let data = app.data(
            r#"mutation accountupdate($unionid:String,$unionobject:jsonb,$openid:String){ update_account(where:{oauth2_user_info_map:{_contains:$unionobject}},_set:{unionid:$unionid,oaopenid:$openid}){ affected_rows returning{ id unionid oaopenid } } }"#,
            json!({ "unionid": "u-a", "unionobject": { "WECHAT": { "unionId": "u-a" } }, "openid": "oa-new" }),
        ).await;
        assert_eq!(data["update_account"]["affected_rows"], 1);
        assert_eq!(data["update_account"]["returning"][0]["unionid"], "u-a");
        assert_eq!(data["update_account"]["returning"][0]["oaopenid"], "oa-new");

        // No account holds this unionid: nothing changes.
        let data = app.data(
            r#"mutation accountupdate($unionid:String,$unionobject:jsonb,$openid:String){ update_account(where:{oauth2_user_info_map:{_contains:$unionobject}},_set:{unionid:$unionid,oaopenid:$openid}){ affected_rows returning{ id unionid oaopenid } } }"#,
            json!({ "unionid": "u-x", "unionobject": { "WECHAT": { "unionId": "u-x" } }, "openid": "oa-x" }),
        ).await;
        assert_eq!(data["update_account"], json!({ "affected_rows": 0, "returning": [] }));
    }

    async fn the_token_cache_documents_read_and_overwrite_actok(app) {
        app.data(
            r#"mutation { insert_actok_one(object: {appid: "wxcc99eeed41fadcbd", tok: "old", expiredtime: "2020-01-01T00:00:00Z"}) { id } }"#,
            json!({}),
        ).await;
        let data = app.data("query getcache{ actok{ tok expiredtime } } ", json!({})).await;
        assert_eq!(data["actok"][0]["tok"], "old");
        assert!(data["actok"][0]["expiredtime"].as_str().unwrap().starts_with("2020-01-01T00:00:00"));

        // The seed passes `expiredtime` as `Date.getTime()`: Unix milliseconds.
        let data = app.data(
            "mutation tokenupdate($object: actok_set_input){ update_actok(where:{},_set:$object){ returning{ tok } } } ",
            json!({ "object": { "tok": "57_new", "expiredtime": 1_893_456_000_000_i64 } }),
        ).await;
        assert_eq!(data, json!({ "update_actok": { "returning": [{ "tok": "57_new" }] } }));
        let data = app.data("query getcache{ actok{ tok expiredtime } } ", json!({})).await;
        assert_eq!(data["actok"][0]["tok"], "57_new");
        assert!(data["actok"][0]["expiredtime"].as_str().unwrap().starts_with("2030-01-01T00:00:00"), "{data}");
    }

    async fn the_notice_upsert_moves_the_throttle_window(app) {
        seed_accounts(&app).await;
        let account = app.data("{ account(limit: 1) { id } }", json!({})).await["account"][0]["id"].clone();
        let upsert = r#"mutation upsertNotice($account: bigint!, $expire: timestamptz!) {
            insert_notice_one(
                object: {account_account: $account, expire_time: $expire},
                on_conflict: {constraint: notice_account_account_key, update_columns: [expire_time]}
            ) { id account_account expire_time }
        }"#;
        let first = app.data(upsert, json!({ "account": account, "expire": "2026-11-21T10:00:00+08:00" })).await;
        // bigint also arrives as a numeric string.
        let second = app.data(upsert, json!({ "account": account.to_string(), "expire": "2026-11-21T10:10:00+08:00" })).await;
        assert_eq!(first["insert_notice_one"]["id"], second["insert_notice_one"]["id"]);
        assert_eq!(app.count("notice").await, 1);
        assert!(second["insert_notice_one"]["expire_time"].as_str().unwrap().starts_with("2026-11-21T02:10:00"), "{second}");
    }
}
