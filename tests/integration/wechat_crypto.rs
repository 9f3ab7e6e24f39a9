//! Safe mode against the real thing: wechatpy's `WeChatCrypto` decrypts and
//! verifies what wxnotify encrypts, and wxnotify decrypts and verifies what
//! wechatpy encrypts, over a seeded corpus of keys, appids and messages
//! (empty, ASCII, Chinese, emoji, long). The oracle is
//! `tests/oracle/wechat_crypto.py`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use wxnotify::wechat::crypto::{self, AesKey};

const CASES: usize = 300;
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const TEXT: [&str; 6] = ["a", "中文消息", "😀", " ", "<&>", "wxnotify 通知 "];

fn random_string(rng: &mut StdRng, alphabet: &[u8], len: usize) -> String {
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

fn random_xml(rng: &mut StdRng) -> String {
    let pieces = rng.random_range(0..400);
    let content: String = (0..pieces).map(|_| TEXT[rng.random_range(0..TEXT.len())]).collect();
    format!("<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Content><![CDATA[{content}]]></Content></xml>")
}

fn oracle(cases: &Value) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("cases.json"), dir.path().join("out.json"));
    std::fs::write(&input, cases.to_string()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/wechat_crypto.py");
    let run = std::process::Command::new("python3").arg(script).arg(&input).arg(&output).output().expect("python3 runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!stderr.contains("ModuleNotFoundError"), "the safe-mode oracle needs wechatpy: `pip install wechatpy==1.8.18`\n{stderr}");
    assert!(run.status.success(), "the wechatpy oracle failed:\n{stderr}");
    serde_json::from_str::<Vec<Value>>(&std::fs::read_to_string(&output).unwrap()).unwrap()
}

#[test]
fn safe_mode_agrees_with_wechatpy_both_ways() {
    let mut rng = StdRng::seed_from_u64(0x5AFE_30DE);
    let mut cases = Vec::new();
    for _ in 0..CASES {
        let aes_key = random_string(&mut rng, B64, 43);
        let appid = format!("wx{}", random_string(&mut rng, b"0123456789abcdef", 16));
        let token_len = rng.random_range(3..32);
        let token = random_string(&mut rng, b"abcdefghijklmnopqrstuvwxyz0123456789", token_len);
        let (nonce, timestamp) = (rng.random_range(0..u32::MAX).to_string(), rng.random_range(1_600_000_000..1_900_000_000u32).to_string());
        let xml = random_xml(&mut rng);
        let key = AesKey::parse(&aes_key).expect("a 43-character key parses");
        let encrypt = crypto::encrypt(&key, &xml, &appid);
        let msg_signature = crypto::msg_signature(&token, &timestamp, &nonce, &encrypt);
        cases.push(json!({ "token": token, "aes_key": aes_key, "appid": appid, "nonce": nonce, "timestamp": timestamp,
                           "xml": xml, "encrypt": encrypt, "msg_signature": msg_signature }));
    }
    let answers = oracle(&Value::Array(cases.clone()));
    assert_eq!(answers.len(), CASES);
    let mut mismatches = Vec::new();
    for (i, (case, answer)) in cases.iter().zip(&answers).enumerate() {
        let s = |v: &Value, k: &str| v[k].as_str().unwrap().to_string();
        if answer["decrypted"] != case["xml"] {
            mismatches.push(format!("case {i}: wechatpy decrypted wxnotify's message differently"));
        }
        let key = AesKey::parse(&s(case, "aes_key")).unwrap();
        match crypto::decrypt(&key, &s(answer, "encrypt"), &s(case, "appid")) {
            Ok(xml) if xml == s(case, "xml") => {}
            other => mismatches.push(format!("case {i}: wxnotify decrypted wechatpy's message as {other:?}")),
        }
        let ours = crypto::msg_signature(&s(case, "token"), &s(case, "timestamp"), &s(case, "nonce"), &s(answer, "encrypt"));
        if ours != s(answer, "msg_signature") {
            mismatches.push(format!("case {i}: msg_signature {ours} != wechatpy's {}", s(answer, "msg_signature")));
        }
        if crypto::decrypt(&key, &s(answer, "encrypt"), "wx_another_appid").is_ok() {
            mismatches.push(format!("case {i}: a message for another appid was accepted"));
        }
    }
    assert!(mismatches.is_empty(), "{} mismatches with wechatpy:\n{}", mismatches.len(), mismatches.join("\n"));
}
