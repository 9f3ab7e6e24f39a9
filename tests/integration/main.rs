//! Integration tests: the real server on port 0, on SQLite and PostgreSQL.

mod browser;
mod common;

mod aggregate_plans;
mod auth;
mod channels;
mod console;
mod cron_oracle;
mod cron_schedules;
mod errors;
mod exactly_once;
mod foundation;
mod hostile;
mod json_rows;
mod limits;
mod linking;
mod login_map_index;
mod notify;
mod operations;
mod query_plans;
mod roles;
mod scheduler;
mod seed_documents;
mod simulator;
mod subscriptions;
mod tables;
mod templates;
mod wechat;
mod wechat_crypto;
mod where_property;
