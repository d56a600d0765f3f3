//! `kusto-sim --listen 127.0.0.1:PORT`: a standalone simulator for the demo and black-box
//! tests. Every flag has an environment equivalent (flags win).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use kusto_sim::{Config, FaultConfig, Server, StorageAccount};

#[derive(Debug, Parser)]
#[command(
    name = "kusto-sim",
    about = "A wire-compatible Azure Data Explorer stand-in"
)]
struct Args {
    /// Address to listen on; port 0 picks a free one, which the first line printed names
    /// [env: KUSTO_SIM_LISTEN]
    #[arg(long)]
    listen: Option<String>,
    /// Blob endpoint of the Azurite account used for managed-identity URLs
    /// [env: KUSTO_SIM_STORAGE_ENDPOINT]
    #[arg(long)]
    storage_endpoint: Option<String>,
    /// Queue endpoint of that account, for queued ingestion
    /// [env: KUSTO_SIM_QUEUE_ENDPOINT; default: Azurite's, next to the default blob endpoint]
    #[arg(long)]
    queue_endpoint: Option<String>,
    /// Append every received command as a JSON line to this file [env: KUSTO_SIM_COMMAND_LOG]
    #[arg(long)]
    command_log: Option<PathBuf>,
    /// Databases to create, repeatable [env: KUSTO_SIM_DATABASES, comma-separated]
    #[arg(long = "database")]
    databases: Vec<String>,
    /// Accept only this bearer token [env: KUSTO_SIM_TOKEN]
    #[arg(long)]
    token: Option<String>,
    /// Fault-injection seed [env: KUSTO_SIM_SEED]
    #[arg(long)]
    seed: Option<u64>,
    /// Fault configuration as JSON (see FaultConfig) [env: KUSTO_SIM_FAULTS]
    #[arg(long)]
    faults: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn config(args: Args) -> anyhow::Result<(String, Config)> {
    let listen = args
        .listen
        .or_else(|| env("KUSTO_SIM_LISTEN"))
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let endpoint = args
        .storage_endpoint
        .or_else(|| env("KUSTO_SIM_STORAGE_ENDPOINT"))
        .unwrap_or_else(|| kusto_sim::config::AZURITE_ENDPOINT.into());
    let queue_endpoint = args
        .queue_endpoint
        .or_else(|| env("KUSTO_SIM_QUEUE_ENDPOINT"))
        .unwrap_or_else(|| kusto_sim::config::AZURITE_QUEUE_ENDPOINT.into());
    let mut databases = args.databases;
    if databases.is_empty() {
        databases = env("KUSTO_SIM_DATABASES")
            .map(|d| {
                d.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_else(|| vec!["db".to_string()]);
    }
    let mut faults: FaultConfig = match args.faults.or_else(|| env("KUSTO_SIM_FAULTS")) {
        Some(json) => serde_json::from_str(&json)
            .context("--faults / KUSTO_SIM_FAULTS is not a valid fault config")?,
        None => FaultConfig::default(),
    };
    if let Some(seed) = args
        .seed
        .or_else(|| env("KUSTO_SIM_SEED").and_then(|s| s.parse().ok()))
    {
        faults.seed = seed;
    }
    let config = Config {
        databases,
        storage_accounts: vec![StorageAccount {
            queue_endpoint: Some(queue_endpoint),
            ..StorageAccount::azurite(&endpoint)
        }],
        required_token: args.token.or_else(|| env("KUSTO_SIM_TOKEN")),
        command_log: args
            .command_log
            .or_else(|| env("KUSTO_SIM_COMMAND_LOG").map(PathBuf::from)),
        faults,
        ..Config::default()
    };
    Ok((listen, config))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let (listen, config) = config(Args::parse())?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let server = Server::serve(config, listener)?;
    println!("kusto-sim listening on {}", server.url());
    tokio::select! {
        () = server.wait() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
