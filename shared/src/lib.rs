//! azure-connect: the backend of the "Connect Azure Subscription" wizard.
//!
//! Layers, outside in (what each imports is held by `tests/tests/it/architecture.rs`):
//! - [`edge`]: HTTP API and console events ↔ domain types; the problem documents; the Lambda
//!   dispatcher ([`edge::lambda::Handler`]) and the router shared with the local server. Imports
//!   the application, the domain and [`config`] (for the expiry handler's settings).
//! - [`app`]: the use cases (start, read, delete, submit a step, export the role, connect, the
//!   expiry scan, Spot's credentials), compare-and-swap writes, typed outcome events, errors and
//!   what they mean. [`rotation`] (Secrets Manager's rotation steps) and [`validation`] (Connect
//!   Account's Azure checks) beside it. None of them imports the edge.
//! - [`domain`]: ids, the client secret, the connection state machine, the role policy, RBAC,
//!   diagnosis, expiry. Imports nothing of the crate but itself.
//! - adapters behind traits (each module's root is the port): [`store`] (Secrets Manager,
//!   embedded file), [`events`] (EventBridge, JSON lines, memory), [`queue`] (SQS, the local
//!   server's own, memory: a large group's survey in chunks), [`azure`] (token, ARM, Graph over
//!   reqwest), [`tokens`] (the console's user tokens, by its issuer's JWKS). They import the
//!   domain only.
//! - [`retry`] (the one backoff policy), [`config`] (the one typed configuration and the clients
//!   built from it, once per cold start), [`telemetry`] (JSON logs).

pub mod app;
pub mod azure;
pub mod config;
pub mod domain;
pub mod edge;
pub mod events;
pub mod issuer;
pub mod metrics;
pub mod queue;
pub mod retry;
pub mod rotation;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod validation;
