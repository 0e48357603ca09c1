//! Switchyard: a serverless event bus for AWS.
//!
//! One engine ([`engine`]) behind thin API dialects ([`api`]), running on two backends of narrow
//! ports ([`ports`], [`backend`]): DynamoDB and SQS on AWS, an embedded database locally and in
//! tests. The route table ([`api::ops`]) is the single source of the local runner's router, each
//! Lambda function's router and the functions of `template.yaml`.

pub mod api;
pub mod backend;
pub mod config;
pub mod cursor;
pub mod engine;
pub mod error;
pub mod follow;
pub mod keys;
pub mod lambda;
pub mod local;
pub mod model;
pub mod ports;
pub mod telemetry;

pub use config::Config;
pub use engine::Engine;
pub use error::{Error, Result};
