//! Target kinds: what a subscription target delivers to, how each kind is checked when a target is
//! written, and how its secrets are kept. A kind is named by the target's `name` and
//! `provider_type`; [`super::catalog`] lists exactly these kinds (ListEventTarget).
//!
//! | `name` | `provider_type` | parameters | a delivery |
//! |---|---|---|---|
//! | `WEBHOOK` | `CUSTOM` | `detail.url`, optional `detail.secret` (`whsec_…`) | POST, Standard Webhooks signature |
//! | `HTTP` | `CUSTOM` | `apigw_detail.url`, `apigw_detail.invocation_http_parameters.header_parameters[]` | POST with those headers, signed too |
//! | `EG` | `OFFICIAL` | `eg_detail.target_project_id`, `eg_detail.target_channel_id` | PutEvents into that channel |
//! | `SQS` | `OFFICIAL` | `detail.queue_url` | one queue message, the payload as its body |
//!
//! Every kind also takes `retry_times` and `dead_letter_queue`, whose spec shape is kept
//! (`type`, `instance_id`, `connection_id`, `topic`): `type` is `SQS` and `topic` names the queue.
//!
//! Queues (SQS targets and dead-letter queues) are SQS queue URLs on the AWS backend, and on the
//! embedded backend the names of the queues the runner declares (`serve --target-queue NAME`).
//! Switchyard's own queues are refused.
//!
//! HTTP header values marked `is_value_secret` are sealed ([`super::secrets`]) before they are
//! stored, shown as `******`, and sent opened. A target written back with `******` as such a value
//! keeps the stored one. An `EG` target records who wrote it: the caller must be allowed in the
//! target project (the operator, or a token of that project), and every forward checks it again.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use super::Engine;
use super::auth::Principal;
use super::catalog::CATALOG;
use super::secrets::{OpenError, Sealer};
use super::subscriptions::{MASK, check_webhook_url};
use crate::config::{BackendConfig, queues};
use crate::error::{Error, Result};
use crate::model::ProviderType;
use crate::model::subscription::SubscriptionTarget;
use crate::model::validate;

/// Most header parameters of an HTTP target.
pub const MAX_HEADERS: usize = 20;

/// Header names a target may not set (the delivery sets them, or they belong to the connection).
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// What a target delivers to, as derived from its fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// POST to a URL (`WEBHOOK`, `detail.url`).
    Webhook {
        /// Where to.
        url: Url,
    },
    /// POST to a URL with the target's headers (`HTTP`, `apigw_detail`).
    Http {
        /// Where to.
        url: Url,
        /// Headers to send (secret values sealed).
        headers: Vec<HeaderParameter>,
    },
    /// Publish into another channel (`EG`, `eg_detail`).
    Channel {
        /// The channel's project.
        project: String,
        /// The channel.
        channel_id: String,
    },
    /// Send to a queue (`SQS`, `detail.queue_url`).
    Queue {
        /// Queue URL (AWS) or name (embedded).
        queue: String,
    },
}

/// One header of an HTTP target (the spec's HeaderParameter).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderParameter {
    /// Header name.
    #[serde(default)]
    pub key: String,
    /// Header value (sealed when secret).
    #[serde(default)]
    pub value: String,
    /// Whether the value is secret.
    #[serde(default)]
    pub is_value_secret: bool,
}

/// What a target is written with: who writes it, where, and the sealer for its secrets.
pub(crate) struct Writer<'a> {
    /// The caller.
    pub principal: &'a Principal,
    /// The subscription's project.
    pub project: &'a str,
    /// The subscription's channel.
    pub channel_id: &'a str,
    /// Seals secret header values.
    pub sealer: Sealer,
}

/// `prefix.name`, or `name` when there is no prefix (a target that is the whole body).
pub(crate) fn at(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") }
}

fn string_at<'a>(object: Option<&'a Value>, key: &str) -> &'a str {
    object.and_then(|o| o.get(key)).and_then(Value::as_str).unwrap_or_default()
}

fn required_str(field: String, value: &str) -> Result<&str> {
    if value.is_empty() { Err(Error::invalid(field, "is required")) } else { Ok(value) }
}

fn parse_url(field: String, text: &str) -> Result<Url> {
    let text = required_str(field.clone(), text)?;
    Url::parse(text).map_err(|e| Error::target(field, e.to_string()))
}

/// The context a secret header value is sealed with.
fn header_context(project: &str, target_id: &str, key: &str) -> String {
    format!("{project}/{target_id}/{}", key.to_ascii_lowercase())
}

/// What a target's signing secret is sealed to: its project and target (header names cannot hold
/// `:`, so it never equals a header's context).
pub(crate) fn signing_secret_context(project: &str, target_id: &str) -> String {
    format!("{project}/{target_id}:signing-secret")
}

impl SubscriptionTarget {
    /// What the target delivers to; errors name fields under `field`.
    pub fn kind(&self, field: &str) -> Result<TargetKind> {
        match (self.name.as_str(), self.provider_type) {
            ("WEBHOOK", ProviderType::Custom) => {
                let url = parse_url(at(field, "detail.url"), string_at(Some(&self.detail), "url"))?;
                Ok(TargetKind::Webhook { url })
            }
            ("HTTP", ProviderType::Custom) => {
                let detail = self.apigw_detail.as_ref();
                if detail.is_none() {
                    return Err(Error::invalid(at(field, "apigw_detail"), "is required for HTTP targets"));
                }
                let url = parse_url(at(field, "apigw_detail.url"), string_at(detail, "url"))?;
                let headers_field = at(field, "apigw_detail.invocation_http_parameters.header_parameters");
                let headers = match detail.and_then(|d| d.pointer("/invocation_http_parameters/header_parameters")) {
                    None | Some(Value::Null) => Vec::new(),
                    Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                        Error::invalid(headers_field, format!("must be a list of key, value, is_value_secret: {e}"))
                    })?,
                };
                Ok(TargetKind::Http { url, headers })
            }
            ("EG", ProviderType::Official) => {
                let detail = self.eg_detail.as_ref();
                if detail.is_none() {
                    return Err(Error::invalid(at(field, "eg_detail"), "is required for EG targets"));
                }
                let project =
                    required_str(at(field, "eg_detail.target_project_id"), string_at(detail, "target_project_id"))?;
                let channel =
                    required_str(at(field, "eg_detail.target_channel_id"), string_at(detail, "target_channel_id"))?;
                Ok(TargetKind::Channel { project: project.to_owned(), channel_id: channel.to_owned() })
            }
            ("SQS", ProviderType::Official) => {
                let queue = required_str(at(field, "detail.queue_url"), string_at(Some(&self.detail), "queue_url"))?;
                Ok(TargetKind::Queue { queue: queue.to_owned() })
            }
            (name, provider) => {
                let known: Vec<String> =
                    CATALOG.iter().map(|k| format!("{} ({})", k.name, k.provider_type.as_str())).collect();
                Err(Error::invalid(
                    at(field, "name"),
                    format!("target kind {name} ({}) is not supported; use {}", provider.as_str(), known.join(", ")),
                ))
            }
        }
    }

    /// The queue failed deliveries also go to (`dead_letter_queue.topic`), if any.
    pub fn dead_letter_queue_name(&self) -> Option<&str> {
        self.dead_letter_queue.as_ref().and_then(|d| d.get("topic")).and_then(Value::as_str).filter(|q| !q.is_empty())
    }

    /// The target as it may be shown: secrets masked.
    pub fn redact(&mut self) {
        if let Some(secret) = self.detail.get_mut("secret") {
            *secret = json!(MASK);
        }
        let headers =
            self.apigw_detail.as_mut().and_then(|d| d.pointer_mut("/invocation_http_parameters/header_parameters"));
        if let Some(Value::Array(headers)) = headers {
            for h in headers.iter_mut().filter(|h| h.get("is_value_secret").and_then(Value::as_bool) == Some(true)) {
                h["value"] = json!(MASK);
            }
        }
    }

    /// The HTTP headers to send, secret values opened.
    pub fn open_headers(&self, project: &str, sealer: &Sealer) -> Result<Vec<(String, String)>, OpenError> {
        let Ok(TargetKind::Http { headers, .. }) = self.kind("target") else { return Ok(Vec::new()) };
        headers
            .into_iter()
            .map(|h| {
                let value = if h.is_value_secret {
                    sealer.open(&header_context(project, &self.id, &h.key), &h.value)?
                } else {
                    h.value
                };
                Ok((h.key, value))
            })
            .collect()
    }
}

fn check_header_key(field: &str, key: &str) -> Result<()> {
    let valid = !key.is_empty()
        && key.len() <= 128
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(Error::invalid(field, "must be 1 to 128 characters of an HTTP header name"));
    }
    if RESERVED_HEADERS.contains(&key.to_ascii_lowercase().as_str()) {
        return Err(Error::invalid(field, format!("{key} is set by the delivery and may not be overridden")));
    }
    Ok(())
}

fn check_header_value(field: &str, value: &str) -> Result<()> {
    if value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        Ok(())
    } else {
        Err(Error::invalid(field, "may hold only printable ASCII characters and tabs"))
    }
}

impl Engine {
    /// Checks a target built from a client's spec and completes it: kind parameters, secret
    /// sealing, forwarding grant, dead-letter queue. `previous` is the stored target of that id.
    pub(crate) async fn check_target(
        &self,
        w: &Writer<'_>,
        field: &str,
        target: &mut SubscriptionTarget,
        previous: Option<&SubscriptionTarget>,
    ) -> Result<()> {
        match target.kind(field)? {
            TargetKind::Webhook { url } => {
                check_webhook_url(&at(field, "detail.url"), &url, self.config().delivery.address_policy)?;
            }
            TargetKind::Http { url, headers } => {
                check_webhook_url(&at(field, "apigw_detail.url"), &url, self.config().delivery.address_policy)?;
                let headers = self.seal_headers(w, field, &target.id, headers, previous)?;
                if let Some(detail) = target.apigw_detail.as_mut() {
                    detail["invocation_http_parameters"] = json!({ "header_parameters": headers });
                }
            }
            TargetKind::Channel { project, channel_id } => {
                self.check_forwarding(w, field, target, &project, &channel_id).await?;
                target.granted_by = Some(w.principal.clone());
            }
            TargetKind::Queue { queue } => self.check_queue(&at(field, "detail.queue_url"), &queue)?,
        }
        if let Some(dlq) = &target.dead_letter_queue {
            let kind = string_at(Some(dlq), "type");
            if kind != "SQS" {
                return Err(Error::invalid(
                    at(field, "dead_letter_queue.type"),
                    format!("must be SQS (the only dead-letter queue kind here), not {kind:?}"),
                ));
            }
            let topic = required_str(at(field, "dead_letter_queue.topic"), string_at(Some(dlq), "topic"))?;
            self.check_queue(&at(field, "dead_letter_queue.topic"), topic)?;
        }
        Ok(())
    }

    fn seal_headers(
        &self,
        w: &Writer<'_>,
        field: &str,
        target_id: &str,
        headers: Vec<HeaderParameter>,
        previous: Option<&SubscriptionTarget>,
    ) -> Result<Vec<HeaderParameter>> {
        let field = at(field, "apigw_detail.invocation_http_parameters.header_parameters");
        if headers.len() > MAX_HEADERS {
            return Err(Error::invalid(field, format!("at most {MAX_HEADERS} headers")));
        }
        let kept: Vec<HeaderParameter> = match previous.map(|p| p.kind("target")) {
            Some(Ok(TargetKind::Http { headers, .. })) => headers,
            _ => Vec::new(),
        };
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(headers.len());
        for (i, mut h) in headers.into_iter().enumerate() {
            check_header_key(&format!("{field}[{i}].key"), &h.key)?;
            if !seen.insert(h.key.to_ascii_lowercase()) {
                return Err(Error::invalid(format!("{field}[{i}].key"), format!("{} appears twice", h.key)));
            }
            if h.is_value_secret && h.value == MASK {
                let stored = kept.iter().find(|k| k.is_value_secret && k.key.eq_ignore_ascii_case(&h.key));
                let Some(stored) = stored else {
                    return Err(Error::invalid(
                        format!("{field}[{i}].value"),
                        format!("{MASK} keeps a stored secret, and this target has none for {}; send the value", h.key),
                    ));
                };
                // Sealed for this target under the stored key's spelling; reseal if it changed case.
                h.value = match w.sealer.open(&header_context(w.project, target_id, &stored.key), &stored.value) {
                    Ok(plain) => w.sealer.seal(&header_context(w.project, target_id, &h.key), &plain),
                    Err(_) => {
                        return Err(Error::invalid(
                            format!("{field}[{i}].value"),
                            "the stored secret cannot be opened; send the value",
                        ));
                    }
                };
            } else {
                check_header_value(&format!("{field}[{i}].value"), &h.value)?;
                if h.is_value_secret {
                    h.value = w.sealer.seal(&header_context(w.project, target_id, &h.key), &h.value);
                }
            }
            out.push(h);
        }
        Ok(out)
    }

    async fn check_forwarding(
        &self,
        w: &Writer<'_>,
        field: &str,
        target: &SubscriptionTarget,
        project: &str,
        channel_id: &str,
    ) -> Result<()> {
        let project_field = at(field, "eg_detail.target_project_id");
        let channel_field = at(field, "eg_detail.target_channel_id");
        validate::project_id(project)
            .map_err(|_| Error::invalid(project_field.clone(), "must be 1 to 64 letters, digits, '.', '_' or '-'"))?;
        if target.eg_detail.as_ref().and_then(|d| d.get("cross_region")).and_then(Value::as_bool) == Some(true) {
            return Err(Error::invalid(
                at(field, "eg_detail.cross_region"),
                "cross-region forwarding is not supported",
            ));
        }
        if !w.principal.may_act_in(project) {
            return Err(Error::Forbidden(format!("{project_field}: this token may not publish to project {project}")));
        }
        if project == w.project && channel_id == w.channel_id {
            return Err(Error::invalid(channel_field, "must not be the subscription's own channel"));
        }
        match self.channel(project, channel_id).await {
            Ok(_) => Ok(()),
            Err(Error::NotFound { .. }) => {
                Err(Error::invalid(channel_field, format!("channel {channel_id} not found in project {project}")))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `queue` is one of Switchyard's own queues (never a target).
    pub(crate) fn is_internal_queue(&self, queue: &str) -> bool {
        if queue == queues::DELIVERY || queue == queues::DEAD_LETTER {
            return true;
        }
        match &self.config().backend {
            BackendConfig::Aws(resources) => resources.queue_urls.values().any(|u| u == queue),
            BackendConfig::Embedded(_) => false,
        }
    }

    /// Checks a queue a target sends to: a queue URL on AWS, a declared queue name when embedded.
    fn check_queue(&self, field: &str, queue: &str) -> Result<()> {
        if self.is_internal_queue(queue) {
            return Err(Error::invalid(field, format!("{queue} is one of Switchyard's own queues")));
        }
        match &self.config().backend {
            BackendConfig::Embedded(_) => {
                if self.config().target_queues.iter().any(|q| q == queue) {
                    return Ok(());
                }
                let declared = self.config().target_queues.join(", ");
                Err(Error::invalid(
                    field,
                    format!(
                        "queue {queue} is not declared; this runner's queues (serve --target-queue) are: [{declared}]"
                    ),
                ))
            }
            BackendConfig::Aws(_) => match Url::parse(queue) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
                _ => Err(Error::invalid(field, "must be an SQS queue URL")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_and_values_are_checked() {
        assert!(check_header_key("k", "X-Api-Key").is_ok());
        for bad in ["", "has space", "Content-Type", "webhook-signature", "Host", "a:b"] {
            assert!(check_header_key("h[0].key", bad).unwrap_err().to_string().starts_with("h[0].key: "), "{bad}");
        }
        assert!(check_header_value("v", "Bearer abc\tdef").is_ok());
        assert!(check_header_value("v", "line\r\nInjected: 1").is_err());
        assert!(check_header_value("v", "caf\u{e9}").is_err());
    }

    #[test]
    fn fields_are_named_under_their_prefix() {
        assert_eq!(at("", "detail.url"), "detail.url");
        assert_eq!(at("targets[1]", "detail.url"), "targets[1].detail.url");
    }
}
