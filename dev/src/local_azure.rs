//! Which Azure the local server talks to: by default the Azure emulator with its demo world,
//! started in this process and reached over HTTP on a loopback port of its own exactly as real
//! Azure is (the backend's client does not know the difference); or the Azure that the `AZURE_*`
//! settings name (`--azure cloud`, or any endpoint variable given).
//!
//! With the emulator, the page learns the demo world's ids and secret from `GET /local/azure`
//! and does in the emulator what the customer does in the portal (assign the exported role, add
//! the federated credential) through the emulator's own control routes, forwarded in-process
//! under `/local/azure/emulator/…` (the page's Content-Security-Policy lets it talk to this
//! server only).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use azure_emulator::{Emulator, World};
use serde_json::{Value, json};
use shared::config::AzureConfig;
use tower::ServiceExt;

/// `--azure`: the emulator (default) or the configured cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AzureChoice {
    /// The Azure emulator with the demo world, in this process (nothing leaves the machine).
    Emulator,
    /// The Azure of AZURE_CLOUD (public by default) or of the AZURE_* endpoint variables.
    Cloud,
}

/// The local server's Azure options.
#[derive(Debug, clap::Args)]
pub struct LocalAzureArgs {
    /// `emulator` (default: an offline Azure with the demo world) or `cloud` (AZURE_CLOUD, or the
    /// AZURE_* endpoints). Giving any AZURE_*_ENDPOINT / AZURE_AUTHORITY_HOST means `cloud`.
    #[arg(long, env = "LOCAL_AZURE", value_enum, default_value_t = AzureChoice::Emulator)]
    pub azure: AzureChoice,
    /// Where the emulator listens (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub emulator_listen: SocketAddr,
    /// Another world for the emulator (JSON, as emulator/worlds/demo.json).
    #[arg(long)]
    pub emulator_world: Option<PathBuf>,
}

/// The emulator this server started, and where.
#[derive(Debug, Clone)]
pub struct LocalAzure {
    pub emulator: Emulator,
    pub url: String,
    /// The same emulator over HTTPS for the real Azure CLI (`scripts/local-az`): login and ARM on
    /// one origin, Graph on another (az picks a token's resource by the URL's origin), and the
    /// certificate (made at start) to trust.
    pub tls: Option<Tls>,
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub login_arm: String,
    pub graph: String,
    pub certificate: PathBuf,
}

/// Who runs the one command against the demo world: an app of the demo tenant that may register
/// apps (Graph `Application.ReadWrite.All`) and holds `*` at the group `contoso-prod`.
const DEMO_ADMIN: &str = "demo-admin";

/// Starts the emulator unless Azure is configured; points `azure` at it. A validation budget
/// left at its default becomes 3 s with the emulator: it answers at once, so a refusal such as
/// `role-not-assigned` (which waits for propagation until the budget runs out) takes 3 s, not 15.
pub async fn start(
    args: &LocalAzureArgs,
    azure: &mut AzureConfig,
    budget_is_default: bool,
    dir: &Path,
) -> Result<Option<LocalAzure>, Box<dyn std::error::Error>> {
    let configured =
        azure.authority_host.is_some() || azure.resource_manager.is_some() || azure.graph.is_some();
    if args.azure == AzureChoice::Cloud || configured {
        return Ok(None);
    }
    let world = match &args.emulator_world {
        Some(path) => serde_json::from_slice(&std::fs::read(path)?)
            .map_err(|e| format!("--emulator-world {}: {e}", path.display()))?,
        None => World::demo()?,
    };
    let emulator = Emulator::new(world);
    let bound = emulator.spawn(args.emulator_listen).await?;
    let url = format!("http://{bound}");
    azure.authority_host = Some(url.clone());
    azure.resource_manager = Some(url.clone());
    azure.graph = Some(url.clone());
    if budget_is_default {
        azure.budget = Duration::from_secs(3);
    }
    let tls = match https(&emulator, args.emulator_listen, dir).await {
        Ok(tls) => Some(tls),
        Err(e) => {
            tracing::warn!(error = %e, "the emulator's HTTPS (for the Azure CLI) did not start");
            None
        }
    };
    Ok(Some(LocalAzure { emulator, url, tls }))
}

async fn https(emulator: &Emulator, near: SocketAddr, dir: &Path) -> Result<Tls, Box<dyn std::error::Error>> {
    let cert = azure_emulator::Certificate::self_signed()?;
    std::fs::create_dir_all(dir)?;
    let certificate = std::path::absolute(dir.join("emulator-cert.pem"))?;
    std::fs::write(&certificate, &cert.cert_pem)?;
    let any = SocketAddr::new(near.ip(), 0);
    let login_arm = emulator.spawn_tls(any, &cert).await?;
    let graph = emulator.spawn_tls(any, &cert).await?;
    Ok(Tls {
        // The certificate names localhost.
        login_arm: format!("https://localhost:{}", login_arm.port()),
        graph: format!("https://localhost:{}", graph.port()),
        certificate,
    })
}

/// `GET /local/azure` and, with the emulator, `/local/azure/emulator/…`.
pub fn router(local: Option<LocalAzure>, azure: &AzureConfig) -> Router {
    let about = about(local.as_ref(), azure);
    let router = Router::new().route(
        "/local/azure",
        get(move |State(local): State<Option<LocalAzure>>| {
            let about = about.clone();
            async move { axum::Json(with_world(about, local.as_ref())) }
        }),
    );
    router
        .route("/local/azure/emulator/{*rest}", any(control))
        .with_state(local)
}

fn about(local: Option<&LocalAzure>, azure: &AzureConfig) -> Value {
    match local {
        Some(l) => {
            let mut about = json!({"azure": "emulator", "emulatorUrl": l.url});
            if let Some(tls) = &l.tls {
                about["cli"] = json!({
                    "loginAndResourceManager": tls.login_arm,
                    "graph": tls.graph,
                    "certificate": tls.certificate.display().to_string(),
                });
            }
            about
        }
        None => json!({
            "azure": "cloud",
            "authorityHost": azure.endpoints().authority_host,
            "resourceManager": azure.endpoints().resource_manager,
        }),
    }
}

/// The values a person types into the wizard against the emulator's world (as it is now).
fn with_world(mut about: Value, local: Option<&LocalAzure>) -> Value {
    let Some(local) = local else { return about };
    let world = local.emulator.world();
    let tenant = world.tenants.first();
    let app = tenant.and_then(|t| t.apps.iter().find(|a| !a.passwords.is_empty()).or(t.apps.first()));
    let password = app.and_then(|a| a.passwords.first());
    // Who may run the one command (scripts/local-az signs the Azure CLI in as it).
    if let (Some(cli), Some(admin)) = (
        about.get_mut("cli"),
        tenant.and_then(|t| t.apps.iter().find(|a| a.display_name == DEMO_ADMIN)),
    ) {
        cli["signIn"] = json!({
            "tenantId": tenant.map(|t| t.id.clone()),
            "appId": admin.app_id,
            "secret": admin.passwords.first().map(|p| p.secret_text.clone()),
        });
    }
    about["demo"] = json!({
        "tenantId": tenant.map(|t| t.id.clone()),
        "tenantDomain": tenant.and_then(|t| t.domains.first().cloned()),
        "clientId": app.map(|a| a.app_id.clone()),
        "appName": app.map(|a| a.display_name.clone()),
        // The emulator's own demo secret: nobody's credential.
        "clientSecret": password.map(|p| p.secret_text.clone()),
        "clientSecretExpiresAt": password.and_then(|p| p.end_date_time).map(|t| t.format("%Y-%m-%d").to_string()),
        "subscriptions": world.subscriptions.iter().map(|s| json!({
            "subscriptionId": s.id, "displayName": s.display_name, "state": s.state,
        })).collect::<Vec<_>>(),
        "managementGroups": world.management_groups.iter().map(|g| json!({
            "managementGroupId": g.name, "displayName": g.display_name,
            "subscriptions": g.subscriptions.len(),
        })).collect::<Vec<_>>(),
    });
    about
}

/// `/local/azure/emulator/{rest}` → the emulator's `/_emulator/{rest}` (its control routes:
/// grants at a subscription or a group, federated credentials, a subscription's state, a move),
/// answered as the emulator answers. 404 when Azure is not the emulator.
async fn control(State(local): State<Option<LocalAzure>>, req: Request) -> Response {
    let Some(local) = local else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"title": "Azure is not the emulator", "status": 404})),
        )
            .into_response();
    };
    let (mut parts, body) = req.into_parts();
    let rest = parts
        .uri
        .path()
        .strip_prefix("/local/azure/emulator/")
        .unwrap_or_default();
    let Ok(uri) = format!("/_emulator/{rest}").parse::<Uri>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    parts.uri = uri;
    // A fresh request to the emulator's own router: nothing of this server's routing (its path
    // parameters) goes along.
    parts.extensions = axum::http::Extensions::new();
    let forwarded = Request::from_parts(parts, Body::new(body));
    match local.emulator.router().oneshot(forwarded).await {
        Ok(r) => r.into_response(),
        Err(never) => match never {},
    }
}
