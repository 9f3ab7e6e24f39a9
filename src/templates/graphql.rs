//! `syncTemplates` (admin): the account's template library, read from WeChat.

use async_graphql::Value;
use async_graphql::dynamic::{Field, FieldFuture, FieldValue, Object, TypeRef};

use crate::auth::Role;
use crate::graphql::ops::{self, Operations};
use crate::hasura::resolve::scalar_field;

const SYNC_RESULT: &str = "SyncTemplatesResult";

pub fn operations() -> Operations {
    Operations { types: vec![sync_result().into()], queries: Vec::new(), mutations: vec![sync_templates()] }
}

fn sync_result() -> Object {
    let fields: [(&str, TypeRef, &str); 5] = [
        ("listed", TypeRef::named_nn(TypeRef::INT), "templates WeChat listed"),
        ("added", TypeRef::named_nn(TypeRef::INT), "new in wechat_template"),
        ("updated", TypeRef::named_nn(TypeRef::INT), "changed (title, content), or back after being removed"),
        ("removed", TypeRef::named_nn(TypeRef::INT), "gone from WeChat's list: marked removed_at, not deleted"),
        ("skipped", TypeRef::named_nn_list_nn(TypeRef::STRING), "lists that could not be read, and why"),
    ];
    fields.into_iter().fold(Object::new(SYNC_RESULT).description("What a template sync found."), |object, (name, ty, text)| {
        object.field(scalar_field(name, ty).description(text))
    })
}

fn sync_templates() -> Field {
    Field::new("syncTemplates", TypeRef::named_nn(SYNC_RESULT), |ctx| {
        FieldFuture::new(async move {
            ops::require(&ctx, &[Role::Admin])?;
            let services = ops::services(&ctx)?.clone();
            let report = super::sync(&services).await.map_err(|e| crate::error::to_graphql(&e, "syncing templates"))?;
            let value = Value::from_json(serde_json::to_value(report)?)?;
            Ok(Some(FieldValue::value(value)))
        })
    })
    .description(
        "Reads the account's templates from WeChat (template messages and subscription messages) into wechat_template, \
         so messages are checked against them before sending. Admin only.",
    )
}
