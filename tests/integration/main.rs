//! Integration tests: the real server on port 0, on SQLite and PostgreSQL.

mod common;

mod foundation;
mod linking;
mod seed_documents;
mod simulator;
mod tables;
mod wechat;
