//! Action flows: stored, versioned GraphQL operations (Zion's action flows),
//! run as admin against the server's own schema with `inputs` as variables.
//! `runActionFlow` and ACTION_FLOW scheduled jobs run them.

use async_graphql::dynamic::Schema;
use entity::action_flow;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use crate::auth::Caller;

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("the document is not valid GraphQL: {0}")]
    InvalidDocument(String),
    #[error("no action flow {uuid}{}: save it first with saveActionFlow", version.map(|v| format!(" version {v}")).unwrap_or_default())]
    NotFound { uuid: String, version: Option<i32> },
    #[error("`inputs` must be a JSON object of variables")]
    InvalidInputs,
    #[error("the action flow failed: {0}")]
    Failed(String),
    #[error("the server's schema is not ready")]
    NoSchema,
    #[error("the database failed; the server log has the details")]
    Database(#[from] sea_orm::DbErr),
}

impl crate::error::CodedError for FlowError {
    fn code(&self) -> &'static str {
        match self {
            FlowError::Database(_) | FlowError::NoSchema => "unexpected",
            FlowError::NotFound { .. } => "not-found",
            _ => "validation-failed",
        }
    }

    fn unexpected_cause(&self) -> Option<String> {
        match self {
            FlowError::Database(e) => Some(e.to_string()),
            FlowError::NoSchema => Some("the schema was not set on the services".into()),
            _ => None,
        }
    }
}

/// Stores `document` as the next version of flow `uuid` (a new uuid when
/// none is given) and returns (uuid, version).
pub async fn save(db: &DatabaseConnection, uuid: Option<String>, name: &str, document: &str) -> Result<(String, i32), FlowError> {
    async_graphql::parser::parse_query(document).map_err(|e| FlowError::InvalidDocument(e.to_string()))?;
    let uuid = uuid.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // Two saves racing for one version number: the unique key refuses the
    // loser, which takes the next number.
    let mut last_error = None;
    for _ in 0..3 {
        let version = latest(db, &uuid).await?.map(|f| f.version_id + 1).unwrap_or(1);
        let row = action_flow::ActiveModel {
            uuid: Set(uuid.clone()),
            version_id: Set(version),
            name: Set(name.to_string()),
            document: Set(document.to_string()),
            ..Default::default()
        };
        match row.insert(db).await {
            Ok(_) => return Ok((uuid, version)),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.map(FlowError::Database).unwrap_or(FlowError::NoSchema))
}

async fn latest(db: &DatabaseConnection, uuid: &str) -> Result<Option<action_flow::Model>, sea_orm::DbErr> {
    action_flow::Entity::find().filter(action_flow::Column::Uuid.eq(uuid)).order_by_desc(action_flow::Column::VersionId).one(db).await
}

/// The given version of a flow, or its latest.
pub async fn load(db: &DatabaseConnection, uuid: &str, version: Option<i32>) -> Result<action_flow::Model, FlowError> {
    let found = match version {
        Some(v) => {
            action_flow::Entity::find()
                .filter(action_flow::Column::Uuid.eq(uuid))
                .filter(action_flow::Column::VersionId.eq(v))
                .one(db)
                .await?
        }
        None => latest(db, uuid).await?,
    };
    found.ok_or_else(|| FlowError::NotFound { uuid: uuid.to_string(), version })
}

/// Runs a flow as admin; its `data` on success, its errors joined otherwise.
pub async fn run(schema: &Schema, flow: &action_flow::Model, inputs: serde_json::Value) -> Result<serde_json::Value, FlowError> {
    let variables = match inputs {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        object @ serde_json::Value::Object(_) => object,
        _ => return Err(FlowError::InvalidInputs),
    };
    let request =
        async_graphql::Request::new(flow.document.clone()).variables(async_graphql::Variables::from_json(variables)).data(Caller::ADMIN);
    let response = schema.execute(request).await;
    if !response.errors.is_empty() {
        let messages: Vec<String> = response.errors.iter().map(|e| e.message.clone()).collect();
        return Err(FlowError::Failed(messages.join("; ")));
    }
    response.data.into_json().map_err(|e| FlowError::Failed(e.to_string()))
}
