//! Cron expressions, evaluated in a time zone: Quartz's (6 or 7 fields,
//! seconds first, optional year, `? L W #`, weekdays 1–7 = SUN–SAT) with the
//! fire times of `org.quartz.CronExpression`, and classic 5-field cron
//! (weekdays 0–7, Sunday being 0 or 7) with Vixie cron's rule that when both
//! day-of-month and day-of-week are restricted, either one matching is
//! enough. A bad expression is an error that names the field at fault and
//! says what is expected there.
//!
//! The evaluator is our own. No crate is exact: croner (used before) refused
//! Quartz's start/step and wrap-around forms, accepted expressions Quartz
//! refuses, and never fired on `L` alone in day-of-week. Quartz's own
//! parser accepts some text by accident (trailing characters ignored, steps
//! after names dropped); this module refuses those instead, so what is
//! accepted fires exactly as written. The differential test in
//! `tests/integration/cron_oracle.rs` runs the real Quartz and croniter over
//! a generated corpus and lists every disagreement; `docs/cron.md` lists the
//! deliberate ones.
//!
//! Daylight saving follows Quartz: a wall-clock time that does not exist (the
//! spring-forward gap) is skipped, and one that happens twice (the fall-back
//! overlap) fires once, at its second (standard-time) instant. Like Quartz,
//! nothing fires more than 100 years after the current year.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// A parsed schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    expression: String,
    rule: Rule,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cron expression {expression:?}: {problem}")]
pub struct CronError {
    pub expression: String,
    pub problem: String,
}

#[derive(Clone, Debug)]
struct Rule {
    seconds: u64,
    minutes: u64,
    hours: u64,
    months: u64,
    /// `None`: every year.
    years: Option<BTreeSet<i32>>,
    days: Days,
}

/// Which days of a month fire.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Days {
    /// Quartz day-of-month list (bits 1–31), day-of-week `?`.
    OfMonth(u64),
    /// `L`, `L-n`, `LW`, `L-nW`.
    Last { offset: u32, weekday: bool },
    /// `nW`: the weekday nearest day n, within its month.
    Nearest(u32),
    /// Quartz day-of-week list (bits 1–7 = SUN–SAT), day-of-month `?`.
    OfWeek(u64),
    /// `nL`: the last weekday n of the month.
    LastOfWeek(u32),
    /// `n#k`: the k-th weekday n of the month.
    Nth { weekday: u32, k: u32 },
    /// Classic cron: day-of-month bits 1–31, day-of-week bits 0–6, and
    /// whether each was restricted (not `*`).
    /// `hour_restricted`: croniter moves a time in the spring-forward gap
    /// to the gap's end only when the hour field is not `*`.
    Classic { dom: u64, dow: u64, dom_restricted: bool, dow_restricted: bool, hour_restricted: bool },
}

/// Latest year Quartz can fire in: 100 years after the current one.
fn horizon() -> i32 {
    Utc::now().year() + 100
}

/// Years a Quartz year field may name.
const YEARS: (u32, u32) = (1970, 2199);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
    /// Classic cron's day-of-week: 0–7, Sunday being 0 or 7.
    ClassicDayOfWeek,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Second => "second",
            Kind::Minute => "minute",
            Kind::Hour => "hour",
            Kind::DayOfMonth => "day-of-month",
            Kind::Month => "month",
            Kind::DayOfWeek | Kind::ClassicDayOfWeek => "day-of-week",
            Kind::Year => "year",
        }
    }

    fn bounds(self) -> (u32, u32) {
        match self {
            Kind::Second | Kind::Minute => (0, 59),
            Kind::Hour => (0, 23),
            Kind::DayOfMonth => (1, 31),
            Kind::Month => (1, 12),
            Kind::DayOfWeek => (1, 7),
            Kind::ClassicDayOfWeek => (0, 7),
            Kind::Year => YEARS,
        }
    }

    /// What the field takes, for error messages.
    fn expects(self) -> &'static str {
        match self {
            Kind::Second => "0–59, ranges a-b, lists a,b, steps a/n or */n (n at most 59)",
            Kind::Minute => "0–59, ranges a-b, lists a,b, steps a/n or */n (n at most 59)",
            Kind::Hour => "0–23, ranges a-b (22-2 wraps past midnight), lists, steps (n at most 23)",
            Kind::DayOfMonth => "1–31, ranges, lists, steps, or one of ?, L, L-n (n at most 30), LW, nW",
            Kind::Month => "1–12 or JAN–DEC, ranges, lists, steps (n at most 12)",
            Kind::DayOfWeek => "1–7 (1 = SUN … 7 = SAT) or SUN–SAT, ranges (FRI-MON wraps), lists, steps, or one of ?, L, nL, n#k (k 1–5)",
            Kind::Year => "1970–2199, ranges a-b with a ≤ b, lists, steps (n at most 100)",
            Kind::ClassicDayOfWeek => "0–7 (0 and 7 = SUN) or SUN–SAT, ranges, lists, steps",
        }
    }

    /// The largest step Quartz takes in this field.
    fn max_step(self) -> u32 {
        match self {
            Kind::Second | Kind::Minute => 59,
            Kind::Hour => 23,
            Kind::DayOfMonth => 31,
            Kind::Month => 12,
            Kind::DayOfWeek | Kind::ClassicDayOfWeek => 7,
            // Quartz accepts larger year steps but then fires every year.
            Kind::Year => 100,
        }
    }

    fn names(self) -> &'static [&'static str] {
        const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
        const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
        match self {
            Kind::Month => &MONTHS,
            Kind::DayOfWeek | Kind::ClassicDayOfWeek => &DAYS,
            _ => &[],
        }
    }

    /// The value a name stands for (JAN = 1; SUN = 1 in Quartz, 0 in classic cron).
    fn named(self, text: &str) -> Option<u32> {
        let index = self.names().iter().position(|n| *n == text)? as u32;
        Some(match self {
            Kind::ClassicDayOfWeek => index,
            _ => index + 1,
        })
    }
}

/// Which grammar a field is read with: Quartz's checks steps outside
/// ranges and refuses ranges mixing names and numbers; classic cron (as
/// croniter) takes any positive step and mixed ranges.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Quartz,
    Classic,
}

/// A field's problem, before it is tied to the expression.
type FieldResult<T> = Result<T, String>;

impl Schedule {
    pub fn parse(expression: &str) -> Result<Schedule, CronError> {
        let upper = expression.to_ascii_uppercase();
        let fields: Vec<&str> = upper.split_whitespace().collect();
        let error = |problem: String| CronError { expression: expression.to_string(), problem };
        let rule = match fields.len() {
            5 => classic(&fields).map_err(error)?,
            6 | 7 => quartz(&fields).map_err(error)?,
            n => {
                return Err(error(format!(
                    "has {n} fields; use Quartz (second minute hour day-of-month month day-of-week [year]) or classic 5-field cron (minute hour day-of-month month day-of-week)"
                )));
            }
        };
        Ok(Schedule { expression: expression.split_whitespace().collect::<Vec<_>>().join(" "), rule })
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first occurrence strictly after `after` (to the second), in
    /// `zone`; `None` when the schedule never fires again.
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&zone).naive_local();
        let local = local.with_nanosecond(0).unwrap_or(local);
        match self.rule.days {
            Days::Classic { hour_restricted, .. } => self.next_classic(after, local, zone, hour_restricted),
            _ => self.next_quartz(local, zone),
        }
    }

    /// Quartz: the next matching wall-clock time that exists; a time the
    /// fall-back overlap repeats fires at its second (standard-time) instant,
    /// as Java's calendar resolves it.
    fn next_quartz(&self, mut wall: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
        loop {
            wall = self.rule.next_wall(wall)?;
            match zone.from_local_datetime(&wall) {
                LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
                LocalResult::Ambiguous(_, later) => return Some(later.with_timezone(&Utc)),
                LocalResult::None => continue,
            }
        }
    }

    /// Classic cron, as croniter does it: every instant whose wall-clock
    /// time matches fires (both passes of the fall-back overlap), and a
    /// time in the spring-forward gap fires when the gap ends if the hour
    /// is restricted (a wildcard hour finds the same minute after). Wall-clock
    /// order and instant order differ only within an overlap, so the search
    /// starts two hours early and ends two hours past the first hit.
    fn next_classic(&self, after: DateTime<Utc>, local: NaiveDateTime, zone: Tz, shift_gap: bool) -> Option<DateTime<Utc>> {
        let window = chrono::TimeDelta::hours(2);
        let mut wall = local - window;
        let mut best: Option<(DateTime<Utc>, NaiveDateTime)> = None;
        while let Some(next) = self.rule.next_wall(wall) {
            wall = next;
            if best.is_some_and(|(_, at)| wall > at + window) {
                break;
            }
            for instant in instants(zone, wall, shift_gap).into_iter().filter(|t| *t > after) {
                if best.is_none_or(|(b, _)| instant < b) {
                    best = Some((instant, wall));
                }
            }
        }
        best.map(|(instant, _)| instant)
    }

    /// The next `count` occurrences after `after`.
    pub fn preview(&self, after: DateTime<Utc>, zone: Tz, count: usize) -> Vec<DateTime<Utc>> {
        let mut times = Vec::with_capacity(count);
        let mut cursor = after;
        while times.len() < count {
            match self.next_after(cursor, zone) {
                Some(next) => {
                    times.push(next);
                    cursor = next;
                }
                None => break,
            }
        }
        times
    }
}

impl Rule {
    /// The first allowed year at or after `year`.
    fn year_from(&self, year: i32) -> Option<i32> {
        match &self.years {
            None => Some(year),
            Some(years) => years.range(year..).next().copied(),
        }
    }

    /// The first matching wall-clock time after `from`, whatever the zone.
    fn next_wall(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut date = from.date();
        let mut floor = Some(from.time());
        let last = horizon();
        while date.year() <= last {
            let year = self.year_from(date.year())?;
            if year != date.year() {
                date = NaiveDate::from_ymd_opt(year, 1, 1)?;
                floor = None;
                continue;
            }
            if !bit(self.months, date.month()) {
                date = first_of_next_month(date)?;
                floor = None;
                continue;
            }
            if self.days.matches(date)
                && let Some(time) = self.first_time(floor)
            {
                return Some(date.and_time(time));
            }
            date = date.succ_opt()?;
            floor = None;
        }
        None
    }

    /// The first time of day after `from` (any time when `None`).
    fn first_time(&self, from: Option<NaiveTime>) -> Option<NaiveTime> {
        let floor = from.map(|t| (t.hour(), t.minute(), t.second()));
        for h in bits(self.hours).filter(|&h| floor.is_none_or(|f| h >= f.0)) {
            for m in bits(self.minutes).filter(|&m| floor.is_none_or(|f| (h, m) >= (f.0, f.1))) {
                if let Some(s) = bits(self.seconds).find(|&s| floor.is_none_or(|f| (h, m, s) > f)) {
                    return NaiveTime::from_hms_opt(h, m, s);
                }
            }
        }
        None
    }
}

/// The instants a wall-clock time names in `zone`: one, two in a fall-back
/// overlap, or, in a spring-forward gap, the instant the gap ends (none
/// unless `shift_gap`).
fn instants(zone: Tz, wall: NaiveDateTime, shift_gap: bool) -> Vec<DateTime<Utc>> {
    match zone.from_local_datetime(&wall) {
        LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
        LocalResult::Ambiguous(a, b) => vec![a.with_timezone(&Utc), b.with_timezone(&Utc)],
        LocalResult::None if !shift_gap => Vec::new(),
        LocalResult::None => (1..=240)
            .map(|m| wall.with_second(0).unwrap_or(wall) + chrono::TimeDelta::minutes(m))
            .find_map(|w| zone.from_local_datetime(&w).earliest())
            .map(|t| t.with_timezone(&Utc))
            .into_iter()
            .collect(),
    }
}

impl Days {
    fn matches(&self, date: NaiveDate) -> bool {
        let (day, last) = (date.day(), last_day(date));
        let weekday = date.weekday().num_days_from_sunday() + 1; // Quartz: 1 = SUN
        match *self {
            Days::OfMonth(days) => bit(days, day),
            Days::Last { offset, weekday: false } => last.checked_sub(offset) == Some(day),
            Days::Last { offset, weekday: true } => {
                last.checked_sub(offset).filter(|&d| d >= 1).and_then(|d| nearest_weekday(date, d)) == Some(day)
            }
            Days::Nearest(n) => nearest_weekday(date, n) == Some(day),
            Days::OfWeek(days) => bit(days, weekday),
            Days::LastOfWeek(w) => w == weekday && day + 7 > last,
            Days::Nth { weekday: w, k } => w == weekday && (day - 1) / 7 + 1 == k,
            Days::Classic { dom, dow, dom_restricted, dow_restricted, .. } => {
                let (by_dom, by_dow) = (bit(dom, day), bit(dow, weekday - 1));
                if dom_restricted && dow_restricted { by_dom || by_dow } else { by_dom && by_dow }
            }
        }
    }
}

/// The weekday nearest day `n` of `date`'s month, never leaving the month
/// at its start or end (Quartz's `W`). Like Quartz, a day past the month's
/// end is counted on into the next month to find its weekday, and fires
/// only if the nearest weekday falls back inside the month.
fn nearest_weekday(date: NaiveDate, n: u32) -> Option<u32> {
    let first = date.with_day(1)?;
    let last = last_day(date);
    let target = first + chrono::TimeDelta::days(i64::from(n) - 1);
    let day = match target.weekday() {
        chrono::Weekday::Sat if n == 1 => n + 2,
        chrono::Weekday::Sat => n - 1,
        chrono::Weekday::Sun if n == last => n - 2,
        chrono::Weekday::Sun => n + 1,
        _ => n,
    };
    (day <= last).then_some(day)
}

fn last_day(date: NaiveDate) -> u32 {
    first_of_next_month(date).and_then(|d| d.pred_opt()).map_or(31, |d| d.day())
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    let (y, m) = if date.month() == 12 { (date.year() + 1, 1) } else { (date.year(), date.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1)
}

fn bit(set: u64, n: u32) -> bool {
    n < 64 && set & (1 << n) != 0
}

fn bits(set: u64) -> impl Iterator<Item = u32> {
    (0..64).filter(move |&n| bit(set, n))
}

fn in_field<T>(kind: Kind, text: &str, result: FieldResult<T>) -> FieldResult<T> {
    result.map_err(|problem| format!("the {} field {text:?} {problem}; Quartz expects {}", kind.name(), kind.expects()))
}

fn quartz(fields: &[&str]) -> FieldResult<Rule> {
    let kinds = [Kind::Second, Kind::Minute, Kind::Hour, Kind::DayOfMonth, Kind::Month, Kind::DayOfWeek, Kind::Year];
    let set = |i: usize| in_field(kinds[i], fields[i], values(kinds[i], fields[i], Dialect::Quartz).map(to_bits));
    let (dom, dow) = (fields[3], fields[5]);
    let days = match (dom == "?", dow == "?") {
        (true, true) => {
            return Err("has ? in both the day-of-month and the day-of-week field; Quartz expects ? in exactly one of them (e.g. `0 0 12 ? * MON` or `0 0 12 1 * ?`)".into());
        }
        (false, false) => {
            return Err(format!(
                "restricts both the day-of-month field ({dom:?}) and the day-of-week field ({dow:?}); Quartz expects ? in one of them (e.g. `0 0 12 ? * MON` or `0 0 12 1 * ?`)"
            ));
        }
        (false, true) => in_field(Kind::DayOfMonth, dom, day_of_month(dom))?,
        (true, false) => in_field(Kind::DayOfWeek, dow, day_of_week(dow))?,
    };
    let years = match fields.get(6) {
        None => None,
        Some(text) if *text == "*" => None,
        Some(text) => Some(in_field(Kind::Year, text, values(Kind::Year, text, Dialect::Quartz))?.into_iter().map(|y| y as i32).collect()),
    };
    Ok(Rule { seconds: set(0)?, minutes: set(1)?, hours: set(2)?, months: set(4)?, years, days })
}

fn classic(fields: &[&str]) -> FieldResult<Rule> {
    let kinds = [Kind::Minute, Kind::Hour, Kind::DayOfMonth, Kind::Month, Kind::ClassicDayOfWeek];
    let set = |i: usize| {
        let text = fields[i];
        let unnamed = kinds[i].names().iter().fold(text.to_string(), |t, name| t.replace(name, ""));
        let problem = if unnamed.contains(['?', 'L', 'W', '#']) {
            Err("uses ?, L, W or # which only Quartz's 6-field form (seconds first) has".to_string())
        } else {
            values(kinds[i], text, Dialect::Classic).map(to_bits)
        };
        problem.map_err(|p| format!("the {} field {text:?} {p}; classic cron expects {}", kinds[i].name(), classic_expects(kinds[i])))
    };
    // Sunday may be 7 as well as 0.
    let dow = set(4)?;
    let dow = (dow | ((dow >> 7) & 1)) & 0x7f;
    Ok(Rule {
        seconds: 1,
        minutes: set(0)?,
        hours: set(1)?,
        months: set(3)?,
        years: None,
        days: Days::Classic {
            dom: set(2)?,
            dow,
            dom_restricted: fields[2] != "*",
            dow_restricted: fields[4] != "*",
            hour_restricted: fields[1] != "*",
        },
    })
}

fn classic_expects(kind: Kind) -> &'static str {
    match kind {
        Kind::Minute => "0–59, ranges, lists, steps",
        Kind::Hour => "0–23, ranges, lists, steps",
        Kind::DayOfMonth => "1–31, ranges, lists, steps",
        Kind::Month => "1–12 or JAN–DEC, ranges, lists, steps",
        _ => "0–7 (0 and 7 = SUN) or SUN–SAT, ranges, lists, steps",
    }
}

fn to_bits(values: Vec<u32>) -> u64 {
    values.into_iter().filter(|&v| v < 64).fold(0, |acc, v| acc | (1 << v))
}

/// Quartz's day-of-month: a list, or `L`, `L-n`, `LW`, `L-nW`, `nW` alone.
fn day_of_month(text: &str) -> FieldResult<Days> {
    if let Some(rest) = text.strip_prefix('L') {
        let (offset, weekday) = match rest.strip_suffix('W') {
            Some(offset) => (offset, true),
            None => (rest, false),
        };
        let offset = match offset {
            "" => 0,
            _ => match offset.strip_prefix('-').and_then(|n| n.parse::<u32>().ok()) {
                Some(n) if n <= 30 => n,
                Some(_) => return Err("has an offset from the last day larger than 30".into()),
                None => return Err("is not L, L-n, LW or L-nW".into()),
            },
        };
        return Ok(Days::Last { offset, weekday });
    }
    if text.contains('L') {
        return Err("combines L with other days; Quartz takes L, L-n or LW only on its own".into());
    }
    if let Some(day) = text.strip_suffix('W') {
        return match day.parse::<u32>() {
            Ok(n) if (1..=31).contains(&n) => Ok(Days::Nearest(n)),
            Ok(_) => Err("asks for the weekday nearest a day outside 1–31".into()),
            Err(_) => Err("uses W with something other than one day number (W takes one day, e.g. 15W)".into()),
        };
    }
    Ok(Days::OfMonth(to_bits(values(Kind::DayOfMonth, text, Dialect::Quartz)?)))
}

/// Quartz's day-of-week: a list, or `L`, `nL`, `n#k` alone.
fn day_of_week(text: &str) -> FieldResult<Days> {
    if text == "L" {
        return Ok(Days::OfWeek(1 << 7)); // `L` alone is the last day of the week, Saturday
    }
    if let Some((day, k)) = text.split_once('#') {
        let weekday = weekday(day)?;
        return match k.parse::<u32>() {
            Ok(k) if (1..=5).contains(&k) => Ok(Days::Nth { weekday, k }),
            _ => Err(format!("has {k:?} after #; Quartz expects the week of the month, 1–5")),
        };
    }
    if let Some(day) = text.strip_suffix('L') {
        return Ok(Days::LastOfWeek(weekday(day)?));
    }
    Ok(Days::OfWeek(to_bits(values(Kind::DayOfWeek, text, Dialect::Quartz)?)))
}

/// One Quartz weekday, by number or name, as `#` and `L` take it.
fn weekday(text: &str) -> FieldResult<u32> {
    let value = Kind::DayOfWeek.named(text).or_else(|| text.parse().ok());
    match value {
        Some(v) if (1..=7).contains(&v) => Ok(v),
        _ => Err(format!("has {text:?} where one weekday (1–7 or SUN–SAT) belongs")),
    }
}

/// The values a list field names: items `*`, `*/n`, `a`, `a/n`, `a-b`,
/// `a-b/n`, separated by commas; a range whose end is below its start wraps.
fn values(kind: Kind, text: &str, dialect: Dialect) -> FieldResult<Vec<u32>> {
    let mut all = Vec::new();
    for item in text.split(',') {
        if item.is_empty() {
            return Err("has an empty list item".into());
        }
        all.extend(item_values(kind, item, dialect)?);
    }
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

fn item_values(kind: Kind, item: &str, dialect: Dialect) -> FieldResult<Vec<u32>> {
    let (min, max) = kind.bounds();
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(parse_step(kind, step, dialect)?)),
        None => (item, None),
    };
    // `a/n` runs to the field's end; classic cron's weekdays end at 6.
    let top = if kind == Kind::ClassicDayOfWeek { 6 } else { max };
    let (start, end) = match range {
        "*" => (min, max),
        "?" => return Err("uses ? inside a list or where it does not belong (? stands alone, in day-of-month or day-of-week)".into()),
        _ => match range.split_once('-') {
            Some((a, b)) => {
                if dialect == Dialect::Quartz && kind.named(a).is_some() != kind.named(b).is_some() {
                    return Err(format!("mixes a name and a number in the range {range}; use two names or two numbers"));
                }
                (value(kind, a, step.is_some())?, value(kind, b, step.is_some())?)
            }
            None => {
                let a = value(kind, range, step.is_some())?;
                (a, if step.is_some() { top } else { a })
            }
        },
    };
    if kind == Kind::Year && start > end {
        return Err(format!("has the range {start}-{end}; a year range must not run backwards"));
    }
    Ok(cycle(min, max, start, end).into_iter().step_by(step.unwrap_or(1) as usize).collect())
}

/// `start` to `end` inclusive, wrapping from `max` back to `min`.
fn cycle(min: u32, max: u32, start: u32, end: u32) -> Vec<u32> {
    if start <= end { (start..=end).collect() } else { (start..=max).chain(min..=end).collect() }
}

fn parse_step(kind: Kind, text: &str, dialect: Dialect) -> FieldResult<u32> {
    let most = if dialect == Dialect::Classic { u32::MAX } else { kind.max_step() };
    match text.parse::<u32>() {
        Ok(0) if dialect == Dialect::Classic => Err("has the step 0; a step is at least 1".into()),
        Ok(n) if (1..=most).contains(&n) => Ok(n),
        Ok(n) => Err(format!("has the step {n}; the step must be 1–{}", kind.max_step())),
        Err(_) => Err(format!("has {text:?} after /; a step is a whole number")),
    }
}

/// One number or name in range; a name takes no step (Quartz would ignore it).
fn value(kind: Kind, text: &str, stepped: bool) -> FieldResult<u32> {
    let (min, max) = kind.bounds();
    if let Some(v) = kind.named(text) {
        if stepped {
            return Err(format!("puts a step after the name {text}; use numbers for stepped ranges"));
        }
        return Ok(v);
    }
    match text.parse::<u32>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        Ok(v) => Err(format!("has {v}, outside {min}–{max}")),
        Err(_) => Err(format!("has {text:?}, which is not a number{}", if kind.names().is_empty() { "" } else { " or a name" })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn shanghai(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap().with_timezone(&Utc)
    }

    fn next(expression: &str, after: DateTime<Utc>) -> DateTime<Utc> {
        Schedule::parse(expression).unwrap().next_after(after, chrono_tz::Asia::Shanghai).unwrap()
    }

    #[test]
    fn the_seed_expressions_fire_on_the_hour() {
        let after = shanghai(2026, 11, 21, 10, 15, 0);
        assert_eq!(next("0 0 * ? * * *", after), shanghai(2026, 11, 21, 11, 0, 0));
        assert_eq!(next("0 */1 * * *", after), shanghai(2026, 11, 21, 11, 0, 0));
    }

    #[test]
    fn quartz_weekdays_count_from_sunday_as_one() {
        // 2026-11-21 is a Saturday. `6#2` is the second Friday of the month.
        let after = shanghai(2026, 11, 21, 0, 0, 0);
        assert_eq!(next("0 0 9 ? * 6#2", after), shanghai(2026, 12, 11, 9, 0, 0));
        assert_eq!(next("0 0 9 ? * 1", after), shanghai(2026, 11, 22, 9, 0, 0));
        assert_eq!(next("0 0 9 ? * SUN", after), shanghai(2026, 11, 22, 9, 0, 0));
        // Classic cron: 0 (and 7) is Sunday.
        assert_eq!(next("0 9 * * 0", after), shanghai(2026, 11, 22, 9, 0, 0));
        assert_eq!(next("0 9 * * 7", after), shanghai(2026, 11, 22, 9, 0, 0));
    }

    #[test]
    fn last_day_nearest_weekday_and_nth_weekday() {
        let after = shanghai(2026, 11, 21, 0, 0, 0);
        assert_eq!(next("0 30 18 L * ?", after), shanghai(2026, 11, 30, 18, 30, 0));
        assert_eq!(next("0 0 8 1W * ?", after), shanghai(2026, 12, 1, 8, 0, 0));
        assert_eq!(next("0 0 8 15W * ?", shanghai(2026, 11, 1, 0, 0, 0)), shanghai(2026, 11, 16, 8, 0, 0));
        assert_eq!(next("0 0 17 ? * 6L", after), shanghai(2026, 11, 27, 17, 0, 0));
        assert_eq!(next("0 15 10 L-2 * ?", after), shanghai(2026, 11, 28, 10, 15, 0));
    }

    #[test]
    fn the_issue_examples_behave_as_quartz() {
        let after = shanghai(2026, 11, 21, 10, 0, 0);
        assert_eq!(next("0 0/5 14 * * ?", after), shanghai(2026, 11, 21, 14, 0, 0));
        assert_eq!(next("0/15 * * * * ?", after), shanghai(2026, 11, 21, 10, 0, 15));
        // Saturday the 21st, 12:00: FRI-MON wraps through the weekend.
        assert_eq!(next("0 0 12 ? * FRI-MON", after), shanghai(2026, 11, 21, 12, 0, 0));
        assert_eq!(next("0 0 12 ? * FRI-MON", shanghai(2026, 11, 23, 13, 0, 0)), shanghai(2026, 11, 27, 12, 0, 0));
        assert_eq!(next("0 0 22-2 * * ?", shanghai(2026, 11, 21, 23, 30, 0)), shanghai(2026, 11, 22, 0, 0, 0));
        assert_eq!(next("0 0 12 ? * L", shanghai(2026, 11, 21, 13, 0, 0)), shanghai(2026, 11, 28, 12, 0, 0));
        for refused in ["* * * * * *", "0 0 12 1 * MON", "0 0 12 ? * ?", "0 0 12 1,15,L * ?"] {
            assert!(Schedule::parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn the_year_field_bounds_the_schedule() {
        let after = shanghai(2026, 11, 21, 0, 0, 0);
        assert_eq!(next("0 0 0 1 1 ? 2028", after), shanghai(2028, 1, 1, 0, 0, 0));
        assert_eq!(Schedule::parse("0 0 0 1 1 ? 2020").unwrap().next_after(after, chrono_tz::Asia::Shanghai), None);
    }

    #[test]
    fn daylight_saving_skips_the_gap_and_fires_once_in_the_overlap() {
        let ny = chrono_tz::America::New_York;
        // 2026-03-08 02:00 EST jumps to 03:00 EDT: 02:30 does not exist that day.
        let before = Utc.with_ymd_and_hms(2026, 3, 8, 5, 0, 0).unwrap(); // 00:00 EST
        let s = Schedule::parse("0 30 2 * * ?").unwrap();
        assert_eq!(s.next_after(before, ny), Some(Utc.with_ymd_and_hms(2026, 3, 9, 6, 30, 0).unwrap()));
        // 2026-11-01 01:30 happens twice; Quartz fires at the second, EST (06:30 UTC).
        let before = Utc.with_ymd_and_hms(2026, 11, 1, 4, 0, 0).unwrap(); // 00:00 EDT
        let s = Schedule::parse("0 30 1 * * ?").unwrap();
        assert_eq!(s.next_after(before, ny), Some(Utc.with_ymd_and_hms(2026, 11, 1, 6, 30, 0).unwrap()));
    }

    #[test]
    fn every_second_fires_every_second() {
        let after = shanghai(2026, 11, 21, 10, 0, 0);
        assert_eq!(next("* * * * * ?", after), shanghai(2026, 11, 21, 10, 0, 1));
    }

    #[test]
    fn classic_cron_ors_restricted_days() {
        // The 1st, or any Monday: Monday the 23rd comes first.
        let after = shanghai(2026, 11, 21, 13, 0, 0);
        assert_eq!(next("0 12 1 * MON", after), shanghai(2026, 11, 23, 12, 0, 0));
        // Only one restricted: both must hold (every Monday).
        assert_eq!(next("0 12 * * MON", after), shanghai(2026, 11, 23, 12, 0, 0));
        assert_eq!(next("0 12 1 * *", after), shanghai(2026, 12, 1, 12, 0, 0));
    }

    #[test]
    fn a_bad_expression_names_the_field() {
        let err = Schedule::parse("0 0 25 * * ?").unwrap_err();
        assert!(err.problem.starts_with("the hour field \"25\""), "{err}");
        let err = Schedule::parse("0 0 9 ? * 8#2").unwrap_err();
        assert!(err.problem.starts_with("the day-of-week field"), "{err}");
        let err = Schedule::parse("61 0 * * *").unwrap_err();
        assert!(err.problem.starts_with("the minute field"), "{err}");
        let err = Schedule::parse("every day").unwrap_err();
        assert!(err.problem.contains("2 fields"), "{err}");
        let err = Schedule::parse("0 0 12 1 * MON").unwrap_err();
        assert!(err.problem.contains("? in one of them"), "{err}");
    }
}
