//! What every bench prints besides its times: the machine's load average
//! before it starts, and each figure's ratio to a bound or to a baseline
//! measured in the same run, so that figures taken while other work shares
//! the machine can still be compared (see docs/performance.md).
//!
//! Benches include it with `#[path = "support/mod.rs"] mod support;`.

#![allow(dead_code)]

use std::time::Duration;

/// `1m 5m 15m` from `/proc/loadavg`, or `unknown` where there is none.
pub fn load_average() -> String {
    match std::fs::read_to_string("/proc/loadavg") {
        Ok(text) => text.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        Err(_) => "unknown".into(),
    }
}

/// Logical cores the bench may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Prints `load average: 1m 5m 15m (N cores)`; call it first thing.
pub fn print_load_average() {
    println!("load average: {} ({} cores)", load_average(), cores());
}

/// Seconds with two decimals.
pub fn secs(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

/// A time against the least it can take: `X.XX s (Y % of the bound Z.ZZ s)`,
/// where Y = bound / measured (100 % is as fast as it can be).
pub fn of_bound(measured: Duration, bound: Duration) -> String {
    format!("{} ({:.0} % of the bound {})", secs(measured), percent_of_bound(measured, bound), secs(bound))
}

/// bound / measured, in per cent.
pub fn percent_of_bound(measured: Duration, bound: Duration) -> f64 {
    100.0 * bound.as_secs_f64() / measured.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// A time against a baseline timed in the same run: `N.NN× the <name>`,
/// where N = measured / baseline (below 1 is faster than the baseline).
pub fn times_baseline(measured: Duration, baseline: Duration, name: &str) -> String {
    format!("{:.2}× the {name}", measured.as_secs_f64() / baseline.as_secs_f64().max(f64::MIN_POSITIVE))
}

/// How much faster than a baseline: `N.N× faster than the <name> (B.BB s)`.
pub fn faster_than(measured: Duration, baseline: Duration, name: &str) -> String {
    format!("{:.1}× faster than the {name} ({})", baseline.as_secs_f64() / measured.as_secs_f64().max(f64::MIN_POSITIVE), secs(baseline))
}

/// Runs a peer's program (`what` names it in messages) and returns its
/// standard output, or `None` after printing why it could not run or
/// failed: a missing peer costs its figures, not the bench.
pub async fn run_peer(command: &mut tokio::process::Command, what: &str) -> Option<String> {
    let output = command.output().await.map_err(|e| println!("cannot run {what}: {e}")).ok()?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        println!("{what} failed ({}):\n{stdout}{}", output.status, String::from_utf8_lossy(&output.stderr));
        return None;
    }
    Some(stdout)
}

/// The highest `VmHWM` (peak resident set, KiB) of process `pid`, read
/// every 20 ms until the process is gone: `peak` holds it.
pub fn watch_peak_rss(pid: u32) -> (std::sync::Arc<std::sync::atomic::AtomicU64>, tokio::task::JoinHandle<()>) {
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watcher = {
        let peak = peak.clone();
        tokio::spawn(async move {
            while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(kib) =
                    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                {
                    peak.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    (peak, watcher)
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Waits until something listens on 127.0.0.1:`port`; false after `limit`.
pub async fn wait_for_port(port: u16, limit: Duration) -> bool {
    let started = std::time::Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if started.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

/// `text` without its ANSI colour codes (a log read from a pipe).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The databases a scale run covers: both, or the one
/// `WXNOTIFY_BENCH_SCALE_DATABASES=sqlite|postgres` names.
pub fn scale_databases() -> Vec<wxnotify::db::DatabaseKind> {
    use wxnotify::db::DatabaseKind;
    match std::env::var("WXNOTIFY_BENCH_SCALE_DATABASES").as_deref() {
        Ok("postgres") => vec![DatabaseKind::Postgres],
        Ok("sqlite") => vec![DatabaseKind::Sqlite],
        _ => vec![DatabaseKind::Sqlite, DatabaseKind::Postgres],
    }
}
