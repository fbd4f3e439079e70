//! Diagnosis: every way Connect Account can fail, traced to the wizard step the customer must go
//! back to, with a stable code and a message that says what is wrong and where in the Azure portal
//! to fix it. Pure: the Azure adapter reports plain facts ([`AzureFailure`]), this decides.

use std::time::Duration;

use super::connection::{CredentialType, Step};

/// What Azure answered, in plain terms (no HTTP or SDK types).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AzureFailure {
    /// The token endpoint refused the credentials (`error`, first of `error_codes`).
    #[error("the token endpoint refused the credentials ({error}, AADSTS{})", aadsts.map_or("?".to_owned(), |c| c.to_string()))]
    TokenRefused {
        status: u16,
        error: String,
        aadsts: Option<u32>,
    },
    /// Azure Resource Manager answered an error (`error.code`).
    #[error("Azure Resource Manager answered {status} {code}")]
    Arm { status: u16, code: String },
    /// Microsoft Graph answered an error (`error.code`, e.g. Authorization_RequestDenied).
    #[error("Microsoft Graph answered {status} {code}")]
    Graph { status: u16, code: String },
    /// 429, with how long Azure asked to wait.
    #[error("Azure is throttling")]
    Throttled { retry_after: Option<Duration> },
    /// 5xx, time-out, connection refused.
    #[error("Azure is unavailable: {0}")]
    Unavailable(String),
    /// An answer we cannot read.
    #[error("unexpected answer from Azure: {0}")]
    Protocol(String),
}

impl AzureFailure {
    /// Worth trying again within the budget.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Throttled { .. } | Self::Unavailable(_) => true,
            Self::Arm { status, .. } | Self::Graph { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Right after a role assignment Azure answers like this for minutes.
    pub fn is_propagation(&self) -> bool {
        matches!(self, Self::Arm { code, .. } if code == "AuthorizationFailed")
    }
}

pub use super::estate::SubscriptionState;

/// Why a validation did not connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationFailure {
    Azure(AzureFailure),
    SubscriptionState(SubscriptionState),
    /// The role is assigned but lacks these required actions.
    MissingActions(Vec<String>),
    /// AuthorizationFailed or no permissions until the budget ran out: the assignment may still be
    /// propagating.
    NotPropagated,
    /// The same at a management group (an estate): the group's role is not visible yet.
    GroupRoleNotPropagated,
    /// Azure stayed throttled or unavailable until the budget ran out.
    OutOfTime(AzureFailure),
    /// No management group with this name (ID) in the app's directory (an estate's scope).
    ManagementGroupNotFound,
    /// Our issuer could not sign an assertion (its key service refused, or was unavailable).
    Signing {
        retryable: bool,
    },
}

/// The verdict shown to the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub step: Step,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Trying again later can succeed without the customer changing anything.
    pub retryable: bool,
    /// Azure's side (503) rather than the customer's (422); `None` for our own bugs (500).
    pub kind: DiagnosisKind,
    pub missing_actions: Vec<String>,
}

/// Every code a diagnosis can carry (documented in `openapi.yaml`).
pub const CODES: &[&str] = &[
    "management-group-not-found",
    "client-secret-invalid",
    "client-secret-expired",
    "application-not-found",
    "application-disabled",
    "tenant-not-found",
    "tenant-invalid",
    "blocked-by-conditional-access",
    "wrong-cloud",
    "subscription-not-found",
    "subscription-invalid",
    "subscription-in-other-tenant",
    "subscription-disabled",
    "subscription-deleted",
    "missing-actions",
    "role-not-assigned",
    "azure-unavailable",
    "azure-error",
    "internal-error",
    "federated-credential-not-found",
    "federated-credential-issuer-mismatch",
    "federated-credential-audience-mismatch",
    "federated-credential-subject-mismatch",
    "assertion-time-invalid",
    "assertion-signature-invalid",
    "assertion-invalid",
    "issuer-unreachable",
    "signing-unavailable",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosisKind {
    Customer,
    AzureUnavailable,
    Ours,
}

const APP_BLADE: &str = "Azure portal > Microsoft Entra ID > App registrations > your app";
const SECRETS_BLADE: &str =
    "Azure portal > Microsoft Entra ID > App registrations > your app > Certificates & secrets";
const IAM_BLADE: &str = "Azure portal > Subscriptions > your subscription > Access control (IAM)";
const FEDERATED_BLADE: &str = "Azure portal > Microsoft Entra ID > App registrations > your app > Certificates & secrets > Federated credentials";

fn customer(step: Step, code: &'static str, title: &'static str, detail: impl Into<String>) -> Diagnosis {
    Diagnosis {
        step,
        code,
        title,
        detail: detail.into(),
        retryable: false,
        kind: DiagnosisKind::Customer,
        missing_actions: Vec::new(),
    }
}

impl Diagnosis {
    /// The diagnosis of a connection proving itself with `credential`: a federated connection's
    /// token refusals land on its federated-credential step.
    pub fn of_credential(failure: &ValidationFailure, credential: CredentialType) -> Self {
        match (credential, failure) {
            (
                CredentialType::Federated,
                ValidationFailure::Azure(AzureFailure::TokenRefused { aadsts, error, .. }),
            ) => Self::of_federated_token(*aadsts, error),
            _ => Self::of(failure),
        }
    }

    pub fn of(failure: &ValidationFailure) -> Self {
        match failure {
            ValidationFailure::Azure(f) => Self::of_azure(f),
            ValidationFailure::SubscriptionState(state) => customer(
                Step::Subscription,
                if *state == SubscriptionState::Deleted {
                    "subscription-deleted"
                } else {
                    "subscription-disabled"
                },
                "Subscription not active",
                format!(
                    "The subscription is {state}: Spot can only manage an active subscription. Reactivate it (Azure portal > Subscriptions) or enter another subscription ID."
                ),
            ),
            ValidationFailure::MissingActions(actions) => Diagnosis {
                missing_actions: actions.clone(),
                ..customer(
                    Step::CustomRole,
                    "missing-actions",
                    "The role lacks required permissions",
                    format!(
                        "The roles assigned to the app on this subscription do not grant {} of the actions Spot needs (see missingActions). Export the JSON policy again and update the custom role ({IAM_BLADE} > Roles), then connect again.",
                        actions.len()
                    ),
                )
            },
            ValidationFailure::ManagementGroupNotFound => customer(
                Step::Subscription,
                "management-group-not-found",
                "Management group not found",
                "No management group with this ID exists in the app's directory. Enter the group's ID, not its display name (Azure portal > Management groups > the group > ID).",
            ),
            ValidationFailure::GroupRoleNotPropagated => Diagnosis {
                retryable: true,
                ..customer(
                    Step::RoleAssignment,
                    "role-not-assigned",
                    "No role assignment visible yet",
                    "Azure does not show a role for the app on the management group. Assign the custom role to the app at the group (Azure portal > Management groups > the group > Access control (IAM) > Role assignments > Add). If you just did, Azure can take up to 10 minutes to propagate it: connect again in a few minutes.",
                )
            },
            ValidationFailure::NotPropagated => Diagnosis {
                retryable: true,
                ..customer(
                    Step::RoleAssignment,
                    "role-not-assigned",
                    "No role assignment visible yet",
                    format!(
                        "Azure does not show a role for the app on this subscription. Assign the custom role to the app ({IAM_BLADE} > Role assignments > Add). If you just did, Azure can take up to 10 minutes to propagate it: connect again in a few minutes."
                    ),
                )
            },
            ValidationFailure::Signing { retryable } => Diagnosis {
                retryable: *retryable,
                kind: if *retryable {
                    DiagnosisKind::AzureUnavailable
                } else {
                    DiagnosisKind::Ours
                },
                ..customer(
                    Step::FederatedCredential,
                    "signing-unavailable",
                    "Could not sign in to Azure",
                    "Our issuer could not sign the assertion that proves the app's identity. Nothing you entered is lost; this is on our side. Connect again shortly.",
                )
            },
            ValidationFailure::OutOfTime(f) => Diagnosis {
                retryable: true,
                kind: DiagnosisKind::AzureUnavailable,
                ..customer(
                    Step::RoleAssignment,
                    "azure-unavailable",
                    "Azure is unavailable",
                    format!(
                        "Azure did not answer in time ({f}). Nothing you entered is lost; connect again shortly."
                    ),
                )
            },
        }
    }

    fn of_azure(f: &AzureFailure) -> Self {
        match f {
            AzureFailure::TokenRefused { aadsts, error, .. } => Self::of_token(*aadsts, error),
            AzureFailure::Arm { code, status } | AzureFailure::Graph { code, status } => {
                Self::of_arm(code, *status)
            }
            AzureFailure::Throttled { .. } | AzureFailure::Unavailable(_) => {
                Self::of(&ValidationFailure::OutOfTime(f.clone()))
            }
            AzureFailure::Protocol(_) => Diagnosis {
                kind: DiagnosisKind::AzureUnavailable,
                retryable: true,
                ..customer(
                    Step::RoleAssignment,
                    "azure-unavailable",
                    "Unexpected answer from Azure",
                    format!("{f}. Connect again shortly."),
                )
            },
        }
    }

    /// The AADSTS codes of the reference table, each to its step.
    fn of_token(aadsts: Option<u32>, error: &str) -> Self {
        match aadsts {
            Some(7000215) => customer(
                Step::ClientSecret,
                "client-secret-invalid",
                "Client secret not accepted",
                format!(
                    "Azure rejected the client secret (AADSTS7000215). Paste the secret's Value, not its Secret ID; the Value is shown only right after you create a secret ({SECRETS_BLADE})."
                ),
            ),
            Some(7000222) => customer(
                Step::ClientSecret,
                "client-secret-expired",
                "Client secret expired",
                format!(
                    "The app's client secret has expired (AADSTS7000222). Create a new secret ({SECRETS_BLADE}) and enter its Value."
                ),
            ),
            Some(700016) => customer(
                Step::AppRegistration,
                "application-not-found",
                "Application not found in this directory",
                format!(
                    "No application with this Application (client) ID exists in this directory (AADSTS700016). Copy both the Application (client) ID and the Directory (tenant) ID from the app's Overview page ({APP_BLADE})."
                ),
            ),
            Some(7000112) => customer(
                Step::AppRegistration,
                "application-disabled",
                "Application disabled",
                "The application is disabled (AADSTS7000112). Enable it, or its service principal (Microsoft Entra ID > Enterprise applications > your app > Properties > Enabled for users to sign in).",
            ),
            Some(90002) => customer(
                Step::AppRegistration,
                "tenant-not-found",
                "Directory not found",
                "No directory (tenant) with this ID exists in this Azure cloud (AADSTS90002). Copy the Directory (tenant) ID from the app's Overview page.",
            ),
            Some(900023) => customer(
                Step::AppRegistration,
                "tenant-invalid",
                "Directory ID not valid",
                "The Directory (tenant) ID is neither a GUID nor a verified domain (AADSTS900023). Copy it from the app's Overview page.",
            ),
            Some(53003) => customer(
                Step::AppRegistration,
                "blocked-by-conditional-access",
                "Blocked by Conditional Access",
                "A Conditional Access policy of your directory blocks this app from signing in (AADSTS53003). Ask your Entra ID administrator to exclude the app (workload identity) from the policy.",
            ),
            Some(70011) | Some(500011) => customer(
                Step::AppRegistration,
                "wrong-cloud",
                "Resource not available in this directory",
                "Azure Resource Manager is not available to this directory (AADSTS70011/500011): the tenant may belong to another Azure cloud (US Government or China).",
            ),
            Some(7000218) => Diagnosis {
                kind: DiagnosisKind::Ours,
                ..customer(
                    Step::ClientSecret,
                    "internal-error",
                    "Internal error",
                    "We sent an incomplete token request (AADSTS7000218). This is our fault; it has been logged.",
                )
            },
            // Not in the table: decide by the OAuth error.
            _ => match error {
                "invalid_client" => customer(
                    Step::ClientSecret,
                    "client-secret-invalid",
                    "Client secret not accepted",
                    format!(
                        "Azure rejected the client credentials. Check the secret's Value ({SECRETS_BLADE})."
                    ),
                ),
                "invalid_tenant" | "invalid_request" => customer(
                    Step::AppRegistration,
                    "tenant-not-found",
                    "Directory not found",
                    "Azure did not accept the Directory (tenant) ID. Copy it from the app's Overview page.",
                ),
                _ => customer(
                    Step::AppRegistration,
                    "application-not-found",
                    "Application not accepted",
                    format!(
                        "Azure refused to sign the app in ({error}). Check the Application (client) ID and Directory (tenant) ID ({APP_BLADE})."
                    ),
                ),
            },
        }
    }

    /// Entra's answers to a token request made with our assertion.
    fn of_federated_token(aadsts: Option<u32>, error: &str) -> Self {
        let ours = |code, title, detail: &str, retryable| Diagnosis {
            kind: DiagnosisKind::Ours,
            retryable,
            ..customer(Step::FederatedCredential, code, title, detail.to_owned())
        };
        let mismatch = |code, what: &str| {
            customer(
                Step::FederatedCredential,
                code,
                "Federated credential does not match",
                format!(
                    "The app has a federated credential, but its {what} is not the one of this connection. Edit it ({FEDERATED_BLADE}) so that issuer, subject and audience are exactly the values of this step (they are case-sensitive), then connect again."
                ),
            )
        };
        match aadsts {
            Some(70021) => Diagnosis {
                retryable: true,
                ..customer(
                    Step::FederatedCredential,
                    "federated-credential-not-found",
                    "No federated credential for this connection",
                    format!(
                        "Azure found no federated credential on the app for our issuer and this connection's subject (AADSTS70021). Add one ({FEDERATED_BLADE} > Add credential > Other issuer) with exactly the values of this step. If you just added it, Azure can take a minute to use it: connect again shortly."
                    ),
                )
            },
            Some(700211) => mismatch("federated-credential-issuer-mismatch", "issuer (AADSTS700211)"),
            Some(700212) => mismatch(
                "federated-credential-audience-mismatch",
                "audience (AADSTS700212)",
            ),
            Some(700213) => mismatch(
                "federated-credential-subject-mismatch",
                "subject identifier (AADSTS700213)",
            ),
            Some(700024) => ours(
                "assertion-time-invalid",
                "Assertion outside its time range",
                "Azure found our assertion outside its valid time range (AADSTS700024): our clock or its lifetime is off. This is on our side; connect again shortly.",
                true,
            ),
            Some(700027) => ours(
                "assertion-signature-invalid",
                "Assertion signature not accepted",
                "Azure could not verify our assertion's signature with our published keys (AADSTS700027), e.g. right after a key change. This is on our side; connect again in a few minutes.",
                true,
            ),
            Some(50027) => ours(
                "assertion-invalid",
                "Assertion not accepted",
                "Azure found our assertion malformed (AADSTS50027). This is our fault; it has been logged.",
                false,
            ),
            Some(501661) | Some(50166) => ours(
                "issuer-unreachable",
                "Azure could not reach our issuer",
                "Azure could not fetch our OpenID configuration or keys (AADSTS501661). This is on our side; connect again in a few minutes.",
                true,
            ),
            Some(700016) | Some(7000112) | Some(90002) | Some(900023) | Some(53003) | Some(70011)
            | Some(500011) => Self::of_token(aadsts, error),
            _ => customer(
                Step::FederatedCredential,
                "federated-credential-not-found",
                "Federated credential not accepted",
                format!(
                    "Azure refused our assertion ({error}). Check the app's federated credential ({FEDERATED_BLADE}): issuer, subject and audience must be exactly the values of this step."
                ),
            ),
        }
    }

    fn of_arm(code: &str, status: u16) -> Self {
        match code {
            "SubscriptionNotFound" => customer(
                Step::Subscription,
                "subscription-not-found",
                "Subscription not found",
                "No subscription with this ID is visible to the app. Check the Subscription ID (Azure portal > Subscriptions), and that it belongs to the same directory as the app.",
            ),
            "InvalidSubscriptionId" => customer(
                Step::Subscription,
                "subscription-invalid",
                "Subscription ID not valid",
                "Azure does not accept this Subscription ID. Copy it from Azure portal > Subscriptions.",
            ),
            "InvalidAuthenticationTokenTenant" => customer(
                Step::Subscription,
                "subscription-in-other-tenant",
                "Subscription in another directory",
                "The subscription belongs to a different directory (tenant) than the app registration. Enter a subscription of the app's directory, or register the app in the subscription's directory.",
            ),
            "AuthorizationFailed" => Self::of(&ValidationFailure::NotPropagated),
            _ if status >= 500 || status == 429 => {
                Self::of(&ValidationFailure::OutOfTime(AzureFailure::Arm {
                    status,
                    code: code.to_owned(),
                }))
            }
            _ => Diagnosis {
                kind: DiagnosisKind::AzureUnavailable,
                retryable: true,
                ..customer(
                    Step::RoleAssignment,
                    "azure-error",
                    "Azure refused the check",
                    format!(
                        "Azure Resource Manager answered {status} {code}. Connect again shortly; if it persists, contact support."
                    ),
                )
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(aadsts: u32, error: &str) -> Diagnosis {
        Diagnosis::of(&ValidationFailure::Azure(AzureFailure::TokenRefused {
            status: 400,
            error: error.into(),
            aadsts: Some(aadsts),
        }))
    }

    fn arm(status: u16, code: &str) -> Diagnosis {
        Diagnosis::of(&ValidationFailure::Azure(AzureFailure::Arm {
            status,
            code: code.into(),
        }))
    }

    #[test]
    fn every_aadsts_of_the_reference_lands_on_its_step() {
        let table = [
            (
                7000215,
                "invalid_client",
                Step::ClientSecret,
                "client-secret-invalid",
            ),
            (
                7000222,
                "invalid_client",
                Step::ClientSecret,
                "client-secret-expired",
            ),
            (
                700016,
                "unauthorized_client",
                Step::AppRegistration,
                "application-not-found",
            ),
            (
                7000112,
                "unauthorized_client",
                Step::AppRegistration,
                "application-disabled",
            ),
            (90002, "invalid_tenant", Step::AppRegistration, "tenant-not-found"),
            (900023, "invalid_request", Step::AppRegistration, "tenant-invalid"),
            (
                53003,
                "access_denied",
                Step::AppRegistration,
                "blocked-by-conditional-access",
            ),
            (70011, "invalid_scope", Step::AppRegistration, "wrong-cloud"),
            (500011, "invalid_resource", Step::AppRegistration, "wrong-cloud"),
            (7000218, "invalid_client", Step::ClientSecret, "internal-error"),
        ];
        for (code, error, step, expected) in table {
            let d = token(code, error);
            assert_eq!((d.step, d.code), (step, expected), "AADSTS{code}");
            assert!(!d.retryable, "AADSTS{code}");
        }
        assert_eq!(token(7000218, "invalid_client").kind, DiagnosisKind::Ours);
        assert!(
            token(7000215, "invalid_client")
                .detail
                .contains("Value, not its Secret ID")
        );
    }

    #[test]
    fn every_arm_error_of_the_reference_lands_on_its_step() {
        assert_eq!(arm(404, "SubscriptionNotFound").step, Step::Subscription);
        assert_eq!(arm(400, "InvalidSubscriptionId").code, "subscription-invalid");
        assert_eq!(
            arm(401, "InvalidAuthenticationTokenTenant").code,
            "subscription-in-other-tenant"
        );
        let d = arm(403, "AuthorizationFailed");
        assert_eq!(
            (d.step, d.code, d.retryable),
            (Step::RoleAssignment, "role-not-assigned", true)
        );
        assert!(d.detail.contains("10 minutes"));
        let d = arm(429, "SubscriptionRequestsThrottled");
        assert_eq!((d.kind, d.retryable), (DiagnosisKind::AzureUnavailable, true));
        assert_eq!(
            arm(503, "ServiceUnavailable").kind,
            DiagnosisKind::AzureUnavailable
        );
    }

    fn federated(aadsts: u32) -> Diagnosis {
        Diagnosis::of_credential(
            &ValidationFailure::Azure(AzureFailure::TokenRefused {
                status: 400,
                error: "invalid_client".into(),
                aadsts: Some(aadsts),
            }),
            CredentialType::Federated,
        )
    }

    #[test]
    fn every_federated_refusal_lands_on_the_federated_step_or_the_app() {
        let table = [
            (
                70021,
                Step::FederatedCredential,
                "federated-credential-not-found",
                DiagnosisKind::Customer,
                true,
            ),
            (
                700211,
                Step::FederatedCredential,
                "federated-credential-issuer-mismatch",
                DiagnosisKind::Customer,
                false,
            ),
            (
                700212,
                Step::FederatedCredential,
                "federated-credential-audience-mismatch",
                DiagnosisKind::Customer,
                false,
            ),
            (
                700213,
                Step::FederatedCredential,
                "federated-credential-subject-mismatch",
                DiagnosisKind::Customer,
                false,
            ),
            (
                700024,
                Step::FederatedCredential,
                "assertion-time-invalid",
                DiagnosisKind::Ours,
                true,
            ),
            (
                700027,
                Step::FederatedCredential,
                "assertion-signature-invalid",
                DiagnosisKind::Ours,
                true,
            ),
            (
                50027,
                Step::FederatedCredential,
                "assertion-invalid",
                DiagnosisKind::Ours,
                false,
            ),
            (
                501661,
                Step::FederatedCredential,
                "issuer-unreachable",
                DiagnosisKind::Ours,
                true,
            ),
            (
                700016,
                Step::AppRegistration,
                "application-not-found",
                DiagnosisKind::Customer,
                false,
            ),
            (
                7000112,
                Step::AppRegistration,
                "application-disabled",
                DiagnosisKind::Customer,
                false,
            ),
            (
                90002,
                Step::AppRegistration,
                "tenant-not-found",
                DiagnosisKind::Customer,
                false,
            ),
        ];
        for (aadsts, step, code, kind, retryable) in table {
            let d = federated(aadsts);
            assert_eq!(
                (d.step, d.code, d.kind, d.retryable),
                (step, code, kind, retryable),
                "AADSTS{aadsts}"
            );
            assert!(
                !d.detail.contains("client secret"),
                "AADSTS{aadsts}: a federated connection has no client secret"
            );
        }
        // The same refusal of a secret connection stays on the secret's step.
        let d = Diagnosis::of_credential(
            &ValidationFailure::Azure(AzureFailure::TokenRefused {
                status: 401,
                error: "invalid_client".into(),
                aadsts: None,
            }),
            CredentialType::Secret,
        );
        assert_eq!(d.step, Step::ClientSecret);
    }

    #[test]
    fn every_code_is_listed() {
        let mut seen = Vec::new();
        for c in [
            7000215, 7000222, 700016, 7000112, 90002, 900023, 53003, 70011, 7000218, 1,
        ] {
            for e in ["invalid_client", "invalid_tenant", "other"] {
                seen.push(token(c, e).code);
            }
        }
        for (s, c) in [
            (404, "SubscriptionNotFound"),
            (400, "InvalidSubscriptionId"),
            (401, "InvalidAuthenticationTokenTenant"),
            (403, "AuthorizationFailed"),
            (503, "X"),
            (400, "Odd"),
        ] {
            seen.push(arm(s, c).code);
        }
        for f in [
            ValidationFailure::SubscriptionState(SubscriptionState::Disabled),
            ValidationFailure::SubscriptionState(SubscriptionState::Deleted),
            ValidationFailure::MissingActions(vec![]),
            ValidationFailure::NotPropagated,
            ValidationFailure::GroupRoleNotPropagated,
            ValidationFailure::ManagementGroupNotFound,
            ValidationFailure::Azure(AzureFailure::Protocol("x".into())),
        ] {
            seen.push(Diagnosis::of(&f).code);
        }
        for c in [70021, 700211, 700212, 700213, 700024, 700027, 50027, 501661, 1] {
            seen.push(federated(c).code);
        }
        for retryable in [true, false] {
            seen.push(Diagnosis::of(&ValidationFailure::Signing { retryable }).code);
        }
        for code in &seen {
            assert!(CODES.contains(code), "{code} not listed");
        }
        for code in CODES {
            assert!(seen.contains(code), "{code} never produced");
        }
    }

    #[test]
    fn states_and_permissions() {
        let d = Diagnosis::of(&ValidationFailure::SubscriptionState(SubscriptionState::parse(
            "Disabled",
        )));
        assert_eq!((d.step, d.code), (Step::Subscription, "subscription-disabled"));
        let d = Diagnosis::of(&ValidationFailure::MissingActions(vec![
            "Microsoft.Compute/disks/write".into(),
        ]));
        assert_eq!((d.step, d.code), (Step::CustomRole, "missing-actions"));
        assert_eq!(d.missing_actions, ["Microsoft.Compute/disks/write"]);
        let d = Diagnosis::of(&ValidationFailure::OutOfTime(AzureFailure::Unavailable(
            "timed out".into(),
        )));
        assert_eq!((d.kind, d.retryable), (DiagnosisKind::AzureUnavailable, true));
    }
}
