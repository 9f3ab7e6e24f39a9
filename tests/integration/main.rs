//! Integration tests: the real server on port 0, on SQLite and PostgreSQL.

mod common;

mod channels;
mod cron_oracle;
mod cron_schedules;
mod errors;
mod exactly_once;
mod foundation;
mod hostile;
mod limits;
mod linking;
mod notify;
mod operations;
mod roles;
mod scheduler;
mod seed_documents;
mod simulator;
mod tables;
mod wechat;
mod wechat_crypto;
mod where_property;
