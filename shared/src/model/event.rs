//! CloudEvents 1.0 (JSON format): validation of published events.
//!
//! An event is kept as the JSON object it arrived as; validation checks it against the CloudEvents
//! 1.0 specification and the event grid API: `id`, `source` (a URI reference), `specversion`
//! (`1.0`) and `type` are required; `time` is RFC 3339; `datacontenttype` is a media type;
//! `dataschema` is an absolute URI; `data` and `data_base64` exclude each other; extension
//! attribute names are lowercase ASCII letters and digits, and their values strings, numbers or
//! booleans. Every message names the attribute.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::validate::MAX_EVENT_BYTES;

/// The extension attribute counting how often an event was forwarded from one channel to another
/// (by `EG` targets). An event is forwarded at most [`MAX_HOPS`] times; a forward that would exceed
/// it is dropped and recorded (trace, dead-letter queue), so forwarding loops end.
pub const HOPS_ATTRIBUTE: &str = "syhops";
/// Most forwards of one event.
pub const MAX_HOPS: u64 = 8;

/// The forward count of an event document (its [`HOPS_ATTRIBUTE`], a number or a numeric string;
/// 0 when absent).
pub fn hops_of(doc: &Map<String, Value>) -> u64 {
    match doc.get(HOPS_ATTRIBUTE) {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// The attributes the specification defines (everything else is an extension).
const KNOWN: &[&str] =
    &["id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time", "data", "data_base64"];

/// A validated CloudEvent.
#[derive(Clone, Debug, PartialEq)]
pub struct CloudEvent {
    doc: Map<String, Value>,
}

/// Why an event is not valid: the attribute and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventError {
    /// The attribute (empty for the event as a whole).
    pub attribute: String,
    /// What is wrong.
    pub reason: String,
}

impl EventError {
    fn new(attribute: &str, reason: impl Into<String>) -> Self {
        Self { attribute: attribute.to_owned(), reason: reason.into() }
    }

    /// The message, prefixed with the event's position in its batch: `events[3].time: …`.
    pub fn message(&self, prefix: &str) -> String {
        if self.attribute.is_empty() {
            format!("{prefix}: {}", self.reason)
        } else {
            format!("{prefix}.{}: {}", self.attribute, self.reason)
        }
    }
}

fn string<'a>(doc: &'a Map<String, Value>, name: &str, required: bool) -> Result<Option<&'a str>, EventError> {
    match doc.get(name) {
        None | Some(Value::Null) if required => Err(EventError::new(name, "is required")),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(EventError::new(name, "must not be empty")),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(EventError::new(name, "must be a string")),
    }
}

impl CloudEvent {
    /// Validates a published event.
    pub fn parse(value: Value) -> Result<Self, EventError> {
        let size = serde_json::to_vec(&value).map(|b| b.len()).unwrap_or(usize::MAX);
        if size > MAX_EVENT_BYTES {
            return Err(EventError::new("", format!("event is {size} bytes; at most {MAX_EVENT_BYTES} are allowed")));
        }
        let Value::Object(doc) = value else {
            return Err(EventError::new("", "an event must be a JSON object"));
        };
        string(&doc, "id", true)?;
        let source = string(&doc, "source", true)?.unwrap_or_default();
        if fluent_uri::UriRef::parse(source).is_err() {
            return Err(EventError::new("source", "must be a URI reference (RFC 3986)"));
        }
        let version = string(&doc, "specversion", true)?.unwrap_or_default();
        if version != "1.0" {
            return Err(EventError::new("specversion", format!("must be \"1.0\", not {version:?}")));
        }
        string(&doc, "type", true)?;
        if let Some(ct) = string(&doc, "datacontenttype", false)?
            && ct.parse::<mime::Mime>().is_err()
        {
            return Err(EventError::new(
                "datacontenttype",
                "must be a media type (RFC 2046), such as application/json",
            ));
        }
        if let Some(schema) = string(&doc, "dataschema", false)?
            && fluent_uri::Uri::parse(schema).is_err()
        {
            return Err(EventError::new("dataschema", "must be an absolute URI (RFC 3986)"));
        }
        string(&doc, "subject", false)?;
        if let Some(t) = string(&doc, "time", false)?
            && time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_err()
        {
            return Err(EventError::new("time", "must be an RFC 3339 timestamp, such as 2018-04-05T17:31:00Z"));
        }
        if let Some(b64) = string(&doc, "data_base64", false)? {
            if doc.get("data").is_some_and(|d| !d.is_null()) {
                return Err(EventError::new("data_base64", "cannot be given together with data"));
            }
            if base64::engine::general_purpose::STANDARD.decode(b64).is_err() {
                return Err(EventError::new("data_base64", "must be base64 (RFC 4648)"));
            }
        }
        for (name, value) in &doc {
            if KNOWN.contains(&name.as_str()) {
                continue;
            }
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
                return Err(EventError::new(
                    name,
                    "extension attribute names may hold only lowercase ASCII letters and digits",
                ));
            }
            if !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null) {
                return Err(EventError::new(name, "extension attribute values must be strings, numbers or booleans"));
            }
        }
        Ok(Self { doc })
    }

    /// The event's `id`.
    pub fn id(&self) -> &str {
        self.doc.get("id").and_then(Value::as_str).unwrap_or_default()
    }

    /// The event's `source`.
    pub fn source(&self) -> &str {
        self.doc.get("source").and_then(Value::as_str).unwrap_or_default()
    }

    /// The event's `type`.
    pub fn event_type(&self) -> &str {
        self.doc.get("type").and_then(Value::as_str).unwrap_or_default()
    }

    /// The event as a JSON document.
    pub fn as_json(&self) -> &Map<String, Value> {
        &self.doc
    }

    /// The event as a JSON value.
    pub fn into_json(self) -> Value {
        Value::Object(self.doc)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn good() -> Value {
        json!({ "id": "e1", "source": "app/orders", "specversion": "1.0", "type": "order.created" })
    }

    /// The message for a good event with `set` merged in and `remove` taken out.
    fn error_of(set: Value, remove: &[&str]) -> String {
        let mut v = good();
        let doc = v.as_object_mut().unwrap();
        for key in remove {
            doc.remove(*key);
        }
        doc.extend(set.as_object().unwrap().clone());
        CloudEvent::parse(v).unwrap_err().message("events[0]")
    }

    #[test]
    fn a_minimal_event_is_valid_and_keeps_its_attributes() {
        let e = CloudEvent::parse(good()).unwrap();
        assert_eq!((e.id(), e.source(), e.event_type()), ("e1", "app/orders", "order.created"));
        let mut full = good();
        let extra = json!({
            "time": "2018-04-05T17:31:00Z", "subject": "x", "datacontenttype": "application/json",
            "dataschema": "https://schemas.example.com/order", "data": { "n": 1 }, "tenant": "t1", "priority": 3,
            "urgent": true
        });
        full.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        assert_eq!(CloudEvent::parse(full.clone()).unwrap().into_json(), full);
    }

    #[test]
    fn each_rule_names_its_attribute() {
        let cases = [
            (json!({}), vec!["id"], "events[0].id: is required"),
            (json!({ "id": "" }), vec![], "events[0].id: must not be empty"),
            (json!({ "id": 5 }), vec![], "events[0].id: must be a string"),
            (json!({}), vec!["source"], "events[0].source: is required"),
            (json!({ "source": "has space" }), vec![], "events[0].source: must be a URI"),
            (json!({ "specversion": "0.3" }), vec![], "events[0].specversion: must be \"1.0\""),
            (json!({}), vec!["type"], "events[0].type: is required"),
            (json!({ "time": "yesterday" }), vec![], "events[0].time: must be an RFC 3339"),
            (json!({ "datacontenttype": "json" }), vec![], "events[0].datacontenttype:"),
            (json!({ "dataschema": "relative/x" }), vec![], "events[0].dataschema:"),
            (json!({ "data_base64": "!!" }), vec![], "events[0].data_base64: must be base64"),
            (json!({ "data_base64": "aGk=", "data": 1 }), vec![], "events[0].data_base64: cannot be given together"),
            (json!({ "Bad_Name": "x" }), vec![], "events[0].Bad_Name: extension attribute names"),
            (json!({ "ext": { "a": 1 } }), vec![], "events[0].ext: extension attribute values"),
        ];
        for (set, remove, expected) in cases {
            let message = error_of(set, &remove);
            assert!(message.starts_with(expected), "{message} should start with {expected}");
        }
    }

    #[test]
    fn oversized_and_non_object_events_are_refused() {
        let mut big = good();
        big["data"] = json!("x".repeat(MAX_EVENT_BYTES));
        assert!(CloudEvent::parse(big).unwrap_err().message("events[2]").starts_with("events[2]: event is"));
        assert_eq!(
            CloudEvent::parse(json!([1])).unwrap_err().message("events[0]"),
            "events[0]: an event must be a JSON object"
        );
    }

    #[test]
    fn data_base64_alone_is_fine() {
        let mut v = good();
        v["data_base64"] = json!("aGVsbG8=");
        assert!(CloudEvent::parse(v).is_ok());
    }
}
