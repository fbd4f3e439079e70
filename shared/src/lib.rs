//! azure-connect: the backend of the "Connect Azure Subscription" wizard.
//!
//! Layers, outside in:
//! - [`edge`]: HTTP API and console events ↔ domain types; one problem mapping; the Lambda
//!   dispatcher ([`edge::lambda::Handler`]) and the router shared with the local server.
//! - [`app`]: the use cases (start, read, delete, submit a step, export the role), compare-and-swap
//!   writes, outcome events.
//! - [`domain`]: ids, the client secret, the connection state machine, the role policy. No AWS,
//!   HTTP or Azure types.
//! - adapters behind traits: [`store`] (Secrets Manager, embedded file) and [`events`]
//!   (EventBridge, JSON lines, memory).

pub mod app;
pub mod azure;
pub mod config;
pub mod domain;
pub mod edge;
pub mod events;
pub mod retry;
pub mod rotation;
pub mod store;
pub mod telemetry;
pub mod validation;
