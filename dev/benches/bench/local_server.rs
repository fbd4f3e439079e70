//! The local server: start-up, requests/s under 16 loopback clients, memory.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::support::*;

pub(crate) async fn local_server() {
    let dir = temp_dir();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_azure-connect-local"))
        .args(["--listen", "127.0.0.1:0", "--store"])
        .arg(format!("embedded:{}", dir.join("store").display()))
        .arg("--events-file")
        .arg(dir.join("events.jsonl"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let startup = started.elapsed();
    // Keep reading its log lines (one per request), as a log shipper would.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let ready: Value = serde_json::from_str(&line).unwrap();
    let base = format!("http://{}", ready["fields"]["listen"].as_str().unwrap());
    let pid = child.id();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rest = status_kb(pid, "VmRSS:");

    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base}/connections"))
        .header("x-org-id", "org-bench")
        .json(&json!({"accountId": "act-0000beef"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{base}/connections/{}", created["connectionId"].as_str().unwrap());
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(3);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (http, url, done) = (http.clone(), url.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let r = http
                        .get(&url)
                        .header("x-org-id", "org-bench")
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    r.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let t = Instant::now();
    for task in tasks {
        task.await.unwrap();
    }
    let rps = done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    let peak = status_kb(pid, "VmHWM:");
    child.kill().unwrap();
    child.wait().unwrap();

    println!("\n## Local server (release, embedded store, 16 concurrent clients on loopback, 3 s)\n");
    println!("| figure | value | goal |");
    println!("|---|---|---|");
    println!(
        "| start-up to ready | {:.0} ms | well under 1 s |",
        startup.as_secs_f64() * 1000.0
    );
    println!("| GET /connections/{{id}} | {rps:.0} requests/s | |");
    println!("| RSS at rest | {} | |", mb(rest));
    println!("| peak RSS under load | {} | |", mb(peak));
}
