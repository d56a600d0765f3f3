//! The Kusto REST client: management commands (`/v1/rest/mgmt`, V1 results) and queries
//! (`/v2/rest/query`, V2 frames), each attempt authenticated, identified and classified.
//!
//! Every request carries `Authorization: Bearer`, `x-ms-app`, `x-ms-client-version` and a
//! fresh `x-ms-client-request-id` (`<app>.<op>;<uuid>`, one per attempt, so each retry can be
//! found in `.show commands-and-queries`). Failures are classified by [`super::error`] and
//! retried by the one [`RetryPolicy`]. Each attempt is logged at debug level with database,
//! command first line, request id, status and duration; never the token or the full command.

use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use url::Url;

use super::auth::TokenSource;
use super::command::{Command, CommandKind};
use super::error::{ErrorClass, ErrorEnvelope, KustoError, RequestContext, ServiceError, classify};
use super::frames::{DecodeError, KustoTable, QueryResult, TableKind, parse_v1, parse_v2};
use super::service_error::truncate;
use crate::ids::DatabaseName;
use crate::retry::RetryPolicy;
use crate::settings::KustoSettings;

const CLIENT_VERSION: &str = concat!("adx-backup/", env!("CARGO_PKG_VERSION"));
/// Extra time the HTTP client waits beyond the server timeout, so Kusto's own timeout error,
/// which says what timed out, arrives before the connection is cut.
const CLIENT_TIMEOUT_MARGIN: Duration = Duration::from_secs(10);
/// How much of a non-JSON error body an error keeps.
const RAW_BODY_MAX: usize = 300;

#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Mgmt,
    Query,
}

impl Endpoint {
    fn op(self) -> &'static str {
        match self {
            Self::Mgmt => "mgmt",
            Self::Query => "query",
        }
    }
}

/// A client for one cluster. Cheap to clone; share one per process.
#[derive(Debug, Clone)]
pub struct KustoClient {
    /// The process's one client ([`crate::http`]); what is Kusto's is added per request.
    http: reqwest::Client,
    headers: HeaderMap,
    timeout: Duration,
    tokens: TokenSource,
    mgmt_url: Url,
    query_url: Url,
    app: String,
    server_timeout: String,
    retry: RetryPolicy,
}

impl KustoClient {
    /// Builds the client from settings; contacts nothing (tokens are fetched per request).
    pub fn new(settings: &KustoSettings) -> Result<Self, KustoError> {
        let http = crate::http::client().map_err(|e| KustoError::Setup {
            what: "could not build the HTTP client".to_owned(),
            source: Some(Box::new(e)),
        })?;
        Ok(Self {
            http,
            headers: default_headers(&settings.app_name)?,
            timeout: settings.request_timeout + CLIENT_TIMEOUT_MARGIN,
            tokens: TokenSource::from_settings(settings)?,
            mgmt_url: endpoint_url(settings, "/v1/rest/mgmt")?,
            query_url: endpoint_url(settings, "/v2/rest/query")?,
            app: settings.app_name.clone(),
            server_timeout: timespan_option(settings.request_timeout),
            retry: RetryPolicy::default(),
        })
    }

    /// Replaces the retry policy (tests use [`RetryPolicy::fast`]).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Runs a management command; returns its result tables (usually one).
    pub async fn mgmt(
        &self,
        db: &DatabaseName,
        cmd: &Command,
    ) -> Result<Vec<KustoTable>, KustoError> {
        debug_assert_eq!(cmd.kind(), CommandKind::Management, "{}", cmd.first_line());
        let tables = self
            .retry
            .run("kusto mgmt", || {
                self.attempt(Endpoint::Mgmt, db, cmd, parse_v1)
            })
            .await?;
        Ok(tables
            .into_iter()
            .filter(|t| t.kind == TableKind::PrimaryResult)
            .collect())
    }

    /// Runs a query; returns all its tables, including `@ExtendedProperties` (the cursor).
    pub async fn query(&self, db: &DatabaseName, q: &Command) -> Result<QueryResult, KustoError> {
        debug_assert_eq!(q.kind(), CommandKind::Query, "{}", q.first_line());
        self.retry
            .run("kusto query", || {
                self.attempt(Endpoint::Query, db, q, parse_v2)
            })
            .await
    }

    async fn attempt<T>(
        &self,
        endpoint: Endpoint,
        db: &DatabaseName,
        cmd: &Command,
        parse: fn(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<T, KustoError> {
        let ctx = RequestContext {
            database: db.to_string(),
            command: cmd.first_line(),
            request_id: format!("{}.{};{}", self.app, endpoint.op(), uuid::Uuid::new_v4()),
        };
        let started = Instant::now();
        let response = self.send(endpoint, db, cmd, &ctx).await?;
        let status = response.status();
        let retry_after = retry_after(&response);
        let body = response.bytes().await.map_err(|e| network_error(&ctx, e))?;
        tracing::debug!(
            database = %ctx.database,
            command = %ctx.command,
            request_id = %ctx.request_id,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "kusto request"
        );
        if status.is_success() {
            parse(&body).map_err(|e| frame_error(ctx, e))
        } else {
            Err(status_error(ctx, status, retry_after, &body))
        }
    }

    async fn send(
        &self,
        endpoint: Endpoint,
        db: &DatabaseName,
        cmd: &Command,
        ctx: &RequestContext,
    ) -> Result<Response, KustoError> {
        let token = self.tokens.bearer().await?;
        let url = match endpoint {
            Endpoint::Mgmt => &self.mgmt_url,
            Endpoint::Query => &self.query_url,
        };
        let body = serde_json::json!({
            "db": db.as_str(),
            "csl": cmd.as_str(),
            "properties": {"Options": {"servertimeout": self.server_timeout}},
        });
        self.http
            .post(url.clone())
            .timeout(self.timeout)
            .headers(self.headers.clone())
            .bearer_auth(token.expose())
            .header("x-ms-client-request-id", &ctx.request_id)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| network_error(ctx, e))
    }
}

fn default_headers(app: &str) -> Result<HeaderMap, KustoError> {
    let app_value = HeaderValue::from_str(app).map_err(|e| KustoError::Setup {
        what: format!(
            "the app name {app:?} cannot be sent as the x-ms-app header (AdxBackup__AppName)"
        ),
        source: Some(Box::new(e)),
    })?;
    let mut headers = HeaderMap::new();
    headers.insert("x-ms-app", app_value);
    headers.insert(
        "x-ms-client-version",
        HeaderValue::from_static(CLIENT_VERSION),
    );
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    Ok(headers)
}

fn endpoint_url(settings: &KustoSettings, path: &str) -> Result<Url, KustoError> {
    settings
        .cluster_uri
        .join(path)
        .map_err(|e| KustoError::Setup {
            what: format!(
                "cannot form {path} from the cluster URI {}",
                settings.cluster_uri
            ),
            source: Some(Box::new(e)),
        })
}

/// `hh:mm:ss`, the form Kusto's `servertimeout` option takes.
fn timespan_option(span: Duration) -> String {
    let secs = span.as_secs();
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Kusto does not document `Retry-After`, but honour it when a proxy or kusto-sim sends one.
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse().ok().map(Duration::from_secs)
}

fn network_error(ctx: &RequestContext, error: reqwest::Error) -> KustoError {
    let message = if error.is_timeout() {
        "no answer before the client timeout".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request or its response was interrupted".to_owned()
    };
    KustoError::Transient {
        ctx: ctx.clone(),
        status: None,
        message,
        source: Some(Box::new(error)),
    }
}

/// A non-2xx answer: Kusto's error JSON if there is one, else the start of the body.
fn status_error(
    ctx: RequestContext,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> KustoError {
    let parsed = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .map(|e| e.error);
    let class = classify(Some(status.as_u16()), parsed.as_ref());
    let error = parsed.unwrap_or_else(|| ServiceError::from_text(raw_text(status, body)));
    build(class, ctx, Some(status), retry_after, &error)
}

fn raw_text(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("no details in the response")
            .to_owned()
    } else {
        truncate(text.to_owned(), RAW_BODY_MAX)
    }
}

/// A 2xx answer that could not be used: malformed, or carrying in-band errors. In-band errors
/// are classified like any other; the most actionable class wins (memory, then throttling).
fn frame_error(ctx: RequestContext, error: DecodeError) -> KustoError {
    match error {
        DecodeError::Malformed { detail, source } => KustoError::Protocol {
            ctx,
            detail,
            source: source.map(|e| Box::new(e) as _),
        },
        DecodeError::Partial(errors) => {
            let classes: Vec<ErrorClass> = errors.iter().map(|e| classify(None, Some(e))).collect();
            let pick = [
                ErrorClass::LowMemory,
                ErrorClass::RunawayQuery,
                ErrorClass::Throttled,
            ]
            .into_iter()
            .find_map(|wanted| classes.iter().position(|c| *c == wanted));
            match pick {
                Some(i) => build(classes[i], ctx, None, None, &errors[i]),
                None => KustoError::PartialFailure {
                    ctx,
                    code: errors.iter().find_map(|e| e.best_code().map(str::to_owned)),
                    message: errors
                        .iter()
                        .map(ServiceError::summary)
                        .collect::<Vec<_>>()
                        .join("; "),
                },
            }
        }
    }
}

/// The variant for a class. `status` is None for errors inside a 200 response.
fn build(
    class: ErrorClass,
    ctx: RequestContext,
    status: Option<StatusCode>,
    retry_after: Option<Duration>,
    error: &ServiceError,
) -> KustoError {
    let message = error.summary();
    match class {
        ErrorClass::Throttled => KustoError::Throttled {
            ctx,
            message,
            retry_after,
        },
        ErrorClass::Transient => KustoError::Transient {
            ctx,
            status: status.map(|s| s.as_u16()),
            message,
            source: None,
        },
        ErrorClass::LowMemory => KustoError::LowMemory { ctx, message },
        ErrorClass::RunawayQuery => KustoError::RunawayQuery { ctx, message },
        ErrorClass::Unauthorized => KustoError::Unauthorized { ctx, message },
        ErrorClass::Forbidden => KustoError::Forbidden { ctx, message },
        ErrorClass::StorageDenied => KustoError::StorageDenied { ctx, message },
        ErrorClass::Permanent => match status {
            Some(status) => KustoError::Permanent {
                ctx,
                status: status.as_u16(),
                code: error
                    .best_code()
                    .or(status.canonical_reason())
                    .unwrap_or("no code")
                    .to_owned(),
                message,
            },
            None => KustoError::PartialFailure {
                ctx,
                code: error.best_code().map(str::to_owned),
                message,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{KustoAuth, Secret};

    fn settings(app: &str) -> KustoSettings {
        KustoSettings {
            cluster_uri: Url::parse("http://127.0.0.1:9").unwrap(),
            token_scope: "http://127.0.0.1:9/.default".into(),
            auth: KustoAuth::StaticToken(Secret::new("t")),
            app_name: app.into(),
            request_timeout: Duration::from_secs(120),
        }
    }

    #[test]
    fn builds_without_contacting_anything() {
        let client = KustoClient::new(&settings("adxbackup")).unwrap();
        assert_eq!(client.mgmt_url.as_str(), "http://127.0.0.1:9/v1/rest/mgmt");
        assert_eq!(
            client.query_url.as_str(),
            "http://127.0.0.1:9/v2/rest/query"
        );
        assert_eq!(client.server_timeout, "00:02:00");
        assert!(!format!("{client:?}").contains("Bearer"));
    }

    #[test]
    fn bad_app_name_is_a_setup_error() {
        let err = KustoClient::new(&settings("bad\napp")).unwrap_err();
        assert!(matches!(err, KustoError::Setup { .. }), "{err}");
        assert!(err.to_string().contains("AdxBackup__AppName"));
    }

    #[test]
    fn timespan_option_format() {
        assert_eq!(timespan_option(Duration::from_secs(3600 + 61)), "01:01:01");
    }
}
