//! `scripts/bench`: the figures of the README, a module per figure. Prints tables; asserts
//! nothing about speed (goals are printed beside the figures).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

mod coldstart;
mod connect;
mod cost;
mod estate;
mod expiry_scan;
mod health;
mod lambdas;
mod load;
mod local_server;
mod steps;
mod support;
mod survey;

use std::sync::Arc;

use shared::edge::Function;
use shared::store::ConnectionStore;
use shared::store::embedded::EmbeddedStore;
use shared::store::secrets_manager::SecretsManagerStore;

use connect::{connect_latency, federated_connect_latency};
use expiry_scan::expiry_scan_bench;
use lambdas::function_memory;
use local_server::local_server;
use steps::{STEPS, steps};
use support::{azure, mb, pct, temp_dir};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        std::env::var("AWS_ENDPOINT_URL").expect("run scripts/bench: it starts moto and sets AWS_ENDPOINT_URL");
        // BENCH_ONLY=steps,connect,scan,health,local,load,lambdas,coldstart,cost,estate,survey picks figures (default: all).
        let only = std::env::var("BENCH_ONLY").unwrap_or_default();
        let wants = |figure: &str| only.is_empty() || only.split(',').any(|f| f.trim() == figure);

        if wants("steps") {
        let embedded: Arc<dyn ConnectionStore> = Arc::new(EmbeddedStore::open(&temp_dir(), "bench/").unwrap());
        let emb = steps(embedded, None, 300).await;
        let sm = Arc::new(SecretsManagerStore::new(
            aws_sdk_secretsmanager::Client::new(&shared::config::aws_sdk_config().await),
            format!("bench-{}/", uuid::Uuid::new_v4().simple()),
            None,
        ));
        let moto = steps(sm.clone(), Some(sm), 30).await;

        println!("## Per step (release build; handler = the router the Lambdas serve)\n");
        println!("| step | Secrets Manager calls / request | goal | handler p50, embedded | p99, embedded | p50, Secrets Manager (moto) |");
        println!("|---|---|---|---|---|---|");
        for (i, name) in STEPS.iter().enumerate() {
            let (mut e, _) = emb[i].clone();
            let (mut m, calls) = moto[i].clone();
            let goal = match i {
                0 => "2 (quota list, create)",
                2 => "≤ 5 (write, credential create)",
                1 | 3 | 4 => "≤ 3 (write)",
                5 | 6 => "1 (read)",
                _ => "4 (describe, list credentials, erase, delete)",
            };
            println!(
                "| {name} | {:.1} | {goal} | {:.0} µs | {:.0} µs | {:.1} ms |",
                calls as f64 / m.len() as f64,
                pct(&mut e, 0.5).as_secs_f64() * 1e6,
                pct(&mut e, 0.99).as_secs_f64() * 1e6,
                pct(&mut m, 0.5).as_secs_f64() * 1e3,
            );
        }

        }

        if wants("estate") {
            let n = std::env::var("BENCH_ESTATE_SUBSCRIPTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
            estate::estate_bench(n).await;
            estate::stored_form();
        }
        // Part of `estate`; `survey` alone runs only this table.
        if wants("estate") || wants("survey") {
            let n = std::env::var("BENCH_SURVEY_SUBSCRIPTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
            survey::survey_bench(n).await;
        }

        if wants("cost") {
            cost::cost().await;
        }

        if wants("connect") {
            connect_latency().await;
            federated_connect_latency().await;
        }

        if wants("scan") {
            let n = std::env::var("BENCH_SCAN_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
            expiry_scan_bench(n).await;
        }

        if wants("health") {
            let n = std::env::var("BENCH_HEALTH_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
            health::health_bench(n).await;
        }

        if wants("local") {
            local_server().await;
        }

        if wants("load") {
        let walks = std::env::var("BENCH_LOAD_WALKS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
        let (_load_azure, load_url) = azure(50).await;
        let on_embedded = load::load(walks, 50, false, &load_url).await;
        let on_moto = load::load(walks, 50, true, &load_url).await;
        load::print(&[on_embedded, on_moto], 50, 50);
        }

        if wants("coldstart") {
            let (_azure, azure_url) = azure(0).await;
            coldstart::cold_starts(15, &azure_url).await;
        }

        if wants("lambdas") {

        let invocations = std::env::var("BENCH_LAMBDA_INVOCATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
        println!("\n## Lambda function binaries (release; a Lambda Runtime API stand-in feeds each its events/ samples {invocations} times; Secrets Manager = moto)\n");
        println!("| function | answered | errors | RSS after 100 | RSS after {invocations} | peak RSS | goal | wall time |");
        println!("|---|---|---|---|---|---|---|---|");
        let (_azure, azure_url) = azure(0).await;
        for f in Function::ALL {
            let (early, rss, peak, ok, errors, took) = function_memory(f, invocations, &azure_url).await;
            println!(
                "| {} | {ok} | {errors} | {} | {} | {} | ≤ 30 MB, flat | {:.2} s |",
                f.name(),
                mb(early),
                mb(rss),
                mb(peak),
                took.as_secs_f64()
            );
        }
        }
    });
}
