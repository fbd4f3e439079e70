//! `azure-connect-local`: the Lambda functions' routers and console-event handling on one local
//! HTTP listener, over the embedded store (default) or Secrets Manager, and Azure's emulator with
//! its demo world (default) or the configured Azure. Same handlers as in AWS; the organization
//! comes from the `X-Org-Id` header instead of a JWT authorizer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser};
use shared::app::App;
use shared::config::{self, Config, IssuerConfig};
use shared::domain::OrgId;
use shared::edge::Function;
use shared::edge::http::{self, OrgSource};
use shared::edge::spot;
use shared::events::{EventSink, FanOut, JsonLinesSink};
use shared::issuer::Issuer;
use shared::issuer::local::LocalKey;
use shared::store::ConnectionStore;
use shared::store::embedded::EmbeddedStore;

mod doors;
mod local_azure;
mod web;

#[derive(Debug, Clone)]
enum StoreArg {
    Embedded(PathBuf),
    SecretsManager,
}

fn parse_store(s: &str) -> Result<StoreArg, String> {
    match s.split_once(':') {
        Some(("embedded", path)) if !path.is_empty() => Ok(StoreArg::Embedded(PathBuf::from(path))),
        None if s == "secretsmanager" => Ok(StoreArg::SecretsManager),
        _ => Err("expected embedded:DIR or secretsmanager".to_owned()),
    }
}

fn parse_dev_token(s: &str) -> Result<(String, OrgId), String> {
    let (token, org) = s.split_once('=').ok_or("expected TOKEN=ORG")?;
    if token.is_empty() {
        return Err("the token is empty".to_owned());
    }
    Ok((
        token.to_owned(),
        OrgId::parse(org).map_err(|e| format!("organization {e}"))?,
    ))
}

/// Runs the azure-connect backend locally.
#[derive(Debug, Parser)]
#[command(name = "azure-connect-local", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// `embedded:DIR` (one file, 0600, under DIR) or `secretsmanager` (AWS SDK settings from the
    /// environment: AWS_REGION, AWS_ENDPOINT_URL_SECRETS_MANAGER, …).
    #[arg(long, value_parser = parse_store, default_value = "embedded:.azure-connect-local")]
    store: StoreArg,
    /// Append every published event to this JSON-lines file.
    #[arg(long, default_value = ".azure-connect-local/events.jsonl")]
    events_file: PathBuf,
    /// A bearer token and the organization it stands for (`TOKEN=ORG`); repeatable. Spot's
    /// credentials API always takes these; once one is given, every route does (X-Org-Id is no
    /// longer trusted). Unknown or missing tokens get 401.
    #[arg(long = "dev-token", value_parser = parse_dev_token)]
    dev_tokens: Vec<(String, OrgId)>,
    /// The functions' configuration: each setting as a flag or as the Lambda environment variable
    /// it names (`--event-bus` / `EVENT_BUS_NAME` also publishes to EventBridge,
    /// `AWS_ENDPOINT_URL_EVENTBRIDGE` honoured).
    #[command(flatten)]
    config: Config,
    #[command(flatten)]
    local_azure: local_azure::LocalAzureArgs,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    shared::telemetry::init_json();
    let matches = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&matches)?;
    args.config.check()?;
    let budget_is_default = matches.value_source("budget") == Some(clap::parser::ValueSource::DefaultValue);
    // The store's directory (with Secrets Manager: the events file's): the emulator's certificate
    // and the local issuer's key live there.
    let local_dir = match &args.store {
        StoreArg::Embedded(dir) => dir.clone(),
        StoreArg::SecretsManager => args
            .events_file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from),
    };
    let local_azure = local_azure::start(
        &args.local_azure,
        &mut args.config.azure,
        budget_is_default,
        &local_dir,
    )
    .await?;

    let config = &args.config;
    let needs_aws = matches!(args.store, StoreArg::SecretsManager)
        || config.events.event_bus.is_some()
        || !config.issuer.key_ids.is_empty();
    let sdk = if needs_aws {
        Some(config::aws_sdk_config().await)
    } else {
        None
    };

    let store: Arc<dyn ConnectionStore> = match &args.store {
        StoreArg::Embedded(dir) => Arc::new(EmbeddedStore::open(dir, &config.store.secret_prefix)?),
        StoreArg::SecretsManager => {
            let sdk = sdk.as_ref().ok_or("AWS configuration not loaded")?;
            config::secrets_manager_store(&config.store, sdk)
        }
    };
    if let Some(parent) = args.events_file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    // The functions' metrics (EMF in Lambda), here in the Prometheus text format at GET /metrics.
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("metrics: {e}"))?;
    shared::metrics::describe();
    let page_events = web::Broadcast::new();
    let mut sinks: Vec<Arc<dyn EventSink>> = vec![
        Arc::new(JsonLinesSink::open(&args.events_file).await?),
        Arc::new(page_events.clone()),
    ];
    if let (Some(_), Some(sdk)) = (&config.events.event_bus, &sdk) {
        sinks.push(config::event_sink(&config.events, sdk));
    }
    // The emulator started above, or Azure from AZURE_CLOUD / AZURE_AUTHORITY_HOST /
    // AZURE_RESOURCE_MANAGER_ENDPOINT / AZURE_GRAPH_ENDPOINT.
    let azure = &config.azure;
    // Bound first: the issuer's URL defaults to this server's own address.
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let doors = doors::Doors::new(listener.local_addr()?, args.dev_tokens.clone())?;
    let issuer = Arc::new(issuer(&args, listener.local_addr()?, sdk.as_ref(), &local_dir).await?);
    // Large groups are surveyed in the background: on SQS when a queue is named, else on a
    // queue of this process, drained by a task of its own.
    let settings = config.survey.settings();
    let validator = azure
        .validator()?
        .with_issuer(issuer.clone())
        .with_survey_at_once(settings.at_once);
    let app = App::new(store, Arc::new(FanOut(sinks)))
        .with_quotas(config.quotas.quotas())
        .with_public_api_url(config.setup.public_api_url.clone())
        .with_setup_token_minutes(config.setup.token_minutes)
        .with_validator(Arc::new(validator))
        .with_issuer(issuer.clone());
    let app = match sdk.as_ref().and_then(|sdk| config.survey.sqs(sdk)) {
        Some(queue) => app.with_survey_queue(queue, settings),
        None => {
            let (queue, chunks) = shared::queue::LocalQueue::new();
            let app = app.with_survey_queue(Arc::new(queue), settings);
            tokio::spawn(app.clone().drain_local(chunks));
            app
        }
    };

    // Spot's credentials API takes the organization from its bearer token (--dev-token), as Spot's
    // clients send it. The wizard's routes from X-Org-Id, or, once tokens are given, from the
    // token as well: then every route is authenticated as the HTTP API's JWT authorizer does it,
    // and X-Org-Id is not trusted.
    let wizard: Vec<Function> = Function::ALL
        .into_iter()
        .filter(|f| *f != Function::SpotCredentials)
        .collect();
    let wizard_org = if args.dev_tokens.is_empty() {
        OrgSource::local_header()
    } else {
        OrgSource::dev_tokens(&args.dev_tokens)
    };
    let router = http::router(app.clone(), wizard_org, &wizard)
        .merge(spot::router(app.clone(), OrgSource::dev_tokens(&args.dev_tokens)));
    let router = shared::edge::health::with_health_checks(router, app.clone(), args.config.health.clone());
    let console = shared::edge::console::ConsoleGate::of(&config.console, &config.auth.org_claim)?;
    let router = http::with_console_events(router, app, console, &Function::ALL)
        .merge(web::router(page_events))
        .merge(web::metrics(metrics))
        .merge(local_azure::router(local_azure.clone(), azure))
        .layer(axum::middleware::from_fn_with_state(doors, doors::guard));

    tracing::info!(
        listen = %listener.local_addr()?,
        issuer = issuer.url(),
        store = ?args.store,
        events_file = %args.events_file.display(),
        azure_authority = %azure.endpoints().authority_host,
        azure_resource_manager = %azure.endpoints().resource_manager,
        "azure-connect-local ready"
    );
    banner(&args, listener.local_addr()?, local_azure.as_ref());
    // On a signal, requests in flight finish; a stream left open (the page's events) does not hold
    // the server past 2 s.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown().await;
        let _ = stop.send(true);
    });
    let mut graceful = stopping.clone();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        let _ = graceful.wait_for(|s| *s).await;
    });
    let mut grace = stopping;
    tokio::select! {
        served = server => served?,
        _ = async move {
            let _ = grace.wait_for(|s| *s).await;
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        } => tracing::info!("connections still open 2 s after the signal were closed"),
    }
    Ok(())
}

/// Our OpenID issuer: `--issuer-url` (default: this server + `/oidc`), signing with the KMS keys of
/// `--issuer-key-ids`, or else with a key file generated once in the embedded store's directory
/// (with Secrets Manager: beside the events file): `dir`.
async fn issuer(
    args: &Args,
    listening: SocketAddr,
    sdk: Option<&aws_config::SdkConfig>,
    dir: &std::path::Path,
) -> Result<Issuer, Box<dyn std::error::Error>> {
    let url = args
        .config
        .issuer
        .url
        .clone()
        .unwrap_or_else(|| format!("http://{listening}/oidc"));
    if let (false, Some(sdk)) = (args.config.issuer.key_ids.is_empty(), sdk) {
        let config = IssuerConfig {
            url: Some(url),
            ..args.config.issuer.clone()
        };
        return config.kms_issuer(sdk).await?.ok_or_else(|| "no issuer".into());
    }
    std::fs::create_dir_all(dir)?;
    Ok(Issuer::new(url, Arc::new(LocalKey::open_or_create(dir)?)))
}

/// What a person needs to start (on stderr; stdout holds the JSON logs).
fn banner(args: &Args, listening: SocketAddr, local: Option<&local_azure::LocalAzure>) {
    let store = match &args.store {
        StoreArg::Embedded(dir) => {
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            format!("embedded, in {} (kept between runs)", dir.display())
        }
        StoreArg::SecretsManager => "AWS Secrets Manager (AWS_* settings)".to_owned(),
    };
    let azure = match local {
        Some(l) => format!(
            "the Azure emulator with its demo world, at {} (nothing leaves this machine;\n\
             \x20              its world starts afresh at each run). The page shows the ids and the secret to enter;\n\
             \x20              scripts/local-az points the Azure CLI at it, for the one command.\n\
             \x20              Real Azure instead: --azure cloud (AZURE_CLOUD=public|usgov|china) or the AZURE_* endpoints.",
            l.url
        ),
        None => format!(
            "{} (sign-in) and {} (ARM): real Azure unless the AZURE_* endpoints say otherwise.\n\
             \x20              Offline instead: --azure emulator, without AZURE_* endpoints.",
            args.config.azure.endpoints().authority_host,
            args.config.azure.endpoints().resource_manager
        ),
    };
    eprintln!(
        "\nazure-connect is running locally.\n\
         \x20 The wizard:  http://{listening}/  (open it in a browser)\n\
         \x20 Store:       {store}\n\
         \x20 Events:      {}\n\
         \x20 Azure:       {azure}\n\
         \x20 Ctrl-C stops it. All the options: cargo run --release -p azure-connect-dev -- --help\n",
        args.events_file.display()
    );
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
