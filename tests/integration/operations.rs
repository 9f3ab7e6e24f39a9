//! Running it: `/metrics`, `wxnotify doctor`.

use serde_json::json;
use wxnotify::doctor::{self, Verdict};
use wxnotify::settings::Settings;
use wxnotify::sim::{SimConfig, Simulator};

use crate::both_databases;
use crate::common::JWT_SECRET;

both_databases! {
    async fn metrics_count_requests_and_statements(app) {
        app.data("query listAccounts { account { id } }", json!({})).await;
        let response = app.get("/metrics").await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(text.contains(r#"wxnotify_graphql_requests_total{operation="listAccounts",outcome="ok"}"#), "{text}");
        assert!(text.contains("wxnotify_sql_statements_total"), "{text}");
        assert!(text.contains("wxnotify_graphql_request_duration_seconds"), "{text}");
        assert!(!text.contains(crate::common::JWT_SECRET));
    }

    async fn doctor_checks_the_database_and_both_apps(app) {
        let sim = Simulator::start(SimConfig::default()).await.unwrap();
        let (base, oa, mp) = (sim.base_url(), sim.oa_appid(), sim.mp_appid());
        let settings = |oa_secret: &str| {
            Settings::with_overrides([
                ("DATABASE_URL", app.test_db.url.as_str()), ("JWT_SECRET", JWT_SECRET), ("WECHAT_API_BASE", base.as_str()),
                ("OA_APPID", oa.as_str()), ("OA_SECRET", oa_secret), ("MP_APPID", mp.as_str()), ("MP_SECRET", "sim-mp-secret"),
            ])
            .unwrap()
        };
        // A wrong secret shows while no valid token is cached (once one is,
        // doctor reuses it and spends no quota).
        let checks = doctor::run(&settings("wrong-secret")).await;
        let verdict = |name: &str| &checks.iter().find(|c| c.name == name).unwrap().verdict;
        assert!(matches!(verdict("service account"), Verdict::Fail(t) if t.contains("WXNOTIFY_OA_SECRET")), "{checks:?}");
        assert!(!doctor::print(&checks));

        let checks = doctor::run(&settings("sim-oa-secret")).await;
        let verdict = |name: &str| &checks.iter().find(|c| c.name == name).unwrap().verdict;
        for name in ["database", "migrations", "jwt secret", "service account", "mini-program"] {
            assert!(matches!(verdict(name), Verdict::Ok(_)), "{name}: {checks:?}");
        }
        assert!(matches!(verdict("callback"), Verdict::Warn(t) if t.contains("WXNOTIFY_OA_TOKEN")), "{checks:?}");
        assert!(doctor::print(&checks));
    }
}

#[tokio::test]
async fn doctor_says_when_the_database_cannot_be_opened() {
    let settings = Settings::with_overrides([
        ("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"),
        ("JWT_SECRET", JWT_SECRET),
    ])
    .unwrap();
    let checks = doctor::run(&settings).await;
    assert_eq!(checks.len(), 1);
    assert!(matches!(&checks[0].verdict, Verdict::Fail(t) if t.contains("WXNOTIFY_DATABASE_URL")), "{checks:?}");
}
