//! The Azure Functions custom-handler edge: axum routes that decode an invocation, hand it to
//! the worker and encode the host's response envelope; and `run-local`, which plays the host's
//! timer and queue trigger and settles each message as the worker's verdict says.
//!
//! One POST route per folder under `functions/`; `GET /` answers readiness before anything
//! else is touched, so the host sees the worker up even when Kusto or storage are down.
//! Failures answer 500 with a JSON body: the host then fails the invocation and, for queue
//! triggers, retries the message and finally moves it to the poison queue.

pub mod functions;
pub mod local;
pub mod protocol;
pub mod routes;

/// Resolves on Ctrl-C or SIGTERM (what the host, a container runtime or systemd sends).
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            return;
        }
    }
    let _ = ctrl_c.await;
}
