//! Channels (spec 5.2.1–5.2.5).

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde_json::{Value, json};

use super::{Auth, EgError, EgJson, Path, list_body, list_query};
use crate::api::extract::Body;
use crate::api::extract::Params;
use crate::engine::Engine;
use crate::engine::channels::ChannelFilter;
use crate::error::Error;
use crate::model::channel::{Channel, ChannelSpec, ChannelUpdate};
use crate::model::{ProviderType, format_time};

/// A channel as the API shows it (ChannelInfo, with the stored policy).
pub fn info(c: Channel) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "provider_type": c.provider_type.as_str(),
        "policy": c.policy,
        "enterprise_project_id": c.enterprise_project_id,
        "created_time": format_time(c.created_ms),
        "updated_time": format_time(c.updated_ms),
    })
}

/// CreateChannel.
pub async fn create(
    State(engine): State<Engine>,
    auth: Auth,
    Body(spec, _): EgJson<ChannelSpec>,
) -> Result<Json<Value>, EgError> {
    Ok(Json(info(engine.create_channel(&auth.project, spec).await?)))
}

/// ListChannels.
pub async fn list(State(engine): State<Engine>, auth: Auth, params: Params) -> Result<Json<Value>, EgError> {
    let q = list_query(&params)?;
    let provider_type = match params.get("provider_type").filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => {
            Some(ProviderType::parse(p).ok_or_else(|| Error::invalid("provider_type", "must be OFFICIAL or CUSTOM"))?)
        }
    };
    let filter =
        ChannelFilter { provider_type, enterprise_project_id: params.get("enterprise_project_id").map(str::to_owned) };
    Ok(Json(list_body(engine.list_channels(&auth.project, &filter, &q).await?, info)))
}

/// ShowDetailOfChannel.
pub async fn show(State(engine): State<Engine>, auth: Auth, path: Path) -> Result<Json<Value>, EgError> {
    let (channel, _) = engine.channel(&auth.project, path.get("channel_id")).await?;
    Ok(Json(info(channel)))
}

/// UpdateChannel.
pub async fn update(
    State(engine): State<Engine>,
    auth: Auth,
    path: Path,
    Body(update, _): EgJson<ChannelUpdate>,
) -> Result<Json<Value>, EgError> {
    Ok(Json(info(engine.update_channel(&auth.project, path.get("channel_id"), update).await?)))
}

/// DeleteChannel.
pub async fn delete(State(engine): State<Engine>, auth: Auth, path: Path) -> Result<StatusCode, EgError> {
    engine.delete_channel(&auth.project, path.get("channel_id")).await?;
    Ok(StatusCode::NO_CONTENT)
}
