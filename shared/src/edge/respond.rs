//! The one path of every route: the organization, the parsed operation, executed, answered (the
//! outcome as its view, or a problem document).

use axum::extract::{Path, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::EdgeError;
use super::estate_view::{SubscriptionView, SubscriptionsPage};
use super::input::{self, StepInput};
use super::request::{Caller, RawBody, json_response, problem_response};
use super::view::ConnectionView;
use crate::app::{App, Operation, Outcome, RequestMeta};
use crate::domain::Step;

/// The one path of every route: organization, parse, execute, respond; every failure is logged,
/// published and answered as a problem document.
pub async fn respond(
    app: &App,
    caller: Caller,
    step: Step,
    raw_id: Option<&str>,
    parse: impl FnOnce(&RequestMeta) -> Result<Operation, EdgeError>,
) -> Response {
    let req = caller.req;
    let connection = raw_id.and_then(|id| input::connection_id(id).ok());
    let org = match caller.org {
        Ok(org) => org,
        Err(e) => {
            app.reject(&req, None, step, connection, &e).await;
            return problem_response(&e, step);
        }
    };
    let op = match parse(&req) {
        Ok(op) => op,
        Err(e) => {
            app.reject(&req, Some(&org), step, connection, &e).await;
            return problem_response(&e, step);
        }
    };
    match app.execute(&req, &org, op).await {
        Ok(outcome) => success_response(outcome),
        Err(e) => problem_response(&e.into(), step),
    }
}

pub(super) fn success_response(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Created(c) => {
            let mut r = json_response(StatusCode::CREATED, &ConnectionView::from(&c));
            if let Ok(v) = HeaderValue::from_str(&format!("/connections/{}", c.id)) {
                r.headers_mut().insert(LOCATION, v);
            }
            r
        }
        Outcome::Connected(c)
            if c.estate
                .as_ref()
                .and_then(|e| e.survey.as_ref())
                .is_some_and(|r| r.is_surveying()) =>
        {
            // Connected, its group's survey going on in the background (`estate.survey`).
            json_response(StatusCode::ACCEPTED, &ConnectionView::from(&c))
        }
        Outcome::Current(c) | Outcome::Connected(c) => {
            json_response(StatusCode::OK, &ConnectionView::from(&c))
        }
        Outcome::Deleted => StatusCode::NO_CONTENT.into_response(),
        Outcome::Role { role, .. } => json_response(StatusCode::OK, &role),
        Outcome::FederatedCredential { values, .. } => json_response(StatusCode::OK, &values),
        Outcome::Subscriptions {
            connection,
            items,
            next,
            status,
        } => json_response(
            StatusCode::OK,
            &SubscriptionsPage::of(&connection, &items, next, status),
        ),
        Outcome::Subscription { entry, .. } => {
            json_response(StatusCode::OK, &SubscriptionView::from(&*entry))
        }
    }
}

/// `PUT /connections/{id}/<step>`: the body `B` becomes that step's command.
pub async fn put_step<B: StepInput>(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    body: RawBody,
) -> Response {
    let caller = caller.with_body(&body);
    respond(&app, caller, B::STEP, Some(&id), |req| {
        let connection = input::connection_id(&id)?;
        let command = input::parse_json::<B>(&body.0?)?.into_command(req.received_at)?;
        Ok(Operation::Submit { connection, command })
    })
    .await
}
