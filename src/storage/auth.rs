//! How the storage clients authenticate.
//!
//! - Production: a managed identity (user-assigned by client id, or system-assigned) given to
//!   the SDK clients as their token credential. The SDK keeps its default API version.
//! - Azurite (settings accept an account key only for loopback endpoints): the official crates
//!   have no Shared Key support and refuse token credentials over http, so the clients get no
//!   credential and an account SAS, computed here from the key, in their URL's query. The SDK
//!   carries that query into every child URL and pager request. The API version is pinned to
//!   one Azurite 3.35 accepts, because it rejects the SDK default.
//!
//! Nothing here does network I/O: building clients must succeed while storage is unreachable.
//! The SAS is as powerful as the key; it lives only inside client URLs and is never logged
//! (errors redact URL queries, see `crate::redact`).

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, RetryOptions};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use time::macros::format_description;
use url::Url;

use crate::settings::{Secret, StorageAuth};

use super::error::StorageError;

/// Signed-version of the account SAS; its string-to-sign layout is the one built below.
const SAS_VERSION: &str = "2022-11-02";
/// read, write, delete, list, add, create, update, process: everything blobs and queues need.
const SAS_PERMISSIONS: &str = "rwdlacup";
/// Service, container/queue and object level.
const SAS_RESOURCE_TYPES: &str = "sco";
/// Clients live as long as the process, and a local `run-local` may run for weeks; the SAS
/// grants nothing the emulator key does not, so a long expiry costs nothing.
const SAS_LIFETIME: time::Duration = time::Duration::days(365);
/// The newest API version Azurite 3.35 accepts (the SDK default, 2026-04-06, is refused).
const EMULATOR_API_VERSION: &str = "2025-11-05";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Blob,
    Queue,
}

impl Service {
    fn sas_code(self) -> &'static str {
        match self {
            Self::Blob => "b",
            Self::Queue => "q",
        }
    }
}

/// Everything a client for one storage service needs to authenticate.
#[derive(Clone)]
pub(crate) struct ServiceAccess {
    service_uri: Url,
    credential: Option<Arc<dyn TokenCredential>>,
    /// The account SAS query (emulator mode only).
    sas: Option<Secret>,
}

impl ServiceAccess {
    pub(crate) fn new(
        service_uri: &Url,
        auth: &StorageAuth,
        service: Service,
    ) -> Result<Self, StorageError> {
        let (credential, sas) = match auth {
            StorageAuth::ManagedIdentity { client_id } => {
                (Some(managed_identity(client_id.as_deref())?), None)
            }
            StorageAuth::SharedKey { account, key } => {
                let sas = account_sas(account, key, service, OffsetDateTime::now_utc())?;
                (None, Some(sas))
            }
        };
        Ok(Self {
            service_uri: service_uri.clone(),
            credential,
            sas,
        })
    }

    /// A queue or container handed over as a URL with its own SAS (as `.get ingestion
    /// resources` hands out the ingestion queues): its service, its name, and that SAS.
    pub(crate) fn from_sas_url(url: &Url) -> Option<(Self, String)> {
        let mut service_uri = url.clone();
        service_uri.set_query(None);
        let name = service_uri.path_segments()?.next_back()?.to_owned();
        service_uri.path_segments_mut().ok()?.pop();
        let access = Self {
            service_uri,
            credential: None,
            sas: url.query().map(Secret::new),
        };
        Some((access, name))
    }

    /// The URL of a container or queue directly under the service, with the SAS if any.
    /// Never log it; log [`ServiceAccess::display_url`] instead.
    pub(crate) fn resource_url(&self, name: &str) -> Url {
        let mut url = self.service_uri.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            // `https://acct.blob.core.windows.net/` has one empty segment; Azurite's
            // path-style `/devstoreaccount1` must keep its account segment.
            segments.pop_if_empty().push(name);
        }
        url.set_query(self.sas.as_ref().map(Secret::expose));
        url
    }

    /// The resource URL without any query, for logs and messages.
    pub(crate) fn display_url(&self, name: &str) -> String {
        let mut url = self.resource_url(name);
        url.set_query(None);
        url.to_string()
    }

    pub(crate) fn credential(&self) -> Option<Arc<dyn TokenCredential>> {
        self.credential.clone()
    }

    /// SDK client options: the process's one HTTP client, and retries off in the SDK
    /// ([`crate::retry::RetryPolicy`] is the one policy, applied around each call by the store).
    pub(crate) fn client_options(&self) -> Result<ClientOptions, StorageError> {
        let options = crate::http::sdk_options().map_err(http_setup)?;
        Ok(ClientOptions {
            retry: RetryOptions::none(),
            ..options
        })
    }

    /// The API version to pin, or `None` for the SDK default.
    pub(crate) fn api_version(&self) -> Option<String> {
        self.sas.as_ref().map(|_| EMULATOR_API_VERSION.to_owned())
    }

    pub(crate) fn mode(&self) -> &'static str {
        if self.sas.is_some() {
            "account SAS (emulator)"
        } else {
            "managed identity"
        }
    }
}

fn managed_identity(client_id: Option<&str>) -> Result<Arc<dyn TokenCredential>, StorageError> {
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: client_id.map(|id| UserAssignedId::ClientId(id.to_owned())),
        client_options: crate::http::sdk_options().map_err(http_setup)?,
    };
    let credential = ManagedIdentityCredential::new(Some(options))
        .map_err(|e| StorageError::from_sdk("connect", "managed identity", &e))?;
    Ok(credential)
}

fn http_setup(e: crate::http::HttpSetupError) -> StorageError {
    StorageError::refused(
        "connect",
        "the HTTP client",
        e.to_string(),
        "storage cannot be reached from this machine until the client builds",
    )
}

/// An account SAS (string-to-sign layout for sv >= 2020-12-06) for one service, as a URL query.
fn account_sas(
    account: &str,
    key: &Secret,
    service: Service,
    now: OffsetDateTime,
) -> Result<Secret, StorageError> {
    let refuse = |reason: &str| {
        StorageError::refused(
            "connect",
            "storage account key",
            reason.to_owned(),
            "use the account key exactly as Azurite prints it",
        )
    };
    let key = STANDARD
        .decode(key.expose())
        .map_err(|_| refuse("the account key is not base64"))?;
    let expiry = (now + SAS_LIFETIME)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .map_err(|_| refuse("cannot format the SAS expiry"))?;
    let ss = service.sas_code();
    // account, sp, ss, srt, st, se, sip, spr, sv, ses; empty fields are omitted from the query.
    let to_sign = format!(
        "{account}\n{SAS_PERMISSIONS}\n{ss}\n{SAS_RESOURCE_TYPES}\n\n{expiry}\n\n\n{SAS_VERSION}\n\n"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)
        .map_err(|_| refuse("the account key cannot key an HMAC"))?;
    mac.update(to_sign.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("sv", SAS_VERSION)
        .append_pair("ss", ss)
        .append_pair("srt", SAS_RESOURCE_TYPES)
        .append_pair("sp", SAS_PERMISSIONS)
        .append_pair("se", &expiry)
        .append_pair("sig", &signature)
        .finish();
    Ok(Secret::new(query))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const DEV_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn shared_key() -> StorageAuth {
        StorageAuth::SharedKey {
            account: "devstoreaccount1".into(),
            key: Secret::new(DEV_KEY),
        }
    }

    #[test]
    fn sas_matches_a_known_signature() {
        // Pinned so a change to the string-to-sign is noticed; verified against Azurite by
        // the e2e storage tests.
        let sas = account_sas(
            "devstoreaccount1",
            &Secret::new(DEV_KEY),
            Service::Blob,
            datetime!(2026-01-01 00:00 UTC),
        )
        .map(|s| s.expose().to_owned());
        let sas = sas.expect("sas");
        assert!(
            sas.starts_with(
                "sv=2022-11-02&ss=b&srt=sco&sp=rwdlacup&se=2027-01-01T00%3A00%3A00Z&sig="
            ),
            "{sas}"
        );
        let expected_to_sign =
            "devstoreaccount1\nrwdlacup\nb\nsco\n\n2027-01-01T00:00:00Z\n\n\n2022-11-02\n\n";
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&STANDARD.decode(DEV_KEY).expect("key")).expect("hmac");
        mac.update(expected_to_sign.as_bytes());
        let sig = STANDARD.encode(mac.finalize().into_bytes());
        let encoded: String = url::form_urlencoded::byte_serialize(sig.as_bytes()).collect();
        assert!(sas.ends_with(&format!("sig={encoded}")), "{sas}");
    }

    #[test]
    fn bad_key_is_refused_without_echoing_it() {
        let err = account_sas(
            "a",
            &Secret::new("not base64 !"),
            Service::Queue,
            OffsetDateTime::now_utc(),
        )
        .expect_err("refused");
        assert!(!err.to_string().contains("not base64 !"));
    }

    #[test]
    fn resource_urls_for_azurite_and_azure() {
        let azurite = Url::parse("http://127.0.0.1:10000/devstoreaccount1").expect("url");
        let access = ServiceAccess::new(&azurite, &shared_key(), Service::Blob).expect("access");
        let url = access.resource_url("backups");
        assert_eq!(url.path(), "/devstoreaccount1/backups");
        assert!(url.query().is_some_and(|q| q.contains("sig=")));
        assert_eq!(
            access.display_url("backups"),
            "http://127.0.0.1:10000/devstoreaccount1/backups"
        );
        assert_eq!(access.api_version().as_deref(), Some(EMULATOR_API_VERSION));

        let azure = Url::parse("https://acct.blob.core.windows.net/").expect("url");
        let access = ServiceAccess::new(&azure, &shared_key(), Service::Blob).expect("access");
        assert_eq!(access.resource_url("backups").path(), "/backups");
    }

    #[test]
    fn managed_identity_keeps_the_sdk_version_and_no_query() {
        let azure = Url::parse("https://acct.queue.core.windows.net").expect("url");
        let auth = StorageAuth::ManagedIdentity {
            client_id: Some("00000000-0000-0000-0000-000000000001".into()),
        };
        let access = ServiceAccess::new(&azure, &auth, Service::Queue).expect("access");
        assert!(access.credential().is_some());
        assert_eq!(access.api_version(), None);
        assert_eq!(
            access.resource_url("tasks").as_str(),
            "https://acct.queue.core.windows.net/tasks"
        );
    }
}
