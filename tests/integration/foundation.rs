//! The server starts, migrates, answers health checks and guards its door.

use serde_json::json;
use wxnotify::auth::Role;

use crate::both_databases;
use crate::common::TestDb;
use wxnotify::db::DatabaseKind;

both_databases! {
    async fn the_server_starts_migrates_and_answers_healthz(app) {
        let response = app.get("/healthz").await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body, json!({ "status": "ok", "database": "ok" }));
        // Every table exists and is empty.
        for table in ["account", "point_count", "actok", "notice", "oa_follower", "push_code",
                      "message_template", "delivery", "action_flow", "scheduled_job", "job_run"] {
            assert_eq!(app.count(table).await, 0, "{table}");
        }
    }

    async fn the_console_is_served_on_the_root_and_the_endpoint(app) {
        for path in ["/", "/api/graphql"] {
            let response = app.get(path).await;
            assert_eq!(response.status(), 200, "{path}");
            assert!(response.text().await.unwrap().contains("wxnotify console"), "{path}");
        }
    }

    async fn a_forged_or_expired_token_is_refused(app) {
        let forged = wxnotify::auth::Jwt::new(&wxnotify::settings::Secret::new("not-the-server-secret-not-the-server"))
            .mint(Role::Admin, None, std::time::Duration::from_secs(600));
        let body = app.graphql_with(Some(&forged), "{ __typename }", json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "invalid-jwt", "{body}");
        assert!(body.get("data").is_none());

        let expired = app.token(Role::Admin, None);
        let parts: Vec<&str> = expired.split('.').collect();
        let tampered = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
        let body = app.graphql_with(Some(&tampered), "{ __typename }", json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "invalid-jwt", "{body}");

        let body = app.graphql_with(Some(&app.admin_token()), "{ __typename }", json!({})).await;
        assert_eq!(body["data"]["__typename"], "query_root", "{body}");
    }

    async fn a_token_that_expired_is_refused(app) {
        let short = app.token(Role::Admin, None);
        let body = app.graphql_with(Some(&short), "{ __typename }", json!({})).await;
        assert!(body.get("errors").is_none(), "{body}");
        // Expired beyond the default 60 s of leeway (WXNOTIFY_JWT_LEEWAY).
        let claims = json!({ "role": "admin", "exp": chrono::Utc::now().timestamp() - 120 });
        let key = jsonwebtoken::EncodingKey::from_secret(crate::common::JWT_SECRET.as_bytes());
        let expired = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
        let body = app.graphql_with(Some(&expired), "{ __typename }", json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "invalid-jwt", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("expired"), "{body}");
    }
}

#[tokio::test]
async fn a_second_start_on_the_same_database_migrates_nothing_and_keeps_data() {
    for backend in [DatabaseKind::Sqlite, DatabaseKind::Postgres] {
        let Some(db) = TestDb::new(backend).await else { continue };
        let (state, _, stop, server) = crate::common::start_server(db.url.clone(), &[]).await;
        state.db.execute_unprepared("INSERT INTO wxnotify_meta (key, value) VALUES ('probe', 'kept')").await.unwrap();
        let _ = stop.send(());
        server.await.unwrap();
        let (state, _, stop, server) = crate::common::start_server(db.url.clone(), &[]).await;
        let row = wxnotify::db::sql::Sql::new("SELECT value FROM wxnotify_meta WHERE key = 'probe'")
            .one(&state.db)
            .await
            .unwrap()
            .expect("the row survived the restart");
        assert_eq!(row.try_get::<String>("", "value").unwrap(), "kept");
        let _ = stop.send(());
        server.await.unwrap();
    }
}

use sea_orm::ConnectionTrait;
