//! Lambda function for `GET /v1/{project_id}/signing-secret` (ShowSigningSecret).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("ShowSigningSecret").await
}
