//! Integration tests: the real server on port 0, on SQLite and PostgreSQL.

mod common;

mod foundation;
mod hostile;
mod limits;
mod operations;
mod seed_documents;
mod scheduler;
mod simulator;
mod tables;
mod wechat;
mod where_property;
