//! Helpers for the operations beyond tables (everything that is not the
//! generated table surface): each capability module returns its
//! [`Operations`], and resolvers reach [`Services`] and the caller here.

use std::sync::Arc;

use async_graphql::dynamic::{Field, ResolverContext, Type};

use crate::auth::{Caller, Role};
use crate::services::Services;

/// The types and root fields one capability adds to the schema.
#[derive(Default)]
pub struct Operations {
    pub types: Vec<Type>,
    pub queries: Vec<Field>,
    pub mutations: Vec<Field>,
}

/// The server's services; absent only when the schema is built to be printed.
pub fn services<'a>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a Arc<Services>> {
    ctx.ctx.data::<Arc<Services>>()
}

/// Who is calling (anonymous when no token was given).
pub fn caller(ctx: &ResolverContext<'_>) -> Caller {
    Caller::of(ctx.ctx)
}

/// The caller, if its role is one of `roles`; otherwise an `access-denied`
/// error naming the operation.
pub fn require(ctx: &ResolverContext<'_>, roles: &[Role]) -> async_graphql::Result<Caller> {
    let caller = caller(ctx);
    if roles.contains(&caller.role) {
        return Ok(caller);
    }
    let field = ctx.ctx.field();
    Err(crate::error::coded("access-denied", format!("role {:?} may not run `{}`", caller.role, field.name()).to_lowercase()))
}

/// The parent object's value under a key (see [`crate::hasura::resolve::parent_field`]).
pub use crate::hasura::resolve::parent_field;

/// The address a request came from, as the transport puts it into the
/// request's data for the resolvers (logins are limited per address).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress(pub Option<std::net::IpAddr>);

/// The client's address, when the request came over HTTP.
pub fn client_address(ctx: &ResolverContext<'_>) -> Option<std::net::IpAddr> {
    ctx.ctx.data_opt::<ClientAddress>().and_then(|a| a.0)
}

/// An error with a Hasura-style `extensions.code` (see [`crate::error`]).
pub use crate::error::coded as error;
