//! The edge: HTTP and event shapes in and out, turned into domain types and back. One mapping
//! from errors to problem documents ([`problem`]) serves HTTP responses and events alike.

pub mod console;
pub mod error;
pub mod estate;
pub mod estate_view;
pub mod expiry;
pub mod function;
pub mod health;
pub mod http;
pub mod input;
pub mod lambda;
pub mod privilege_view;
pub mod problem;
pub mod queue;
pub mod request;
pub mod respond;
pub mod schedule;
pub mod setup;
pub mod spot;
pub mod view;

pub use function::Function;
