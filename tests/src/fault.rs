//! A fault-injecting HTTP/1.1 proxy for the tests, between the backend and moto or the Azure
//! emulator. It frames requests and responses (Content-Length or chunked), so a fault hits one
//! chosen request (the first whose head contains a marker, e.g. `secretsmanager.PutSecretValue`
//! or `/oauth2/v2.0/token`) and not whatever else shares its pooled connection.
//!
//! Faults, as a flaky network or a dying dependency shows them to the client:
//! - [`Fault::Reset`]: the connection is reset before the request reaches the dependency;
//! - [`Fault::ResetMidResponse`]: the dependency handled the request; its answer is cut by a
//!   reset half way through;
//! - [`Fault::Stall`]: the dependency handled the request; its answer never comes;
//! - [`Fault::Truncate`]: the dependency handled the request; its answer ends (cleanly closed)
//!   half way through the body;
//! - [`Fault::Trickle`]: the answer comes 8 bytes every 100 ms, slower than any client waits.
//!
//! A refused connection (nothing listening) needs no proxy: a port that was just free.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Reset,
    ResetMidResponse,
    Stall,
    Truncate,
    Trickle,
    /// Answered here, never forwarded: an empty page of secrets (`ListSecrets` that has not yet
    /// seen what was made in the last minutes: "ListSecrets is eventually consistent").
    EmptyListing,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::Reset,
        Fault::ResetMidResponse,
        Fault::Stall,
        Fault::Truncate,
        Fault::Trickle,
    ];
}

#[derive(Debug)]
struct Rule {
    marker: String,
    fault: Fault,
    /// How many matching requests pass before it hits.
    skip: usize,
    /// How many more matching requests it hits.
    remaining: usize,
}

#[derive(Debug, Default)]
struct Plan {
    rules: Vec<Rule>,
    /// Heads of the requests that were faulted, in order.
    hit: Vec<String>,
    requests: usize,
}

/// A proxy in front of one upstream address.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    url: String,
    plan: Arc<Mutex<Plan>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) on a free loopback port.
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let plan = Arc::new(Mutex::new(Plan::default()));
        let shared = plan.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let plan = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, &plan).await;
                });
            }
        });
        Self { url, plan }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next `times` requests whose head contains `marker` meet `fault`.
    pub fn fault(&self, marker: &str, fault: Fault, times: usize) {
        self.fault_after(marker, 0, fault, times);
    }

    /// The `times` requests whose head contains `marker` after the next `skip` meet `fault`.
    pub fn fault_after(&self, marker: &str, skip: usize, fault: Fault, times: usize) {
        self.plan.lock().unwrap().rules.push(Rule {
            marker: marker.to_owned(),
            fault,
            skip,
            remaining: times,
        });
    }

    /// Every request from now on passes.
    pub fn heal(&self) {
        self.plan.lock().unwrap().rules.clear();
    }

    /// How many requests met a fault.
    pub fn hits(&self) -> usize {
        self.plan.lock().unwrap().hit.len()
    }

    /// How many requests went through (faulted or not).
    pub fn requests(&self) -> usize {
        self.plan.lock().unwrap().requests
    }
}

fn decide(plan: &Mutex<Plan>, head: &str) -> Option<Fault> {
    let mut plan = plan.lock().unwrap();
    plan.requests += 1;
    let rule = plan
        .rules
        .iter_mut()
        .find(|r| r.remaining > 0 && head.contains(&r.marker))?;
    if rule.skip > 0 {
        rule.skip -= 1;
        return None;
    }
    rule.remaining -= 1;
    let fault = rule.fault;
    plan.hit.push(head.lines().next().unwrap_or_default().to_owned());
    Some(fault)
}

/// One HTTP message: head and body bytes as they came.
pub(crate) struct Message {
    pub(crate) head: String,
    pub(crate) bytes: Vec<u8>,
}

pub(crate) async fn read_message<R: tokio::io::AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    is_response: bool,
) -> std::io::Result<Option<Message>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let lower = head.to_ascii_lowercase();
    let header = |name: &str| {
        lower
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    let mut bytes = head.clone().into_bytes();
    if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size_line = String::new();
            r.read_line(&mut size_line).await?;
            bytes.extend_from_slice(size_line.as_bytes());
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| std::io::Error::other("bad chunk size"))?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).await?;
            bytes.extend_from_slice(&chunk);
            if size == 0 {
                break;
            }
        }
    } else if let Some(len) = header("content-length:").and_then(|v| v.parse::<usize>().ok()) {
        let mut body = vec![0; len];
        r.read_exact(&mut body).await?;
        bytes.extend_from_slice(&body);
    } else if is_response && !head.starts_with("HTTP/1.1 204") && !head.starts_with("HTTP/1.1 304") {
        // Neither: the body runs to the end of the connection.
        r.read_to_end(&mut bytes).await?;
    }
    Ok(Some(Message { head, bytes }))
}

async fn serve(client: TcpStream, upstream: &str, plan: &Arc<Mutex<Plan>>) -> std::io::Result<()> {
    let (client_read, mut client_write) = client.into_split();
    let mut client_read = BufReader::new(client_read);
    let mut server: Option<(
        BufReader<tokio::net::tcp::OwnedReadHalf>,
        tokio::net::tcp::OwnedWriteHalf,
    )> = None;
    while let Some(request) = read_message(&mut client_read, false).await? {
        let fault = decide(plan, &request.head);
        if fault == Some(Fault::Reset) {
            let stream = client_read
                .into_inner()
                .reunite(client_write)
                .map_err(std::io::Error::other)?;
            stream.set_zero_linger()?;
            return Ok(());
        }
        if fault == Some(Fault::EmptyListing) {
            let body = r#"{"SecretList":[]}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            client_write.write_all(answer.as_bytes()).await?;
            continue;
        }
        if server.is_none() {
            let s = TcpStream::connect(upstream).await?;
            let (r, w) = s.into_split();
            server = Some((BufReader::new(r), w));
        }
        let Some((server_read, server_write)) = server.as_mut() else {
            return Ok(());
        };
        server_write.write_all(&request.bytes).await?;
        let Some(response) = read_message(server_read, true).await? else {
            return Ok(());
        };
        let half = response.head.len() + (response.bytes.len() - response.head.len()) / 2;
        match fault {
            None | Some(Fault::Reset | Fault::EmptyListing) => {
                client_write.write_all(&response.bytes).await?
            }
            Some(Fault::ResetMidResponse) => {
                client_write.write_all(&response.bytes[..half]).await?;
                client_write.flush().await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
                let stream = client_read
                    .into_inner()
                    .reunite(client_write)
                    .map_err(std::io::Error::other)?;
                stream.set_zero_linger()?;
                return Ok(());
            }
            Some(Fault::Stall) => {
                // Hold the connection open, silent, until the client gives up.
                let mut sink = Vec::new();
                let _ = client_read.read_to_end(&mut sink).await;
                return Ok(());
            }
            Some(Fault::Truncate) => {
                client_write
                    .write_all(&response.bytes[..half.max(response.head.len() + 1).min(response.bytes.len())])
                    .await?;
                client_write.shutdown().await?;
                return Ok(());
            }
            Some(Fault::Trickle) => {
                for piece in response.bytes.chunks(8) {
                    client_write.write_all(piece).await?;
                    client_write.flush().await?;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                return Ok(());
            }
        }
    }
    Ok(())
}
