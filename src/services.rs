//! What the operations beyond tables reach: the database, the settings, the
//! WeChat client and the token signer. One instance per server, shared by
//! every request (the GraphQL schema carries it as data).

use std::sync::{Arc, OnceLock};

use sea_orm::DatabaseConnection;

use crate::auth::Jwt;
use crate::settings::Settings;
use crate::wechat::WechatClient;

pub struct Services {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub wechat: WechatClient,
    pub jwt: Jwt,
    /// The server's own schema, set once it is built: action flows run
    /// their stored documents against it.
    pub schema: OnceLock<async_graphql::dynamic::Schema>,
}
