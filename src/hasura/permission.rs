//! Who may touch which rows. Permissions are data, declared with each table
//! when it is registered in the [`Catalog`](super::Catalog) (as Hasura's
//! metadata declares them): for a role and an operation, either every row or
//! the rows whose column holds the caller's account id. What is not
//! declared is refused. The admin role may do everything, as Hasura's
//! admin may; the engine itself names no table.
//!
//! Every generated field asks [`Permissions::filter`] first; the answer is a
//! row filter pushed into the SQL `WHERE`, or a refusal.

use crate::auth::{Caller, Role};

use super::error::EngineError;
use super::ir::BoolExp;
pub use super::meta::{Operation, Rows, TablePermissions};
use super::meta::{Scalar, Table};

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
    pub fn filter(&self, table: &Table, operation: Operation) -> Result<Option<BoolExp>, EngineError> {
        let refuse =
            || EngineError::AccessDenied(format!("role {} may not {} `{}`", role_name(self.caller.role), operation.verb(), table.name));
        if self.caller.role == Role::Admin {
            return Ok(None);
        }
        match table.permissions.rule(self.caller.role, operation) {
            None => Err(refuse()),
            Some(Rows::All) => Ok(None),
            Some(Rows::Own(column)) => {
                let id = self.caller.account_id().ok_or_else(refuse)?;
                Ok(Some(BoolExp::eq(column, Scalar::Bigint, id.into())))
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
