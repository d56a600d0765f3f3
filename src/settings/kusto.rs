//! Settings of the Kusto connection.

use std::time::Duration;

use url::Url;

use super::{
    Env, KEY_APP_NAME, KEY_CLUSTER_URI, KEY_KUSTO_CLIENT_ID, KEY_KUSTO_CREDENTIAL,
    KEY_KUSTO_DEV_TOKEN, KEY_KUSTO_TIMEOUT, KEY_TOKEN_SCOPE, Secret, SettingsError, invalid,
    is_loopback,
};

/// How the product authenticates to Kusto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KustoAuth {
    /// Managed identity: system-assigned (`client_id` None) or user-assigned by client id.
    ManagedIdentity { client_id: Option<String> },
    /// The developer's `az` / `azd` login, for laptops.
    DeveloperTools,
    /// A fixed bearer token, for kusto-sim only.
    StaticToken(Secret),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KustoSettings {
    /// The engine endpoint, e.g. `https://mycluster.westeurope.kusto.windows.net`.
    pub cluster_uri: Url,
    /// OAuth scope for tokens; defaults to `<cluster_uri>/.default`.
    pub token_scope: String,
    pub auth: KustoAuth,
    /// Sent as `x-ms-app` and as the prefix of `x-ms-client-request-id`.
    pub app_name: String,
    /// Per-request timeout, also sent as the `servertimeout` option.
    pub request_timeout: Duration,
}

pub(super) fn load_kusto(env: &Env) -> Result<KustoSettings, SettingsError> {
    let cluster_uri = env.url(
        KEY_CLUSTER_URI,
        "the Kusto engine URL, e.g. https://mycluster.westeurope.kusto.windows.net",
    )?;
    let token_scope = env
        .get(KEY_TOKEN_SCOPE)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{}/.default", cluster_uri.as_str().trim_end_matches('/')));
    let client_id = env.get(KEY_KUSTO_CLIENT_ID).map(str::to_owned);
    let auth = match env.get(KEY_KUSTO_CREDENTIAL).unwrap_or("managedidentity") {
        c if c.eq_ignore_ascii_case("managedidentity") => KustoAuth::ManagedIdentity { client_id },
        c if c.eq_ignore_ascii_case("developertools") => KustoAuth::DeveloperTools,
        c if c.eq_ignore_ascii_case("devtoken") => {
            if !is_loopback(&cluster_uri) {
                return Err(invalid(
                    KEY_KUSTO_CREDENTIAL,
                    "devtoken is only for a local kusto-sim on a loopback address; use managedidentity",
                ));
            }
            KustoAuth::StaticToken(Secret::new(env.require(
                KEY_KUSTO_DEV_TOKEN,
                "the bearer token kusto-sim accepts (any text unless kusto-sim is configured otherwise)",
            )?))
        }
        other => {
            return Err(invalid(
                KEY_KUSTO_CREDENTIAL,
                format!("{other:?} is not one of managedidentity, developertools, devtoken"),
            ));
        }
    };
    Ok(KustoSettings {
        cluster_uri,
        token_scope,
        auth,
        app_name: env.get(KEY_APP_NAME).unwrap_or("adxbackup").to_owned(),
        request_timeout: env.duration_secs(KEY_KUSTO_TIMEOUT, 120)?,
    })
}
