//! The backend as `template.yaml` deploys it, in one test process: every function built by the
//! same composition as its `main` (`edge::lambda::compose`, `edge::health::compose`,
//! `edge::expiry::compose`) from the environment the template gives it, with AWS credentials of
//! its own (its SAM logical id as the access key), its AWS calls through the [`IamGate`] that
//! enforces the template's policy for it. Requests reach the function the template routes them to,
//! as API Gateway (payload 2.0, JWT claims) and EventBridge (rule patterns) deliver them; the whole
//! API is served on a loopback port too, so that the Azure emulator fetches our issuer's keys
//! from the `oidc` function.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_secretsmanager::config::{Credentials, SharedCredentialsProvider};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use serde_yaml_ng::Value as Yaml;

use crate::iam::{ACCOUNT, IamGate, REGION, Stack, TemplatePolicies, resolve, wildcard};
use crate::{Reply, aws_endpoint, sdk_config, unique_prefix};
use shared::edge::Function;
use shared::edge::expiry::ExpiryHandler;
use shared::edge::health::HealthHandler;
use shared::edge::lambda::ScriptHandler;
use shared::edge::lambda::{EventHandler, Handler};

/// A function as its `main` composes it: a wizard function, or the script's (no application).
#[derive(Debug, Clone)]
enum Composed {
    Wizard(Box<Handler>),
    Script(ScriptHandler),
}

impl Composed {
    async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
        match self {
            Self::Wizard(h) => h.handle(event).await,
            Self::Script(h) => h.handle_event(event).await,
        }
    }
}

/// A route of the template: method, path pattern (`{id}` → `*`), the function's logical id.
#[derive(Debug, Clone)]
struct Route {
    method: String,
    path: String,
    route_key: String,
    function: String,
}

/// A console rule of the template: its sources and detail-types, the function's logical id.
#[derive(Debug, Clone)]
struct Rule {
    sources: Vec<String>,
    detail_types: Vec<String>,
    function: String,
}

#[derive(Debug, Clone)]
pub struct Deployed {
    pub gate: IamGate,
    pub stack_name: String,
    pub prefix: String,
    pub bus_name: String,
    pub key_arn: String,
    pub rotation_function_arn: String,
    /// Where the API is served (the issuer is `{url}/oidc`).
    pub url: String,
    /// The queue every outcome event on the bus is delivered to (a rule in moto).
    events_queue: String,
    /// The survey queue (`SurveyQueue`): its URL and the function its SQS trigger invokes.
    survey_queue: (String, String),
    pub template: Arc<Yaml>,
    pub stack: Stack,
    handlers: Arc<BTreeMap<String, Composed>>,
    expiry: Arc<ExpiryHandler>,
    health: Arc<HealthHandler>,
    routes: Arc<Vec<Route>>,
    rules: Arc<Vec<Rule>>,
}

/// The AWS resources the stack would have made, made in moto (unsigned set-up calls).
async fn make_resources(stack_name: &str) -> (String, String, String, String) {
    let sdk = sdk_config().await;
    let bus_name = format!("{stack_name}-azure-connect");
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    events.create_event_bus().name(&bus_name).send().await.unwrap();
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key = kms
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::Rsa2048)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    let key_arn = key.key_metadata().unwrap().arn().unwrap().to_owned();
    let credential_key = kms.create_key().send().await.unwrap();
    let credential_key_arn = credential_key.key_metadata().unwrap().arn().unwrap().to_owned();
    let function = crate::moto_lambda_function(&format!("{stack_name}-secret-expiry")).await;
    (bus_name, key_arn, credential_key_arn, function)
}

/// The function whose SQS trigger drains the queue `queue` (its logical id) in the template.
fn sqs_consumer(template: &Yaml, queue: &str) -> String {
    for (logical, resource) in template["Resources"].as_mapping().unwrap() {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for event in events.values() {
            let arn = &event["Properties"]["Queue"];
            let names = format!("{arn:?}");
            if event["Type"].as_str() == Some("SQS") && names.contains(queue) {
                return logical.as_str().unwrap().to_owned();
            }
        }
    }
    panic!("no function is triggered by {queue}")
}

/// moto's SQS over its JSON protocol (no SDK for one queue).
async fn sqs(target: &str, body: Value) -> Value {
    sqs_as(&aws_endpoint(), "test", target, body).await
}

/// [`sqs`] at `endpoint` (the gate) as `who` (a function's logical id: its role decides).
async fn sqs_as(endpoint: &str, who: &str, target: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header("x-amz-target", format!("AmazonSQS.{target}"))
        .header("content-type", "application/x-amz-json-1.0")
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential={who}/20261129/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A queue that receives every outcome event published on `bus` (its URL).
async fn events_queue(bus: &str) -> String {
    let name = format!("{bus}-outcomes");
    let created = sqs("CreateQueue", json!({"QueueName": name})).await;
    let url = created["QueueUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let events = aws_sdk_eventbridge::Client::new(&sdk_config().await);
    events
        .put_rule()
        .name(format!("{bus}-outcomes"))
        .event_bus_name(bus)
        .event_pattern(r#"{"source": ["azure-connect"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(format!("{bus}-outcomes"))
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("outcomes")
                .arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    url
}

impl Deployed {
    /// The stack with the template's policies as written.
    pub async fn start(azure_url: &str) -> Self {
        Self::start_with(azure_url, |p| p).await
    }

    /// The stack with its policies changed by `edit` (e.g. one action taken out).
    pub async fn start_with(
        azure_url: &str,
        edit: impl FnOnce(TemplatePolicies) -> TemplatePolicies,
    ) -> Self {
        Self::start_with_params(azure_url, &[], edit).await
    }

    /// The stack with template parameters of the test's (beside the prefixes and the issuer).
    pub async fn start_with_params(
        azure_url: &str,
        params: &[(&str, &str)],
        edit: impl FnOnce(TemplatePolicies) -> TemplatePolicies,
    ) -> Self {
        let stack_name = format!("azc{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let prefix = unique_prefix();
        let (bus_name, key_arn, credential_key_arn, rotation_function_arn) =
            make_resources(&stack_name).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let template = TemplatePolicies::template();
        let survey_name = format!("{stack_name}-survey");
        let created = sqs("CreateQueue", json!({"QueueName": survey_name})).await;
        let survey_url = created["QueueUrl"].as_str().unwrap().to_owned();
        let survey_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{survey_name}");
        let bus_arn = format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{bus_name}");
        let issuer_url = format!("{url}/oidc");
        let credential_prefix = shared::store::default_credential_prefix(&prefix);
        let mut all: Vec<(&str, &str)> = vec![
            ("SecretPrefix", prefix.as_str()),
            ("CredentialPrefix", credential_prefix.as_str()),
            ("IssuerUrl", issuer_url.as_str()),
            ("PublicApiUrl", url.as_str()),
            ("JwtIssuer", "https://auth.example.com/"),
            ("JwtAudience", "azure-connect"),
        ];
        all.extend_from_slice(params);
        let stack = Stack::new(&template, &stack_name, &all)
            .with_resource(
                "EventBus",
                &bus_name,
                &[("Arn", bus_arn.as_str()), ("Name", bus_name.as_str())],
            )
            .with_resource("IssuerKey", &key_arn, &[("Arn", key_arn.as_str())])
            .with_resource(
                "CredentialKey",
                &credential_key_arn,
                &[("Arn", credential_key_arn.as_str())],
            )
            .with_resource(
                "SurveyQueue",
                &survey_url,
                &[("Arn", survey_arn.as_str()), ("QueueName", survey_name.as_str())],
            )
            .with_resource(
                "FailedEventsQueue",
                "failed",
                &[
                    ("Arn", "arn:aws:sqs:us-east-1:123456789012:failed"),
                    ("QueueName", "failed"),
                ],
            );
        let policies = TemplatePolicies::from_template(&template, &stack);
        let gate = IamGate::start(&aws_endpoint(), edit(policies.clone())).await;

        let mut handlers = BTreeMap::new();
        let mut expiry = None;
        let mut health = None;
        for (logical, resource) in template["Resources"].as_mapping().unwrap() {
            let Some(binary) = resource["Metadata"]["BuildProperties"]["Binary"].as_str() else {
                continue;
            };
            let logical = logical.as_str().unwrap().to_owned();
            let mut env = policies.environment(&logical).clone();
            for k in [
                "AZURE_AUTHORITY_HOST",
                "AZURE_RESOURCE_MANAGER_ENDPOINT",
                "AZURE_GRAPH_ENDPOINT",
            ] {
                env.insert(k.to_owned(), azure_url.to_owned());
            }
            // The default budget: an estate of a thousand subscriptions takes seconds in a debug build.
            env.insert("AZURE_VALIDATION_BUDGET_MS".into(), "15000".into());
            env.insert("HEALTH_CHECKS_PER_SECOND".into(), "1000".into());
            env.insert("SCAN_WRITES_PER_SECOND".into(), "1000".into());
            let config = shared::config::Config::from_lookup(|k| env.get(k).cloned())
                .unwrap_or_else(|e| panic!("{logical}: {e}"));
            let sdk = Self::sdk_for_at(&logical, gate.url()).await;
            match binary {
                "secret-expiry" => expiry = Some(shared::edge::expiry::compose(&config, &sdk).await.unwrap()),
                "health-check" => health = Some(shared::edge::health::compose(&config, &sdk).await.unwrap()),
                // No configuration, application or AWS client: as its main.
                "setup-script" => {
                    handlers.insert(logical.clone(), Composed::Script(ScriptHandler::default()));
                }
                name => {
                    let f = *Function::ALL
                        .iter()
                        .find(|f| f.name() == name)
                        .unwrap_or_else(|| panic!("no wizard function {name}"));
                    let handler = shared::edge::lambda::compose(f, &config, &sdk)
                        .await
                        .unwrap_or_else(|e| panic!("{logical}: {e}"));
                    handlers.insert(logical.clone(), Composed::Wizard(Box::new(handler)));
                }
            }
        }
        let (routes, rules) = routes_and_rules(&template, &stack);
        let events_queue = events_queue(&bus_name).await;
        let survey_consumer = sqs_consumer(&template, "SurveyQueue");
        let deployed = Self {
            survey_queue: (survey_url, survey_consumer),
            gate,
            stack_name,
            prefix,
            bus_name,
            key_arn,
            rotation_function_arn,
            url,
            events_queue,
            template: Arc::new(template),
            stack,
            handlers: Arc::new(handlers),
            expiry: Arc::new(expiry.expect("secret-expiry in the template")),
            health: Arc::new(health.expect("health-check in the template")),
            routes: Arc::new(routes),
            rules: Arc::new(rules),
        };
        deployed.serve(listener);
        deployed
    }

    /// Serves the API on `listener`. A Lambda handler's future is not `Send` (lambda_http's
    /// adapter), so the requests are handled on a thread of their own, one task each.
    fn serve(&self, listener: tokio::net::TcpListener) {
        type Job = (
            String,
            String,
            Vec<(String, String)>,
            Option<String>,
            tokio::sync::oneshot::Sender<Reply>,
        );
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let served = self.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                while let Some((method, path, headers, body, reply)) = rx.recv().await {
                    let served = served.clone();
                    tokio::task::spawn_local(async move {
                        let _ = reply.send(served.http(&method, &path, None, &headers, body).await);
                    });
                }
            });
        });
        let front = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let tx = tx.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = http_body_util::BodyExt::collect(body).await.unwrap().to_bytes();
                let path = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/")
                    .to_owned();
                let headers: Vec<(String, String)> = parts
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                    .collect();
                let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
                let body = (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned());
                tx.send((parts.method.as_str().to_owned(), path, headers, body, reply_tx))
                    .unwrap();
                let reply = reply_rx.await.unwrap();
                let mut res = axum::response::Response::new(axum::body::Body::from(match &reply.body {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }));
                *res.status_mut() = reply.status;
                *res.headers_mut() = reply.headers;
                res
            }
        });
        tokio::spawn(async move { axum::serve(listener, front).await.unwrap() });
    }

    /// The SDK configuration of one function: its own credentials, through the gate (the
    /// environment's `AWS_ENDPOINT_URL` would otherwise win over the endpoint set here).
    async fn sdk_for_at(logical: &str, gate: &str) -> aws_config::SdkConfig {
        #[derive(Debug)]
        struct NoEnvironment;
        impl aws_types::service_config::LoadServiceConfig for NoEnvironment {
            fn load_config(&self, _: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
                None
            }
        }
        sdk_config()
            .await
            .to_builder()
            .service_config(NoEnvironment)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                logical, "test", None, None, "template",
            )))
            .endpoint_url(gate)
            .build()
    }

    /// The AWS configuration `logical`'s code gets: its credentials, through the gate.
    pub async fn sdk_for(&self, logical: &str) -> aws_config::SdkConfig {
        Self::sdk_for_at(logical, self.gate.url()).await
    }

    /// Which function the template routes `method path` to.
    pub fn function_of(&self, method: &str, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or(path);
        self.route(method, path).map(|r| r.function.clone())
    }

    fn route(&self, method: &str, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| {
            r.method.eq_ignore_ascii_case(method)
                && wildcard(&r.path, path)
                && segments(&r.path) == segments(path)
        })
    }

    /// One HTTP API request as API Gateway delivers it to the function the template routes it to:
    /// the organization as the JWT authorizer's claim (none: no authorizer claims).
    pub async fn http(
        &self,
        method: &str,
        path_and_query: &str,
        org: Option<&str>,
        headers: &[(String, String)],
        body: Option<String>,
    ) -> Reply {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let Some(route) = self.route(method, path).cloned() else {
            return Reply {
                status: StatusCode::NOT_FOUND,
                headers: HeaderMap::new(),
                body: json!({"message": "Not Found"}),
            };
        };
        let mut header_map = serde_json::Map::new();
        for (k, v) in headers {
            header_map.insert(k.to_ascii_lowercase(), Value::String(v.clone()));
        }
        let query_params: serde_json::Map<String, Value> = url_pairs(query)
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let authorizer =
            org.map(|o| json!({"jwt": {"claims": {"org_id": o, "sub": "user-1"}, "scopes": null}}));
        // When API Gateway received it: now.
        let now = chrono::Utc::now();
        let mut payload = json!({
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": header_map,
            "requestContext": {
                "accountId": ACCOUNT, "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
                "requestId": uuid::Uuid::new_v4().to_string(), "routeKey": route.route_key, "stage": "$default",
                "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(), "timeEpoch": now.timestamp_millis(),
            },
            "isBase64Encoded": false,
        });
        if let Some(a) = authorizer {
            payload["requestContext"]["authorizer"] = a;
        }
        if !query_params.is_empty() {
            payload["queryStringParameters"] = Value::Object(query_params);
        }
        if let Some(b) = body {
            payload["body"] = Value::String(b);
        }
        let handler = &self.handlers[&route.function];
        let out = handler
            .handle(LambdaEvent::new(payload, Context::default()))
            .await
            .unwrap_or_else(|e| panic!("{} failed: {e}", route.function));
        let status = StatusCode::from_u16(out["statusCode"].as_u64().unwrap_or(500) as u16).unwrap();
        let mut headers = HeaderMap::new();
        for (k, v) in out["headers"].as_object().into_iter().flatten() {
            if let (Ok(k), Some(Ok(v))) = (
                HeaderName::try_from(k.as_str()),
                v.as_str().map(HeaderValue::from_str),
            ) {
                headers.insert(k, v);
            }
        }
        let text = out["body"].as_str().unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// [`Self::http`] with a JSON body, for `org`.
    pub async fn call(&self, method: &str, path: &str, org: &str, body: Option<Value>) -> Reply {
        self.http(
            method,
            path,
            Some(org),
            &[("content-type".into(), "application/json".into())],
            body.map(|b| b.to_string()),
        )
        .await
    }

    /// A console event as EventBridge delivers it to the function whose rule matches it; `None`
    /// when no rule matches (EventBridge delivers it to no one).
    pub async fn console(
        &self,
        source: &str,
        detail_type: &str,
        detail: Value,
    ) -> Option<Result<Value, String>> {
        let rule = self.rules.iter().find(|r| {
            r.sources.iter().any(|s| s == source) && r.detail_types.iter().any(|d| d == detail_type)
        })?;
        let event = json!({
            "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": detail_type,
            "source": source, "account": ACCOUNT, "time": chrono::Utc::now().to_rfc3339(),
            "region": REGION, "resources": [], "detail": detail,
        });
        Some(
            self.handlers[&rule.function]
                .handle(LambdaEvent::new(event, Context::default()))
                .await
                .map_err(|e| e.to_string()),
        )
    }

    /// Drains the survey queue as Lambda's SQS trigger does: each message received with the
    /// consuming function's role (through the gate), handed to that function as an SQS event of
    /// one record, deleted unless the function gives it back (`batchItemFailures`). Returns the
    /// messages handled and the ones given back.
    pub async fn drain_survey(&self) -> (usize, usize) {
        let (url, function) = &self.survey_queue;
        let (mut handled, mut failed) = (0, 0);
        // The trigger's poller reads the queue's attributes (Lambda's SQS trigger documents the
        // role needing sqs:GetQueueAttributes beside receive and delete).
        let attributes = sqs_as(
            self.gate.url(),
            function,
            "GetQueueAttributes",
            json!({"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages"]}),
        )
        .await;
        assert!(attributes.get("__type").is_none(), "{attributes}");
        loop {
            let got = sqs_as(
                self.gate.url(),
                function,
                "ReceiveMessage",
                json!({"QueueUrl": url, "MaxNumberOfMessages": 1, "AttributeNames": ["All"]}),
            )
            .await;
            let Some(message) = got["Messages"].as_array().and_then(|m| m.first()).cloned() else {
                return (handled, failed);
            };
            let event = json!({"Records": [{
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message["Attributes"],
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{}", url.rsplit('/').next().unwrap()),
                "awsRegion": REGION,
            }]});
            // Boxed: a handler's future is large, and the walks that drain are deep already.
            let out = Box::pin(self.handlers[function].handle(LambdaEvent::new(event, Context::default())))
                .await
                .unwrap();
            handled += 1;
            if out["batchItemFailures"].as_array().is_some_and(|f| !f.is_empty()) {
                failed += 1;
                continue;
            }
            let deleted = sqs_as(
                self.gate.url(),
                function,
                "DeleteMessage",
                json!({"QueueUrl": url, "ReceiptHandle": message["ReceiptHandle"]}),
            )
            .await;
            assert!(deleted.get("__type").is_none(), "{deleted}");
        }
    }

    /// A console event delivered to `function` (SAM logical id) whatever the rules say, as a
    /// misrouted or forged delivery would reach it.
    pub async fn console_to(&self, function: &str, event: Value) -> Result<Value, String> {
        self.handlers[function]
            .handle(LambdaEvent::new(event, Context::default()))
            .await
            .map_err(|e| e.to_string())
    }

    /// One invocation of `secret-expiry` (a scan or a rotation step), as the scheduler or
    /// Secrets Manager sends it.
    pub async fn expiry(&self, event: Value) -> Result<Value, String> {
        let mut context = Context::default();
        context.invoked_function_arn = self.rotation_function_arn.clone();
        self.expiry
            .handle(LambdaEvent::new(event, context))
            .await
            .map_err(|e| e.to_string())
    }

    /// The outcome events published on the bus so far (each once: they are taken off the queue).
    pub async fn bus_events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let got = sqs(
                "ReceiveMessage",
                json!({"QueueUrl": self.events_queue, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0}),
            )
            .await;
            let messages = got["Messages"].as_array().cloned().unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                out.push(serde_json::from_str(m["Body"].as_str().unwrap_or("null")).unwrap_or(Value::Null));
                sqs(
                    "DeleteMessage",
                    json!({"QueueUrl": self.events_queue, "ReceiptHandle": m["ReceiptHandle"]}),
                )
                .await;
            }
        }
    }

    /// One invocation of `secret-expiry` as the same function would take it `days` from now (its
    /// clock moved: a scheduled time that far ahead is refused otherwise).
    pub async fn expiry_later(&self, days: i64, event: Value) -> Result<Value, String> {
        let later = move || chrono::Utc::now() + chrono::Duration::days(days);
        let handler = self.expiry.as_ref().clone().with_clock(Arc::new(later));
        let mut context = Context::default();
        context.invoked_function_arn = self.rotation_function_arn.clone();
        handler
            .handle(LambdaEvent::new(event, context))
            .await
            .map_err(|e| e.to_string())
    }

    /// One run of `health-check`.
    pub async fn health(&self, event: Value) -> Result<Value, String> {
        self.health
            .handle(LambdaEvent::new(event, Context::default()))
            .await
            .map_err(|e| e.to_string())
    }
}

fn segments(path: &str) -> usize {
    path.split('/').count()
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    url_decode_pairs(query)
}

fn url_decode_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.replace("%2F", "/").replace("%3A", ":"))
        })
        .collect()
}

fn routes_and_rules(template: &Yaml, stack: &Stack) -> (Vec<Route>, Vec<Rule>) {
    let mut routes = Vec::new();
    let mut rules = Vec::new();
    for (logical, resource) in template["Resources"].as_mapping().unwrap() {
        let logical = logical.as_str().unwrap().to_owned();
        for (_, event) in resource["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            let p = &event["Properties"];
            match event["Type"].as_str() {
                Some("HttpApi") => {
                    let method = p["Method"].as_str().unwrap().to_owned();
                    let path = p["Path"].as_str().unwrap().to_owned();
                    let pattern = path
                        .split('/')
                        .map(|s| if s.starts_with('{') { "*" } else { s })
                        .collect::<Vec<_>>()
                        .join("/");
                    routes.push(Route {
                        route_key: format!("{method} {path}"),
                        method,
                        path: pattern,
                        function: logical.clone(),
                    });
                }
                Some("EventBridgeRule") => rules.push(Rule {
                    sources: resolve(&p["Pattern"]["source"], template, stack).into_vec(),
                    detail_types: resolve(&p["Pattern"]["detail-type"], template, stack).into_vec(),
                    function: logical.clone(),
                }),
                _ => {}
            }
        }
    }
    (routes, rules)
}
