//! Credentials. A token is a random secret shown once at creation; only its SHA-256 is stored
//! (tokens are 256-bit random values, so a fast hash is enough). A project token acts only inside
//! its project; the operator token acts in every project and may issue project tokens.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::Engine;
use crate::error::{Error, Result};
use crate::keys;
use crate::model::validate;
use crate::ports::{Cond, Item, StoreError};

/// How long a resolved token is trusted without reading the store again.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// Prefix of every token, so that secret scanners recognise them.
const TOKEN_PREFIX: &str = "sy_";
/// Sort key of the marker saying the operator token was set up.
const OPERATOR_MARKER: &str = "operator";

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    /// The operator: every project, and token administration.
    Operator,
    /// A project's token: that project only.
    Project(String),
}

impl Principal {
    /// Whether the principal may act in `project`.
    pub fn may_act_in(&self, project: &str) -> bool {
        match self {
            Principal::Operator => true,
            Principal::Project(p) => p == project,
        }
    }

    /// Fails unless the principal may act in `project`.
    pub fn authorize(&self, project: &str) -> Result<()> {
        if self.may_act_in(project) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("this token may not act in project {project}")))
        }
    }

    /// Fails unless the principal is the operator.
    pub fn require_operator(&self) -> Result<()> {
        match self {
            Principal::Operator => Ok(()),
            Principal::Project(_) => Err(Error::Forbidden("only the operator token may do this".into())),
        }
    }
}

/// A newly issued token: the secret is only ever shown here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    /// The secret to present as `X-Auth-Token` or `Authorization: Bearer`.
    pub token: String,
    /// Whom it acts for.
    pub principal: Principal,
    /// When it was issued (ms).
    pub created_ms: i64,
}

/// Resolved tokens, by hash.
#[derive(Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<String, (Principal, Instant)>>,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random token.
fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl Engine {
    /// Resolves a presented token to its principal.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        if token.is_empty() {
            return Err(Error::Unauthorized("no token: send X-Auth-Token or Authorization: Bearer".into()));
        }
        let digest = hash(token);
        if let Some((principal, at)) = self.tokens().entries.lock().get(&digest).cloned()
            && at.elapsed() < CACHE_TTL
        {
            return Ok(principal);
        }
        let item = self.store().get(&keys::token(&digest), keys::TOKEN).await?;
        let Some(item) = item else {
            return Err(Error::Unauthorized("the token is not valid".into()));
        };
        let principal: Principal = item.decode::<StoredToken>()?.principal;
        self.tokens().entries.lock().insert(digest, (principal.clone(), Instant::now()));
        Ok(principal)
    }

    /// Issues a new token for `principal` (a random one, or `chosen` when given).
    pub async fn issue_token(&self, principal: Principal, chosen: Option<&str>) -> Result<IssuedToken> {
        if let Principal::Project(project) = &principal {
            validate::project_id(project)?;
        }
        let token = chosen.map_or_else(generate, str::to_owned);
        if token.len() < 16 {
            return Err(Error::invalid("token", "must be at least 16 characters"));
        }
        let created_ms = self.now_ms();
        let stored = StoredToken { principal: principal.clone(), created_ms };
        let item = Item::new(keys::token(&hash(&token)), keys::TOKEN, serde_json::to_value(&stored)?);
        self.store().put(item, Cond::Any).await?;
        Ok(IssuedToken { token, principal, created_ms })
    }

    /// Sets up the operator token: with `chosen`, that token (again, if it already is); without,
    /// a new random token the first time only. Returns the token when a new one was issued.
    pub async fn ensure_operator_token(&self, chosen: Option<&str>) -> Result<Option<IssuedToken>> {
        let marker = self.store().get(keys::META, OPERATOR_MARKER).await?;
        if chosen.is_none() && marker.is_some() {
            return Ok(None);
        }
        let issued = self.issue_token(Principal::Operator, chosen).await?;
        let item = Item::new(keys::META, OPERATOR_MARKER, json!({ "created_ms": issued.created_ms }));
        match self.store().put(item, Cond::Any).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Some(issued))
    }
}

#[derive(Serialize, Deserialize)]
struct StoredToken {
    principal: Principal,
    created_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with("sy_") && a.len() == 3 + 43);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), a);
    }

    #[test]
    fn project_tokens_act_only_in_their_project() {
        let p = Principal::Project("p1".into());
        assert!(p.authorize("p1").is_ok());
        assert!(matches!(p.authorize("p2"), Err(Error::Forbidden(_))));
        assert!(p.require_operator().is_err());
        assert!(Principal::Operator.authorize("anything").is_ok());
    }
}
