//! The narrow traits through which the engine reaches the world. Each has two real backends
//! (`backend::embedded` and `backend::aws`) that pass one conformance suite
//! (`shared/tests/conformance`).

pub mod clock;
pub mod outbound;
pub mod queue;
pub mod store;

pub use clock::{Clock, SystemClock, TestClock};
pub use outbound::{AddressPolicy, HttpOutbound, Outbound, OutboundError, OutboundRequest, OutboundResponse};
pub use queue::{Message, Queue, QueueError, QueueSpec, Received};
pub use store::{
    AppendListener, Appended, Cond, Item, Order, Page, Query, SkRange, Store, StoreError, TxResult, Write,
};
