//! CMDB resources: the kinds that can be written and watched, with the fields the server owns.
//!
//! Every resource kind of a tenant (supplier account) has its own change-log stream. Two streams
//! carry relations instead of resources: `host_relation` (a host's business, set and module, set by
//! host transfer) and `biz_set_relation` (which businesses a business set contains).

use serde::{Deserialize, Serialize};

/// A kind of resource, as named by `bk_resource`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Hosts (`bk_host_id`).
    Host,
    /// Host ⇄ business/set/module relations (watch only).
    HostRelation,
    /// Businesses (`bk_biz_id`).
    Biz,
    /// Sets of a business (`bk_set_id`).
    Set,
    /// Modules of a set (`bk_module_id`).
    Module,
    /// Processes of a business (`bk_process_id`).
    Process,
    /// Instances of custom models (`bk_inst_id`, with `bk_obj_id`).
    ObjectInstance,
    /// Instances of mainline models (`bk_inst_id`, with `bk_obj_id`).
    MainlineInstance,
    /// Business sets (`bk_biz_set_id`).
    BizSet,
    /// Business set ⇄ business relations (watch only).
    BizSetRelation,
    /// Cloud areas (`bk_cloud_id`).
    Plat,
    /// Projects (`id`).
    Project,
}

/// Every kind.
pub const ALL_KINDS: [Kind; 12] = [
    Kind::Host,
    Kind::HostRelation,
    Kind::Biz,
    Kind::Set,
    Kind::Module,
    Kind::Process,
    Kind::ObjectInstance,
    Kind::MainlineInstance,
    Kind::BizSet,
    Kind::BizSetRelation,
    Kind::Plat,
    Kind::Project,
];

impl Kind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::HostRelation => "host_relation",
            Kind::Biz => "biz",
            Kind::Set => "set",
            Kind::Module => "module",
            Kind::Process => "process",
            Kind::ObjectInstance => "object_instance",
            Kind::MainlineInstance => "mainline_instance",
            Kind::BizSet => "biz_set",
            Kind::BizSetRelation => "biz_set_relation",
            Kind::Plat => "plat",
            Kind::Project => "project",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        ALL_KINDS.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether resources of this kind are written through the resource API (relations are not).
    pub fn is_writable(self) -> bool {
        !matches!(self, Kind::HostRelation | Kind::BizSetRelation)
    }

    /// The field holding a resource's id, assigned by the server.
    pub fn id_field(self) -> &'static str {
        match self {
            Kind::Host | Kind::HostRelation => "bk_host_id",
            Kind::Biz => "bk_biz_id",
            Kind::Set => "bk_set_id",
            Kind::Module => "bk_module_id",
            Kind::Process => "bk_process_id",
            Kind::ObjectInstance | Kind::MainlineInstance => "bk_inst_id",
            Kind::BizSet | Kind::BizSetRelation => "bk_biz_set_id",
            Kind::Plat => "bk_cloud_id",
            Kind::Project => "id",
        }
    }

    /// The field a new resource must set (its name, or for hosts the inner IP).
    pub fn required_field(self) -> Option<&'static str> {
        match self {
            Kind::Host => Some("bk_host_innerip"),
            Kind::Biz => Some("bk_biz_name"),
            Kind::Set => Some("bk_set_name"),
            Kind::Module => Some("bk_module_name"),
            Kind::Process => Some("bk_process_name"),
            Kind::ObjectInstance | Kind::MainlineInstance => Some("bk_inst_name"),
            Kind::BizSet => Some("bk_biz_set_name"),
            Kind::Plat => Some("bk_cloud_name"),
            Kind::Project => Some("bk_project_name"),
            Kind::HostRelation | Kind::BizSetRelation => None,
        }
    }

    /// The kind a resource of this kind belongs to, and the field naming it.
    pub fn parent(self) -> Option<(Kind, &'static str)> {
        match self {
            Kind::Set | Kind::Process => Some((Kind::Biz, "bk_biz_id")),
            Kind::Module => Some((Kind::Set, "bk_set_id")),
            _ => None,
        }
    }

    /// Whether resources of this kind belong to a model (`bk_obj_id`), which watchers can select
    /// with `bk_filter.bk_sub_resource`.
    pub fn has_model(self) -> bool {
        matches!(self, Kind::ObjectInstance | Kind::MainlineInstance)
    }
}

/// What happened to a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// Created.
    Create,
    /// Changed.
    Update,
    /// Deleted (the event carries the last state).
    Delete,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Create => "create",
            EventType::Update => "update",
            EventType::Delete => "delete",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "create" => Some(EventType::Create),
            "update" => Some(EventType::Update),
            "delete" => Some(EventType::Delete),
            _ => None,
        }
    }
}

/// Fields the server owns: set on every resource, never by clients.
pub const SERVER_FIELDS: &[&str] = &["bk_supplier_account", "create_time", "last_time"];

/// Whether a field name is acceptable: letters, digits and `_`, 1 to 128 characters.
pub fn valid_field_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_know_their_fields() {
        for kind in ALL_KINDS {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            assert!(kind.is_writable() == kind.required_field().is_some());
        }
        assert_eq!(Kind::parse("hosts"), None);
        assert_eq!(Kind::Host.id_field(), "bk_host_id");
        assert_eq!(Kind::Module.parent(), Some((Kind::Set, "bk_set_id")));
        assert!(Kind::ObjectInstance.has_model() && !Kind::Host.has_model());
        assert!(valid_field_name("bk_cpu_2") && !valid_field_name("bk-cpu") && !valid_field_name(""));
    }
}
