//! Subscriptions (spec 5.1.1–5.1.6, 5.1.11); their targets are in [`super::targets`].

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{message, status_and_code};
use super::{Auth, EgError, EgJson, Path, list_body, list_query};
use crate::api::extract::Body;
use crate::api::extract::Params;
use crate::engine::Engine;
use crate::engine::subscription_parts::Operation;
use crate::engine::subscriptions::SubscriptionFilter;
use crate::error::Error;
use crate::model::format_time;
use crate::model::subscription::{
    SourceSpec, Subscription, SubscriptionSource, SubscriptionSpec, SubscriptionTarget, SubscriptionUpdate,
};

/// A subscription source as the API shows it (SubscriptionSourceInfo).
pub fn source_info(s: SubscriptionSource) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "provider_type": s.provider_type.as_str(),
        "detail": s.detail,
        "filter": s.filter,
        "created_time": format_time(s.created_ms),
        "updated_time": format_time(s.updated_ms),
    })
}

/// A subscription target as the API shows it (SubscriptionTargetInfo, secrets masked).
pub fn target_info(mut t: SubscriptionTarget) -> Value {
    t.redact();
    json!({
        "id": t.id,
        "name": t.name,
        "provider_type": t.provider_type.as_str(),
        "connection_id": t.connection_id,
        "detail": t.detail,
        "kafka_detail": t.kafka_detail,
        "smn_detail": t.smn_detail,
        "eg_detail": t.eg_detail,
        "apigw_detail": t.apigw_detail,
        "rocketmq_detail": t.rocketmq_detail,
        "retry_times": t.retry_times,
        "transform": t.transform,
        "dead_letter_queue": t.dead_letter_queue,
        "created_time": format_time(t.created_ms),
        "updated_time": format_time(t.updated_ms),
    })
}

/// A subscription as the API shows it (secrets masked).
pub fn info(s: Subscription) -> Value {
    let s = s.redacted();
    let mut body = json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "type": "EVENT",
        "status": s.status.as_str(),
        "channel_id": s.channel_id,
        "used": [],
        "sources": s.sources.into_iter().map(source_info).collect::<Vec<_>>(),
        "targets": s.targets.into_iter().map(target_info).collect::<Vec<_>>(),
        "created_time": format_time(s.created_ms),
        "updated_time": format_time(s.updated_ms),
    });
    if let Some(reason) = s.status_reason {
        body["status_reason"] = json!(reason);
    }
    body
}

/// The subscription with its channel's name.
async fn with_channel_name(engine: &Engine, s: Subscription) -> Value {
    let name = engine.channel(&s.project, &s.channel_id).await.map(|(c, _)| c.name).unwrap_or_default();
    let mut body = info(s);
    body["channel_name"] = json!(name);
    body
}

/// CreateSubscription.
pub async fn create(
    State(engine): State<Engine>,
    auth: Auth,
    Body(spec, _): EgJson<SubscriptionSpec>,
) -> Result<Json<Value>, EgError> {
    let s = engine.create_subscription(&auth.principal, &auth.project, spec).await?;
    Ok(Json(with_channel_name(&engine, s).await))
}

/// ListSubscriptions.
pub async fn list(State(engine): State<Engine>, auth: Auth, params: Params) -> Result<Json<Value>, EgError> {
    let q = list_query(&params)?;
    let filter = SubscriptionFilter {
        channel_id: params.get("channel_id").filter(|c| !c.is_empty()).map(str::to_owned),
        connection_id: params.get("connection_id").filter(|c| !c.is_empty()).map(str::to_owned),
    };
    let listing = engine.list_subscriptions(&auth.project, &filter, &q).await?;
    let mut names = std::collections::HashMap::new();
    let mut items = Vec::with_capacity(listing.items.len());
    for s in listing.items {
        if !names.contains_key(&s.channel_id) {
            let name = engine.channel(&s.project, &s.channel_id).await.map(|(c, _)| c.name).unwrap_or_default();
            names.insert(s.channel_id.clone(), name);
        }
        let name = names.get(&s.channel_id).cloned().unwrap_or_default();
        let mut body = info(s);
        body["channel_name"] = json!(name);
        items.push(body);
    }
    Ok(Json(list_body(crate::engine::list::Listing { total: listing.total, items }, |v| v)))
}

/// ShowDetailOfSubscription.
pub async fn show(State(engine): State<Engine>, auth: Auth, path: Path) -> Result<Json<Value>, EgError> {
    let (s, _) = engine.subscription(&auth.project, path.get("subscription_id")).await?;
    Ok(Json(with_channel_name(&engine, s).await))
}

/// UpdateSubscription (full replace of the lists given).
pub async fn update(
    State(engine): State<Engine>,
    auth: Auth,
    path: Path,
    Body(update, _): EgJson<SubscriptionUpdate>,
) -> Result<Json<Value>, EgError> {
    let s = engine.update_subscription(&auth.principal, &auth.project, path.get("subscription_id"), update).await?;
    Ok(Json(with_channel_name(&engine, s).await))
}

/// DeleteSubscription.
pub async fn delete(State(engine): State<Engine>, auth: Auth, path: Path) -> Result<StatusCode, EgError> {
    engine.delete_subscription(&auth.project, path.get("subscription_id")).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// UpdateSubscriptionSource (full replace of one source).
pub async fn update_source(
    State(engine): State<Engine>,
    auth: Auth,
    path: Path,
    Body(spec, _): EgJson<SourceSpec>,
) -> Result<Json<Value>, EgError> {
    let (subscription, source) = (path.get("subscription_id"), path.get("source_id"));
    Ok(Json(source_info(engine.update_subscription_source(&auth.project, subscription, source, spec).await?)))
}

/// The ExecuteSubscriptionOperation body.
#[derive(Debug, Default, Deserialize)]
pub struct OperationBody {
    /// Subscriptions to operate on (1 to 10).
    #[serde(default)]
    pub subscription_ids: Option<Vec<String>>,
    /// `ENABLE` or `DISABLE`.
    #[serde(default)]
    pub operation: Option<String>,
}

/// ExecuteSubscriptionOperation: per-subscription results and `failed_count`; status 200 even
/// when some fail.
pub async fn operate(
    State(engine): State<Engine>,
    auth: Auth,
    Body(body, _): EgJson<OperationBody>,
) -> Result<Json<Value>, EgError> {
    let operation = body.operation.ok_or_else(|| Error::invalid("operation", "is required"))?;
    let op = Operation::parse("operation", &operation)?;
    let ids = body.subscription_ids.ok_or_else(|| Error::invalid("subscription_ids", "is required"))?;
    let outcomes = engine.operate_subscriptions(&auth.project, &ids, op).await?;
    let failed_count = outcomes.iter().filter(|(_, e)| e.is_some()).count();
    let events: Vec<Value> = outcomes
        .into_iter()
        .map(|(id, error)| match error {
            None => json!({ "subscription_id": id }),
            Some(e) => json!({ "subscription_id": id, "error_code": status_and_code(&e).1, "error_msg": message(&e) }),
        })
        .collect();
    Ok(Json(json!({ "failed_count": failed_count, "events": events })))
}
