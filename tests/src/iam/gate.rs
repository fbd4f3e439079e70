//! The gate: an HTTP proxy in front of moto that refuses, as AWS does, every call a function's
//! templated policy does not allow, and keeps every call and every verdict.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::{ACCOUNT, ARN_SUFFIX, REGION, TemplatePolicies, Verdict};
use crate::fault::read_message;

/// One AWS call as the gate saw it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    /// The SAM logical id whose credentials signed it.
    pub function: String,
    /// `service:Operation`.
    pub action: String,
    pub resource: String,
    pub allowed: bool,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} on {}",
            self.function,
            if self.allowed { "called" } else { "was REFUSED" },
            self.action,
            self.resource
        )
    }
}

#[derive(Debug, Default)]
struct Log {
    calls: Vec<Call>,
    /// Secret name → the KMS key it is encrypted with (from its CreateSecret).
    keys: BTreeMap<String, String>,
}

/// The proxy in front of moto that enforces the template's policies.
#[derive(Debug, Clone)]
pub struct IamGate {
    url: String,
    log: Arc<Mutex<Log>>,
    policies: Arc<Mutex<TemplatePolicies>>,
}

impl IamGate {
    /// Starts a gate to `upstream` (`http://host:port`, moto) on a free loopback port.
    pub async fn start(upstream: &str, policies: TemplatePolicies) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let gate = Self {
            url,
            log: Arc::default(),
            policies: Arc::new(Mutex::new(policies)),
        };
        let shared = gate.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, gate) = (upstream.clone(), shared.clone());
                tokio::spawn(async move {
                    let _ = gate.serve(client, &upstream).await;
                });
            }
        });
        gate
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Replaces the policies (e.g. with one action taken out).
    pub fn set_policies(&self, policies: TemplatePolicies) {
        *self.policies.lock().unwrap() = policies;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.log.lock().unwrap().calls.clone()
    }

    /// The refused calls so far.
    pub fn refused(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|c| !c.allowed).collect()
    }

    /// Panics naming every refused call (function, action, resource), if any.
    pub fn assert_nothing_refused(&self, path: &str) {
        let refused = self.refused();
        assert!(
            refused.is_empty(),
            "{path}: the template's policies refuse:\n{}",
            refused
                .iter()
                .map(|c| format!("  {c}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// The (function, action) pairs called so far.
    pub fn actions(&self) -> BTreeSet<(String, String)> {
        self.calls().into_iter().map(|c| (c.function, c.action)).collect()
    }

    async fn serve(&self, client: TcpStream, upstream: &str) -> std::io::Result<()> {
        let (client_read, mut client_write) = client.into_split();
        let mut client_read = BufReader::new(client_read);
        let mut server: Option<(
            BufReader<tokio::net::tcp::OwnedReadHalf>,
            tokio::net::tcp::OwnedWriteHalf,
        )> = None;
        while let Some(request) = read_message(&mut client_read, false).await? {
            let body = &request.bytes[request.head.len()..];
            let unknown = match self.check(&request.head, body) {
                Err(refusal) => {
                    client_write.write_all(&refusal).await?;
                    continue;
                }
                Ok(unknown) => unknown,
            };
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
            // A secret the gate did not see made, that exists: its key is unknown, so the gate
            // cannot tell what AWS would ask; refused. (One that does not exist answers as AWS
            // does: ResourceNotFoundException.)
            if let Some((function, name)) = unknown {
                let ok = response
                    .head
                    .split(' ')
                    .nth(1)
                    .is_some_and(|s| s.starts_with('2'));
                if ok {
                    let message = format!(
                        "The IAM gate does not know the secret {name}: it was not made through the gate, so its key and what AWS would ask for it are unknown"
                    );
                    self.log.lock().unwrap().calls.push(Call {
                        function,
                        action: "(unknown secret)".to_owned(),
                        resource: name,
                        allowed: false,
                    });
                    client_write.write_all(&access_denied(&message)).await?;
                    continue;
                }
            }
            client_write.write_all(&response.bytes).await?;
        }
        Ok(())
    }

    /// Records the request's calls; the refusal to send back when one is not allowed, else the
    /// secret it names that the gate did not see made (with the caller), if any.
    fn check(&self, head: &str, body: &[u8]) -> Result<Option<(String, String)>, Vec<u8>> {
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        // Calls that are not a service's JSON API (moto's own control routes) pass.
        let Some(target) = header("x-amz-target") else {
            return Ok(None);
        };
        let function = header("authorization")
            .and_then(|a| {
                let cred = a.split("Credential=").nth(1)?;
                Some(cred.split('/').next()?.to_owned())
            })
            .unwrap_or_else(|| "(unsigned)".to_owned());
        let json: Json = serde_json::from_slice(body).unwrap_or(Json::Null);
        type Pending = (String, String, Option<String>, Option<String>);
        let mut calls: Vec<Pending> = if target == "AWSEvents.PutEvents" {
            // Each entry on its own: the bus's policy looks at its source.
            json["Entries"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|e| {
                    let source = e["Source"].as_str().map(str::to_owned);
                    calls_of(&target, &serde_json::json!({"Entries": [e]}))
                        .into_iter()
                        .map(move |(a, r)| (a, r, None, source.clone()))
                })
                .collect()
        } else {
            calls_of(&target, &json)
                .into_iter()
                .map(|(a, r)| (a, r, None, None))
                .collect()
        };
        let policies = self.policies.lock().unwrap();
        let mut log = self.log.lock().unwrap();
        // A secret under a customer-managed key: Secrets Manager uses the key for the caller,
        // who must be allowed what AWS documents for the call (`super::documented`), through
        // Secrets Manager (kms:ViaService). The gate knows every secret made through it, and the
        // key of each; a call naming a secret it does not know is refused (it cannot tell what
        // AWS would ask).
        let mut unknown = None;
        if target.starts_with("secretsmanager.") {
            if let Some(id) = json
                .get("SecretId")
                .or_else(|| json.get("Name"))
                .and_then(Json::as_str)
            {
                let name = secret_name(id);
                if target == "secretsmanager.CreateSecret" {
                    let key = json
                        .get("KmsKeyId")
                        .and_then(Json::as_str)
                        .unwrap_or(AWS_MANAGED_KEY);
                    log.keys.insert(name.clone(), key.to_owned());
                }
                let action = target.replacen("secretsmanager.", "secretsmanager:", 1);
                match log.keys.get(&name) {
                    Some(key) if key != AWS_MANAGED_KEY => {
                        let needs =
                            super::documented::documented(&action).map_or(&[][..], |d| d.with_customer_key);
                        let via = format!("secretsmanager.{REGION}.amazonaws.com");
                        for kms in needs {
                            calls.push(((*kms).to_owned(), key.clone(), Some(via.clone()), None));
                        }
                    }
                    Some(_) => {}
                    None => unknown = Some(name),
                }
            }
        }
        let mut refused = None;
        for (action, resource, via, source) in calls {
            let allowed =
                policies.evaluate_with(&function, &action, &resource, via.as_deref(), source.as_deref())
                    == Verdict::Allowed;
            if !allowed && refused.is_none() {
                refused = Some(format!(
                    "User: arn:aws:sts::{ACCOUNT}:assumed-role/{function}/test is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action"
                ));
            }
            log.calls.push(Call {
                function: function.clone(),
                action,
                resource,
                allowed,
            });
        }
        match refused {
            Some(message) => Err(access_denied(&message)),
            None => Ok(unknown.map(|name| (function, name))),
        }
    }
}

/// AWS's answer to a call IAM refuses.
fn access_denied(message: &str) -> Vec<u8> {
    let body = serde_json::json!({"__type": "AccessDeniedException", "Message": message}).to_string();
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: AccessDeniedException\r\nx-amzn-RequestId: {}\r\nContent-Length: {}\r\n\r\n{body}",
        uuid::Uuid::new_v4(),
        body.len()
    )
    .into_bytes()
}

/// What a secret made without `KmsKeyId` is encrypted with (every principal of the account may
/// use it through Secrets Manager: no key permission to check).
const AWS_MANAGED_KEY: &str = "alias/aws/secretsmanager";

/// A secret's name, whether the call names it by name or by ARN (the same resource to AWS).
fn secret_name(id: &str) -> String {
    match id.split_once(":secret:") {
        // `arn:…:secret:{name}-{6 characters}`.
        Some((_, rest)) if rest.len() > 7 && rest.as_bytes()[rest.len() - 7] == b'-' => {
            rest[..rest.len() - 7].to_owned()
        }
        Some((_, rest)) => rest.to_owned(),
        None => id.to_owned(),
    }
}

/// The IAM actions and resources of one JSON API request (`X-Amz-Target` and its body).
pub fn calls_of(target: &str, body: &Json) -> Vec<(String, String)> {
    let (prefix, operation) = target.split_once('.').unwrap_or(("", target));
    let service = match prefix {
        "secretsmanager" => "secretsmanager",
        "TrentService" => "kms",
        "AWSEvents" => "events",
        "AmazonSQS" => "sqs",
        other => other,
    };
    // SQS's batch actions have no permission of their own: "setting permissions for SendMessage,
    // DeleteMessage, or ChangeMessageVisibility sets permissions for the corresponding batch
    // versions" (SQS Developer Guide, "Amazon SQS batch actions").
    let operation = match (service, operation) {
        ("sqs", batch) if batch.ends_with("Batch") => batch.trim_end_matches("Batch"),
        (_, operation) => operation,
    };
    let action = format!("{service}:{operation}");
    let s = |k: &str| body.get(k).and_then(Json::as_str);
    match service {
        "secretsmanager" => {
            // By name or by ARN, the same secret (and the same ARN to match).
            let secret = match s("SecretId").or_else(|| s("Name")) {
                Some(id) => format!(
                    "arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{}{ARN_SUFFIX}",
                    secret_name(id)
                ),
                None => "*".to_owned(),
            };
            let mut calls = vec![(action, secret)];
            // CreateSecret with tags also needs TagResource on it (CreateSecret API reference,
            // "Required permissions"; documented::DOCUMENTED).
            if operation == "CreateSecret"
                && body
                    .get("Tags")
                    .and_then(Json::as_array)
                    .is_some_and(|t| !t.is_empty())
            {
                calls.push(("secretsmanager:TagResource".to_owned(), calls[0].1.clone()));
            }
            // RotateSecret's caller must be allowed to invoke the rotation function it names.
            if operation == "RotateSecret" {
                if let Some(arn) = s("RotationLambdaARN") {
                    calls.push(("lambda:InvokeFunction".to_owned(), arn.to_owned()));
                }
            }
            calls
        }
        "kms" => {
            let key = match s("KeyId") {
                Some(id) if id.starts_with("arn:") => id.to_owned(),
                Some(id) => format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{id}"),
                None => "*".to_owned(),
            };
            vec![(action, key)]
        }
        "events" => {
            let bus = |name: Option<&str>| match name {
                Some(n) if n.starts_with("arn:") => n.to_owned(),
                n => format!(
                    "arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{}",
                    n.unwrap_or("default")
                ),
            };
            match body.get("Entries").and_then(Json::as_array) {
                Some(entries) => entries
                    .iter()
                    .map(|e| (action.clone(), bus(e.get("EventBusName").and_then(Json::as_str))))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                None => vec![(action, bus(s("Name").or_else(|| s("EventBusName"))))],
            }
        }
        "sqs" => {
            // `https://sqs.{region}.amazonaws.com/{account}/{name}` (or moto's own host): the
            // queue's name is the last segment.
            let queue = match s("QueueUrl").and_then(|u| u.rsplit('/').next()) {
                Some(name) => format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"),
                None => "*".to_owned(),
            };
            vec![(action, queue)]
        }
        _ => vec![(action, "*".to_owned())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::wildcard;

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard(
            "arn:aws:secretsmanager:*:secret:p/*",
            "arn:aws:secretsmanager:x:secret:p/a/b"
        ));
        assert!(!wildcard(
            "arn:aws:secretsmanager:*:secret:p/*",
            "arn:aws:secretsmanager:x:secret:q/a"
        ));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
        assert!(wildcard("*", ""));
    }

    #[test]
    fn the_calls_of_a_request_name_their_resources() {
        let calls = calls_of(
            "secretsmanager.RotateSecret",
            &serde_json::json!({"SecretId": "p/o/c", "RotationLambdaARN": "arn:aws:lambda:us-east-1:1:function:f"}),
        );
        assert_eq!(calls.len(), 2);
        assert!(calls[0].1.ends_with(":secret:p/o/c-AbC123"));
        assert_eq!(calls[1].0, "lambda:InvokeFunction");
        let calls = calls_of(
            "AWSEvents.PutEvents",
            &serde_json::json!({"Entries": [{"EventBusName": "b"}, {"EventBusName": "b"}]}),
        );
        assert_eq!(
            calls,
            vec![(
                "events:PutEvents".to_owned(),
                format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/b")
            )]
        );
        // A batch is its single action to IAM, on the queue its URL names.
        let calls = calls_of(
            "AmazonSQS.SendMessageBatch",
            &serde_json::json!({"QueueUrl": "http://localhost:5000/123456789012/s-survey", "Entries": []}),
        );
        assert_eq!(
            calls,
            vec![(
                "sqs:SendMessage".to_owned(),
                format!("arn:aws:sqs:{REGION}:{ACCOUNT}:s-survey")
            )]
        );
    }
}
