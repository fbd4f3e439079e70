//! The use cases of the wizard, shared by every trigger: HTTP API, console events, the schedule,
//! the local server. Nothing in here knows HTTP or EventBridge shapes: operations come in parsed,
//! outcomes go out as [`Outcome`] values and typed [`OutcomeEvent`]s, errors as [`AppError`] with
//! their meaning ([`Rejection`]).
//!
//! - [`operations`]: the [`App`], one [`Operation`] run and its outcome published.
//! - [`write`]: read, apply a domain command, compare-and-swap; on a lost race again.
//! - [`connect`]: Connect Account and the early checks against Azure.
//! - [`expiry`]: the daily scan (reminders, expiry, starting rotations).
//! - [`credentials`]: Spot's credentials API on the same use cases.
//! - [`survey`]: a large management group's survey in the background (chunks on a queue).
//! - [`events`]: every outcome event; [`error`]: every error and what it means.

mod abandon;
mod admission;
mod connect;
pub mod credentials;
pub mod error;
pub mod estate;
pub mod events;
pub mod expiry;
pub mod federated;
pub mod health;
mod operations;
mod organization;
mod privilege;
pub mod quota;
pub mod request;
pub mod setup;
pub mod survey;
mod ties;
mod write;

pub use crate::issuer::FederatedCredentialValues;
pub use credentials::Credentials;
pub use error::{AppError, ErrorKind, FieldError, Quota, Rejectable, Rejection};
pub use events::OutcomeEvent;
pub use expiry::ScanReport;
pub use health::{HealthReport, HealthSchedule, Window};
pub use operations::{App, Operation, Outcome, publish};
pub use request::{RequestMeta, Trigger, derive_connection_id};
pub use write::CAS_ATTEMPTS;
