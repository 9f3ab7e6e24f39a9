//! The project's tables as the table engine serves them: each entity
//! registered once, with its column descriptions and its permissions (the
//! way Hasura's metadata declares a table). Adding a table to the GraphQL
//! surface is one entry here; [`crate::hasura`] generates everything else.
//!
//! Permissions for the roles other than admin (admin may do everything):
//! - user: reads its own `account` (`id` = its account id), `point_count`
//!   and `push_code` (`account_account` = its account id); inserts
//!   `point_count` rows for any account (that is how one user tells another
//!   of a message); deletes its own `point_count` rows (marking them read);
//! - anonymous: nothing (it may only log in).

use entity::*;

use crate::auth::Role;
use crate::hasura::Catalog;
use crate::hasura::meta::WriteCheck;
use crate::hasura::permission::{Operation, Rows, TablePermissions};

/// Every table, in the order the schema lists them.
pub fn catalog() -> Catalog {
    let admin_only = TablePermissions::admin_only;
    let user = |permissions: TablePermissions, operation: Operation, rows: Rows| permissions.allow(Role::User, operation, rows);
    Catalog::default()
        .register(account::Entity, account::DOCS, user(admin_only(), Operation::Select, Rows::Own("id")))
        .register(point_count::Entity, point_count::DOCS, {
            let own = || Rows::Own("account_account");
            let p = user(admin_only(), Operation::Select, own());
            let p = user(p, Operation::Insert, Rows::All);
            user(p, Operation::Delete, own())
        })
        .register(actok::Entity, actok::DOCS, admin_only())
        .register(notice::Entity, notice::DOCS, admin_only())
        .register(oa_follower::Entity, oa_follower::DOCS, admin_only())
        .register(push_code::Entity, push_code::DOCS, user(admin_only(), Operation::Select, Rows::Own("account_account")))
        .register(message_template::Entity, message_template::DOCS, admin_only())
        // Saved templates must fit the account's templates, once synced.
        .checking_writes(WriteCheck(|txn, ids| Box::pin(crate::templates::check_written(txn, ids))))
        .register(wechat_template::Entity, wechat_template::DOCS, admin_only())
        .register(delivery::Entity, delivery::DOCS, admin_only())
        .register(action_flow::Entity, action_flow::DOCS, admin_only())
        .register(scheduled_job::Entity, scheduled_job::DOCS, admin_only())
        .register(job_run::Entity, job_run::DOCS, admin_only())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_of_every_table_is_described() {
        for table in catalog().tables() {
            assert!(!table.description.is_empty(), "{} has no comment", table.name);
            for column in &table.columns {
                assert!(!column.description.is_empty(), "{}.{} is not in its DOCS", table.name, column.name);
            }
        }
    }

    #[test]
    fn constraints_carry_postgres_names() {
        let catalog = catalog();
        let names = |t: &str| catalog.table(t).unwrap().uniques.iter().map(|u| u.name.clone()).collect::<Vec<_>>();
        assert!(names("notice").contains(&"notice_account_account_key".to_string()));
        assert!(names("account").contains(&"account_mp_openid_key".to_string()));
        assert!(names("scheduled_job").contains(&"scheduled_job_group_name_key".to_string()), "{:?}", names("scheduled_job"));
        let point_count = catalog.table("point_count").unwrap();
        assert_eq!(point_count.relation("account").unwrap().local, "account_account");
        let account = catalog.table("account").unwrap();
        assert!(account.relation("point_count").is_some() && account.relation("notice").is_some());
    }
}
