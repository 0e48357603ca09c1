//! THE route table: every API operation, once. The local runner's router, each Lambda function's
//! one-route router, the functions and routes of `template.yaml` (with their IAM policies) and the
//! binaries in `functions/src/bin/` all come from [`OPS`]; a test checks that they agree.

use axum::routing::MethodRouter;
use http::Method;

use super::{cmdb, eg, system};
use crate::engine::Engine;
use crate::model::validate::{MAX_BODY_BYTES, MAX_PUT_EVENTS_BYTES};

/// Which envelope an operation's errors (and panics) use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// The event grid API: `{"error_code","error_msg"}`.
    EventGrid,
    /// The CMDB APIs: `{"result","code","message","permission","request_id","data"}`.
    Cmdb,
}

/// What an operation's function may touch (becomes its IAM policies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Read the table.
    StoreRead,
    /// Read and write the table.
    StoreWrite,
    /// Send to the delivery queue.
    QueueSend,
}

/// One API operation.
pub struct Op {
    /// Operation id (the specification's name where it has one): `CreateChannel`.
    pub id: &'static str,
    /// HTTP method.
    pub method: Method,
    /// Path, in the syntax axum and API Gateway share: `/v1/{project_id}/channels`.
    pub path: &'static str,
    /// The handler, as a method router.
    pub route: fn() -> MethodRouter<Engine>,
    /// Error envelope.
    pub dialect: Dialect,
    /// What its function may touch.
    pub needs: &'static [Need],
    /// Largest request body.
    pub body_limit: usize,
}

impl Op {
    /// The name of the operation's Lambda binary: `create-channel`.
    pub fn binary(&self) -> String {
        let mut out = String::new();
        for (i, c) in self.id.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }

    /// The logical id of the operation's function in `template.yaml`: `CreateChannelFunction`.
    pub fn function(&self) -> String {
        format!("{}Function", self.id)
    }
}

macro_rules! op {
    ($id:ident, $method:ident, $path:literal, $handler:path, $dialect:ident, [$($need:ident),*]) => {
        op!($id, $method, $path, $handler, $dialect, [$($need),*], MAX_BODY_BYTES)
    };
    ($id:ident, $method:ident, $path:literal, $handler:path, $dialect:ident, [$($need:ident),*], $limit:expr) => {
        Op {
            id: stringify!($id),
            method: Method::$method,
            path: $path,
            route: || axum::routing::on(axum::routing::MethodFilter::$method, $handler),
            dialect: Dialect::$dialect,
            needs: &[$(Need::$need),*],
            body_limit: $limit,
        }
    };
}

/// Every operation.
#[rustfmt::skip]
pub static OPS: &[Op] = &[
    op!(Health,                   GET,    "/health",                                       system::health,              EventGrid, []),
    op!(ListApiVersions,          GET,    "/",                                             system::versions,            EventGrid, [StoreRead]),
    op!(CreateProjectToken,       POST,   "/admin/v1/projects/{project_id}/tokens",        system::create_token,        EventGrid, [StoreWrite]),
    op!(ShowSigningSecret,        GET,    "/v1/{project_id}/signing-secret",               system::signing_secret,      EventGrid, [StoreWrite]),
    op!(CreateChannel,            POST,   "/v1/{project_id}/channels",                     eg::channels::create,        EventGrid, [StoreWrite]),
    op!(ListChannels,             GET,    "/v1/{project_id}/channels",                     eg::channels::list,          EventGrid, [StoreWrite]),
    op!(ShowDetailOfChannel,      GET,    "/v1/{project_id}/channels/{channel_id}",        eg::channels::show,          EventGrid, [StoreWrite]),
    op!(UpdateChannel,            PUT,    "/v1/{project_id}/channels/{channel_id}",        eg::channels::update,        EventGrid, [StoreWrite]),
    op!(DeleteChannel,            DELETE, "/v1/{project_id}/channels/{channel_id}",        eg::channels::delete,        EventGrid, [StoreWrite]),
    op!(PutEvents,                POST,   "/v1/{project_id}/channels/{channel_id}/events", eg::events::put,             EventGrid, [StoreWrite, QueueSend], MAX_PUT_EVENTS_BYTES),
    op!(ShowDetailOfEventTrace,   GET,    "/v1/{project_id}/events/trace/detail/{trace_id}", eg::traces::show_trace, EventGrid, [StoreWrite]),
    op!(ShowDetailOfEvent,        GET,    "/v1/{project_id}/events/detail/{trace_id}",     eg::traces::show_event,      EventGrid, [StoreRead]),
    op!(ListTracedEvents,         GET,    "/v1/{project_id}/traced-events",                eg::traces::list,            EventGrid, [StoreWrite]),
    op!(CheckPutEvents,           POST,   "/v1/{project_id}/events/check",                 eg::events::check,           EventGrid, [StoreWrite], MAX_PUT_EVENTS_BYTES),
    op!(CreateSubscription,       POST,   "/v1/{project_id}/subscriptions",                eg::subscriptions::create,   EventGrid, [StoreWrite]),
    op!(ListSubscriptions,        GET,    "/v1/{project_id}/subscriptions",                eg::subscriptions::list,     EventGrid, [StoreRead]),
    op!(ShowDetailOfSubscription, GET,    "/v1/{project_id}/subscriptions/{subscription_id}", eg::subscriptions::show,  EventGrid, [StoreRead]),
    op!(UpdateSubscription,       PUT,    "/v1/{project_id}/subscriptions/{subscription_id}", eg::subscriptions::update, EventGrid, [StoreWrite]),
    op!(DeleteSubscription,       DELETE, "/v1/{project_id}/subscriptions/{subscription_id}", eg::subscriptions::delete, EventGrid, [StoreWrite]),
    op!(UpdateSubscriptionSource, PUT,    "/v1/{project_id}/subscriptions/{subscription_id}/sources/{source_id}", eg::subscriptions::update_source, EventGrid, [StoreWrite]),
    op!(CreateSubscriptionTarget, POST,   "/v1/{project_id}/subscriptions/{subscription_id}/targets", eg::targets::create, EventGrid, [StoreWrite]),
    op!(UpdateSubscriptionTarget, PUT,    "/v1/{project_id}/subscriptions/{subscription_id}/targets/{target_id}", eg::targets::update, EventGrid, [StoreWrite]),
    op!(ShowDetailOfSubscriptionTarget, GET, "/v1/{project_id}/subscriptions/{subscription_id}/targets/{target_id}", eg::targets::show, EventGrid, [StoreRead]),
    op!(DeleteSubscriptionTarget, DELETE, "/v1/{project_id}/subscriptions/{subscription_id}/targets/{target_id}", eg::targets::delete, EventGrid, [StoreWrite]),
    op!(ExecuteSubscriptionOperation, POST, "/v1/{project_id}/subscriptions/operation",   eg::subscriptions::operate,  EventGrid, [StoreWrite]),
    op!(ListEventTarget,          GET,    "/v1/{project_id}/target-catalogs",              eg::targets::catalog,        EventGrid, [StoreRead]),
    op!(WatchChannelEvents,       GET,    "/v1/{project_id}/channels/{channel_id}/events", eg::events::pull,            EventGrid, [StoreWrite]),
    op!(CreateResource,           POST,   "/api/v3/resources/{bk_resource}",               cmdb::resources::create,     Cmdb,      [StoreWrite]),
    op!(ListResources,            GET,    "/api/v3/resources/{bk_resource}",               cmdb::resources::list,       Cmdb,      [StoreRead]),
    op!(ShowResource,             GET,    "/api/v3/resources/{bk_resource}/{id}",          cmdb::resources::show,       Cmdb,      [StoreRead]),
    op!(UpdateResource,           PUT,    "/api/v3/resources/{bk_resource}/{id}",          cmdb::resources::update,     Cmdb,      [StoreWrite]),
    op!(DeleteResource,           DELETE, "/api/v3/resources/{bk_resource}/{id}",          cmdb::resources::delete,     Cmdb,      [StoreWrite]),
    op!(TransferHost,             POST,   "/api/v3/hosts/transfer",                        cmdb::resources::transfer,   Cmdb,      [StoreWrite]),
    op!(WatchResource,            POST,   "/api/v3/event/watch/resource/{bk_resource}",    cmdb::watch::watch,          Cmdb,      [StoreWrite]),
    op!(WatchResourceGateway,     POST,   "/api/c/compapi/v2/cc/resource_watch/",          cmdb::watch::watch_gateway,  Cmdb,      [StoreWrite]),
];

/// The operation with this id.
pub fn find(id: &str) -> Option<&'static Op> {
    OPS.iter().find(|o| o.id == id)
}

/// The generated part of `template.yaml`: one function with one HTTP API route per operation,
/// with least-privilege policies from its needs.
pub fn sam_functions() -> String {
    let mut out = String::new();
    for op in OPS {
        out.push_str(&format!(
            "  {function}:\n    Type: AWS::Serverless::Function\n    Metadata:\n      BuildMethod: rust-cargolambda\n      \
             BuildProperties:\n        Binary: {binary}\n    Properties:\n      CodeUri: .\n      Events:\n        Api:\n          \
             Type: HttpApi\n          Properties:\n            ApiId: !Ref HttpApi\n            Path: {path}\n            \
             Method: {method}\n",
            function = op.function(),
            binary = op.binary(),
            path = op.path,
            method = op.method,
        ));
        let write = op.needs.contains(&Need::StoreWrite);
        let read = op.needs.contains(&Need::StoreRead);
        let policies: Vec<&str> = [
            write.then_some("        - DynamoDBCrudPolicy:\n            TableName: !Ref Table\n"),
            (read && !write).then_some("        - DynamoDBReadPolicy:\n            TableName: !Ref Table\n"),
            op.needs
                .contains(&Need::QueueSend)
                .then_some("        - SQSSendMessagePolicy:\n            QueueName: !GetAtt DeliveryQueue.QueueName\n"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !policies.is_empty() {
            out.push_str("      Policies:\n");
            for p in policies {
                out.push_str(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_operation_id() {
        let op = find("ShowDetailOfChannel").unwrap();
        assert_eq!(op.binary(), "show-detail-of-channel");
        assert_eq!(op.function(), "ShowDetailOfChannelFunction");
    }

    #[test]
    fn ids_paths_and_methods_are_unique() {
        let mut ids = std::collections::HashSet::new();
        let mut routes = std::collections::HashSet::new();
        for op in OPS {
            assert!(ids.insert(op.id), "{} twice", op.id);
            assert!(routes.insert((op.method.clone(), op.path)), "{} {} twice", op.method, op.path);
        }
    }
}
