//! The wizard as a page: static files compiled into the binary (nothing fetched at run time; no
//! front-end build step), and the outcome events as server-sent events, fed by the same sinks as
//! the events file. The page talks to the public HTTP API only.

use std::convert::Infallible;

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use shared::events::{EventSink, OutEvent, PublishError};
use tokio::sync::broadcast;

const INDEX: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE: &str = include_str!("../web/style.css");

/// Only this server's own scripts, styles and API.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Publishes every outcome event to the page's listeners (none listening: dropped).
#[derive(Debug, Clone)]
pub struct Broadcast(broadcast::Sender<String>);

impl Broadcast {
    pub fn new() -> Self {
        Self(broadcast::channel(256).0)
    }
}

#[async_trait]
impl EventSink for Broadcast {
    async fn publish(&self, event: &OutEvent) -> Result<(), PublishError> {
        let line = serde_json::json!({"detail-type": event.detail_type, "detail": event.detail});
        // No receiver is not an error: nobody has the page open.
        let _ = self.0.send(line.to_string());
        Ok(())
    }
}

/// `/` (the page), `/wizard/app.js`, `/wizard/style.css`, `/wizard/events` (server-sent events).
pub fn router(events: Broadcast) -> Router {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route(
            "/wizard/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/wizard/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/wizard/events", get(stream))
        .with_state(events)
}

/// `GET /metrics`: the functions' metrics (`shared::metrics`) in the Prometheus text format.
pub fn metrics(handle: metrics_exporter_prometheus::PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    )],
                    handle.render(),
                )
            }
        }),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                HeaderName::from_static("content-security-policy"),
                HeaderValue::from_static(CSP),
            ),
            (
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn stream(
    State(events): State<Broadcast>,
    only: Option<axum::Extension<crate::doors::StreamFor>>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let rx = events.0.subscribe();
    // With tokens, one organization's events (its ticket's); without, every event.
    let only = only.map(|axum::Extension(crate::doors::StreamFor(org))| org.to_string());
    let stream = futures_util::stream::unfold((rx, only), |(mut rx, only)| async move {
        loop {
            match rx.recv().await {
                Ok(line) => {
                    if let Some(org) = &only {
                        let ours = serde_json::from_str::<serde_json::Value>(&line)
                            .is_ok_and(|v| v["detail"]["orgId"].as_str() == Some(org.as_str()));
                        if !ours {
                            continue;
                        }
                    }
                    return Some((Ok(Event::default().event("outcome").data(line)), (rx, only)));
                }
                // A slow page missed some: it goes on with the next ones.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
