//! The edge: HTTP and event shapes in and out, turned into domain types and back. One mapping
//! from errors to problem documents ([`problem`]) serves HTTP responses and events alike.

pub mod console;
pub mod error;
pub mod expiry;
pub mod http;
pub mod input;
pub mod lambda;
pub mod problem;
pub mod request;
pub mod spot;
pub mod view;

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
}

impl Function {
    pub const ALL: [Function; 7] = [
        Self::Connections,
        Self::AppRegistration,
        Self::ClientSecret,
        Self::Subscription,
        Self::CustomRole,
        Self::ConnectAccount,
        Self::SpotCredentials,
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
        }
    }

    /// The console event (EventBridge `detail-type`) this function takes, if any. Client secrets
    /// are accepted over the authenticated API only.
    pub fn console_event(self) -> Option<&'static str> {
        match self {
            Self::Connections => Some(console::CONNECTION_STARTED),
            Self::AppRegistration => Some(console::APP_REGISTRATION_SUBMITTED),
            Self::ClientSecret => None,
            Self::Subscription => Some(console::SUBSCRIPTION_SUBMITTED),
            Self::CustomRole => Some(console::CUSTOM_ROLE_REQUESTED),
            Self::ConnectAccount => Some(console::CONNECT_ACCOUNT_REQUESTED),
            Self::SpotCredentials => None,
        }
    }
}
