//! A management group too large for one answer (issue 27), on both stores, through the real
//! router and the Azure emulator over real HTTP: Connect Account answers 202 with the survey
//! `surveying`, its chunks (on a queue) are each merged once whatever order or how often they
//! come, progress is announced, a chunk that keeps failing ends the survey `failed` (what was
//! merged and every link kept) and Connect Account again starts another; the health pass surveys
//! the same way and writes nothing when nothing changed. The queue here is memory (each chunk
//! delivered by the test, as SQS would); the local server's own queue and SQS itself (moto,
//! through the Lambda handler) at the end.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use integration_tests::{Reply, SECRET, STORES, StoreKind, group_subscription, send};
use serde_json::{Value, json};
use shared::app::survey::{ChunkOutcome, SurveyChunk, SurveySettings};
use shared::app::{App, HealthSchedule, Window};
use shared::domain::document::estate::page_key;
use shared::domain::{ConnectionId, OrgId};
use shared::edge::Function;
use shared::edge::http::{OrgSource, router};
use shared::events::MemorySink;
use shared::queue::{MemoryQueue, WorkQueue};
use shared::store::ConnectionStore;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const APP: &str = "11111111-2222-4333-8444-555555555555";
const ORG: &str = "org-survey";
/// Subscriptions in the group, at once at most, and in a chunk: 130 → 7 chunks.
const COUNT: usize = 130;
const SETTINGS: SurveySettings = SurveySettings {
    at_once: 50,
    chunk: 20,
};

struct Big {
    emulator: azure_emulator::Emulator,
    app: App,
    router: Router,
    sink: Arc<MemorySink>,
    queue: Arc<MemoryQueue>,
    store: Arc<dyn ConnectionStore>,
    id: String,
}

impl Big {
    async fn new(kind: StoreKind, queue: Arc<dyn WorkQueue>, memory: Arc<MemoryQueue>) -> Self {
        let world = integration_tests::group_world(COUNT);
        let (emulator, azure) = integration_tests::emulator(world, Duration::from_secs(4)).await;
        let store = integration_tests::store(kind).await;
        let sink = Arc::new(MemorySink::default());
        let validator = azure.validator().unwrap().with_survey_at_once(SETTINGS.at_once);
        let app = App::new(store.clone(), sink.clone())
            .with_validator(Arc::new(validator))
            .with_survey_queue(queue, SETTINGS);
        let router = router(app.clone(), OrgSource::local_header(), &Function::ALL);
        let mut big = Self {
            emulator,
            app,
            router,
            sink,
            queue: memory,
            store,
            id: String::new(),
        };
        let r = big
            .call("POST", "/connections", Some(json!({"accountId": "act-00005e01"})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        big.id = r.body["connectionId"].as_str().unwrap().to_owned();
        for (step, body) in [
            ("/app-registration", json!({"tenantId": TENANT, "clientId": APP})),
            ("/client-secret", json!({"clientSecret": SECRET})),
            ("/scope", json!({"managementGroupId": "all"})),
        ] {
            let r = big.call("PUT", &big.path(step), Some(body)).await;
            assert_eq!(r.status, StatusCode::OK, "{step}: {:?}", r.body);
        }
        big
    }

    async fn with_memory_queue(kind: StoreKind) -> Self {
        let queue = Arc::new(MemoryQueue::default());
        Self::new(kind, queue.clone(), queue).await
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let headers: &[(&str, &str)] = if body.is_some() {
            &[("content-type", "application/json")]
        } else {
            &[]
        };
        send(
            &self.router,
            method,
            path,
            Some(ORG),
            headers,
            body.map(|b| b.to_string()),
        )
        .await
    }

    fn path(&self, rest: &str) -> String {
        format!("/connections/{}{rest}", self.id)
    }

    async fn connect(&self) -> Reply {
        self.call("POST", &self.path("/connect"), None).await
    }

    async fn view(&self) -> Value {
        self.call("GET", &self.path(""), None).await.body
    }

    /// The chunks on the queue now, parsed.
    fn chunks(&self) -> Vec<SurveyChunk> {
        self.queue
            .take()
            .iter()
            .map(|m| SurveyChunk::parse(m).unwrap())
            .collect()
    }

    async fn deliver(&self, chunk: &SurveyChunk, last_attempt: bool) -> ChunkOutcome {
        self.app.survey_chunk(chunk.clone(), last_attempt).await.unwrap()
    }

    fn events(&self, detail_type: &str) -> Vec<Value> {
        self.sink
            .events()
            .into_iter()
            .filter(|e| e.detail_type == detail_type)
            .map(|e| e.detail)
            .collect()
    }

    async fn version(&self) -> String {
        let org = OrgId::parse(ORG).unwrap();
        let id = ConnectionId::parse(&self.id).unwrap();
        self.store.load(&org, &id).await.unwrap().unwrap().version.0
    }

    async fn pass(&self, run: &str) -> shared::app::HealthReport {
        let schedule = HealthSchedule {
            period: Duration::from_secs(86_400),
            pace: Duration::ZERO,
        };
        self.app
            .health_pass(run, chrono::Utc::now(), Window::All, schedule)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_group_too_large_for_one_answer_is_surveyed_in_chunks_each_merged_once() {
    for kind in STORES {
        let big = Big::with_memory_queue(kind).await;
        let r = big.connect().await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{kind:?}: {:?}", r.body);
        assert_eq!(r.body["status"], "connected");
        let survey = &r.body["estate"]["survey"];
        assert_eq!(
            (&survey["state"], &survey["surveyed"], &survey["total"]),
            (&json!("surveying"), &json!(0), &json!(COUNT)),
            "{kind:?}: {survey}"
        );
        assert_eq!(r.body["estate"]["subscriptions"], 0, "nothing surveyed yet");
        let chunks = big.chunks();
        assert_eq!(chunks.len(), COUNT.div_ceil(SETTINGS.chunk), "{kind:?}");
        assert!(chunks.iter().all(|c| c.subscriptions.len() <= SETTINGS.chunk));
        // In the pages' order: each chunk's merge touches one or two pages of the list.
        let keys: Vec<[u8; 32]> = chunks
            .iter()
            .flat_map(|c| c.subscriptions.iter().map(|(id, _)| page_key(id)))
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] <= w[1]),
            "{kind:?}: chunks not in page order"
        );

        // Delivered out of order, the second one twice at the same time (SQS delivers at least
        // once): counted once.
        let last = chunks.len() - 1;
        assert_eq!(big.deliver(&chunks[last], false).await, ChunkOutcome::Merged);
        let (a, b) = tokio::join!(
            big.deliver(&chunks[last - 1], false),
            big.deliver(&chunks[last - 1], false)
        );
        let mut both = [a, b];
        both.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(both, [ChunkOutcome::Merged, ChunkOutcome::Unchanged], "{kind:?}");
        let surveyed = chunks[last].subscriptions.len() + chunks[last - 1].subscriptions.len();
        assert_eq!(
            big.view().await["estate"]["survey"]["surveyed"],
            surveyed,
            "{kind:?}"
        );
        // The rest side by side (as Lambda runs several): each announces only what it changed.
        let rest =
            futures_util::future::join_all(chunks[..last - 1].iter().map(|c| big.deliver(c, false))).await;
        assert!(
            rest.iter().all(|o| *o == ChunkOutcome::Merged),
            "{kind:?}: {rest:?}"
        );
        let view = big.view().await;
        let survey = &view["estate"]["survey"];
        assert_eq!(
            (&survey["state"], &survey["surveyed"]),
            (&json!("done"), &json!(COUNT)),
            "{kind:?}: {survey}"
        );
        assert_eq!(view["estate"]["subscriptions"], COUNT);
        assert_eq!(view["estate"]["byStatus"], json!({"awaiting-account": COUNT}));
        // Each subscription discovered once; progress at the start and at the end at least.
        assert_eq!(big.events("Subscription Discovered").len(), COUNT, "{kind:?}");
        let progress = big.events("Estate Survey Progress");
        assert!(
            progress.len() >= 2 && progress.len() <= chunks.len() + 1,
            "{kind:?}: {progress:?}"
        );
        assert_eq!(progress[0]["state"], "surveying");
        let last = progress.last().unwrap();
        assert_eq!(
            (&last["state"], &last["surveyed"]),
            (&json!("done"), &json!(COUNT))
        );
        // The list pages through all of them.
        let r = big.call("GET", &big.path("/subscriptions?limit=500"), None).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), COUNT);
        // Any chunk again, later: nothing.
        let before = big.version().await;
        assert_eq!(
            big.deliver(&chunks[0], true).await,
            ChunkOutcome::Dropped,
            "the run ended"
        );
        assert_eq!(big.version().await, before);
    }
}

#[tokio::test]
async fn a_chunk_that_keeps_failing_ends_the_survey_failed_keeping_links_and_connect_again_finishes_it() {
    let big = Big::with_memory_queue(StoreKind::Embedded).await;
    assert_eq!(big.connect().await.status, StatusCode::ACCEPTED);
    let chunks = big.chunks();
    assert_eq!(big.deliver(&chunks[0], false).await, ChunkOutcome::Merged);
    // A subscription of the first chunk tied to an account meanwhile.
    let linked = chunks[0].subscriptions[0].0.to_string();
    let r = big
        .call(
            "PUT",
            &big.path(&format!("/subscriptions/{linked}")),
            Some(json!({"accountId": "act-00005e02"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // Azure out of reach: the chunk is given back while attempts remain, then the survey fails.
    big.emulator.set_behaviour(azure_emulator::Behaviour {
        outage: true,
        ..azure_emulator::Behaviour::default()
    });
    let err = big.app.survey_chunk(chunks[1].clone(), false).await;
    assert!(err.as_ref().is_err_and(|e| e.is_retryable()), "{err:?}");
    assert_eq!(big.view().await["estate"]["survey"]["state"], "surveying");
    assert_eq!(big.deliver(&chunks[1], true).await, ChunkOutcome::Failed);
    let view = big.view().await;
    let survey = &view["estate"]["survey"];
    assert_eq!(survey["state"], "failed", "{survey}");
    assert_eq!(survey["code"], "azure-unavailable");
    assert_eq!(survey["retryable"], true);
    assert_eq!(survey["surveyed"], SETTINGS.chunk);
    assert_eq!(view["status"], "connected", "the connection stands on its group");
    let failed = big.events("Estate Survey Progress");
    assert_eq!(failed.last().unwrap()["state"], "failed");
    // The failed run takes no more chunks.
    big.emulator.set_behaviour(azure_emulator::Behaviour::default());
    assert_eq!(big.deliver(&chunks[2], false).await, ChunkOutcome::Dropped);

    // Connect Account again: another run; the old one's chunks are dropped; the link stays.
    let r = big.connect().await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let again = big.chunks();
    assert_eq!(big.deliver(&chunks[3], false).await, ChunkOutcome::Dropped);
    for c in &again {
        assert_eq!(big.deliver(c, false).await, ChunkOutcome::Merged);
    }
    let view = big.view().await;
    assert_eq!(view["estate"]["survey"]["state"], "done");
    assert_eq!(view["estate"]["byStatus"]["linked"], 1, "{view}");
    let r = big
        .call("GET", &big.path("/subscriptions?status=linked"), None)
        .await;
    assert_eq!(r.body["items"][0]["subscriptionId"], linked.as_str());
    assert_eq!(r.body["items"][0]["accountId"], "act-00005e02");
}

#[tokio::test]
async fn the_health_pass_surveys_a_large_group_in_chunks_and_writes_nothing_when_nothing_changed() {
    for kind in STORES {
        let big = Big::with_memory_queue(kind).await;
        assert_eq!(big.connect().await.status, StatusCode::ACCEPTED);
        for c in big.chunks() {
            big.deliver(&c, false).await;
        }
        // Nothing changed in Azure: the pass and its chunks write nothing.
        let before = big.version().await;
        let report = big.pass(&format!("quiet-{kind:?}")).await;
        assert_eq!((report.checked, report.unchanged), (1, 1), "{kind:?}: {report:?}");
        let chunks = big.chunks();
        assert_eq!(chunks.len(), COUNT.div_ceil(SETTINGS.chunk), "{kind:?}");
        for c in &chunks {
            assert_eq!(big.deliver(c, false).await, ChunkOutcome::Unchanged, "{kind:?}");
        }
        assert_eq!(
            big.version().await,
            before,
            "{kind:?}: a quiet pass writes nothing"
        );

        // One subscription moved out of the group, one added: lost at the pass (the listing),
        // discovered by its chunk; each announced once.
        let gone = group_subscription(7);
        let added = "00000000-0000-4000-8000-0000000a0d0d".to_owned();
        let (g, a) = (gone.clone(), added.clone());
        big.emulator.update(move |w| {
            let all = w.management_groups.iter_mut().find(|m| m.name == "all").unwrap();
            all.subscriptions.retain(|s| *s != g);
            all.subscriptions.push(a.clone());
            let mut sub = w.subscriptions[0].clone();
            sub.id = a;
            sub.display_name = "added later".into();
            w.subscriptions.push(sub);
        });
        big.pass(&format!("changed-{kind:?}")).await;
        let lost = big.events("Subscription Lost");
        assert_eq!(lost.len(), 1, "{kind:?}: {lost:?}");
        assert_eq!(lost[0]["subscriptionId"], gone.as_str());
        for c in big.chunks() {
            big.deliver(&c, false).await;
        }
        let found: Vec<Value> = big
            .events("Subscription Discovered")
            .into_iter()
            .filter(|e| e["subscriptionId"] == added.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{kind:?}");
        let view = big.view().await;
        assert_eq!(view["estate"]["subscriptions"], COUNT + 1);
        assert_eq!(view["estate"]["byStatus"]["lost"], 1);

        // The next pass: the added one disabled, in the same chunk as before: that pass's write
        // is its own (not taken for the last pass's, already made).
        let a = added.clone();
        big.emulator.update(move |w| {
            w.subscriptions.iter_mut().find(|s| s.id == a).unwrap().state = "Disabled".into();
        });
        big.pass(&format!("disabled-{kind:?}")).await;
        for c in big.chunks() {
            big.deliver(&c, false).await;
        }
        let changed: Vec<Value> = big
            .events("Subscription Changed")
            .into_iter()
            .filter(|e| e["subscriptionId"] == added.as_str())
            .collect();
        assert_eq!(changed.len(), 1, "{kind:?}: {changed:?}");
        assert_eq!(changed[0]["status"], "disabled");
    }
}

#[tokio::test]
async fn the_local_servers_queue_drains_itself() {
    let (queue, chunks) = shared::queue::LocalQueue::new();
    let unused = Arc::new(MemoryQueue::default());
    let big = Big::new(StoreKind::Embedded, Arc::new(queue), unused).await;
    tokio::spawn(big.app.clone().drain_local(chunks));
    assert_eq!(big.connect().await.status, StatusCode::ACCEPTED);
    let mut state = Value::Null;
    for _ in 0..200 {
        state = big.view().await["estate"]["survey"].clone();
        if state["state"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        (&state["state"], &state["surveyed"]),
        (&json!("done"), &json!(COUNT)),
        "{state}"
    );
}

/// SQS's event as Lambda delivers it, one record: the chunk's message, received `receives` times.
fn sqs_event(chunk: &SurveyChunk, receives: u32) -> Value {
    json!({"Records": [{
        "messageId": format!("m-{}-{receives}", chunk.index),
        "receiptHandle": "r",
        "body": serde_json::to_string(chunk).unwrap(),
        "attributes": {"ApproximateReceiveCount": receives.to_string(), "SentTimestamp": "1765000000000"},
        "messageAttributes": {},
        "md5OfBody": "0",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:azc-survey",
        "awsRegion": "us-east-1",
    }]})
}

#[tokio::test]
async fn connect_accounts_sqs_trigger_gives_back_a_failed_chunk_until_its_last_receive() {
    let big = Big::with_memory_queue(StoreKind::Embedded).await;
    assert_eq!(big.connect().await.status, StatusCode::ACCEPTED);
    let chunks = big.chunks();
    let handler = shared::edge::lambda::Handler::new(Function::ConnectAccount, big.app.clone(), "org_id");
    let invoke = |event: Value| {
        let handler = handler.clone();
        async move {
            let event = lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default());
            Box::pin(handler.handle(event)).await.unwrap()
        }
    };
    // Merged: nothing given back.
    let out = invoke(sqs_event(&chunks[0], 1)).await;
    assert_eq!(out, json!({"batchItemFailures": []}));
    // Azure out of reach: given back (its message id) while receives remain…
    big.emulator.set_behaviour(azure_emulator::Behaviour {
        outage: true,
        ..azure_emulator::Behaviour::default()
    });
    let out = invoke(sqs_event(&chunks[1], 2)).await;
    assert_eq!(out, json!({"batchItemFailures": [{"itemIdentifier": "m-1-2"}]}));
    assert_eq!(big.view().await["estate"]["survey"]["state"], "surveying");
    // …and on the third, consumed: the survey ends failed.
    let out = invoke(sqs_event(&chunks[1], 3)).await;
    assert_eq!(out, json!({"batchItemFailures": []}));
    let survey = big.view().await["estate"]["survey"].clone();
    assert_eq!(
        (&survey["state"], &survey["code"]),
        (&json!("failed"), &json!("azure-unavailable"))
    );
    // A message that is not a chunk is dropped, not given back (it would never parse).
    let mut junk = sqs_event(&chunks[2], 1);
    junk["Records"][0]["body"] = json!("not a chunk");
    assert_eq!(invoke(junk).await, json!({"batchItemFailures": []}));
}
