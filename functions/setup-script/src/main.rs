//! Lambda function `setup-script`: the one-command setup script, a static file served to anyone
//! (`GET /setup/scripts/azure-connect.sh`). No configuration, application, store or AWS client:
//! its role holds no AWS permission at all.

use shared::edge::lambda::{self, ScriptHandler};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    lambda::serve(ScriptHandler::default()).await
}
