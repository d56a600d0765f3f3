//! The one HTTP client of the process, shared by the Kusto client, the storage clients and
//! the token credentials.
//!
//! Building a `reqwest::Client` loads the machine's root certificates (the whole
//! `/etc/ssl/certs` bundle and folder on Linux, about a third of a millisecond per file).
//! With one client per Kusto client, blob container, queue and credential, a cold start read
//! them four times, and the Functions host waits for that before it sends the first
//! invocation (BENCHMARKS.md, "Custom handler start-up"). One client also means one
//! connection pool per host, which is what the storage and Kusto endpoints expect.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use azure_core::http::{ClientOptions, Transport};

/// What the Azure SDK's own default client uses (typespec_client_core, `new_reqwest_client`):
/// a connection that cannot be opened in 20 s, or a read silent for 60 s, is a transient
/// failure for the retry policy to handle. Kusto requests add their own overall timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Building the client failed: only a TLS back end that cannot start does that, and then
/// nothing can be sent. The cause is kept as text, since every caller gets the same one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("could not build the HTTP client ({0}); check the machine's TLS root certificates")]
pub struct HttpSetupError(String);

/// The shared client (a handle: cloning it shares the pool).
pub fn client() -> Result<reqwest::Client, HttpSetupError> {
    static CLIENT: OnceLock<Result<reqwest::Client, HttpSetupError>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(READ_TIMEOUT)
                // Neither Kusto nor Blob Storage redirects; a redirect would carry the bearer
                // token to a host nobody configured.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| HttpSetupError(e.to_string()))
        })
        .clone()
}

/// Azure SDK client options whose transport is the shared client.
pub fn sdk_options() -> Result<ClientOptions, HttpSetupError> {
    Ok(ClientOptions {
        transport: Some(Transport::new(Arc::new(client()?))),
        ..Default::default()
    })
}
