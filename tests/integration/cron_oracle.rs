//! The cron evaluator against the real thing: every Quartz expression of a
//! corpus (hand-picked edge cases and a seeded random generator) is run
//! through `org.quartz.CronExpression` (Debian's `libquartz2-java`) and
//! every classic one through `croniter`, in several zones from several
//! start instants; validity and the next 10 fire times must agree. A
//! failure lists every disagreement. The deliberate ones (Quartz accepts
//! text by accident; see docs/cron.md) are checked to stay deliberate.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{DateTime, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wxnotify::scheduler::Schedule;

const ZONES: [&str; 3] = ["Asia/Shanghai", "America/New_York", "Europe/Berlin"];
const FIRES: usize = 10;
const GENERATED_QUARTZ: usize = 520;
const GENERATED_CLASSIC: usize = 160;

/// Start instants (UTC): a plain day, month and year ends, the leap day
/// 2028-02-29, and both daylight-saving changes of New York and Berlin.
fn starts() -> Vec<DateTime<Utc>> {
    [
        (2026, 11, 21, 2, 0, 0),
        (2026, 1, 31, 15, 59, 59),
        (2026, 12, 31, 23, 59, 30),
        (2028, 2, 28, 16, 0, 0),
        (2028, 2, 29, 12, 0, 0),
        (2026, 3, 8, 6, 30, 0),   // New York 01:30 EST, half an hour before the gap
        (2026, 11, 1, 5, 10, 0),  // New York 01:10 EDT, inside the overlap's first pass
        (2026, 3, 29, 0, 30, 0),  // Berlin 01:30 CET, before the gap
        (2026, 10, 25, 0, 10, 0), // Berlin 02:10 CEST, inside the overlap's first pass
    ]
    .into_iter()
    .map(|(y, mo, d, h, mi, s)| Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap())
    .collect()
}

/// Edge cases: the examples and each of Quartz's special forms.
const HAND_PICKED: &[&str] = &[
    "0 0/5 14 * * ?",
    "0/15 * * * * ?",
    "0 15 10 L-2 * ?",
    "0 0 12 ? * FRI-MON",
    "0 0 22-2 * * ?",
    "0 0 12 ? * L",
    "* * * * * *",
    "0 0 12 1 * MON",
    "0 0 12 ? * ?",
    "0 0 12 1,15,L * ?",
    "0 0 * ? * * *",
    "0 0 12 * * ?",
    "0 15 10 ? * *",
    "0 15 10 * * ? 2027",
    "0 * 14 * * ?",
    "0 0/5 14,18 * * ?",
    "0 0-5 14 * * ?",
    "0 10,44 14 ? 3 WED",
    "0 15 10 ? * MON-FRI",
    "0 15 10 15 * ?",
    "0 15 10 L * ?",
    "0 15 10 ? * 6L",
    "0 15 10 ? * 6L 2026-2029",
    "0 15 10 ? * 6#3",
    "0 0 12 1/5 * ?",
    "0 11 11 11 11 ?",
    "0 0 12 LW * ?",
    "0 0 12 L-3W * ?",
    "0 0 12 L-30 * ?",
    "0 0 12 L-0 * ?",
    "0 0 12 L-31 * ?",
    "0 0 12 1W * ?",
    "0 0 12 15W * ?",
    "0 0 12 31W * ?",
    "0 0 12 30W 2 ?",
    "0 0 12 29 2 ?",
    "0 0 12 30 2 ?",
    "0 0 12 ? 2 5#5",
    "0 0 12 ? * 7#5",
    "0 0 12 ? * SAT#1",
    "0 0 12 ? * 1L",
    "0 0 12 ? * SUNL",
    "0 0 12 ? * 5#6",
    "0 0 12 ? * 5#0",
    "0 0 12 ? * 0",
    "0 0 12 ? * 8",
    "0 0 12 32 * ?",
    "0 0 12 0 * ?",
    "61 0 12 * * ?",
    "0/61 * * * * ?",
    "0/60 * * * * ?",
    "0 0 */24 * * ?",
    "0 0 */23 * * ?",
    "0 0 12 1/31 * ?",
    "0 0 12 1/32 * ?",
    "0 0 12 1 */12 ?",
    "0 0 12 1 */13 ?",
    "0 0 12 ? * */7",
    "0 0 12 ? * */8",
    "50-10/5 * * * * ?",
    "0 0 22-2/2 * * ?",
    "0 0 12 28-3/2 * ?",
    "0 0 12 1 11-2/2 ?",
    "0 0 12 ? * 6-2/2",
    "0 0 12 ? NOV-FEB *",
    "0 0 12 ? * SAT-SUN",
    "0 0 12 ? * 3-1",
    "0 0 12 ? * mon",
    "0 0 12 ? jan-mar mon",
    "0 0 12 ? * MON-5",
    "0 0 12 ? 3-MAY *",
    "0 0 12 lw * ?",
    "0 0 12 * * ? 2026,2028",
    "0 0 12 1 1 ? */7",
    "0 0 12 1 1 ? */50",
    "0 0 12 1 1 ? */100",
    "0 0 12 * * ? 2030-2026",
    "0 0 12 1 1 ? 2099",
    "0 0 12 1 1 ? 2020",
    "0 0 12 * * ? ?",
    "0 0 12 LW,1 * ?",
    "0 0 12 ? * L,2",
    "0 0 12 ? * 6L,2",
    "0 0 12 ? * 2#1,4#3",
    "0 30 2 * * ?",
    "0 30 1 * * ?",
    "0 0/30 * * * ?",
    "0 0 1-3 * * ?",
    "0 15 0/2 * * ?",
    "0 59 1 * * ?",
    "0 0 2 * * ?",
    "0 30 2 8 3 ?",
    "0 30 2 29 3 ?",
    "0 30 1 1 11 ?",
    "0 30 2 25 10 ?",
    "* * 2 * * ?",
    "0 * 1 * * ?",
    "0 0 0 29 2 ? 2028",
];

/// Classic 5-field edge cases (croniter's oracle).
const CLASSIC_HAND_PICKED: &[&str] = &[
    "0 */1 * * *",
    "*/5 * * * *",
    "5/15 * * * *",
    "0 22-2 * * *",
    "0 12 * * 7",
    "0 12 * * 0",
    "0 12 * * SUN",
    "0 12 1 * MON",
    "0 12 */2 * MON",
    "0 12 1 * */2",
    "0 12 * * MON-FRI",
    "0 12 * * 5-1",
    "0 12 * JAN-MAR *",
    "0 12 * * 8",
    "60 * * * *",
    "0 12 1,15 * 0",
    "0 12 * * 1/2",
    "0 12 1-31/10 * *",
    "0 0-23/7 * * *",
    "0 12 2-40 * *",
    "0 12 * * */3",
    "0 12 1 * 1-7/2",
    "0 12 29 2 *",
    "30 2 * * *",
    "30 1 * * *",
];

/// Expressions Quartz accepts and we refuse on purpose, each because
/// Quartz ignores part of what was written (docs/cron.md).
const DELIBERATE: &[&str] = &[
    "0 0 12 ? * MON/2",     // step after a name: Quartz drops the step
    "0 0 12 ? * MON-FRI/2", // likewise
    "0 0 12 1 JAN/2 ?",
    "0 0 12 1-5W * ?", // W after a range: Quartz drops the W
    "0 0 12 5X * ?",   // trailing characters: Quartz drops them
    "0 0 12 *5 * ?",
    "0 0 12 ? * MONDAY",
    "0 0 12 ? * 8#2", // no such weekday: Quartz never fires
    "0 0 12 ? * 0#2",
    "0 0 12 ? * L-2",   // Quartz reads L and drops -2
    "0 0 12 ? * 3L#2",  // Quartz drops #2
    "0 0 12 ? * 5#3,6", // Quartz keeps only 5#3
    "0 0 12 15W,1 * ?", // Quartz keeps only the first day
    "0 0 12 1W,15W * ?",
    "0 ,1 12 * * ?", // empty list items
    "0 1, 12 * * ?",
    "0 5/0 12 * * ?", // zero or oversized steps in a range
    "0 5-10/100 12 * * ?",
    "0 0 12 * * ? 2026/0",
    "0 0 12 * * ? */200", // Quartz then fires every year
    "0 0 12 * * ? 0",     // years Quartz can never reach
    "0 0 12 * * ? 3000",
    "/5 * * * * ?",            // a step without a start
    "0 0 12 * * ? 2026 extra", // an eighth field: Quartz ignores it
];

/// Classic expressions croniter accepts and we refuse or read otherwise.
const CLASSIC_DELIBERATE: &[&str] = &[
    "0 12 ? * *", // `?`, `L`, `W`, `#` belong to Quartz's form
    "0 12 L * *",
    "0 12 15W * *",
    "0 12 * * 1#2",
];

#[test]
fn quartz_and_croniter_agree_with_our_cron_on_the_whole_corpus() {
    let quartz = quartz_corpus();
    let classic = classic_corpus();
    assert!(quartz.len() >= 500, "the Quartz corpus has {} expressions", quartz.len());
    let mut mismatches = Vec::new();
    let quartz_answers = oracle_answers(&quartz, &run_quartz);
    mismatches.extend(compare(&quartz_answers));
    let classic_answers = oracle_answers(&classic, &run_croniter);
    mismatches.extend(compare(&classic_answers));
    let cases = (quartz.len() + classic.len()) * ZONES.len() * starts().len();
    let hangs: Vec<String> = quartz_answers
        .iter()
        .filter(|(_, answer)| answer.starts_with("HANG"))
        .map(|(case, _)| {
            format!("  {:?} in {} after {}: ours {}", case.expression, case.zone, case.start, readable(&ours(case), case.zone))
        })
        .collect();
    eprintln!(
        "cron corpus: {} Quartz + {} classic expressions, {cases} cases; Quartz never answered {} of them:\n{}",
        quartz.len(),
        classic.len(),
        hangs.len(),
        hangs.join("\n")
    );
    assert!(mismatches.is_empty(), "{} of {cases} cases disagree with the oracle:\n{}", mismatches.len(), mismatches.join("\n"));
}

/// Schedules Quartz's `getTimeAfter` never returns on (it loops; the
/// oracle gives up after its budget). We answer them.
const QUARTZ_HANGS: &[&str] = &["0 0 12 L-30W * ?"];

#[test]
fn the_deliberate_differences_stay_deliberate() {
    let hangs: Vec<String> = QUARTZ_HANGS.iter().map(|s| s.to_string()).collect();
    let answers = run_quartz(&cases(&hangs, &["Asia/Shanghai"], &starts()[..1]));
    for (expression, answer) in hangs.iter().zip(answers) {
        assert!(answer.starts_with("HANG"), "Quartz now answers {expression:?} ({answer}); move it to the corpus");
        let schedule = Schedule::parse(expression).unwrap();
        assert!(!schedule.preview(starts()[0], chrono_tz::Asia::Shanghai, 3).is_empty(), "we should fire {expression:?}");
    }
    let quartz: Vec<String> = DELIBERATE.iter().map(|s| s.to_string()).collect();
    let answers = run_quartz(&cases(&quartz, &["Asia/Shanghai"], &starts()[..1]));
    for (expression, answer) in quartz.iter().zip(answers) {
        assert!(answer.starts_with("OK"), "Quartz now refuses {expression:?} ({answer}); move it to the corpus");
        assert!(Schedule::parse(expression).is_err(), "we accept {expression:?}, which we mean to refuse");
    }
    let classic: Vec<String> = CLASSIC_DELIBERATE.iter().map(|s| s.to_string()).collect();
    let answers = run_croniter(&cases(&classic, &["Asia/Shanghai"], &starts()[..1]));
    for (expression, answer) in classic.iter().zip(answers) {
        assert!(answer.starts_with("OK"), "croniter now refuses {expression:?} ({answer})");
        assert!(Schedule::parse(expression).is_err(), "we accept {expression:?}, which we mean to refuse");
    }
}

struct Case {
    zone: &'static str,
    start: DateTime<Utc>,
    expression: String,
}

fn cases(expressions: &[String], zones: &[&'static str], starts: &[DateTime<Utc>]) -> Vec<Case> {
    let mut all = Vec::new();
    for expression in expressions {
        for zone in zones {
            for start in starts {
                all.push(Case { zone, start: *start, expression: expression.clone() });
            }
        }
    }
    all
}

fn oracle_answers(expressions: &[String], oracle: &dyn Fn(&[Case]) -> Vec<String>) -> Vec<(Case, String)> {
    let all = cases(expressions, &ZONES, &starts());
    let answers = oracle(&all);
    assert_eq!(answers.len(), all.len(), "the oracle answered {} of {} cases", answers.len(), all.len());
    all.into_iter().zip(answers).collect()
}

/// What we answer, in the oracles' format.
fn ours(case: &Case) -> String {
    let schedule = match Schedule::parse(&case.expression) {
        Ok(schedule) => schedule,
        Err(e) => return format!("ERR\t{}", e.problem),
    };
    let zone: chrono_tz::Tz = case.zone.parse().unwrap();
    let times: Vec<String> = schedule.preview(case.start, zone, FIRES).iter().map(|t| t.timestamp().to_string()).collect();
    format!("OK\t{}", times.join(","))
}

/// Every case where we and the oracle disagree. A case Quartz never
/// answers (it loops forever) is listed apart, not compared.
fn compare(answers: &[(Case, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (case, theirs) in answers {
        if theirs.starts_with("HANG") {
            continue;
        }
        let mine = ours(case);
        let agree = match (theirs.split_once('\t'), mine.split_once('\t')) {
            (Some(("OK", a)), Some(("OK", b))) => a == b,
            (Some(("ERR", _)), Some(("ERR", problem))) => problem.contains("field") || problem.contains("fields"),
            _ => false,
        };
        if !agree {
            out.push(format!(
                "  {:?} in {} after {}: oracle {} | ours {}",
                case.expression,
                case.zone,
                case.start,
                readable(theirs, case.zone),
                readable(&mine, case.zone)
            ));
        }
    }
    out
}

/// Fire times as local wall-clock times, for a readable failure.
fn readable(answer: &str, zone: &str) -> String {
    let zone: chrono_tz::Tz = zone.parse().unwrap();
    match answer.split_once('\t') {
        Some(("OK", times)) => {
            let local: Vec<String> = times
                .split(',')
                .filter(|t| !t.is_empty())
                .map(|t| Utc.timestamp_opt(t.parse().unwrap(), 0).unwrap().with_timezone(&zone).format("%F %a %T %Z").to_string())
                .collect();
            format!("fires [{}]", local.join(", "))
        }
        _ => answer.replace('\t', " "),
    }
}

fn feed(mut command: Command, cases: &[Case]) -> Vec<String> {
    let input: String = cases.iter().map(|c| format!("{}\t{}\t{FIRES}\t{}\n", c.zone, c.start.timestamp(), c.expression)).collect();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("starting the oracle {command:?} failed: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "the oracle {command:?} failed: {}", output.status);
    String::from_utf8(output.stdout).unwrap().lines().map(str::to_string).collect()
}

fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle")
}

/// Compiles the Java oracle and runs it once over every case.
fn run_quartz(cases: &[Case]) -> Vec<String> {
    let jar = std::env::var("WXNOTIFY_QUARTZ_JAR").unwrap_or_else(|_| "/usr/share/java/quartz2.jar".into());
    assert!(Path::new(&jar).exists(), "no Quartz jar at {jar}: run `apt-get install -y libquartz2-java` (or set WXNOTIFY_QUARTZ_JAR)");
    let classes = tempfile::tempdir().unwrap();
    let javac = Command::new("javac")
        .args(["-cp", &jar, "-d"])
        .arg(classes.path())
        .arg(oracle_dir().join("QuartzOracle.java"))
        .status()
        .unwrap_or_else(|e| panic!("javac failed to start ({e}): install a JDK (openjdk-17-jdk-headless)"));
    assert!(javac.success(), "compiling tests/oracle/QuartzOracle.java failed");
    let mut java = Command::new("java");
    java.arg("-cp").arg(format!("{}:{jar}", classes.path().display())).arg("QuartzOracle");
    feed(java, cases)
}

fn run_croniter(cases: &[Case]) -> Vec<String> {
    let python = std::env::var("WXNOTIFY_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python).args(["-c", "import croniter"]).status();
    assert!(probe.is_ok_and(|s| s.success()), "{python} cannot import croniter: run `pip install croniter`");
    let mut command = Command::new(python);
    command.arg(oracle_dir().join("croniter_oracle.py"));
    feed(command, cases)
}

fn quartz_corpus() -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(13);
    let mut corpus: Vec<String> = HAND_PICKED.iter().map(|s| s.to_string()).collect();
    let mut seen: BTreeMap<String, ()> = corpus.iter().map(|e| (e.clone(), ())).collect();
    while corpus.len() < HAND_PICKED.len() + GENERATED_QUARTZ {
        let expression = random_quartz(&mut rng);
        if seen.insert(expression.clone(), ()).is_none() {
            corpus.push(expression);
        }
    }
    corpus
}

fn classic_corpus() -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(5);
    let mut corpus: Vec<String> = CLASSIC_HAND_PICKED.iter().map(|s| s.to_string()).collect();
    while corpus.len() < CLASSIC_HAND_PICKED.len() + GENERATED_CLASSIC {
        let expression = random_classic(&mut rng);
        if !corpus.contains(&expression) {
            corpus.push(expression);
        }
    }
    corpus
}

/// A field's shape for the generator.
struct Spec {
    min: u32,
    max: u32,
    max_step: u32,
    names: &'static [&'static str],
    /// Whether a range may run backwards (wrap around).
    wraps: bool,
}

const SECOND: Spec = Spec { min: 0, max: 59, max_step: 59, names: &[], wraps: true };
const HOUR: Spec = Spec { min: 0, max: 23, max_step: 23, names: &[], wraps: true };
const DOM: Spec = Spec { min: 1, max: 31, max_step: 31, names: &[], wraps: true };
const MONTH: Spec = Spec {
    min: 1,
    max: 12,
    max_step: 12,
    names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
    wraps: true,
};
const DOW: Spec = Spec { min: 1, max: 7, max_step: 7, names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], wraps: true };
const YEAR: Spec = Spec { min: 2024, max: 2040, max_step: 5, names: &[], wraps: false };

/// A value, now and then just outside the field (an expression to refuse).
fn value(rng: &mut StdRng, spec: &Spec, bad: bool) -> u32 {
    if bad && rng.random_bool(0.5) {
        spec.max + 1
    } else if bad && spec.min > 0 {
        spec.min - 1
    } else {
        rng.random_range(spec.min..=spec.max)
    }
}

fn name_or_value(rng: &mut StdRng, spec: &Spec, bad: bool) -> String {
    let v = value(rng, spec, bad);
    if !spec.names.is_empty() && !bad && rng.random_bool(0.4) { spec.names[(v - spec.min) as usize].to_string() } else { v.to_string() }
}

fn step(rng: &mut StdRng, spec: &Spec, bad: bool) -> u32 {
    if bad {
        spec.max_step + 1
    } else {
        {
            let cap = if rng.random_bool(0.7) { 15 } else { spec.max_step };
            rng.random_range(1..=spec.max_step.min(cap))
        }
    }
}

/// One list item: `*`, `n`, `a-b` (maybe wrapping), `a/s`, `*/s`, `a-b/s`.
fn item(rng: &mut StdRng, spec: &Spec, bad: bool) -> String {
    match rng.random_range(0..6) {
        0 => "*".into(),
        1 => name_or_value(rng, spec, bad),
        2 => {
            let (a, b) = range(rng, spec);
            if !spec.names.is_empty() && rng.random_bool(0.4) {
                format!("{}-{}", spec.names[(a - spec.min) as usize], spec.names[(b - spec.min) as usize])
            } else {
                format!("{a}-{b}")
            }
        }
        3 => format!("{}/{}", value(rng, spec, false), step(rng, spec, bad)),
        4 => format!("*/{}", step(rng, spec, bad)),
        _ => {
            let (a, b) = range(rng, spec);
            format!("{a}-{b}/{}", step(rng, spec, false)) // Quartz does not check steps in ranges
        }
    }
}

fn named(spec: &Spec, v: u32, rng: &mut StdRng) -> String {
    if !spec.names.is_empty() && rng.random_bool(0.4) { spec.names[(v - spec.min) as usize].to_string() } else { v.to_string() }
}

/// Two distinct bounds; backwards (wrapping) only where the field wraps.
fn range(rng: &mut StdRng, spec: &Spec) -> (u32, u32) {
    loop {
        let (a, b) = (rng.random_range(spec.min..=spec.max), rng.random_range(spec.min..=spec.max));
        if a != b && (spec.wraps || a < b) {
            return (a, b);
        }
    }
}

fn list(rng: &mut StdRng, spec: &Spec, bad_rate: f64) -> String {
    let items = if rng.random_bool(0.25) { rng.random_range(2..=3) } else { 1 };
    let bad = rng.random_bool(bad_rate);
    let mut parts: Vec<String> = (0..items).map(|i| item(rng, spec, bad && i == 0)).collect();
    if items > 1 && parts.iter().any(|p| p == "*") {
        parts.retain(|p| p != "*");
        if parts.is_empty() {
            parts.push(value(rng, spec, false).to_string());
        }
    }
    parts.join(",")
}

/// Times of day near the daylight-saving changes (01:00–03:00) come often.
fn hours(rng: &mut StdRng) -> String {
    match rng.random_range(0..4) {
        0 => rng.random_range(1..=3).to_string(),
        1 => "*".into(),
        _ => list(rng, &HOUR, 0.03),
    }
}

fn day_of_month(rng: &mut StdRng) -> String {
    match rng.random_range(0..12) {
        0 => "L".into(),
        1 => {
            let most = if rng.random_bool(0.1) { 31 } else { 30 };
            format!("L-{}", rng.random_range(0..=most))
        }
        2 => "LW".into(),
        3 => format!("L-{}W", rng.random_range(0..=30)),
        4 => {
            let most = if rng.random_bool(0.1) { 32 } else { 31 };
            format!("{}W", rng.random_range(1..=most))
        }
        5 => "*".into(),
        _ => list(rng, &DOM, 0.04),
    }
}

fn day_of_week(rng: &mut StdRng) -> String {
    match rng.random_range(0..10) {
        0 => "L".into(),
        1 => {
            let day = rng.random_range(1..=7);
            format!("{}L", named(&DOW, day, rng))
        }
        2 => {
            let day = rng.random_range(1..=7);
            let day = named(&DOW, day, rng);
            let most = if rng.random_bool(0.1) { 6 } else { 5 };
            format!("{day}#{}", rng.random_range(1..=most))
        }
        3 => "*".into(),
        _ => list(rng, &DOW, 0.04),
    }
}

fn year(rng: &mut StdRng) -> Option<String> {
    match rng.random_range(0..10) {
        0..=5 => None,
        6 => Some("*".into()),
        7 => Some(rng.random_range(2024..=2040).to_string()),
        8 => {
            let a = rng.random_range(2024..=2035);
            Some(format!("{a}-{}", a + rng.random_range(0..=6)))
        }
        _ => Some(list(rng, &YEAR, 0.0)),
    }
}

fn random_quartz(rng: &mut StdRng) -> String {
    let seconds = if rng.random_bool(0.5) { "0".to_string() } else { list(rng, &SECOND, 0.03) };
    let minutes = if rng.random_bool(0.3) { "0".to_string() } else { list(rng, &SECOND, 0.03) };
    let (dom, dow) = match rng.random_range(0..40) {
        0 => (day_of_month(rng), day_of_week(rng)), // neither is `?`: refused
        1 => ("?".to_string(), "?".to_string()),    // both are: refused
        2..=21 => (day_of_month(rng), "?".to_string()),
        _ => ("?".to_string(), day_of_week(rng)),
    };
    let month = if rng.random_bool(0.5) { "*".to_string() } else { list(rng, &MONTH, 0.03) };
    let mut fields = vec![seconds, minutes, hours(rng), dom, month, dow];
    fields.extend(year(rng));
    fields.join(" ")
}

fn random_classic(rng: &mut StdRng) -> String {
    const MINUTE: Spec = Spec { min: 0, max: 59, max_step: 59, names: &[], wraps: false };
    const CLASSIC_HOUR: Spec = Spec { min: 0, max: 23, max_step: 23, names: &[], wraps: false };
    const CLASSIC_DOM: Spec = Spec { min: 1, max: 31, max_step: 31, names: &[], wraps: false };
    const CLASSIC_MONTH: Spec = Spec { wraps: false, ..MONTH };
    const CLASSIC_DOW: Spec = Spec { min: 0, max: 6, max_step: 6, names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], wraps: false };
    let maybe = |rng: &mut StdRng, spec: &Spec, star: f64| if rng.random_bool(star) { "*".to_string() } else { list(rng, spec, 0.03) };
    let minute = if rng.random_bool(0.4) { rng.random_range(0..60).to_string() } else { list(rng, &MINUTE, 0.03) };
    let hour = if rng.random_bool(0.3) { rng.random_range(1..=3).to_string() } else { maybe(rng, &CLASSIC_HOUR, 0.3) };
    let dom = maybe(rng, &CLASSIC_DOM, 0.6);
    let month = maybe(rng, &CLASSIC_MONTH, 0.6);
    let dow = maybe(rng, &CLASSIC_DOW, 0.6);
    [minute, hour, dom, month, dow].join(" ")
}
