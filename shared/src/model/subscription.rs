//! Subscriptions: one source (with its filter) on one channel, routed to one or more targets,
//! each with its transform and retry policy.
//!
//! Status lifecycle:
//! - `CREATED`: a new subscription; it already receives events.
//! - `ENABLED`: after an `ENABLE` operation; receives events.
//! - `DISABLED`: after a `DISABLE` operation; receives nothing. Events published while a
//!   subscription is not receiving are never delivered to it, not even after it is enabled again
//!   (no backlog): an enable records the instant from which events count.
//! - `ERROR`: set by the system when a delivery finds a target permanently unusable (its
//!   forwarding channel was deleted, its forwarding grant no longer holds, its queue does not
//!   exist, a sealed header cannot be opened); receives nothing until the target is fixed and the
//!   subscription is enabled again. The reason is kept in `status_reason`.
//! - `FROZEN`: reserved for a frozen tenant; Switchyard never sets it (there is no billing or
//!   account freeze to cause it), and `ENABLE` refuses to lift it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ProviderType;
use crate::engine::auth::Principal;

/// Where a subscription stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SubscriptionStatus {
    /// Newly created; receives events.
    Created,
    /// Enabled; receives events.
    Enabled,
    /// Disabled by the user; receives nothing.
    Disabled,
    /// Frozen by the system (the tenant is frozen); receives nothing.
    Frozen,
    /// In error (a target became unusable); receives nothing.
    Error,
}

impl SubscriptionStatus {
    /// Whether events are routed to the subscription.
    pub fn receives_events(self) -> bool {
        matches!(self, Self::Created | Self::Enabled)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Enabled => "ENABLED",
            Self::Disabled => "DISABLED",
            Self::Frozen => "FROZEN",
            Self::Error => "ERROR",
        }
    }
}

/// How a target's payload is made from the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TransformKind {
    /// The event as it is.
    Original,
    /// A constant payload.
    Constant,
    /// A template filled from variables taken from the event.
    Variable,
}

/// A target's transform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transform {
    /// Which kind.
    #[serde(rename = "type")]
    pub kind: TransformKind,
    /// For `CONSTANT` the payload; for `VARIABLE` the variable definitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// For `VARIABLE` the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// The stored source of a subscription.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionSource {
    /// Id (client-chosen or generated).
    pub id: String,
    /// The event source's name; a CUSTOM source matches events whose `source` equals it.
    pub name: String,
    /// `CUSTOM` or `OFFICIAL`.
    pub provider_type: ProviderType,
    /// Source parameters, stored as given.
    pub detail: Value,
    /// The filter, stored as given (compiled by the router).
    pub filter: Value,
    /// Creation time (ms).
    pub created_ms: i64,
    /// Last update time (ms).
    pub updated_ms: i64,
}

/// The stored target of a subscription.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionTarget {
    /// Id (client-chosen or generated).
    pub id: String,
    /// The target kind's name (`WEBHOOK`, …).
    pub name: String,
    /// `CUSTOM` or `OFFICIAL`.
    pub provider_type: ProviderType,
    /// Target connection.
    #[serde(default)]
    pub connection_id: Option<String>,
    /// Generic parameters (`url` for webhooks).
    pub detail: Value,
    /// Kafka parameters, stored as given.
    #[serde(default)]
    pub kafka_detail: Option<Value>,
    /// Notification-service parameters, stored as given.
    #[serde(default)]
    pub smn_detail: Option<Value>,
    /// Channel-forwarding parameters.
    #[serde(default)]
    pub eg_detail: Option<Value>,
    /// HTTP target parameters.
    #[serde(default)]
    pub apigw_detail: Option<Value>,
    /// RocketMQ parameters, stored as given.
    #[serde(default)]
    pub rocketmq_detail: Option<Value>,
    /// Retries after the first attempt.
    pub retry_times: u32,
    /// The transform.
    pub transform: Transform,
    /// Dead-letter parameters.
    #[serde(default)]
    pub dead_letter_queue: Option<Value>,
    /// Who wrote the target (forwarding to another project is checked against it when an event
    /// is forwarded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_by: Option<Principal>,
    /// Creation time (ms).
    pub created_ms: i64,
    /// Last update time (ms).
    pub updated_ms: i64,
}

/// A stored subscription.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// Id (a UUID).
    pub id: String,
    /// The project it belongs to.
    pub project: String,
    /// Name, unique in the project.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The channel it listens on.
    pub channel_id: String,
    /// Status.
    pub status: SubscriptionStatus,
    /// Why the status is `ERROR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Events logged before this instant (ms) are not delivered: the last time the subscription
    /// was enabled after not receiving.
    #[serde(default)]
    pub resumed_ms: i64,
    /// Exactly one source.
    pub sources: Vec<SubscriptionSource>,
    /// One or more targets.
    pub targets: Vec<SubscriptionTarget>,
    /// Creation time (ms).
    pub created_ms: i64,
    /// Last update time (ms).
    pub updated_ms: i64,
}

impl Subscription {
    /// The target with this id.
    pub fn target(&self, id: &str) -> Option<&SubscriptionTarget> {
        self.targets.iter().find(|t| t.id == id)
    }

    /// The source with this id.
    pub fn source(&self, id: &str) -> Option<&SubscriptionSource> {
        self.sources.iter().find(|s| s.id == id)
    }
}

/// A source as a client sends it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SourceSpec {
    /// Client-chosen id.
    #[serde(default)]
    pub id: Option<String>,
    /// Event source name (required).
    #[serde(default)]
    pub name: Option<String>,
    /// `CUSTOM` or `OFFICIAL` (required).
    #[serde(default)]
    pub provider_type: Option<String>,
    /// Parameters.
    #[serde(default)]
    pub detail: Option<Value>,
    /// Filter (required).
    #[serde(default)]
    pub filter: Option<Value>,
}

/// A transform as a client sends it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TransformSpec {
    /// `ORIGINAL`, `CONSTANT` or `VARIABLE` (required).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Constant payload or variable definitions.
    #[serde(default)]
    pub value: Option<String>,
    /// Template.
    #[serde(default)]
    pub template: Option<String>,
}

/// A target as a client sends it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TargetSpec {
    /// Client-chosen id.
    #[serde(default)]
    pub id: Option<String>,
    /// Target kind name (required).
    #[serde(default)]
    pub name: Option<String>,
    /// `CUSTOM` or `OFFICIAL` (required).
    #[serde(default)]
    pub provider_type: Option<String>,
    /// Target connection.
    #[serde(default)]
    pub connection_id: Option<String>,
    /// Generic parameters.
    #[serde(default)]
    pub detail: Option<Value>,
    /// Kafka parameters.
    #[serde(default)]
    pub kafka_detail: Option<Value>,
    /// Notification-service parameters.
    #[serde(default)]
    pub smn_detail: Option<Value>,
    /// Channel-forwarding parameters.
    #[serde(default)]
    pub eg_detail: Option<Value>,
    /// HTTP target parameters.
    #[serde(default)]
    pub apigw_detail: Option<Value>,
    /// RocketMQ parameters.
    #[serde(default)]
    pub rocketmq_detail: Option<Value>,
    /// Retries after the first attempt.
    #[serde(default)]
    pub retry_times: Option<u32>,
    /// Transform (required).
    #[serde(default)]
    pub transform: Option<TransformSpec>,
    /// Dead-letter parameters.
    #[serde(default)]
    pub dead_letter_queue: Option<Value>,
}

/// A subscription as a client creates it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SubscriptionSpec {
    /// Name (required).
    #[serde(default)]
    pub name: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Channel (required).
    #[serde(default)]
    pub channel_id: Option<String>,
    /// Sources (exactly one).
    #[serde(default)]
    pub sources: Option<Vec<SourceSpec>>,
    /// Targets (at least one).
    #[serde(default)]
    pub targets: Option<Vec<TargetSpec>>,
}

/// A full-replace update of a subscription: present lists replace the current ones.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SubscriptionUpdate {
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New sources (replacing all).
    #[serde(default)]
    pub sources: Option<Vec<SourceSpec>>,
    /// New targets (replacing all; entries with an existing id are updated in place).
    #[serde(default)]
    pub targets: Option<Vec<TargetSpec>>,
}
