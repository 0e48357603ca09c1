//! The target catalog (ListEventTarget, spec 5.5.1): the target kinds a subscription may use,
//! exactly those [`super::targets`] delivers to, with their parameters. Every kind supports
//! event subscriptions (`SUBSCRIPTION`); none is an event-streaming sink (`FLOW`).

use serde_json::{Value, json};

use super::list::Listable;
use crate::model::ProviderType;

/// One parameter of a target kind.
#[derive(Clone, Copy, Debug)]
pub struct CatalogParameter {
    /// Where it goes in a target (`apigw_detail.url`).
    pub name: &'static str,
    /// What it is.
    pub label: &'static str,
    /// Whether a target of the kind must set it.
    pub required: bool,
    /// Its JSON type.
    pub kind: &'static str,
}

/// One target kind.
#[derive(Clone, Copy, Debug)]
pub struct CatalogKind {
    /// Catalog id.
    pub id: &'static str,
    /// The target `name` that selects it.
    pub name: &'static str,
    /// The target `provider_type` that selects it.
    pub provider_type: ProviderType,
    /// Short display text.
    pub label: &'static str,
    /// What a delivery does.
    pub description: &'static str,
    /// Its parameters.
    pub parameters: &'static [CatalogParameter],
}

const fn p(name: &'static str, label: &'static str, required: bool, kind: &'static str) -> CatalogParameter {
    CatalogParameter { name, label, required, kind }
}

/// The parameters every kind shares.
const COMMON: &[CatalogParameter] = &[
    p("retry_times", "Retries after the first attempt (0 to 64, default 16)", false, "integer"),
    p("transform", "How the payload is made from the event: ORIGINAL, CONSTANT or VARIABLE", true, "object"),
    p("dead_letter_queue.type", "Dead-letter queue kind: SQS", false, "string"),
    p(
        "dead_letter_queue.topic",
        "Dead-letter queue: SQS queue URL, or a declared queue name when embedded",
        false,
        "string",
    ),
];

/// Every target kind.
pub static CATALOG: &[CatalogKind] = &[
    CatalogKind {
        id: "webhook",
        name: "WEBHOOK",
        provider_type: ProviderType::Custom,
        label: "Webhook",
        description: "POSTs the event as application/cloudevents+json, signed in the Standard Webhooks layout",
        parameters: &[
            p("detail.url", "http or https URL to POST to", true, "string"),
            p("detail.secret", "Signing secret (whsec_ + base64); the project's secret when absent", false, "string"),
        ],
    },
    CatalogKind {
        id: "http",
        name: "HTTP",
        provider_type: ProviderType::Custom,
        label: "HTTP endpoint with headers",
        description: "POSTs the event to a URL with the given headers (secret values stored sealed, never shown)",
        parameters: &[
            p("apigw_detail.url", "http or https URL to POST to", true, "string"),
            p(
                "apigw_detail.invocation_http_parameters.header_parameters",
                "Headers: key, value, is_value_secret",
                false,
                "array",
            ),
        ],
    },
    CatalogKind {
        id: "eg",
        name: "EG",
        provider_type: ProviderType::Official,
        label: "Event channel",
        description: "Publishes the event into another channel (of this or another permitted project); at most 8 hops",
        parameters: &[
            p("eg_detail.target_project_id", "Project of the channel", true, "string"),
            p("eg_detail.target_channel_id", "The channel", true, "string"),
        ],
    },
    CatalogKind {
        id: "sqs",
        name: "SQS",
        provider_type: ProviderType::Official,
        label: "Queue",
        description: "Sends the event as one message to a queue",
        parameters: &[p("detail.queue_url", "SQS queue URL, or a declared queue name when embedded", true, "string")],
    },
];

/// Fixed creation time of the catalog entries (they ship with the service).
const CATALOG_TIME: &str = "2025-01-01 00:00:00";
/// The same instant in milliseconds.
const CATALOG_MS: i64 = 1_735_689_600_000;

impl Listable for &CatalogKind {
    fn name(&self) -> &str {
        self.name
    }
    fn created_ms(&self) -> i64 {
        CATALOG_MS
    }
    fn updated_ms(&self) -> i64 {
        CATALOG_MS
    }
}

impl CatalogKind {
    /// The kind as the API shows it (CatalogTargetInfo).
    pub fn info(&self) -> Value {
        let parameters: Vec<Value> = self
            .parameters
            .iter()
            .chain(COMMON)
            .map(
                |p| json!({ "name": p.name, "label": p.label, "metadata": { "required": p.required, "type": p.kind } }),
            )
            .collect();
        json!({
            "id": self.id,
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "provider_type": self.provider_type.as_str(),
            "support_types": ["SUBSCRIPTION"],
            "parameters": parameters,
            "created_time": CATALOG_TIME,
            "updated_time": CATALOG_TIME,
        })
    }

    /// Whether the kind supports one of `modes` (`SUBSCRIPTION`, `FLOW`); any when empty.
    pub fn supports(&self, modes: &[&str]) -> bool {
        modes.is_empty() || modes.contains(&"SUBSCRIPTION")
    }
}
