//! `VARIABLE` transforms: variable definitions and templates, checked and compiled when written,
//! rendered per delivery (the rules are in the parent module's documentation).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json_path::JsonPath;

use crate::error::{Error, Result};
use crate::model::validate::{MAX_TRANSFORM_VARIABLES, MAX_VARIABLE_EXPRESSION_CHARS, MAX_VARIABLE_NAME_LEN};

/// A compiled `VARIABLE` transform.
#[derive(Debug)]
pub(super) struct Template {
    /// The variables the template uses (unused ones are checked, then dropped).
    variables: Vec<Variable>,
    pieces: Vec<Piece>,
    /// Whether the body must be JSON.
    pub(super) json: bool,
    /// The template's length, to size the output.
    size_hint: usize,
}

#[derive(Debug)]
struct Variable {
    name: String,
    source: Source,
}

#[derive(Debug)]
enum Source {
    /// A constant, as text.
    Constant(String),
    Path(JsonPath),
}

#[derive(Debug)]
enum Piece {
    Text(String),
    /// A placeholder: the variable (by position), its default, and whether it sits inside a string
    /// literal of a JSON template.
    Slot {
        variable: usize,
        default: Option<String>,
        quoted: bool,
    },
}

/// Checks a variable name.
fn check_name(field: &str, name: &str) -> Result<()> {
    let bad = |why: String| Err(Error::invalid(field, format!("variable {name:?} {why}")));
    if name.is_empty() || name.chars().count() > MAX_VARIABLE_NAME_LEN {
        return bad(format!("must be 1 to {MAX_VARIABLE_NAME_LEN} characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("must start with a letter or digit".into());
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return bad(format!("may hold only letters, digits, '.', '_' and '-', not {c:?}"));
    }
    if name.starts_with("HC.") {
        return bad("must not start with \"HC.\" (reserved)".into());
    }
    Ok(())
}

/// Compiles a variable's value expression.
fn source(field: &str, name: &str, value: &Value) -> Result<Source> {
    let bad = |why: String| Err(Error::invalid(field, format!("variable {name:?} {why}")));
    match value {
        Value::String(s) if s.chars().count() > MAX_VARIABLE_EXPRESSION_CHARS => {
            bad(format!("is longer than {MAX_VARIABLE_EXPRESSION_CHARS} characters"))
        }
        Value::String(s) if s.starts_with('$') => match JsonPath::parse(s) {
            Ok(path) => Ok(Source::Path(path)),
            Err(e) => bad(format!("is not a valid JSONPath (RFC 9535): {e}")),
        },
        Value::String(s) => Ok(Source::Constant(s.clone())),
        Value::Object(_) | Value::Array(_) => {
            bad("must be a constant or a JSONPath string; variables do not nest".into())
        }
        other => Ok(Source::Constant(other.to_string())),
    }
}

impl Template {
    /// Checks and compiles the variables `value` (at `value_field`) and the `template`.
    pub(super) fn compile(value_field: &str, value: &str, template_field: &str, template: &str) -> Result<Self> {
        let defined: serde_json::Map<String, Value> = serde_json::from_str(value).map_err(|e| {
            Error::invalid(value_field, format!("must be a JSON object of variables, given as a string ({e})"))
        })?;
        if defined.len() > MAX_TRANSFORM_VARIABLES {
            return Err(Error::invalid(
                value_field,
                format!("defines {} variables; at most {MAX_TRANSFORM_VARIABLES} are allowed", defined.len()),
            ));
        }
        let mut sources = HashMap::new();
        for (name, expression) in &defined {
            check_name(value_field, name)?;
            sources.insert(name.as_str(), source(value_field, name, expression)?);
        }
        let json = template.trim_start().starts_with(['{', '[']);
        let mut compiled = Self { variables: Vec::new(), pieces: Vec::new(), json, size_hint: template.len() };
        let mut used: HashMap<String, usize> = HashMap::new();
        for piece in lex(template_field, template, json)? {
            let piece = match piece {
                Lexed::Text(text) => Piece::Text(text),
                Lexed::Slot { name, default, quoted } => {
                    let variable = match used.get(&name) {
                        Some(&i) => i,
                        None => {
                            let source = sources.remove(name.as_str()).ok_or_else(|| {
                                Error::invalid(
                                    template_field,
                                    format!("${{{name}}} names no variable; define it in value"),
                                )
                            })?;
                            compiled.variables.push(Variable { name: name.clone(), source });
                            used.insert(name, compiled.variables.len() - 1);
                            compiled.variables.len() - 1
                        }
                    };
                    Piece::Slot { variable, default, quoted }
                }
            };
            compiled.pieces.push(piece);
        }
        if json {
            compiled.check_json(template_field)?;
        }
        Ok(compiled)
    }

    /// Refuses a JSON template that is not JSON with its JSONPath variables standing for `null`,
    /// or with the defaults filled in.
    fn check_json(&self, field: &str) -> Result<()> {
        for with_defaults in [false, true] {
            let mut out = String::with_capacity(self.size_hint);
            for piece in &self.pieces {
                match piece {
                    Piece::Text(text) => out.push_str(text),
                    Piece::Slot { quoted: true, .. } => {}
                    Piece::Slot { variable, default, quoted: false } => {
                        match (&self.variables[*variable].source, default) {
                            (Source::Constant(text), _) => out.push_str(text),
                            (Source::Path(_), Some(default)) if with_defaults => out.push_str(default),
                            (Source::Path(_), _) => out.push_str("null"),
                        }
                    }
                }
            }
            if let Err(e) = serde_json::from_str::<IgnoredAny>(&out) {
                let filled = if with_defaults { "the defaults" } else { "its variables" };
                return Err(Error::invalid(
                    field,
                    format!(
                        "starts like JSON but is not JSON once {filled} are filled in ({e}); \
                         a string variable outside quotes is inserted unquoted, write \"${{name}}\""
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The body for `event`; fails when a JSON template does not render JSON.
    pub(super) fn render(&self, event: &Value) -> Result<String, String> {
        let values: Vec<Option<Cow<'_, str>>> = self.variables.iter().map(|v| v.source.text(event)).collect();
        let mut out = String::with_capacity(self.size_hint + 16 * self.variables.len());
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Slot { variable, default, quoted } => {
                    let text = values[*variable].as_deref().or(default.as_deref());
                    match (text, quoted) {
                        (Some(text), true) => escape_into(&mut out, text),
                        (Some(text), false) => out.push_str(text),
                        (None, false) if self.json => out.push_str("null"),
                        (None, _) => {}
                    }
                }
            }
        }
        if self.json
            && let Err(e) = serde_json::from_str::<IgnoredAny>(&out)
        {
            return Err(format!(
                "transform: the rendered body is not JSON ({e}); a string variable outside quotes is inserted \
                 unquoted (variables: {})",
                self.variables.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(out)
    }
}

impl Source {
    /// The variable's text for `event`, `None` when it has no value.
    fn text<'a>(&'a self, event: &'a Value) -> Option<Cow<'a, str>> {
        let value = match self {
            Self::Constant(text) => return Some(Cow::Borrowed(text)),
            Self::Path(path) => {
                let nodes = path.query(event);
                match nodes.len() {
                    0 => return None,
                    1 => nodes.first()?,
                    _ => return Some(Cow::Owned(Value::Array(nodes.into_iter().cloned().collect()).to_string())),
                }
            }
        };
        Some(match value {
            Value::String(s) => Cow::Borrowed(s),
            other => Cow::Owned(other.to_string()),
        })
    }
}

/// What the template lexer finds.
enum Lexed {
    Text(String),
    Slot { name: String, default: Option<String>, quoted: bool },
}

/// Splits a template into text and placeholders; in a JSON template, notes which placeholders
/// sit inside string literals.
fn lex(field: &str, template: &str, json: bool) -> Result<Vec<Lexed>> {
    let mut out = Vec::new();
    let mut text = String::new();
    let (mut in_string, mut escaped) = (false, false);
    let mut at = 0;
    while at < template.len() {
        let rest = &template[at..];
        if rest.starts_with("${") {
            let (name, default, len) = placeholder(rest).map_err(|why| {
                Error::invalid(
                    field,
                    format!("the placeholder at byte {at} {why}; write ${{name}} or ${{name!\"default\"}}"),
                )
            })?;
            out.push(Lexed::Text(std::mem::take(&mut text)));
            out.push(Lexed::Slot { name, default, quoted: json && in_string });
            escaped = false;
            at += len;
            continue;
        }
        let c = rest.chars().next().unwrap_or_default();
        if json {
            match (in_string, escaped, c) {
                (true, true, _) => escaped = false,
                (true, false, '\\') => escaped = true,
                (true, false, '"') | (false, _, '"') => in_string = !in_string,
                _ => {}
            }
        }
        text.push(c);
        at += c.len_utf8();
    }
    out.push(Lexed::Text(text));
    out.retain(|l| !matches!(l, Lexed::Text(t) if t.is_empty()));
    Ok(out)
}

/// Reads the placeholder at the start of `s` (which starts with `${`): its name, its default
/// and its length in bytes; or what is wrong with it.
fn placeholder(s: &str) -> Result<(String, Option<String>, usize), String> {
    let body = &s[2..];
    let name_len =
        body.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))).unwrap_or(body.len());
    let name = &body[..name_len];
    if name.is_empty() {
        return Err("has no variable name".into());
    }
    let rest = &body[name_len..];
    let (default, used) = if rest.starts_with('}') {
        (None, 1)
    } else if rest.starts_with("!}") {
        (Some(String::new()), 2)
    } else if let Some(literal) = rest.strip_prefix("!\"") {
        let end = string_end(literal).ok_or("has an unterminated default")?;
        let quoted = &rest[1..end + 3];
        let default: String =
            serde_json::from_str(quoted).map_err(|e| format!("has a default that is not a JSON string ({e})"))?;
        if !rest[end + 3..].starts_with('}') {
            return Err("does not end with } after its default".into());
        }
        (Some(default), end + 4)
    } else {
        return Err(if rest.is_empty() {
            "is not closed".into()
        } else {
            format!("has {:?} after its name", &rest[..1])
        });
    };
    Ok((name.to_owned(), default, 2 + name_len + used))
}

/// Where the string literal whose body starts `s` ends: the byte offset of its closing quote.
fn string_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Appends `s` escaped as the inside of a JSON string literal.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}
