//! Errors of requests that never became an operation (no route, a body that does not parse, no
//! organization, a console event this function does not take), and the use cases' own errors
//! passed through: what the edge answers and announces.

use crate::app::{AppError, ErrorKind, FieldError, Rejectable, Rejection};
use crate::domain::Step;

/// What was wrong with the request as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputProblem {
    /// Fields parsed as JSON but not as domain values.
    InvalidInput,
    /// Every field has the documented form, but some values are refused (in the past, a Secret ID).
    Refused,
    /// Not JSON, wrong types, unknown or missing fields.
    MalformedBody,
    BodyTooLarge,
    UnsupportedMediaType,
}

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("the request is not valid ({problem:?})")]
    Input {
        problem: InputProblem,
        errors: Vec<FieldError>,
    },
    #[error("the request carries no organization")]
    Unauthenticated,
    #[error("no such route")]
    NoRoute,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("client secrets are accepted over the authenticated API only")]
    SecretOverEvent,
    #[error("this function does not handle console events of this type")]
    UnknownEvent,
    /// A console event that does not prove it comes from the console for its organization.
    #[error("the console event is refused: {0}")]
    ConsoleRefused(&'static str),
    /// The console's token could not be checked now (its issuer's keys out of reach).
    #[error("the console's token cannot be checked now")]
    TokenKeysUnavailable,
    #[error(transparent)]
    App(#[from] AppError),
}

/// Every code an [`EdgeError`] of its own can carry.
pub const CODES: &[&str] = &[
    "invalid-input",
    "input-refused",
    "malformed-body",
    "body-too-large",
    "unsupported-media-type",
    "unauthenticated",
    "route-not-found",
    "method-not-allowed",
    "secret-not-accepted-over-events",
    "unknown-console-event",
    "console-event-refused",
    "token-keys-unavailable",
];

impl EdgeError {
    pub fn input(problem: InputProblem, errors: Vec<FieldError>) -> Self {
        Self::Input { problem, errors }
    }

    /// Fields that did not parse into domain values: 400, or 422 when each of them has the
    /// documented form and was refused for what it says.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let refused = !errors.is_empty() && errors.iter().all(|e| e.refused);
        let problem = if refused {
            InputProblem::Refused
        } else {
            InputProblem::InvalidInput
        };
        Self::input(problem, errors)
    }

    /// Only a use case's failure can go away by itself (throttling, a lost race).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::App(e) if e.is_retryable()) || matches!(self, Self::TokenKeysUnavailable)
    }
}

impl Rejectable for EdgeError {
    fn rejection(&self, step: Step) -> Rejection {
        let invalid = ErrorKind::Invalid;
        match self {
            Self::Input { problem, errors } => {
                let kind = match problem {
                    InputProblem::Refused => ErrorKind::Unprocessable,
                    _ => invalid,
                };
                let (code, title, detail) = match problem {
                    InputProblem::Refused => (
                        "input-refused",
                        "Input refused",
                        "Every field has the right form, but some values cannot be accepted; see errors.",
                    ),
                    InputProblem::InvalidInput => (
                        "invalid-input",
                        "Invalid input",
                        "Some fields are not valid; see errors.",
                    ),
                    InputProblem::MalformedBody => (
                        "malformed-body",
                        "Malformed request body",
                        "The body is not the JSON object this step takes; see errors.",
                    ),
                    InputProblem::BodyTooLarge => (
                        "body-too-large",
                        "Request body too large",
                        "The body is larger than 16 KiB.",
                    ),
                    InputProblem::UnsupportedMediaType => (
                        "unsupported-media-type",
                        "Unsupported media type",
                        "Send the body as application/json.",
                    ),
                };
                Rejection::new(kind, code, title, detail, step).with_errors(errors.clone())
            }
            Self::Unauthenticated => Rejection::new(
                ErrorKind::Unauthenticated,
                "unauthenticated",
                "Unauthenticated",
                "The request does not say which organization it is for.",
                step,
            )
            .without_step(),
            Self::NoRoute => Rejection::new(
                ErrorKind::NotFound,
                "route-not-found",
                "Not found",
                "There is no such route.",
                step,
            )
            .without_step(),
            Self::MethodNotAllowed => Rejection::new(
                invalid,
                "method-not-allowed",
                "Method not allowed",
                "This route does not take this method.",
                step,
            )
            .without_step(),
            Self::SecretOverEvent => Rejection::new(
                invalid,
                "secret-not-accepted-over-events",
                "Client secret refused",
                "Client secrets are accepted over the authenticated API only; the secret was neither stored nor logged. Submit it in the wizard.",
                Step::ClientSecret,
            ),
            Self::UnknownEvent => Rejection::new(
                invalid,
                "unknown-console-event",
                "Unknown console event",
                "This function does not take console events of this detail-type.",
                step,
            ),
            Self::ConsoleRefused(why) => Rejection::new(
                ErrorKind::Unauthenticated,
                "console-event-refused",
                "Console event refused",
                format!("The event does not prove it comes from the console for its organization: {why}."),
                step,
            ),
            Self::TokenKeysUnavailable => Rejection::new(
                ErrorKind::Unavailable,
                "token-keys-unavailable",
                "Temporarily unavailable",
                "The console's token could not be checked now (its issuer's keys are out of reach); the event is delivered again.",
                step,
            )
            .retryable(),
            Self::App(e) => e.rejection(step),
        }
    }
}
