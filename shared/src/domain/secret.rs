//! The client secret VALUE. It can only be read through [`ClientSecret::expose`]; `Debug` and
//! `Display` never show it, and its memory is zeroed on drop (secrecy).

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Longest secret we accept. Azure's are 40 characters (legacy ones 32 to 44); anything much
/// longer is a paste of something else.
pub const MAX_SECRET_LEN: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("is empty")]
    Empty,
    #[error(
        "looks like the Secret ID (a GUID); copy the secret's Value column instead, shown only once right after you create the secret"
    )]
    LooksLikeSecretId,
    #[error("starts or ends with white space; copy the Value exactly")]
    WhiteSpacePadded,
    #[error("contains control or non-ASCII characters that Azure secrets never contain")]
    BadCharacters,
    #[error("is longer than {MAX_SECRET_LEN} characters; Azure secret values are about 40")]
    TooLong,
}

#[derive(Clone)]
pub struct ClientSecret(SecretString);

impl ClientSecret {
    pub fn parse(input: SecretString) -> Result<Self, SecretError> {
        let s = input.expose_secret();
        if s.is_empty() {
            return Err(SecretError::Empty);
        }
        if s.trim() != s {
            return Err(SecretError::WhiteSpacePadded);
        }
        if s.chars().count() > MAX_SECRET_LEN {
            return Err(SecretError::TooLong);
        }
        if !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(SecretError::BadCharacters);
        }
        if s.len() == 36 && uuid::Uuid::try_parse(s).is_ok() {
            return Err(SecretError::LooksLikeSecretId);
        }
        Ok(Self(input))
    }

    /// The only way to the value: for the token endpoint and the store's serializer.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// First three characters, as the Azure portal shows them (`hint`).
    pub fn hint(&self) -> SecretHint {
        SecretHint(self.expose().chars().take(3).collect())
    }

    /// What tells two values apart without holding either: SHA-256 of the value (an Azure
    /// secret has about 240 random bits, so the digest gives nothing away), first 128 bits in hex.
    pub fn fingerprint(&self) -> SecretFingerprint {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("azure-connect/client-secret/v1:{}", self.expose()));
        SecretFingerprint(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// See [`ClientSecret::fingerprint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFingerprint(String);

impl SecretFingerprint {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As stored (32 lowercase hex digits).
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(s.to_owned()))
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientSecret({}…, redacted)", self.hint().0)
    }
}

impl PartialEq for ClientSecret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

/// The first three characters of a secret: what Azure itself shows, never more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretHint(String);

impl SecretHint {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As stored: at most three characters, never more of a secret.
    pub fn parse(s: &str) -> Option<Self> {
        (s.chars().count() <= 3).then(|| Self(s.to_owned()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    #[error("must be an ISO 8601 date or date-time, e.g. 2027-06-30 or 2027-06-30T12:00:00Z")]
    NotIso8601,
    #[error("is in the past: create a new secret in Azure and use its Value")]
    InPast,
}

/// When the client secret expires. Parsed relative to a clock so tests are deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SecretExpiry(DateTime<Utc>);

impl SecretExpiry {
    /// Accepts RFC 3339 date-times (any offset) and plain dates (taken as 00:00 UTC that day).
    pub fn parse(input: &str, now: DateTime<Utc>) -> Result<Self, ExpiryError> {
        let s = super::ids::trim_pasted(input);
        let at = DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .or_else(|_| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
            })
            .map_err(|_| ExpiryError::NotIso8601)?;
        if at <= now {
            return Err(ExpiryError::InPast);
        }
        Ok(Self(at))
    }

    pub fn at(&self) -> DateTime<Utc> {
        self.0
    }

    /// What Azure itself says (Graph `endDateTime`): trusted as is, past or not.
    pub fn from_azure(at: DateTime<Utc>) -> Self {
        Self(at)
    }
}

/// A client secret as a connection knows it. The value lives apart from the connection's
/// document (its own credential, readable only by the functions that use it): a connection read
/// from the store holds it [`SecretValue::Sealed`] until one of them reveals it.
#[derive(Debug, Clone)]
pub struct SecretRecord {
    value: SecretValue,
    hint: SecretHint,
    fingerprint: SecretFingerprint,
    pub expires_at: Option<SecretExpiry>,
    /// When it was entered (or rotated in): names the submission, and with it its credential.
    pub submitted_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub enum SecretValue {
    /// In memory: just entered or rotated in, or revealed.
    Held(ClientSecret),
    /// In the store, not read.
    Sealed,
}

impl SecretRecord {
    pub fn new(secret: ClientSecret, expires_at: Option<SecretExpiry>, submitted_at: DateTime<Utc>) -> Self {
        Self {
            hint: secret.hint(),
            fingerprint: secret.fingerprint(),
            value: SecretValue::Held(secret),
            expires_at,
            submitted_at,
        }
    }

    /// A record read from the store: everything but the value.
    pub fn sealed(
        hint: SecretHint,
        fingerprint: SecretFingerprint,
        expires_at: Option<SecretExpiry>,
        submitted_at: DateTime<Utc>,
    ) -> Self {
        Self {
            value: SecretValue::Sealed,
            hint,
            fingerprint,
            expires_at,
            submitted_at,
        }
    }

    pub fn hint(&self) -> SecretHint {
        self.hint.clone()
    }

    pub fn fingerprint(&self) -> &SecretFingerprint {
        &self.fingerprint
    }

    /// The name of this submission's credential in the store: its time and the start of the
    /// fingerprint (two secrets entered in the same instant still get two).
    pub fn credential_id(&self) -> String {
        format!(
            "{}-{}",
            self.submitted_at.timestamp_micros(),
            &self.fingerprint.as_str()[..8]
        )
    }

    /// The value, when held.
    pub fn secret(&self) -> Option<&ClientSecret> {
        match &self.value {
            SecretValue::Held(s) => Some(s),
            SecretValue::Sealed => None,
        }
    }

    /// The value read from the store. `false` (and nothing held) if it is not this record's.
    pub fn reveal(&mut self, secret: ClientSecret) -> bool {
        if secret.fingerprint() != self.fingerprint {
            return false;
        }
        self.value = SecretValue::Held(secret);
        true
    }

    /// Whether `secret` is this record's value.
    pub fn is(&self, secret: &ClientSecret) -> bool {
        secret.fingerprint() == self.fingerprint
    }
}

/// Two records are the same submission of the same value, held or not.
impl PartialEq for SecretRecord {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
            && self.hint == other.hint
            && self.expires_at == other.expires_at
            && self.submitted_at == other.submitted_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ClientSecret, SecretError> {
        ClientSecret::parse(SecretString::from(s.to_owned()))
    }

    #[test]
    fn accepts_current_and_legacy_formats() {
        let s = parse("abc8Q~0123456789abcdefghijklmnopqrstuvwx").unwrap();
        assert_eq!(s.hint().as_str(), "abc");
        assert!(parse("a+b/c=d[e]f@g:h0123456789abcdefghijk").is_ok());
    }

    #[test]
    fn refuses_what_is_not_a_secret_value() {
        assert_eq!(parse(""), Err(SecretError::Empty));
        assert_eq!(
            parse("0F8FAD5B-D9CB-469F-A165-70867728950E"),
            Err(SecretError::LooksLikeSecretId)
        );
        assert_eq!(parse(" abc8Q~0123456789"), Err(SecretError::WhiteSpacePadded));
        assert_eq!(parse("abc8Q~0123456789\n"), Err(SecretError::WhiteSpacePadded));
        assert_eq!(parse("abc\u{7}8Q~01234"), Err(SecretError::BadCharacters));
        assert_eq!(parse("abc–8Q~01234"), Err(SecretError::BadCharacters));
        assert_eq!(parse(&"x".repeat(129)), Err(SecretError::TooLong));
    }

    #[test]
    fn debug_shows_only_the_hint() {
        let s = parse("abc8Q~0123456789abcdefghijklmnopqrstuvwx").unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("8Q~0123"), "{dbg}");
        assert!(dbg.contains("abc"));
    }

    #[test]
    fn expiry_in_the_future_only() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(SecretExpiry::parse("2028-11-25", now).is_ok());
        assert!(SecretExpiry::parse("2027-01-01T10:00:00+02:00", now).is_ok());
        assert_eq!(SecretExpiry::parse("2026-01-01", now), Err(ExpiryError::InPast));
        assert_eq!(
            SecretExpiry::parse("next year", now),
            Err(ExpiryError::NotIso8601)
        );
    }
}
