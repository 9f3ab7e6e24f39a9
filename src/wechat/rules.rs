//! WeChat's rules for template keyword values, as pure functions.
//!
//! Category templates (类目模板) of the service account and mini-program
//! subscribe messages name each keyword by its type and a number
//! (`thing1`, `time2`, `character_string12`); WeChat refuses a send whose
//! value breaks its type's rule with errcode 47003, naming the field
//! (`argument invalid! data.thing2.value invalid`). Legacy templates
//! (`{{keyword1.DATA}}`, `{{first.DATA}}`) have no types: WeChat cuts their
//! values at 20 characters and shows no `first`/`remark`.
//!
//! [`RULES`] is the table `docs/wechat.md` prints ("Template rules and the
//! template library"), with where each rule comes from. Lengths are counted
//! in characters (Unicode scalar values), as WeChat counts them.
//!
//! Where WeChat's wording leaves room, [`check`] is the stricter reading, so
//! a value it accepts is one WeChat accepts: no thousands separators or
//! minus signs in `number` and `amount`, no range with more than two points
//! in `date` and `time`, only ASCII letters as "letters".

use std::fmt;

/// The type of a template keyword, the prefix of its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeywordType {
    Thing,
    CharacterString,
    Number,
    Letter,
    Symbol,
    Amount,
    Date,
    Time,
    Phrase,
    PhoneNumber,
    CarNumber,
    Name,
    Const,
}

impl KeywordType {
    pub const ALL: [KeywordType; 13] = [
        KeywordType::Thing,
        KeywordType::CharacterString,
        KeywordType::Number,
        KeywordType::Letter,
        KeywordType::Symbol,
        KeywordType::Amount,
        KeywordType::Date,
        KeywordType::Time,
        KeywordType::Phrase,
        KeywordType::PhoneNumber,
        KeywordType::CarNumber,
        KeywordType::Name,
        KeywordType::Const,
    ];

    /// The key prefix WeChat uses: `thing`, `character_string`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            KeywordType::Thing => "thing",
            KeywordType::CharacterString => "character_string",
            KeywordType::Number => "number",
            KeywordType::Letter => "letter",
            KeywordType::Symbol => "symbol",
            KeywordType::Amount => "amount",
            KeywordType::Date => "date",
            KeywordType::Time => "time",
            KeywordType::Phrase => "phrase",
            KeywordType::PhoneNumber => "phone_number",
            KeywordType::CarNumber => "car_number",
            KeywordType::Name => "name",
            KeywordType::Const => "const",
        }
    }

    /// The type named `name` (`"thing"`, `"phone_number"`), the inverse of
    /// [`as_str`](KeywordType::as_str).
    pub fn parse(name: &str) -> Option<KeywordType> {
        KeywordType::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The type of a key: `thing12` is [`Thing`](KeywordType::Thing),
    /// `character_string3` [`CharacterString`](KeywordType::CharacterString);
    /// legacy keys (`keyword1`, `first`, `remark`) have none.
    pub fn of_key(key: &str) -> Option<KeywordType> {
        KeywordType::parse(key.trim_end_matches(|c: char| c.is_ascii_digit()))
    }

    /// The length limit in characters, when WeChat sets one. `name` says 20,
    /// its limit for letters; a name with Chinese characters is held to 10 by
    /// [`check`]. `date`, `time` and `amount` are limited by their format,
    /// `const` takes no value.
    pub fn max_chars(self) -> Option<usize> {
        match self {
            KeywordType::Thing | KeywordType::Name => Some(20),
            KeywordType::CharacterString | KeywordType::Number | KeywordType::Letter => Some(32),
            KeywordType::Symbol | KeywordType::Phrase => Some(5),
            KeywordType::PhoneNumber => Some(17),
            KeywordType::CarNumber => Some(8),
            KeywordType::Amount | KeywordType::Date | KeywordType::Time | KeywordType::Const => None,
        }
    }

    /// This type's row of [`RULES`].
    pub fn rule(self) -> &'static RuleRow {
        RULES.iter().find(|row| row.kind == self).expect("RULES has a row for every type")
    }
}

impl fmt::Display for KeywordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a value breaks its keyword's rule; Display says it in one sentence
/// naming the key, e.g. "data.thing1.value is 23 characters; thing allows
/// at most 20".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub key: String,
    pub kind: KeywordType,
    pub rule: Rule,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Violation {}

/// Which part of a rule a value breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// More characters than the type allows.
    TooLong,
    /// A character the type does not allow (Chinese in `character_string`,
    /// a letter in `number`, ...).
    Characters,
    /// The right characters in the wrong shape (a date that is not one, two
    /// decimal points, a Chinese character inside a car number).
    Format,
    /// A value for a `const` keyword, which the template sets itself.
    Constant,
    /// A line break or another control character, which WeChat refuses.
    LineBreak,
    /// No value.
    Empty,
}

/// Checks one value of key `key` (type `kind`).
pub fn check(key: &str, kind: KeywordType, value: &str) -> Result<(), Violation> {
    let fail = |rule: Rule, message: String| Err(Violation { key: key.to_string(), kind, rule, message });
    let field = format!("data.{key}.value");
    if kind == KeywordType::Const {
        return fail(Rule::Constant, format!("{field} is given, but {kind} keywords are set by the template and take no value"));
    }
    if value.trim().is_empty() {
        return fail(Rule::Empty, format!("{field} is empty; {kind} needs a value"));
    }
    if value.chars().any(char::is_control) {
        return fail(Rule::LineBreak, format!("{field} has a line break or another control character, which WeChat refuses"));
    }
    let row = kind.rule();
    if let Some(bad) = value.chars().find(|&c| !allowed(kind, c)) {
        return fail(Rule::Characters, format!("{field} has “{bad}”, which {kind} does not allow ({})", row.characters));
    }
    if !well_formed(kind, value) {
        return fail(Rule::Format, format!("{field} “{value}” is not in {kind}'s format: {}", row.format));
    }
    let chars = value.chars().count();
    if let Some(limit) = limit_of(kind, value)
        && chars > limit
    {
        let extra = if kind == KeywordType::Name && limit == 10 { " (a name with Chinese characters)" } else { "" };
        return fail(Rule::TooLong, format!("{field} is {chars} characters; {kind} allows at most {limit}{extra}"));
    }
    Ok(())
}

/// A value that breaks only the length rule, cut to fit on a word or
/// character boundary and ending in "…" (the ellipsis counts toward the
/// limit); None when cutting cannot make it valid (characters, format,
/// const, or a type whose characters exclude "…": `number`, `letter`,
/// `phrase`, `car_number`, ...). A valid value comes back unchanged.
pub fn cut(kind: KeywordType, value: &str) -> Option<String> {
    match check(kind.as_str(), kind, value) {
        Ok(()) => Some(value.to_string()),
        Err(violation) if violation.rule == Rule::TooLong => {
            let limit = limit_of(kind, value)?;
            let cut = cut_with_ellipsis(value, limit)?;
            check(kind.as_str(), kind, &cut).ok().map(|()| cut)
        }
        Err(_) => None,
    }
}

/// How WeChat itself cuts a legacy template's value: line breaks replaced
/// by spaces, cut at 20 characters, no ellipsis. Returns the value and
/// whether it changed.
pub fn cut_like_wechat(value: &str) -> (String, bool) {
    let cut: String = without_line_breaks(value).chars().take(LEGACY_LIMIT).collect();
    let changed = cut != value;
    (cut, changed)
}

/// The length WeChat cuts legacy keyword values to.
pub const LEGACY_LIMIT: usize = 20;

/// `value` with each line break (`\r\n`, `\n`, `\r`) replaced by one space.
pub fn without_line_breaks(value: &str) -> String {
    value.replace("\r\n", " ").replace(['\r', '\n'], " ")
}

/// Placeholder keys of a template's content, in order and each once:
/// `"时间:{{time2.DATA}}\n..."` gives `["time2", ...]`.
pub fn placeholders(content: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let mut rest = content;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        if let Some(key) = after[..end].trim().strip_suffix(".DATA")
            && !key.is_empty()
            && !keys.iter().any(|k| k == key)
        {
            keys.push(key.to_string());
        }
        rest = &after[end + 2..];
    }
    keys
}

/// True for a legacy template's content (`{{keyword1.DATA}}`,
/// `{{first.DATA}}`): some placeholder has no keyword type.
pub fn is_legacy(content: &str) -> bool {
    placeholders(content).iter().any(|key| KeywordType::of_key(key).is_none())
}

/// One row per keyword type for docs and tests: the type, its limit,
/// allowed characters and format in words (English), and where it comes
/// from (the source labels of `docs/wechat.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleRow {
    pub kind: KeywordType,
    pub max_chars: Option<usize>,
    pub characters: &'static str,
    pub format: &'static str,
    pub source: &'static str,
}

/// Where the typed-keyword rules are written: the subscribe-message table
/// and the category-template table, which agree where both speak.
const BOTH: &str = "[S7] 订阅消息参数值内容限制说明; [S5] 类目模板消息参数值内容限制说明";

pub const RULES: [RuleRow; 13] = [
    RuleRow {
        kind: KeywordType::Thing,
        max_chars: Some(20),
        characters: "any: Chinese characters, digits, letters or symbols",
        format: "free text on one line",
        source: BOTH,
    },
    RuleRow {
        kind: KeywordType::CharacterString,
        max_chars: Some(32),
        characters: "digits, letters and symbols; no Chinese characters",
        format: "free, e.g. an order number such as ORD-2019-0001",
        source: "[S7]; [S5]; [S23] (no Chinese characters)",
    },
    RuleRow {
        kind: KeywordType::Number,
        max_chars: Some(32),
        characters: "digits and a decimal point",
        format: "digits with at most one decimal point between digits, e.g. 42 or 3.14",
        source: BOTH,
    },
    RuleRow { kind: KeywordType::Letter, max_chars: Some(32), characters: "letters (A-Z, a-z) only", format: "letters only", source: BOTH },
    RuleRow {
        kind: KeywordType::Symbol,
        max_chars: Some(5),
        characters: "symbols only: no Chinese characters, letters or digits",
        format: "symbols only, e.g. ★",
        source: BOTH,
    },
    RuleRow {
        kind: KeywordType::Amount,
        max_chars: None,
        characters: "a currency symbol, digits, a decimal point, a final 元",
        format: "an optional currency symbol, at most 10 digits with an optional decimal part, an optional final 元, e.g. ￥100.00元 or 100.00",
        source: BOTH,
    },
    RuleRow {
        kind: KeywordType::Date,
        max_chars: None,
        characters: "digits, 年月日, - / . : ~ and spaces",
        format: "a date (2019年10月1日, 2019年10月, 10月1日, 2019-10-01, 2019/10/01, 2019.10.01, 2019-10, 10-01), \
                 optionally followed by a 24-hour time, or two such joined by ~",
        source: BOTH,
    },
    RuleRow {
        kind: KeywordType::Time,
        max_chars: None,
        characters: "digits, 年月日, - / . : ~ and spaces",
        format: "a 24-hour time (15:01 or 15:01:30), optionally after a date (2019年10月1日 15:01), or two such joined by ~",
        source: BOTH,
    },
    RuleRow {
        kind: KeywordType::Phrase,
        max_chars: Some(5),
        characters: "Chinese characters only",
        format: "at most 5 Chinese characters, e.g. 配送中",
        source: "[S7]; [S23] (missing from S5's table; WeChat's answer: the former 汉字 type)",
    },
    RuleRow {
        kind: KeywordType::PhoneNumber,
        max_chars: Some(17),
        characters: "digits and symbols",
        format: "a phone number, e.g. +86-0766-66888866",
        source: BOTH,
    },
    RuleRow {
        kind: KeywordType::CarNumber,
        max_chars: Some(8),
        characters: "letters and digits; a Chinese character first or last",
        format: "a plate number whose first and last characters may be Chinese, the rest letters or digits, e.g. 粤A8Z888挂",
        source: BOTH,
    },
    RuleRow {
        kind: KeywordType::Name,
        max_chars: Some(20),
        characters: "Chinese characters, letters and symbols; no digits",
        format: "at most 10 Chinese characters, or at most 20 letters or symbols; mixed counts as Chinese (10)",
        source: BOTH,
    },
    RuleRow {
        kind: KeywordType::Const,
        max_chars: None,
        characters: "none: the template sets the value",
        format: "not settable; a value given for it is refused",
        source: "[S5] (const keywords of category templates); [S23]",
    },
];

/// The limit `value` is held to: a name with Chinese characters 10, every
/// other value its type's [`max_chars`](KeywordType::max_chars).
fn limit_of(kind: KeywordType, value: &str) -> Option<usize> {
    if kind == KeywordType::Name && value.chars().any(is_han) {
        return Some(10);
    }
    kind.max_chars()
}

/// Cuts `value` to `limit` characters, the last one "…", backing up to a
/// word's start rather than splitting a Latin word (unless the word is most
/// of what is left).
fn cut_with_ellipsis(value: &str, limit: usize) -> Option<String> {
    let chars: Vec<char> = value.chars().collect();
    let keep = limit.checked_sub(1).filter(|&k| k > 0)?;
    if chars.len() <= limit {
        return Some(value.to_string());
    }
    let mut end = keep;
    let in_word = |i: usize| chars[i].is_ascii_alphanumeric();
    if in_word(keep - 1)
        && in_word(keep)
        && let Some(boundary) = (0..keep).rev().find(|&i| !in_word(i))
        && boundary + 1 >= keep / 2
    {
        end = boundary + 1;
    }
    let mut kept: String = chars[..end].iter().collect();
    kept.truncate(kept.trim_end().len());
    if kept.is_empty() {
        kept = chars[..keep].iter().collect();
    }
    kept.push('…');
    Some(kept)
}

/// A Chinese character (CJK unified ideographs and their extensions).
fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2A6DF | 0x2A700..=0x2EBEF | 0x30000..=0x3134F)
}

/// A symbol in WeChat's sense: not a Chinese character, letter or digit
/// (of any script), and not a control character.
fn is_symbol(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_control() && !is_han(c)
}

fn is_currency(c: char) -> bool {
    matches!(c, '$' | '¢'..='¥' | '\u{20A0}'..='\u{20CF}' | '￥' | '￡' | '＄')
}

/// Whether `c` may appear in a value of `kind` (wherever it stands).
fn allowed(kind: KeywordType, c: char) -> bool {
    match kind {
        KeywordType::Thing => true,
        KeywordType::CharacterString => c.is_ascii_alphanumeric() || is_symbol(c),
        KeywordType::Number => c.is_ascii_digit() || c == '.',
        KeywordType::Letter => c.is_ascii_alphabetic(),
        KeywordType::Symbol => is_symbol(c),
        KeywordType::Amount => c.is_ascii_digit() || c == '.' || c == '元' || is_currency(c),
        KeywordType::Date | KeywordType::Time => c.is_ascii_digit() || matches!(c, '年' | '月' | '日' | '-' | '/' | '.' | ':' | '~' | ' '),
        KeywordType::Phrase => is_han(c),
        KeywordType::PhoneNumber => c.is_ascii_digit() || is_symbol(c),
        KeywordType::CarNumber => c.is_ascii_alphanumeric() || is_han(c),
        KeywordType::Name => is_han(c) || c.is_ascii_alphabetic() || is_symbol(c),
        KeywordType::Const => false,
    }
}

/// Whether a value made of allowed characters has its type's shape.
fn well_formed(kind: KeywordType, value: &str) -> bool {
    match kind {
        KeywordType::Number => is_decimal(value),
        KeywordType::Amount => is_amount(value),
        KeywordType::Date => is_range(value, |point| is_point(point, false)),
        KeywordType::Time => is_range(value, |point| is_point(point, true)),
        KeywordType::CarNumber => {
            let chars: Vec<char> = value.chars().collect();
            chars.iter().enumerate().all(|(i, &c)| !is_han(c) || i == 0 || i + 1 == chars.len())
        }
        _ => true,
    }
}

/// Digits with at most one decimal point between digits.
fn is_decimal(value: &str) -> bool {
    let mut parts = value.split('.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    parts.next().is_none() && digits(whole) && fraction.is_none_or(digits)
}

/// An optional currency symbol, at most 10 digits with an optional decimal
/// part, an optional final 元.
fn is_amount(value: &str) -> bool {
    let value = value.strip_suffix('元').unwrap_or(value);
    let value = match value.chars().next() {
        Some(c) if is_currency(c) => &value[c.len_utf8()..],
        _ => value,
    };
    is_decimal(value) && value.chars().filter(char::is_ascii_digit).count() <= 10
}

/// One point, or two joined by `~` (spaces around it allowed).
fn is_range(value: &str, point: impl Fn(&str) -> bool) -> bool {
    let parts: Vec<&str> = value.split('~').map(str::trim).collect();
    parts.len() <= 2 && parts.iter().all(|p| point(p))
}

/// A date with an optional time after it (`time_required`: a time with an
/// optional date before it).
fn is_point(point: &str, time_required: bool) -> bool {
    if time_required && is_clock(point) {
        return true;
    }
    // The date runs to the first space, or to 日 when the time follows directly.
    let (date, clock) = match point.split_once(' ') {
        Some((date, clock)) => (date, Some(clock.trim())),
        None => match point.split_once('日') {
            Some((date, clock)) if !clock.is_empty() => (&point[..date.len() + '日'.len_utf8()], Some(clock)),
            _ => (point, None),
        },
    };
    is_date(date)
        && match clock {
            Some(clock) => is_clock(clock),
            None => !time_required,
        }
}

/// `15:01` or `15:01:30`, 24-hour.
fn is_clock(value: &str) -> bool {
    let parts: Vec<&str> = value.split(':').collect();
    let number = |s: &str, max: u32, widths: &[usize]| {
        widths.contains(&s.len()) && s.chars().all(|c| c.is_ascii_digit()) && s.parse::<u32>().is_ok_and(|n| n <= max)
    };
    (parts.len() == 2 || parts.len() == 3) && number(parts[0], 23, &[1, 2]) && parts[1..].iter().all(|p| number(p, 59, &[2]))
}

/// `2019年10月1日`, `2019年10月`, `10月1日`, or `-`, `/`, `.` forms:
/// `2019-10-01`, `2019-10`, `10-01`.
fn is_date(value: &str) -> bool {
    let digits = |s: &str, widths: &[usize]| widths.contains(&s.len()) && s.chars().all(|c| c.is_ascii_digit());
    let month = |s: &str| digits(s, &[1, 2]) && s.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m));
    let day = |s: &str| digits(s, &[1, 2]) && s.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d));
    let year = |s: &str| digits(s, &[4]);
    if value.contains(['年', '月', '日']) {
        let (y, rest) = match value.split_once('年') {
            Some((y, rest)) => (Some(y), rest),
            None => (None, value),
        };
        let Some((m, rest)) = rest.split_once('月') else { return false };
        let d = match rest {
            "" => None,
            _ => match rest.strip_suffix('日') {
                Some(d) => Some(d),
                None => return false,
            },
        };
        return match (y, d) {
            (Some(y), Some(d)) => year(y) && month(m) && day(d),
            (Some(y), None) => year(y) && month(m),
            (None, Some(d)) => month(m) && day(d),
            (None, None) => false,
        };
    }
    let Some(separator) = ['-', '/', '.'].into_iter().find(|&s| value.contains(s)) else { return false };
    let parts: Vec<&str> = value.split(separator).collect();
    match parts.as_slice() {
        [y, m, d] => year(y) && month(m) && day(d),
        [a, b] if a.len() == 4 => year(a) && month(b),
        [m, d] => month(m) && day(d),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(kind: KeywordType, value: &str) {
        if let Err(v) = check(&format!("{kind}1"), kind, value) {
            panic!("{kind} should accept {value:?}: {v}");
        }
    }

    fn refused(kind: KeywordType, value: &str, rule: Rule) {
        match check(&format!("{kind}1"), kind, value) {
            Ok(()) => panic!("{kind} should refuse {value:?}"),
            Err(v) => assert_eq!(v.rule, rule, "{kind} {value:?}: {v}"),
        }
    }

    #[test]
    fn names_round_trip_and_keys_have_types() {
        for kind in KeywordType::ALL {
            assert_eq!(KeywordType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(KeywordType::parse("keyword"), None);
        assert_eq!(KeywordType::of_key("thing12"), Some(KeywordType::Thing));
        assert_eq!(KeywordType::of_key("character_string3"), Some(KeywordType::CharacterString));
        assert_eq!(KeywordType::of_key("phone_number7"), Some(KeywordType::PhoneNumber));
        assert_eq!(KeywordType::of_key("keyword1"), None);
        assert_eq!(KeywordType::of_key("first"), None);
        assert_eq!(KeywordType::of_key("remark"), None);
    }

    #[test]
    fn rules_list_every_type_once_with_its_limit() {
        for kind in KeywordType::ALL {
            let rows: Vec<&RuleRow> = RULES.iter().filter(|row| row.kind == kind).collect();
            assert_eq!(rows.len(), 1, "{kind} must have exactly one row");
            assert_eq!(rows[0].max_chars, kind.max_chars(), "{kind}");
            assert!(rows[0].source.contains("[S"), "{kind} names its source");
        }
        assert_eq!(RULES.len(), KeywordType::ALL.len());
    }

    #[test]
    fn thing() {
        ok(KeywordType::Thing, "会议室A-3 明天见!");
        ok(KeywordType::Thing, "一二三四五六七八九十一二三四五六七八九十");
        refused(KeywordType::Thing, "一二三四五六七八九十一二三四五六七八九十多", Rule::TooLong);
        refused(KeywordType::Thing, "two\nlines", Rule::LineBreak);
        refused(KeywordType::Thing, "  ", Rule::Empty);
        let v = check("thing1", KeywordType::Thing, "abcdefghijklmnopqrstuvw").unwrap_err();
        assert_eq!(v.to_string(), "data.thing1.value is 23 characters; thing allows at most 20");
    }

    #[test]
    fn character_string() {
        ok(KeywordType::CharacterString, "ORD-2019_0001#A");
        refused(KeywordType::CharacterString, "测试单号", Rule::Characters);
        refused(KeywordType::CharacterString, &"A".repeat(33), Rule::TooLong);
    }

    #[test]
    fn number() {
        ok(KeywordType::Number, "42");
        ok(KeywordType::Number, "3.14");
        refused(KeywordType::Number, "12a", Rule::Characters);
        refused(KeywordType::Number, "1.2.3", Rule::Format);
        refused(KeywordType::Number, ".5", Rule::Format);
        refused(KeywordType::Number, &"9".repeat(33), Rule::TooLong);
    }

    #[test]
    fn letter() {
        ok(KeywordType::Letter, "abcXYZ");
        refused(KeywordType::Letter, "abc1", Rule::Characters);
        refused(KeywordType::Letter, "ab cd", Rule::Characters);
    }

    #[test]
    fn symbol() {
        ok(KeywordType::Symbol, "★-%");
        refused(KeywordType::Symbol, "a!", Rule::Characters);
        refused(KeywordType::Symbol, "!!!!!!", Rule::TooLong);
    }

    #[test]
    fn amount() {
        ok(KeywordType::Amount, "￥100.00元");
        ok(KeywordType::Amount, "100.00");
        ok(KeywordType::Amount, "$5");
        ok(KeywordType::Amount, "88元");
        refused(KeywordType::Amount, "￥12345678901", Rule::Format);
        refused(KeywordType::Amount, "￥￥1", Rule::Format);
        refused(KeywordType::Amount, "1,000", Rule::Characters);
        refused(KeywordType::Amount, "一百元", Rule::Characters);
    }

    #[test]
    fn date() {
        for value in [
            "2019年10月1日",
            "2019年10月",
            "10月1日",
            "2019-10-01",
            "2019/10/01",
            "2019.10.01",
            "2019-10",
            "10-01",
            "2019-10-01 15:01",
            "2019年10月1日 15:01",
            "2019-10-01~2019-10-07",
        ] {
            ok(KeywordType::Date, value);
        }
        refused(KeywordType::Date, "15:01", Rule::Format);
        refused(KeywordType::Date, "2019-13-01", Rule::Format);
        refused(KeywordType::Date, "next Monday", Rule::Characters);
    }

    #[test]
    fn time() {
        for value in ["15:01", "9:05", "15:01:30", "2019年10月1日 15:01", "2019年10月1日15:01", "2019-10-01 15:01", "15:01~16:00"] {
            ok(KeywordType::Time, value);
        }
        refused(KeywordType::Time, "25:00", Rule::Format);
        refused(KeywordType::Time, "2019-10-01", Rule::Format);
        refused(KeywordType::Time, "3pm", Rule::Characters);
    }

    #[test]
    fn phrase() {
        ok(KeywordType::Phrase, "配送中");
        refused(KeywordType::Phrase, "配送中ok", Rule::Characters);
        refused(KeywordType::Phrase, "正在配送途中", Rule::TooLong);
    }

    #[test]
    fn phone_number() {
        ok(KeywordType::PhoneNumber, "+86-0766-66888866");
        refused(KeywordType::PhoneNumber, "call 110", Rule::Characters);
        refused(KeywordType::PhoneNumber, "+86-0766-668888661", Rule::TooLong);
    }

    #[test]
    fn car_number() {
        ok(KeywordType::CarNumber, "粤A8Z888挂");
        ok(KeywordType::CarNumber, "京A12345");
        refused(KeywordType::CarNumber, "粤A8广888", Rule::Format);
        refused(KeywordType::CarNumber, "粤A-8Z888", Rule::Characters);
        refused(KeywordType::CarNumber, "粤A8Z8888挂", Rule::TooLong);
    }

    #[test]
    fn name() {
        ok(KeywordType::Name, "张三");
        ok(KeywordType::Name, "John Smith");
        ok(KeywordType::Name, "阿卜杜·热合曼");
        refused(KeywordType::Name, "张三李四王五赵六钱七孙", Rule::TooLong);
        refused(KeywordType::Name, "Bob张三李四王五赵六钱", Rule::TooLong);
        refused(KeywordType::Name, "Abcdefghijklmnopqrstu", Rule::TooLong);
        refused(KeywordType::Name, "R2D2", Rule::Characters);
        let v = check("name3", KeywordType::Name, "张三李四王五赵六钱七孙").unwrap_err();
        assert!(v.to_string().contains("at most 10"), "{v}");
    }

    #[test]
    fn constant() {
        refused(KeywordType::Const, "anything", Rule::Constant);
        refused(KeywordType::Const, "", Rule::Constant);
    }

    #[test]
    fn cut_keeps_valid_values_and_cuts_only_overlong_ones() {
        assert_eq!(cut(KeywordType::Thing, "short").as_deref(), Some("short"));
        let long = "一二三四五六七八九十一二三四五六七八九十多余";
        let cut_thing = cut(KeywordType::Thing, long).unwrap();
        assert_eq!(cut_thing, "一二三四五六七八九十一二三四五六七八九…");
        assert_eq!(cut_thing.chars().count(), 20);
        // A Latin word is not split when a word boundary is near.
        assert_eq!(cut(KeywordType::Thing, "Your order has been shipped today").as_deref(), Some("Your order has been…"));
        // A name with Chinese characters is held to 10.
        assert_eq!(cut(KeywordType::Name, "欧阳一二三四五六七八九").as_deref(), Some("欧阳一二三四五六七…"));
        assert_eq!(cut(KeywordType::CharacterString, &"A1".repeat(20)).map(|s| s.chars().count()), Some(32));
        // Types whose characters exclude "…", and everything but length.
        assert_eq!(cut(KeywordType::Number, &"9".repeat(40)), None);
        assert_eq!(cut(KeywordType::Phrase, "正在配送途中"), None);
        assert_eq!(cut(KeywordType::CarNumber, "粤A8Z8888挂"), None);
        assert_eq!(cut(KeywordType::CharacterString, "测试单号"), None);
        assert_eq!(cut(KeywordType::Time, "tomorrow"), None);
        assert_eq!(cut(KeywordType::Const, "x"), None);
        assert_eq!(cut(KeywordType::Thing, "a\nb"), None);
    }

    #[test]
    fn cut_like_wechat_replaces_line_breaks_and_cuts_at_twenty_without_an_ellipsis() {
        assert_eq!(cut_like_wechat("fine"), ("fine".to_string(), false));
        assert_eq!(cut_like_wechat("a\r\nb\nc"), ("a b c".to_string(), true));
        let (cut, changed) = cut_like_wechat("一二三四五六七八九十一二三四五六七八九十多余");
        assert_eq!(cut, "一二三四五六七八九十一二三四五六七八九十");
        assert!(changed);
        assert_eq!(cut_like_wechat("😀".repeat(21).as_str()).0, "😀".repeat(20));
    }

    #[test]
    fn placeholders_come_in_order_once_each() {
        assert_eq!(placeholders("项目名称:{{thing1.DATA}}\n时间:{{time2.DATA}}\n"), ["thing1", "time2"]);
        assert_eq!(placeholders("{{first.DATA}}\n会员卡号:{{keyword1.DATA}}\n{{remark.DATA}}"), ["first", "keyword1", "remark"]);
        assert_eq!(placeholders("{{a.DATA}}{{a.DATA}} {{broken"), ["a"]);
        assert!(placeholders("no placeholders").is_empty());
        assert!(is_legacy("{{first.DATA}}\n会员卡号:{{keyword1.DATA}}"));
        assert!(!is_legacy("项目名称:{{thing1.DATA}}\n时间:{{time2.DATA}}"));
    }
}
