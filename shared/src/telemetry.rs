//! Logging: JSON lines. In Lambda the runtime's subscriber honours `AWS_LAMBDA_LOG_FORMAT=JSON`
//! and `AWS_LAMBDA_LOG_LEVEL`; locally `RUST_LOG` filters (default `info`).

use tracing_subscriber::EnvFilter;

/// For Lambda functions.
pub fn init_lambda() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// JSON lines on stdout for the local server and tools.
pub fn init_json() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .try_init();
}

/// The error and every cause under it, `: `-separated, for one log field.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
