//! The scheduler's and action flows' GraphQL operations, with Zion's input
//! shape (`addScheduledJob(schemaExId, input: {name group description
//! shouldRecover durable triggerConfigs [{triggerType name group cron}]
//! jobType dataMap})`). All are admin-only but `cronPreview`, which any
//! signed-in caller may run: it reads nothing and shows what a schedule
//! would do before it is saved.

use async_graphql::Value;
use async_graphql::dynamic::{Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, TypeRef, ValueAccessor};
use chrono::Utc;
use entity::scheduled_job;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::Schedule;
use super::jobs::{ActionFlowJob, JobType};
use crate::auth::Role;
use crate::error::database;
use crate::flows;
use crate::graphql::ops::{self, Operations};
use crate::hasura::Engine;

pub fn operations() -> Operations {
    Operations {
        types: vec![
            Enum::new("JobType")
                .description("What a scheduled job runs")
                .items(JobType::ALL.map(|kind| {
                    let text = match kind {
                        JobType::ActionFlow => "a saved action flow (dataMap {actionFlowUuid, versionId, inputs})",
                        JobType::SyncFollowers => "a follower sync",
                        JobType::NotifyDigest => "a digest (dataMap may carry `where` and `template`)",
                        JobType::SyncTemplates => "a template-library sync (syncTemplates)",
                    };
                    async_graphql::dynamic::EnumItem::new(kind.as_str()).description(text)
                }))
                .into(),
            InputObject::new("ScheduledJobTriggerInput")
                .description("When a job fires (Quartz trigger)")
                .field(InputValue::new("triggerType", TypeRef::named_nn(TypeRef::STRING)).description("`cron`"))
                .field(InputValue::new("name", TypeRef::named(TypeRef::STRING)).description("the trigger's name (informational)"))
                .field(InputValue::new("group", TypeRef::named(TypeRef::STRING)).description("the trigger's group (informational)"))
                .field(
                    InputValue::new("cron", TypeRef::named_nn(TypeRef::STRING))
                        .description("Quartz (6 or 7 fields, `? L W #`) or classic 5-field cron"),
                )
                .into(),
            InputObject::new("ScheduledJobInput")
                .description("A job to schedule, in Zion's addScheduledJob shape")
                .field(
                    InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)).description("the job's name; (group, name) identifies it"),
                )
                .field(InputValue::new("group", TypeRef::named_nn(TypeRef::STRING)).description("the job's group"))
                .field(InputValue::new("description", TypeRef::named(TypeRef::STRING)).description("what the job is for"))
                .field(
                    InputValue::new("shouldRecover", TypeRef::named(TypeRef::BOOLEAN))
                        .description("run once on start when an occurrence was missed while the server was down"),
                )
                .field(
                    InputValue::new("durable", TypeRef::named(TypeRef::BOOLEAN))
                        .description("keep the job when its schedule has no future occurrence"),
                )
                .field(
                    InputValue::new("triggerConfigs", TypeRef::named_nn_list_nn("ScheduledJobTriggerInput"))
                        .description("exactly one cron trigger"),
                )
                .field(InputValue::new("jobType", TypeRef::named_nn("JobType")).description("what the job runs"))
                .field(InputValue::new("dataMap", TypeRef::named("jsonb")).description("the job's parameters"))
                .into(),
            Object::new("CronPreview")
                .description("What a cron expression would do, as addScheduledJob would read it")
                .field(
                    Field::new("valid", TypeRef::named_nn(TypeRef::BOOLEAN), |ctx| value_of(&ctx, "valid"))
                        .description("whether addScheduledJob would accept the expression (it parses and fires again)"),
                )
                .field(
                    Field::new("error", TypeRef::named(TypeRef::STRING), |ctx| value_of(&ctx, "error"))
                        .description("why not, naming the field at fault and what it expects; null when valid"),
                )
                .field(
                    Field::new("fire_times", TypeRef::named_nn_list_nn("timestamptz"), |ctx| value_of(&ctx, "fire_times"))
                        .description("the next fire times after now, earliest first"),
                )
                .field(
                    Field::new("timezone", TypeRef::named_nn(TypeRef::STRING), |ctx| value_of(&ctx, "timezone"))
                        .description("the time zone the expression was read in"),
                )
                .into(),
            Object::new("ActionFlowVersion")
                .description("A saved version of an action flow")
                .field(
                    Field::new("uuid", TypeRef::named_nn(TypeRef::STRING), |ctx| value_of(&ctx, "uuid")).description("the flow's identity"),
                )
                .field(
                    Field::new("version_id", TypeRef::named_nn(TypeRef::INT), |ctx| value_of(&ctx, "version_id"))
                        .description("the version just saved"),
                )
                .into(),
        ],
        queries: vec![cron_preview()],
        mutations: vec![
            add_scheduled_job(),
            by_group_and_name("pauseScheduledJob", "stops a job from firing until it is resumed", Action::Pause),
            by_group_and_name("resumeScheduledJob", "lets a paused job fire again, from now on", Action::Resume),
            by_group_and_name("deleteScheduledJob", "removes a job and its runs", Action::Delete),
            by_group_and_name("triggerScheduledJob", "runs a job once now (not while it is running)", Action::Trigger),
            save_action_flow(),
            run_action_flow(),
        ],
    }
}

fn value_of<'a>(ctx: &async_graphql::dynamic::ResolverContext<'a>, key: &str) -> FieldFuture<'a> {
    FieldFuture::from_value(ops::parent_field(ctx, key).cloned())
}

fn add_scheduled_job() -> Field {
    Field::new("addScheduledJob", TypeRef::named_nn("scheduled_job"), |ctx| {
        FieldFuture::new(async move {
            ops::require(&ctx, &[Role::Admin])?;
            let services = ops::services(&ctx)?;
            let input = ctx.args.try_get("input")?.object()?;
            let job = job_from_input(&input, services.settings.timezone)?;
            let conflict = OnConflict::columns([scheduled_job::Column::Group, scheduled_job::Column::Name])
                .update_columns([
                    scheduled_job::Column::Description,
                    scheduled_job::Column::Cron,
                    scheduled_job::Column::JobType,
                    scheduled_job::Column::DataMap,
                    scheduled_job::Column::Durable,
                    scheduled_job::Column::ShouldRecover,
                    scheduled_job::Column::Paused,
                    scheduled_job::Column::NextFireAt,
                    scheduled_job::Column::UpdatedAt,
                ])
                .to_owned();
            let (group, name) = (job.group.clone(), job.name.clone());
            scheduled_job::Entity::insert(job.into_active_model())
                .on_conflict(conflict)
                .exec(&services.db)
                .await
                .map_err(database("saving a scheduled job"))?;
            let saved = scheduled_job::Entity::find()
                .filter(scheduled_job::Column::Group.eq(group.as_str()))
                .filter(scheduled_job::Column::Name.eq(name.as_str()))
                .one(&services.db)
                .await
                .map_err(database("reading a saved scheduled job"))?
                .ok_or_else(|| ops::error("not-found", "the job was deleted while it was being saved; add it again"))?;
            tracing::info!(%group, %name, next_fire_at = ?saved.next_fire_at, "job scheduled");
            let engine = ctx.ctx.data::<Engine>()?;
            let row = engine.select_by_pk(&ctx, "scheduled_job", saved.id).await.map_err(|e| e.into_graphql())?;
            Ok(row.map(FieldValue::value))
        })
    })
    .description("Schedules a job (or replaces the job with the same group and name) with Zion's input shape")
    .argument(InputValue::new("schemaExId", TypeRef::named(TypeRef::STRING)).description("Zion's project id; accepted and ignored"))
    .argument(InputValue::new("input", TypeRef::named_nn("ScheduledJobInput")).description("the job"))
}

/// Most fire times one preview lists.
const PREVIEW_MAX: i64 = 100;

fn cron_preview() -> Field {
    Field::new("cronPreview", TypeRef::named_nn("CronPreview"), |ctx| {
        FieldFuture::new(async move {
            ops::require(&ctx, &[Role::Admin, Role::User])?;
            let services = ops::services(&ctx)?;
            let cron = ctx.args.try_get("cron")?.string()?;
            let count = present(ctx.args.get("count")).map(|v| v.i64()).transpose()?.unwrap_or(5);
            if !(1..=PREVIEW_MAX).contains(&count) {
                return Err(ops::error(
                    "validation-failed",
                    format!("count {count} is out of range: ask for 1 to {PREVIEW_MAX} fire times"),
                ));
            }
            let zone = match present(ctx.args.get("timezone")) {
                None => services.settings.timezone,
                Some(v) => v.string()?.parse::<chrono_tz::Tz>().map_err(|_| {
                    ops::error("validation-failed", "timezone is not an IANA time zone: use a name like Asia/Shanghai or America/New_York")
                })?,
            };
            Ok(Some(FieldValue::value(preview(cron, count as usize, zone))))
        })
    })
    .description("The next fire times of a cron expression (Quartz or classic 5-field), or why addScheduledJob would refuse it")
    .argument(InputValue::new("cron", TypeRef::named_nn(TypeRef::STRING)).description("the expression, as a trigger's `cron`"))
    .argument(InputValue::new("count", TypeRef::named(TypeRef::INT)).default_value(5).description("how many fire times to list (1–100)"))
    .argument(InputValue::new("timezone", TypeRef::named(TypeRef::STRING)).description("an IANA time zone; WXNOTIFY_TIMEZONE when absent"))
}

/// The preview's answer: fire times, or the error addScheduledJob would give.
fn preview(cron: &str, count: usize, zone: chrono_tz::Tz) -> Value {
    let (times, error) = match Schedule::parse(cron) {
        Ok(schedule) => {
            let times = schedule.preview(Utc::now(), zone, count);
            let error = times.is_empty().then(|| never_fires(schedule.expression()));
            (times, error)
        }
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let times = times.iter().map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))).collect();
    let field = |name: &str, value: Value| (async_graphql::Name::new(name), value);
    Value::Object(async_graphql::indexmap::IndexMap::from([
        field("valid", Value::Boolean(error.is_none())),
        field("error", error.map_or(Value::Null, Value::String)),
        field("fire_times", Value::List(times)),
        field("timezone", Value::String(zone.name().to_string())),
    ]))
}

/// Why a schedule that parses is refused: it has no fire time left.
pub(super) fn never_fires(expression: &str) -> String {
    format!(
        "cron expression {expression:?} never fires after now (check its year, or a day that does not exist such as 30 February); give a schedule with a future fire time"
    )
}

/// A scheduled job as written to the database.
struct NewJob {
    name: String,
    group: String,
    description: Option<String>,
    cron: String,
    job_type: String,
    data_map: serde_json::Value,
    durable: bool,
    should_recover: bool,
    next_fire_at: Option<chrono::DateTime<Utc>>,
}

impl NewJob {
    fn into_active_model(self) -> scheduled_job::ActiveModel {
        let now = Utc::now();
        scheduled_job::ActiveModel {
            name: Set(self.name),
            group: Set(self.group),
            description: Set(self.description),
            cron: Set(self.cron),
            job_type: Set(self.job_type),
            data_map: Set(self.data_map),
            durable: Set(self.durable),
            should_recover: Set(self.should_recover),
            paused: Set(false),
            next_fire_at: Set(self.next_fire_at),
            last_fire_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
    }
}

fn job_from_input(input: &async_graphql::dynamic::ObjectAccessor<'_>, zone: chrono_tz::Tz) -> async_graphql::Result<NewJob> {
    let text = |name: &str| -> async_graphql::Result<Option<String>> {
        present(input.get(name)).map(|v| v.string().map(str::to_string)).transpose()
    };
    let flag = |name: &str, default: bool| -> async_graphql::Result<bool> {
        Ok(present(input.get(name)).map(|v| v.boolean()).transpose()?.unwrap_or(default))
    };
    let invalid = |message: String| ops::error("validation-failed", message);
    let triggers = input.try_get("triggerConfigs")?.list()?;
    if triggers.len() != 1 {
        return Err(invalid(format!("triggerConfigs must hold exactly one cron trigger, not {}", triggers.len())));
    }
    let trigger = triggers.get(0).ok_or_else(|| invalid("triggerConfigs is empty".into()))?.object()?;
    // The seed's copy of this document wraps "cron" as "cro n"; spaces are not meaningful here.
    let trigger_type: String = trigger.try_get("triggerType")?.string()?.split_whitespace().collect();
    if !trigger_type.eq_ignore_ascii_case("cron") {
        return Err(invalid(format!("triggerType {trigger_type:?} is not supported: use \"cron\"")));
    }
    let cron = trigger.try_get("cron")?.string()?;
    let schedule = Schedule::parse(cron).map_err(|e| invalid(e.to_string()))?;
    let job_type = enum_name(&input.try_get("jobType")?)?;
    let Some(kind) = JobType::parse(&job_type) else {
        return Err(invalid(format!("jobType {job_type} is not one of {}", JobType::names())));
    };
    let data_map = match present(input.get("dataMap")) {
        Some(v) => v.as_value().clone().into_json().map_err(|e| invalid(format!("dataMap: {e}")))?,
        None => serde_json::json!({}),
    };
    if kind == JobType::ActionFlow {
        ActionFlowJob::parse(&data_map).map_err(invalid)?;
    }
    let next_fire_at = schedule.next_after(Utc::now(), zone).ok_or_else(|| invalid(never_fires(schedule.expression())))?;
    Ok(NewJob {
        name: input.try_get("name")?.string()?.to_string(),
        group: input.try_get("group")?.string()?.to_string(),
        description: text("description")?,
        next_fire_at: Some(next_fire_at),
        cron: schedule.expression().to_string(),
        job_type,
        data_map,
        durable: flag("durable", true)?,
        should_recover: flag("shouldRecover", false)?,
    })
}

/// An optional argument given as `null` is the same as one left out.
fn present(value: Option<ValueAccessor<'_>>) -> Option<ValueAccessor<'_>> {
    value.filter(|v| !v.is_null())
}

fn enum_name(value: &ValueAccessor<'_>) -> async_graphql::Result<String> {
    match value.as_value() {
        Value::Enum(name) => Ok(name.to_string()),
        Value::String(s) => Ok(s.clone()),
        other => Err(ops::error("validation-failed", format!("{other} is not a job type"))),
    }
}

#[derive(Clone, Copy)]
enum Action {
    Pause,
    Resume,
    Delete,
    Trigger,
}

fn by_group_and_name(name: &'static str, description: &'static str, action: Action) -> Field {
    Field::new(name, TypeRef::named_nn(TypeRef::BOOLEAN), move |ctx| {
        FieldFuture::new(async move {
            ops::require(&ctx, &[Role::Admin])?;
            let services = ops::services(&ctx)?;
            let group = ctx.args.try_get("group")?.string()?;
            let job = ctx.args.try_get("name")?.string()?;
            let done = match action {
                Action::Pause => super::pause(services, group, job).await.map_err(database("pausing a scheduled job"))?,
                Action::Resume => match super::resume(services, group, job).await.map_err(database("resuming a scheduled job"))? {
                    super::Resumed::Yes => true,
                    super::Resumed::NoSuchJob => false,
                    super::Resumed::NeverFires(cron) => return Err(ops::error("validation-failed", never_fires(&cron))),
                },
                Action::Delete => super::delete(services, group, job).await.map_err(database("deleting a scheduled job"))?,
                Action::Trigger => super::trigger(services, group, job).await.map_err(database("triggering a scheduled job"))?,
            };
            Ok(Some(Value::Boolean(done)))
        })
    })
    .description(format!("{description}; false when no job has that group and name (or, for a trigger, when it is running)"))
    .argument(InputValue::new("group", TypeRef::named_nn(TypeRef::STRING)).description("the job's group"))
    .argument(InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)).description("the job's name"))
}

fn save_action_flow() -> Field {
    Field::new("saveActionFlow", TypeRef::named_nn("ActionFlowVersion"), |ctx| {
        FieldFuture::new(async move {
            ops::require(&ctx, &[Role::Admin])?;
            let services = ops::services(&ctx)?;
            let uuid = present(ctx.args.get("uuid")).map(|v| v.string().map(str::to_string)).transpose()?;
            let name = ctx.args.try_get("name")?.string()?;
            let document = ctx.args.try_get("document")?.string()?;
            let (uuid, version) = flows::save(&services.db, uuid, name, document).await.map_err(flow_error)?;
            let result = async_graphql::indexmap::IndexMap::from([
                (async_graphql::Name::new("uuid"), Value::String(uuid)),
                (async_graphql::Name::new("version_id"), Value::from(version)),
            ]);
            Ok(Some(FieldValue::value(Value::Object(result))))
        })
    })
    .description("Stores a GraphQL document as the next version of an action flow")
    .argument(InputValue::new("uuid", TypeRef::named(TypeRef::STRING)).description("the flow; a new one when absent"))
    .argument(InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)).description("a human name"))
    .argument(InputValue::new("document", TypeRef::named_nn(TypeRef::STRING)).description("the GraphQL operation to run"))
}

fn run_action_flow() -> Field {
    Field::new("runActionFlow", TypeRef::named("jsonb"), |ctx| {
        FieldFuture::new(async move {
            ops::require(&ctx, &[Role::Admin])?;
            let services = ops::services(&ctx)?;
            let uuid = ctx.args.try_get("uuid")?.string()?;
            let version = present(ctx.args.get("version_id")).map(|v| v.i64()).transpose()?.map(|v| v as i32);
            let inputs = match present(ctx.args.get("inputs")) {
                Some(v) => v.as_value().clone().into_json()?,
                None => serde_json::Value::Null,
            };
            let flow = flows::load(&services.db, uuid, version).await.map_err(flow_error)?;
            let schema = services.schema.get().ok_or_else(|| ops::error("unexpected", "the schema is not ready"))?;
            let data = flows::run(schema, &flow, inputs).await.map_err(flow_error)?;
            Ok(Some(Value::from_json(data)?))
        })
    })
    .description("Runs a saved action flow as admin, with `inputs` as its variables, and returns its data")
    .argument(InputValue::new("uuid", TypeRef::named_nn(TypeRef::STRING)).description("the flow"))
    .argument(InputValue::new("version_id", TypeRef::named(TypeRef::INT)).description("the version; the latest when absent"))
    .argument(InputValue::new("inputs", TypeRef::named("jsonb")).description("the document's variables"))
}

fn flow_error(e: flows::FlowError) -> async_graphql::Error {
    crate::error::to_graphql(&e, "an action flow")
}
