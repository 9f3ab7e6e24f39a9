//! Schema migrations for wxnotify, one per file, applied in order at start-up
//! (`wxnotify serve` and `wxnotify migrate`).
//!
//! Unique indexes carry the names Hasura documents use in `on_conflict`
//! (`<table>_<columns>_key`); they must match the entities in `entity/`.

pub use sea_orm_migration::prelude::*;

mod columns;
mod m20261121_000001_create_account;
mod m20261121_000002_create_point_count;
mod m20261121_000003_create_actok;
mod m20261121_000004_create_notice;
mod m20261121_000005_create_oa_follower;
mod m20261121_000006_create_push_code;
mod m20261121_000007_create_message_template;
mod m20261121_000008_create_delivery;
mod m20261121_000009_create_action_flow;
mod m20261121_000010_create_scheduled_job;
mod m20261121_000011_create_job_run;
mod m20261121_000012_create_wxnotify_meta;
mod m20261121_100001_create_follower_sync_stage;
mod m20261121_100002_create_callback_event;
mod m20261121_100003_create_bind_scene;
mod m20261121_200001_push_code_unique_code;
mod m20261121_200002_delivery_status_index;
mod m20261121_300001_callback_event_received_at_index;
mod m20261201_000001_declared_indexes;
mod m20261201_000002_delivery_lease;
mod m20261201_000003_push_code_origin;
mod m20261201_000004_create_wechat_template;
mod m20261201_000005_point_count_by_type;
pub mod m20261201_000006_actok_notify;
mod m20261201_000007_account_map_unionid_index;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_account::Migration),
            Box::new(m20261121_000002_create_point_count::Migration),
            Box::new(m20261121_000003_create_actok::Migration),
            Box::new(m20261121_000004_create_notice::Migration),
            Box::new(m20261121_000005_create_oa_follower::Migration),
            Box::new(m20261121_000006_create_push_code::Migration),
            Box::new(m20261121_000007_create_message_template::Migration),
            Box::new(m20261121_000008_create_delivery::Migration),
            Box::new(m20261121_000009_create_action_flow::Migration),
            Box::new(m20261121_000010_create_scheduled_job::Migration),
            Box::new(m20261121_000011_create_job_run::Migration),
            Box::new(m20261121_000012_create_wxnotify_meta::Migration),
            Box::new(m20261121_100001_create_follower_sync_stage::Migration),
            Box::new(m20261121_100002_create_callback_event::Migration),
            Box::new(m20261121_100003_create_bind_scene::Migration),
            Box::new(m20261121_200001_push_code_unique_code::Migration),
            Box::new(m20261121_200002_delivery_status_index::Migration),
            Box::new(m20261121_300001_callback_event_received_at_index::Migration),
            Box::new(m20261201_000001_declared_indexes::Migration),
            Box::new(m20261201_000002_delivery_lease::Migration),
            Box::new(m20261201_000003_push_code_origin::Migration),
            Box::new(m20261201_000004_create_wechat_template::Migration),
            Box::new(m20261201_000005_point_count_by_type::Migration),
            Box::new(m20261201_000006_actok_notify::Migration),
            Box::new(m20261201_000007_account_map_unionid_index::Migration),
        ]
    }
}
