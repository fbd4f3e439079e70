//! Load: wizard walks to `connected` by concurrent clients on the local server (release), with
//! the Azure emulator answering after a fixed latency; per-step latency, errors, and the server's
//! memory over the run (sampled every 100 ms).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::support::*;

/// The walk, as the wizard page sends it: method, path after `/connections/{id}`, body.
fn walk() -> Vec<(&'static str, &'static str, &'static str, Option<Value>)> {
    vec![
        ("start", "POST", "", None),
        (
            "app-registration",
            "PUT",
            "/app-registration",
            Some(
                json!({"tenantId": "contoso.onmicrosoft.com", "clientId": "11111111-2222-4333-8444-555555555555"}),
            ),
        ),
        (
            "client-secret",
            "PUT",
            "/client-secret",
            Some(json!({"clientSecret": SECRET, "expiresAt": "2099-01-31"})),
        ),
        (
            "subscription",
            "PUT",
            "/subscription",
            Some(json!({"subscriptionId": "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"})),
        ),
        ("custom-role", "GET", "/custom-role", None),
        ("connect", "POST", "/connect", None),
    ]
}

pub(crate) struct LoadReport {
    pub(crate) store: &'static str,
    pub(crate) walks: usize,
    pub(crate) errors: usize,
    pub(crate) wall: Duration,
    /// Per step: latencies.
    pub(crate) steps: Vec<(&'static str, Vec<Duration>)>,
    /// RSS after the first tenth of the walks, after half, at the end, and the peak (kB).
    pub(crate) rss_early: u64,
    pub(crate) rss_half: u64,
    pub(crate) rss_end: u64,
    pub(crate) peak: u64,
}

/// `walks` walks by `clients` concurrent clients; `secrets_manager`: the store is moto, else the
/// embedded store.
pub(crate) async fn load(walks: usize, clients: usize, secrets_manager: bool, azure_url: &str) -> LoadReport {
    let dir = temp_dir();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_azure-connect-local"));
    cmd.args(["--listen", "127.0.0.1:0", "--events-file"])
        .arg(dir.join("events.jsonl"))
        .env("AZURE_AUTHORITY_HOST", azure_url)
        .env("AZURE_RESOURCE_MANAGER_ENDPOINT", azure_url)
        .env("AZURE_GRAPH_ENDPOINT", azure_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if secrets_manager {
        cmd.args(["--store", "secretsmanager", "--prefix"])
            .arg(format!("load-{}/", uuid::Uuid::new_v4().simple()));
    } else {
        cmd.arg("--store")
            .arg(format!("embedded:{}", dir.join("store").display()));
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let ready: Value = serde_json::from_str(&line).unwrap();
    let base = format!("http://{}", ready["fields"]["listen"].as_str().unwrap());
    let pid = child.id();

    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(status_kb(pid, "VmRSS:"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let rss_early = Arc::new(AtomicU64::new(0));
    let rss_half = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(vec![Vec::new(); walk().len()]));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, base, next, finished, errors, rss_early, rss_half, latencies) = (
                http.clone(),
                base.clone(),
                next.clone(),
                finished.clone(),
                errors.clone(),
                rss_early.clone(),
                rss_half.clone(),
                latencies.clone(),
            );
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < walks {
                    let mut id = String::new();
                    let mut mine = Vec::new();
                    for (i, (_, method, path, body)) in walk().into_iter().enumerate() {
                        let url = if i == 0 {
                            format!("{base}/connections")
                        } else {
                            format!("{base}/connections/{id}{path}")
                        };
                        let body = if i == 0 {
                            Some(json!({"accountId": format!("act-{:08x}", rand_u32())}))
                        } else {
                            body
                        };
                        let mut req = http
                            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
                            .header("x-org-id", "org-load");
                        if let Some(b) = &body {
                            req = req.json(b);
                        }
                        let t = Instant::now();
                        let ok = match req.send().await {
                            Ok(r) if r.status().is_success() => {
                                let v: Value = r.json().await.unwrap_or(Value::Null);
                                if i == 0 {
                                    id = v["connectionId"].as_str().unwrap_or_default().to_owned();
                                }
                                i < 5 || v["status"] == "connected"
                            }
                            _ => false,
                        };
                        mine.push((i, t.elapsed()));
                        if !ok {
                            errors.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    let mut all = latencies.lock().await;
                    for (i, d) in mine {
                        all[i].push(d);
                    }
                    drop(all);
                    let done = finished.fetch_add(1, Ordering::Relaxed) + 1;
                    if done == walks / 10 {
                        rss_early.store(status_kb(pid, "VmRSS:"), Ordering::Relaxed);
                    }
                    if done == walks / 2 {
                        rss_half.store(status_kb(pid, "VmRSS:"), Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let wall = started.elapsed();
    let rss_end = status_kb(pid, "VmRSS:");
    sampler.abort();
    let peak = peak.load(Ordering::Relaxed).max(status_kb(pid, "VmHWM:"));
    child.kill().unwrap();
    child.wait().unwrap();
    let latencies = latencies.lock().await.clone();
    LoadReport {
        store: if secrets_manager {
            "Secrets Manager (moto)"
        } else {
            "embedded"
        },
        walks,
        errors: errors.load(Ordering::Relaxed),
        wall,
        steps: walk().iter().map(|s| s.0).zip(latencies).collect(),
        rss_early: rss_early.load(Ordering::Relaxed),
        rss_half: rss_half.load(Ordering::Relaxed),
        rss_end,
        peak,
    }
}

fn rand_u32() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}

pub(crate) fn print(reports: &[LoadReport], clients: usize, latency_ms: u64) {
    println!(
        "\n## Load: wizard walks to connected on the local server (release), {clients} concurrent clients, Azure emulator at {latency_ms} ms per answer\n"
    );
    println!(
        "| store | walks | errors | wall time | walks/s | RSS after 1/10 of the walks | after 1/2 | at the end | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in reports {
        println!(
            "| {} | {} | {} | {:.1} s | {:.1} | {} | {} | {} | {} |",
            r.store,
            r.walks,
            r.errors,
            r.wall.as_secs_f64(),
            r.walks as f64 / r.wall.as_secs_f64(),
            mb(r.rss_early),
            mb(r.rss_half),
            mb(r.rss_end),
            mb(r.peak)
        );
    }
    println!("\n| step | p50, embedded | p99, embedded | p50, Secrets Manager | p99, Secrets Manager |");
    println!("|---|---|---|---|---|");
    let names: Vec<&str> = reports[0].steps.iter().map(|s| s.0).collect();
    for (i, name) in names.iter().enumerate() {
        let mut cells = Vec::new();
        for r in reports {
            let mut v = r.steps[i].1.clone();
            if v.is_empty() {
                cells.push("-".to_owned());
                cells.push("-".to_owned());
                continue;
            }
            cells.push(format!("{:.0} ms", pct(&mut v, 0.5).as_secs_f64() * 1e3));
            cells.push(format!("{:.0} ms", pct(&mut v, 0.99).as_secs_f64() * 1e3));
        }
        println!("| {name} | {} |", cells.join(" | "));
    }
}
