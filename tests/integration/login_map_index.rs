//! SQLite's indexed form of `_contains` on the login map answers exactly as
//! PostgreSQL's `@>`: a corpus of login maps with every JSON type at the
//! indexed paths is loaded into both databases, and every pattern over those
//! paths (also as `_eq` and under `_not`) must select the same accounts.

use serde_json::{Value, json};

use crate::common::{TestApp, spawn_app};
use wxnotify::db::DatabaseKind;

/// What may stand at `WECHAT.unionId` / `WECHAT.openId`; `None` is absent.
fn leaves() -> Vec<Option<Value>> {
    vec![
        Some(json!("u1")),
        Some(json!("u2")),
        Some(json!("1")),
        Some(json!(1)),
        Some(json!(1.5)),
        Some(json!("")),
        Some(json!(null)),
        Some(json!(true)),
        Some(json!({"u1": "u1"})),
        Some(json!(["u1"])),
        Some(json!("u\"1\\")),
        None,
    ]
}

fn wechat(union: &Option<Value>, open: &Option<Value>) -> Value {
    let mut object = serde_json::Map::new();
    if let Some(union) = union {
        object.insert("unionId".into(), union.clone());
    }
    if let Some(open) = open {
        object.insert("openId".into(), open.clone());
    }
    Value::Object(object)
}

/// Login maps: every unionId leaf with a few openId leaves, plus shapes in
/// which `WECHAT` is not an object, and no map at all.
fn corpus() -> Vec<Value> {
    let opens = [Some(json!("u1")), Some(json!(1)), None];
    let mut maps = Vec::new();
    for union in leaves() {
        for open in &opens {
            maps.push(json!({ "WECHAT": wechat(&union, open) }));
        }
    }
    maps.extend([
        json!({"WECHAT": ["u1"]}),
        json!({"WECHAT": [{"unionId": "u1"}]}),
        json!({"WECHAT": "u1"}),
        json!({"wechat": {"unionId": "u1"}}),
        json!({"WECHAT": {"unionId": "u1", "extra": {"unionId": "u2"}}, "other": 1}),
        json!(["u1"]),
        json!("u1"),
        json!({}),
        Value::Null,
    ]);
    maps
}

/// Patterns over the indexed paths, each as `_contains`, `_eq` and negated.
fn filters() -> Vec<Value> {
    let mut patterns = Vec::new();
    for union in leaves() {
        patterns.push(json!({ "WECHAT": wechat(&union, &None) }));
        patterns.push(json!({ "WECHAT": wechat(&union, &Some(json!("u1"))) }));
        patterns.push(json!({ "WECHAT": wechat(&None, &union) }));
    }
    patterns.push(json!({"WECHAT": {"unionId": "u1", "extra": {"unionId": "u2"}}}));
    let mut out = Vec::new();
    for pattern in patterns {
        out.push(json!({ "oauth2_user_info_map": { "_contains": pattern.clone() } }));
        out.push(json!({ "_not": { "oauth2_user_info_map": { "_contains": pattern.clone() } } }));
        out.push(json!({ "oauth2_user_info_map": { "_eq": pattern.clone() } }));
        out.push(json!({ "_not": { "oauth2_user_info_map": { "_eq": pattern } } }));
    }
    out
}

async fn load(app: &TestApp, maps: &[Value]) {
    let objects: Vec<Value> =
        maps.iter().enumerate().map(|(i, m)| json!({ "mp_openid": format!("mp{i}"), "oauth2_user_info_map": m })).collect();
    app.data("mutation($o: [account_insert_input!]!) { insert_account(objects: $o) { affected_rows } }", json!({ "o": objects })).await;
}

async fn selected(app: &TestApp, filter: &Value) -> Value {
    let data =
        app.data("query($w: account_bool_exp) { account(where: $w, order_by: {id: asc}) { mp_openid } }", json!({ "w": filter })).await;
    data["account"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_containment_on_sqlite_agrees_with_postgres() {
    let Some(postgres) = spawn_app(DatabaseKind::Postgres).await else { return };
    let Some(sqlite) = spawn_app(DatabaseKind::Sqlite).await else { return };
    let maps = corpus();
    load(&postgres, &maps).await;
    load(&sqlite, &maps).await;
    let mut nonempty = 0;
    for filter in filters() {
        let expected = selected(&postgres, &filter).await;
        assert_eq!(selected(&sqlite, &filter).await, expected, "{filter}");
        nonempty += usize::from(expected.as_array().is_some_and(|a| !a.is_empty()));
    }
    // The corpus must exercise matches, not only misses.
    assert!(nonempty > 40, "only {nonempty} filters matched anything");
}
