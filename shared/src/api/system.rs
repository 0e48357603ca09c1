//! Operations outside the resource APIs: health, API versions, token administration and the
//! project's webhook signing secret.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::eg::{Auth, EgError, Path};
use super::extract::{Caller, parse_json};
use crate::engine::Engine;
use crate::engine::auth::Principal;
use crate::model::format_time;

/// `GET /health`: no credential needed.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// `GET /`: the API versions (ListApiVersions).
pub async fn versions(_: Caller<EgError>) -> Json<Value> {
    Json(json!({ "versions": [{
        "id": "v1",
        "links": [{ "href": "/v1/", "rel": "self" }],
        "version": "",
        "status": "CURRENT",
        "updated": "2023-03-31T00:00:00Z",
        "min_version": "",
    }] }))
}

/// Body of a token request.
#[derive(Debug, Default, Deserialize)]
pub struct TokenRequest {
    /// A token to register instead of a random one.
    #[serde(default)]
    pub token: Option<String>,
}

/// `POST /admin/v1/projects/{project_id}/tokens`: the operator issues a project token (shown once).
pub async fn create_token(
    State(engine): State<Engine>,
    caller: Caller<EgError>,
    path: Path,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), EgError> {
    caller.principal.require_operator()?;
    let project = path.get("project_id").to_owned();
    let request: TokenRequest =
        if body.iter().all(u8::is_ascii_whitespace) { TokenRequest::default() } else { parse_json(&body)? };
    let chosen = request.token;
    let issued = engine.issue_token(Principal::Project(project.clone()), chosen.as_deref()).await?;
    let body = json!({ "token": issued.token, "project_id": project, "created_time": format_time(issued.created_ms) });
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /v1/{project_id}/signing-secret`: the secret that signs the project's webhook deliveries
/// (unless a target sets its own).
pub async fn signing_secret(State(engine): State<Engine>, auth: Auth) -> Result<Json<Value>, EgError> {
    let secret = engine.project_signing_secret(&auth.project).await?;
    Ok(Json(json!({ "signing_secret": secret.to_string(), "header_layout": "standard-webhooks" })))
}
