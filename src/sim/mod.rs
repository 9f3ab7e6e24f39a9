//! The WeChat simulator (filled in by the next commit).
