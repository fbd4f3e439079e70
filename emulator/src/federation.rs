//! Client assertions checked as Entra ID checks them (workload identity federation): the assertion
//! must be a JWT whose `iss`, `sub` and `aud` match exactly one federated credential of the app
//! (case-sensitive), inside its time range (5 minutes of clock skew), signed RS256 by a key of the
//! issuer's JWKS, fetched from `{iss}/.well-known/openid-configuration` then its `jwks_uri`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::sha2::Sha256;
use rsa::signature::Verifier;
use rsa::{BigUint, RsaPublicKey};
use serde_json::Value;

use super::world::App;

/// Entra's clock skew for `nbf`/`exp`.
const SKEW_SECONDS: i64 = 300;

/// Why Entra refuses an assertion: its AADSTS code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub code: u32,
    pub message: String,
}

fn refuse(code: u32, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

fn decode_part(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// Checks `assertion` for `app`; `Ok` when Entra would sign the app in.
/// `delay`: seconds after its creation before Entra uses a federated credential added through Graph.
pub(crate) async fn check(app: &App, assertion: &str, now: i64, delay: i64) -> Result<(), Refusal> {
    let known: Vec<_> = app
        .federated_credentials
        .iter()
        .filter(|f| f.created_at.is_none_or(|at| at.timestamp() + delay <= now))
        .collect();
    let malformed = || refuse(50027, "JWT token is invalid or malformed.");
    let mut parts = assertion.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed());
    };
    let (Some(header), Some(claims)) = (decode_part(h), decode_part(c)) else {
        return Err(malformed());
    };
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| malformed())?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(iss), Some(sub)) = (text(&claims, "iss"), text(&claims, "sub")) else {
        return Err(malformed());
    };
    let audiences: Vec<String> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => return Err(malformed()),
    };
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(malformed());
    }
    let presented = format!(
        "Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'.",
        audiences.join(",")
    );
    if known.is_empty() {
        return Err(refuse(
            70021,
            format!("No matching federated identity record found for presented assertion. {presented}"),
        ));
    }
    let by_issuer: Vec<_> = known.into_iter().filter(|f| f.issuer == iss).collect();
    if by_issuer.is_empty() {
        return Err(refuse(
            700211,
            format!(
                "No matching federated identity record found for presented assertion issuer '{iss}'. Please note that the matching is done using a case-sensitive comparison."
            ),
        ));
    }
    let by_subject: Vec<_> = by_issuer.into_iter().filter(|f| f.subject == sub).collect();
    if by_subject.is_empty() {
        return Err(refuse(
            700213,
            format!(
                "No matching federated identity record found for presented assertion subject '{sub}'. Please note that the matching is done using a case-sensitive comparison."
            ),
        ));
    }
    let matching: Vec<_> = by_subject
        .into_iter()
        .filter(|f| f.audiences.iter().any(|a| audiences.contains(a)))
        .collect();
    if matching.len() != 1 {
        return Err(refuse(
            700212,
            format!(
                "No matching federated identity record found for presented assertion audience '{}'.",
                audiences.join(",")
            ),
        ));
    }
    let number = |k: &str| claims.get(k).and_then(Value::as_i64);
    let (Some(exp), nbf) = (number("exp"), number("nbf")) else {
        return Err(malformed());
    };
    if now > exp + SKEW_SECONDS || nbf.is_some_and(|n| now + SKEW_SECONDS < n) {
        return Err(refuse(
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    let kid = text(&header, "kid")
        .ok_or_else(|| refuse(700027, "Client assertion failed signature validation: no kid."))?;
    let keys = fetch_keys(&iss).await.map_err(|why| {
        refuse(
            501661,
            format!("Request to External OIDC endpoint failed: {why}."),
        )
    })?;
    let key = keys
        .iter()
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid.as_str()))
        .ok_or_else(|| refuse(700027, format!("Client assertion failed signature validation: key '{kid}' was not found in the issuer's keys.")))?;
    let component = |k: &str| {
        key.get(k)
            .and_then(Value::as_str)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .map(|b| BigUint::from_bytes_be(&b))
    };
    let bad_signature = || refuse(700027, "Client assertion failed signature validation.");
    let (Some(n), Some(e)) = (component("n"), component("e")) else {
        return Err(bad_signature());
    };
    let public = RsaPublicKey::new(n, e).map_err(|_| bad_signature())?;
    let signature = Signature::try_from(signature.as_slice()).map_err(|_| bad_signature())?;
    VerifyingKey::<Sha256>::new(public)
        .verify(format!("{h}.{c}").as_bytes(), &signature)
        .map_err(|_| bad_signature())
}

/// `{iss}/.well-known/openid-configuration`, then its `jwks_uri`: the keys.
async fn fetch_keys(issuer: &str) -> Result<Vec<Value>, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let get = |url: String| {
        let client = client.clone();
        async move {
            let res = client.get(&url).send().await.map_err(|e| format!("{url}: {e}"))?;
            if !res.status().is_success() {
                return Err(format!("{url}: HTTP {}", res.status().as_u16()));
            }
            res.json::<Value>().await.map_err(|e| format!("{url}: {e}"))
        }
    };
    let discovery = get(format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ))
    .await?;
    if discovery.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err("the discovery document names another issuer".into());
    }
    let jwks_uri = discovery
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or("no jwks_uri")?
        .to_owned();
    let jwks = get(jwks_uri).await?;
    Ok(jwks
        .get("keys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}
