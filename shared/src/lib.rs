//! Switchyard: a serverless event bus for AWS.
pub mod backend;
pub mod ports;
