//! The domain: what Switchyard stores and routes, with the rules that make a value valid. No I/O.

pub mod channel;
pub mod cmdb;
pub mod event;
pub mod subscription;
pub mod validate;

use serde::{Deserialize, Serialize};

/// Who provides a channel, source or target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProviderType {
    /// Provided by the system (the `default` channel).
    Official,
    /// Created by the user.
    Custom,
    /// Provided by a partner.
    Partner,
    /// Internal channel (accepted at creation, as the event grid API allows).
    Internal,
}

impl ProviderType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::Official => "OFFICIAL",
            ProviderType::Custom => "CUSTOM",
            ProviderType::Partner => "PARTNER",
            ProviderType::Internal => "INTERNAL",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "OFFICIAL" => ProviderType::Official,
            "CUSTOM" => ProviderType::Custom,
            "PARTNER" => ProviderType::Partner,
            "INTERNAL" => ProviderType::Internal,
            _ => return None,
        })
    }
}

/// A new random identifier in the UUID form the event grid API uses.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Formats a time (milliseconds since the epoch) as the event grid API shows it:
/// `2021-12-09 09:00:00`, UTC.
pub fn format_time(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

/// Formats a time (milliseconds since the epoch) as RFC 3339, UTC.
pub fn format_rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_as_the_api_shows_them() {
        assert_eq!(format_time(1_639_040_400_000), "2021-12-09 09:00:00");
        assert_eq!(format_rfc3339(1_639_040_400_123), "2021-12-09T09:00:00.123Z");
    }
}
