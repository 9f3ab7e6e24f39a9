//! Temporary parametric QR codes: scanning one tells the callback which
//! scene (e.g. which account to bind) the follower came from.

use serde::Deserialize;
use serde_json::json;

use super::transport::{Call, decode};
use super::{App, WechatClient, WechatError};

/// Longest `scene_str` WeChat accepts.
pub const SCENE_MAX_CHARS: usize = 64;
/// Longest life of a temporary code: 30 days.
pub const EXPIRE_MAX_SECONDS: u32 = 30 * 24 * 3600;

/// A created QR code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrCode {
    /// Names the code in scan events (`Ticket`) and in the image URL.
    pub ticket: String,
    pub expire_seconds: u32,
    /// The content of the code, to render it yourself.
    pub url: String,
    /// WeChat's rendering of the code.
    pub image_url: String,
}

#[derive(Deserialize)]
struct QrWire {
    ticket: String,
    #[serde(default)]
    expire_seconds: u32,
    #[serde(default)]
    url: String,
}

impl WechatClient {
    /// Creates a temporary `QR_STR_SCENE` code for `scene` that lives
    /// `expire_seconds` (capped at 30 days).
    pub async fn create_qrcode(&self, scene: &str, expire_seconds: u32) -> Result<QrCode, WechatError> {
        const API: &str = "/cgi-bin/qrcode/create";
        if scene.is_empty() || scene.chars().count() > SCENE_MAX_CHARS {
            let problem = format!("the scene must be 1 to {SCENE_MAX_CHARS} characters");
            return Err(WechatError::Invalid { api: API, problem });
        }
        let body = json!({
            "expire_seconds": expire_seconds.clamp(60, EXPIRE_MAX_SECONDS),
            "action_name": "QR_STR_SCENE",
            "action_info": { "scene": { "scene_str": scene } },
        });
        let wire: QrWire = decode(API, self.call_with_token(Call::post(App::Oa, API, body)).await?)?;
        let image_url = format!("https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket={}", url_encode(&wire.ticket));
        Ok(QrCode { ticket: wire.ticket, expire_seconds: wire.expire_seconds, url: wire.url, image_url })
    }
}

fn url_encode(value: &str) -> String {
    reqwest::Url::parse_with_params("https://x/", [("t", value)])
        .ok()
        .and_then(|u| u.query().map(|q| q.trim_start_matches("t=").to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tickets_are_url_encoded_in_the_image_url() {
        assert_eq!(super::url_encode("gQH4/8=="), "gQH4%2F8%3D%3D");
    }
}
