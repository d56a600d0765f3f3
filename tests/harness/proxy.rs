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
