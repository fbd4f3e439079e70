//! `azure-emulator --listen 127.0.0.1:4000 --world emulator/worlds/demo.json`: an offline Azure for
//! development. Point the backend at it with `AZURE_AUTHORITY_HOST`,
//! `AZURE_RESOURCE_MANAGER_ENDPOINT` and `AZURE_GRAPH_ENDPOINT` (all `http://127.0.0.1:4000`).

use std::net::SocketAddr;
use std::path::PathBuf;

use azure_emulator::{Emulator, World};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "azure-emulator",
    version,
    about = "An offline Azure: Entra ID token, ARM reads, Graph credentials"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4000")]
    listen: SocketAddr,
    /// The world: tenants, apps, secrets, subscriptions, role grants, behaviour switches (JSON).
    #[arg(long)]
    world: Option<PathBuf>,
    /// Also serve login and ARM over HTTPS here, for the real `az` CLI (e.g. 127.0.0.1:4443).
    #[arg(long, requires = "graph_tls_listen")]
    tls_listen: Option<SocketAddr>,
    /// Also serve Graph over HTTPS here (an origin of its own: `az rest` picks the token by it).
    #[arg(long, requires = "tls_listen")]
    graph_tls_listen: Option<SocketAddr>,
    /// Where to write the (self-signed, made at start) certificate to trust (`REQUESTS_CA_BUNDLE`).
    #[arg(long, default_value = "target/azure-emulator-cert.pem")]
    cert_out: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().json().with_target(false).init();
    let args = Args::parse();
    let world: World = match &args.world {
        Some(path) => serde_json::from_slice(&std::fs::read(path)?)?,
        None => World::default(),
    };
    let emulator = Emulator::new(world);
    if let (Some(login_arm), Some(graph)) = (args.tls_listen, args.graph_tls_listen) {
        let cert = azure_emulator::Certificate::self_signed()?;
        std::fs::write(&args.cert_out, &cert.cert_pem)?;
        let a = emulator.spawn_tls(login_arm, &cert).await?;
        let g = emulator.spawn_tls(graph, &cert).await?;
        tracing::info!(login_arm = %a, graph = %g, cert = %args.cert_out.display(), "azure-emulator serving HTTPS");
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "azure-emulator ready");
    axum::serve(listener, emulator.router()).await?;
    Ok(())
}
