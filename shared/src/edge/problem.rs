//! RFC 9457 problem documents: a [`Rejection`] (what the error means, decided by the application
//! or the edge) with the transport added: the HTTP status and the problem type URI.

use axum::http::StatusCode;
use serde::Serialize;

use super::error::{EdgeError, InputProblem};
use crate::app::{ErrorKind, Rejectable, Rejection};
use crate::domain::Step;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// Every `code` a problem can carry (documented in `openapi.yaml`; a test holds them together).
pub fn codes() -> impl Iterator<Item = &'static str> {
    super::error::CODES
        .iter()
        .chain(crate::app::error::CODES)
        .copied()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub status: u16,
    #[serde(flatten)]
    pub rejection: Rejection,
}

impl Problem {
    /// `step` is the step the request was for; some errors send the customer elsewhere.
    pub fn of(err: &EdgeError, step: Step) -> Self {
        let rejection = err.rejection(step);
        let status = match err {
            EdgeError::Input {
                problem: InputProblem::BodyTooLarge,
                ..
            } => StatusCode::PAYLOAD_TOO_LARGE,
            EdgeError::Input {
                problem: InputProblem::UnsupportedMediaType,
                ..
            } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            EdgeError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            _ => status_of(rejection.kind),
        };
        Self {
            type_uri: type_uri(rejection.code),
            status: status.as_u16(),
            rejection,
        }
    }

    /// A problem outside the wizard's steps (e.g. `POST /health-checks`): no step to go back to.
    pub fn stepless(err: &EdgeError) -> Self {
        let mut p = Self::of(err, Step::Start);
        p.rejection.step = None;
        p
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// The status of each kind of failure.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::TooMany => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub fn type_uri(code: &str) -> String {
    format!("urn:azure-connect:problem:{code}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{AppError, FieldError};
    use crate::domain::RuleError;
    use crate::domain::estate::EstateError;
    use crate::store::StoreError;

    fn every_error() -> Vec<EdgeError> {
        let input = |p| EdgeError::input(p, vec![]);
        vec![
            input(InputProblem::InvalidInput),
            input(InputProblem::Refused),
            input(InputProblem::MalformedBody),
            input(InputProblem::BodyTooLarge),
            input(InputProblem::UnsupportedMediaType),
            EdgeError::Unauthenticated,
            EdgeError::NoRoute,
            EdgeError::MethodNotAllowed,
            EdgeError::SecretOverEvent,
            EdgeError::UnknownEvent,
            EdgeError::ConsoleRefused("a test"),
            EdgeError::TokenKeysUnavailable,
            AppError::NotFound.into(),
            AppError::Rule(RuleError::MissingPrerequisite {
                step: Step::CustomRole,
                needs: Step::Subscription,
            })
            .into(),
            AppError::Rule(RuleError::InputsChanged).into(),
            AppError::Rule(RuleError::GraphPermissionMissing).into(),
            AppError::Rule(RuleError::WrongCredentialType {
                step: Step::ClientSecret,
                credential: crate::domain::CredentialType::Federated,
            })
            .into(),
            AppError::IdTaken.into(),
            AppError::KeyReused.into(),
            AppError::Contended.into(),
            AppError::Store(StoreError::Unavailable("x".into())).into(),
            AppError::QuotaExceeded {
                quota: crate::app::Quota::ValidationsPerMinute(30),
                retry_after: Some(std::time::Duration::from_secs(20)),
            }
            .into(),
            AppError::SetupToken(crate::domain::setup::SetupTokenError::Unknown).into(),
            AppError::Rule(RuleError::SetupConflict(
                crate::domain::setup::SetupConflict::new("clientId", "a", "b"),
            ))
            .into(),
            AppError::Rule(RuleError::NotAnEstate).into(),
            AppError::Rule(RuleError::Estate(EstateError::UnknownSubscription)).into(),
            AppError::Rule(RuleError::Estate(EstateError::SubscriptionLost)).into(),
            AppError::Rule(RuleError::Estate(EstateError::SubscriptionTaken)).into(),
            AppError::Rule(RuleError::Estate(EstateError::AccountTaken)).into(),
            AppError::Rule(RuleError::Estate(EstateError::GroupTaken)).into(),
            AppError::Rule(RuleError::Estate(EstateError::HasLinks { linked: 2 })).into(),
            AppError::Rule(RuleError::EstateTooLarge(5000)).into(),
            AppError::Rule(RuleError::Survey(crate::domain::survey::SurveyError::Superseded)).into(),
            AppError::Store(StoreError::Backend("x".into())).into(),
        ]
    }

    #[test]
    fn every_error_maps_to_a_listed_code_and_every_code_is_used() {
        let errors = every_error();
        let used: Vec<&str> = errors
            .iter()
            .map(|e| Problem::of(e, Step::Start).rejection.code)
            .collect();
        assert_eq!(used, codes().collect::<Vec<_>>());
        for e in &errors {
            let p = Problem::of(e, Step::Start);
            assert!((400..600).contains(&p.status));
            assert_eq!(
                p.type_uri,
                format!("urn:azure-connect:problem:{}", p.rejection.code)
            );
        }
    }

    #[test]
    fn statuses_of_the_edge_own_errors() {
        let status = |e: EdgeError| Problem::of(&e, Step::Start).status;
        assert_eq!(status(EdgeError::input(InputProblem::BodyTooLarge, vec![])), 413);
        assert_eq!(
            status(EdgeError::input(InputProblem::UnsupportedMediaType, vec![])),
            415
        );
        assert_eq!(status(EdgeError::MethodNotAllowed), 405);
        assert_eq!(status(EdgeError::NoRoute), 404);
        assert_eq!(status(EdgeError::Unauthenticated), 401);
        assert_eq!(status(EdgeError::invalid(vec![])), 400);
    }

    #[test]
    fn prerequisite_points_at_the_missing_step() {
        let p = Problem::of(
            &AppError::Rule(RuleError::MissingPrerequisite {
                step: Step::CustomRole,
                needs: Step::Subscription,
            })
            .into(),
            Step::CustomRole,
        );
        assert_eq!(
            (
                p.status,
                p.rejection.code,
                p.rejection.step.unwrap_or(Step::Start)
            ),
            (409, "step-prerequisite-missing", Step::Subscription)
        );
    }

    #[test]
    fn throttling_is_retryable_503() {
        let p = Problem::of(
            &AppError::Store(StoreError::Unavailable("throttled".into())).into(),
            Step::Subscription,
        );
        assert_eq!((p.status, p.rejection.retryable), (503, true));
        let p = Problem::of(
            &AppError::Store(StoreError::Backend("denied".into())).into(),
            Step::Subscription,
        );
        assert_eq!((p.status, p.rejection.retryable), (500, false));
    }

    #[test]
    fn serializes_as_rfc9457_with_extensions() {
        let p = Problem::of(
            &EdgeError::invalid(vec![FieldError::new("tenantId", "is empty")]),
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
