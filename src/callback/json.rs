//! The mini-program's JSON message push, read into the same [`Message`] as
//! the XML one: top-level strings and numbers are fields; an array (or a
//! single object, as WeChat sends a one-item `List`) of objects under any
//! key (`List`, or `SubscribeMsgPopupEvent` in older samples) is items.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Message;

/// Reads a JSON push; `Err` says why it is not one.
pub fn parse_message(body: &str) -> Result<Message, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Value::Object(object) = value else { return Err("a JSON message must be an object".into()) };
    let mut message = Message::default();
    for (key, value) in object {
        match value {
            Value::Array(list) => message.items.extend(list.iter().filter_map(item)),
            Value::Object(_) => message.items.extend(item(&value)),
            other => {
                if let Some(text) = scalar(&other) {
                    message.fields.insert(key, text);
                }
            }
        }
    }
    Ok(message)
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn item(value: &Value) -> Option<BTreeMap<String, String>> {
    let object = value.as_object()?;
    Some(object.iter().filter_map(|(k, v)| scalar(v).map(|s| (k.clone(), s))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_a_list_given_as_an_array_or_one_object() {
        let popup = parse_message(
            r#"{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":"1620973045","MsgType":"event",
                "Event":"subscribe_msg_popup_event","List":[{"TemplateId":"t1","SubscribeStatusString":"accept","PopupScene":"0"}]}"#,
        )
        .unwrap();
        assert_eq!(popup.fields["FromUserName"], "o1");
        assert_eq!(popup.items[0]["TemplateId"], "t1");
        let sent = parse_message(
            r#"{"FromUserName":"o1","CreateTime":1620973045,"Event":"subscribe_msg_sent_event",
                "List":{"TemplateId":"t1","MsgID":"1864323726461255680","ErrorCode":"0","ErrorStatus":"success"}}"#,
        )
        .unwrap();
        assert_eq!(sent.fields["CreateTime"], "1620973045");
        assert_eq!(sent.items.len(), 1);
        assert_eq!(sent.items[0]["MsgID"], "1864323726461255680");
        assert!(parse_message("[1]").is_err() && parse_message("{").is_err());
    }
}
