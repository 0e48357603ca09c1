//! The two real backends of the ports: `embedded` (redb, in process) and `aws` (DynamoDB, SQS).

pub mod aws;
pub mod embedded;
