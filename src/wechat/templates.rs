//! TEMPORARY interface placeholder, replaced by the templates-base branch's client at merge.
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::transport::Call;
use super::{App, WechatClient, WechatError};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateTemplate { pub template_id: String, pub title: String, #[serde(default)] pub primary_industry: String, #[serde(default)] pub deputy_industry: String, pub content: String, #[serde(default)] pub example: String }
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota { pub daily_limit: i64, pub used: i64, pub remain: i64 }

impl WechatClient {
    pub async fn private_templates(&self) -> Result<Vec<PrivateTemplate>, WechatError> {
        let answer = self.call_with_token(Call::get(App::Oa, "/cgi-bin/template/get_all_private_template", Vec::new())).await?;
        serde_json::from_value(answer.get("template_list").cloned().unwrap_or(Value::Array(Vec::new()))).map_err(|e| WechatError::Invalid { api: "/cgi-bin/template/get_all_private_template", problem: e.to_string() })
    }
    pub async fn quota(&self, app: App, cgi_path: &str) -> Result<Quota, WechatError> {
        let answer = self.call_with_token(Call::post(app, "/cgi-bin/openapi/quota/get", serde_json::json!({ "cgi_path": cgi_path }))).await?;
        serde_json::from_value(answer.get("quota").cloned().unwrap_or(Value::Null)).map_err(|e| WechatError::Invalid { api: "/cgi-bin/openapi/quota/get", problem: e.to_string() })
    }
}
