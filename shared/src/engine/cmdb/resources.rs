//! CMDB resource writes. Every write of a resource and its change-log entries is one transaction:
//! there is never a change without its event, nor an event without its change.
//!
//! - Ids are assigned by the server from per-tenant, per-kind counters, in blocks of
//!   [`ID_BLOCK`] (so one counter write serves many creations; ids are unique, not gapless).
//! - A child (set, module, process) names its parent, which must exist; creating it rewrites the
//!   parent (same data, new version), so a concurrent deletion of the parent notices and retries. A
//!   parent with children (a business with sets or processes, a set with modules, a module with
//!   hosts) cannot be deleted.
//! - Host transfer sets a host's business, set and module; `host_relation` gets a `delete` event
//!   for the old relation and a `create` event for the new one.
//! - Businesses and business sets share a per-tenant lock item that each of their writes rewrites,
//!   so the `biz_set_relation` lists computed for a write are the ones committed with it.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::scope::Scope;
use crate::engine::list::load_all;
use crate::engine::{Engine, secs};
use crate::error::{Error, Result};
use crate::keys;
use crate::model::cmdb::{EventType, Kind, SERVER_FIELDS, valid_field_name};
use crate::model::{format_rfc3339, validate};
use crate::ports::{Cond, Item, StoreError, Write};

/// Ids reserved by one counter write.
pub const ID_BLOCK: u64 = 64;
/// How often a write is retried after losing a race with a concurrent one.
const ATTEMPTS: usize = 50;
/// Most business sets one business write may change (their events share its transaction).
const MAX_RELATION_EVENTS: usize = 90;

/// A change-log entry to append with a write.
struct Change {
    kind: Kind,
    event: EventType,
    detail: Value,
}

/// What a write plan produces: the writes, the change events, and the resource to answer with.
type Planned = (Vec<Write>, Vec<Change>, Value);

/// Id blocks reserved by this process, by (tenant, kind): next id, end (exclusive).
#[derive(Default)]
pub(crate) struct IdBlocks {
    blocks: parking_lot::Mutex<HashMap<(String, Kind), (u64, u64)>>,
}

/// A stored resource with its version.
struct Stored {
    doc: Value,
    version: u64,
}

fn as_id(field: &str, value: Option<&Value>) -> Result<u64> {
    value
        .and_then(Value::as_u64)
        .filter(|id| *id > 0)
        .ok_or_else(|| Error::invalid(field, "must be a positive integer id"))
}

/// Checks the fields of a create or an update.
fn check_fields(kind: Kind, fields: &Map<String, Value>, creating: bool) -> Result<()> {
    for name in fields.keys() {
        if !valid_field_name(name) {
            return Err(Error::invalid(name, "field names hold letters, digits and '_' (at most 128)"));
        }
        if name == kind.id_field() || SERVER_FIELDS.contains(&name.as_str()) {
            return Err(Error::invalid(name, "is set by the server"));
        }
    }
    if creating {
        if let Some(required) = kind.required_field() {
            match fields.get(required) {
                Some(Value::String(s)) if !s.trim().is_empty() => {}
                Some(_) => return Err(Error::invalid(required, "must be a non-empty string")),
                None => return Err(Error::invalid(required, "is required")),
            }
        }
        if kind.has_model() {
            let obj = fields.get("bk_obj_id").and_then(Value::as_str).unwrap_or_default();
            if obj.is_empty() || obj.len() > 64 || !valid_field_name(obj) {
                return Err(Error::invalid("bk_obj_id", "is required: the model id (letters, digits, '_')"));
            }
        }
        if let Some((_, parent)) = kind.parent() {
            as_id(parent, fields.get(parent))?;
        }
    } else {
        if let Some(required) = kind.required_field()
            && let Some(v) = fields.get(required)
            && v.as_str().is_none_or(|s| s.trim().is_empty())
        {
            return Err(Error::invalid(required, "must be a non-empty string"));
        }
        for fixed in ["bk_obj_id", "bk_biz_id", "bk_set_id"] {
            let owned = fixed == "bk_obj_id" && kind.has_model()
                || kind.parent().is_some_and(|(_, p)| p == fixed)
                || fixed == "bk_biz_id" && kind == Kind::Module;
            if owned && fields.contains_key(fixed) {
                return Err(Error::invalid(fixed, "cannot be changed"));
            }
        }
    }
    if kind == Kind::BizSet
        && let Some(scope) = fields.get("bk_scope")
    {
        Scope::compile(scope)?;
    } else if kind == Kind::BizSet && creating {
        return Err(Error::invalid("bk_scope", "is required"));
    }
    Ok(())
}

impl Engine {
    async fn stored(&self, tenant: &str, kind: Kind, id: u64) -> Result<Option<Stored>> {
        let item = self.store().get(&keys::resources(tenant, kind.as_str()), &keys::resource(id)).await?;
        Ok(item.map(|i| Stored { doc: i.data, version: i.version }))
    }

    async fn all_of(&self, tenant: &str, kind: Kind) -> Result<Vec<Value>> {
        load_all(self.store(), &keys::resources(tenant, kind.as_str()), "").await
    }

    /// The next id of a kind in a tenant.
    async fn allocate_id(&self, tenant: &str, kind: Kind) -> Result<u64> {
        let key = (tenant.to_owned(), kind);
        {
            let mut blocks = self.id_blocks().blocks.lock();
            if let Some((next, end)) = blocks.get_mut(&key)
                && *next < *end
            {
                *next += 1;
                return Ok(*next - 1);
            }
        }
        let pk = keys::resource_meta(tenant);
        for _ in 0..ATTEMPTS {
            let current = self.store().get(&pk, kind.as_str()).await?;
            let start = current.as_ref().and_then(|i| i.data.get("next")).and_then(Value::as_u64).unwrap_or(1);
            let cond = current.as_ref().map_or(Cond::Absent, |i| Cond::Version(i.version));
            let item = Item::new(pk.clone(), kind.as_str(), json!({ "next": start + ID_BLOCK }));
            match self.store().put(item, cond).await {
                Ok(()) => {
                    self.id_blocks().blocks.lock().insert(key, (start + 1, start + ID_BLOCK));
                    return Ok(start);
                }
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Unavailable("id allocation kept conflicting".into()))
    }

    fn appends(&self, tenant: &str, changes: &[Change]) -> Vec<Write> {
        let now_ms = self.now_ms();
        let expires = self.now_secs() + secs(self.config().retention.resource_events);
        changes
            .iter()
            .map(|c| Write::Append {
                pk: keys::resource_log(tenant, c.kind.as_str()),
                data: json!({
                    "type": c.event.as_str(),
                    "detail": c.detail,
                    "time_ms": now_ms,
                    "obj": c.detail.get("bk_obj_id").filter(|_| c.kind.has_model()),
                }),
                expires_at: Some(expires),
            })
            .collect()
    }

    fn notify_changes(&self, tenant: &str, changes: &[Change]) {
        for c in changes {
            self.notify_log(&keys::resource_log(tenant, c.kind.as_str()));
        }
    }

    fn put_resource(tenant: &str, kind: Kind, id: u64, doc: &Value, cond: Cond) -> Write {
        let item = Item::new(keys::resources(tenant, kind.as_str()), keys::resource(id), doc.clone());
        Write::Put { item, cond }
    }

    /// The lock write and the `biz_set_relation` events of a business or business-set write that
    /// turns `before` into `after`.
    async fn biz_set_effects(
        &self,
        tenant: &str,
        kind: Kind,
        before: Option<&Value>,
        after: Option<&Value>,
    ) -> Result<(Write, Vec<Change>)> {
        let meta = keys::resource_meta(tenant);
        let lock = self.store().get(&meta, keys::BIZ_SET_LOCK).await?;
        let cond = lock.as_ref().map_or(Cond::Absent, |l| Cond::Version(l.version));
        let n = lock.as_ref().and_then(|l| l.data.get("n")).and_then(Value::as_u64).unwrap_or(0);
        let lock_write = Write::Put { item: Item::new(meta, keys::BIZ_SET_LOCK, json!({ "n": n + 1 })), cond };
        let id_of = |doc: &Value| doc.get(kind.id_field()).and_then(Value::as_u64);
        let changed_id = before.or(after).and_then(id_of);
        let mut businesses = self.all_of(tenant, Kind::Biz).await?;
        let sets = self.all_of(tenant, Kind::BizSet).await?;
        let list = |scope: &Scope, businesses: &[Value]| -> Vec<u64> {
            let mut ids: Vec<u64> =
                businesses.iter().filter(|b| scope.contains(b)).filter_map(|b| b.get("bk_biz_id")?.as_u64()).collect();
            ids.sort_unstable();
            ids
        };
        let relation = |set_id: u64, ids: Vec<u64>| Change {
            kind: Kind::BizSetRelation,
            event: EventType::Update,
            detail: json!({ "bk_biz_set_id": set_id, "bk_biz_ids": ids }),
        };
        let mut changes = Vec::new();
        match kind {
            Kind::Biz => {
                businesses.retain(|b| b.get("bk_biz_id").and_then(Value::as_u64) != changed_id);
                businesses.extend(after.cloned());
                for set in &sets {
                    let Some(scope) = set.get("bk_scope").and_then(|s| Scope::compile(s).ok()) else { continue };
                    let was = before.is_some_and(|b| scope.contains(b));
                    let is = after.is_some_and(|b| scope.contains(b));
                    if was != is
                        && let Some(set_id) = set.get("bk_biz_set_id").and_then(Value::as_u64)
                    {
                        changes.push(relation(set_id, list(&scope, &businesses)));
                    }
                }
            }
            Kind::BizSet => {
                let scope_of = |doc: Option<&Value>| doc.and_then(|d| d.get("bk_scope")).cloned();
                if let Some(set_id) = changed_id {
                    match after {
                        None => changes.push(relation(set_id, Vec::new())),
                        Some(doc) if before.is_none() || scope_of(before) != scope_of(after) => {
                            let scope = Scope::compile(doc.get("bk_scope").unwrap_or(&Value::Null))?;
                            changes.push(relation(set_id, list(&scope, &businesses)));
                        }
                        Some(_) => {}
                    }
                }
            }
            _ => {}
        }
        if changes.len() > MAX_RELATION_EVENTS {
            return Err(Error::invalid(
                kind.id_field(),
                format!(
                    "this write would change {} business sets; at most {MAX_RELATION_EVENTS} at once",
                    changes.len()
                ),
            ));
        }
        Ok((lock_write, changes))
    }

    /// Writes, retrying races; `plan` builds the writes and the change events from fresh reads and
    /// returns the resource to answer with.
    async fn commit_change<F, Fut>(&self, tenant: &str, mut plan: F) -> Result<Value>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Planned>>,
    {
        for _ in 0..ATTEMPTS {
            let (mut writes, changes, answer) = plan().await?;
            writes.extend(self.appends(tenant, &changes));
            match self.store().transact(writes).await {
                Ok(_) => {
                    self.notify_changes(tenant, &changes);
                    return Ok(answer);
                }
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Unavailable("the write kept conflicting with concurrent writes".into()))
    }

    /// Creates a resource; returns it with its id and server fields.
    pub async fn create_resource(&self, tenant: &str, kind: Kind, fields: Map<String, Value>) -> Result<Value> {
        validate::project_id(tenant)
            .map_err(|_| Error::invalid("bk_supplier_account", "is not a valid supplier account"))?;
        if !kind.is_writable() {
            return Err(Error::invalid("bk_resource", format!("{} is not written directly", kind.as_str())));
        }
        check_fields(kind, &fields, true)?;
        let id = self.allocate_id(tenant, kind).await?;
        let fields = &fields;
        self.commit_change(tenant, || async move {
            let now = format_rfc3339(self.now_ms());
            let mut doc = fields.clone();
            let mut writes = Vec::new();
            if let Some((parent_kind, parent_field)) = kind.parent() {
                let parent_id = as_id(parent_field, fields.get(parent_field))?;
                let parent = self.stored(tenant, parent_kind, parent_id).await?.ok_or_else(|| {
                    Error::invalid(parent_field, format!("there is no {} {parent_id}", parent_kind.as_str()))
                })?;
                if kind == Kind::Module {
                    doc.insert("bk_biz_id".into(), parent.doc.get("bk_biz_id").cloned().unwrap_or(Value::Null));
                }
                writes.push(Self::put_resource(
                    tenant,
                    parent_kind,
                    parent_id,
                    &parent.doc,
                    Cond::Version(parent.version),
                ));
            }
            doc.insert(kind.id_field().into(), json!(id));
            doc.insert("bk_supplier_account".into(), json!(tenant));
            doc.insert("create_time".into(), json!(now));
            doc.insert("last_time".into(), json!(now));
            let doc = Value::Object(doc);
            writes.push(Self::put_resource(tenant, kind, id, &doc, Cond::Absent));
            let mut changes = vec![Change { kind, event: EventType::Create, detail: doc.clone() }];
            if matches!(kind, Kind::Biz | Kind::BizSet) {
                let (lock, relations) = self.biz_set_effects(tenant, kind, None, Some(&doc)).await?;
                writes.push(lock);
                changes.extend(relations);
            }
            Ok((writes, changes, doc))
        })
        .await
    }

    /// Reads a resource.
    pub async fn resource(&self, tenant: &str, kind: Kind, id: u64) -> Result<Value> {
        let found = self.stored(tenant, kind, id).await?;
        found.map(|s| s.doc).ok_or_else(|| Error::not_found(kind.as_str(), id.to_string()))
    }

    /// A page of a tenant's resources of a kind, by id: (total, page).
    pub async fn list_resources(
        &self,
        tenant: &str,
        kind: Kind,
        start: usize,
        limit: usize,
    ) -> Result<(usize, Vec<Value>)> {
        let all = self.all_of(tenant, kind).await?;
        let total = all.len();
        Ok((total, all.into_iter().skip(start).take(limit).collect()))
    }

    /// Merges `fields` into a resource (fields set to null are kept as null).
    pub async fn update_resource(
        &self,
        tenant: &str,
        kind: Kind,
        id: u64,
        fields: Map<String, Value>,
    ) -> Result<Value> {
        if !kind.is_writable() {
            return Err(Error::invalid("bk_resource", format!("{} is not written directly", kind.as_str())));
        }
        check_fields(kind, &fields, false)?;
        let fields = &fields;
        self.commit_change(tenant, || async move {
            let current =
                self.stored(tenant, kind, id).await?.ok_or_else(|| Error::not_found(kind.as_str(), id.to_string()))?;
            let mut merged = current.doc.as_object().cloned().unwrap_or_default();
            let unchanged = fields.iter().all(|(k, v)| merged.get(k) == Some(v));
            if unchanged {
                // Nothing changes: no write and no event.
                let writes = vec![Write::Check {
                    pk: keys::resources(tenant, kind.as_str()),
                    sk: keys::resource(id),
                    cond: Cond::Version(current.version),
                }];
                return Ok((writes, Vec::new(), current.doc));
            }
            merged.extend(fields.clone());
            merged.insert("last_time".into(), json!(format_rfc3339(self.now_ms())));
            let merged = Value::Object(merged);
            let mut writes = vec![Self::put_resource(tenant, kind, id, &merged, Cond::Version(current.version))];
            let mut changes = vec![Change { kind, event: EventType::Update, detail: merged.clone() }];
            if matches!(kind, Kind::Biz | Kind::BizSet) {
                let (lock, relations) = self.biz_set_effects(tenant, kind, Some(&current.doc), Some(&merged)).await?;
                writes.push(lock);
                changes.extend(relations);
            }
            Ok((writes, changes, merged))
        })
        .await
    }

    /// Why a resource cannot be deleted, if it has children.
    async fn children(&self, tenant: &str, kind: Kind, id: u64) -> Result<Option<String>> {
        let refers = |field: &'static str| move |doc: &Value| doc.get(field).and_then(Value::as_u64) == Some(id);
        let checks: &[(Kind, &'static str)] = match kind {
            Kind::Biz => &[(Kind::Set, "bk_biz_id"), (Kind::Process, "bk_biz_id"), (Kind::HostRelation, "bk_biz_id")],
            Kind::Set => &[(Kind::Module, "bk_set_id")],
            Kind::Module => &[(Kind::HostRelation, "bk_module_id")],
            _ => &[],
        };
        for (child, field) in checks {
            let n = self.all_of(tenant, *child).await?.iter().filter(|d| refers(field)(d)).count();
            if n > 0 {
                let what = if *child == Kind::HostRelation { "host" } else { child.as_str() };
                return Ok(Some(format!("{n} {what}(s) belong to it")));
            }
        }
        Ok(None)
    }

    /// Deletes a resource (a host's relation goes with it).
    pub async fn delete_resource(&self, tenant: &str, kind: Kind, id: u64) -> Result<()> {
        if !kind.is_writable() {
            return Err(Error::invalid("bk_resource", format!("{} is not written directly", kind.as_str())));
        }
        self.commit_change(tenant, || async move {
            let current =
                self.stored(tenant, kind, id).await?.ok_or_else(|| Error::not_found(kind.as_str(), id.to_string()))?;
            if let Some(reason) = self.children(tenant, kind, id).await? {
                return Err(Error::InUse { kind: kind.as_str(), id: id.to_string(), reason });
            }
            let mut writes = vec![Write::Delete {
                pk: keys::resources(tenant, kind.as_str()),
                sk: keys::resource(id),
                cond: Cond::Version(current.version),
            }];
            let mut changes = vec![Change { kind, event: EventType::Delete, detail: current.doc.clone() }];
            if kind == Kind::Host
                && let Some(relation) = self.stored(tenant, Kind::HostRelation, id).await?
            {
                writes.push(Write::Delete {
                    pk: keys::resources(tenant, Kind::HostRelation.as_str()),
                    sk: keys::resource(id),
                    cond: Cond::Version(relation.version),
                });
                changes.push(Change { kind: Kind::HostRelation, event: EventType::Delete, detail: relation.doc });
            }
            if matches!(kind, Kind::Biz | Kind::BizSet) {
                let (lock, relations) = self.biz_set_effects(tenant, kind, Some(&current.doc), None).await?;
                writes.push(lock);
                changes.extend(relations);
            }
            Ok((writes, changes, Value::Null))
        })
        .await
        .map(|_| ())
    }

    /// Moves a host to a module (of a set, of a business); returns the new relation.
    pub async fn transfer_host(&self, tenant: &str, host: u64, biz: u64, set: u64, module: u64) -> Result<Value> {
        validate::project_id(tenant)
            .map_err(|_| Error::invalid("bk_supplier_account", "is not a valid supplier account"))?;
        self.commit_change(tenant, || async move {
            let missing =
                |field: &str, kind: Kind, id: u64| Error::invalid(field, format!("there is no {} {id}", kind.as_str()));
            let h =
                self.stored(tenant, Kind::Host, host).await?.ok_or_else(|| missing("bk_host_id", Kind::Host, host))?;
            let b = self.stored(tenant, Kind::Biz, biz).await?.ok_or_else(|| missing("bk_biz_id", Kind::Biz, biz))?;
            let s = self.stored(tenant, Kind::Set, set).await?.ok_or_else(|| missing("bk_set_id", Kind::Set, set))?;
            let m = self
                .stored(tenant, Kind::Module, module)
                .await?
                .ok_or_else(|| missing("bk_module_id", Kind::Module, module))?;
            if s.doc.get("bk_biz_id").and_then(Value::as_u64) != Some(biz) {
                return Err(Error::invalid("bk_set_id", format!("set {set} is not in business {biz}")));
            }
            if m.doc.get("bk_set_id").and_then(Value::as_u64) != Some(set) {
                return Err(Error::invalid("bk_module_id", format!("module {module} is not in set {set}")));
            }
            let relation = json!({
                "bk_biz_id": biz, "bk_host_id": host, "bk_module_id": module, "bk_set_id": set,
                "bk_supplier_account": tenant,
            });
            let old = self.stored(tenant, Kind::HostRelation, host).await?;
            let res = |kind: Kind| keys::resources(tenant, kind.as_str());
            let mut writes = vec![
                Write::Check { pk: res(Kind::Host), sk: keys::resource(host), cond: Cond::Version(h.version) },
                Write::Check { pk: res(Kind::Biz), sk: keys::resource(biz), cond: Cond::Version(b.version) },
                Write::Check { pk: res(Kind::Set), sk: keys::resource(set), cond: Cond::Version(s.version) },
                // Rewriting the module makes a concurrent deletion of it notice this host.
                Self::put_resource(tenant, Kind::Module, module, &m.doc, Cond::Version(m.version)),
            ];
            let mut changes = Vec::new();
            match &old {
                Some(o) if o.doc == relation => {
                    writes.push(Write::Check {
                        pk: res(Kind::HostRelation),
                        sk: keys::resource(host),
                        cond: Cond::Version(o.version),
                    });
                }
                Some(o) => {
                    writes.push(Self::put_resource(
                        tenant,
                        Kind::HostRelation,
                        host,
                        &relation,
                        Cond::Version(o.version),
                    ));
                    changes.push(Change { kind: Kind::HostRelation, event: EventType::Delete, detail: o.doc.clone() });
                    changes.push(Change {
                        kind: Kind::HostRelation,
                        event: EventType::Create,
                        detail: relation.clone(),
                    });
                }
                None => {
                    writes.push(Self::put_resource(tenant, Kind::HostRelation, host, &relation, Cond::Absent));
                    changes.push(Change {
                        kind: Kind::HostRelation,
                        event: EventType::Create,
                        detail: relation.clone(),
                    });
                }
            }
            Ok((writes, changes, relation))
        })
        .await
    }
}
