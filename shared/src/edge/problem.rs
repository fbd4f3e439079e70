//! The one mapping from errors to RFC 9457 problem documents, used for HTTP responses and for
//! `Step Rejected` events alike.

use serde::Serialize;

use crate::app::{AppError, FieldError, InputProblem};
use crate::domain::diagnosis::DiagnosisKind;
use crate::domain::{RuleError, Step};

pub const CONTENT_TYPE: &str = "application/problem+json";

/// Every `code` a problem can carry (documented in `openapi.yaml`; a test holds them together).
pub const CODES: &[&str] = &[
    "invalid-input",
    "malformed-body",
    "body-too-large",
    "unsupported-media-type",
    "unauthenticated",
    "connection-not-found",
    "route-not-found",
    "method-not-allowed",
    "step-prerequisite-missing",
    "inputs-changed",
    "graph-permission-missing",
    "connection-id-taken",
    "write-conflict",
    "secret-not-accepted-over-events",
    "unknown-console-event",
    "store-unavailable",
    "internal-error",
];

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// The wizard step to go back to.
    pub step: Step,
    /// Stable machine-readable code.
    pub code: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    pub retryable: bool,
    /// For permission gaps: exactly the required actions not granted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_actions: Vec<String>,
}

impl Problem {
    fn new(
        status: u16,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
        step: Step,
    ) -> Self {
        Self {
            type_uri: format!("urn:azure-connect:problem:{code}"),
            title,
            status,
            detail: detail.into(),
            step,
            code,
            errors: Vec::new(),
            retryable: false,
            missing_actions: Vec::new(),
        }
    }

    /// `step` is the step the request was for; some errors send the customer elsewhere.
    pub fn from_error(err: &AppError, step: Step) -> Self {
        match err {
            AppError::Input { problem, errors } => {
                let (status, code, title, detail) = match problem {
                    InputProblem::InvalidInput => (
                        400,
                        "invalid-input",
                        "Invalid input",
                        "Some fields are not valid; see errors.",
                    ),
                    InputProblem::MalformedBody => (
                        400,
                        "malformed-body",
                        "Malformed request body",
                        "The body is not the JSON object this step takes; see errors.",
                    ),
                    InputProblem::BodyTooLarge => (
                        400,
                        "body-too-large",
                        "Request body too large",
                        "The body is larger than 16 KiB.",
                    ),
                    InputProblem::UnsupportedMediaType => (
                        400,
                        "unsupported-media-type",
                        "Unsupported media type",
                        "Send the body as application/json.",
                    ),
                };
                let mut p = Self::new(status, code, title, detail, step);
                p.errors = errors.clone();
                p
            }
            AppError::Unauthenticated => Self::new(
                401,
                "unauthenticated",
                "Unauthenticated",
                "The request does not say which organization it is for.",
                step,
            ),
            AppError::NotFound => Self::new(
                404,
                "connection-not-found",
                "Connection not found",
                "There is no such connection in your organization. Start a new one.",
                Step::Start,
            ),
            AppError::NoRoute => Self::new(
                404,
                "route-not-found",
                "Not found",
                "There is no such route.",
                step,
            ),
            AppError::MethodNotAllowed => Self::new(
                405,
                "method-not-allowed",
                "Method not allowed",
                "This route does not take this method.",
                step,
            ),
            AppError::Rule(RuleError::MissingPrerequisite { step: wanted, needs }) => Self::new(
                409,
                "step-prerequisite-missing",
                "An earlier step is missing",
                format!("Step {wanted} needs step {needs} first; complete {needs}, then come back."),
                *needs,
            ),
            AppError::Rule(RuleError::InputsChanged) => Self::new(
                409,
                "inputs-changed",
                "Inputs changed during validation",
                "The connection's inputs changed while Connect Account was checking them; connect again.",
                Step::RoleAssignment,
            )
            .retryable(),
            AppError::Rule(RuleError::GraphPermissionMissing) => Self::new(
                422,
                "graph-permission-missing",
                "The app cannot manage its own credentials",
                "Rotation needs the Microsoft Graph application permission Application.ReadWrite.OwnedBy (Azure portal > Microsoft Entra ID > App registrations > your app > API permissions > Add > Microsoft Graph > Application permissions; grant admin consent) and the app's service principal as an owner of the app (Owners > Add). Then connect again and turn rotation on.",
                Step::AppRegistration,
            ),
            AppError::Validation(d) => {
                let status = match d.kind {
                    DiagnosisKind::Customer => 422,
                    DiagnosisKind::AzureUnavailable => 503,
                    DiagnosisKind::Ours => 500,
                };
                let mut p = Self::new(status, d.code, d.title, d.detail.clone(), d.step);
                p.retryable = d.retryable;
                p.missing_actions = d.missing_actions.clone();
                p
            }
            AppError::AzureNotConfigured => Self::new(
                500,
                "internal-error",
                "Internal error",
                "Something failed on our side; it has been logged.",
                step,
            ),
            AppError::IdTaken => Self::new(
                409,
                "connection-id-taken",
                "Connection id in use",
                "This connection id belongs to another account's connection.",
                Step::Start,
            ),
            AppError::Contended => Self::new(
                409,
                "write-conflict",
                "Concurrent changes",
                "The connection was changed by other requests at the same time; try again.",
                step,
            )
            .retryable(),
            AppError::SecretOverEvent => Self::new(
                400,
                "secret-not-accepted-over-events",
                "Client secret refused",
                "Client secrets are accepted over the authenticated API only; the secret was neither stored nor logged. Submit it in the wizard.",
                Step::ClientSecret,
            ),
            AppError::UnknownEvent => Self::new(
                400,
                "unknown-console-event",
                "Unknown console event",
                "This function does not take console events of this detail-type.",
                step,
            ),
            AppError::Store(e) if e.is_retryable() => Self::new(
                503,
                "store-unavailable",
                "Temporarily unavailable",
                "Our storage is busy or unavailable; nothing was lost. Try again shortly.",
                step,
            )
            .retryable(),
            AppError::Store(_) => Self::new(
                500,
                "internal-error",
                "Internal error",
                "Something failed on our side; it has been logged.",
                step,
            ),
        }
    }

    fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn every_error_maps_to_a_listed_code_and_every_code_is_used() {
        let input = |p| AppError::input(p, vec![]);
        let errors = [
            input(InputProblem::InvalidInput),
            input(InputProblem::MalformedBody),
            input(InputProblem::BodyTooLarge),
            input(InputProblem::UnsupportedMediaType),
            AppError::Unauthenticated,
            AppError::NotFound,
            AppError::NoRoute,
            AppError::MethodNotAllowed,
            AppError::Rule(RuleError::MissingPrerequisite {
                step: Step::CustomRole,
                needs: Step::Subscription,
            }),
            AppError::Rule(RuleError::InputsChanged),
            AppError::Rule(RuleError::GraphPermissionMissing),
            AppError::IdTaken,
            AppError::Contended,
            AppError::SecretOverEvent,
            AppError::UnknownEvent,
            AppError::Store(StoreError::Unavailable("x".into())),
            AppError::Store(StoreError::Backend("x".into())),
        ];
        let codes: Vec<&str> = errors
            .iter()
            .map(|e| Problem::from_error(e, Step::Start).code)
            .collect();
        assert_eq!(codes, CODES);
        for e in &errors {
            let p = Problem::from_error(e, Step::Start);
            assert!((400..600).contains(&p.status));
            assert_eq!(p.type_uri, format!("urn:azure-connect:problem:{}", p.code));
        }
    }

    #[test]
    fn prerequisite_points_at_the_missing_step() {
        let p = Problem::from_error(
            &AppError::Rule(RuleError::MissingPrerequisite {
                step: Step::CustomRole,
                needs: Step::Subscription,
            }),
            Step::CustomRole,
        );
        assert_eq!(
            (p.status, p.code, p.step),
            (409, "step-prerequisite-missing", Step::Subscription)
        );
    }

    #[test]
    fn throttling_is_retryable_503() {
        let p = Problem::from_error(
            &AppError::Store(StoreError::Unavailable("throttled".into())),
            Step::Subscription,
        );
        assert_eq!((p.status, p.retryable), (503, true));
        let p = Problem::from_error(
            &AppError::Store(StoreError::Backend("denied".into())),
            Step::Subscription,
        );
        assert_eq!((p.status, p.retryable), (500, false));
    }

    #[test]
    fn serializes_as_rfc9457_with_extensions() {
        let p = Problem::from_error(
            &AppError::invalid(vec![FieldError::new("tenantId", "is empty")]),
            Step::AppRegistration,
        );
        let v = serde_json::to_value(&p).unwrap();
        for k in [
            "type",
            "title",
            "status",
            "detail",
            "step",
            "code",
            "errors",
            "retryable",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["errors"][0]["field"], "tenantId");
        assert_eq!(v["step"], "app-registration");
    }
}
