//! Logging: human-readable text by default, JSON lines with
//! `WXNOTIFY_LOG_FORMAT=json`. Verbosity from `RUST_LOG` (default `info`).
//!
//! Logs never carry secrets or tokens: settings print secrets masked, WeChat
//! URLs (which carry the access token) are dropped from errors, and SQL is
//! always bound, never formatted with values. The database drivers' own logs
//! (a line per statement) stay at `warn` even with `RUST_LOG=debug`, unless
//! `RUST_LOG` names `sea_orm` or `sqlx` itself.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Directive;

use crate::settings::LogFormat;

pub fn init(format: LogFormat) {
    let builder = tracing_subscriber::fmt().with_env_filter(filter(std::env::var("RUST_LOG").ok().as_deref())).with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn filter(rust_log: Option<&str>) -> EnvFilter {
    let asked = rust_log.unwrap_or("info");
    let mut filter = EnvFilter::try_new(asked).unwrap_or_else(|e| {
        eprintln!("RUST_LOG={asked:?} is not a log filter ({e}); logging at info");
        EnvFilter::new("info")
    });
    for driver in ["sea_orm", "sqlx"] {
        if !asked.contains(driver) {
            filter = filter.add_directive(format!("{driver}=warn").parse::<Directive>().expect("a valid directive"));
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn statement_logs_stay_quiet_unless_asked_for_by_name() {
        assert!(filter(Some("debug")).to_string().contains("sea_orm=warn"));
        assert!(!filter(Some("debug,sea_orm=debug")).to_string().contains("sea_orm=warn"));
        assert!(filter(None).to_string().contains("sqlx=warn"));
    }
}
