//! Message templates: what WeChat accepts in a template's keywords.
//!
//! [`rules`] holds WeChat's value rules per keyword type (`thing`,
//! `character_string`, `time`, ...) as pure functions: checking a value,
//! cutting one that is only too long, cutting the way WeChat cuts legacy
//! templates, and reading a template's `{{key.DATA}}` placeholders. The
//! client calls for the template library, quotas and moderation are in
//! [`crate::wechat::templates`]; `docs/wechat.md` ("Template rules and the
//! template library") says where each rule comes from.

pub mod rules;
