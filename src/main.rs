//! The `wxnotify` command: parses the command line and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wxnotify::auth::{Jwt, Role};
use wxnotify::settings::{Settings, parse_duration};

#[derive(Parser)]
#[command(name = "wxnotify", version, about = "Reach WeChat mini-program users through a service account")]
struct Cli {
    /// Settings file (default: ./wxnotify.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (migrates the database first).
    Serve {
        /// Simulate WeChat in-process with demo followers and mini-program
        /// users (login codes demo-code-1..5); nothing reaches real users.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Check settings, database and WeChat credentials, and say what to fix.
    Doctor,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Mint a bearer token.
    Token {
        #[arg(long, default_value = "admin")]
        role: Role,
        /// The account id, for user tokens.
        #[arg(long)]
        sub: Option<String>,
        /// Lifetime, e.g. 1h, 30m, 7d.
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        ttl: std::time::Duration,
    },
    /// Sync the service account's followers once and link accounts, with a progress bar.
    Sync,
    /// The account's template library.
    Templates {
        #[command(subcommand)]
        action: TemplatesCommand,
    },
    /// Run the WeChat simulator (for tests, benchmarks and demos).
    Sim {
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: std::net::SocketAddr,
        /// Generated followers to seed.
        #[arg(long, default_value_t = 1000)]
        followers: usize,
        /// Delay added to every call, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// A daily limit other than the default, as PATH=N (repeatable), e.g.
        /// /cgi-bin/message/template/send=1000000 for an account with over a
        /// million followers, whose limit WeChat raises.
        #[arg(long = "daily-quota", value_parser = wxnotify::sim::cli::parse_quota)]
        daily_quota: Vec<(String, u64)>,
    },
}

#[derive(Subcommand)]
enum TemplatesCommand {
    /// Read the account's templates from WeChat into wechat_template.
    Sync,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    wxnotify::telemetry::init(settings.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve { demo } => {
            // Keeps the demo simulator alive as long as the server runs.
            let (settings, _simulator) = if demo {
                let (settings, sim) = wxnotify::sim::demo::start(settings).await?;
                (settings, Some(sim))
            } else {
                (settings, None)
            };
            let (ip, text_logs) = (settings.listen.ip(), settings.log_format == wxnotify::settings::LogFormat::Text);
            let app = wxnotify::Application::build(settings).await?;
            // For people reading a terminal; JSON logs carry the address in
            // their "listening" line and must stay one JSON object a line.
            if text_logs {
                // A wildcard bind is reachable on loopback, the address to open here.
                let host = if ip.is_unspecified() { std::net::IpAddr::from([127, 0, 0, 1]) } else { ip };
                eprintln!("console (GraphQL IDE and dashboard / 控制台): http://{}/", std::net::SocketAddr::new(host, app.port()));
            }
            app.run_until(wxnotify::shutdown_signal()).await
        }
        Command::Sim { listen, followers, latency_ms, daily_quota } => {
            let options = wxnotify::sim::cli::SimOptions {
                listen,
                followers,
                latency: std::time::Duration::from_millis(latency_ms),
                daily_quotas: daily_quota,
            };
            wxnotify::sim::cli::run(&settings, options).await
        }
        Command::Sync => wxnotify::linking::cli::run(settings).await,
        Command::Templates { action: TemplatesCommand::Sync } => wxnotify::templates::cli::sync(settings).await,
        Command::Migrate => {
            let db = wxnotify::db::connect(&settings).await?;
            wxnotify::db::migrate(&db).await?;
            eprintln!("database is up to date");
            Ok(())
        }
        Command::Doctor => {
            if wxnotify::doctor::print(&wxnotify::doctor::run(&settings).await) {
                Ok(())
            } else {
                anyhow::bail!("some checks failed; see above")
            }
        }
        Command::Schema => {
            print!("{}", wxnotify::graphql::sdl()?);
            Ok(())
        }
        Command::Token { role, sub, ttl } => {
            if role == Role::User && sub.as_deref().and_then(|s| s.parse::<i64>().ok()).is_none() {
                anyhow::bail!("a user token needs --sub ACCOUNT_ID");
            }
            let db = wxnotify::db::connect(&settings).await?;
            wxnotify::db::migrate(&db).await?;
            let (secret, _) = wxnotify::db::jwt_secret(&db, &settings).await?;
            println!("{}", Jwt::from_settings(&secret, &settings).mint(role, sub.as_deref(), ttl));
            Ok(())
        }
    }
}
