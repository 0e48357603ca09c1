//! A client of Switchyard's own watch APIs, behind `switchyard watch`: follows a resource stream
//! (the CMDB resource watch) or a channel (pull delivery), and keeps its cursor in a state file so
//! that a restarted follower resumes exactly where it stopped. A cursor that has expired is an
//! error, never a silent restart.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

/// What to follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A tenant's change events of one resource kind.
    Resource {
        /// Supplier account.
        tenant: String,
        /// Resource kind (`host`, `biz`, …).
        kind: String,
        /// Detail fields to keep (required for `host`).
        fields: Vec<String>,
        /// Event types to keep (empty: all).
        types: Vec<String>,
        /// Model of instances to keep.
        sub_resource: Option<String>,
    },
    /// A channel's events.
    Channel {
        /// Project.
        project: String,
        /// Channel id.
        channel: String,
    },
}

/// A follower of one target.
pub struct Follower {
    client: reqwest::Client,
    base: String,
    token: String,
    target: Target,
    state: PathBuf,
    cursor: Option<String>,
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The saved cursor is older than the events kept: events were missed.
    #[error("the saved cursor has expired ({0}); delete {1} to follow from now")]
    Expired(String, String),
    /// The service refused the request.
    #[error("the service refused the watch: {0}")]
    Refused(String),
    /// The service could not be reached or answered nonsense.
    #[error("watch request failed: {0}")]
    Transport(String),
}

impl Follower {
    /// A follower of `target` at `base` (e.g. `http://127.0.0.1:8080`), resuming from the cursor
    /// saved in `state` if there is one.
    pub fn new(base: &str, token: &str, target: Target, state: PathBuf) -> anyhow::Result<Self> {
        let cursor = match std::fs::read_to_string(&state) {
            Ok(text) => Some(text.trim().to_owned()).filter(|c| !c.is_empty()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        Ok(Self { client, base: base.trim_end_matches('/').to_owned(), token: token.to_owned(), target, state, cursor })
    }

    /// The cursor the next poll starts from.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// One watch call: the events that came (possibly none, after the server's wait). The new
    /// position is kept in memory; [`Follower::save`] makes it durable.
    pub async fn poll(&mut self) -> Result<Vec<Value>, FollowError> {
        let transport = |e: reqwest::Error| FollowError::Transport(e.to_string());
        match &self.target {
            Target::Resource { tenant, kind, fields, types, sub_resource } => {
                let mut body = json!({
                    "bk_supplier_account": tenant, "bk_fields": fields, "bk_event_types": types,
                });
                if let Some(c) = &self.cursor {
                    body["bk_cursor"] = json!(c);
                }
                if let Some(m) = sub_resource {
                    body["bk_filter"] = json!({ "bk_sub_resource": m });
                }
                let url = format!("{}/api/v3/event/watch/resource/{kind}", self.base);
                let answer: Value = self
                    .client
                    .post(url)
                    .header("X-Auth-Token", &self.token)
                    .json(&body)
                    .send()
                    .await
                    .map_err(transport)?
                    .json()
                    .await
                    .map_err(transport)?;
                if answer["result"] != true {
                    let message = answer["message"].as_str().unwrap_or("no message").to_owned();
                    if answer["code"] == 1_103_007 {
                        return Err(FollowError::Expired(message, self.state.display().to_string()));
                    }
                    return Err(FollowError::Refused(format!("{} {message}", answer["code"])));
                }
                let events = answer["data"]["bk_events"].as_array().cloned().unwrap_or_default();
                if let Some(last) = events.last().and_then(|e| e["bk_cursor"].as_str()) {
                    self.cursor = Some(last.to_owned());
                }
                Ok(if answer["data"]["bk_watched"] == true { events } else { Vec::new() })
            }
            Target::Channel { project, channel } => {
                let mut url = url::Url::parse(&format!("{}/v1/{project}/channels/{channel}/events", self.base))
                    .map_err(|e| FollowError::Transport(e.to_string()))?;
                url.query_pairs_mut().append_pair("wait", "20");
                if let Some(c) = &self.cursor {
                    url.query_pairs_mut().append_pair("cursor", c);
                }
                let response =
                    self.client.get(url).header("X-Auth-Token", &self.token).send().await.map_err(transport)?;
                let status = response.status();
                let answer: Value = response.json().await.map_err(transport)?;
                if !status.is_success() {
                    let message = answer["error_msg"].as_str().unwrap_or("no message").to_owned();
                    if message.contains("older than the events kept") {
                        return Err(FollowError::Expired(message, self.state.display().to_string()));
                    }
                    return Err(FollowError::Refused(format!("{} {message}", answer["error_code"])));
                }
                if let Some(c) = answer["cursor"].as_str() {
                    self.cursor = Some(c.to_owned());
                }
                Ok(answer["events"].as_array().cloned().unwrap_or_default())
            }
        }
    }

    /// Saves the current position (atomically: a crash leaves the old or the new one).
    pub fn save(&self) -> std::io::Result<()> {
        let Some(cursor) = &self.cursor else { return Ok(()) };
        if let Some(dir) = self.state.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let temporary = self.state.with_extension("tmp");
        std::fs::write(&temporary, cursor)?;
        std::fs::rename(&temporary, &self.state)
    }
}
