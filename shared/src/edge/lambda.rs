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
    console: console::ConsoleGate,
}

impl Handler {
    /// `org_claim`: the JWT authorizer claim that names the organization.
    pub fn new(function: Function, app: App, org_claim: impl Into<String>) -> Self {
        let router = http::router(app.clone(), OrgSource::JwtClaim(org_claim.into()), &[function]);
        Self {
            function,
            app,
            router,
            console: console::ConsoleGate::open(),
        }
    }

    /// Who may speak for the console (default: `spot.console`, any account, no token).
    pub fn with_console(mut self, gate: console::ConsoleGate) -> Self {
        self.console = gate;
        self
    }

    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, Error> {
        let (payload, context) = event.into_parts();
        if super::queue::is_sqs(&payload) {
            return Ok(super::queue::handle(&self.app, serde_json::from_value(payload)?).await);
        }
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
        match console::handle(&self.app, &self.console, &[self.function], event).await {
            Ok(outcome) => Ok(json!({
                "outcome": match outcome {
                    Outcome::Created(_) => "created",
                    Outcome::Current(_)
                    | Outcome::Role { .. }
                    | Outcome::FederatedCredential { .. }
                    | Outcome::Subscriptions { .. }
                    | Outcome::Subscription { .. } => "completed",
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

/// A wizard function as its `main` builds it, once per cold start: the AWS clients; the Azure
/// client where the function calls Azure; our issuer where it signs (KMS), publishes its keys
/// (KMS) or only names its URL. The integration tests build every function the same way.
pub async fn compose(
    function: Function,
    config: &crate::config::Config,
    sdk: &aws_config::SdkConfig,
) -> Result<Handler, Error> {
    let mut app = crate::config::aws_app(config, sdk);
    let calls_azure = matches!(
        function,
        Function::AppRegistration
            | Function::ClientSecret
            | Function::ConnectAccount
            | Function::SpotCredentials
            | Function::Setup
    );
    let mut validator = if calls_azure {
        Some(config.azure.validator()?)
    } else {
        None
    };
    if config.survey.queue_url.is_some() {
        let at_once = config.survey.settings().at_once;
        validator = validator.map(|v| v.with_survey_at_once(at_once));
    }
    match function {
        Function::ConnectAccount | Function::Issuer | Function::Setup => {
            if let Some(issuer) = config.issuer.kms_issuer(sdk).await? {
                let issuer = Arc::new(issuer);
                validator = validator.map(|v| v.with_issuer(issuer.clone()));
                app = app.with_issuer(issuer);
            }
        }
        Function::FederatedCredential => {
            if let Some(url) = &config.issuer.url {
                app = app.with_issuer(Arc::new(crate::issuer::Issuer::url_only(url)));
            }
        }
        _ => {}
    }
    if let Some(v) = validator {
        app = app.with_validator(Arc::new(v));
    }
    let gate = console::ConsoleGate::of(&config.console, &config.auth.org_claim)?;
    Ok(Handler::new(function, app, config.auth.org_claim.clone()).with_console(gate))
}

/// Runs the handler on the Lambda runtime until the sandbox is shut down.
pub async fn run(handler: Handler) -> Result<(), Error> {
    serve(handler).await
}

/// A function's handler: an ordinary async function of the event, testable without Lambda.
pub trait EventHandler: Send + Sync + 'static {
    fn handle_event(&self, event: LambdaEvent<Value>) -> impl Future<Output = Result<Value, Error>>;
}

impl EventHandler for Handler {
    fn handle_event(&self, event: LambdaEvent<Value>) -> impl Future<Output = Result<Value, Error>> {
        self.handle(event)
    }
}

/// Runs any handler on the Lambda runtime until the sandbox is shut down (the one loop of every
/// function).
pub async fn serve<H: EventHandler>(handler: H) -> Result<(), Error> {
    let handler = Arc::new(handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = Arc::clone(&handler);
        async move {
            let result = handler.handle_event(event).await;
            // The invocation's metrics, as EMF lines next to its logs.
            crate::metrics::flush_emf(std::io::stdout());
            result
        }
    }))
    .await
}

/// The `setup-script` function: the script and nothing else, with no application, store, AWS
/// client or configuration behind it (its role holds no AWS permission). Anything but
/// `GET /setup/scripts/azure-connect.sh` is 404 or 405, as from the other functions.
#[derive(Debug, Clone)]
pub struct ScriptHandler {
    router: Router,
}

impl Default for ScriptHandler {
    fn default() -> Self {
        let router = Router::new()
            .route(
                super::setup::SCRIPT_PATH,
                axum::routing::get(super::setup::script),
            )
            .fallback(|| async {
                super::request::stepless_problem_response(&super::error::EdgeError::NoRoute)
            })
            .method_not_allowed_fallback(|| async {
                super::request::stepless_problem_response(&super::error::EdgeError::MethodNotAllowed)
            });
        Self { router }
    }
}

impl EventHandler for ScriptHandler {
    async fn handle_event(
        &self,
        event: lambda_runtime::LambdaEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, lambda_runtime::Error> {
        use tower::ServiceExt;
        let (payload, context) = event.into_parts();
        let request: lambda_http::request::LambdaRequest = serde_json::from_value(payload)?;
        let adapter = lambda_http::Adapter::from(self.router.clone());
        let response = adapter
            .oneshot(lambda_runtime::LambdaEvent::new(request, context))
            .await?;
        Ok(serde_json::to_value(response)?)
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    use super::*;
    use crate::domain::OrgId;
    use crate::events::MemorySink;
    use crate::store::embedded::EmbeddedStore;

    fn claim(canary: String) -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(canary.clone())),
            Just(json!("606079861234")),
            Just(json!([canary.clone()])),
            Just(json!({ "x": canary })),
            any::<i64>().prop_map(|n| json!(n)),
            Just(Value::Null),
        ]
    }

    fn authorizer() -> impl Strategy<Value = Option<Value>> {
        let canary = "Zq9~[A-Za-z0-9 ._-]{4,20}";
        let claims = proptest::collection::vec(
            (
                proptest::sample::select(&["org_id", "sub", "ORG_ID", "other"][..]),
                canary.prop_flat_map(claim),
            ),
            0..4,
        )
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
        proptest::option::of(prop_oneof![
            4 => claims.prop_map(|c| json!({"jwt": {"claims": c, "scopes": null}})),
            1 => Just(json!({"jwt": null})),
            1 => canary.prop_map(|c| json!({"lambda": {"org_id": c}})),
        ])
    }

    proptest! {
        #![proptest_config(Config { cases: 256, failure_persistence: None, rng_seed: RngSeed::Fixed(0x1a_b0a), ..Config::default() })]

        /// The authorizer's claims in any shape: the organization is the named claim when it is
        /// an organization id, otherwise 401; never a 5xx, a panic or a claim repeated.
        #[test]
        fn any_authorizer_claims_give_an_organization_or_a_401(
            authorizer in authorizer(),
            request_id in prop_oneof![Just("Vh1Ab02EXAMPLE=".to_owned()), "Zq9~[ -~]{0,80}"],
            time_epoch in any::<i64>(),
        ) {
            let path = format!("{}/../events/connections/http-read.json", env!("CARGO_MANIFEST_DIR"));
            let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            match &authorizer {
                Some(a) => event["requestContext"]["authorizer"] = a.clone(),
                None => { event["requestContext"].as_object_mut().unwrap().remove("authorizer"); }
            }
            event["requestContext"]["requestId"] = json!(request_id);
            event["requestContext"]["timeEpoch"] = json!(time_epoch);
            let sent = event.to_string();
            let org = authorizer
                .as_ref()
                .and_then(|a| a["jwt"]["claims"]["org_id"].as_str())
                .and_then(|o| OrgId::parse(o).ok());

            let dir = std::env::temp_dir().join(format!("azc-jwt-{}", uuid::Uuid::new_v4().simple()));
            let store = Arc::new(EmbeddedStore::open(&dir, "p/").unwrap());
            let handler = Handler::new(Function::Connections, App::new(store, Arc::new(MemorySink::default())), "org_id");
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let answer = runtime.block_on(handler.handle(LambdaEvent::new(event, lambda_runtime::Context::default())));
            std::fs::remove_dir_all(&dir).ok();
            let seen = match &answer {
                Ok(response) => {
                    let expected = if org.is_some() { 404 } else { 401 };
                    prop_assert_eq!(&response["statusCode"], &json!(expected), "{}", response);
                    response.to_string()
                }
                // API Gateway never sends claims that are not strings; such an event fails the
                // invocation, and its error must not repeat them either.
                Err(e) => format!("{e} {e:?}"),
            };
            for canary in sent.split('"').filter(|s| s.starts_with("Zq9~")) {
                prop_assert!(!seen.contains(canary), "{canary} repeated in {seen}");
            }
        }
    }
}
