//! Channel rules: unique names per project, the system `default` channel (present in every
//! project, read-only), and no deletion of a channel that subscriptions are bound to.

use serde_json::json;

use super::Engine;
use super::list::{ListQuery, Listable, Listing, load_all, page};
use crate::error::{Error, Result};
use crate::keys;
use crate::model::channel::{Channel, ChannelSpec, ChannelUpdate, DEFAULT_NAME, default_channel_id};
use crate::model::{ProviderType, new_id, validate};
use crate::ports::{Cond, Item, StoreError, Write};

/// Most custom channels per project.
pub const MAX_CHANNELS: usize = 100;
/// Largest channel policy, serialized.
const MAX_POLICY_BYTES: usize = 8 * 1024;

impl Listable for Channel {
    fn name(&self) -> &str {
        &self.name
    }
    fn created_ms(&self) -> i64 {
        self.created_ms
    }
    fn updated_ms(&self) -> i64 {
        self.updated_ms
    }
}

/// Filters specific to listing channels.
#[derive(Clone, Debug, Default)]
pub struct ChannelFilter {
    /// Only this provider type.
    pub provider_type: Option<ProviderType>,
    /// Only this enterprise project.
    pub enterprise_project_id: Option<String>,
}

fn channel_item(c: &Channel) -> Result<Item> {
    Ok(Item::new(keys::project(&c.project), keys::channel(&c.id), serde_json::to_value(c)?))
}

fn name_claim(c: &Channel) -> Item {
    Item::new(keys::project(&c.project), keys::channel_name(&c.name), json!({ "id": c.id }))
}

fn check_policy(policy: Option<&serde_json::Value>) -> Result<()> {
    if let Some(p) = policy.filter(|p| !p.is_null()) {
        validate::object_size("policy", p, MAX_POLICY_BYTES)?;
    }
    Ok(())
}

fn check_enterprise_project(id: Option<&str>) -> Result<()> {
    match id {
        Some(id) if id.len() > 64 => Err(Error::invalid("enterprise_project_id", "must be at most 64 characters")),
        _ => Ok(()),
    }
}

impl Engine {
    /// Makes sure `project`'s `default` channel exists.
    pub async fn ensure_default_channel(&self, project: &str) -> Result<()> {
        if self.known_defaults().lock().contains(project) {
            return Ok(());
        }
        let channel = Channel::default_for(project, self.now_ms());
        if self.store().get(&keys::project(project), &keys::channel(&channel.id)).await?.is_none() {
            let writes = vec![
                Write::Put { item: channel_item(&channel)?, cond: Cond::Absent },
                Write::Put { item: name_claim(&channel), cond: Cond::Absent },
            ];
            match self.store().transact(writes).await {
                Ok(_) | Err(StoreError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.known_defaults().lock().insert(project.to_owned());
        Ok(())
    }

    /// Reads a channel (with its store version).
    pub async fn channel(&self, project: &str, id: &str) -> Result<(Channel, u64)> {
        if id == default_channel_id(project) {
            self.ensure_default_channel(project).await?;
        }
        let item = self.store().get(&keys::project(project), &keys::channel(id)).await?;
        let item = item.ok_or_else(|| Error::not_found("channel", id))?;
        Ok((item.decode()?, item.version))
    }

    /// Creates a custom channel.
    pub async fn create_channel(&self, project: &str, spec: ChannelSpec) -> Result<Channel> {
        let name = spec.name.ok_or_else(|| Error::invalid("name", "is required"))?;
        validate::name("name", &name)?;
        if name.eq_ignore_ascii_case(DEFAULT_NAME) {
            return Err(Error::invalid("name", "default is the system channel's name"));
        }
        let description = spec.description.unwrap_or_default();
        validate::description("description", &description)?;
        let provider_type = match spec.provider_type.as_deref() {
            None | Some("CUSTOM") => ProviderType::Custom,
            Some("INTERNAL") => ProviderType::Internal,
            Some(other) => {
                return Err(Error::invalid("provider_type", format!("must be CUSTOM or INTERNAL, not {other}")));
            }
        };
        check_policy(spec.policy.as_ref())?;
        check_enterprise_project(spec.enterprise_project_id.as_deref())?;
        self.ensure_default_channel(project).await?;
        let existing: Vec<Channel> = load_all(self.store(), &keys::project(project), keys::CHANNEL_PREFIX).await?;
        if existing.iter().filter(|c| !c.is_default()).count() >= MAX_CHANNELS {
            return Err(Error::QuotaExceeded { kind: "CHANNEL", limit: MAX_CHANNELS as u64 });
        }
        let now = self.now_ms();
        let channel = Channel {
            id: new_id(),
            project: project.to_owned(),
            name,
            description,
            provider_type,
            policy: spec.policy.filter(|p| !p.is_null()),
            enterprise_project_id: spec.enterprise_project_id,
            created_ms: now,
            updated_ms: now,
            subscriptions: 0,
            routes_rev: 0,
        };
        let writes = vec![
            Write::Put { item: channel_item(&channel)?, cond: Cond::Absent },
            Write::Put { item: name_claim(&channel), cond: Cond::Absent },
        ];
        match self.store().transact(writes).await {
            Ok(_) => Ok(channel),
            Err(StoreError::ConditionFailed { .. }) => Err(Error::NameTaken { kind: "channel", name: channel.name }),
            Err(e) => Err(e.into()),
        }
    }

    /// Lists a project's channels, the `default` one included.
    pub async fn list_channels(
        &self,
        project: &str,
        filter: &ChannelFilter,
        q: &ListQuery,
    ) -> Result<Listing<Channel>> {
        self.ensure_default_channel(project).await?;
        let mut all: Vec<Channel> = load_all(self.store(), &keys::project(project), keys::CHANNEL_PREFIX).await?;
        if let Some(pt) = filter.provider_type {
            all.retain(|c| c.provider_type == pt);
        }
        if let Some(ep) = &filter.enterprise_project_id {
            all.retain(|c| c.enterprise_project_id.as_deref() == Some(ep));
        }
        Ok(page(all, q))
    }

    /// Updates a custom channel's description, policy and enterprise project.
    pub async fn update_channel(&self, project: &str, id: &str, update: ChannelUpdate) -> Result<Channel> {
        if let Some(d) = &update.description {
            validate::description("description", d)?;
        }
        check_policy(update.policy.as_ref())?;
        check_enterprise_project(update.enterprise_project_id.as_deref())?;
        loop {
            let (mut channel, version) = self.channel(project, id).await?;
            if channel.is_default() {
                return Err(Error::ReadOnly {
                    kind: "channel",
                    id: id.to_owned(),
                    reason: "it is the system channel".into(),
                });
            }
            if let Some(d) = &update.description {
                channel.description.clone_from(d);
            }
            if let Some(p) = &update.policy {
                channel.policy = (!p.is_null()).then(|| p.clone());
            }
            if let Some(ep) = &update.enterprise_project_id {
                channel.enterprise_project_id = Some(ep.clone());
            }
            channel.updated_ms = self.now_ms();
            match self.store().put(channel_item(&channel)?, Cond::Version(version)).await {
                Ok(()) => return Ok(channel),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Deletes a custom channel that no subscription is bound to.
    pub async fn delete_channel(&self, project: &str, id: &str) -> Result<()> {
        let (channel, version) = self.channel(project, id).await?;
        if channel.is_default() {
            return Err(Error::ReadOnly {
                kind: "channel",
                id: id.to_owned(),
                reason: "it is the system channel".into(),
            });
        }
        if channel.subscriptions > 0 {
            return Err(Error::InUse {
                kind: "channel",
                id: id.to_owned(),
                reason: format!("{} subscription(s) are bound to it", channel.subscriptions),
            });
        }
        let pk = keys::project(project);
        let writes = vec![
            Write::Delete { pk: pk.clone(), sk: keys::channel(id), cond: Cond::Version(version) },
            Write::Delete { pk, sk: keys::channel_name(&channel.name), cond: Cond::Any },
        ];
        match self.store().transact(writes).await {
            Ok(_) => Ok(()),
            // A subscription was bound meanwhile (it bumps the channel's version).
            Err(StoreError::ConditionFailed { .. }) => Err(Error::InUse {
                kind: "channel",
                id: id.to_owned(),
                reason: "it changed while being deleted".into(),
            }),
            Err(e) => Err(e.into()),
        }
    }
}
