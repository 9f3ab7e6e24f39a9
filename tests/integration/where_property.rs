//! A property test of the where-clause translator: random `account_bool_exp`
//! trees are answered by the server (as SQL) and by a reference evaluator
//! written here from the dialect's rules (three-valued logic, LIKE, jsonb
//! containment), over the same rows, on SQLite and PostgreSQL.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::both_databases;
use crate::common::TestApp;

const NICKNAMES: [Option<&str>; 6] = [Some("ann"), Some("Bob"), Some("bo_b"), Some("cy%"), Some(""), None];
const STATUSES: [Option<&str>; 4] = [Some("经纪人"), Some("新人"), Some("x"), None];
const TYPES: [&str; 3] = ["聊天", "投递邀约", "系统"];

fn documents() -> Vec<Value> {
    vec![
        json!({"WECHAT": {"openId": "o1", "unionId": "u1"}}),
        json!({"WECHAT": {"openId": "o2"}, "tags": ["a", "b"]}),
        json!({"tags": ["b"], "n": 1}),
        json!(["a", "b", {"k": 1}]),
        json!("a"),
        json!(3),
        json!({}),
        Value::Null,
    ]
}

/// One account as the reference evaluator sees it.
#[derive(Clone, Debug)]
struct Row {
    id: i64,
    nickname: Option<String>,
    user_status: Option<String>,
    map: Option<Value>,
    types: Vec<String>,
}

fn fixture_rows() -> Vec<Row> {
    let docs = documents();
    (0..36)
        .map(|i: usize| Row {
            id: i as i64 + 1,
            nickname: NICKNAMES[i % NICKNAMES.len()].map(str::to_string),
            user_status: STATUSES[(i / 2) % STATUSES.len()].map(str::to_string),
            map: Some(docs[(i / 3) % docs.len()].clone()).filter(|d| !d.is_null()),
            types: TYPES.iter().take(i % 4).map(|t| t.to_string()).collect(),
        })
        .collect()
}

async fn load(app: &TestApp, rows: &[Row]) {
    let accounts: Vec<Value> =
        rows.iter().map(|r| json!({ "nickname": r.nickname, "user_status": r.user_status, "oauth2_user_info_map": r.map })).collect();
    let data = app
        .data("mutation($a: [account_insert_input!]!) { insert_account(objects: $a) { returning { id } } }", json!({ "a": accounts }))
        .await;
    let ids: Vec<i64> = data["insert_account"]["returning"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, rows.iter().map(|r| r.id).collect::<Vec<_>>());
    let unread: Vec<Value> = rows.iter().flat_map(|r| r.types.iter().map(move |t| json!({ "account_account": r.id, "type": t }))).collect();
    app.data("mutation($p: [point_count_insert_input!]!) { insert_point_count(objects: $p) { affected_rows } }", json!({ "p": unread }))
        .await;
}

/// A filter's truth value for a row (None = unknown, SQL's NULL).
type Truth = Box<dyn Fn(&Row) -> Option<bool>>;

/// A random filter and the truth value it has for each row (None = unknown).
fn random_exp(rng: &mut StdRng, depth: u32) -> (Value, Truth) {
    let choice = if depth == 0 { rng.random_range(0..6) } else { rng.random_range(0..10) };
    match choice {
        0 | 1 => string_comparison(rng, "nickname", |r| r.nickname.clone(), &NICKNAMES),
        2 => string_comparison(rng, "user_status", |r| r.user_status.clone(), &STATUSES),
        3 => id_comparison(rng),
        4 => json_comparison(rng),
        5 => {
            let t = TYPES[rng.random_range(0..TYPES.len())];
            let exp = json!({ "point_count": { "type": { "_eq": t } } });
            (exp, Box::new(move |r: &Row| Some(r.types.iter().any(|x| x == t))))
        }
        6 | 7 => {
            let n = rng.random_range(0..3);
            let parts: Vec<_> = (0..n).map(|_| random_exp(rng, depth - 1)).collect();
            let and = choice == 6;
            let (exps, evals): (Vec<Value>, Vec<_>) = parts.into_iter().unzip();
            let key = if and { "_and" } else { "_or" };
            let eval = move |r: &Row| {
                let values: Vec<Option<bool>> = evals.iter().map(|e| e(r)).collect();
                if and { and3(&values) } else { or3(&values) }
            };
            (json!({ key: exps }), Box::new(eval))
        }
        8 => {
            let (inner, eval) = random_exp(rng, depth - 1);
            (json!({ "_not": inner }), Box::new(move |r: &Row| eval(r).map(|b| !b)))
        }
        _ => {
            // Sibling keys AND together.
            let (a, ea) = random_exp(rng, depth - 1);
            let (b, eb) = random_exp(rng, depth - 1);
            match (a, b) {
                (Value::Object(mut a), Value::Object(b)) if b.keys().all(|k| !a.contains_key(k)) => {
                    a.extend(b);
                    (Value::Object(a), Box::new(move |r: &Row| and3(&[ea(r), eb(r)])))
                }
                (a, b) => (json!({ "_and": [a, b] }), Box::new(move |r: &Row| and3(&[ea(r), eb(r)]))),
            }
        }
    }
}

fn and3(values: &[Option<bool>]) -> Option<bool> {
    if values.contains(&Some(false)) {
        Some(false)
    } else if values.contains(&None) {
        None
    } else {
        Some(true)
    }
}

fn or3(values: &[Option<bool>]) -> Option<bool> {
    if values.contains(&Some(true)) {
        Some(true)
    } else if values.contains(&None) {
        None
    } else {
        Some(false)
    }
}

fn string_comparison(rng: &mut StdRng, column: &'static str, get: fn(&Row) -> Option<String>, pool: &[Option<&str>]) -> (Value, Truth) {
    let values: Vec<String> = pool.iter().flatten().map(|s| s.to_string()).collect();
    let pick = |rng: &mut StdRng| values[rng.random_range(0..values.len())].clone();
    let op = ["_eq", "_neq", "_gt", "_lte", "_in", "_nin", "_is_null", "_like", "_nlike", "_ilike"][rng.random_range(0..10)];
    let operand = match op {
        "_in" | "_nin" => Value::Array((0..rng.random_range(0..3)).map(|_| Value::String(pick(rng))).collect()),
        "_is_null" => Value::Bool(rng.random_bool(0.5)),
        "_like" | "_nlike" | "_ilike" => Value::String(["%b%", "B%", "bo\\_b", "_", "%", "cy\\%", "%n"][rng.random_range(0..7)].into()),
        _ => Value::String(pick(rng)),
    };
    let exp = json!({ column: { op: operand.clone() } });
    let eval = move |r: &Row| -> Option<bool> {
        let value = get(r);
        match (op, &operand) {
            ("_is_null", Value::Bool(b)) => Some(value.is_none() == *b),
            ("_in", Value::Array(items)) if items.is_empty() => Some(false),
            ("_nin", Value::Array(items)) if items.is_empty() => Some(true),
            _ => {
                let v = value?;
                Some(match (op, &operand) {
                    ("_eq", Value::String(s)) => v == *s,
                    ("_neq", Value::String(s)) => v != *s,
                    ("_gt", Value::String(s)) => v.as_bytes() > s.as_bytes(),
                    ("_lte", Value::String(s)) => v.as_bytes() <= s.as_bytes(),
                    ("_in", Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(&v)),
                    ("_nin", Value::Array(items)) => !items.iter().any(|i| i.as_str() == Some(&v)),
                    ("_like", Value::String(p)) => like(&v, p, false),
                    ("_nlike", Value::String(p)) => !like(&v, p, false),
                    ("_ilike", Value::String(p)) => like(&v, p, true),
                    _ => unreachable!(),
                })
            }
        }
    };
    (exp, Box::new(eval))
}

fn id_comparison(rng: &mut StdRng) -> (Value, Truth) {
    let n: i64 = rng.random_range(0..40);
    let op = ["_eq", "_neq", "_gt", "_gte", "_lt", "_lte"][rng.random_range(0..6)];
    // bigint operands arrive as numbers or numeric strings.
    let operand = if rng.random_bool(0.5) { json!(n) } else { json!(n.to_string()) };
    let exp = json!({ "id": { op: operand } });
    (
        exp,
        Box::new(move |r: &Row| {
            Some(match op {
                "_eq" => r.id == n,
                "_neq" => r.id != n,
                "_gt" => r.id > n,
                "_gte" => r.id >= n,
                "_lt" => r.id < n,
                _ => r.id <= n,
            })
        }),
    )
}

fn json_comparison(rng: &mut StdRng) -> (Value, Truth) {
    let patterns = [
        json!({"WECHAT": {}}),
        json!({"WECHAT": {"unionId": "u1"}}),
        json!({"tags": ["b"]}),
        json!({"tags": ["a", "b"]}),
        json!(["a"]),
        json!("a"),
        json!(3),
        json!({}),
        json!([]),
        json!({"n": 1}),
    ];
    let pattern = patterns[rng.random_range(0..patterns.len())].clone();
    let key = ["WECHAT", "tags", "a", "n", "k"][rng.random_range(0..5)].to_string();
    match rng.random_range(0..3) {
        0 => {
            let exp = json!({ "oauth2_user_info_map": { "_contains": pattern.clone() } });
            (exp, Box::new(move |r: &Row| r.map.as_ref().map(|m| contains(m, &pattern, true))))
        }
        1 => {
            let exp = json!({ "oauth2_user_info_map": { "_contained_in": pattern.clone() } });
            (exp, Box::new(move |r: &Row| r.map.as_ref().map(|m| contains(&pattern, m, true))))
        }
        _ => {
            let exp = json!({ "oauth2_user_info_map": { "_has_key": key.clone() } });
            (exp, Box::new(move |r: &Row| r.map.as_ref().map(|m| has_key(m, &key))))
        }
    }
}

/// PostgreSQL's jsonb `@>`: objects by key, arrays by element, scalars by
/// value; only at the top level does an array contain a bare scalar.
fn contains(doc: &Value, pattern: &Value, top: bool) -> bool {
    match (doc, pattern) {
        (Value::Object(d), Value::Object(p)) => p.iter().all(|(k, v)| d.get(k).is_some_and(|dv| contains(dv, v, false))),
        (Value::Array(d), Value::Array(p)) => p.iter().all(|pv| d.iter().any(|dv| contains(dv, pv, false))),
        (Value::Array(d), scalar) if top && !scalar.is_object() => d.iter().any(|dv| scalar_eq(dv, scalar)),
        (a, b) => scalar_eq(a, b),
    }
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => false,
        (a, b) => a == b,
    }
}

fn has_key(doc: &Value, key: &str) -> bool {
    match doc {
        Value::Object(map) => map.contains_key(key),
        Value::Array(items) => items.iter().any(|i| i.as_str() == Some(key)),
        Value::String(s) => s == key,
        _ => false,
    }
}

/// SQL LIKE with `\` escapes; `insensitive` folds ASCII case.
fn like(value: &str, pattern: &str, insensitive: bool) -> bool {
    let fold = |s: &str| if insensitive { s.to_ascii_lowercase() } else { s.to_string() };
    let (value, pattern) = (fold(value), fold(pattern));
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '%' => None,
            '_' => Some(None),
            '\\' => Some(Some(chars.next().unwrap_or('\\'))),
            c => Some(Some(c)),
        });
    }
    fn matches(v: &[char], t: &[Option<Option<char>>]) -> bool {
        match t.split_first() {
            None => v.is_empty(),
            Some((None, rest)) => (0..=v.len()).any(|i| matches(&v[i..], rest)),
            Some((Some(want), rest)) => match v.split_first() {
                Some((c, tail)) => want.is_none_or(|w| w == *c) && matches(tail, rest),
                None => false,
            },
        }
    }
    matches(&value.chars().collect::<Vec<_>>(), &tokens)
}

both_databases! {
    async fn random_filters_agree_with_the_reference_evaluator(app) {
        let rows = fixture_rows();
        load(&app, &rows).await;
        let mut rng = StdRng::seed_from_u64(20261121);
        for round in 0..160 {
            let (exp, eval) = random_exp(&mut rng, 3);
            let expected: Vec<i64> = rows.iter().filter(|r| eval(r) == Some(true)).map(|r| r.id).collect();
            let data = app.data("query($w: account_bool_exp) { account(where: $w, order_by: {id: asc}) { id } }", json!({ "w": exp })).await;
            let got: Vec<i64> = data["account"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
            assert_eq!(got, expected, "round {round}: where {exp}");
        }
    }
}

#[test]
fn the_reference_like_matches_sql_like() {
    assert!(like("bo_b", "bo\\_b", false));
    assert!(!like("bob", "bo\\_b", false));
    assert!(like("Bob", "b%", true) && !like("Bob", "b%", false));
    assert!(like("cy%", "cy\\%", false) && !like("cyx", "cy\\%", false));
    assert!(like("", "%", false) && !like("", "_", false));
}
