//! Cron expressions: Quartz (6 or 7 fields: seconds first, optional year,
//! `? L W #`, weekdays 1–7 = SUN–SAT) and classic 5-field cron (weekdays
//! 0–6 = SUN–SAT), evaluated in a time zone. A bad expression is an error
//! that names the field at fault.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A parsed schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    expression: String,
}

const QUARTZ_FIELDS: [&str; 7] = ["second", "minute", "hour", "day-of-month", "month", "day-of-week", "year"];
const CLASSIC_FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cron expression {expression:?}: {problem}")]
pub struct CronError {
    pub expression: String,
    pub problem: String,
}

impl Schedule {
    pub fn parse(expression: &str) -> Result<Schedule, CronError> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let error = |problem: String| CronError { expression: expression.to_string(), problem };
        let (parser, names): (CronParser, &[&str]) = match fields.len() {
            5 => (classic(), &CLASSIC_FIELDS),
            6 | 7 => (quartz(), &QUARTZ_FIELDS[..fields.len()]),
            n => {
                return Err(error(format!(
                    "has {n} fields; use Quartz (second minute hour day-of-month month day-of-week [year]) or classic 5-field cron"
                )));
            }
        };
        let normalized = fields.join(" ");
        match parser.parse(&normalized) {
            Ok(cron) => Ok(Schedule { cron, expression: normalized }),
            Err(e) => Err(error(match culprit(&parser, &fields, names) {
                Some(i) => format!("the {} field {:?} is invalid ({e})", names[i], fields[i]),
                None => format!("is invalid ({e})"),
            })),
        }
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first occurrence strictly after `after`, in `zone`; `None` when
    /// the schedule never fires again (e.g. a year field in the past).
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after.with_timezone(&zone), false).ok().map(|t| t.with_timezone(&Utc))
    }
}

fn quartz() -> CronParser {
    CronParser::builder().seconds(Seconds::Required).year(Year::Optional).alternative_weekdays(true).build()
}

fn classic() -> CronParser {
    CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build()
}

/// Which field breaks the expression: the first one whose replacement by a
/// wildcard makes it parse.
fn culprit(parser: &CronParser, fields: &[&str], names: &[&str]) -> Option<usize> {
    (0..fields.len()).find(|&i| {
        let wildcard = if matches!(names[i], "day-of-month" | "day-of-week") && fields.len() > 5 { "?" } else { "*" };
        let mut candidate = fields.to_vec();
        candidate[i] = wildcard;
        parser.parse(&candidate.join(" ")).is_ok()
    })
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
        // Classic cron: 0 is Sunday.
        assert_eq!(next("0 9 * * 0", after), shanghai(2026, 11, 22, 9, 0, 0));
    }

    #[test]
    fn last_day_nearest_weekday_and_nth_weekday() {
        let after = shanghai(2026, 11, 21, 0, 0, 0);
        assert_eq!(next("0 30 18 L * ?", after), shanghai(2026, 11, 30, 18, 30, 0));
        // The weekday nearest the 1st of February 2027 (a Monday) is the 1st;
        // nearest 15 November 2026 (a Sunday) would be Monday the 16th.
        assert_eq!(next("0 0 8 1W * ?", after), shanghai(2026, 12, 1, 8, 0, 0));
        assert_eq!(next("0 0 8 15W * ?", shanghai(2026, 11, 1, 0, 0, 0)), shanghai(2026, 11, 16, 8, 0, 0));
        // Last Friday of the month (Quartz 6L).
        assert_eq!(next("0 0 17 ? * 6L", after), shanghai(2026, 11, 27, 17, 0, 0));
    }

    #[test]
    fn the_year_field_bounds_the_schedule() {
        let after = shanghai(2026, 11, 21, 0, 0, 0);
        assert_eq!(next("0 0 0 1 1 ? 2028", after), shanghai(2028, 1, 1, 0, 0, 0));
        assert_eq!(Schedule::parse("0 0 0 1 1 ? 2020").unwrap().next_after(after, chrono_tz::Asia::Shanghai), None);
    }

    #[test]
    fn the_zone_decides_the_wall_clock() {
        // Asia/Shanghai has no daylight saving: 09:00 there is 01:00 UTC all year.
        let utc = Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap();
        assert_eq!(next("0 0 9 * * ?", utc), Utc.with_ymd_and_hms(2026, 7, 1, 1, 0, 0).unwrap());
        let schedule = Schedule::parse("0 0 9 * * ?").unwrap();
        assert_eq!(schedule.next_after(utc, chrono_tz::UTC), Some(Utc.with_ymd_and_hms(2026, 7, 1, 9, 0, 0).unwrap()));
    }

    #[test]
    fn every_second_fires_every_second() {
        let after = shanghai(2026, 11, 21, 10, 0, 0);
        assert_eq!(next("* * * * * ?", after), shanghai(2026, 11, 21, 10, 0, 1));
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
    }
}
