//! Sealed secrets: values a client marks secret (HTTP target header values with
//! `is_value_secret`) are stored encrypted and shown only as a mask.
//!
//! The cipher is XChaCha20-Poly1305 (random 192-bit nonce per value). Its key is derived from the
//! server secret ([`Engine::server_secret`], created on first use and kept in the store) as
//! HMAC-SHA256(server secret, `"switchyard sealed secrets v1"`), so the key itself is never stored.
//! Each value is bound to a context (project, target id and header name) as associated data: a
//! sealed value copied elsewhere does not open. The stored text is `sealed:v1:` followed by the
//! base64 of nonce and ciphertext.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Engine;
use crate::error::Result;

/// Prefix of a sealed value's text.
const PREFIX: &str = "sealed:v1:";
/// Label of the key derivation.
const LABEL: &[u8] = b"switchyard sealed secrets v1";
/// Bytes of a nonce.
const NONCE: usize = 24;

/// Seals and opens secret values with the key derived from the server secret.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

/// Why a sealed value did not open.
#[derive(Debug, thiserror::Error)]
#[error("the sealed value cannot be opened (corrupt, moved, or sealed under another server secret)")]
pub struct OpenError;

impl Sealer {
    /// The sealer of a server secret.
    pub fn new(server_secret: &[u8]) -> Self {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(server_secret) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(LABEL);
        let key = mac.finalize().into_bytes();
        Self { cipher: XChaCha20Poly1305::new(&key) }
    }

    /// Whether `text` is a sealed value.
    pub fn is_sealed(text: &str) -> bool {
        text.starts_with(PREFIX)
    }

    /// Seals `plaintext`, bound to `context`.
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let nonce: [u8; NONCE] = rand::random();
        let payload = Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() };
        let Ok(sealed) = self.cipher.encrypt(XNonce::from_slice(&nonce), payload) else {
            unreachable!("encryption of an in-memory buffer does not fail")
        };
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    /// Opens a value sealed with `context`.
    pub fn open(&self, context: &str, text: &str) -> Result<String, OpenError> {
        let bytes = STANDARD.decode(text.strip_prefix(PREFIX).ok_or(OpenError)?).map_err(|_| OpenError)?;
        if bytes.len() < NONCE {
            return Err(OpenError);
        }
        let (nonce, sealed) = bytes.split_at(NONCE);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: context.as_bytes() })
            .map_err(|_| OpenError)?;
        String::from_utf8(plain).map_err(|_| OpenError)
    }
}

impl Engine {
    /// The sealer keyed by this server's secret (its key is derived once per engine).
    pub async fn sealer(&self) -> Result<Sealer> {
        let sealer = self.sealer_cell().get_or_try_init(|| async { Ok(Sealer::new(&self.server_secret().await?)) });
        sealer.await.cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_context_and_under_their_key() {
        let sealer = Sealer::new(b"server secret");
        let sealed = sealer.seal("p1/t1/x-api-key", "s3cr3t");
        assert!(Sealer::is_sealed(&sealed));
        assert!(!sealed.contains("s3cr3t"));
        assert_ne!(sealed, sealer.seal("p1/t1/x-api-key", "s3cr3t"), "a fresh nonce each time");
        assert_eq!(sealer.open("p1/t1/x-api-key", &sealed).unwrap(), "s3cr3t");
        assert!(sealer.open("p1/t2/x-api-key", &sealed).is_err(), "bound to its context");
        assert!(Sealer::new(b"another secret").open("p1/t1/x-api-key", &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.replace_range(tampered.len() - 4.., "AAAA");
        assert!(sealer.open("p1/t1/x-api-key", &tampered).is_err());
        assert!(sealer.open("p1/t1/x-api-key", "plain").is_err());
        assert!(sealer.open("p1/t1/x-api-key", "sealed:v1:AAAA").is_err(), "too short");
        assert_eq!(format!("{sealer:?}"), "Sealer(***)");
    }
}
