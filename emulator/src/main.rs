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
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "azure-emulator ready");
    axum::serve(listener, emulator.router()).await?;
    Ok(())
}
