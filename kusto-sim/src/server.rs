//! HTTP: the Kusto REST endpoints (auth, request decoding, fault injection, V1/V2/error
//! encoding) and the `/sim/*` control endpoints.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::api::Sim;
use crate::backend::Backend;
use crate::command_log::LoggedCommand;
use crate::commands::{self, MgmtResult};
use crate::error::SimError;
use crate::faults::FaultConfig;
use crate::parse::command::parse_command;
use crate::protocol::{RequestIds, error::error_json, v1, v2};
use crate::query_runner::{self, Limits};
use crate::queued_ingestion::IngestionReport;
use crate::roles;

pub fn router(sim: Sim) -> Router {
    Router::new()
        .route("/", get(|| async { "kusto-sim" }))
        .route("/v1/rest/mgmt", post(mgmt))
        .route("/v1/rest/query", post(query_v1))
        .route("/v2/rest/query", post(query_v2))
        .route("/v1/rest/auth/metadata", get(auth_metadata))
        .route("/sim/faults", get(get_faults).post(set_faults))
        .route("/sim/continuous-export/run", post(run_exports))
        .route("/sim/queued-ingestion/run", post(run_queued_ingestion))
        .route("/sim/extents/merge", post(merge_extents))
        .route("/sim/commands", get(commands_log))
        .with_state(sim)
}

#[derive(Clone, Copy, PartialEq)]
enum Endpoint {
    Mgmt,
    QueryV1,
    QueryV2,
}

/// A decoded request body.
struct KustoRequest {
    db: String,
    csl: String,
    options: Option<Json>,
}

async fn mgmt(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    handle(sim.backend(), Endpoint::Mgmt, &headers, &body).await
}

async fn query_v1(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    handle(sim.backend(), Endpoint::QueryV1, &headers, &body).await
}

async fn query_v2(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    handle(sim.backend(), Endpoint::QueryV2, &headers, &body).await
}

async fn handle(sim: &Backend, endpoint: Endpoint, headers: &HeaderMap, body: &[u8]) -> Response {
    let ids = RequestIds {
        client_request_id: header(headers, "x-ms-client-request-id")
            .unwrap_or_else(|| format!("KustoSim;{}", Uuid::new_v4())),
        activity_id: Uuid::new_v4(),
    };
    let outcome = respond(sim, endpoint, headers, body, &ids).await;
    let mut response = match outcome {
        Ok(json) => (StatusCode::OK, axum::Json(json)).into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            (status, axum::Json(error_json(&e, &ids))).into_response()
        }
    };
    let h = response.headers_mut();
    for (name, value) in [
        ("x-ms-client-request-id", ids.client_request_id.clone()),
        ("x-ms-activity-id", ids.activity_id.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    response
}

async fn respond(
    sim: &Backend,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: &[u8],
    ids: &RequestIds,
) -> Result<Json, SimError> {
    authorize(sim, headers)?;
    let req = decode(body)?;
    let endpoint_name = if endpoint == Endpoint::Mgmt {
        "mgmt"
    } else {
        "query"
    };
    sim.record(LoggedCommand::new(endpoint_name, &req.db, &req.csl));
    let kind = if endpoint == Endpoint::Mgmt {
        "Management"
    } else {
        "Query"
    };
    if let Some(fault) = sim.faults().request_fault(kind) {
        return Err(fault);
    }
    check_roles(sim, endpoint, &req)?;
    if endpoint == Endpoint::Mgmt {
        return Ok(match commands::execute(sim, &req.db, &req.csl).await? {
            MgmtResult::Command(table) => v1::mgmt(&table),
            MgmtResult::Query(outcome) => v1::query(&outcome, ids),
        });
    }
    if req.csl.trim_start().starts_with('.') {
        return Err(SimError::semantic(
            "Management commands must be sent to /v1/rest/mgmt",
        ));
    }
    let limits = Limits::from_options(req.options.as_ref());
    let outcome = query_runner::run(sim, &req.db, &req.csl, &limits).await?;
    Ok(match endpoint {
        Endpoint::QueryV2 => v2::frames(&outcome, ids),
        _ => v1::query(&outcome, ids),
    })
}

/// Kusto's role check, once a test named the caller (see [`crate::roles`]). A command that
/// does not parse is left to the executor, which reports the syntax error.
fn check_roles(sim: &Backend, endpoint: Endpoint, req: &KustoRequest) -> Result<(), SimError> {
    let cluster = sim.cluster();
    let (needed, operation) = if endpoint == Endpoint::Mgmt && req.csl.trim_start().starts_with('.')
    {
        match parse_command(&req.csl) {
            Ok(parsed) => (
                roles::needed_in(&parsed.command, cluster.database(&req.db).ok()),
                commands::command_type(&parsed.command),
            ),
            Err(_) => return Ok(()),
        }
    } else {
        (roles::Needed::Database(roles::DbRole::Viewer), "Query")
    };
    cluster.principals.authorize(&req.db, needed, operation)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn authorize(sim: &Backend, headers: &HeaderMap) -> Result<(), SimError> {
    let auth = header(headers, "authorization").unwrap_or_default();
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            SimError::Unauthorized("missing 'Authorization: Bearer <token>' header".into())
        })?;
    match &sim.config.required_token {
        Some(required) if required != token => Err(SimError::Unauthorized(
            "the bearer token was not accepted".into(),
        )),
        _ => Ok(()),
    }
}

/// `{"db","csl","properties"}`; `properties` may be an object or a JSON-encoded string.
fn decode(body: &[u8]) -> Result<KustoRequest, SimError> {
    let v: Json = serde_json::from_slice(body)
        .map_err(|e| SimError::semantic(format!("The request body is not valid JSON: {e}")))?;
    let text = |k: &str| v.get(k).and_then(Json::as_str).map(str::to_string);
    let csl = text("csl").ok_or_else(|| SimError::semantic("The request has no 'csl' text"))?;
    let properties = match v.get("properties") {
        Some(Json::String(s)) => serde_json::from_str(s).ok(),
        other => other.cloned(),
    };
    let options = properties.as_ref().and_then(|p| p.get("Options")).cloned();
    Ok(KustoRequest {
        db: text("db").unwrap_or_default(),
        csl,
        options,
    })
}

async fn auth_metadata() -> axum::Json<Json> {
    axum::Json(json!({"AzureAD": {
        "LoginEndpoint": "https://login.microsoftonline.com",
        "LoginMfaRequired": false,
        "KustoClientAppId": "db662dc1-0cfe-4e1c-a843-19a68e65be58",
        "KustoClientRedirectUri": "https://microsoft/kustoclient",
        "KustoServiceResourceId": "https://kusto.kusto.windows.net",
        "FirstPartyAuthorityUrl": "https://login.microsoftonline.com/f8cdef31-a31e-4b4a-93e4-5f571e91255a"
    }}))
}

async fn get_faults(State(sim): State<Sim>) -> axum::Json<FaultConfig> {
    axum::Json(sim.fault_config())
}

async fn set_faults(State(sim): State<Sim>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultConfig>(&body) {
        Ok(config) => {
            sim.set_faults(config.clone());
            axum::Json(config).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("invalid fault config: {e}"),
        )
            .into_response(),
    }
}

async fn run_exports(State(sim): State<Sim>) -> axum::Json<Json> {
    let reports = sim.run_continuous_exports_now().await;
    let rows: Vec<Json> = reports
        .into_iter()
        .map(|r| json!({"database": r.database, "name": r.name, "artifacts": r.artifacts, "records": r.records, "error": r.error}))
        .collect();
    axum::Json(Json::Array(rows))
}

async fn run_queued_ingestion(State(sim): State<Sim>) -> axum::Json<IngestionReport> {
    axum::Json(sim.run_queued_ingestion_now().await)
}

async fn merge_extents(State(sim): State<Sim>) -> axum::Json<Json> {
    let merges: Vec<Json> = sim
        .merge_extents_now()
        .into_iter()
        .map(|m| {
            let sources: Vec<String> = m.sources.iter().map(ToString::to_string).collect();
            json!({"table": m.table, "sources": sources, "result": m.result.to_string()})
        })
        .collect();
    axum::Json(Json::Array(merges))
}

async fn commands_log(State(sim): State<Sim>) -> axum::Json<Vec<LoggedCommand>> {
    axum::Json(sim.commands())
}
