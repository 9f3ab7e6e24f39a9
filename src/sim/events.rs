//! Callback pushes: the simulator plays WeChat calling the service
//! account's server URL with signed event XML, in plain or safe (AES) mode.
//!
//! Pushing an event also changes the simulated world the way the user's
//! action would (a subscribe makes them a follower), so a later `user/info`
//! agrees with the event.

use std::time::Duration;

use crate::wechat::crypto::{self, AesKey};

use super::SimHandle;

/// Where and how to push: the server's callback URL and its secrets.
#[derive(Clone, Debug)]
pub struct CallbackTarget {
    /// e.g. `http://127.0.0.1:8080/wechat/callback`.
    pub url: String,
    /// The callback Token (`WXNOTIFY_OA_TOKEN`).
    pub token: String,
    /// The EncodingAESKey (`WXNOTIFY_OA_AES_KEY`); `Some` pushes in safe mode.
    pub aes_key: Option<String>,
}

/// An event a user causes on the service account.
#[derive(Clone, Debug)]
pub enum SimEvent {
    /// Followed; with `ticket`, by scanning that parametric QR code.
    Subscribe {
        openid: String,
        ticket: Option<String>,
    },
    Unsubscribe {
        openid: String,
    },
    /// A follower scanned the parametric QR code `ticket`.
    Scan {
        openid: String,
        ticket: String,
    },
    /// WeChat finished delivering template message `msgid`; status is
    /// `success`, `failed:user block` or `failed: system failed`.
    TemplateSendJobFinish {
        openid: String,
        msgid: i64,
        status: String,
    },
}

/// A signed push, ready to send (again, as WeChat retries with the very
/// same request when the server is slow).
#[derive(Clone, Debug)]
pub struct Delivery {
    pub url: String,
    /// The query pairs: signature, timestamp, nonce, openid, and in safe
    /// mode encrypt_type and msg_signature.
    pub query: Vec<(String, String)>,
    pub body: String,
    /// The event XML before encryption.
    pub xml: String,
}

/// What the server answered.
#[derive(Clone, Debug)]
pub struct PushOutcome {
    pub status: u16,
    pub body: String,
}

impl Delivery {
    /// POSTs the push; WeChat waits 5 seconds for an answer.
    pub async fn send(&self) -> anyhow::Result<PushOutcome> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        let url = reqwest::Url::parse_with_params(&self.url, &self.query)?;
        let response = client.post(url).header("content-type", "text/xml").body(self.body.clone()).send().await?;
        let status = response.status().as_u16();
        Ok(PushOutcome { status, body: response.text().await? })
    }
}

impl SimHandle {
    /// Applies `event` to the simulated world and pushes it to `target`.
    pub async fn push(&self, target: &CallbackTarget, event: SimEvent) -> anyhow::Result<PushOutcome> {
        self.prepare(target, event)?.send().await
    }

    /// Applies `event` to the simulated world and returns the signed push
    /// without sending it.
    pub fn prepare(&self, target: &CallbackTarget, event: SimEvent) -> anyhow::Result<Delivery> {
        let (xml, openid) = self.apply(&event)?;
        let timestamp = self.with_state(|s| s.now().timestamp()).to_string();
        let nonce = rand::random::<u32>().to_string();
        let mut query = vec![
            ("signature".to_string(), crypto::signature(&target.token, &timestamp, &nonce)),
            ("timestamp".to_string(), timestamp.clone()),
            ("nonce".to_string(), nonce.clone()),
            ("openid".to_string(), openid),
        ];
        let body = match &target.aes_key {
            None => xml.clone(),
            Some(key) => {
                let key = AesKey::parse(key)?;
                let encrypted = crypto::encrypt(&key, &xml, &self.oa_appid());
                let msg_signature = crypto::msg_signature(&target.token, &timestamp, &nonce, &encrypted);
                query.push(("encrypt_type".to_string(), "aes".to_string()));
                query.push(("msg_signature".to_string(), msg_signature));
                format!("<xml><ToUserName>{}</ToUserName><Encrypt>{}</Encrypt></xml>", cdata(&self.original_id()), cdata(&encrypted))
            }
        };
        Ok(Delivery { url: target.url.clone(), query, body, xml })
    }

    /// Changes the world as the event says and writes its XML.
    fn apply(&self, event: &SimEvent) -> anyhow::Result<(String, String)> {
        self.with_state(|state| {
            let now = state.now().timestamp();
            let (openid, fields) = match event {
                SimEvent::Subscribe { openid, ticket } => {
                    let scene = ticket.as_deref().map(|t| state.scene_of(t).ok_or_else(|| unknown_ticket(t))).transpose()?;
                    state.follow(openid, scene.clone(), now);
                    let mut fields = event_fields("subscribe");
                    if let (Some(scene), Some(ticket)) = (scene, ticket) {
                        fields += &format!("<EventKey>{}</EventKey><Ticket>{}</Ticket>", cdata(&format!("qrscene_{scene}")), cdata(ticket));
                    }
                    (openid, fields)
                }
                SimEvent::Unsubscribe { openid } => {
                    if let Some(follower) = state.follower_mut(openid) {
                        follower.subscribed = false;
                    }
                    (openid, event_fields("unsubscribe") + "<EventKey><![CDATA[]]></EventKey>")
                }
                SimEvent::Scan { openid, ticket } => {
                    let scene = state.scene_of(ticket).ok_or_else(|| unknown_ticket(ticket))?;
                    (openid, event_fields("SCAN") + &format!("<EventKey>{}</EventKey><Ticket>{}</Ticket>", cdata(&scene), cdata(ticket)))
                }
                SimEvent::TemplateSendJobFinish { openid, msgid, status } => {
                    (openid, event_fields("TEMPLATESENDJOBFINISH") + &format!("<MsgID>{msgid}</MsgID><Status>{}</Status>", cdata(status)))
                }
            };
            let xml = format!(
                "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{now}</CreateTime>{fields}</xml>",
                cdata(&state.config.oa_original_id),
                cdata(openid),
            );
            Ok((xml, openid.clone()))
        })
    }
}

fn event_fields(event: &str) -> String {
    format!("<MsgType><![CDATA[event]]></MsgType><Event>{}</Event>", cdata(event))
}

fn unknown_ticket(ticket: &str) -> anyhow::Error {
    anyhow::anyhow!("the simulator issued no live QR code with ticket {ticket}")
}

/// Text as CDATA; a `]]>` inside is split across two sections.
fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cdata_survives_its_own_terminator() {
        assert_eq!(super::cdata("a]]>b"), "<![CDATA[a]]]]><![CDATA[>b]]>");
    }
}
