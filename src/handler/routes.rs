//! The HTTP surface the Functions host talks to.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;
use tracing::Instrument;

use super::functions::Function;
use super::protocol::Invocation;
use crate::app::App;

/// Builds the router. `app` is shared by every invocation.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(ready))
        .route("/{function}", post(invoke))
        .with_state(app)
}

/// Binds 127.0.0.1:`port` (the host only talks to loopback) and serves until Ctrl-C/SIGTERM.
pub async fn serve(app: Arc<App>, port: u16) -> std::io::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, functions = ?Function::ALL.map(|f| f.name()), "custom handler listening");
    axum::serve(listener, router(app))
        .with_graceful_shutdown(super::shutdown_signal())
        .await
}

async fn ready() -> &'static str {
    "adx-backup ready"
}

async fn invoke(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(function) = Function::from_name(&name) else {
        return failure(
            StatusCode::NOT_FOUND,
            format!(
                "no function named {name:?}; this handler serves {:?}",
                Function::ALL.map(|f| f.name())
            ),
        );
    };
    let invocation_id = headers
        .get("x-azure-functions-invocationid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let span = tracing::info_span!("invocation", function = function.name(), invocation_id);
    run(&app, function, &body).instrument(span).await
}

/// Decodes the envelope and runs the function; every log line carries the invocation span.
async fn run(app: &App, function: Function, body: &[u8]) -> Response {
    let invocation = match Invocation::parse(body) {
        Ok(inv) => inv,
        Err(err) => {
            tracing::error!(error = %err, "rejected a malformed invocation");
            return failure(StatusCode::BAD_REQUEST, err.to_string());
        }
    };
    match function.run(app, invocation).await {
        Ok(response) => Json(response).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "invocation failed");
            failure(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
        }
    }
}

/// A non-2xx JSON answer: the host fails the invocation and logs the body.
fn failure(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "Outputs": {}, "Logs": [message.clone()], "ReturnValue": null, "error": message }))).into_response()
}
