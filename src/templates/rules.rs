//! TEMPORARY interface placeholder, replaced by the rules module of the
//! templates-base branch at merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeywordType { Thing, CharacterString, Number, Letter, Symbol, Amount, Date, Time, Phrase, PhoneNumber, CarNumber, Name, Const }
impl KeywordType {
    pub fn as_str(self) -> &'static str { match self { KeywordType::Thing => "thing", KeywordType::CharacterString => "character_string", KeywordType::Const => "const", _ => "other" } }
    pub fn parse(name: &str) -> Option<KeywordType> { match name { "thing" => Some(KeywordType::Thing), "character_string" => Some(KeywordType::CharacterString), "const" => Some(KeywordType::Const), "time" => Some(KeywordType::Time), _ => None } }
    pub fn of_key(key: &str) -> Option<KeywordType> { KeywordType::parse(key.trim_end_matches(|c: char| c.is_ascii_digit())) }
    pub fn max_chars(self) -> Option<usize> { match self { KeywordType::Thing => Some(20), KeywordType::CharacterString => Some(32), _ => None } }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule { TooLong, Characters, Format, Constant, LineBreak, Empty }
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation { pub key: String, pub kind: KeywordType, pub rule: Rule, pub message: String }
impl std::fmt::Display for Violation { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(&self.message) } }
pub fn check(key: &str, kind: KeywordType, value: &str) -> Result<(), Violation> {
    let v = |rule, message: String| Err(Violation { key: key.to_string(), kind, rule, message });
    if kind == KeywordType::Const { return v(Rule::Constant, format!("data.{key} is a const keyword; the template sets it")); }
    if kind == KeywordType::CharacterString && value.chars().any(|c| !c.is_ascii()) { return v(Rule::Characters, format!("data.{key}.value has Chinese; character_string allows only letters, digits and symbols")); }
    if let Some(max) = kind.max_chars() { let n = value.chars().count(); if n > max { return v(Rule::TooLong, format!("data.{key}.value is {n} characters; {} allows at most {max}", kind.as_str())); } }
    Ok(())
}
pub fn cut(kind: KeywordType, value: &str) -> Option<String> { let max = kind.max_chars()?; Some(value.chars().take(max - 1).collect::<String>() + "…") }
pub fn cut_like_wechat(value: &str) -> (String, bool) { let v: String = value.replace(['\r', '\n'], " ").chars().take(20).collect(); let changed = v != value; (v, changed) }
pub fn placeholders(content: &str) -> Vec<String> { content.split("{{").skip(1).filter_map(|p| p.split_once(".DATA}}").map(|(k, _)| k.to_string())).collect() }
