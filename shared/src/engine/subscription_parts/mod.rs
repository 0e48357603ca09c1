//! One part of a subscription at a time: its source (UpdateSubscriptionSource), its targets
//! (Create/Update/ShowDetailOf/DeleteSubscriptionTarget) and its status
//! (ExecuteSubscriptionOperation, and `ERROR` when a delivery finds a target unusable).
//!
//! Each change rewrites the whole subscription in one transaction with its channel's routing
//! revision and its id claims (see [`super::subscriptions`]), so nothing is half-written and
//! routers reload. Updates replace the part fully: a source or target is rebuilt from the body as
//! if created, keeping its id and creation time (a target's `id` in the body is ignored, as the
//! spec says; a source's must match the path when given). A subscription keeps at least one target.
//!
//! Status operations (`ENABLE`, `DISABLE`, at most [`MAX_OPERATION_IDS`] ids) succeed or fail per
//! subscription. `ENABLE` turns `CREATED`, `DISABLED` and `ERROR` into `ENABLED`; when the
//! subscription was not receiving, it records the instant, and events published before it are never
//! delivered to the subscription. `DISABLE` turns anything but `FROZEN` into `DISABLED`. Enabling
//! an enabled or disabling a disabled subscription succeeds and changes nothing. `FROZEN` is never
//! set by Switchyard and cannot be changed by these operations.

use super::Engine;
use super::auth::Principal;
use super::subscriptions::Retry;
use super::targets::Writer;
use crate::error::{Error, Result};
use crate::model::subscription::{
    SourceSpec, Subscription, SubscriptionSource, SubscriptionStatus, SubscriptionTarget, TargetSpec,
};
use crate::model::validate::MAX_TARGETS;

/// Most subscriptions one ExecuteSubscriptionOperation may name.
pub const MAX_OPERATION_IDS: usize = 10;

/// A status operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Resume deliveries.
    Enable,
    /// Stop deliveries.
    Disable,
}

impl Operation {
    /// Parses the wire name (`ENABLE`, `DISABLE`).
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        match text {
            "ENABLE" => Ok(Self::Enable),
            "DISABLE" => Ok(Self::Disable),
            other => Err(Error::invalid(field, format!("must be ENABLE or DISABLE, not {other:?}"))),
        }
    }
}

/// What a change does to the subscription read at the start of an attempt.
type Change<'a, T> =
    Box<dyn FnMut(Subscription) -> futures::future::BoxFuture<'a, Result<(Subscription, T)>> + Send + 'a>;

impl Engine {
    /// Reads a subscription, applies `change`, and writes the result over it in one transaction,
    /// again from a fresh read when something changed meanwhile. Returns the subscription as
    /// written (as read when `change` changed nothing) and what `change` returned.
    async fn change_subscription<T>(
        &self,
        project: &str,
        id: &str,
        mut change: Change<'_, T>,
    ) -> Result<(Subscription, T)> {
        loop {
            let (current, version) = self.subscription(project, id).await?;
            let (mut next, out) = change(current.clone()).await?;
            if next == current {
                return Ok((next, out));
            }
            next.updated_ms = self.now_ms();
            match self.replace_subscription(&current, version, &next).await {
                Ok(()) => return Ok((next, out)),
                Err(Retry::Again) => continue,
                Err(Retry::Fail(e)) => return Err(e),
            }
        }
    }

    /// UpdateSubscriptionSource: replaces one source of a subscription.
    pub async fn update_subscription_source(
        &self,
        project: &str,
        subscription_id: &str,
        source_id: &str,
        mut spec: SourceSpec,
    ) -> Result<SubscriptionSource> {
        if spec.id.as_deref().is_some_and(|id| id != source_id) {
            return Err(Error::invalid("id", format!("must be the path's source id {source_id} when given")));
        }
        spec.id = Some(source_id.to_owned());
        self.change_subscription(
            project,
            subscription_id,
            Box::new(move |current| {
                let spec = spec.clone();
                Box::pin(async move {
                    let index = current.sources.iter().position(|s| s.id == source_id);
                    let index = index.ok_or_else(|| Error::not_found("subscription source", source_id))?;
                    let source = self.build_source("", spec, &current.sources)?;
                    let mut next = current.clone();
                    next.sources[index] = source.clone();
                    Ok((next, source))
                })
            }),
        )
        .await
        .map(|(_, out)| out)
    }

    /// A target of a subscription.
    pub async fn subscription_target(
        &self,
        project: &str,
        subscription_id: &str,
        target_id: &str,
    ) -> Result<SubscriptionTarget> {
        let (subscription, _) = self.subscription(project, subscription_id).await?;
        subscription.target(target_id).cloned().ok_or_else(|| Error::not_found("subscription target", target_id))
    }

    /// CreateSubscriptionTarget: adds a target (its id client-chosen or generated).
    pub async fn create_subscription_target(
        &self,
        caller: &Principal,
        project: &str,
        subscription_id: &str,
        spec: TargetSpec,
    ) -> Result<SubscriptionTarget> {
        let sealer = self.sealer().await?;
        self.change_subscription(
            project,
            subscription_id,
            Box::new(move |current| {
                let (spec, sealer) = (spec.clone(), sealer.clone());
                Box::pin(async move {
                    if current.targets.len() >= MAX_TARGETS {
                        return Err(Error::QuotaExceeded { kind: "subscription target", limit: MAX_TARGETS as u64 });
                    }
                    if let Some(id) = spec.id.as_deref().filter(|id| current.target(id).is_some()) {
                        return Err(Error::invalid("id", format!("target id {id} is already used")));
                    }
                    let w = Writer { principal: caller, project, channel_id: &current.channel_id, sealer };
                    let target = self.build_target(&w, "", spec, &[]).await?;
                    let mut next = current.clone();
                    next.targets.push(target.clone());
                    Ok((next, target))
                })
            }),
        )
        .await
        .map(|(_, out)| out)
    }

    /// UpdateSubscriptionTarget: replaces one target (the body's `id` is ignored).
    pub async fn update_subscription_target(
        &self,
        caller: &Principal,
        project: &str,
        subscription_id: &str,
        target_id: &str,
        mut spec: TargetSpec,
    ) -> Result<SubscriptionTarget> {
        spec.id = Some(target_id.to_owned());
        let sealer = self.sealer().await?;
        self.change_subscription(
            project,
            subscription_id,
            Box::new(move |current| {
                let (spec, sealer) = (spec.clone(), sealer.clone());
                Box::pin(async move {
                    let index = current.targets.iter().position(|t| t.id == target_id);
                    let index = index.ok_or_else(|| Error::not_found("subscription target", target_id))?;
                    let w = Writer { principal: caller, project, channel_id: &current.channel_id, sealer };
                    let target = self.build_target(&w, "", spec, &current.targets).await?;
                    let mut next = current.clone();
                    next.targets[index] = target.clone();
                    Ok((next, target))
                })
            }),
        )
        .await
        .map(|(_, out)| out)
    }

    /// DeleteSubscriptionTarget: removes a target; the last one cannot be removed.
    pub async fn delete_subscription_target(
        &self,
        project: &str,
        subscription_id: &str,
        target_id: &str,
    ) -> Result<()> {
        self.change_subscription(
            project,
            subscription_id,
            Box::new(move |current| {
                Box::pin(async move {
                    if current.target(target_id).is_none() {
                        return Err(Error::not_found("subscription target", target_id));
                    }
                    if current.targets.len() == 1 {
                        return Err(Error::invalid(
                            "target_id",
                            "a subscription keeps at least one target; delete the subscription instead",
                        ));
                    }
                    let mut next = current.clone();
                    next.targets.retain(|t| t.id != target_id);
                    Ok((next, ()))
                })
            }),
        )
        .await
        .map(|(_, out)| out)
    }

    /// Applies a status operation to one subscription.
    pub async fn operate_subscription(&self, project: &str, id: &str, op: Operation) -> Result<Subscription> {
        let now = self.now_ms();
        self.change_subscription(
            project,
            id,
            Box::new(move |current| {
                Box::pin(async move {
                    if current.status == SubscriptionStatus::Frozen {
                        return Err(Error::ReadOnly {
                            kind: "subscription",
                            id: current.id.clone(),
                            reason: "it is FROZEN by the system".into(),
                        });
                    }
                    let mut next = current.clone();
                    match op {
                        Operation::Enable => {
                            if !current.status.receives_events() {
                                next.resumed_ms = now;
                            }
                            next.status = SubscriptionStatus::Enabled;
                            next.status_reason = None;
                        }
                        Operation::Disable => next.status = SubscriptionStatus::Disabled,
                    }
                    Ok((next, ()))
                })
            }),
        )
        .await
        .map(|(written, ())| written)
    }

    /// ExecuteSubscriptionOperation: the operation on each id, each with its own outcome.
    pub async fn operate_subscriptions(
        &self,
        project: &str,
        ids: &[String],
        op: Operation,
    ) -> Result<Vec<(String, Option<Error>)>> {
        if ids.is_empty() || ids.len() > MAX_OPERATION_IDS {
            return Err(Error::invalid(
                "subscription_ids",
                format!("must name 1 to {MAX_OPERATION_IDS} subscriptions"),
            ));
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push((id.clone(), self.operate_subscription(project, id, op).await.err()));
        }
        Ok(out)
    }

    /// Puts a receiving subscription in `ERROR` (a delivery found a target unusable).
    pub(crate) async fn mark_subscription_error(&self, project: &str, id: &str, reason: &str) -> Result<()> {
        let changed = self
            .change_subscription(
                project,
                id,
                Box::new(move |current| {
                    Box::pin(async move {
                        let mut next = current.clone();
                        if current.status.receives_events() {
                            next.status = SubscriptionStatus::Error;
                            next.status_reason = Some(reason.to_owned());
                        }
                        Ok((next, ()))
                    })
                }),
            )
            .await;
        match changed {
            Ok(_) | Err(Error::NotFound { .. }) => {
                tracing::warn!(project, subscription = id, reason, "subscription put in ERROR");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
