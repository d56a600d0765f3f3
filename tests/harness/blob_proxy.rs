//! A loopback proxy in front of Azurite's blob service that answers some requests the way
//! the storage service would where Azurite cannot, and passes everything else through
//! unchanged. Azurite implements no immutability policy; the proxy emulates a
//! **container-level time-based retention (WORM) policy** on the containers a test names:
//!
//! - Delete Blob of an existing blob is refused;
//! - Put Blob, Copy Blob, Put Block List over an existing blob (with or without conditions)
//!   are refused, and so are Set Blob Metadata, Set Blob Properties, Snapshot Blob, Put Page
//!   and Append Block;
//! - creating a new blob, Put Block (it changes nothing until committed), reads, listings
//!   and container operations pass.
//!
//! That is the "prohibited operations" row of an active policy in
//! <https://learn.microsoft.com/azure/storage/blobs/immutable-container-level-worm-policies>.
//! A refusal is the service's documented answer: HTTP 409, `x-ms-error-code:
//! BlobImmutableDueToPolicy`, and an XML `<Error>` body with that code and message
//! (<https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes>,
//! <https://learn.microsoft.com/rest/api/storageservices/status-and-error-codes2>). Whether
//! the real service answers a *conditional* create over an existing blob with this code or
//! with `BlobAlreadyExists` is not documented; the proxy takes the stricter one.
//!
//! Whether a blob exists is asked of Azurite with a HEAD carrying the request's own SAS
//! (the product and kusto-sim both sign Azurite requests with an account SAS in the query).
//! Every refusal is recorded for the test to inspect. Built to grow other storage faults.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// The query parameters of a SAS, kept on the proxy's own existence check.
const SAS_PARAMS: &[&str] = &[
    "sv", "ss", "srt", "sp", "se", "st", "spr", "sig", "sip", "ses", "sr", "si", "sdd", "skoid",
    "sktid", "skt", "ske", "sks", "skv",
];

/// `comp=` values of operations an active policy refuses on an existing blob (none: Put
/// Blob or Copy Blob).
const PROHIBITED_COMPS: &[&str] = &[
    "blocklist",
    "metadata",
    "properties",
    "snapshot",
    "page",
    "appendblock",
];

const IMMUTABLE_CODE: &str = "BlobImmutableDueToPolicy";
const IMMUTABLE_MESSAGE: &str =
    "This operation is not permitted as the blob is immutable due to a policy.";

/// One request the proxy refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub method: String,
    pub container: String,
    /// The blob name, decoded.
    pub blob: String,
}

struct Shared {
    upstream: url::Url,
    http: reqwest::Client,
    worm: Mutex<BTreeSet<String>>,
    refused: Mutex<Vec<Refusal>>,
}

/// The running proxy; stops when dropped.
pub struct BlobProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl BlobProxy {
    /// A proxy in front of `upstream` (Azurite's blob endpoint with its account path).
    pub async fn start(upstream: &str) -> BlobProxy {
        let shared = Arc::new(Shared {
            upstream: url::Url::parse(upstream.trim_end_matches('/')).expect("upstream URL"),
            http: reqwest::Client::new(),
            worm: Mutex::new(BTreeSet::new()),
            refused: Mutex::new(Vec::new()),
        });
        let state = shared.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let shared = state.clone();
                async move { handle(&shared, method, uri, headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("blob proxy");
        });
        BlobProxy { addr, shared, task }
    }

    /// The blob endpoint to give the app and the clusters: the proxy with the upstream's path.
    pub fn endpoint(&self) -> String {
        format!("http://{}{}", self.addr, self.shared.upstream.path())
    }

    /// Puts `container` under an emulated container-level WORM policy, or lifts it.
    pub fn set_worm(&self, container: &str, on: bool) {
        let mut worm = self.shared.worm.lock().unwrap();
        if on {
            worm.insert(container.to_owned());
        } else {
            worm.remove(container);
        }
    }

    /// Every request refused so far.
    pub fn refused(&self) -> Vec<Refusal> {
        self.shared.refused.lock().unwrap().clone()
    }
}

impl Drop for BlobProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    shared: &Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some((container, blob)) = blob_of(shared, &uri)
        && shared.worm.lock().unwrap().contains(&container)
        && prohibited_if_exists(&method, &uri, &headers)
        && exists(shared, &uri, &headers).await
    {
        shared.refused.lock().unwrap().push(Refusal {
            method: method.to_string(),
            container,
            blob,
        });
        return immutable(&headers);
    }
    forward(shared, method, &uri, headers, body).await
}

/// The container and decoded blob name a request addresses; None for service and container
/// requests.
fn blob_of(shared: &Shared, uri: &Uri) -> Option<(String, String)> {
    if query_pairs(uri).any(|(k, v)| k == "restype" && v == "container") {
        return None;
    }
    let rest = uri
        .path()
        .strip_prefix(shared.upstream.path())?
        .trim_start_matches('/');
    let (container, blob) = rest.split_once('/')?;
    (!blob.is_empty()).then(|| (decode(container), decode(blob)))
}

/// Whether an active policy refuses this request when the blob exists.
fn prohibited_if_exists(method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
    let comp = query_pairs(uri).find(|(k, _)| k == "comp").map(|(_, v)| v);
    match (method, comp.as_deref()) {
        (&Method::DELETE, None) => true,
        // Put Blob (x-ms-blob-type) or Copy Blob (x-ms-copy-source).
        (&Method::PUT, None) => {
            headers.contains_key("x-ms-blob-type") || headers.contains_key("x-ms-copy-source")
        }
        (&Method::PUT, Some(c)) => PROHIBITED_COMPS.contains(&c),
        _ => false,
    }
}

/// Asks Azurite whether the blob exists, with the request's own SAS.
async fn exists(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> bool {
    let sas: Vec<(String, String)> = query_pairs(uri)
        .filter(|(k, _)| SAS_PARAMS.contains(&k.as_str()))
        .collect();
    let mut url = upstream_url(shared, uri.path());
    url.query_pairs_mut().extend_pairs(sas);
    // A pooled connection Azurite has closed fails once; a fresh one answers.
    let mut last = None;
    for _ in 0..3 {
        let mut head = shared.http.head(url.clone());
        if let Some(version) = headers.get("x-ms-version") {
            head = head.header("x-ms-version", version);
        }
        match head.send().await {
            Ok(resp) if resp.status().is_success() => return true,
            Ok(resp) if resp.status() == StatusCode::NOT_FOUND => return false,
            other => last = Some(other),
        }
    }
    panic!(
        "blob proxy: cannot tell whether {} exists: {last:?}",
        uri.path()
    )
}

/// The service's answer to an operation an immutability policy forbids.
fn immutable(request: &HeaderMap) -> Response {
    let request_id = uuid::Uuid::new_v4();
    let now = time::OffsetDateTime::now_utc();
    let time = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{IMMUTABLE_CODE}</Code>\
         <Message>{IMMUTABLE_MESSAGE}\nRequestId:{request_id}\nTime:{time}</Message></Error>"
    );
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/xml"));
    headers.insert("x-ms-error-code", HeaderValue::from_static(IMMUTABLE_CODE));
    if let Ok(id) = HeaderValue::from_str(&request_id.to_string()) {
        headers.insert("x-ms-request-id", id);
    }
    if let Some(version) = request.get("x-ms-version") {
        headers.insert("x-ms-version", version.clone());
    }
    (StatusCode::CONFLICT, headers, body).into_response()
}

async fn forward(
    shared: &Shared,
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut url = upstream_url(shared, uri.path());
    url.set_query(uri.query());
    let mut request = shared.http.request(method, url).body(body);
    // Content-Length is kept: storage wants it even on an empty Put Blob.
    for (name, value) in &headers {
        if name != "host" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Err(e) => (StatusCode::BAD_GATEWAY, format!("blob proxy: {e}")).into_response(),
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

/// The upstream URL of a request path (which already holds the account path).
fn upstream_url(shared: &Shared, path: &str) -> url::Url {
    let mut url = shared.upstream.clone();
    url.set_path(path);
    url
}

fn query_pairs(uri: &Uri) -> impl Iterator<Item = (String, String)> + '_ {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
}

/// Decodes a percent-encoded path segment.
fn decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| segment.to_owned())
}
