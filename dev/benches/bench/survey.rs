//! `BENCH_ONLY=estate scripts/bench`, the second table: one management group beyond what is
//! surveyed at once (10,000 subscriptions; `BENCH_SURVEY_SUBSCRIPTIONS`), ARM 100 ms away with
//! its throttling modelled (the emulator's buckets), on Secrets Manager (moto): Connect Account's
//! answer (202), the survey in the background to `done` (chunks of 500, 5 side by side as the
//! template's SQS trigger runs them at most), ARM's calls and 429s, Secrets Manager's calls and
//! the bytes written, the events; a health pass that finds nothing new; and the connect-account
//! function itself (release binary) answering 202 and then surveying every chunk from SQS
//! events: its peak memory.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::{Value, json};
use shared::app::survey::{CHUNK_ATTEMPTS, SurveyChunk, SurveySettings};
use shared::app::{App, HealthSchedule, Operation, Outcome, Window};
use shared::domain::OrgId;
use shared::domain::survey::SurveyState;
use shared::events::MemorySink;
use shared::queue::{QueueError, WorkQueue};
use shared::store::ConnectionStore;
use shared::store::secrets_manager::SecretsManagerStore;

use crate::estate::{entered, world};
use crate::support::{mb, req};

/// Chunks given back to the queue (a failure before their last attempt).
static RETRIED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Chunks surveyed side by side: the template's `ScalingConfig.MaximumConcurrency`.
const SIDE_BY_SIDE: usize = 5;

/// A queue that hands each chunk to the app at once, [`SIDE_BY_SIDE`] at a time, as Lambda's SQS
/// trigger does (without SQS's own latency); [`BenchQueue::wait`] until every chunk is done.
#[derive(Debug, Default)]
struct BenchQueue {
    app: OnceLock<App>,
    running: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

#[async_trait]
impl WorkQueue for BenchQueue {
    async fn send_all(&self, messages: Vec<String>) -> Result<(), QueueError> {
        let app = self.app.get().cloned().ok_or(QueueError::Closed)?;
        let handle = tokio::spawn(async move {
            futures_util::stream::iter(messages)
                .for_each_concurrent(SIDE_BY_SIDE, |m| {
                    let app = app.clone();
                    async move {
                        // As SQS: given back on a failure, the third receive the last.
                        let chunk = SurveyChunk::parse(&m).unwrap();
                        for receive in 1..=CHUNK_ATTEMPTS {
                            let last = receive == CHUNK_ATTEMPTS;
                            match app.survey_chunk(chunk.clone(), last).await {
                                Ok(_) => return,
                                Err(e) if !last => {
                                    RETRIED.fetch_add(1, Ordering::Relaxed);
                                    eprintln!("chunk {} given back: {e}", chunk.index);
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                }
                                Err(e) => panic!("chunk {}: {e}", chunk.index),
                            }
                        }
                    }
                })
                .await;
        });
        self.running.lock().unwrap().push(handle);
        Ok(())
    }
}

impl BenchQueue {
    async fn wait(&self) {
        loop {
            let running = std::mem::take(&mut *self.running.lock().unwrap());
            if running.is_empty() {
                return;
            }
            for h in running {
                h.await.unwrap();
            }
        }
    }
}

pub(crate) async fn survey_bench(n: usize) {
    let latency_ms = 100;
    let emulator = azure_emulator::Emulator::new(world(n, latency_ms));
    let addr = emulator.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!("http://{addr}");
    let azure = shared::config::AzureConfig::from_lookup(|k| match k {
        "AZURE_AUTHORITY_HOST" | "AZURE_RESOURCE_MANAGER_ENDPOINT" | "AZURE_GRAPH_ENDPOINT" => {
            Some(url.clone())
        }
        _ => None,
    })
    .unwrap();
    let sdk = shared::config::aws_sdk_config().await;
    let prefix = format!("survey-{}/", uuid::Uuid::new_v4().simple());
    let store = Arc::new(SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        prefix.clone(),
        None,
    ));
    let sink = Arc::new(MemorySink::default());
    let settings = SurveySettings::default();
    let queue = Arc::new(BenchQueue::default());
    let validator = azure.validator().unwrap().with_survey_at_once(settings.at_once);
    let app = App::new(store.clone(), sink.clone())
        .with_validator(Arc::new(validator))
        .with_survey_queue(queue.clone(), settings);
    queue.app.set(app.clone()).unwrap();
    let org = OrgId::parse("org-survey-bench").unwrap();
    let id = entered(&app, &org, "survey", "act-00005b5b", None, None).await;

    emulator.clear_requests();
    let calls = store.calls();
    let (sm_before, bytes_before) = (calls.total(), calls.written_bytes.load(Ordering::Relaxed));
    let events_before = sink.events().len();
    let started = Instant::now();
    let answered = app
        .execute(
            &req("survey-connect"),
            &org,
            Operation::Connect { connection: id },
        )
        .await;
    let answer_wall = started.elapsed();
    let Ok(Outcome::Connected(_)) = answered else {
        panic!("not connected: {answered:?}")
    };
    queue.wait().await;
    let done_wall = started.elapsed();
    let connection = store.load(&org, &id).await.unwrap().unwrap().connection;
    let estate = connection.estate.as_ref().unwrap();
    let run = estate.survey.as_ref().unwrap();
    assert_eq!(run.state, SurveyState::Done, "{run:?}");
    assert_eq!(estate.entries.len(), n);
    let requests = emulator.requests();
    let throttled = requests.iter().filter(|r| r.throttled).count();
    let sm_calls = calls.total() - sm_before;
    let written = calls.written_bytes.load(Ordering::Relaxed) - bytes_before;
    let events = sink.events();
    let progress = events[events_before..]
        .iter()
        .filter(|e| e.detail_type == "Estate Survey Progress")
        .count();
    let all_events = events.len() - events_before;

    // A health pass that finds nothing new: the listing, the chunks, no write.
    emulator.clear_requests();
    let (sm_before, bytes_before) = (calls.total(), calls.written_bytes.load(Ordering::Relaxed));
    let started = Instant::now();
    let report = app
        .health_pass(
            "survey-bench",
            chrono::Utc::now(),
            Window::All,
            HealthSchedule {
                period: Duration::from_secs(86_400),
                pace: Duration::ZERO,
            },
        )
        .await
        .unwrap();
    queue.wait().await;
    let pass_wall = started.elapsed();
    let pass_arm = emulator.requests().len();
    let pass_sm = calls.total() - sm_before;
    let pass_written = calls.written_bytes.load(Ordering::Relaxed) - bytes_before;

    // `GET …/subscriptions` page after page (500 a page, as the page asks), then what needs
    // attention first (`?status=missing-actions`: none here).
    let started = Instant::now();
    let (mut listed, mut pages, mut after) = (0, 0, None);
    loop {
        let page = app
            .execute(
                &req("survey-list"),
                &org,
                Operation::ListSubscriptions {
                    connection: id,
                    after,
                    limit: 500,
                    status: None,
                },
            )
            .await;
        let Ok(Outcome::Subscriptions { items, next, .. }) = page else {
            panic!("not a page: {page:?}")
        };
        listed += items.len();
        pages += 1;
        match next {
            Some(last) => after = Some(last),
            None => break,
        }
    }
    let list_wall = started.elapsed();
    assert_eq!(listed, n, "every subscription listed once");
    let started = Instant::now();
    let attention = app
        .execute(
            &req("survey-attention"),
            &org,
            Operation::ListSubscriptions {
                connection: id,
                after: None,
                limit: 500,
                status: Some(shared::domain::estate::SubscriptionStatus::MissingActions),
            },
        )
        .await;
    let attention_wall = started.elapsed();
    let Ok(Outcome::Subscriptions { items, .. }) = attention else {
        panic!("not a page: {attention:?}")
    };
    assert!(items.is_empty());

    let (answer_peak, chunks_peak, chunks, chunks_wall) = binary_survey(&app, &prefix, &url, n).await;

    println!(
        "\n## A group surveyed in the background: {n} subscriptions (ARM {latency_ms} ms away, its throttling modelled, its subscriptions list {} a page; Secrets Manager in moto)\n",
        crate::estate::list_page()
    );
    println!("| what | figure |");
    println!("|---|---|");
    println!(
        "| Connect Account's answer (202, `surveying`) | {:.2} s |",
        answer_wall.as_secs_f64()
    );
    println!(
        "| connect to fully surveyed (`done`), chunks of {} {SIDE_BY_SIDE} at a time | {:.1} s (goal: ≤ 60 s) |",
        settings.chunk,
        done_wall.as_secs_f64()
    );
    println!("| ARM calls / answered 429 | {} / {throttled} |", requests.len());
    println!(
        "| chunks given back to the queue (failed, tried again) | {} |",
        RETRIED.load(Ordering::Relaxed)
    );
    println!(
        "| Secrets Manager calls / bytes written | {sm_calls} / {:.0} KiB |",
        written as f64 / 1024.0
    );
    println!(
        "| events | {all_events} (`Estate Survey Progress` × {progress}, `Subscription Discovered` × {n}) |"
    );
    println!(
        "| health pass finding nothing new: wall, ARM calls, Secrets Manager calls, bytes written | {:.1} s, {pass_arm}, {pass_sm}, {pass_written} B ({} unchanged) |",
        pass_wall.as_secs_f64(),
        report.unchanged
    );
    println!(
        "| `GET …/subscriptions`, 500 a page, through all {listed}: pages, wall | {pages}, {:.2} s ({:.0} ms a page) |",
        list_wall.as_secs_f64(),
        list_wall.as_secs_f64() * 1e3 / f64::from(pages)
    );
    println!(
        "| `GET …/subscriptions?status=missing-actions` (none here): wall | {:.0} ms |",
        attention_wall.as_secs_f64() * 1e3
    );
    println!(
        "| the connect-account function (release binary): peak memory answering 202 | {} |",
        mb(answer_peak)
    );
    println!(
        "| the same function surveying all {chunks} chunks from SQS events, one after another: peak memory, wall | {} (goal: ≤ 128 MB), {:.1} s |",
        mb(chunks_peak),
        chunks_wall.as_secs_f64()
    );
}

/// The connect-account release binary: first Connect Account over HTTP (its chunks go to an SQS
/// queue in moto), then every chunk received from that queue as an SQS event, one invocation
/// each. Peak RSS (kB) of each run, the chunks, and the second run's wall time.
async fn binary_survey(app: &App, prefix: &str, azure: &str, n: usize) -> (u64, u64, usize, Duration) {
    let sample = crate::support::root().join("events/connect-account/http-connect.json");
    let event: Value = serde_json::from_str(&std::fs::read_to_string(sample).unwrap()).unwrap();
    let org = OrgId::parse(
        event["requestContext"]["authorizer"]["jwt"]["claims"]["org_id"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let id = shared::domain::ConnectionId::parse(event["pathParameters"]["id"].as_str().unwrap()).unwrap();
    entered(app, &org, "binary-survey", "act-00005b5c", Some(id), None).await;
    let sqs = aws_sdk_sqs::Client::new(&shared::config::aws_sdk_config().await);
    let name = format!("survey-bench-{}", uuid::Uuid::new_v4().simple());
    let queue_url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let env = [
        ("CONNECTION_SECRET_PREFIX", prefix.to_owned()),
        ("ORG_ID_CLAIM", "org_id".to_owned()),
        ("AZURE_AUTHORITY_HOST", azure.to_owned()),
        ("AZURE_RESOURCE_MANAGER_ENDPOINT", azure.to_owned()),
        ("AZURE_GRAPH_ENDPOINT", azure.to_owned()),
        ("SURVEY_QUEUE_URL", queue_url.clone()),
    ];
    let (api, addr, server) = crate::lambdas::runtime_api(std::iter::once(event).collect()).await;
    let (_, _, answer_peak, ok, errors, _) =
        crate::lambdas::run_binary("connect-account", &api, addr, 1, &env).await;
    server.abort();
    assert_eq!((ok, errors), (1, 0), "the function answered");

    let mut events = VecDeque::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = got.messages();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            events.push_back(json!({"Records": [{
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{name}"),
                "awsRegion": "us-east-1",
            }]}));
        }
    }
    let chunks = events.len();
    assert_eq!(
        chunks,
        n.div_ceil(SurveySettings::default().chunk),
        "every chunk sent"
    );
    let (api, addr, server) = crate::lambdas::runtime_api(events).await;
    let (_, _, chunks_peak, ok, errors, took) =
        crate::lambdas::run_binary("connect-account", &api, addr, chunks, &env).await;
    server.abort();
    assert_eq!((ok, errors), (chunks, 0), "every chunk surveyed");
    let store = SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::new(&shared::config::aws_sdk_config().await),
        prefix,
        None,
    );
    let connection = store.load(&org, &id).await.unwrap().unwrap().connection;
    let estate = connection.estate.unwrap();
    assert_eq!(
        (estate.entries.len(), estate.survey.map(|r| r.state)),
        (n, Some(SurveyState::Done)),
        "the function surveyed the group"
    );
    (answer_peak, chunks_peak, chunks, took)
}
