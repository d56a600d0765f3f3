//! Blob Storage over plain REST. A URL carrying its own SAS is used as is; a URL ending in
//! `;managed_identity=...` (or with no credentials) is signed with an account SAS made from
//! the configured key of the account whose endpoint it starts with.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::StorageAccount;
use crate::error::SimError;
use crate::value::temporal::{TICKS_PER_SECOND, format_pattern, now_ticks};

const API_VERSION: &str = "2022-11-02";

/// A container plus a path inside it, with the query string that authorizes requests.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobLocation {
    /// Service URL up to (not including) the container, no trailing slash.
    pub service: String,
    pub container: String,
    /// Blob name or prefix, without leading slash.
    pub path: String,
    /// `sv=...&sig=...` without `?`.
    pub sas: String,
}

impl BlobLocation {
    /// The location of `name` under this one (`path/name`).
    pub fn child(&self, name: &str) -> Self {
        let path = match self.path.trim_end_matches('/') {
            "" => name.to_string(),
            p => format!("{p}/{name}"),
        };
        Self {
            path,
            ..self.clone()
        }
    }

    /// The blob URL without credentials: what artifact lists and operation details show.
    pub fn public_url(&self) -> String {
        format!("{}/{}/{}", self.service, self.container, self.path)
    }

    fn signed(&self, extra_query: &str) -> String {
        let mut url = self.public_url();
        let query: Vec<&str> = [extra_query, self.sas.as_str()]
            .into_iter()
            .filter(|q| !q.is_empty())
            .collect();
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        url
    }
}

#[derive(Debug, Clone)]
pub struct BlobClient {
    http: reqwest::Client,
    accounts: Vec<StorageAccount>,
    /// Container URLs (`service/container`) the cluster's identity may not use (the
    /// `deny_storage` fault); shared by clones so the fault can change at run time.
    denied: Arc<Mutex<Vec<String>>>,
}

impl BlobClient {
    pub fn new(accounts: Vec<StorageAccount>, denied: Vec<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            accounts,
            denied: Arc::new(Mutex::new(denied)),
        }
    }

    pub fn set_denied(&self, denied: Vec<String>) {
        *self.denied.lock().unwrap_or_else(|p| p.into_inner()) = denied;
    }

    /// Refuses, as storage would with 403, a container the `deny_storage` fault names.
    fn check_access(&self, loc: &BlobLocation) -> Result<(), SimError> {
        let container = format!("{}/{}", loc.service, loc.container);
        let denied = self.denied.lock().unwrap_or_else(|p| p.into_inner());
        if denied.iter().any(|d| d.trim_end_matches('/') == container) {
            return Err(SimError::StorageDenied {
                code: "AuthorizationPermissionMismatch".into(),
            });
        }
        Ok(())
    }

    /// Resolves a Kusto storage connection string (`url[;managed_identity=..][?sas]`).
    pub fn locate(&self, conn: &str) -> Result<BlobLocation, SimError> {
        let (url_and_query, _auth_suffix) = conn.split_once(';').unwrap_or((conn, ""));
        let (url, query) = url_and_query.split_once('?').unwrap_or((url_and_query, ""));
        let url = url.trim_end_matches('/');
        let account = self
            .accounts
            .iter()
            .find(|a| url.starts_with(a.blob_endpoint.trim_end_matches('/')));
        let (service, rest) = match account {
            Some(a) => {
                let endpoint = a.blob_endpoint.trim_end_matches('/');
                (endpoint.to_string(), &url[endpoint.len()..])
            }
            None => split_unknown_service(url)?,
        };
        let rest = rest.trim_start_matches('/');
        let (container, path) = rest.split_once('/').unwrap_or((rest, ""));
        if container.is_empty() {
            return Err(SimError::Storage(format!(
                "no container in storage URL '{url}'"
            )));
        }
        let sas = match (query.is_empty(), account) {
            (false, _) => query.to_string(),
            (true, Some(a)) => account_sas(a)?,
            (true, None) => String::new(),
        };
        Ok(BlobLocation {
            service,
            container: container.to_string(),
            path: path.to_string(),
            sas,
        })
    }

    pub async fn put(&self, loc: &BlobLocation, data: Vec<u8>) -> Result<(), SimError> {
        self.check_access(loc)?;
        let data = Bytes::from(data);
        let resp = send(loc, || {
            self.http
                .put(loc.signed(""))
                .header("x-ms-version", API_VERSION)
                .header("x-ms-blob-type", "BlockBlob")
                .header("Content-Type", "application/octet-stream")
                .body(data.clone())
        })
        .await;
        check(resp, loc).await.map(|_| ())
    }

    /// Creates the container of `loc`; an existing one is fine.
    pub async fn create_container(&self, loc: &BlobLocation) -> Result<(), SimError> {
        self.check_access(loc)?;
        let url = format!("{}/{}?restype=container", loc.service, loc.container);
        let url = if loc.sas.is_empty() {
            url
        } else {
            format!("{url}&{}", loc.sas)
        };
        let resp = send(loc, || {
            self.http
                .put(url.as_str())
                .header("x-ms-version", API_VERSION)
        })
        .await;
        match check(resp, loc).await {
            Err(SimError::Storage(msg)) if msg.contains("ContainerAlreadyExists") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    pub async fn delete(&self, loc: &BlobLocation) -> Result<(), SimError> {
        let resp = send(loc, || {
            self.http
                .delete(loc.signed(""))
                .header("x-ms-version", API_VERSION)
        })
        .await;
        check(resp, loc).await.map(|_| ())
    }

    pub async fn get(&self, loc: &BlobLocation) -> Result<Bytes, SimError> {
        self.check_access(loc)?;
        let resp = send(loc, || {
            self.http
                .get(loc.signed(""))
                .header("x-ms-version", API_VERSION)
        })
        .await;
        check(resp, loc)
            .await?
            .bytes()
            .await
            .map_err(|e| SimError::Storage(format!("reading {}: {e}", loc.public_url())))
    }

    /// Every blob under `loc.path` as (location, size), following continuation markers.
    pub async fn list(&self, loc: &BlobLocation) -> Result<Vec<(BlobLocation, u64)>, SimError> {
        self.check_access(loc)?;
        let mut out = Vec::new();
        let mut marker = String::new();
        loop {
            let prefix = encode(&loc.path);
            let mut query = format!("restype=container&comp=list&prefix={prefix}");
            if !marker.is_empty() {
                query.push_str(&format!("&marker={}", encode(&marker)));
            }
            let container = BlobLocation {
                path: String::new(),
                ..loc.clone()
            };
            let url = format!("{}/{}?{}", container.service, container.container, query);
            let url = if loc.sas.is_empty() {
                url
            } else {
                format!("{url}&{}", loc.sas)
            };
            let resp = send(loc, || {
                self.http
                    .get(url.as_str())
                    .header("x-ms-version", API_VERSION)
            })
            .await;
            let body = check(resp, loc)
                .await?
                .text()
                .await
                .map_err(|e| SimError::Storage(e.to_string()))?;
            for blob in body.split("<Blob>").skip(1) {
                let name = xml_field(blob, "Name").unwrap_or_default();
                let size = xml_field(blob, "Content-Length")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                out.push((
                    BlobLocation {
                        path: name,
                        ..loc.clone()
                    },
                    size,
                ));
            }
            marker = xml_field(&body, "NextMarker").unwrap_or_default();
            if marker.is_empty() {
                return Ok(out);
            }
        }
    }
}

/// Path-style for IP/localhost hosts (`http://127.0.0.1:10000/account/container`),
/// host-style otherwise (`https://account.blob.core.windows.net/container`).
fn split_unknown_service(url: &str) -> Result<(String, &str), SimError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| SimError::Storage(format!("bad storage URL '{url}': {e}")))?;
    let origin = parsed.origin().ascii_serialization();
    let rest = &url[origin.len().min(url.len())..];
    let host = parsed.host_str().unwrap_or_default();
    let path_style = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok();
    if !path_style {
        return Ok((origin, rest));
    }
    let trimmed = rest.trim_start_matches('/');
    let account_len = trimmed.find('/').unwrap_or(trimmed.len());
    let service = format!("{origin}/{}", &trimmed[..account_len]);
    Ok((service, &trimmed[account_len..]))
}

/// Sends a request, trying again on network errors, 429 and 5xx: Kusto retries storage
/// hiccups itself, so a busy Azurite should not fail an export, an ingestion or a query.
async fn send(
    loc: &BlobLocation,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, reqwest::Error> {
    send_with_retry(&loc.public_url(), request).await
}

/// [`send`] for any storage request (queues too); `what` names the target in the log.
pub(crate) async fn send_with_retry(
    what: &str,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, reqwest::Error> {
    const ATTEMPTS: u32 = 4;
    let mut attempt = 1;
    loop {
        let result = request().send().await;
        let transient = match &result {
            Ok(resp) => resp.status().is_server_error() || resp.status().as_u16() == 429,
            Err(_) => true,
        };
        if !transient || attempt == ATTEMPTS {
            return result;
        }
        tracing::warn!(resource = %what, attempt, "storage request failed; retrying");
        tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
        attempt += 1;
    }
}

async fn check(
    resp: Result<reqwest::Response, reqwest::Error>,
    loc: &BlobLocation,
) -> Result<reqwest::Response, SimError> {
    let resp = resp.map_err(|e| SimError::Storage(format!("{}: {e}", loc.public_url())))?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let code = xml_field(&body, "Code").unwrap_or_default();
    if status == reqwest::StatusCode::FORBIDDEN {
        return Err(SimError::StorageDenied { code });
    }
    Err(SimError::Storage(format!(
        "{} answered {status} {code}",
        loc.public_url()
    )))
}

pub(crate) fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

pub(crate) fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A blob-service account SAS valid for one hour.
fn account_sas(a: &StorageAccount) -> Result<String, SimError> {
    account_sas_for(a, "b", 3600)
}

/// An account SAS for the services `ss` (`b` blob, `q` queue) valid for `seconds` (layout
/// for sv ≥ 2020-12-06: `account\nsp\nss\nsrt\nst\nse\nsip\nspr\nsv\nses\n`).
pub(crate) fn account_sas_for(
    a: &StorageAccount,
    ss: &str,
    seconds: i64,
) -> Result<String, SimError> {
    let now = now_ticks();
    let st = format_pattern(now - 300 * TICKS_PER_SECOND, "yyyy-MM-ddTHH:mm:ssZ");
    let se = format_pattern(now + seconds * TICKS_PER_SECOND, "yyyy-MM-ddTHH:mm:ssZ");
    let (sp, srt, spr) = ("rwdlacup", "sco", "https,http");
    let to_sign = format!(
        "{}\n{sp}\n{ss}\n{srt}\n{st}\n{se}\n\n{spr}\n{API_VERSION}\n\n",
        a.name
    );
    let key = STANDARD.decode(&a.key).map_err(|e| {
        SimError::Storage(format!("account key of '{}' is not base64: {e}", a.name))
    })?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)
        .map_err(|e| SimError::Storage(format!("account key of '{}': {e}", a.name)))?;
    mac.update(to_sign.as_bytes());
    let sig = STANDARD.encode(mac.finalize().into_bytes());
    Ok(format!(
        "sv={API_VERSION}&ss={ss}&srt={srt}&sp={sp}&st={}&se={}&spr={}&sig={}",
        encode(&st),
        encode(&se),
        encode(spr),
        encode(&sig)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> BlobClient {
        BlobClient::new(
            vec![StorageAccount::azurite(
                "http://127.0.0.1:10000/devstoreaccount1",
            )],
            Vec::new(),
        )
    }

    #[test]
    fn managed_identity_urls_get_an_account_sas() {
        let loc = client()
            .locate("http://127.0.0.1:10000/devstoreaccount1/backup/db/T;managed_identity=system")
            .unwrap();
        assert_eq!(loc.container, "backup");
        assert_eq!(loc.path, "db/T");
        assert!(loc.sas.contains("sig="));
        assert_eq!(
            loc.child("x.parquet").public_url(),
            "http://127.0.0.1:10000/devstoreaccount1/backup/db/T/x.parquet"
        );
    }

    #[test]
    fn sas_urls_are_used_as_given() {
        let loc = client()
            .locate("http://127.0.0.1:19999/acct/c/p/f.parquet?sv=1&sig=abc")
            .unwrap();
        assert_eq!(
            (loc.service.as_str(), loc.container.as_str()),
            ("http://127.0.0.1:19999/acct", "c")
        );
        assert_eq!(loc.sas, "sv=1&sig=abc");
        let loc = client()
            .locate("https://acct.blob.core.windows.net/c/f?sig=1")
            .unwrap();
        assert_eq!(loc.service, "https://acct.blob.core.windows.net");
        assert!(client().locate("not a url").is_err());
    }
}
