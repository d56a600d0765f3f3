//! A loopback proxy in front of Azurite's queue service that lets a set number of messages
//! through to the ingestion queues and then holds every further one unanswered, so a test
//! knows exactly how many ingestion messages a worker had sent when it is killed. Everything
//! else (reads, deletes, other queues) is passed through unchanged; a target cluster whose
//! queue endpoint is the gate hands its URL out in `.get ingestion resources`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use tokio::sync::Notify;

/// The name part every ready-for-aggregation queue of kusto-sim carries.
const INGESTION_QUEUE: &str = "readyforaggregation";

struct Shared {
    upstream: String,
    http: reqwest::Client,
    /// Ingestion messages still let through; `u64::MAX` is open.
    allowed: AtomicU64,
    /// Ingestion messages passed through so far.
    passed: AtomicU64,
    /// Ingestion messages held so far (never forwarded).
    held: AtomicU64,
    on_hold: Notify,
}

/// The running proxy; stops when dropped.
pub struct QueueGate {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl QueueGate {
    /// A gate in front of `upstream` (Azurite's queue endpoint, with its account path) that
    /// lets `allowed` ingestion messages through.
    pub async fn start(upstream: &str, allowed: u64) -> QueueGate {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            allowed: AtomicU64::new(allowed),
            passed: AtomicU64::new(0),
            held: AtomicU64::new(0),
            on_hold: Notify::new(),
        });
        let state = shared.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let shared = state.clone();
                async move { forward(&shared, method, uri, headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("queue gate");
        });
        QueueGate { addr, shared, task }
    }

    /// The queue endpoint to give a cluster: the gate's address with the upstream's path.
    pub fn endpoint(&self) -> String {
        super::proxy::endpoint(self.addr, &self.shared.upstream)
    }

    /// Lets every message through from now on.
    pub fn open(&self) {
        self.shared.allowed.store(u64::MAX, Ordering::SeqCst);
    }

    pub fn passed(&self) -> u64 {
        self.shared.passed.load(Ordering::SeqCst)
    }

    /// Resolves once a message is being held.
    pub async fn held(&self) {
        loop {
            let notified = self.shared.on_hold.notified();
            if self.shared.held.load(Ordering::SeqCst) > 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for QueueGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Takes one allowance; false when none is left.
fn take(allowed: &AtomicU64) -> bool {
    allowed
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
            u64::MAX => Some(n),
            0 => None,
            n => Some(n - 1),
        })
        .is_ok()
}

async fn forward(
    shared: &Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if method == Method::POST && path.contains(INGESTION_QUEUE) && path.ends_with("/messages") {
        if !take(&shared.allowed) {
            shared.held.fetch_add(1, Ordering::SeqCst);
            shared.on_hold.notify_waiters();
            // The sender is killed while it waits; the message never reaches the queue.
            std::future::pending::<()>().await;
        }
        shared.passed.fetch_add(1, Ordering::SeqCst);
    }
    super::proxy::pass(&shared.http, &shared.upstream, method, &uri, &headers, body).await
}
