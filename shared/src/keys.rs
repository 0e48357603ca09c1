//! The single-table key scheme: every item the engine stores, and where.
//!
//! | item                           | pk                                   | sk                          |
//! |--------------------------------|--------------------------------------|-----------------------------|
//! | access token (hashed)          | `tok#{sha256}`                       | `tok`                       |
//! | project settings               | `p#{project}`                        | `settings`                  |
//! | channel                        | `p#{project}`                        | `ch#{channel_id}`           |
//! | channel name (uniqueness)      | `p#{project}`                        | `chn#{name}`                |
//! | subscription                   | `p#{project}`                        | `sub#{subscription_id}`     |
//! | subscription name (uniqueness) | `p#{project}`                        | `subn#{name}`               |
//! | client-chosen source/target id | `gid#{kind}#{id}`                    | `gid`                       |
//! | channel event log              | `log#ch#{project}#{channel_id}`      | 20-digit seq, `~head`       |
//! | publish dedup key              | `dd#{project}#{channel_id}`          | `{len}{source}{id}` or hash, `f{hops}#…` when forwarded |
//! | outbox (accepted, not routed)  | `ob#{shard}`                         | `{ms:013}#{id}`             |
//! | traced event                   | `te#{project}#{channel_id}`          | `{ms:013}#{16 hex}`         |
//! | delivery attempt               | `tr#{project}#{channel_id}#{seq}`    | `{sub}#{target}#{attempt}`  |
//! | server secret                  | `meta`                               | `secret`                    |
//! | CMDB resource                  | `res#{tenant}#{kind}`                | 20-digit id                 |
//! | CMDB id counters, topology lock| `res#{tenant}#meta`                  | `{kind}`, `bizset-lock`     |
//! | CMDB change log                | `log#cmdb#{tenant}#{kind}`           | 20-digit seq, `~head`       |
//!
//! Project ids, channel ids and names never contain `#` (validation forbids it), so the keys are
//! unambiguous. The outbox has [`OUTBOX_SHARDS`] partitions. A channel's dedup keys share its
//! partition and sort by source and id, so that keys written together sit together (an embedded
//! database rewrites every page a commit touches); on DynamoDB a channel's throughput is bounded by
//! its log partition anyway.

use sha2::{Digest, Sha256};

/// Partitions of the outbox.
pub const OUTBOX_SHARDS: u32 = 8;

/// Partition of a project's resources.
pub fn project(project: &str) -> String {
    format!("p#{project}")
}

/// Sort key of a project's settings.
pub const SETTINGS: &str = "settings";

/// Sort key of a channel.
pub fn channel(id: &str) -> String {
    format!("ch#{id}")
}

/// Sort-key prefix of channels.
pub const CHANNEL_PREFIX: &str = "ch#";

/// Sort key of a channel name claim.
pub fn channel_name(name: &str) -> String {
    format!("chn#{name}")
}

/// Sort key of a subscription.
pub fn subscription(id: &str) -> String {
    format!("sub#{id}")
}

/// Sort-key prefix of subscriptions.
pub const SUBSCRIPTION_PREFIX: &str = "sub#";

/// Sort key of a subscription name claim.
pub fn subscription_name(name: &str) -> String {
    format!("subn#{name}")
}

/// Partition of a globally unique, client-chosen id (`kind` is `source` or `target`).
pub fn global_id(kind: &str, id: &str) -> String {
    format!("gid#{kind}#{id}")
}

/// Sort key of a global id claim.
pub const GLOBAL_ID: &str = "gid";

/// Partition of an access token, by the hash of its secret.
pub fn token(hash: &str) -> String {
    format!("tok#{hash}")
}

/// Sort key of an access token.
pub const TOKEN: &str = "tok";

/// Log partition of a channel's events.
pub fn channel_log(project: &str, channel_id: &str) -> String {
    format!("log#ch#{project}#{channel_id}")
}

/// Partition of the dedup keys of a channel.
pub fn dedup(project: &str, channel_id: &str) -> String {
    format!("dd#{project}#{channel_id}")
}

/// Sort key of the dedup key of `(source, id)`: both, length-prefixed, or their hash when long.
pub fn dedup_entry(source: &str, id: &str) -> String {
    if source.len() + id.len() <= 900 {
        return format!("{:04}{source}{id}", source.len());
    }
    let mut h = Sha256::new();
    h.update(source.as_bytes());
    h.update([0]);
    h.update(id.as_bytes());
    format!("h#{}", hex::encode(h.finalize()))
}

/// Sort key of the dedup key of `(source, id)` forwarded `hops` times (distinct from every
/// [`dedup_entry`], which start with a digit or `h#`).
pub fn forwarded_dedup_entry(source: &str, id: &str, hops: u64) -> String {
    format!("f{hops}#{}", dedup_entry(source, id))
}

/// Partition of outbox shard `shard`.
pub fn outbox(shard: u32) -> String {
    format!("ob#{shard}")
}

/// The outbox shard of a channel.
pub fn outbox_shard(project: &str, channel_id: &str) -> u32 {
    let digest = Sha256::digest(format!("{project}#{channel_id}").as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % OUTBOX_SHARDS
}

/// Sort key of an outbox entry written at `ms`.
pub fn outbox_entry(ms: i64, id: &str) -> String {
    format!("{ms:013}#{id}")
}

/// Partition of a channel's traced events: one item per accepted event, sorted by the time it was
/// received, so that a time range of a channel is one query.
pub fn traced_events(project: &str, channel_id: &str) -> String {
    format!("te#{project}#{channel_id}")
}

/// Sort key of a traced event received at `ms`, made unique by `nonce`.
pub fn traced_event(ms: i64, nonce: u64) -> String {
    format!("{ms:013}#{nonce:016x}")
}

/// Partition of the delivery attempts of one event.
pub fn trace(project: &str, channel_id: &str, seq: u64) -> String {
    format!("tr#{project}#{channel_id}#{seq}")
}

/// Sort key of one delivery attempt.
pub fn attempt(subscription: &str, target: &str, attempt: u32) -> String {
    format!("{subscription}#{target}#{attempt:04}")
}

/// Partition of server-wide metadata.
pub const META: &str = "meta";

/// Sort key of the server secret (keys cursors and seals stored secrets).
pub const SERVER_SECRET: &str = "secret";

/// Partition of a tenant's resources of one kind (`host_relation` holds host relations).
pub fn resources(tenant: &str, kind: &str) -> String {
    format!("res#{tenant}#{kind}")
}

/// Sort key of a resource.
pub fn resource(id: u64) -> String {
    format!("{id:020}")
}

/// Partition of a tenant's id counters and topology lock.
pub fn resource_meta(tenant: &str) -> String {
    format!("res#{tenant}#meta")
}

/// Sort key of the lock every business and business-set write takes.
pub const BIZ_SET_LOCK: &str = "bizset-lock";

/// Log partition of a tenant's change events of one resource kind.
pub fn resource_log(tenant: &str, kind: &str) -> String {
    format!("log#cmdb#{tenant}#{kind}")
}
