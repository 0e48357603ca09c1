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
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::config::Config;
    use crate::engine::subscriptions::MASK;
    use crate::model::channel::ChannelSpec;
    use crate::model::subscription::SubscriptionSpec;

    async fn engine() -> Engine {
        let mut config = Config { target_queues: vec!["orders-q".into()], ..Config::default() };
        config.delivery.address_policy.allow_loopback = true;
        Engine::open(config).await.unwrap()
    }

    async fn channel(engine: &Engine, project: &str, name: &str) -> String {
        engine
            .create_channel(project, ChannelSpec { name: Some(name.into()), ..ChannelSpec::default() })
            .await
            .unwrap()
            .id
    }

    fn spec(channel: &str, name: &str, target: Value) -> SubscriptionSpec {
        serde_json::from_value(json!({
            "name": name, "channel_id": channel,
            "sources": [{ "name": "shop", "provider_type": "CUSTOM", "filter": {} }],
            "targets": [target],
        }))
        .unwrap()
    }

    fn http(headers: Value) -> Value {
        json!({ "name": "HTTP", "provider_type": "CUSTOM", "transform": { "type": "ORIGINAL" },
                "apigw_detail": { "url": "http://127.0.0.1:9/h", "invocation_http_parameters": { "header_parameters": headers } } })
    }

    fn eg(project: &str, channel: &str) -> Value {
        json!({ "name": "EG", "provider_type": "OFFICIAL", "transform": { "type": "ORIGINAL" },
                "eg_detail": { "target_project_id": project, "target_channel_id": channel, "target_region": "local" } })
    }

    fn sqs(queue: &str) -> Value {
        json!({ "name": "SQS", "provider_type": "OFFICIAL", "transform": { "type": "ORIGINAL" }, "detail": { "queue_url": queue } })
    }

    #[tokio::test]
    async fn invalid_targets_are_refused_naming_the_field() {
        let engine = engine().await;
        let ch = channel(&engine, "p1", "orders").await;
        let other = channel(&engine, "p2", "elsewhere").await;
        let mut no_detail = http(json!([]));
        no_detail.as_object_mut().unwrap().remove("apigw_detail");
        let mut kafka_dlq = sqs("orders-q");
        kafka_dlq["dead_letter_queue"] = json!({ "type": "KAFKA", "topic": "t" });
        let mut unknown_dlq = sqs("orders-q");
        unknown_dlq["dead_letter_queue"] = json!({ "type": "SQS", "topic": "nope" });
        let mut cross_region = eg("p2", &other);
        cross_region["eg_detail"]["cross_region"] = json!(true);
        let cases: Vec<(Value, &str)> = vec![
            (no_detail, "targets[0].apigw_detail: is required for HTTP targets"),
            (
                http(json!([{ "key": "Content-Type", "value": "x" }])),
                "targets[0].apigw_detail.invocation_http_parameters.header_parameters[0].key: Content-Type is set by the delivery",
            ),
            (
                http(json!([{ "key": "a", "value": "1" }, { "key": "A", "value": "2" }])),
                "targets[0].apigw_detail.invocation_http_parameters.header_parameters[1].key: A appears twice",
            ),
            (
                http(json!([{ "key": "x", "value": "a\r\nb: c" }])),
                "targets[0].apigw_detail.invocation_http_parameters.header_parameters[0].value: ",
            ),
            (
                http(json!([{ "key": "x", "value": MASK, "is_value_secret": true }])),
                "targets[0].apigw_detail.invocation_http_parameters.header_parameters[0].value: ****** keeps a stored secret",
            ),
            (
                http(json!("nope")),
                "targets[0].apigw_detail.invocation_http_parameters.header_parameters: must be a list",
            ),
            (eg("p2", ""), "targets[0].eg_detail.target_channel_id: is required"),
            (eg("p2", "missing"), "targets[0].eg_detail.target_channel_id: channel missing not found in project p2"),
            (eg("p1", &ch), "targets[0].eg_detail.target_channel_id: must not be the subscription's own channel"),
            (eg("bad#project", "x"), "targets[0].eg_detail.target_project_id: "),
            (cross_region, "targets[0].eg_detail.cross_region: cross-region forwarding is not supported"),
            (
                json!({ "name": "EG", "provider_type": "CUSTOM", "transform": { "type": "ORIGINAL" } }),
                "targets[0].name: target kind EG (CUSTOM) is not supported; use WEBHOOK (CUSTOM), HTTP (CUSTOM), EG (OFFICIAL), SQS (OFFICIAL)",
            ),
            (sqs("nope"), "targets[0].detail.queue_url: queue nope is not declared"),
            (sqs("delivery"), "targets[0].detail.queue_url: delivery is one of Switchyard's own queues"),
            (sqs(""), "targets[0].detail.queue_url: is required"),
            (kafka_dlq, "targets[0].dead_letter_queue.type: must be SQS"),
            (unknown_dlq, "targets[0].dead_letter_queue.topic: queue nope is not declared"),
        ];
        for (target, message) in cases {
            let e = engine.create_subscription(&Principal::Operator, "p1", spec(&ch, "s", target.clone())).await;
            let e = e.unwrap_err().to_string();
            assert!(e.starts_with(message), "{target}: {e}");
        }
        // A project's token may not forward into another project; the operator may.
        let project_token = Principal::Project("p1".into());
        let e = engine.create_subscription(&project_token, "p1", spec(&ch, "s", eg("p2", &other))).await.unwrap_err();
        assert!(matches!(&e, Error::Forbidden(m) if m.starts_with("targets[0].eg_detail.target_project_id: ")), "{e}");
        let s = engine.create_subscription(&Principal::Operator, "p1", spec(&ch, "s", eg("p2", &other))).await.unwrap();
        assert_eq!(s.targets[0].granted_by, Some(Principal::Operator));
        let own = channel(&engine, "p1", "copies").await;
        let s = engine.create_subscription(&project_token, "p1", spec(&ch, "s2", eg("p1", &own))).await.unwrap();
        assert_eq!(s.targets[0].granted_by, Some(project_token));
    }

    #[tokio::test]
    async fn secret_header_values_are_sealed_masked_and_kept_on_update() {
        let engine = engine().await;
        let ch = channel(&engine, "p1", "orders").await;
        let headers = json!([{ "key": "X-Api-Key", "value": "s3cr3t", "is_value_secret": true },
                             { "key": "X-Plain", "value": "visible" }]);
        let s = engine.create_subscription(&Principal::Operator, "p1", spec(&ch, "s", http(headers))).await.unwrap();
        let stored = serde_json::to_string(&s).unwrap();
        assert!(!stored.contains("s3cr3t"), "stored sealed: {stored}");
        let sealer = engine.sealer().await.unwrap();
        let opened = s.targets[0].open_headers("p1", &sealer).unwrap();
        assert_eq!(opened, vec![("X-Api-Key".into(), "s3cr3t".into()), ("X-Plain".into(), "visible".into())]);
        let shown = s.clone().redacted();
        let shown_headers =
            &shown.targets[0].apigw_detail.as_ref().unwrap()["invocation_http_parameters"]["header_parameters"];
        assert_eq!(shown_headers[0]["value"], MASK);
        assert_eq!(shown_headers[1]["value"], "visible");

        // Sent back masked, the stored secret is kept (even with the name's case changed).
        let mut again: TargetSpec =
            serde_json::from_value(http(json!([{ "key": "x-api-key", "value": MASK, "is_value_secret": true }])))
                .unwrap();
        again.retry_times = Some(2);
        let t = engine
            .update_subscription_target(&Principal::Operator, "p1", &s.id, &s.targets[0].id, again)
            .await
            .unwrap();
        assert_eq!(t.retry_times, 2);
        assert_eq!(t.open_headers("p1", &sealer).unwrap(), vec![("x-api-key".into(), "s3cr3t".into())]);
        // A sealed value moved to another target does not open there.
        let mut moved = t.clone();
        moved.id = "another".into();
        assert!(moved.open_headers("p1", &sealer).is_err());
    }

    #[tokio::test]
    async fn targets_are_added_replaced_and_removed_but_never_the_last() {
        let engine = engine().await;
        let ch = channel(&engine, "p1", "orders").await;
        let s = engine.create_subscription(&Principal::Operator, "p1", spec(&ch, "s", sqs("orders-q"))).await.unwrap();
        let first = s.targets[0].id.clone();
        let e = engine.delete_subscription_target("p1", &s.id, &first).await.unwrap_err().to_string();
        assert!(e.starts_with("target_id: a subscription keeps at least one target"), "{e}");
        let mut chosen: TargetSpec = serde_json::from_value(sqs("orders-q")).unwrap();
        chosen.id = Some("second".into());
        let added = engine.create_subscription_target(&Principal::Operator, "p1", &s.id, chosen.clone()).await.unwrap();
        assert_eq!(added.id, "second");
        let e = engine.create_subscription_target(&Principal::Operator, "p1", &s.id, chosen).await.unwrap_err();
        assert!(e.to_string().starts_with("id: target id second is already used"), "{e}");
        for _ in 0..3 {
            let spec: TargetSpec = serde_json::from_value(sqs("orders-q")).unwrap();
            engine.create_subscription_target(&Principal::Operator, "p1", &s.id, spec).await.unwrap();
        }
        let spec: TargetSpec = serde_json::from_value(sqs("orders-q")).unwrap();
        let e = engine.create_subscription_target(&Principal::Operator, "p1", &s.id, spec).await.unwrap_err();
        assert!(matches!(e, Error::QuotaExceeded { limit: 5, .. }), "{e}");
        engine.delete_subscription_target("p1", &s.id, &first).await.unwrap();
        let (now, _) = engine.subscription("p1", &s.id).await.unwrap();
        assert_eq!(now.targets.len(), 4);
        assert!(now.target(&first).is_none());
        let e = engine.subscription_target("p1", &s.id, &first).await.unwrap_err();
        assert!(matches!(e, Error::NotFound { kind: "subscription target", .. }), "{e}");
        // The removed target's id is free again.
        let mut reuse: TargetSpec = serde_json::from_value(sqs("orders-q")).unwrap();
        reuse.id = Some(first.clone());
        let reused = engine.create_subscription_target(&Principal::Operator, "p1", &s.id, reuse).await.unwrap();
        assert_eq!(reused.id, first);
    }

    #[tokio::test]
    async fn status_operations_move_the_lifecycle_and_fail_per_subscription() {
        let engine = engine().await;
        let ch = channel(&engine, "p1", "orders").await;
        let s = engine.create_subscription(&Principal::Operator, "p1", spec(&ch, "s", sqs("orders-q"))).await.unwrap();
        assert_eq!(s.status, SubscriptionStatus::Created);
        let (_, version) = engine.channel("p1", &ch).await.unwrap();
        let enabled = engine.operate_subscription("p1", &s.id, Operation::Enable).await.unwrap();
        assert_eq!((enabled.status, enabled.resumed_ms), (SubscriptionStatus::Enabled, 0), "was receiving: no cut-off");
        let disabled = engine.operate_subscription("p1", &s.id, Operation::Disable).await.unwrap();
        assert_eq!(disabled.status, SubscriptionStatus::Disabled);
        let again = engine.operate_subscription("p1", &s.id, Operation::Disable).await.unwrap();
        assert_eq!(again.updated_ms, disabled.updated_ms, "nothing to change");
        let resumed = engine.operate_subscription("p1", &s.id, Operation::Enable).await.unwrap();
        assert!(resumed.resumed_ms > 0 && resumed.status == SubscriptionStatus::Enabled);
        assert!(engine.channel("p1", &ch).await.unwrap().1 > version, "routers reload");

        engine.mark_subscription_error("p1", &s.id, "target t: queue gone").await.unwrap();
        let (broken, _) = engine.subscription("p1", &s.id).await.unwrap();
        assert_eq!(
            (broken.status, broken.status_reason.as_deref()),
            (SubscriptionStatus::Error, Some("target t: queue gone"))
        );
        let fixed = engine.operate_subscription("p1", &s.id, Operation::Enable).await.unwrap();
        assert_eq!((fixed.status, fixed.status_reason), (SubscriptionStatus::Enabled, None));

        let ids = vec![s.id.clone(), "missing".to_owned()];
        let outcomes = engine.operate_subscriptions("p1", &ids, Operation::Disable).await.unwrap();
        assert!(outcomes[0].1.is_none());
        assert!(matches!(outcomes[1].1, Some(Error::NotFound { .. })));
        let eleven: Vec<String> = (0..11).map(|i| i.to_string()).collect();
        let e = engine.operate_subscriptions("p1", &eleven, Operation::Disable).await.unwrap_err().to_string();
        assert!(e.starts_with("subscription_ids: must name 1 to 10"), "{e}");
        assert!(engine.operate_subscriptions("p1", &[], Operation::Disable).await.is_err());
    }

    #[test]
    fn operations_are_parsed_by_name() {
        assert_eq!(Operation::parse("operation", "ENABLE").unwrap(), Operation::Enable);
        assert_eq!(Operation::parse("operation", "DISABLE").unwrap(), Operation::Disable);
        let e = Operation::parse("operation", "enable").unwrap_err().to_string();
        assert!(e.starts_with("operation: must be ENABLE or DISABLE"), "{e}");
    }
}
