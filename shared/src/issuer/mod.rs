//! The backend as an OpenID issuer, for connections without a client secret (workload identity
//! federation): the customer's app registration trusts our issuer, and we prove who we are with a
//! short-lived signed assertion instead of a secret.
//!
//! - The port: [`Signer`], an RS256 key that never leaves its home ([`kms::KmsSigner`] in AWS,
//!   [`local::LocalKey`] for the local server), with its public keys as [`Jwk`]s.
//! - [`Issuer`]: the discovery document, the JWKS, and a fresh assertion per token request.
//!
//! Key rollover: the signer holds a list of keys; the first signs, all are published. Publish a new
//! key (second in the list) before it signs (first), and keep an old one published until its last
//! assertion has expired.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::domain::{ClientId, ConnectionId, OrgId};

pub mod kms;
#[cfg(feature = "local-key")]
pub mod local;

/// The audience Entra expects of an assertion exchanged for a token.
pub const AUDIENCE: &str = "api://AzureADTokenExchange";
/// An assertion is a bearer credential for its lifetime: keep it short (Entra allows ≤ 10 min).
pub const ASSERTION_LIFETIME: Duration = Duration::minutes(5);

/// An RSA public key as a JWK for RS256, with its RFC 7638 thumbprint as `kid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jwk {
    pub kty: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    pub kid: String,
    pub n: String,
    pub e: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the public key is not an RSA SubjectPublicKeyInfo")]
    NotRsa,
    #[error("the public key does not parse")]
    Der(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Jwk {
    /// From the big-endian modulus and exponent.
    pub fn rsa(n: &[u8], e: &[u8]) -> Self {
        let strip = |b: &[u8]| {
            let first = b
                .iter()
                .position(|x| *x != 0)
                .unwrap_or(b.len().saturating_sub(1));
            URL_SAFE_NO_PAD.encode(&b[first..])
        };
        let (n, e) = (strip(n), strip(e));
        // RFC 7638: the required members, in lexicographic order, no white space.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Self {
            kty: "RSA",
            use_: "sig",
            alg: "RS256",
            kid,
            n,
            e,
        }
    }

    /// From a DER SubjectPublicKeyInfo (what KMS `GetPublicKey` returns).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        use spki::der::Decode;
        let info = spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|e| KeyError::Der(Box::new(e)))?;
        const RSA_ENCRYPTION: spki::ObjectIdentifier =
            spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
        if info.algorithm.oid != RSA_ENCRYPTION {
            return Err(KeyError::NotRsa);
        }
        let key = pkcs1::RsaPublicKey::from_der(info.subject_public_key.raw_bytes())
            .map_err(|e| KeyError::Der(Box::new(e)))?;
        Ok(Self::rsa(key.modulus.as_bytes(), key.public_exponent.as_bytes()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("the signing service is unavailable or throttling")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the signing service refused")]
    Refused(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("no signing key is configured")]
    NoKey,
}

impl SigningError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// An RS256 signing key (and the keys published beside it).
#[async_trait]
pub trait Signer: Send + Sync + fmt::Debug {
    /// The public keys to publish; the first is the one that signs.
    fn keys(&self) -> &[Jwk];
    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`, with the first key.
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError>;
}

/// A signed assertion: a bearer credential for its lifetime, so redacted in `Debug` and never
/// logged, stored or put in an event.
#[derive(Clone)]
pub struct Assertion(SecretString);

impl fmt::Debug for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Assertion(redacted)")
    }
}

impl Assertion {
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// What the customer enters in the portal (App registrations > the app > Certificates & secrets >
/// Federated credentials > Add credential > "Other issuer"), and the same as an `az` command and
/// a Microsoft Graph request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedCredentialValues {
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
    pub name: String,
    pub description: String,
    pub az_cli: String,
    /// `POST` to the cloud's Microsoft Graph endpoint + `path`.
    pub graph_request: Value,
}

impl FederatedCredentialValues {
    pub fn of(
        issuer_url: &str,
        org: &OrgId,
        id: &ConnectionId,
        salt: Option<&str>,
        client: &ClientId,
    ) -> Self {
        let subject = Issuer::subject(org, id, salt);
        let name = format!("spot-azure-connect-{id}");
        let description = "Spot (azure-connect): signs in without a client secret".to_owned();
        let body = json!({
            "name": name,
            "issuer": issuer_url,
            "subject": subject,
            "audiences": [AUDIENCE],
            "description": description,
        });
        Self {
            issuer: issuer_url.to_owned(),
            subject,
            audiences: vec![AUDIENCE.to_owned()],
            az_cli: format!("az ad app federated-credential create --id {client} --parameters '{body}'"),
            graph_request: json!({
                "method": "POST",
                "path": format!("/v1.0/applications(appId='{client}')/federatedIdentityCredentials"),
                "body": body,
            }),
            name,
            description,
        }
    }
}

/// Our issuer: its URL (`ISSUER_URL`) and its key (a function that only hands out the issuer's
/// URL has none).
#[derive(Debug, Clone)]
pub struct Issuer {
    url: String,
    signer: Option<Arc<dyn Signer>>,
}

impl Issuer {
    pub fn new(url: impl Into<String>, signer: Arc<dyn Signer>) -> Self {
        Self {
            url: url.into().trim_end_matches('/').to_owned(),
            signer: Some(signer),
        }
    }

    /// The issuer's URL only: no keys to publish, no assertion to sign.
    pub fn url_only(url: impl Into<String>) -> Self {
        Self {
            url: url.into().trim_end_matches('/').to_owned(),
            signer: None,
        }
    }

    fn keys(&self) -> &[Jwk] {
        self.signer.as_deref().map_or(&[], |s| s.keys())
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The one subject of a connection: unique per organization and connection, and with the
    /// connection's random salt never the same for a connection made again under the same id,
    /// so no customer can point us at another customer's app, nor inherit an earlier trust.
    pub fn subject(org: &OrgId, connection: &ConnectionId, salt: Option<&str>) -> String {
        match salt {
            Some(salt) => format!("azure-connect:org:{org}:connection:{connection}:{salt}"),
            None => format!("azure-connect:org:{org}:connection:{connection}"),
        }
    }

    /// `GET {issuer}/.well-known/openid-configuration`.
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.url,
            "jwks_uri": format!("{}/jwks", self.url),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"],
        })
    }

    /// `GET {issuer}/jwks`: every published key.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys() })
    }

    /// A fresh assertion for one token request of one connection.
    pub async fn assertion(
        &self,
        org: &OrgId,
        connection: &ConnectionId,
        salt: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Assertion, SigningError> {
        let signer = self.signer.as_ref().ok_or(SigningError::NoKey)?;
        let kid = &signer.keys().first().ok_or(SigningError::NoKey)?.kid;
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
        let claims = json!({
            "iss": self.url,
            "sub": Self::subject(org, connection, salt),
            "aud": AUDIENCE,
            "iat": now.timestamp(),
            "nbf": now.timestamp(),
            "exp": (now + ASSERTION_LIFETIME).timestamp(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = signer.sign(input.as_bytes()).await?;
        Ok(Assertion(SecretString::from(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ClientId;

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        // RFC 7638, section 3.1: the example key and its thumbprint.
        let n = URL_SAFE_NO_PAD
            .decode("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
            .unwrap();
        let jwk = Jwk::rsa(&n, &[1, 0, 1]);
        assert_eq!(jwk.e, "AQAB");
        assert_eq!(jwk.kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn the_values_name_our_issuer_and_this_connection_exactly() {
        let org = OrgId::parse("org-1").unwrap();
        let id = ConnectionId::parse("0b6c1f5e-6d2a-4c1b-9a57-2f1e8d3c4b5a").unwrap();
        let client = ClientId::parse("11111111-2222-4333-8444-555555555555").unwrap();
        let v =
            FederatedCredentialValues::of("https://api.example.com/oidc", &org, &id, Some("5a1t"), &client);
        assert_eq!(v.issuer, "https://api.example.com/oidc");
        assert_eq!(
            v.subject,
            "azure-connect:org:org-1:connection:0b6c1f5e-6d2a-4c1b-9a57-2f1e8d3c4b5a:5a1t"
        );
        // A connection made before salts keeps the subject its app trusts.
        let old = FederatedCredentialValues::of("https://api.example.com/oidc", &org, &id, None, &client);
        assert_eq!(
            old.subject,
            "azure-connect:org:org-1:connection:0b6c1f5e-6d2a-4c1b-9a57-2f1e8d3c4b5a"
        );
        assert_eq!(v.audiences, ["api://AzureADTokenExchange"]);
        assert_eq!(v.graph_request["body"]["subject"], v.subject);
        assert_eq!(
            v.graph_request["path"],
            "/v1.0/applications(appId='11111111-2222-4333-8444-555555555555')/federatedIdentityCredentials"
        );
        assert!(v.az_cli.starts_with(
            "az ad app federated-credential create --id 11111111-2222-4333-8444-555555555555 --parameters '{"
        ));
        assert!(v.name.len() <= 120 && v.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }
}
