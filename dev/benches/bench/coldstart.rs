//! Cold start: each function binary beside a hello-world `lambda_runtime` binary, from exec to
//! its first request for work at a Runtime API stand-in (Lambda's init phase), and what init
//! spends, phase by phase (`init-probe`).

use std::collections::VecDeque;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shared::edge::Function;

use super::lambdas::runtime_api;
use super::support::*;

/// The environment every function starts with here (as in the template, pointed at moto and
/// the emulator).
fn env(azure: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CONNECTION_SECRET_PREFIX", "bench-cold/".to_owned()),
        ("ORG_ID_CLAIM", "org_id".to_owned()),
        ("AZURE_AUTHORITY_HOST", azure.to_owned()),
        ("AZURE_RESOURCE_MANAGER_ENDPOINT", azure.to_owned()),
        ("AZURE_GRAPH_ENDPOINT", azure.to_owned()),
    ]
}

/// One cold start: init time, and RSS once ready.
async fn cold_start(binary: &str, azure: &str) -> (Duration, u64) {
    let (api, addr, server) = runtime_api(VecDeque::new()).await;
    let path = root().join("target/release").join(binary);
    let started = Instant::now();
    let mut child = Command::new(&path)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", binary)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
        .envs(env(azure))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ready = loop {
        if let Some(at) = *api.first_next.lock().unwrap() {
            break at;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{binary} never asked for work"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    let rss = status_kb(child.id(), "VmRSS:");
    child.kill().unwrap();
    child.wait().unwrap();
    server.abort();
    (ready - started, rss)
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

pub(crate) async fn cold_starts(runs: usize, azure: &str) {
    let mut names = vec!["hello-lambda"];
    names.extend(Function::ALL.iter().map(|f| f.name()));
    names.extend(["secret-expiry", "health-check"]);
    println!(
        "\n## Cold start (release, median of {runs}; exec to the first request for work at a Runtime API stand-in)\n"
    );
    println!("| binary | init | beyond hello world | goal | RSS when ready | goal |");
    println!("|---|---|---|---|---|---|");
    let mut hello = Duration::ZERO;
    for name in names {
        let mut inits = Vec::new();
        let mut rss = Vec::new();
        for _ in 0..runs {
            let (init, kb) = cold_start(name, azure).await;
            inits.push(init);
            rss.push(kb);
        }
        let init = median(inits);
        if name == "hello-lambda" {
            hello = init;
        }
        let beyond = init.as_secs_f64() * 1e3 - hello.as_secs_f64() * 1e3;
        println!(
            "| {name} | {:.1} ms | {beyond:+.1} ms | ≤ +10 ms | {} | ≤ 30 MB |",
            init.as_secs_f64() * 1e3,
            mb(median(rss))
        );
    }

    // What init spends, phase by phase, in fresh processes.
    let mut phases: Vec<(String, Vec<u64>)> = Vec::new();
    for _ in 0..runs {
        let out = Command::new(root().join("target/release/init-probe"))
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
            .envs(env(azure))
            .output()
            .unwrap();
        // The last line: the functions' own start-up logs go to stdout too.
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        let line: serde_json::Value = serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("init-probe: {e}: {}", String::from_utf8_lossy(&out.stderr)));
        for (k, v) in line.as_object().unwrap() {
            let us = v.as_u64().unwrap();
            match phases.iter_mut().find(|(n, _)| n == k) {
                Some((_, all)) => all.push(us),
                None => phases.push((k.clone(), vec![us])),
            }
        }
    }
    println!(
        "\n| init phase (init-probe, fresh process, median of {runs}), in the order of a function's main | time |"
    );
    println!("|---|---|");
    let order = [
        "telemetry",
        "config",
        "aws_sdk_config",
        "aws_clients",
        "azure_http_client",
        "issuer",
    ];
    phases.sort_by_key(|(name, _)| order.iter().position(|o| o == name).unwrap_or(order.len()));
    for (name, all) in phases {
        println!("| {name} | {:.2} ms |", median(all) as f64 / 1e3);
    }
}
