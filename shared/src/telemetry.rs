//! Logging: JSON lines. In Lambda `AWS_LAMBDA_LOG_FORMAT=JSON` and `AWS_LAMBDA_LOG_LEVEL` (the
//! template's `LogLevel`) are honoured, through [`lambda_filter`]; locally `RUST_LOG` filters
//! (default `info`).

use std::str::FromStr;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// Crates that log what they carry (raw events, headers, bodies) below INFO: held at INFO whatever
/// the level asked for.
pub const HELD_AT_INFO: [&str; 5] = [
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "aws_smithy_runtime",
    "hyper_util",
];

/// The most verbose level a function logs at: DEBUG (TRACE is taken as DEBUG).
pub const MOST_VERBOSE: LevelFilter = LevelFilter::DEBUG;

/// The filter of a function asked for `level` (`AWS_LAMBDA_LOG_LEVEL`; unset or unknown: INFO):
/// at most [`MOST_VERBOSE`], and [`HELD_AT_INFO`] never below INFO.
pub fn lambda_filter(level: Option<&str>) -> EnvFilter {
    let asked = level
        .and_then(|l| LevelFilter::from_str(l.trim()).ok())
        .unwrap_or(LevelFilter::INFO);
    let level = asked.min(MOST_VERBOSE);
    let held = level.min(LevelFilter::INFO);
    let mut directives = vec![level.to_string().to_ascii_lowercase()];
    directives.extend(
        HELD_AT_INFO
            .iter()
            .map(|c| format!("{c}={}", held.to_string().to_ascii_lowercase())),
    );
    EnvFilter::new(directives.join(","))
}

/// For Lambda functions: logs, and the metrics' EMF recorder.
pub fn init_lambda() {
    crate::metrics::install_emf();
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(lambda_filter(level.as_deref()));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(level: &str, emit: impl FnOnce()) -> String {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Writer(sink.clone()))
            .with_env_filter(lambda_filter(Some(level)))
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        buf.lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    struct Writer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Writer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(b);
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_runtime_stays_at_info_whatever_the_level() {
        for level in ["TRACE", "trace", "DEBUG", "INFO"] {
            let out = captured(level, || {
                tracing::trace!(target: "lambda_runtime", "raw event clientSecret");
                tracing::debug!(target: "lambda_runtime", "raw event clientSecret");
                tracing::debug!(target: "lambda_http", "request headers Authorization");
                tracing::trace!(target: "aws_smithy_runtime", "request body");
                tracing::info!(target: "lambda_runtime", "runtime started");
                tracing::trace!(target: "shared", "ours at trace");
                tracing::debug!(target: "shared", "ours at debug");
            });
            assert!(
                !out.contains("clientSecret") && !out.contains("Authorization"),
                "{level}: {out}"
            );
            assert!(!out.contains("request body"), "{level}: {out}");
            assert!(out.contains("runtime started"), "{level}: {out}");
            assert!(
                !out.contains("ours at trace"),
                "{level}: TRACE is never on: {out}"
            );
            assert_eq!(out.contains("ours at debug"), level != "INFO", "{level}: {out}");
        }
        let quiet = captured(
            "WARN",
            || tracing::info!(target: "lambda_runtime", "runtime started"),
        );
        assert!(quiet.is_empty(), "WARN is quieter for the runtime too: {quiet}");
    }
}
