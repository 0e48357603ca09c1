//! Subscription rules: exactly one source with a valid filter, one to [`MAX_TARGETS`] targets with
//! valid kinds ([`super::targets`]), transforms and retry counts (0 to [`MAX_RETRY_TIMES`], default
//! [`DEFAULT_RETRY_TIMES`]); unique names per project; source and target ids unique across the
//! whole service (client-chosen or generated); full-replace updates. The sources, targets and
//! status of an existing subscription are changed one at a time by [`super::subscription_parts`].
//!
//! Every write of a subscription also rewrites its channel in the same transaction: the channel
//! counts its subscriptions (so it cannot be deleted while in use) and carries the revision that
//! tells routers to reload.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Value, json};
use url::Url;

use super::Engine;
use super::auth::Principal;
use super::filter::Filter;
use super::list::{ListQuery, Listable, Listing, load_all, page};
use super::secrets::{OpenError, Sealer};
use super::signing::SigningSecret;
use super::targets::{Writer, at, signing_secret_context};
use super::transform::CompiledTransform;
use crate::error::{Error, Result};
use crate::keys;
use crate::model::channel::Channel;
use crate::model::subscription::{
    SourceSpec, Subscription, SubscriptionSource, SubscriptionSpec, SubscriptionStatus, SubscriptionTarget,
    SubscriptionUpdate, TargetSpec, Transform, TransformKind, TransformSpec,
};
use crate::model::validate::{self, DEFAULT_RETRY_TIMES, MAX_DETAIL_BYTES, MAX_RETRY_TIMES, MAX_TARGETS};
use crate::model::{ProviderType, new_id};
use crate::ports::{AddressPolicy, Cond, Item, StoreError, Write};

/// Text shown instead of a secret.
pub const MASK: &str = "******";

impl Listable for Subscription {
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

/// Filters specific to listing subscriptions.
#[derive(Clone, Debug, Default)]
pub struct SubscriptionFilter {
    /// Only subscriptions of this channel.
    pub channel_id: Option<String>,
    /// Only subscriptions with a target using this connection.
    pub connection_id: Option<String>,
}

impl Subscription {
    /// The subscription as it may be shown: secrets masked.
    pub fn redacted(mut self) -> Self {
        for t in &mut self.targets {
            t.redact();
        }
        self
    }

    /// Every source and target id the subscription holds, in a stable order.
    fn ids(&self) -> BTreeSet<(&'static str, String)> {
        let sources = self.sources.iter().map(|s| ("source", s.id.clone()));
        sources.chain(self.targets.iter().map(|t| ("target", t.id.clone()))).collect()
    }
}

impl SubscriptionTarget {
    /// The target's own signing secret, if it has one. It is stored sealed to the project and
    /// target ([`signing_secret_context`]); a value stored before sealing existed is read as is.
    pub fn signing_secret(&self, project: &str, sealer: &Sealer) -> Result<Option<SigningSecret>, OpenError> {
        let Some(text) = self.detail.get("secret").and_then(Value::as_str) else { return Ok(None) };
        let plain = if Sealer::is_sealed(text) {
            sealer.open(&signing_secret_context(project, &self.id), text)?
        } else {
            text.to_owned()
        };
        SigningSecret::parse(&plain).map(Some).ok_or(OpenError)
    }
}

fn required<T>(field: &str, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| Error::invalid(field, "is required"))
}

fn provider(field: &str, value: Option<String>) -> Result<ProviderType> {
    match required(field, value)?.as_str() {
        "CUSTOM" => Ok(ProviderType::Custom),
        "OFFICIAL" => Ok(ProviderType::Official),
        other => Err(Error::invalid(field, format!("must be CUSTOM or OFFICIAL, not {other}"))),
    }
}

fn detail(field: &str, value: Option<Value>) -> Result<Value> {
    let value = value.filter(|v| !v.is_null()).unwrap_or_else(|| json!({}));
    validate::object_size(field, &value, MAX_DETAIL_BYTES)?;
    Ok(value)
}

fn optional_object(field: &str, value: Option<Value>) -> Result<Option<Value>> {
    match value.filter(|v| !v.is_null()) {
        Some(v) => {
            validate::object_size(field, &v, MAX_DETAIL_BYTES)?;
            Ok(Some(v))
        }
        None => Ok(None),
    }
}

/// A target's transform: its kind, and for `CONSTANT` and `VARIABLE` the value and template that
/// [`CompiledTransform::compile`] accepts (the stored transform is compiled again on delivery).
fn transform(field: &str, spec: Option<TransformSpec>) -> Result<Transform> {
    let spec = required(field, spec)?;
    let kind = match required(&format!("{field}.type"), spec.kind)?.as_str() {
        "ORIGINAL" => TransformKind::Original,
        "CONSTANT" => TransformKind::Constant,
        "VARIABLE" => TransformKind::Variable,
        other => {
            return Err(Error::invalid(
                format!("{field}.type"),
                format!("must be ORIGINAL, CONSTANT or VARIABLE, not {other}"),
            ));
        }
    };
    let transform = Transform { kind, value: spec.value.filter(|v| !v.is_empty()), template: spec.template };
    CompiledTransform::compile(field, &transform)?;
    Ok(transform)
}

/// Checks a webhook URL: absolute http(s) with a host, and not an address the policy refuses.
pub(crate) fn check_webhook_url(field: &str, url: &Url, policy: AddressPolicy) -> Result<()> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::target(field, "must be an http or https URL"));
    }
    let refusal = match url.host() {
        None => return Err(Error::target(field, "must name a host")),
        Some(url::Host::Ipv4(ip)) => policy.refusal(ip.into()),
        Some(url::Host::Ipv6(ip)) => policy.refusal(ip.into()),
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") => {
            policy.refusal(std::net::Ipv4Addr::LOCALHOST.into())
        }
        Some(url::Host::Domain(_)) => None,
    };
    match refusal {
        Some(why) => Err(Error::target(field, format!("{why} is not allowed as a target address"))),
        None => Ok(()),
    }
}

impl Engine {
    pub(crate) fn build_source(
        &self,
        field: &str,
        spec: SourceSpec,
        existing: &[SubscriptionSource],
    ) -> Result<SubscriptionSource> {
        let now = self.now_ms();
        let name = required(&at(field, "name"), spec.name)?;
        if name.is_empty() || name.len() > validate::MAX_NAME_LEN {
            return Err(Error::invalid(at(field, "name"), "must be 1 to 128 characters"));
        }
        let provider_type = provider(&at(field, "provider_type"), spec.provider_type)?;
        let detail = detail(&at(field, "detail"), spec.detail)?;
        let filter = required(&at(field, "filter"), spec.filter)?;
        Filter::compile(&at(field, "filter"), &filter)?;
        if let Some(id) = &spec.id {
            validate::client_id(&at(field, "id"), id)?;
        }
        let previous = spec.id.as_ref().and_then(|id| existing.iter().find(|s| &s.id == id));
        Ok(SubscriptionSource {
            id: spec.id.unwrap_or_else(new_id),
            name,
            provider_type,
            detail,
            filter,
            created_ms: previous.map_or(now, |p| p.created_ms),
            updated_ms: now,
        })
    }

    pub(crate) async fn build_target(
        &self,
        w: &Writer<'_>,
        field: &str,
        spec: TargetSpec,
        existing: &[SubscriptionTarget],
    ) -> Result<SubscriptionTarget> {
        let now = self.now_ms();
        let name = required(&at(field, "name"), spec.name)?;
        let provider_type = provider(&at(field, "provider_type"), spec.provider_type)?;
        let retry_times = spec.retry_times.unwrap_or(DEFAULT_RETRY_TIMES);
        if retry_times > MAX_RETRY_TIMES {
            return Err(Error::invalid(at(field, "retry_times"), format!("must be from 0 to {MAX_RETRY_TIMES}")));
        }
        if let Some(id) = &spec.id {
            validate::client_id(&at(field, "id"), id)?;
        }
        let previous = spec.id.as_ref().and_then(|id| existing.iter().find(|t| &t.id == id));
        let mut detail = detail(&at(field, "detail"), spec.detail)?;
        // A masked secret sent back unchanged keeps the stored (sealed) one.
        let mut kept_secret = false;
        if detail.get("secret").and_then(Value::as_str) == Some(MASK)
            && let Some(kept) = previous.and_then(|p| p.detail.get("secret")).cloned()
        {
            detail["secret"] = kept;
            kept_secret = true;
        }
        let dead_letter_queue = optional_object(&at(field, "dead_letter_queue"), spec.dead_letter_queue)?
            .filter(|d| d.as_object().is_some_and(|o| !o.is_empty()));
        let mut target = SubscriptionTarget {
            id: spec.id.unwrap_or_else(new_id),
            name,
            provider_type,
            connection_id: spec.connection_id.filter(|c| !c.is_empty()),
            detail,
            kafka_detail: optional_object(&at(field, "kafka_detail"), spec.kafka_detail)?,
            smn_detail: optional_object(&at(field, "smn_detail"), spec.smn_detail)?,
            eg_detail: optional_object(&at(field, "eg_detail"), spec.eg_detail)?,
            apigw_detail: optional_object(&at(field, "apigw_detail"), spec.apigw_detail)?,
            rocketmq_detail: optional_object(&at(field, "rocketmq_detail"), spec.rocketmq_detail)?,
            retry_times,
            transform: transform(&at(field, "transform"), spec.transform)?,
            dead_letter_queue,
            granted_by: None,
            created_ms: previous.map_or(now, |p| p.created_ms),
            updated_ms: now,
        };
        self.check_target(w, field, &mut target, previous).await?;
        if !kept_secret && let Some(secret) = target.detail.get("secret") {
            let plain = secret.as_str().filter(|s| SigningSecret::parse(s).is_some()).ok_or_else(|| {
                Error::invalid(at(field, "detail.secret"), "must be whsec_ followed by 24 to 64 bytes in base64")
            })?;
            target.detail["secret"] = json!(w.sealer.seal(&signing_secret_context(w.project, &target.id), plain));
        }
        Ok(target)
    }

    fn build_sources(
        &self,
        specs: Vec<SourceSpec>,
        existing: &[SubscriptionSource],
    ) -> Result<Vec<SubscriptionSource>> {
        if specs.len() != 1 {
            return Err(Error::invalid("sources", "exactly one source is supported"));
        }
        specs.into_iter().enumerate().map(|(i, s)| self.build_source(&format!("sources[{i}]"), s, existing)).collect()
    }

    async fn build_targets(
        &self,
        w: &Writer<'_>,
        specs: Vec<TargetSpec>,
        existing: &[SubscriptionTarget],
    ) -> Result<Vec<SubscriptionTarget>> {
        if specs.is_empty() || specs.len() > MAX_TARGETS {
            return Err(Error::invalid("targets", format!("must hold 1 to {MAX_TARGETS} targets")));
        }
        let mut targets = Vec::with_capacity(specs.len());
        for (i, t) in specs.into_iter().enumerate() {
            targets.push(self.build_target(w, &format!("targets[{i}]"), t, existing).await?);
        }
        let mut seen = HashSet::new();
        if let Some((i, t)) = targets.iter().enumerate().find(|(_, t)| !seen.insert(&t.id)) {
            return Err(Error::invalid(format!("targets[{i}].id"), format!("{} appears twice", t.id)));
        }
        Ok(targets)
    }

    /// Reads a subscription (with its store version).
    pub async fn subscription(&self, project: &str, id: &str) -> Result<(Subscription, u64)> {
        let item = self.store().get(&keys::project(project), &keys::subscription(id)).await?;
        let item = item.ok_or_else(|| Error::not_found("subscription", id))?;
        Ok((item.decode()?, item.version))
    }

    /// Creates a subscription on behalf of `caller`.
    pub async fn create_subscription(
        &self,
        caller: &Principal,
        project: &str,
        spec: SubscriptionSpec,
    ) -> Result<Subscription> {
        let name = required("name", spec.name)?;
        validate::name("name", &name)?;
        let description = spec.description.unwrap_or_default();
        validate::description("description", &description)?;
        let channel_id = required("channel_id", spec.channel_id)?;
        let sources = self.build_sources(required("sources", spec.sources)?, &[])?;
        let w = Writer { principal: caller, project, channel_id: &channel_id, sealer: self.sealer().await? };
        let targets = self.build_targets(&w, required("targets", spec.targets)?, &[]).await?;
        let now = self.now_ms();
        let subscription = Subscription {
            id: new_id(),
            project: project.to_owned(),
            name,
            description,
            channel_id,
            status: SubscriptionStatus::Created,
            status_reason: None,
            resumed_ms: 0,
            sources,
            targets,
            created_ms: now,
            updated_ms: now,
        };
        loop {
            let (channel, version) = self.channel(project, &subscription.channel_id).await?;
            let mut writes = vec![
                Write::Put { item: self.subscription_item(&subscription)?, cond: Cond::Absent },
                Write::Put {
                    item: Item::new(
                        keys::project(project),
                        keys::subscription_name(&subscription.name),
                        json!({ "id": subscription.id }),
                    ),
                    cond: Cond::Absent,
                },
                self.bump_channel(channel, version, 1)?,
            ];
            let claims: Vec<_> = subscription.ids().into_iter().collect();
            writes.extend(claims.iter().map(|(kind, id)| claim(kind, id, &subscription.id)));
            match self.store().transact(writes).await {
                Ok(_) => return Ok(subscription),
                Err(StoreError::ConditionFailed { index: 1 }) => {
                    return Err(Error::NameTaken { kind: "subscription", name: subscription.name });
                }
                Err(StoreError::ConditionFailed { index: 2 }) => continue,
                Err(StoreError::ConditionFailed { index }) => return Err(taken_id(&claims, index - 3)),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Lists a project's subscriptions.
    pub async fn list_subscriptions(
        &self,
        project: &str,
        filter: &SubscriptionFilter,
        q: &ListQuery,
    ) -> Result<Listing<Subscription>> {
        let mut all: Vec<Subscription> =
            load_all(self.store(), &keys::project(project), keys::SUBSCRIPTION_PREFIX).await?;
        if let Some(c) = &filter.channel_id {
            all.retain(|s| &s.channel_id == c);
        }
        if let Some(c) = &filter.connection_id {
            all.retain(|s| s.targets.iter().any(|t| t.connection_id.as_ref() == Some(c)));
        }
        Ok(page(all, q))
    }

    /// Replaces a subscription's description, sources and targets (each only when given) on behalf
    /// of `caller`.
    pub async fn update_subscription(
        &self,
        caller: &Principal,
        project: &str,
        id: &str,
        update: SubscriptionUpdate,
    ) -> Result<Subscription> {
        if let Some(d) = &update.description {
            validate::description("description", d)?;
        }
        let sealer = self.sealer().await?;
        loop {
            let (current, version) = self.subscription(project, id).await?;
            let mut next = current.clone();
            if let Some(d) = &update.description {
                next.description.clone_from(d);
            }
            if let Some(sources) = &update.sources {
                next.sources = self.build_sources(sources.clone(), &current.sources)?;
            }
            if let Some(targets) = &update.targets {
                let w = Writer { principal: caller, project, channel_id: &current.channel_id, sealer: sealer.clone() };
                next.targets = self.build_targets(&w, targets.clone(), &current.targets).await?;
            }
            next.updated_ms = self.now_ms();
            match self.replace_subscription(&current, version, &next).await {
                Ok(()) => return Ok(next),
                Err(Retry::Again) => continue,
                Err(Retry::Fail(e)) => return Err(e),
            }
        }
    }

    /// Deletes a subscription.
    pub async fn delete_subscription(&self, project: &str, id: &str) -> Result<()> {
        loop {
            let (sub, version) = self.subscription(project, id).await?;
            let pk = keys::project(project);
            let mut writes = vec![
                Write::Delete { pk: pk.clone(), sk: keys::subscription(id), cond: Cond::Version(version) },
                Write::Delete { pk, sk: keys::subscription_name(&sub.name), cond: Cond::Any },
            ];
            match self.channel(project, &sub.channel_id).await {
                Ok((channel, cv)) => writes.push(self.bump_channel(channel, cv, -1)?),
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            writes.extend(sub.ids().iter().map(|(kind, id)| release(kind, id)));
            match self.store().transact(writes).await {
                Ok(_) => {
                    self.delivery_cache().forget(project, id);
                    return Ok(());
                }
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Writes `next` over `current` (read at `version`), moving id claims and the channel revision.
    pub(crate) async fn replace_subscription(
        &self,
        current: &Subscription,
        version: u64,
        next: &Subscription,
    ) -> Result<(), Retry> {
        let project = &current.project;
        let (channel, cv) = self.channel(project, &current.channel_id).await.map_err(Retry::Fail)?;
        let mut writes = vec![
            Write::Put { item: self.subscription_item(next).map_err(Retry::Fail)?, cond: Cond::Version(version) },
            self.bump_channel(channel, cv, 0).map_err(Retry::Fail)?,
        ];
        let (before, after) = (current.ids(), next.ids());
        let added: Vec<_> = after.difference(&before).cloned().collect();
        writes.extend(added.iter().map(|(kind, id)| claim(kind, id, &next.id)));
        writes.extend(before.difference(&after).map(|(kind, id)| release(kind, id)));
        match self.store().transact(writes).await {
            Ok(_) => {
                self.delivery_cache().forget(project, &next.id);
                Ok(())
            }
            Err(StoreError::ConditionFailed { index: 0 | 1 }) => Err(Retry::Again),
            Err(StoreError::ConditionFailed { index }) => Err(Retry::Fail(taken_id(&added, index - 2))),
            Err(e) => Err(Retry::Fail(e.into())),
        }
    }

    fn subscription_item(&self, s: &Subscription) -> Result<Item> {
        Ok(Item::new(keys::project(&s.project), keys::subscription(&s.id), serde_json::to_value(s)?))
    }

    /// The channel rewritten with `delta` more subscriptions and a new routing revision.
    fn bump_channel(&self, mut channel: Channel, version: u64, delta: i64) -> Result<Write> {
        let count = i64::from(channel.subscriptions) + delta;
        channel.subscriptions = u32::try_from(count.max(0)).unwrap_or(0);
        channel.routes_rev += 1;
        let item =
            Item::new(keys::project(&channel.project), keys::channel(&channel.id), serde_json::to_value(&channel)?);
        Ok(Write::Put { item, cond: Cond::Version(version) })
    }
}

/// Why a replace did not land.
pub(crate) enum Retry {
    /// Something changed meanwhile; read again.
    Again,
    /// It cannot land.
    Fail(Error),
}

fn claim(kind: &str, id: &str, owner: &str) -> Write {
    Write::Put {
        item: Item::new(keys::global_id(kind, id), keys::GLOBAL_ID, json!({ "owner": owner })),
        cond: Cond::Absent,
    }
}

fn release(kind: &str, id: &str) -> Write {
    Write::Delete { pk: keys::global_id(kind, id), sk: keys::GLOBAL_ID.to_owned(), cond: Cond::Any }
}

/// The error for the `index`-th of `claims` having failed.
fn taken_id(claims: &[(&'static str, String)], index: usize) -> Error {
    match claims.get(index) {
        Some((kind, id)) => Error::invalid(format!("{kind}s"), format!("{kind} id {id} is already used")),
        None => Error::internal("a claim failed that was not written"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_checked_against_the_policy() {
        let strict = AddressPolicy::default();
        let ok = |u: &str, p| check_webhook_url("url", &Url::parse(u).unwrap(), p);
        assert!(ok("https://hooks.example.com/x", strict).is_ok());
        for bad in ["http://127.0.0.1/x", "http://localhost:8080/", "http://10.0.0.2/", "http://169.254.169.254/latest"]
        {
            let e = ok(bad, strict).unwrap_err();
            assert!(matches!(e, Error::InvalidTarget { .. }), "{bad}: {e}");
        }
        assert!(ok("ftp://example.com/", strict).is_err());
        let local = AddressPolicy { allow_loopback: true, allow_private: false };
        assert!(ok("http://127.0.0.1:9000/hook", local).is_ok());
        assert!(ok("http://localhost:9000/hook", local).is_ok());
        assert!(ok("http://10.0.0.2/", local).is_err());
    }
}
