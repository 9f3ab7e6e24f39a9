//! Who may touch which rows (contract §7). Every generated field asks
//! [`Permissions::filter`] first; the answer is a row filter pushed into the
//! SQL `WHERE`, or a refusal.
//!
//! - admin: everything;
//! - user: reads its own `account` (`id = sub`), `point_count` and
//!   `push_code` (`account_account = sub`); inserts `point_count` rows (for
//!   any account: that is how one user tells another of a message); deletes
//!   its own `point_count` rows (marking them read);
//! - anonymous: nothing here (it may only log in).

use crate::auth::{Caller, Role};

use super::error::EngineError;
use super::ir::BoolExp;
use super::meta::Scalar;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Select,
    Insert,
    Update,
    Delete,
}

impl Operation {
    fn verb(self) -> &'static str {
        match self {
            Operation::Select => "read",
            Operation::Insert => "insert into",
            Operation::Update => "update",
            Operation::Delete => "delete from",
        }
    }
}

/// A caller's permissions, asked table by table.
#[derive(Clone, Debug)]
pub struct Permissions {
    caller: Caller,
}

impl Permissions {
    pub fn new(caller: Caller) -> Self {
        Permissions { caller }
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The row filter for `operation` on `table`: `None` means every row.
    pub fn filter(&self, table: &str, operation: Operation) -> Result<Option<BoolExp>, EngineError> {
        let refuse = || EngineError::AccessDenied(format!("role {} may not {} `{table}`", role_name(self.caller.role), operation.verb()));
        match self.caller.role {
            Role::Admin => Ok(None),
            Role::Anonymous => Err(refuse()),
            Role::User => {
                let own = |column: &str| {
                    let id = self.caller.account_id().ok_or_else(refuse)?;
                    Ok(Some(BoolExp::eq(column, Scalar::Bigint, id.into())))
                };
                match (table, operation) {
                    ("account", Operation::Select) => own("id"),
                    ("point_count" | "push_code", Operation::Select) => own("account_account"),
                    ("point_count", Operation::Delete) => own("account_account"),
                    ("point_count", Operation::Insert) => Ok(None),
                    _ => Err(refuse()),
                }
            }
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::User => "user",
        Role::Anonymous => "anonymous",
    }
}
