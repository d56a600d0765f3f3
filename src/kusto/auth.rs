//! Bearer tokens for Kusto.
//!
//! In Azure the app's managed identity (system-assigned, or user-assigned by client id); on a
//! laptop the developer's `az`/`azd` login; against kusto-sim a fixed development token, sent
//! in the same `Authorization: Bearer` header as a real one. The azure_identity credentials
//! cache tokens and refresh them before expiry, so asking for one per request is cheap.
//! Building a source contacts nothing. Tokens are only ever held as [`Secret`]; nothing here
//! logs one or puts one in an error.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_identity::{
    DeveloperToolsCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId,
};

use crate::kusto::error::KustoError;
use crate::settings::{KustoAuth, KustoSettings, Secret};

/// Where the client's tokens come from.
#[derive(Debug, Clone)]
pub struct TokenSource {
    scope: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Credential {
        credential: Arc<dyn TokenCredential>,
        name: &'static str,
        hint: &'static str,
    },
    Static(Secret),
}

const MANAGED_IDENTITY_HINT: &str = "check that the function app has a managed identity enabled, and that AdxBackup__KustoClientId (if set) is the client id of a user-assigned identity attached to it";
const DEVELOPER_TOOLS_HINT: &str =
    "sign in with `az login` (or `azd auth login`) for the tenant of the cluster";

impl TokenSource {
    /// Builds the source named by the settings, without contacting anything.
    pub fn from_settings(settings: &KustoSettings) -> Result<Self, KustoError> {
        let kind = match &settings.auth {
            KustoAuth::ManagedIdentity { client_id } => managed_identity(client_id.as_deref())?,
            KustoAuth::DeveloperTools => Kind::Credential {
                credential: DeveloperToolsCredential::new(None)
                    .map_err(|e| setup("developer tools credential", e))?,
                name: "developer tools (az / azd)",
                hint: DEVELOPER_TOOLS_HINT,
            },
            KustoAuth::StaticToken(token) => Kind::Static(token.clone()),
        };
        Ok(Self {
            scope: settings.token_scope.clone(),
            kind,
        })
    }

    /// A token for the configured scope.
    pub async fn bearer(&self) -> Result<Secret, KustoError> {
        match &self.kind {
            Kind::Static(token) => Ok(token.clone()),
            Kind::Credential {
                credential,
                name,
                hint,
            } => credential
                .get_token(&[self.scope.as_str()], None)
                .await
                .map(|token| Secret::new(token.token.secret()))
                .map_err(|source| KustoError::Auth {
                    scope: self.scope.clone(),
                    credential: name,
                    hint,
                    source: Box::new(source),
                }),
        }
    }
}

fn managed_identity(client_id: Option<&str>) -> Result<Kind, KustoError> {
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: client_id.map(|id| UserAssignedId::ClientId(id.to_owned())),
        client_options: crate::http::sdk_options().map_err(|e| KustoError::Setup {
            what: "could not create the managed identity credential".to_owned(),
            source: Some(Box::new(e)),
        })?,
    };
    let credential = ManagedIdentityCredential::new(Some(options))
        .map_err(|e| setup("managed identity credential", e))?;
    Ok(Kind::Credential {
        credential,
        name: if client_id.is_some() {
            "the user-assigned managed identity"
        } else {
            "the system-assigned managed identity"
        },
        hint: MANAGED_IDENTITY_HINT,
    })
}

fn setup(what: &str, source: azure_core::Error) -> KustoError {
    KustoError::Setup {
        what: format!("could not create the {what}"),
        source: Some(Box::new(source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(auth: KustoAuth) -> KustoSettings {
        KustoSettings {
            cluster_uri: url::Url::parse("http://127.0.0.1:8082").unwrap(),
            token_scope: "http://127.0.0.1:8082/.default".into(),
            auth,
            app_name: "adxbackup".into(),
            request_timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn static_token_is_returned_and_never_printed() {
        let source =
            TokenSource::from_settings(&settings(KustoAuth::StaticToken(Secret::new("dev-token"))))
                .unwrap();
        assert_eq!(source.bearer().await.unwrap().expose(), "dev-token");
        assert!(!format!("{source:?}").contains("dev-token"));
    }

    #[test]
    fn credentials_build_without_contacting_anything() {
        for auth in [
            KustoAuth::ManagedIdentity { client_id: None },
            KustoAuth::ManagedIdentity {
                client_id: Some("11111111-2222-3333-4444-555555555555".into()),
            },
            KustoAuth::DeveloperTools,
        ] {
            assert!(TokenSource::from_settings(&settings(auth)).is_ok());
        }
    }
}
