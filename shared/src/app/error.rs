//! What can go wrong in a use case, and what each failure *means*: its stable code, the wizard step
//! to go back to, whether trying again can help, and the words the customer reads. The edge adds
//! only the transport (HTTP status, problem type URI); events carry the meaning as it is.

use serde::Serialize;

use crate::domain::diagnosis::{Diagnosis, DiagnosisKind};
use crate::domain::estate::EstateError;
use crate::domain::{RuleError, Step};
use crate::store::StoreError;

/// The error and every cause under it (one log field).
pub use crate::telemetry::error_chain;

/// One field that did not parse; the message never repeats the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    /// Well-formed (as the OpenAPI schema describes it) but refused: a date in the past, a
    /// secret that is the portal's Secret ID. Only such errors make a request 422 instead of 400.
    #[serde(skip)]
    pub refused: bool,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl ToString) -> Self {
        Self {
            field: field.into(),
            message: message.to_string(),
            refused: false,
        }
    }

    /// A value of the right form that cannot be accepted.
    pub fn refused(field: impl Into<String>, message: impl ToString) -> Self {
        Self {
            refused: true,
            ..Self::new(field, message)
        }
    }
}

/// The errors of the use cases. Requests that never became an operation (bad bodies, no
/// organization, no route) are the edge's own errors.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no such connection")]
    NotFound,
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("this connection id is already used by another account's connection")]
    IdTaken,
    #[error("too many concurrent changes to this connection")]
    Contended,
    #[error("the connection store failed")]
    Store(#[from] StoreError),
    /// Connect Account's verdict: the customer (or Azure) has something to fix.
    #[error("validation against Azure failed: {}", .0.code)]
    Validation(Box<Diagnosis>),
    #[error("this function has no Azure configuration")]
    AzureNotConfigured,
    #[error("this function has no OpenID issuer configured")]
    IssuerNotConfigured,
    /// A client's `Idempotency-Key` sent again with another request than the first.
    #[error("the idempotency key was used for another request")]
    KeyReused,
    /// A setup token that is not the connection's current one, or has expired.
    #[error("setup token refused")]
    SetupToken(#[source] crate::domain::setup::SetupTokenError),
    /// The system's random source failed (a setup token cannot be made).
    #[error("no random bytes available")]
    RandomUnavailable,
    /// The organization used up a quota ([`super::quota`]).
    #[error("the organization's quota of {quota} is used up")]
    QuotaExceeded {
        quota: Quota,
        /// When trying again can succeed (none: when something is finished or deleted).
        retry_after: Option<std::time::Duration>,
    },
}

/// Which quota, with its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    Unlinked(u32),
    ValidationsPerMinute(u32),
}

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unlinked(n) => write!(f, "{n} connections not yet linked"),
            Self::ValidationsPerMinute(n) => write!(f, "{n} validations a minute"),
        }
    }
}

impl Quota {
    pub fn detail(&self) -> String {
        match self {
            Self::Unlinked(n) => format!(
                "Your organization has {n} connections that are not linked yet (drafts and failed ones): finish or delete one before starting another."
            ),
            Self::ValidationsPerMinute(n) => format!(
                "Your organization validated against Azure {n} times this minute: try again when the minute is over (Retry-After)."
            ),
        }
    }
}

/// Whose move it is after a failure; the edge turns it into a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong as sent.
    Invalid,
    /// The request does not say who sends it.
    Unauthenticated,
    /// No such thing (in this organization).
    NotFound,
    /// The request clashes with the connection's state or with other requests.
    Conflict,
    /// Well-formed, but Azure (or a rule) says the customer has something to fix.
    Unprocessable,
    /// A dependency is busy or down; nothing was lost, try again.
    Unavailable,
    /// The caller used up a quota; after a while (or after deleting something), again.
    TooMany,
    /// Our fault; logged with its causes.
    Internal,
}

impl ErrorKind {
    /// Server-side failures: logged at error level with their whole chain of causes.
    pub fn is_fault(self) -> bool {
        matches!(self, Self::Unavailable | Self::Internal)
    }
}

/// A rejected request as the customer (and the console, through events) sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    #[serde(skip)]
    pub kind: ErrorKind,
    pub title: &'static str,
    pub detail: String,
    /// The wizard step to go back to; none where no step applies (no such route or connection,
    /// no organization, a request outside the wizard).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    /// Stable machine-readable code.
    pub code: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    pub retryable: bool,
    /// For permission gaps: exactly the required actions not granted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_actions: Vec<String>,
    /// When to try again (`Retry-After`), where it is known.
    #[serde(skip)]
    pub retry_after: Option<std::time::Duration>,
}

impl Rejection {
    pub fn new(
        kind: ErrorKind,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
        step: Step,
    ) -> Self {
        Self {
            kind,
            title,
            detail: detail.into(),
            step: Some(step),
            code,
            errors: Vec::new(),
            retryable: false,
            missing_actions: Vec::new(),
            retry_after: None,
        }
    }

    /// No wizard step is to blame (a route or connection that does not exist, a request outside
    /// the wizard).
    pub fn without_step(mut self) -> Self {
        self.step = None;
        self
    }

    /// Try again after `after` (rounded up to whole seconds in `Retry-After`).
    pub fn after(mut self, after: std::time::Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }
}

/// Anything a request can be rejected with: its meaning for the customer, and the error itself
/// (logged with its causes).
pub trait Rejectable: std::error::Error + Send + Sync {
    /// `step` is the step the request was for; some errors send the customer elsewhere.
    fn rejection(&self, step: Step) -> Rejection;
}

/// Every code an [`AppError`] can carry (the edge adds its own; `openapi.yaml` lists them all).
pub const CODES: &[&str] = &[
    "connection-not-found",
    "step-prerequisite-missing",
    "inputs-changed",
    "graph-permission-missing",
    "credential-type-mismatch",
    "connection-id-taken",
    "idempotency-key-reused",
    "write-conflict",
    "store-unavailable",
    "quota-exceeded",
    "setup-token-refused",
    "setup-conflict",
    "not-an-estate",
    "subscription-not-in-estate",
    "subscription-lost",
    "subscription-already-linked",
    "account-already-linked",
    "management-group-already-connected",
    "estate-has-links",
    "estate-too-large",
    "survey-superseded",
    "internal-error",
];

const INTERNAL_DETAIL: &str = "Something failed on our side; it has been logged.";

impl AppError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Contended | Self::Rule(RuleError::InputsChanged) => true,
            Self::Validation(d) => d.retryable,
            Self::QuotaExceeded { retry_after, .. } => retry_after.is_some(),
            _ => false,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound | Self::Rule(RuleError::Estate(EstateError::UnknownSubscription)) => {
                ErrorKind::NotFound
            }
            Self::Rule(RuleError::GraphPermissionMissing | RuleError::EstateTooLarge(_))
            | Self::KeyReused => ErrorKind::Unprocessable,
            Self::Rule(RuleError::SecretSealed) => ErrorKind::Internal,
            Self::QuotaExceeded { .. } => ErrorKind::TooMany,
            Self::SetupToken(_) | Self::Rule(RuleError::SetupToken(_)) => ErrorKind::Unauthenticated,
            Self::RandomUnavailable => ErrorKind::Internal,
            Self::Rule(_) | Self::IdTaken | Self::Contended => ErrorKind::Conflict,
            Self::Validation(d) => match d.kind {
                DiagnosisKind::Customer => ErrorKind::Unprocessable,
                DiagnosisKind::AzureUnavailable => ErrorKind::Unavailable,
                DiagnosisKind::Ours => ErrorKind::Internal,
            },
            Self::Store(e) if e.is_retryable() => ErrorKind::Unavailable,
            Self::Store(_) | Self::AzureNotConfigured | Self::IssuerNotConfigured => ErrorKind::Internal,
        }
    }
}

impl Rejectable for AppError {
    fn rejection(&self, step: Step) -> Rejection {
        let kind = self.kind();
        match self {
            Self::NotFound => Rejection::new(
                kind,
                "connection-not-found",
                "Connection not found",
                "There is no such connection in your organization. Start a new one.",
                Step::Start,
            )
            .without_step(),
            Self::Rule(RuleError::MissingPrerequisite { step: wanted, needs }) => Rejection::new(
                kind,
                "step-prerequisite-missing",
                "An earlier step is missing",
                format!("Step {wanted} needs step {needs} first; complete {needs}, then come back."),
                *needs,
            ),
            Self::Rule(RuleError::InputsChanged) => Rejection::new(
                kind,
                "inputs-changed",
                "Inputs changed during validation",
                "The connection's inputs changed while Connect Account was checking them; connect again.",
                Step::RoleAssignment,
            )
            .retryable(),
            Self::Rule(RuleError::WrongCredentialType {
                step: wanted,
                credential,
            }) => Rejection::new(
                kind,
                "credential-type-mismatch",
                "Not a step of this connection",
                format!(
                    "Step {wanted} is not for a connection whose credential type is {credential}. Change the credential type (PUT /connections/{{id}}/credential-type) if you meant the other way of signing in."
                ),
                Step::Start,
            ),
            Self::Rule(RuleError::NotAnEstate) => Rejection::new(
                kind,
                "not-an-estate",
                "Not a management group connection",
                "This connection is for one subscription: its subscriptions are not listed or linked one by one. Set a management group as its scope (PUT /connections/{id}/scope) to connect a group's subscriptions.",
                Step::Subscription,
            ),
            Self::Rule(RuleError::EstateTooLarge(n)) => Rejection::new(
                kind,
                "estate-too-large",
                "Too many subscriptions for one connection",
                format!(
                    "The management group holds {n} subscriptions: more than one connection keeps. Connect its child groups one by one (a connection each), then connect again."
                ),
                Step::Subscription,
            ),
            Self::Rule(RuleError::Survey(_)) => Rejection::new(
                kind,
                "survey-superseded",
                "The survey was replaced",
                "The management group's survey this work belonged to is no longer the connection's: Connect Account started another one, or the scope changed. Nothing was recorded.",
                Step::RoleAssignment,
            ),
            Self::Rule(RuleError::Estate(e)) => {
                let (code, title, detail): (_, _, std::borrow::Cow<'static, str>) = match e {
                    EstateError::UnknownSubscription => (
                        "subscription-not-in-estate",
                        "Subscription not found under the group",
                        "Connect Account (or the last health check) did not find this subscription under the connection's management group. Move it under the group in Azure, then connect again.".into(),
                    ),
                    EstateError::SubscriptionLost => (
                        "subscription-lost",
                        "Subscription no longer under the group",
                        "This subscription was moved out of the management group, deleted, or is no longer visible to the app.".into(),
                    ),
                    EstateError::SubscriptionTaken => (
                        "subscription-already-linked",
                        "Subscription already linked",
                        "This subscription is already linked to another Spot account. A subscription belongs to one account.".into(),
                    ),
                    EstateError::AccountTaken => (
                        "account-already-linked",
                        "Account already holds a subscription",
                        "This Spot account already holds another subscription. An account holds one subscription: create an account for this one.".into(),
                    ),
                    EstateError::HeldElsewhere => (
                        "account-already-linked",
                        "Account already holds this subscription",
                        "This Spot account already holds this very subscription through another connection of your organization: nothing more is needed. To hold it through this management group instead, delete that connection first.".into(),
                    ),
                    EstateError::HasLinks { linked } => (
                        "estate-has-links",
                        "The estate's subscriptions are linked",
                        format!(
                            "This connection's management group has {linked} subscriptions tied to Spot accounts; a subscription or another group here would drop every one of those ties. Send \"replaceEstate\": true to replace it anyway (each tie dropped is announced as Subscription Unlinked), or connect the subscription with a connection of its own."
                        )
                        .into(),
                    ),
                    EstateError::GroupTaken => (
                        "management-group-already-connected",
                        "Management group already connected",
                        "Another connection of your organization already holds this management group and the links of its subscriptions to Spot accounts. Open that connection, or delete it first.".into(),
                    ),
                };
                Rejection::new(kind, code, title, detail, Step::Subscription)
            }
            Self::Rule(RuleError::GraphPermissionMissing) => Rejection::new(
                kind,
                "graph-permission-missing",
                "The app cannot manage its own credentials",
                "Rotation needs the Microsoft Graph application permission Application.ReadWrite.OwnedBy (Azure portal > Microsoft Entra ID > App registrations > your app > API permissions > Add > Microsoft Graph > Application permissions; grant admin consent) and the app's service principal as an owner of the app (Owners > Add). Then connect again and turn rotation on.",
                Step::AppRegistration,
            ),
            Self::Validation(d) => {
                let mut r = Rejection::new(kind, d.code, d.title, d.detail.clone(), d.step);
                r.retryable = d.retryable;
                r.missing_actions = d.missing_actions.clone();
                r
            }
            Self::SetupToken(_) | Self::Rule(RuleError::SetupToken(_)) => Rejection::new(
                kind,
                "setup-token-refused",
                "Setup token refused",
                "This setup command is not valid: it has expired, a newer one replaced it, it was spent connecting, it was made for the other purpose (connect or uninstall), or it belongs to another connection. Copy a fresh command from the wizard.",
                Step::Start,
            ),
            Self::Rule(RuleError::SetupConflict(c)) => Rejection::new(
                kind,
                "setup-conflict",
                "The run names other values than the connection holds",
                format!(
                    "The connection holds {} {}, and this run reported {}: a setup command can only finish what its connection was started with, so nothing changed. To connect other values, change them in the wizard.",
                    c.field, c.held, c.reported
                ),
                match c.field {
                    "tenantId" | "clientId" => Step::AppRegistration,
                    _ => Step::Subscription,
                },
            ),
            Self::IdTaken => Rejection::new(
                kind,
                "connection-id-taken",
                "Connection id in use",
                "This connection id belongs to another account's connection.",
                Step::Start,
            ),
            Self::Contended => Rejection::new(
                kind,
                "write-conflict",
                "Concurrent changes",
                "The connection was changed by other requests at the same time; try again.",
                step,
            )
            .retryable(),
            Self::Store(e) if e.is_retryable() => Rejection::new(
                kind,
                "store-unavailable",
                "Temporarily unavailable",
                "Our storage is busy or unavailable; nothing was lost. Try again shortly.",
                step,
            )
            .retryable(),
            Self::KeyReused => Rejection::new(
                kind,
                "idempotency-key-reused",
                "Idempotency key reused",
                "This Idempotency-Key was sent before with another request (method, path or body): a retry sends the same request; a new request needs a new key.",
                step,
            ),
            Self::QuotaExceeded { quota, retry_after } => {
                let r = Rejection::new(kind, "quota-exceeded", "Quota exceeded", quota.detail(), step);
                match retry_after {
                    Some(after) => r.retryable().after(*after),
                    None => r,
                }
            }
            Self::Store(_)
            | Self::AzureNotConfigured
            | Self::IssuerNotConfigured
            | Self::RandomUnavailable
            | Self::Rule(RuleError::SecretSealed) => {
                Rejection::new(kind, "internal-error", "Internal error", INTERNAL_DETAIL, step)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_error() -> Vec<AppError> {
        vec![
            AppError::NotFound,
            AppError::Rule(RuleError::MissingPrerequisite {
                step: Step::CustomRole,
                needs: Step::Subscription,
            }),
            AppError::Rule(RuleError::InputsChanged),
            AppError::Rule(RuleError::GraphPermissionMissing),
            AppError::Rule(RuleError::WrongCredentialType {
                step: Step::ClientSecret,
                credential: crate::domain::CredentialType::Federated,
            }),
            AppError::IdTaken,
            AppError::KeyReused,
            AppError::Contended,
            AppError::Store(StoreError::Unavailable("x".into())),
            AppError::QuotaExceeded {
                quota: Quota::Unlinked(50),
                retry_after: None,
            },
            AppError::SetupToken(crate::domain::setup::SetupTokenError::Expired),
            AppError::Rule(RuleError::SetupConflict(
                crate::domain::setup::SetupConflict::new("clientId", "a", "b"),
            )),
            AppError::Rule(RuleError::NotAnEstate),
            AppError::Rule(RuleError::Estate(EstateError::UnknownSubscription)),
            AppError::Rule(RuleError::Estate(EstateError::SubscriptionLost)),
            AppError::Rule(RuleError::Estate(EstateError::SubscriptionTaken)),
            AppError::Rule(RuleError::Estate(EstateError::AccountTaken)),
            AppError::Rule(RuleError::Estate(EstateError::GroupTaken)),
            AppError::Rule(RuleError::Estate(EstateError::HasLinks { linked: 2 })),
            AppError::Rule(RuleError::EstateTooLarge(5000)),
            AppError::Rule(RuleError::Survey(crate::domain::survey::SurveyError::Superseded)),
            AppError::Store(StoreError::Backend("x".into())),
        ]
    }

    #[test]
    fn every_error_has_a_listed_code_and_every_code_is_used() {
        let codes: Vec<&str> = every_error()
            .iter()
            .map(|e| e.rejection(Step::Start).code)
            .collect();
        assert_eq!(codes, CODES);
    }

    #[test]
    fn prerequisite_points_at_the_missing_step() {
        let r = AppError::Rule(RuleError::MissingPrerequisite {
            step: Step::CustomRole,
            needs: Step::Subscription,
        })
        .rejection(Step::CustomRole);
        assert_eq!(
            (r.kind, r.code, r.step.unwrap_or(Step::Start)),
            (
                ErrorKind::Conflict,
                "step-prerequisite-missing",
                Step::Subscription
            )
        );
    }

    #[test]
    fn throttling_is_a_retryable_fault_and_other_store_failures_are_ours() {
        let r = AppError::Store(StoreError::Unavailable("throttled".into())).rejection(Step::Subscription);
        assert_eq!((r.kind, r.retryable), (ErrorKind::Unavailable, true));
        let r = AppError::Store(StoreError::Backend("denied".into())).rejection(Step::Subscription);
        assert_eq!((r.kind, r.retryable), (ErrorKind::Internal, false));
        assert!(r.kind.is_fault());
    }

    #[test]
    fn the_chain_names_every_cause() {
        let io = std::io::Error::other("AccessDeniedException: not authorized to kms:Decrypt");
        let err = AppError::Store(StoreError::Backend(Box::new(io)));
        let chain = error_chain(&err);
        assert!(
            chain.starts_with("the connection store failed: the store failed: "),
            "{chain}"
        );
        assert!(chain.ends_with("kms:Decrypt"), "{chain}");
    }
}
