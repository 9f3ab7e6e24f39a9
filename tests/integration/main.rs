//! Integration tests: the real server on port 0, on SQLite and PostgreSQL.

mod common;

mod foundation;
mod simulator;
mod wechat;
