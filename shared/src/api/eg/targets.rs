//! Subscription targets (spec 5.1.7–5.1.10) and the target catalog (5.5.1).

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde_json::Value;

use super::subscriptions::target_info;
use super::{Auth, EgError, EgJson, Path, list_body};
use crate::api::extract::{Body, Params};
use crate::engine::Engine;
use crate::engine::catalog::CATALOG;
use crate::engine::list::{ListQuery, page};
use crate::error::Error;
use crate::model::subscription::TargetSpec;

/// CreateSubscriptionTarget.
pub async fn create(
    State(engine): State<Engine>,
    auth: Auth,
    path: Path,
    Body(spec, _): EgJson<TargetSpec>,
) -> Result<Json<Value>, EgError> {
    let subscription = path.get("subscription_id");
    Ok(Json(target_info(engine.create_subscription_target(&auth.principal, &auth.project, subscription, spec).await?)))
}

/// UpdateSubscriptionTarget (full replace of one target; the body's `id` is ignored).
pub async fn update(
    State(engine): State<Engine>,
    auth: Auth,
    path: Path,
    Body(spec, _): EgJson<TargetSpec>,
) -> Result<Json<Value>, EgError> {
    let (subscription, target) = (path.get("subscription_id"), path.get("target_id"));
    let updated = engine.update_subscription_target(&auth.principal, &auth.project, subscription, target, spec).await?;
    Ok(Json(target_info(updated)))
}

/// ShowDetailOfSubscriptionTarget.
pub async fn show(State(engine): State<Engine>, auth: Auth, path: Path) -> Result<Json<Value>, EgError> {
    let (subscription, target) = (path.get("subscription_id"), path.get("target_id"));
    Ok(Json(target_info(engine.subscription_target(&auth.project, subscription, target).await?)))
}

/// DeleteSubscriptionTarget (a subscription keeps at least one target).
pub async fn delete(State(engine): State<Engine>, auth: Auth, path: Path) -> Result<StatusCode, EgError> {
    let (subscription, target) = (path.get("subscription_id"), path.get("target_id"));
    engine.delete_subscription_target(&auth.project, subscription, target).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// ListEventTarget: the target kinds, filtered by `fuzzy_label` and `support_types`
/// (`SUBSCRIPTION`, `FLOW`; repeated or comma-separated), paged by `offset` and `limit`.
pub async fn catalog(_auth: Auth, params: Params) -> Result<Json<Value>, EgError> {
    let q = ListQuery::parse(params.get("offset"), params.get("limit"), params.get("sort"), None, None)?;
    let modes: Vec<&str> =
        params.get("support_types").unwrap_or_default().split(',').filter(|m| !m.is_empty()).collect();
    if let Some(bad) = modes.iter().find(|m| !matches!(**m, "SUBSCRIPTION" | "FLOW")) {
        return Err(Error::invalid("support_types", format!("must be SUBSCRIPTION or FLOW, not {bad}")).into());
    }
    let label = params.get("fuzzy_label").unwrap_or_default().to_lowercase();
    let kinds: Vec<_> =
        CATALOG.iter().filter(|k| k.supports(&modes) && k.label.to_lowercase().contains(&label)).collect();
    Ok(Json(list_body(page(kinds, &q), |k| k.info())))
}
