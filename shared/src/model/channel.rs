//! Channels: the buses events are published to. Every project has a system channel named
//! `default`; custom channels are created by users.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ProviderType;

/// Name of every project's system channel.
pub const DEFAULT_NAME: &str = "default";

/// The id of `project`'s `default` channel: derived from the project, so that every function
/// agrees on it without coordination.
pub fn default_channel_id(project: &str) -> String {
    let name = format!("switchyard:default-channel:{project}");
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes()).to_string()
}

/// A stored channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// Id (a UUID).
    pub id: String,
    /// The project it belongs to.
    pub project: String,
    /// Name, unique in the project.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// `OFFICIAL` for the default channel, else what the creator chose.
    pub provider_type: ProviderType,
    /// Resource policy, stored and returned as given.
    #[serde(default)]
    pub policy: Option<Value>,
    /// Enterprise project, stored and returned as given.
    #[serde(default)]
    pub enterprise_project_id: Option<String>,
    /// Creation time (ms since the epoch).
    pub created_ms: i64,
    /// Last update time (ms since the epoch).
    pub updated_ms: i64,
    /// How many subscriptions are bound to the channel (a channel in use cannot be deleted).
    #[serde(default)]
    pub subscriptions: u32,
    /// Moves with every change to the channel's subscriptions; routers reload when it does.
    #[serde(default)]
    pub routes_rev: u64,
}

impl Channel {
    /// The `default` channel of `project`, as first materialized at `now_ms`.
    pub fn default_for(project: &str, now_ms: i64) -> Self {
        Self {
            id: default_channel_id(project),
            project: project.to_owned(),
            name: DEFAULT_NAME.to_owned(),
            description: "the project's system channel".to_owned(),
            provider_type: ProviderType::Official,
            policy: None,
            enterprise_project_id: None,
            created_ms: now_ms,
            updated_ms: now_ms,
            subscriptions: 0,
            routes_rev: 0,
        }
    }

    /// Whether this is the system channel.
    pub fn is_default(&self) -> bool {
        self.provider_type == ProviderType::Official && self.name == DEFAULT_NAME
    }
}

/// What a client asks for when creating a channel.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ChannelSpec {
    /// Name (required).
    pub name: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// `CUSTOM` (default) or `INTERNAL`.
    #[serde(default)]
    pub provider_type: Option<String>,
    /// Resource policy.
    #[serde(default)]
    pub policy: Option<Value>,
    /// Enterprise project.
    #[serde(default)]
    pub enterprise_project_id: Option<String>,
}

/// What a client may change on a channel.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ChannelUpdate {
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New resource policy.
    #[serde(default)]
    pub policy: Option<Value>,
    /// New enterprise project.
    #[serde(default)]
    pub enterprise_project_id: Option<String>,
}
