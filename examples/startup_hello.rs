//! The baseline for `scripts/bench-startup.sh`: a bare axum server that answers `GET /`,
//! built with the same profile, runtime and axum features as `adx-backup serve`. Its start-up
//! time is what any Rust custom handler pays; the handler's time is reported as a ratio to it,
//! so the figure does not depend on how fast the machine is that day.

use axum::{Router, routing::get};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT").unwrap_or_else(|_| "8080".into());
    let listener =
        tokio::net::TcpListener::bind(("127.0.0.1", port.parse().unwrap_or(8080))).await?;
    axum::serve(listener, Router::new().route("/", get(|| async { "ok" }))).await
}
