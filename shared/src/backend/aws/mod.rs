//! The AWS backend: DynamoDB for the store, SQS for the queues. Endpoints follow the standard AWS
//! environment (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_REGION`, credentials …),
//! which is how the tests point it at moto's server.

mod dynamo;
mod sqs;

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

pub use dynamo::DynamoStore;
pub use sqs::SqsQueue;

use crate::ports::{Clock, QueueSpec};

/// Where the AWS backend keeps things.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsResources {
    /// The DynamoDB table.
    pub table: String,
    /// Queue URL of each logical queue name.
    pub queue_urls: HashMap<String, String>,
}

/// The store and queue of the AWS backend.
#[derive(Clone, Debug)]
pub struct Aws {
    /// The store.
    pub store: DynamoStore,
    /// The queues.
    pub queue: SqsQueue,
}

/// Loads the AWS SDK configuration from the standard environment.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

impl Aws {
    /// Clients for `resources`, configured from the standard AWS environment.
    pub async fn connect(resources: &AwsResources, clock: Arc<dyn Clock>) -> Self {
        let sdk = sdk_config().await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), resources.table.clone(), clock);
        let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), resources.queue_urls.clone());
        Self { store, queue }
    }
}

/// Creates the table (with TTL on `expires_at`) and the queues (with their redrive policies) when
/// they do not exist, and returns where they are. For local use against an emulator and for tests;
/// deployments get them from `template.yaml`.
pub async fn provision(table: &str, queues: &[QueueSpec], prefix: &str) -> anyhow::Result<AwsResources> {
    let sdk = sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let exists = dynamo.describe_table().table_name(table).send().await.is_ok();
    if !exists {
        let attr = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
        };
        let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
        dynamo
            .create_table()
            .table_name(table)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await?;
        dynamo
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().attribute_name("expires_at").enabled(true).build()?,
            )
            .send()
            .await?;
    }
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mut urls: HashMap<String, String> = HashMap::new();
    // Dead-letter queues first, so that redrive policies can name their ARNs.
    let mut ordered: Vec<&QueueSpec> = queues.iter().filter(|q| q.dead_letter.is_none()).collect();
    ordered.extend(queues.iter().filter(|q| q.dead_letter.is_some()));
    for spec in ordered {
        let mut create = sqs.create_queue().queue_name(format!("{prefix}{}", spec.name));
        if let Some((dlq, max_receives)) = &spec.dead_letter {
            let dlq_url = urls.get(dlq).ok_or_else(|| anyhow::anyhow!("dead-letter queue {dlq} not declared"))?;
            let attrs = sqs
                .get_queue_attributes()
                .queue_url(dlq_url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await?;
            let arn = attrs
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::QueueArn))
                .ok_or_else(|| anyhow::anyhow!("no ARN for {dlq}"))?;
            let policy = serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max_receives });
            create = create.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = create.send().await?.queue_url().unwrap_or_default().to_owned();
        urls.insert(spec.name.clone(), url);
    }
    Ok(AwsResources { table: table.to_owned(), queue_urls: urls })
}
