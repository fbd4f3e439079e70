//! The Lambda side: one function takes both its triggers, HTTP API (payload 2.0) requests and
//! console events from EventBridge, and sends each to the same code as the local server.

use std::sync::Arc;

use axum::Router;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::console::{self, ConsoleEvent};
use super::function::Function;
use super::http;
use super::problem::Problem;
use super::request::OrgSource;
use crate::app::{App, Outcome};

/// A function's handler: an ordinary async function of the event, testable without Lambda.
#[derive(Debug, Clone)]
pub struct Handler {
    function: Function,
    app: App,
    router: Router,
}

impl Handler {
    /// `org_claim`: the JWT authorizer claim that names the organization.
    pub fn new(function: Function, app: App, org_claim: impl Into<String>) -> Self {
        let router = http::router(app.clone(), OrgSource::JwtClaim(org_claim.into()), &[function]);
        Self {
            function,
            app,
            router,
        }
    }

    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, Error> {
        let (payload, context) = event.into_parts();
        if payload.get("detail-type").is_some() {
            let event: ConsoleEvent = serde_json::from_value(payload)?;
            return self.console(event).await;
        }
        let request: lambda_http::request::LambdaRequest = serde_json::from_value(payload)?;
        let adapter = lambda_http::Adapter::from(self.router.clone());
        let response = adapter.oneshot(LambdaEvent::new(request, context)).await?;
        Ok(serde_json::to_value(response)?)
    }

    /// A console event: the outcome is published as an event. Only a retryable failure fails the
    /// invocation, so that Lambda's retry can succeed; a rejection would be rejected again.
    async fn console(&self, event: ConsoleEvent) -> Result<Value, Error> {
        let step_hint = event.detail_type.clone();
        match console::handle(&self.app, &[self.function], event).await {
            Ok(outcome) => Ok(json!({
                "outcome": match outcome {
                    Outcome::Created(_) => "created",
                    Outcome::Current(_) | Outcome::Role { .. } | Outcome::FederatedCredential { .. } => {
                        "completed"
                    }
                    Outcome::Deleted => "deleted",
                    Outcome::Connected(_) => "connected",
                },
            })),
            Err(e) if e.is_retryable() => Err(Box::new(e)),
            Err(e) => {
                let p = Problem::of(&e, crate::domain::Step::Start);
                Ok(json!({ "outcome": "rejected", "code": p.rejection.code, "detailType": step_hint }))
            }
        }
    }
}

/// Runs the handler on the Lambda runtime until the sandbox is shut down.
pub async fn run(handler: Handler) -> Result<(), Error> {
    let handler = Arc::new(handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = Arc::clone(&handler);
        async move { handler.handle(event).await }
    }))
    .await
}
