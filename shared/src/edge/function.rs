//! The Lambda functions of the wizard, the routes' owners, and the console events (EventBridge
//! `detail-type`) each takes.

pub const CONNECTION_STARTED: &str = "Connection Started";
pub const APP_REGISTRATION_SUBMITTED: &str = "App Registration Submitted";
pub const SUBSCRIPTION_SUBMITTED: &str = "Subscription Submitted";
pub const CUSTOM_ROLE_REQUESTED: &str = "Custom Role Requested";
pub const CONNECT_ACCOUNT_REQUESTED: &str = "Connect Account Requested";
pub const FEDERATED_CREDENTIAL_REQUESTED: &str = "Federated Credential Requested";
/// Never accepted: named so that it is refused with the right explanation.
pub const CLIENT_SECRET_SUBMITTED: &str = "Client Secret Submitted";

/// The Lambda functions of the wizard; each serves its own routes and console events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    Connections,
    AppRegistration,
    ClientSecret,
    Subscription,
    CustomRole,
    ConnectAccount,
    /// Spot's public credentials API (`/azure/setup/credentials`).
    SpotCredentials,
    /// Secretless connections: the credential type and the federated credential's values.
    FederatedCredential,
    /// Our OpenID issuer's discovery document and keys (unauthenticated).
    Issuer,
    /// The one-command setup: the command, its plan and its reports.
    Setup,
    /// The setup script itself: one static file, public, served by a function with no AWS
    /// permission at all.
    SetupScript,
}

impl Function {
    pub const ALL: [Function; 11] = [
        Self::Connections,
        Self::AppRegistration,
        Self::ClientSecret,
        Self::Subscription,
        Self::CustomRole,
        Self::ConnectAccount,
        Self::SpotCredentials,
        Self::FederatedCredential,
        Self::Issuer,
        Self::Setup,
        Self::SetupScript,
    ];

    /// The binary and SAM function name stem.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connections => "connections",
            Self::AppRegistration => "app-registration",
            Self::ClientSecret => "client-secret",
            Self::Subscription => "subscription",
            Self::CustomRole => "custom-role",
            Self::ConnectAccount => "connect-account",
            Self::SpotCredentials => "spot-credentials",
            Self::FederatedCredential => "federated-credential",
            Self::Issuer => "oidc",
            Self::Setup => "setup",
            Self::SetupScript => "setup-script",
        }
    }

    /// The console event (EventBridge `detail-type`) this function takes, if any. Client secrets
    /// are accepted over the authenticated API only.
    pub fn console_event(self) -> Option<&'static str> {
        match self {
            Self::Connections => Some(CONNECTION_STARTED),
            Self::AppRegistration => Some(APP_REGISTRATION_SUBMITTED),
            Self::ClientSecret => None,
            Self::Subscription => Some(SUBSCRIPTION_SUBMITTED),
            Self::CustomRole => Some(CUSTOM_ROLE_REQUESTED),
            Self::ConnectAccount => Some(CONNECT_ACCOUNT_REQUESTED),
            Self::SpotCredentials | Self::Issuer | Self::Setup | Self::SetupScript => None,
            Self::FederatedCredential => Some(FEDERATED_CREDENTIAL_REQUESTED),
        }
    }
}
