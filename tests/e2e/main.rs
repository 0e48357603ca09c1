//! End-to-end tests: the local runner on a free port, a real HTTP client, a real webhook receiver.
// Tests drive the system from outside, with real clients, real clocks and the environment.
#![allow(clippy::disallowed_methods)]

mod channels;
mod check;
mod cmdb;
mod delivery;
mod errors;
mod helpers;
mod lambda;
mod lifecycle;
mod pull;
mod restart;
mod subscriptions;
mod targets;
mod template;
mod traces;
mod transform;
