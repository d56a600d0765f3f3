//! Loopback proxies in front of an Azurite service: the pass-through every proxy shares,
//! and [`ReadOnly`], which lets reads through and answers every write as storage answers
//! an identity that holds only a reader role.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// Sends the request on to `upstream` (a service URL with its account path, which is also
/// the start of the proxy's own paths) and hands the answer back unchanged.
pub async fn pass(
    http: &reqwest::Client,
    upstream: &str,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let base = url::Url::parse(upstream).expect("upstream URL");
    let url = format!(
        "{}://{}{path_and_query}",
        base.scheme(),
        base.host_str().unwrap_or("127.0.0.1").to_owned()
            + &base.port().map(|p| format!(":{p}")).unwrap_or_default()
    );
    let mut request = http.request(method, url).body(body);
    for (name, value) in headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Err(e) => (StatusCode::BAD_GATEWAY, format!("proxy: {e}")).into_response(),
        Ok(resp) => {
            let status = resp.status();
            let mut out = HeaderMap::new();
            for (name, value) in resp.headers() {
                if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                    out.insert(name, value.clone());
                }
            }
            let body = resp.bytes().await.unwrap_or_default();
            (status, out, body).into_response()
        }
    }
}

/// The proxy's address with the upstream's path: what to give a client instead of the
/// upstream's URL.
pub fn endpoint(addr: SocketAddr, upstream: &str) -> String {
    let path = url::Url::parse(upstream)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    format!("http://{addr}{path}")
}

/// Reads (GET, HEAD) pass; every other request gets storage's answer to an identity whose
/// role does not allow the operation: 403 `AuthorizationPermissionMismatch` (the code and
/// text storage sends, as quoted in Azure/kusto-copy#79).
pub struct ReadOnly {
    addr: SocketAddr,
    upstream: String,
    task: tokio::task::JoinHandle<()>,
}

impl ReadOnly {
    pub async fn start(upstream: &str) -> ReadOnly {
        let upstream = upstream.trim_end_matches('/').to_owned();
        let http = Arc::new(reqwest::Client::new());
        let to = upstream.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (http, to) = (http.clone(), to.clone());
                async move {
                    if method == Method::GET || method == Method::HEAD {
                        pass(&http, &to, method, &uri, &headers, body).await
                    } else {
                        refused()
                    }
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("read-only proxy");
        });
        ReadOnly {
            addr,
            upstream,
            task,
        }
    }

    /// The service URL to give the client under test.
    pub fn endpoint(&self) -> String {
        endpoint(self.addr, &self.upstream)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn refused() -> Response {
    let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>This request is not authorized to perform this operation using this permission.\nRequestId:00000000-0000-0000-0000-000000000000\nTime:2026-01-01T00:00:00.0000000Z</Message></Error>";
    (
        StatusCode::FORBIDDEN,
        [
            ("x-ms-error-code", "AuthorizationPermissionMismatch"),
            ("content-type", "application/xml"),
        ],
        body,
    )
        .into_response()
}

/// How often [`Faulty`] fails the app's requests, and from which seed it draws.
#[derive(Debug, Clone, Copy)]
pub struct FaultRates {
    pub seed: u64,
    /// Answered 503 `ServerBusy` without reaching storage: nothing happened.
    pub busy_before: f64,
    /// Passed to storage, then answered 500 `OperationTimedOut`: it happened, and the client
    /// does not know (a timeout after the service did the work).
    pub lost_after: f64,
}

/// What [`Faulty`] did so far.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct FaultCounts {
    pub busy_before: u64,
    pub lost_after: u64,
}

struct FaultyShared {
    http: reqwest::Client,
    upstream: String,
    rates: FaultRates,
    rng: std::sync::Mutex<fastrand::Rng>,
    counts: std::sync::Mutex<FaultCounts>,
}

/// A blob or queue service in front of Azurite that fails the app's requests at the given
/// rates. Only requests from the Azure SDK (its `User-Agent` holds `azsdk-rust-`) are failed:
/// the clusters' own storage traffic (kusto-sim's exports and ingestion) passes untouched,
/// as their retries are Kusto's business, not the app's.
pub struct Faulty {
    addr: SocketAddr,
    shared: Arc<FaultyShared>,
    task: tokio::task::JoinHandle<()>,
}

impl Faulty {
    pub async fn start(upstream: &str, rates: FaultRates) -> Faulty {
        let shared = Arc::new(FaultyShared {
            http: reqwest::Client::new(),
            upstream: upstream.trim_end_matches('/').to_owned(),
            rates,
            rng: std::sync::Mutex::new(fastrand::Rng::with_seed(rates.seed)),
            counts: std::sync::Mutex::default(),
        });
        let state = shared.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let shared = state.clone();
                async move { shared.handle(method, uri, headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("faulty proxy");
        });
        Faulty { addr, shared, task }
    }

    pub fn endpoint(&self) -> String {
        endpoint(self.addr, &self.shared.upstream)
    }

    pub fn counts(&self) -> FaultCounts {
        *self.shared.counts.lock().expect("counts")
    }
}

impl FaultyShared {
    async fn handle(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let from_app = headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ua| ua.contains("azsdk-rust-"));
        let draw = if from_app {
            self.rng.lock().expect("rng").f64()
        } else {
            1.0
        };
        let rates = self.rates;
        if draw < rates.busy_before {
            self.counts.lock().expect("counts").busy_before += 1;
            return storage_error(StatusCode::SERVICE_UNAVAILABLE, "ServerBusy");
        }
        let answer = pass(&self.http, &self.upstream, method, &uri, &headers, body).await;
        if draw < rates.busy_before + rates.lost_after {
            self.counts.lock().expect("counts").lost_after += 1;
            return storage_error(StatusCode::INTERNAL_SERVER_ERROR, "OperationTimedOut");
        }
        answer
    }
}

impl Drop for Faulty {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Storage's error answer with `code`, as the service shapes it.
fn storage_error(status: StatusCode, code: &'static str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy\nRequestId:00000000-0000-0000-0000-000000000000\nTime:2026-01-01T00:00:00.0000000Z</Message></Error>"
    );
    (
        status,
        [
            ("x-ms-error-code", code),
            ("content-type", "application/xml"),
        ],
        body,
    )
        .into_response()
}
