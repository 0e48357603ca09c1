//! Transforms: what a target receives for an event. A target's transform is checked and compiled
//! when the subscription is written ([`CompiledTransform::compile`]), compiled again by delivery
//! workers once per target version (and cached), and rendered for every delivery
//! ([`CompiledTransform::payload`]).
//!
//! # Kinds
//!
//! - `ORIGINAL`: the event as it is, in CloudEvents structured mode
//!   (`content-type: application/cloudevents+json`).
//! - `CONSTANT`: `value` is the body, byte for byte.
//! - `VARIABLE`: `value` defines variables and `template` is the body with `${…}` placeholders.
//!
//! A `CONSTANT` or `VARIABLE` body goes in CloudEvents binary mode: the event's attributes in
//! `ce-*` headers (values percent-encoded as the HTTP binding says), and `content-type:
//! application/json` when the body is JSON, `text/plain; charset=utf-8` otherwise.
//!
//! # Variables
//!
//! `value` is a JSON object given as a string: `{"id": "$.id", "amount": "$.data.amount",
//! "channel": "web", "priority": 3}`. At most 100 variables ([`MAX_TRANSFORM_VARIABLES`]); names
//! of letters, digits, `.`, `_` and `-`, starting with a letter or digit, not with `HC.`, at most
//! 64 characters ([`MAX_VARIABLE_NAME_LEN`]). A value is flat (no objects or arrays): a string
//! starting with `$` is a JSONPath (RFC 9535) evaluated against the CloudEvent JSON, anything else
//! a constant; strings are at most 1024 characters ([`MAX_VARIABLE_EXPRESSION_CHARS`]). A
//! JSONPath that selects one node yields it, several yield the array of them, none leaves the
//! variable without a value (a JSON `null` is a value). A `CONSTANT` body and a template are at
//! most 64 KiB, a `value` of variables 128 KiB.
//!
//! # Templates
//!
//! `${name}` is replaced by the variable's text; `${name!"default"}` (a JSON string literal)
//! by the default's text when the variable has no value, and `${name!}` by nothing. The text of
//! a string is its characters; of anything else, its compact JSON. This is the rule the spec's
//! examples imply (they come from FreeMarker, where a placeholder prints text): the template
//! writer quotes a string variable (`"${name}"`) and leaves numbers, booleans and objects bare
//! (`${count}`), and `${object!"null"}` prints `null`. So a string variable outside quotes is
//! inserted as it is, unquoted, which lets a variable holding JSON text splice it in.
//!
//! A template starting with `{` or `[` (after white space) is a JSON template; its body must be
//! JSON. Inside its string literals a placeholder's text is escaped (quotes, backslashes and
//! control characters; other characters are kept, as JSON allows), so a string variable cannot
//! break out of its quotes. Outside them, a variable without a value and without a default
//! prints `null`, so that the body stays JSON; elsewhere it prints nothing. A JSON template is
//! checked when written, with every JSONPath variable standing for `null` and then with the
//! defaults filled in: a template that is not JSON then is refused. What depends on the event (a
//! string variable left unquoted) is checked when rendered: a body that is not JSON fails the
//! attempt with the reason in the trace, and is retried like any failure (an update that fixes
//! the transform reaches the queued deliveries) until it goes to the dead-letter queue. Any other
//! template is text and is never checked.
//!
//! `${` always starts a placeholder. Every write-time error is an [`Error::Invalid`]
//! (`EG.00513000` in the event grid dialect) naming the field (`targets[0].transform.template`)
//! and the problem.
//!
//! [`MAX_TRANSFORM_VARIABLES`]: crate::model::validate::MAX_TRANSFORM_VARIABLES
//! [`MAX_VARIABLE_NAME_LEN`]: crate::model::validate::MAX_VARIABLE_NAME_LEN
//! [`MAX_VARIABLE_EXPRESSION_CHARS`]: crate::model::validate::MAX_VARIABLE_EXPRESSION_CHARS

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::de::IgnoredAny;
use serde_json::Value;

use self::template::Template;
use super::Engine;
use crate::error::{Error, Result};
use crate::model::subscription::{SubscriptionTarget, Transform, TransformKind};
use crate::model::validate::{MAX_TRANSFORM_TEXT_BYTES, MAX_TRANSFORM_VARIABLES_BYTES};

mod template;
#[cfg(test)]
mod tests;

/// The content type of an `ORIGINAL` body.
const STRUCTURED: &str = "application/cloudevents+json; charset=utf-8";
/// The content type of a rendered body that is JSON.
const JSON: &str = "application/json";
/// The content type of a rendered body that is not JSON.
const TEXT: &str = "text/plain; charset=utf-8";

/// A target's transform, ready to render payloads.
#[derive(Debug)]
pub struct CompiledTransform {
    body: Body,
}

#[derive(Debug)]
enum Body {
    Original,
    Constant { body: Bytes, content_type: &'static str },
    Variable(Template),
}

/// A target's request body and the headers that describe it.
#[derive(Clone, Debug, PartialEq)]
pub struct Payload {
    /// The body.
    pub body: Bytes,
    /// `content-type`, and the `ce-*` attribute headers in binary mode.
    pub headers: Vec<(String, String)>,
}

impl CompiledTransform {
    /// Checks and compiles the transform found at `field` (such as `targets[0].transform`).
    pub fn compile(field: &str, transform: &Transform) -> Result<Self> {
        let body = match transform.kind {
            TransformKind::Original => Body::Original,
            TransformKind::Constant => {
                let value = text(&format!("{field}.value"), transform.value.as_deref(), MAX_TRANSFORM_TEXT_BYTES)?;
                let content_type = if is_json(value) { JSON } else { TEXT };
                Body::Constant { body: Bytes::copy_from_slice(value.as_bytes()), content_type }
            }
            TransformKind::Variable => {
                let value_field = format!("{field}.value");
                let value = text(&value_field, transform.value.as_deref(), MAX_TRANSFORM_VARIABLES_BYTES)?;
                let template_field = format!("{field}.template");
                let template = text(&template_field, transform.template.as_deref(), MAX_TRANSFORM_TEXT_BYTES)?;
                Body::Variable(Template::compile(&value_field, value, &template_field, template)?)
            }
        };
        Ok(Self { body })
    }

    /// The payload for `event`, or why it cannot be made.
    pub fn payload(&self, event: &Value) -> Result<Payload, String> {
        let (body, content_type) = match &self.body {
            Body::Original => {
                let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
                return Ok(Payload { body: body.into(), headers: vec![("content-type".into(), STRUCTURED.into())] });
            }
            Body::Constant { body, content_type } => (body.clone(), *content_type),
            Body::Variable(template) => {
                let rendered = template.render(event)?;
                let content_type = if template.json || is_json(&rendered) { JSON } else { TEXT };
                (Bytes::from(rendered), content_type)
            }
        };
        Ok(Payload { body, headers: binary_headers(event, content_type) })
    }
}

/// The required text field at `field`, at most `max` bytes.
fn text<'a>(field: &str, value: Option<&'a str>, max: usize) -> Result<&'a str> {
    match value {
        None | Some("") => Err(Error::invalid(field, "is required for this transform type")),
        Some(v) if v.len() > max => {
            Err(Error::invalid(field, format!("is {} bytes; at most {max} are allowed", v.len())))
        }
        Some(v) => Ok(v),
    }
}

/// Whether `s` is a JSON text.
fn is_json(s: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(s).is_ok()
}

/// The headers of a binary-mode CloudEvents request: `content-type` and each attribute but the
/// data and its content type as `ce-<name>`.
fn binary_headers(event: &Value, content_type: &str) -> Vec<(String, String)> {
    let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
    let Some(attributes) = event.as_object() else { return headers };
    for (name, value) in attributes {
        if matches!(name.as_str(), "data" | "data_base64" | "datacontenttype") {
            continue;
        }
        let text = match value {
            Value::String(s) => Cow::Borrowed(s.as_str()),
            Value::Number(_) | Value::Bool(_) => Cow::Owned(value.to_string()),
            _ => continue,
        };
        headers.push((format!("ce-{name}"), percent_encode(&text)));
    }
    headers
}

/// A header value as the CloudEvents HTTP binding writes it: space, `"`, `%` and every byte
/// outside printable ASCII percent-encoded.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'"' && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Compiled transforms of the targets being delivered to, by (subscription, target), each for
/// one version of its target (its `updated_ms`, which every write of the subscription's
/// targets moves).
#[derive(Default)]
pub(crate) struct TransformCache {
    entries: Mutex<HashMap<(String, String), Cached>>,
}

struct Cached {
    version: i64,
    /// What was compiled: a check against two writes within one millisecond.
    source: Transform,
    compiled: Arc<CompiledTransform>,
}

/// Most cached transforms; past it the cache starts again empty.
const MAX_CACHED: usize = 100_000;

impl TransformCache {
    fn get(&self, subscription_id: &str, target: &SubscriptionTarget) -> Result<Arc<CompiledTransform>, String> {
        let key = (subscription_id.to_owned(), target.id.clone());
        if let Some(c) = self.entries.lock().get(&key)
            && c.version == target.updated_ms
            && c.source == target.transform
        {
            return Ok(Arc::clone(&c.compiled));
        }
        let compiled = CompiledTransform::compile("transform", &target.transform)
            .map_err(|e| format!("the stored transform does not compile: {e}"))?;
        let compiled = Arc::new(compiled);
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_CACHED {
            entries.clear();
        }
        let cached =
            Cached { version: target.updated_ms, source: target.transform.clone(), compiled: Arc::clone(&compiled) };
        entries.insert(key, cached);
        Ok(compiled)
    }
}

impl Engine {
    /// The payload of an event for a target of a subscription, or why it cannot be made.
    pub(crate) fn payload(
        &self,
        subscription_id: &str,
        target: &SubscriptionTarget,
        event: &Value,
    ) -> Result<Payload, String> {
        if target.transform.kind == TransformKind::Original {
            return CompiledTransform { body: Body::Original }.payload(event);
        }
        self.transforms().get(subscription_id, target)?.payload(event)
    }
}
