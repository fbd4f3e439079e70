//! Connect Account's validation against Azure, in as few round trips as the work needs: a token,
//! then the subscription and the permissions side by side. Transient failures (429 with
//! Retry-After, 5xx, time-outs, refused connections) and role propagation (AuthorizationFailed or
//! no permissions right after an assignment) are retried within one time budget.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub mod estate;

use crate::azure::{AccessToken, AzureReads, Credential, GraphApps, TokenClient};
use crate::domain::diagnosis::{AzureFailure, SubscriptionState, ValidationFailure};
use crate::domain::rbac;
use crate::domain::role::RoleVersions;
use crate::domain::{ClientId, ClientSecret, Proof, Scope, TenantId, ValidationInputs};
use crate::issuer::{Issuer, SigningError};
use crate::retry::{self, Backoff, GaveUp, Verdict};

/// The early checks at 3.2 and 3.3 answer within this.
pub const EARLY_CHECK_BUDGET: Duration = Duration::from_secs(5);

/// What a successful validation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub subscription_name: String,
    pub warnings: Vec<String>,
    /// What Graph says of the app's credentials; `None` when Graph could not be asked.
    pub graph: Option<GraphFinding>,
    /// The latest version of Spot's role, whose required actions were all found granted.
    pub role_version: u32,
    /// Actions of recommended versions not granted (a warning, not a failure).
    pub missing_recommended: Vec<String>,
    /// The id of the one role definition assigned to the app, when there is exactly one.
    pub role_id: Option<String>,
    /// What the app may do beyond Spot's role (`None`: no more than it needs).
    pub over_privilege: Option<crate::domain::privilege::OverPrivilege>,
    /// A management group's survey (an estate connection).
    pub survey: Option<crate::domain::estate::Survey>,
    /// A management group too large to survey at once: its subscriptions (id, display name), to
    /// be surveyed in chunks.
    pub listing: Option<Vec<(crate::domain::SubscriptionId, String)>>,
}

/// Whether the app may manage its own credentials (rotation needs it) and, where it may, the
/// secret in use (matched by its 3-character hint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphFinding {
    pub manages_credentials: bool,
    pub key_id: Option<String>,
    pub secret_end: Option<chrono::DateTime<chrono::Utc>>,
}

/// The checks made, in order, for the record.
pub const CHECKS: [&str; 4] = ["token", "subscription", "permissions", "required-actions"];

#[derive(Debug, Clone)]
pub struct Validator {
    token: Arc<dyn TokenClient>,
    reads: Arc<dyn AzureReads>,
    arm_scope: String,
    budget: Duration,
    graph: Option<(Arc<dyn GraphApps>, String)>,
    /// Our issuer: federated connections prove themselves with its assertions.
    issuer: Option<Arc<Issuer>>,
    /// Spot's role, every version: what the app must (and should) be granted.
    roles: Arc<RoleVersions>,
    /// A management group with more subscriptions than this is only listed (its survey goes to
    /// the background, [`Validated::listing`]); `None`: always surveyed at once.
    survey_at_once: Option<usize>,
}

/// One attempt at a token: signing our assertion, or Azure, may fail.
#[derive(Debug)]
enum Attempt {
    Azure(AzureFailure),
    Signing(SigningError),
}

impl Validator {
    pub fn new(
        token: Arc<dyn TokenClient>,
        reads: Arc<dyn AzureReads>,
        arm_scope: impl Into<String>,
        budget: Duration,
    ) -> Self {
        Self {
            token,
            reads,
            arm_scope: arm_scope.into(),
            budget,
            graph: None,
            issuer: None,
            roles: Arc::new(RoleVersions::builtin()),
            survey_at_once: None,
        }
    }

    /// Groups of more than `limit` subscriptions are listed, not surveyed: the caller surveys
    /// them in chunks ([`Self::survey_part`]).
    pub fn with_survey_at_once(mut self, limit: usize) -> Self {
        self.survey_at_once = Some(limit);
        self
    }

    /// Checks against these versions of Spot's role (the shipped ones by default).
    pub fn with_roles(mut self, roles: Arc<RoleVersions>) -> Self {
        self.roles = roles;
        self
    }

    pub fn roles(&self) -> &Arc<RoleVersions> {
        &self.roles
    }

    /// Lets federated connections sign in (a fresh assertion of `issuer` for each token request).
    pub fn with_issuer(mut self, issuer: Arc<Issuer>) -> Self {
        self.issuer = Some(issuer);
        self
    }

    /// A token for `scope` with the connection's proof, retried within the deadline.
    async fn token_for(
        &self,
        inputs: &ValidationInputs,
        scope: &str,
        deadline: Instant,
    ) -> Result<AccessToken, ValidationFailure> {
        let (org, connection, salt) = match &inputs.proof {
            Proof::Secret(secret) => {
                return retrying(deadline, || {
                    self.token
                        .token(&inputs.tenant, &inputs.client, Credential::Secret(secret), scope)
                })
                .await;
            }
            Proof::Federated {
                org,
                connection,
                salt,
            } => (org, connection, salt),
        };
        let issuer = self
            .issuer
            .as_ref()
            .ok_or(ValidationFailure::Signing { retryable: false })?;
        let attempt = || async {
            let assertion = issuer
                .assertion(org, connection, salt.as_deref(), chrono::Utc::now())
                .await
                .map_err(Attempt::Signing)?;
            self.token
                .token(
                    &inputs.tenant,
                    &inputs.client,
                    Credential::Assertion(assertion.secret()),
                    scope,
                )
                .await
                .map_err(Attempt::Azure)
        };
        let classify = |e: &Attempt| match e {
            Attempt::Azure(f) => azure_verdict(f),
            Attempt::Signing(s) if s.is_retryable() => Verdict::Retry,
            Attempt::Signing(_) => Verdict::Stop,
        };
        let failed = |e: Attempt, out_of_time: bool| match e {
            Attempt::Azure(f) if out_of_time => ValidationFailure::OutOfTime(f),
            Attempt::Azure(f) => ValidationFailure::Azure(f),
            Attempt::Signing(s) => {
                tracing::error!(error = %crate::telemetry::error_chain(&s), "assertion not signed");
                ValidationFailure::Signing {
                    retryable: s.is_retryable(),
                }
            }
        };
        retry::until(deadline, Backoff::AZURE, attempt, classify)
            .await
            .map_err(|gave_up| match gave_up {
                GaveUp::Failed(e) => failed(e, false),
                GaveUp::OutOfTime(e) => failed(e, true),
                GaveUp::TimedOut => {
                    ValidationFailure::OutOfTime(AzureFailure::Unavailable("timed out".into()))
                }
            })
    }

    /// Also asks Graph about the app's credentials (one more token and one read, side by side with
    /// the ARM ones: no extra round trip).
    pub fn with_graph(mut self, graph: Arc<dyn GraphApps>, graph_scope: impl Into<String>) -> Self {
        self.graph = Some((graph, graph_scope.into()));
        self
    }

    /// A Graph token, asked side by side with the ARM one.
    async fn graph_token(&self, inputs: &ValidationInputs, deadline: Instant) -> Option<AccessToken> {
        let (_, scope) = self.graph.as_ref()?;
        self.token_for(inputs, scope, deadline).await.ok()
    }

    /// The app's credentials, read side by side with the subscription and permissions.
    async fn graph_look(
        &self,
        token: Option<&AccessToken>,
        inputs: &ValidationInputs,
        deadline: Instant,
    ) -> Option<GraphFinding> {
        let (graph, _) = self.graph.as_ref()?;
        let token = token?;
        // Reading the app's credentials is not managing them (Application.Read.All reads any app):
        // only the token's application permissions say whether it may add and remove passwords.
        let may_write = may_manage_credentials(&token.roles());
        match retrying(deadline, || graph.passwords(token, &inputs.client)).await {
            Ok(passwords) => {
                let Some(secret) = inputs.proof.secret() else {
                    // No secret in use: nothing to match.
                    return Some(GraphFinding {
                        manages_credentials: may_write,
                        key_id: None,
                        secret_end: None,
                    });
                };
                let hint = secret.hint();
                let mut matching = passwords.iter().filter(|p| p.hint == hint.as_str());
                let (first, second) = (matching.next(), matching.next());
                let unique = if second.is_none() { first } else { None };
                Some(GraphFinding {
                    manages_credentials: may_write,
                    key_id: unique.map(|p| p.key_id.clone()),
                    secret_end: unique.and_then(|p| p.end),
                })
            }
            Err(ValidationFailure::Azure(AzureFailure::Graph { status: 403, .. })) => Some(GraphFinding {
                manages_credentials: false,
                key_id: None,
                secret_end: None,
            }),
            Err(other) => {
                tracing::warn!(failure = ?other, "Graph could not be asked about the app's credentials");
                None
            }
        }
    }

    pub async fn validate(&self, inputs: &ValidationInputs) -> Result<Validated, ValidationFailure> {
        let subscription = match &inputs.scope {
            Scope::Subscription(s) => *s,
            Scope::ManagementGroup(group) => return self.validate_estate(inputs, group).await,
        };
        let deadline = Instant::now() + self.budget;
        let mut round = 0;
        let mut refreshed = false;
        loop {
            // A new token each round: Azure shows new role assignments to new tokens only.
            let (token, graph_token) = tokio::join!(
                self.token_for(inputs, &self.arm_scope, deadline),
                self.graph_token(inputs, deadline)
            );
            let token = token?;
            let (sub, perms, graph, assigned) = tokio::join!(
                retrying(deadline, || self.reads.subscription(&token, &subscription)),
                retrying(deadline, || self.reads.permissions(&token, &subscription)),
                self.graph_look(graph_token.as_ref(), inputs, deadline),
                // Which role is assigned, for the export to name it (best effort).
                retrying(deadline, || self.reads.assigned_roles(&token, &subscription)),
            );
            let token_rejected = stale_token(&sub) || stale_token(&perms);
            if token_rejected && !refreshed {
                refreshed = true;
                continue;
            }
            let propagating = not_yet_authorized(&sub)
                || not_yet_authorized(&perms)
                || matches!(&perms, Ok(p) if p.is_empty());
            if propagating {
                wait_for_propagation(&mut round, deadline).await?;
                continue;
            }
            let sub = sub?;
            let perms = perms?;
            let mut warnings = Vec::new();
            match &sub.state {
                SubscriptionState::Disabled | SubscriptionState::Deleted => {
                    return Err(ValidationFailure::SubscriptionState(sub.state));
                }
                SubscriptionState::Warned | SubscriptionState::PastDue => warnings.push(format!(
                    "The subscription is {}: Azure may disable it soon; check its billing (Azure portal > Subscriptions).",
                    sub.state
                )),
                _ => {}
            }
            let missing: Vec<String> = rbac::missing_actions(self.roles.required(), &perms)
                .into_iter()
                .map(str::to_owned)
                .collect();
            if !missing.is_empty() {
                return Err(ValidationFailure::MissingActions(missing));
            }
            let missing_recommended: Vec<String> = rbac::missing_actions(self.roles.recommended(), &perms)
                .into_iter()
                .map(str::to_owned)
                .collect();
            let assigned = assigned.unwrap_or_default();
            let over_privilege =
                crate::domain::privilege::over_privilege(self.roles.actions(), &perms, &assigned);
            // One role assigned: the customer's custom role, whose id the export can name.
            let role_id = Some(assigned).filter(|r| r.len() == 1).and_then(|mut r| r.pop());
            return Ok(Validated {
                subscription_name: sub.display_name,
                warnings,
                graph,
                role_version: self.roles.latest(),
                missing_recommended,
                role_id,
                over_privilege,
                survey: None,
                listing: None,
            });
        }
    }

    /// Removes one password credential of the app (Graph `removePassword`), signing in with the
    /// connection's proof: the old secret of a connection that moved to a federated credential.
    pub async fn remove_password(
        &self,
        inputs: &ValidationInputs,
        key_id: &str,
    ) -> Result<(), ValidationFailure> {
        let (graph, scope) = self
            .graph
            .as_ref()
            .ok_or(ValidationFailure::Azure(AzureFailure::Protocol(
                "no Graph".into(),
            )))?;
        let deadline = Instant::now() + self.early_budget();
        let token = self.token_for(inputs, scope, deadline).await?;
        match retrying(deadline, || graph.remove_password(&token, &inputs.client, key_id)).await {
            // Already gone is gone.
            Err(ValidationFailure::Azure(AzureFailure::Graph {
                status: 400 | 404, ..
            }))
            | Ok(()) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// 3.2's early check: does the tenant exist in this cloud? `TokenRefused` (AADSTS90002) when
    /// it definitely does not; other failures when Azure could not say.
    pub async fn probe_tenant(&self, tenant: &TenantId) -> Result<(), ValidationFailure> {
        let deadline = Instant::now() + self.early_budget();
        if retrying(deadline, || self.reads.tenant_exists(tenant)).await? {
            Ok(())
        } else {
            Err(ValidationFailure::Azure(AzureFailure::TokenRefused {
                status: 400,
                error: "invalid_tenant".into(),
                aadsts: Some(90002),
            }))
        }
    }

    /// 3.3's early check: a token with the three values (one round trip).
    pub async fn check_credentials(
        &self,
        tenant: &TenantId,
        client: &ClientId,
        secret: &ClientSecret,
    ) -> Result<(), ValidationFailure> {
        let deadline = Instant::now() + self.early_budget();
        retrying(deadline, || {
            self.token
                .token(tenant, client, Credential::Secret(secret), &self.arm_scope)
        })
        .await
        .map(|_| ())
    }

    fn early_budget(&self) -> Duration {
        EARLY_CHECK_BUDGET.min(self.budget / 2)
    }
}

/// A role assignment not visible yet: waits for the next round (a new token then) while the
/// budget allows the wait plus a round trip or two; [`ValidationFailure::NotPropagated`] once it
/// does not.
async fn wait_for_propagation(round: &mut u32, deadline: Instant) -> Result<(), ValidationFailure> {
    let wait = Backoff::PROPAGATION.delay(*round);
    if Instant::now() + wait + Duration::from_secs(1) >= deadline {
        return Err(ValidationFailure::NotPropagated);
    }
    tracing::info!(
        wait_ms = wait.as_millis() as u64,
        "role assignment not visible yet; asking again"
    );
    crate::metrics::propagation_wait();
    tokio::time::sleep(wait).await;
    *round += 1;
    Ok(())
}

/// ARM refused the token itself: a new one may do.
fn stale_token<T>(r: &Result<T, ValidationFailure>) -> bool {
    matches!(r, Err(ValidationFailure::Azure(AzureFailure::Arm { code, .. }))
        if code == "InvalidAuthenticationToken" || code == "ExpiredAuthenticationToken")
}

fn not_yet_authorized<T>(r: &Result<T, ValidationFailure>) -> bool {
    matches!(r, Err(ValidationFailure::Azure(f)) if f.is_propagation())
}

/// Whether Graph application permissions (a token's `roles`) let the app add and remove its own
/// passwords: `Application.ReadWrite.All`, or `Application.ReadWrite.OwnedBy` (then Graph also
/// requires the app to own itself, which the read of its own application object proves).
pub fn may_manage_credentials(roles: &[String]) -> bool {
    roles
        .iter()
        .any(|r| r == "Application.ReadWrite.All" || r == "Application.ReadWrite.OwnedBy")
}

/// Whether an Azure failure is worth another attempt: after its Retry-After, or the backoff.
fn azure_verdict(f: &AzureFailure) -> Verdict {
    match f {
        AzureFailure::Throttled { retry_after: Some(d) } => Verdict::RetryAfter(*d),
        f if f.is_transient() => Verdict::Retry,
        _ => Verdict::Stop,
    }
}

/// Calls `f` until it succeeds, fails for good, or the deadline would pass: transient failures are
/// retried after Retry-After or [`Backoff::AZURE`].
pub async fn retrying<T, F, Fut>(deadline: Instant, f: F) -> Result<T, ValidationFailure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AzureFailure>>,
{
    let mut f = f;
    let mut attempts = 0u32;
    let counted = move || {
        attempts += 1;
        crate::metrics::azure_call(attempts > 1);
        f()
    };
    retry::until(deadline, Backoff::AZURE, counted, azure_verdict)
        .await
        .map_err(|gave_up| match gave_up {
            GaveUp::Failed(e) => ValidationFailure::Azure(e),
            GaveUp::OutOfTime(e) => ValidationFailure::OutOfTime(e),
            GaveUp::TimedOut => ValidationFailure::OutOfTime(AzureFailure::Unavailable("timed out".into())),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_success() {
        let mut calls = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        let r: Result<u32, _> = retrying(deadline, || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(AzureFailure::Unavailable("HTTP 503".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_beyond_the_budget_gives_up_at_once() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let started = Instant::now();
        let r: Result<(), _> = retrying(deadline, || async {
            Err(AzureFailure::Throttled {
                retry_after: Some(Duration::from_secs(60)),
            })
        })
        .await;
        assert!(matches!(
            r,
            Err(ValidationFailure::OutOfTime(AzureFailure::Throttled { .. }))
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn final_failures_are_not_retried() {
        let mut calls = 0;
        let r: Result<(), _> = retrying(Instant::now() + Duration::from_secs(5), || {
            calls += 1;
            async {
                Err(AzureFailure::Arm {
                    status: 404,
                    code: "SubscriptionNotFound".into(),
                })
            }
        })
        .await;
        assert!(matches!(r, Err(ValidationFailure::Azure(_))));
        assert_eq!(calls, 1);
    }
}
