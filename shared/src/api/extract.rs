//! Extractors shared by the dialects. Each is generic over the dialect's error type, so that a
//! rejection (no token, malformed JSON, …) reaches the client in that dialect's envelope.

use std::collections::HashMap;
use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::response::IntoResponse;
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::engine::Engine;
use crate::engine::auth::Principal;
use crate::error::Error;
use crate::model::validate;

/// A dialect's error type: built from an engine error, rendered as a response.
pub trait DialectError: From<Error> + IntoResponse + Send + 'static {}
impl<T: From<Error> + IntoResponse + Send + 'static> DialectError for T {}

/// The token a request presents: `X-Auth-Token`, `Authorization: Bearer …`, or the
/// `bk_app_secret` (or `access_token`) of a BlueKing `X-Bkapi-Authorization` JSON header.
pub fn presented_token(parts: &Parts) -> String {
    token_of_headers(&parts.headers)
}

/// The token carried by request headers (empty when none).
pub fn token_of_headers(headers: &http::HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(t) = header("x-auth-token") {
        return t.to_owned();
    }
    if let Some(t) =
        header("authorization").and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
    {
        return t.trim().to_owned();
    }
    header("x-bkapi-authorization")
        .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
        .and_then(|v| ["bk_app_secret", "access_token"].iter().find_map(|k| v.get(*k)?.as_str().map(str::to_owned)))
        .unwrap_or_default()
}

/// The path's parameters by name.
pub struct PathParams<E>(pub HashMap<String, String>, pub PhantomData<E>);

impl<E> PathParams<E> {
    /// A parameter the route always has.
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }
}

impl<E: DialectError> FromRequestParts<Engine> for PathParams<E> {
    type Rejection = E;

    async fn from_request_parts(parts: &mut Parts, engine: &Engine) -> Result<Self, E> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, engine)
            .await
            .map_err(|e| E::from(Error::invalid("path", e.body_text())))?;
        Ok(Self(params, PhantomData))
    }
}

/// A caller with a valid credential.
pub struct Caller<E> {
    /// Who is calling.
    pub principal: Principal,
    _dialect: PhantomData<E>,
}

impl<E: DialectError> FromRequestParts<Engine> for Caller<E> {
    type Rejection = E;

    async fn from_request_parts(parts: &mut Parts, engine: &Engine) -> Result<Self, E> {
        let principal = engine.authenticate(&presented_token(parts)).await?;
        Ok(Self { principal, _dialect: PhantomData })
    }
}

/// A caller allowed to act in the project named by the path's `project_id`.
pub struct ProjectAuth<E> {
    /// The project.
    pub project: String,
    /// Who is calling.
    pub principal: Principal,
    _dialect: PhantomData<E>,
}

impl<E: DialectError> FromRequestParts<Engine> for ProjectAuth<E> {
    type Rejection = E;

    async fn from_request_parts(parts: &mut Parts, engine: &Engine) -> Result<Self, E> {
        let Caller { principal, .. } = Caller::<E>::from_request_parts(parts, engine).await?;
        let params = PathParams::<E>::from_request_parts(parts, engine).await?;
        let project = params.get("project_id").to_owned();
        validate::project_id(&project)?;
        principal.authorize(&project)?;
        Ok(Self { project, principal, _dialect: PhantomData })
    }
}

/// The query string's parameters by name (the last value of a repeated one wins).
pub struct Params(pub HashMap<String, String>);

impl Params {
    /// A parameter, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(Self(url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()))
    }
}

/// A JSON request body; errors name the offending field.
pub struct Body<T, E>(pub T, pub PhantomData<E>);

impl<T: DeserializeOwned, E: DialectError> FromRequest<Engine> for Body<T, E> {
    type Rejection = E;

    async fn from_request(req: Request, engine: &Engine) -> Result<Self, E> {
        let bytes = Bytes::from_request(req, engine).await.map_err(|e| E::from(body_error(&e)))?;
        parse_json(&bytes).map(|v| Self(v, PhantomData)).map_err(E::from)
    }
}

/// Parses a JSON body; a type error names the field's path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid("body", "a JSON body is required"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let text = inner.to_string();
        let text = text.rsplit_once(" at line ").map_or(text.as_str(), |(m, _)| m).to_owned();
        match inner.classify() {
            serde_json::error::Category::Data if path != "." => Error::invalid(path, text),
            serde_json::error::Category::Data => Error::invalid("body", text),
            _ => Error::invalid("body", format!("is not valid JSON: {inner}")),
        }
    })
}

fn body_error(e: &BytesRejection) -> Error {
    if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
        Error::invalid(
            "body",
            format!(
                "is too large (at most {} bytes, {} for PutEvents)",
                validate::MAX_BODY_BYTES,
                validate::MAX_PUT_EVENTS_BYTES
            ),
        )
    } else {
        Error::invalid("body", e.body_text())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Spec {
        name: Option<String>,
        targets: Option<Vec<Target>>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Target {
        retry_times: Option<u32>,
    }

    fn err(body: &str) -> String {
        parse_json::<Spec>(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn json_errors_name_the_field() {
        assert!(err("{\"name\": 5}").starts_with("name: invalid type: integer `5`, expected a string"));
        assert!(err("{\"targets\": [{}, {\"retry_times\": -1}]}").starts_with("targets[1].retry_times: invalid value"));
        assert!(err("{\"name\": ").starts_with("body: is not valid JSON"));
        assert_eq!(err(""), "body: a JSON body is required");
        assert!(err("5").starts_with("body: invalid type: integer `5`"));
    }
}
