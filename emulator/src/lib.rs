//! An Azure emulator: the Entra ID token and OpenID endpoints, Azure Resource Manager's subscription
//! and permissions reads, and Graph's application password credentials, with Microsoft's wire
//! formats and error bodies. Driven by a JSON [`World`] (tenants, apps, secrets with expiry,
//! subscriptions, role grants) and [`Behaviour`] switches (latency, throttling, outage, delayed
//! propagation). Login, ARM and Graph share one listener: their paths do not overlap.
//!
//! Control endpoints (not Azure's): `GET|PUT /_emulator/world`, `PUT /_emulator/behaviour`,
//! `GET /_emulator/requests` (every request received, bodies included), `DELETE /_emulator/requests`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::middleware;
use axum::routing::{any, delete, get, post, put};
use chrono::{DateTime, Utc};

mod arm;
mod behaviour;
mod control;
mod directory;
mod entra;
mod federation;
mod graph;
mod groups;
mod paging;
mod rbac;
mod throttle;
mod tls;
mod world;

pub use behaviour::{Behaviour, Recorded};
pub use tls::Certificate;
pub use world::{
    App, FederatedCredential, Grant, ManagementGroup, Password, RoleAssignment, RoleDefinition, Subscription,
    Tenant, User, World,
};

use arm::{permissions, role_assignments, subscription};
use behaviour::azure_behaviour;
use control::{
    add_federated_credential, add_grant, clear_requests, get_requests, get_world, put_behaviour, put_world,
};
use entra::{openid, token};

/// Resource ids (token scopes without `/.default`) of the clouds' ARM and Graph.
pub const ARM_RESOURCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.usgovcloudapi.net",
    "https://management.chinacloudapi.cn",
];
pub const GRAPH_RESOURCES: &[&str] = &[
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
];

/// A local HTTPS origin (`az` pointed at the emulator: its cloud's resource ids are the
/// emulator's own URLs) stands for ARM and Graph alike.
fn is_local(resource: &str) -> bool {
    resource
        .strip_prefix("https://")
        .is_some_and(|rest| rest.starts_with("localhost:") || rest.starts_with("127.0.0.1:"))
}

pub(crate) fn is_arm(resource: &str) -> bool {
    ARM_RESOURCES.contains(&resource) || is_local(resource)
}

pub(crate) fn is_graph(resource: &str) -> bool {
    GRAPH_RESOURCES.contains(&resource) || is_local(resource)
}

/// Set on requests that came over TLS (the links the emulator writes use the same scheme).
pub(crate) const SCHEME_HEADER: &str = "x-emulator-scheme";

#[derive(Debug, Default)]
pub(crate) struct Inner {
    /// Shared with every request reading it (a world of 10,000 subscriptions is not copied per
    /// request); changed copy-on-write.
    world: Arc<World>,
    requests: Vec<Recorded>,
    /// ARM's token buckets ([`throttle`]).
    buckets: throttle::Buckets,
}

#[derive(Debug, Clone, Default)]
pub struct Emulator {
    inner: Arc<Mutex<Inner>>,
}

impl Emulator {
    pub fn new(world: World) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                world: Arc::new(world),
                requests: Vec::new(),
                buckets: throttle::Buckets::default(),
            })),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn world(&self) -> Arc<World> {
        Arc::clone(&self.lock().world)
    }

    /// Changes the world in place (e.g. assign a role now).
    pub fn update(&self, f: impl FnOnce(&mut World)) {
        f(Arc::make_mut(&mut self.lock().world));
    }

    /// New behaviour switches; ARM's buckets start full again.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        let mut inner = self.lock();
        Arc::make_mut(&mut inner.world).behaviour = behaviour;
        inner.buckets.clear();
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/{tenant}/oauth2/v2.0/devicecode", post(entra::device_code))
            .route("/{tenant}/v2.0/.well-known/openid-configuration", get(openid))
            .route("/subscriptions", get(rbac::list_subscriptions))
            .route("/tenants", get(rbac::list_tenants))
            .route(
                "/providers/Microsoft.Management/managementGroups",
                get(groups::list_management_groups),
            )
            .route(
                "/providers/Microsoft.Management/managementGroups/{name}",
                get(groups::group),
            )
            .route(
                "/providers/Microsoft.Management/managementGroups/{name}/descendants",
                get(groups::descendants),
            )
            .route(
                "/providers/Microsoft.Management/managementGroups/{name}/providers/Microsoft.Authorization/roleAssignments",
                get(groups::group_role_assignments),
            )
            .route(
                "/providers/Microsoft.Management/managementGroups/{group}/providers/Microsoft.Authorization/roleAssignments/{name}",
                any(groups::group_role_assignment),
            )
            .route(
                "/providers/Microsoft.Management/managementGroups/{group}/providers/Microsoft.Authorization/roleDefinitions",
                get(rbac::group_role_definitions),
            )
            .route(
                "/providers/Microsoft.Management/managementGroups/{group}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                any(rbac::group_role_definitions),
            )
            .route("/subscriptions/{id}", get(subscription))
            .route(
                "/subscriptions/{id}/providers/Microsoft.Authorization/permissions",
                get(permissions),
            )
            .route(
                "/subscriptions/{id}/providers/Microsoft.Authorization/roleAssignments",
                get(role_assignments),
            )
            .route(
                "/subscriptions/{id}/providers/Microsoft.Authorization/roleAssignments/{name}",
                any(rbac::role_assignment),
            )
            .route(
                "/subscriptions/{id}/providers/Microsoft.Authorization/roleDefinitions",
                get(rbac::role_definitions),
            )
            .route(
                "/subscriptions/{id}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                any(rbac::role_definitions),
            )
            .route("/v1.0/{*rest}", any(directory::dispatch))
            .layer(middleware::from_fn_with_state(self.clone(), azure_behaviour))
            .route("/_emulator/world", get(get_world).put(put_world))
            .route("/_emulator/behaviour", put(put_behaviour))
            .route("/_emulator/subscriptions/{id}/grants", post(add_grant))
            .route(
                "/_emulator/management-groups/{name}/grants",
                post(control::add_group_grant),
            )
            .route("/_emulator/subscriptions/{id}/move", post(control::move_subscription))
            .route("/_emulator/subscriptions/{id}/state", put(control::set_state))
            .route("/_emulator/subscriptions/{id}", delete(control::delete_subscription))
            .route(
                "/_emulator/apps/{app}/federated-credentials",
                post(add_federated_credential),
            )
            .route("/_emulator/requests", get(get_requests))
            .route("/_emulator/requests", delete(clear_requests))
            .with_state(self.clone())
    }

    /// Serves over TLS with `cert` on `addr` in the background (what the real `az` CLI needs);
    /// returns the bound address. Serve Graph on a listener of its own: `az rest` picks a
    /// token's resource by the URL's origin.
    pub async fn spawn_tls(&self, addr: SocketAddr, cert: &Certificate) -> std::io::Result<SocketAddr> {
        tls::spawn(self.router(), addr, cert).await
    }

    /// Serves on `addr` (port 0: any free port) in the background; returns the bound address.
    pub async fn spawn(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let router = self.router();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "emulator stopped");
            }
        });
        Ok(bound)
    }
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

pub(crate) fn is_guid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}
