//! The callback's XML, read safely: WeChat sends one `<xml>` element whose
//! children hold text or CDATA. Anything else is refused rather than
//! interpreted: a DTD (so no entity can be declared, let alone expanded),
//! references other than the five predefined entities and character
//! references, more than one root, deep nesting, or too many elements.

use std::collections::BTreeMap;

use super::Message;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// Most elements a message may have (WeChat's have about a dozen).
const MAX_ELEMENTS: usize = 256;
/// Deepest nesting accepted (`<xml><ScanCodeInfo><ScanType>` is 3).
const MAX_DEPTH: usize = 8;

/// Why a body is not a WeChat message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the body is not well-formed XML: {0}")]
    Malformed(String),
    #[error("DTDs are not accepted")]
    Dtd,
    #[error("the entity &{0}; is not accepted (only the predefined ones and character references are)")]
    Entity(String),
    #[error("the root element must be <xml>")]
    Root,
    #[error("the message is nested deeper than {MAX_DEPTH} levels or has more than {MAX_ELEMENTS} elements")]
    TooLarge,
}

fn malformed(e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(e.to_string())
}

/// The text of each child of `<xml>`, by element name (text of deeper
/// elements goes to their top-level ancestor's name, as WeChat nests only
/// a few informational fields), and each `<List>` one level down (the
/// subscription events' `<SubscribeMsgPopupEvent><List>...`) as an item.
pub fn parse_message(body: &str) -> Result<Message, XmlError> {
    let mut reader = Reader::from_str(body);
    let mut fields = BTreeMap::new();
    let mut items: Vec<BTreeMap<String, String>> = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let (mut elements, mut seen_root) = (0usize, false);
    loop {
        let event = reader.read_event().map_err(malformed)?;
        match event {
            Event::DocType(_) => return Err(XmlError::Dtd),
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.name().as_ref().to_string();
                elements += 1;
                if elements > MAX_ELEMENTS || path.len() >= MAX_DEPTH {
                    return Err(XmlError::TooLarge);
                }
                if path.is_empty() {
                    if seen_root || name != "xml" {
                        return Err(XmlError::Root);
                    }
                    seen_root = true;
                } else if path.len() == 1 {
                    fields.entry(name.clone()).or_insert_with(String::new);
                } else if path.len() == 2 && name == "List" {
                    items.push(BTreeMap::new());
                } else if path.len() == 3
                    && path[2] == "List"
                    && let Some(item) = items.last_mut()
                {
                    item.entry(name.clone()).or_default();
                }
                if matches!(event, Event::Start(_)) {
                    path.push(name);
                }
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(ref t) => append(&mut fields, &mut items, &path, &t.xml10_content())?,
            Event::CData(ref c) => append(&mut fields, &mut items, &path, &c.xml10_content())?,
            Event::GeneralRef(ref r) => {
                let text = match r.resolve_char_ref().map_err(malformed)? {
                    Some(ch) => ch.to_string(),
                    None => resolve_predefined_entity(r).map(str::to_string).ok_or_else(|| XmlError::Entity(r.to_string()))?,
                };
                append(&mut fields, &mut items, &path, &text)?;
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !seen_root || !path.is_empty() {
        return Err(XmlError::Malformed("the document ends before </xml>".into()));
    }
    Ok(Message { fields, items })
}

/// Adds text to the field of the top-level element it sits in, and to its
/// item's field inside a `<List>`.
fn append(
    fields: &mut BTreeMap<String, String>,
    items: &mut [BTreeMap<String, String>],
    path: &[String],
    text: &str,
) -> Result<(), XmlError> {
    if let [_root, _event, list, field] = path
        && list == "List"
        && let Some(item) = items.last_mut()
    {
        item.entry(field.clone()).or_default().push_str(text);
    }
    match path {
        [] if text.trim().is_empty() => Ok(()),
        [] => Err(XmlError::Malformed("text outside the root element".into())),
        [_root] => Ok(()),
        [_root, field, ..] => {
            fields.entry(field.clone()).or_default().push_str(text);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cdata_text_and_predefined_entities() {
        let fields = parse_message(
            "<?xml version=\"1.0\"?><xml><ToUserName><![CDATA[gh_1]]></ToUserName><CreateTime>1700000000</CreateTime>\
             <Event><![CDATA[subscribe]]></Event><EventKey>a&amp;b&#x41;</EventKey><Empty/></xml>",
        )
        .unwrap()
        .fields;
        assert_eq!(fields["ToUserName"], "gh_1");
        assert_eq!(fields["CreateTime"], "1700000000");
        assert_eq!(fields["EventKey"], "a&bA");
        assert_eq!(fields["Empty"], "");
    }

    #[test]
    fn reads_each_list_of_a_subscription_event_as_an_item() {
        let message = parse_message(
            "<xml><FromUserName><![CDATA[o1]]></FromUserName><Event><![CDATA[subscribe_msg_popup_event]]></Event>\
             <SubscribeMsgPopupEvent><List><TemplateId><![CDATA[t1]]></TemplateId>\
             <SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>2</PopupScene></List>\
             <List><TemplateId><![CDATA[t2]]></TemplateId><SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString>\
             </List></SubscribeMsgPopupEvent></xml>",
        )
        .unwrap();
        assert_eq!(message.fields["Event"], "subscribe_msg_popup_event");
        assert_eq!(message.items.len(), 2);
        assert_eq!((message.items[0]["TemplateId"].as_str(), message.items[0]["SubscribeStatusString"].as_str()), ("t1", "accept"));
        assert_eq!(message.items[0]["PopupScene"], "2");
        assert_eq!((message.items[1]["TemplateId"].as_str(), message.items[1]["SubscribeStatusString"].as_str()), ("t2", "reject"));
    }

    #[test]
    fn refuses_dtds_and_unknown_entities() {
        let billion_laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]>\
                              <xml><Event>&lol2;</Event></xml>";
        assert_eq!(parse_message(billion_laughs).unwrap_err(), XmlError::Dtd);
        let external = "<xml><Event>&xxe;</Event></xml>";
        assert_eq!(parse_message(external).unwrap_err(), XmlError::Entity("xxe".into()));
    }

    #[test]
    fn refuses_malformed_and_foreign_documents() {
        for body in ["<xml><Event>subscribe</xml>", "<xml>", "", "not xml", "<xml></xml><xml></xml>", "<xml><a></b></xml>"] {
            assert!(parse_message(body).is_err(), "{body:?}");
        }
        assert_eq!(parse_message("<html></html>").unwrap_err(), XmlError::Root);
        let deep = format!("<xml>{}{}</xml>", "<a>".repeat(20), "</a>".repeat(20));
        assert_eq!(parse_message(&deep).unwrap_err(), XmlError::TooLarge);
    }
}
