//! Request bodies (and console event details) into domain values. JSON errors name the field and
//! never repeat the input: serde's messages can quote the value, so only the expectation is kept.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::{EdgeError, InputProblem};
use crate::app::FieldError;
use crate::domain::connection::RotationSettings;
use crate::domain::{
    AccountId, ClientId, ClientSecret, Command, ConnectionId, CredentialType, ExpiryError, SecretError,
    SecretExpiry, Step, SubscriptionId, TenantId,
};

/// Largest body any step takes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A body over [`MAX_BODY_BYTES`].
/// A field that may be left out, but is a string when given (`null` is refused, as the schemas
/// say).
pub(super) fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    <String as serde::Deserialize>::deserialize(d).map(Some)
}

pub fn too_large() -> EdgeError {
    EdgeError::input(
        InputProblem::BodyTooLarge,
        vec![FieldError::new(
            "body",
            format!("is larger than {MAX_BODY_BYTES} bytes"),
        )],
    )
}

/// Parses a JSON body strictly: unknown fields, wrong types and trailing data are errors.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, EdgeError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
    de.end().map_err(|_| {
        EdgeError::input(
            InputProblem::MalformedBody,
            vec![FieldError::new("body", "has data after the JSON value")],
        )
    })?;
    Ok(value)
}

/// The same strict parsing for a JSON value already in hand (a console event's detail).
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, EdgeError> {
    serde_path_to_error::deserialize(value).map_err(json_error)
}

fn json_error(err: serde_path_to_error::Error<serde_json::Error>) -> EdgeError {
    let path = err.path().to_string();
    let inner = err.inner();
    if !inner.is_data() {
        let message = if inner.is_eof() {
            "is empty or cut short; send a JSON object".to_owned()
        } else {
            format!(
                "is not valid JSON (line {}, column {})",
                inner.line(),
                inner.column()
            )
        };
        return EdgeError::input(
            InputProblem::MalformedBody,
            vec![FieldError::new("body", message)],
        );
    }
    let msg = inner.to_string();
    let field_or_body = |p: &str| {
        if p == "." || p.is_empty() {
            "body".to_owned()
        } else {
            p.to_owned()
        }
    };
    let between_ticks = |m: &str| m.split('`').nth(1).map(str::to_owned);
    let expected = msg
        .rsplit_once(", expected ")
        .map(|(_, e)| e.split(" at line ").next().unwrap_or(e).to_owned());
    let (field, message) = if msg.starts_with("unknown field") {
        // serde_path_to_error's path already ends with the unknown key. A key is input too: it is
        // named only when it looks like a field name, never when it could be a pasted value.
        let name = between_ticks(&msg).unwrap_or_default();
        let looks_like_field =
            (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let field = match (looks_like_field, path.as_str()) {
            (false, _) => "body".to_owned(),
            (true, "." | "") => name,
            (true, _) => path,
        };
        let message = match expected {
            Some(e) => format!("is not a field of this request (expected {e})"),
            None => "is not a field of this request".to_owned(),
        };
        (field, message)
    } else if msg.starts_with("missing field") {
        let name = between_ticks(&msg).unwrap_or_default();
        let field = if path == "." || path.is_empty() {
            name
        } else {
            format!("{path}.{name}")
        };
        (field, "is required".to_owned())
    } else if let Some(e) = expected {
        (field_or_body(&path), format!("must be {e}"))
    } else {
        (field_or_body(&path), "is not valid".to_owned())
    };
    EdgeError::input(InputProblem::MalformedBody, vec![FieldError::new(field, message)])
}

/// A body that becomes a domain command.
pub trait StepInput: DeserializeOwned {
    const STEP: Step;
    fn into_command(self, now: DateTime<Utc>) -> Result<Command, EdgeError>;
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartBody {
    pub account_id: String,
    #[serde(default)]
    pub credential_type: Option<String>,
}

impl StartBody {
    pub fn account(&self) -> Result<AccountId, EdgeError> {
        AccountId::parse(&self.account_id)
            .map_err(|e| EdgeError::invalid(vec![FieldError::new("accountId", e)]))
    }

    pub fn credential(&self) -> Result<CredentialType, EdgeError> {
        credential_type(self.credential_type.as_deref())
    }
}

/// `credentialType`: `secret` (the default) or `federated`.
pub fn credential_type(raw: Option<&str>) -> Result<CredentialType, EdgeError> {
    match raw {
        None => Ok(CredentialType::default()),
        Some(s) => CredentialType::parse(s).ok_or_else(|| {
            EdgeError::invalid(vec![FieldError::new(
                "credentialType",
                "must be secret or federated",
            )])
        }),
    }
}

/// `PUT /connections/{id}/credential-type`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CredentialTypeBody {
    pub credential_type: String,
}

impl StepInput for CredentialTypeBody {
    const STEP: Step = Step::Start;

    fn into_command(self, _now: DateTime<Utc>) -> Result<Command, EdgeError> {
        credential_type(Some(&self.credential_type)).map(Command::SetCredentialType)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppRegistrationBody {
    pub tenant_id: String,
    pub client_id: String,
}

impl StepInput for AppRegistrationBody {
    const STEP: Step = Step::AppRegistration;
    fn into_command(self, _now: DateTime<Utc>) -> Result<Command, EdgeError> {
        let tenant = TenantId::parse(&self.tenant_id).map_err(|e| FieldError::new("tenantId", e));
        let client = ClientId::parse(&self.client_id).map_err(|e| FieldError::new("clientId", e));
        match (tenant, client) {
            (Ok(tenant), Ok(client)) => Ok(Command::AppRegistration { tenant, client }),
            (t, c) => Err(EdgeError::invalid(t.err().into_iter().chain(c.err()).collect())),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientSecretBody {
    pub client_secret: SecretString,
    #[serde(default)]
    pub expires_at: Option<String>,
}

impl StepInput for ClientSecretBody {
    const STEP: Step = Step::ClientSecret;
    fn into_command(self, now: DateTime<Utc>) -> Result<Command, EdgeError> {
        let secret = ClientSecret::parse(self.client_secret).map_err(|e| secret_error("clientSecret", e));
        let expires_at = self
            .expires_at
            .as_deref()
            .map(|s| SecretExpiry::parse(s, now))
            .transpose()
            .map_err(|e| expiry_error("expiresAt", e));
        match (secret, expires_at) {
            (Ok(secret), Ok(expires_at)) => Ok(Command::ClientSecret { secret, expires_at }),
            (s, e) => Err(EdgeError::invalid(s.err().into_iter().chain(e.err()).collect())),
        }
    }
}

/// A secret that did not parse; the portal's Secret ID has the right form and is refused.
pub fn secret_error(field: &str, e: SecretError) -> FieldError {
    match e {
        SecretError::LooksLikeSecretId => FieldError::refused(field, e),
        e => FieldError::new(field, e),
    }
}

/// An expiry that did not parse; a date in the past has the right form and is refused.
pub fn expiry_error(field: &str, e: ExpiryError) -> FieldError {
    match e {
        ExpiryError::InPast => FieldError::refused(field, e),
        e => FieldError::new(field, e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubscriptionBody {
    pub subscription_id: String,
    /// Replacing an estate drops its ties to Spot accounts: only with `true` (else 409
    /// `estate-has-links`).
    #[serde(default)]
    pub replace_estate: bool,
}

impl StepInput for SubscriptionBody {
    const STEP: Step = Step::Subscription;
    fn into_command(self, _now: DateTime<Utc>) -> Result<Command, EdgeError> {
        SubscriptionId::parse(&self.subscription_id)
            .map(|subscription| Command::Subscription {
                subscription,
                replace_estate: self.replace_estate,
            })
            .map_err(|e| EdgeError::invalid(vec![FieldError::new("subscriptionId", e)]))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RotationBody {
    pub enabled: bool,
    #[serde(default, deserialize_with = "whole_number")]
    pub days_before: Option<i64>,
}

/// A whole number, as JSON Schema counts them: `14.0` is the integer 14.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    n.as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| f as i64)
        })
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("must be a whole number"))
}

/// Days before expiry a rotation starts when none are given.
pub const DEFAULT_ROTATION_DAYS: u32 = 14;

impl StepInput for RotationBody {
    const STEP: Step = Step::ClientSecret;

    fn into_command(self, _now: DateTime<Utc>) -> Result<Command, EdgeError> {
        let days = self.days_before.unwrap_or(DEFAULT_ROTATION_DAYS.into());
        let Some(days) = u32::try_from(days).ok().filter(|d| (1..=365).contains(d)) else {
            return Err(EdgeError::invalid(vec![FieldError::new(
                "daysBefore",
                "must be 1 to 365",
            )]));
        };
        Ok(Command::SetRotation(
            self.enabled.then_some(RotationSettings { days_before: days }),
        ))
    }
}

/// A connection id from a path or an event, checked before any store call.
pub fn connection_id(raw: &str) -> Result<ConnectionId, EdgeError> {
    ConnectionId::parse(raw).map_err(|e| EdgeError::invalid(vec![FieldError::new("connectionId", e)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(e: EdgeError) -> (InputProblem, Vec<FieldError>) {
        match e {
            EdgeError::Input { problem, errors } => (problem, errors),
            other => panic!("not an input error: {other:?}"),
        }
    }

    #[test]
    fn unknown_field_is_named() {
        let e = parse_json::<SubscriptionBody>(br#"{"subscriptionId":"x","extra":1}"#).unwrap_err();
        let (p, errs) = errors(e);
        assert_eq!(p, InputProblem::MalformedBody);
        assert_eq!(errs[0].field, "extra");
    }

    #[test]
    fn an_unknown_key_that_could_be_a_value_is_not_echoed() {
        let e = parse_json::<SubscriptionBody>(br#"{"subscriptionId":"x","abc8Q~zzzzzzzzzz.zzzzzz":1}"#)
            .unwrap_err();
        let (_, errs) = errors(e);
        assert_eq!(errs[0].field, "body");
        assert!(!format!("{errs:?}").contains("abc8Q~"));
    }

    #[test]
    fn missing_field_is_named() {
        let (_, errs) = errors(parse_json::<AppRegistrationBody>(br#"{"tenantId":"x"}"#).unwrap_err());
        assert_eq!(errs[0].field, "clientId");
        assert_eq!(errs[0].message, "is required");
    }

    #[test]
    fn wrong_type_names_the_field_and_not_the_value() {
        let (_, errs) = errors(parse_json::<ClientSecretBody>(br#"{"clientSecret":123456789}"#).unwrap_err());
        assert_eq!(errs[0].field, "clientSecret");
        assert!(!errs[0].message.contains("123456789"), "{}", errs[0].message);
        let (_, errs) = errors(
            parse_json::<ClientSecretBody>(br#"{"clientSecret":"s3cr3t-value","expiresAt":["s3cr3t"]}"#)
                .unwrap_err(),
        );
        assert_eq!(errs[0].field, "expiresAt");
        assert!(!errs[0].message.contains("s3cr3t"));
    }

    #[test]
    fn days_are_whole_numbers_as_json_schema_counts_them() {
        let days = |body: &str| parse_json::<RotationBody>(body.as_bytes()).map(|b| b.days_before);
        assert_eq!(days(r#"{"enabled":true,"daysBefore":14.0}"#).unwrap(), Some(14));
        assert_eq!(days(r#"{"enabled":true,"daysBefore":null}"#).unwrap(), None);
        assert!(days(r#"{"enabled":true,"daysBefore":14.5}"#).is_err());
        assert!(days(r#"{"enabled":true,"daysBefore":"14"}"#).is_err());
    }

    #[test]
    fn malformed_and_oversized_bodies() {
        let (p, errs) = errors(parse_json::<SubscriptionBody>(b"{not json").unwrap_err());
        assert_eq!((p, errs[0].field.as_str()), (InputProblem::MalformedBody, "body"));
        let (p, _) = errors(parse_json::<SubscriptionBody>(b"").unwrap_err());
        assert_eq!(p, InputProblem::MalformedBody);
        let (p, _) =
            errors(parse_json::<SubscriptionBody>(br#"{"subscriptionId":"x"} trailing"#).unwrap_err());
        assert_eq!(p, InputProblem::MalformedBody);
        let (p, errs) = errors(parse_json::<SubscriptionBody>(br#"[]"#).unwrap_err());
        assert_eq!((p, errs[0].field.as_str()), (InputProblem::MalformedBody, "body"));
        let big = format!(r#"{{"subscriptionId":"{}"}}"#, "a".repeat(MAX_BODY_BYTES));
        let (p, _) = errors(parse_json::<SubscriptionBody>(big.as_bytes()).unwrap_err());
        assert_eq!(p, InputProblem::BodyTooLarge);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let body = parse_json::<AppRegistrationBody>(br#"{"tenantId":"nope","clientId":"nope"}"#).unwrap();
        let (p, errs) = errors(body.into_command(Utc::now()).unwrap_err());
        assert_eq!(p, InputProblem::InvalidInput);
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["tenantId", "clientId"]);
    }
}

/// Property tests: whatever arrives, parsing answers (never panics) with errors that name a field
/// of the request and never repeat what was sent. Fixed seed: the same cases on every run.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};
    use serde_json::{Value, json};

    use super::*;

    fn config() -> Config {
        Config {
            cases: 512,
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(0x00a2_c0de),
            ..Config::default()
        }
    }

    const FIELDS: &[&str] = &[
        "body",
        "accountId",
        "credentialType",
        "tenantId",
        "clientId",
        "clientSecret",
        "expiresAt",
        "subscriptionId",
        "enabled",
        "daysBefore",
    ];

    /// Every body of the HTTP API, parsed as the routes do; the errors.
    fn every_parse(bytes: &[u8]) -> Vec<Result<(), EdgeError>> {
        let now = Utc::now();
        let step = |r: Result<Command, EdgeError>| r.map(|_| ());
        vec![
            parse_json::<StartBody>(bytes).and_then(|b| b.account().and(b.credential()).map(|_| ())),
            parse_json::<AppRegistrationBody>(bytes).and_then(|b| step(b.into_command(now))),
            parse_json::<ClientSecretBody>(bytes).and_then(|b| step(b.into_command(now))),
            parse_json::<SubscriptionBody>(bytes).and_then(|b| step(b.into_command(now))),
            parse_json::<RotationBody>(bytes).and_then(|b| step(b.into_command(now))),
            parse_json::<CredentialTypeBody>(bytes).and_then(|b| step(b.into_command(now))),
        ]
    }

    fn errors_of(e: &EdgeError) -> Vec<FieldError> {
        match e {
            EdgeError::Input { errors, .. } => errors.clone(),
            other => panic!("not an input error: {other:?}"),
        }
    }

    /// A value that cannot occur in any message by accident.
    fn canary() -> impl Strategy<Value = String> {
        "Zq9~[A-Za-z0-9._~-]{4,36}"
    }

    fn json_value(canary: String) -> impl Strategy<Value = Value> {
        let c = canary.clone();
        prop_oneof![
            Just(json!(canary.clone())),
            Just(json!([canary.clone()])),
            Just(json!({ "v": canary.clone() })),
            Just(json!(format!(" {c} "))),
            any::<i64>().prop_map(|n| json!(n)),
            any::<bool>().prop_map(|b| json!(b)),
            Just(Value::Null),
        ]
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_bytes_get_an_answer_naming_a_field(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            for result in every_parse(&bytes) {
                if let Err(e) = result {
                    let errors = errors_of(&e);
                    prop_assert!(!errors.is_empty());
                    for err in errors {
                        prop_assert!(FIELDS.contains(&err.field.as_str()), "field {:?}", err.field);
                        prop_assert!(!err.message.is_empty());
                    }
                }
            }
        }

        #[test]
        fn no_value_sent_is_ever_repeated(
            canary in canary(),
            fields in proptest::collection::vec(proptest::sample::select(&FIELDS[1..]), 1..4),
            values in proptest::collection::vec(canary().prop_flat_map(json_value), 4),
            stray_key in proptest::bool::ANY,
        ) {
            let mut body = serde_json::Map::new();
            for (f, v) in fields.iter().zip(values.iter().cycle()) {
                body.insert((*f).to_owned(), v.clone());
            }
            if stray_key {
                // A pasted secret as a key: not a field name, so not named either.
                body.insert(canary.clone(), json!(1));
            }
            let bytes = Value::Object(body).to_string();
            for result in every_parse(bytes.as_bytes()) {
                if let Err(e) = result {
                    let text = format!("{e:?}");
                    prop_assert!(!text.contains(&canary), "{text}");
                    for v in &values {
                        let raw = v.as_str().map(str::trim).unwrap_or_default();
                        prop_assert!(raw.len() < 4 || !text.contains(raw), "{raw} in {text}");
                    }
                }
            }
        }

        #[test]
        fn path_ids_parse_or_name_the_connection_id(raw in "\\PC{0,80}") {
            match connection_id(&raw) {
                Ok(id) => prop_assert_eq!(id.to_string(), crate::domain::ids::trim_pasted(&raw).to_ascii_lowercase()),
                Err(e) => {
                    let errors = errors_of(&e);
                    prop_assert_eq!(errors[0].field.as_str(), "connectionId");
                    prop_assert!(raw.len() < 4 || !errors[0].message.contains(&raw));
                }
            }
        }
    }
}
