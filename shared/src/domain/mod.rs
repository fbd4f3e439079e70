//! The domain: no AWS, HTTP or Azure types in here.

pub mod connection;
pub mod diagnosis;
pub mod document;
pub mod estate;
pub mod expiry;
pub mod health;
pub mod ids;
pub mod organization;
pub mod privilege;
pub mod rbac;
pub mod role;
pub mod secret;
pub mod setup;
pub mod survey;
pub mod ties;

pub use connection::{
    Command, Connection, CredentialType, FailureRecord, Proof, RuleError, Status, Step, ValidationInputs,
    ValidationRecord,
};
pub use estate::{Estate, Scope};
pub use ids::{
    AccountId, ClientId, ConnectionId, IdError, ManagementGroupId, OrgId, SubscriptionId, TenantId,
};
pub use role::{CustomRole, RoleFormat};
pub use secret::{ClientSecret, ExpiryError, SecretError, SecretExpiry, SecretHint};
