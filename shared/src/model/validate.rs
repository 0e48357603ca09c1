//! The validation rules and limits of the API, in one table-like place.

use crate::error::{Error, Result};

/// Most events in one PutEvents call.
pub const MAX_EVENTS_PER_CALL: usize = 100;
/// Largest PutEvents request body.
pub const MAX_PUT_EVENTS_BYTES: usize = 4 * 1024 * 1024;
/// Largest single event, serialized.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
/// Largest request body of any other operation.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest `detail` object of a subscription source or target, serialized.
pub const MAX_DETAIL_BYTES: usize = 1024;
/// Largest subscription filter, serialized.
pub const MAX_FILTER_BYTES: usize = 2048;
/// Longest resource name (the spec states none; this is ours).
pub const MAX_NAME_LEN: usize = 128;
/// Longest description.
pub const MAX_DESCRIPTION_LEN: usize = 255;
/// Longest client-chosen source or target id.
pub const MAX_CLIENT_ID_LEN: usize = 64;
/// Longest project id.
pub const MAX_PROJECT_ID_LEN: usize = 64;
/// Largest page of a list.
pub const MAX_PAGE_LIMIT: usize = 1000;
/// Page size when the client names none.
pub const DEFAULT_PAGE_LIMIT: usize = 15;
/// Most targets on one subscription.
pub const MAX_TARGETS: usize = 5;
/// Largest `retry_times` of a target.
pub const MAX_RETRY_TIMES: u32 = 64;
/// `retry_times` when the client names none.
pub const DEFAULT_RETRY_TIMES: u32 = 16;
/// Most variables of a `VARIABLE` transform.
pub const MAX_TRANSFORM_VARIABLES: usize = 100;
/// Longest variable name of a `VARIABLE` transform.
pub const MAX_VARIABLE_NAME_LEN: usize = 64;
/// Longest value expression (constant or JSONPath) of a transform variable, in characters.
pub const MAX_VARIABLE_EXPRESSION_CHARS: usize = 1024;
/// Largest `value` of a `VARIABLE` transform: room for the most variables at their longest.
pub const MAX_TRANSFORM_VARIABLES_BYTES: usize = 128 * 1024;
/// Largest `CONSTANT` body or `VARIABLE` template (the spec states none; this is ours).
pub const MAX_TRANSFORM_TEXT_BYTES: usize = 64 * 1024;

/// A resource name: letters, digits, `.`, `_`, `-`, starting with a letter or digit,
/// 1 to [`MAX_NAME_LEN`] characters.
pub fn name(field: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_NAME_LEN {
        return Err(Error::invalid(field, format!("must be 1 to {MAX_NAME_LEN} characters")));
    }
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(Error::invalid(field, "must start with a letter or digit"));
    }
    if let Some(c) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(Error::invalid(field, format!("may hold only letters, digits, '.', '_' and '-', not {c:?}")));
    }
    Ok(())
}

/// A client-chosen id of a subscription source or target: lowercase letters, digits and `-`,
/// starting with a letter or digit, 1 to [`MAX_CLIENT_ID_LEN`] characters.
pub fn client_id(field: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_CLIENT_ID_LEN {
        return Err(Error::invalid(field, format!("must be 1 to {MAX_CLIENT_ID_LEN} characters")));
    }
    if !value.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err(Error::invalid(field, "must start with a lowercase letter or digit"));
    }
    if let Some(c) = value.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(Error::invalid(field, format!("may hold only lowercase letters, digits and '-', not {c:?}")));
    }
    Ok(())
}

/// A description of at most [`MAX_DESCRIPTION_LEN`] characters.
pub fn description(field: &str, value: &str) -> Result<()> {
    if value.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(Error::invalid(field, format!("must be at most {MAX_DESCRIPTION_LEN} characters")));
    }
    Ok(())
}

/// A project id (the tenant): letters, digits, `.`, `_`, `-`, 1 to [`MAX_PROJECT_ID_LEN`].
pub fn project_id(value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= MAX_PROJECT_ID_LEN
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("project_id", format!("must be 1 to {MAX_PROJECT_ID_LEN} letters, digits, '.', '_' or '-'")))
    }
}

/// A JSON object field no larger than `max` bytes serialized.
pub fn object_size(field: &str, value: &serde_json::Value, max: usize) -> Result<()> {
    if !value.is_object() {
        return Err(Error::invalid(field, "must be a JSON object"));
    }
    let size = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > max {
        return Err(Error::invalid(field, format!("is {size} bytes serialized; at most {max} are allowed")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_rules() {
        for ok in ["a", "channel-1", "A.b_c-d", "9lives"] {
            assert!(name("name", ok).is_ok(), "{ok}");
        }
        for bad in ["", "-lead", ".x", "has space", "semi;colon", &"x".repeat(129)] {
            let e = name("name", bad).unwrap_err().to_string();
            assert!(e.starts_with("name: "), "{e}");
        }
    }

    #[test]
    fn client_ids_are_lowercase() {
        assert!(client_id("id", "my-target-1").is_ok());
        for bad in ["My", "-x", "a_b", ""] {
            assert!(client_id("targets[0].id", bad).unwrap_err().to_string().starts_with("targets[0].id: "));
        }
    }

    #[test]
    fn objects_are_size_checked() {
        let small = serde_json::json!({ "url": "http://x" });
        assert!(object_size("detail", &small, 1024).is_ok());
        let big = serde_json::json!({ "k": "x".repeat(1100) });
        assert!(object_size("detail", &big, 1024).unwrap_err().to_string().contains("at most 1024"));
        assert!(object_size("detail", &serde_json::json!([1]), 1024).is_err());
    }
}
