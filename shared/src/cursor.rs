//! Watch cursors: opaque, versioned, URL-safe and tamper-evident tokens naming a position in one
//! change-log stream.
//!
//! Layout (before base64url without padding): version byte `1`, the sequence number (8 bytes, big
//! endian), the time of the position in ms (8 bytes), the stream name, then the first 16 bytes of
//! HMAC-SHA256 over all that, keyed with the server secret. Changing any byte, or forging one
//! without the secret, fails the check.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const MAC_BYTES: usize = 16;
const FIXED: usize = 1 + 8 + 8;

/// A position in a stream: after entry `seq`, as of `time_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The stream (its log partition).
    pub stream: String,
    /// The last entry the holder has seen (0: before the first).
    pub seq: u64,
    /// When that entry was written, or when the position was handed out if later.
    pub time_ms: i64,
}

/// Why a token is not a cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Not a cursor at all (bad encoding, unknown version, too short).
    #[error("is not a cursor")]
    Malformed,
    /// Well formed, but not issued by this service or altered since.
    #[error("was altered or not issued by this service")]
    Forged,
}

fn mac(key: &[u8], payload: &[u8]) -> [u8; MAC_BYTES] {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { unreachable!("HMAC takes keys of any length") };
    mac.update(payload);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; MAC_BYTES];
    out.copy_from_slice(&full[..MAC_BYTES]);
    out
}

impl Cursor {
    /// The token for this cursor.
    pub fn encode(&self, key: &[u8]) -> String {
        let mut bytes = Vec::with_capacity(FIXED + self.stream.len() + MAC_BYTES);
        bytes.push(VERSION);
        bytes.extend_from_slice(&self.seq.to_be_bytes());
        bytes.extend_from_slice(&self.time_ms.to_be_bytes());
        bytes.extend_from_slice(self.stream.as_bytes());
        let tag = mac(key, &bytes);
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The cursor a token stands for, if this service issued it unchanged.
    pub fn decode(token: &str, key: &[u8]) -> Result<Self, CursorError> {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| CursorError::Malformed)?;
        if bytes.len() < FIXED + MAC_BYTES || bytes[0] != VERSION {
            return Err(CursorError::Malformed);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - MAC_BYTES);
        let expected = mac(key, payload);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_slice(), tag)) {
            return Err(CursorError::Forged);
        }
        let seq = u64::from_be_bytes(payload[1..9].try_into().map_err(|_| CursorError::Malformed)?);
        let time_ms = i64::from_be_bytes(payload[9..17].try_into().map_err(|_| CursorError::Malformed)?);
        let stream = std::str::from_utf8(&payload[FIXED..]).map_err(|_| CursorError::Malformed)?.to_owned();
        Ok(Self { stream, seq, time_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn cursors_round_trip_and_are_url_safe() {
        let c = Cursor { stream: "log#cmdb#0#host".into(), seq: 42, time_ms: 1_700_000_000_123 };
        let token = c.encode(KEY);
        assert!(token.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'), "{token}");
        assert_eq!(Cursor::decode(&token, KEY), Ok(c));
    }

    #[test]
    fn altered_or_foreign_cursors_are_refused() {
        let c = Cursor { stream: "log#cmdb#0#host".into(), seq: 42, time_ms: 7 };
        let token = c.encode(KEY);
        assert_eq!(Cursor::decode(&token, b"another key"), Err(CursorError::Forged));
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[8] ^= 1; // the sequence number
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode(&bytes), KEY), Err(CursorError::Forged));
        for bad in ["", "not a cursor!", "AAAA", &URL_SAFE_NO_PAD.encode([2u8; 40])] {
            assert_eq!(Cursor::decode(bad, KEY), Err(CursorError::Malformed), "{bad}");
        }
    }
}
