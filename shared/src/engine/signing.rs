//! Webhook signatures in the Standard Webhooks layout: `webhook-id`, `webhook-timestamp` (Unix
//! seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed
//! with a `whsec_`-prefixed base64 secret. The secret is the target's own (`detail.secret`) or
//! else the project's, created on first use.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::json;
use sha2::Sha256;

use super::Engine;
use super::secrets::Sealer;
use crate::error::{Error, Result};
use crate::keys;
use crate::ports::{Cond, Item, StoreError};

/// Prefix of a signing secret's text form.
const PREFIX: &str = "whsec_";
/// Field of the project settings item that holds the secret.
const FIELD: &str = "signing_secret";

/// A webhook signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

impl std::fmt::Display for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{}", STANDARD.encode(&self.key))
    }
}

impl SigningSecret {
    /// A fresh random 32-byte secret.
    pub fn generate() -> Self {
        let key: [u8; 32] = rand::random();
        Self { key: key.to_vec() }
    }

    /// Parses `whsec_<base64>` (24 to 64 bytes of key).
    pub fn parse(text: &str) -> Option<Self> {
        let key = STANDARD.decode(text.strip_prefix(PREFIX)?).ok()?;
        (24..=64).contains(&key.len()).then_some(Self { key })
    }

    /// The `webhook-signature` value for a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// Project secrets already read (they never change once created).
#[derive(Default)]
pub(crate) struct SecretCache {
    projects: Mutex<HashMap<String, SigningSecret>>,
}

impl Engine {
    /// The project's signing secret, created on first use and stored sealed to the project (one
    /// stored before sealing existed is read as is).
    pub async fn project_signing_secret(&self, project: &str) -> Result<SigningSecret> {
        if let Some(s) = self.secrets().projects.lock().get(project) {
            return Ok(s.clone());
        }
        let pk = keys::project(project);
        let sealer = self.sealer().await?;
        let context = format!("{project}:project-signing-secret");
        let secret = loop {
            if let Some(item) = self.store().get(&pk, keys::SETTINGS).await?
                && let Some(text) = item.data.get(FIELD).and_then(|v| v.as_str())
            {
                let corrupt = || Error::internal("stored signing secret is corrupt");
                let plain = if Sealer::is_sealed(text) {
                    sealer.open(&context, text).map_err(|_| corrupt())?
                } else {
                    text.to_owned()
                };
                break SigningSecret::parse(&plain).ok_or_else(corrupt)?;
            }
            let fresh = SigningSecret::generate();
            let sealed = sealer.seal(&context, &fresh.to_string());
            let item = Item::new(pk.clone(), keys::SETTINGS, json!({ FIELD: sealed }));
            match self.store().put(item, Cond::Absent).await {
                Ok(()) => break fresh,
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        self.secrets().projects.lock().insert(project.to_owned(), secret.clone());
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_standard_webhooks_specifies() {
        // The example of the Standard Webhooks specification.
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_round_trip_and_reject_bad_text() {
        let s = SigningSecret::generate();
        assert_eq!(SigningSecret::parse(&s.to_string()), Some(s.clone()));
        assert!(SigningSecret::parse("nope").is_none());
        assert!(SigningSecret::parse("whsec_c2hvcnQ=").is_none(), "too short");
        assert_eq!(format!("{s:?}"), "SigningSecret(***)");
    }
}
