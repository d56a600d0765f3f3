//! The Kusto client against a replay server that answers with V1, V2 and error payloads built
//! from docs/kusto.md §v1-results, §v2-frames, §errors: typed parsing, cursor extraction,
//! every error class, which failures are retried and how often, and the headers every attempt
//! carries.

use std::collections::HashSet;
use std::time::Duration;

use adx_backup::ids::{DatabaseName, ExportName, TableName};
use adx_backup::kusto::command::{self, QueryBuilder};
use adx_backup::kusto::{KustoClient, KustoError};
use adx_backup::retry::RetryPolicy;
use adx_backup::settings::{KustoAuth, KustoSettings, Secret};
use serde_json::{Value, json};
use time::macros::datetime;

use crate::harness::replay::{Canned, Replay};

const TOKEN: &str = "dev-token-not-for-logs";
const ATTEMPTS: u32 = 3;

fn client(server: &Replay) -> KustoClient {
    client_at(server.url())
}

fn client_at(cluster: url::Url) -> KustoClient {
    let settings = KustoSettings {
        token_scope: format!("{}/.default", cluster.as_str().trim_end_matches('/')),
        cluster_uri: cluster,
        auth: KustoAuth::StaticToken(Secret::new(TOKEN)),
        app_name: "adxbackup".to_owned(),
        request_timeout: Duration::from_secs(30),
    };
    KustoClient::new(&settings)
        .expect("client")
        .with_retry_policy(RetryPolicy::fast(ATTEMPTS))
}

fn db() -> DatabaseName {
    DatabaseName::new("MyDb").expect("valid")
}

fn show_export() -> command::Command {
    command::show_continuous_export(&ExportName::new("ce_MyTable").expect("valid"))
}

fn count_query() -> command::Command {
    QueryBuilder::table(&TableName::new("MyTable").expect("valid"))
        .count()
        .command()
}

/// docs/kusto.md §v1-results: `.show continuous-export` (first four columns).
fn v1_export() -> Value {
    json!({"Tables":[{"TableName":"Table_0","Columns":[
        {"ColumnName":"Name","DataType":"String","ColumnType":"string"},
        {"ColumnName":"StartCursor","DataType":"String","ColumnType":"string"},
        {"ColumnName":"IsDisabled","DataType":"Boolean","ColumnType":"bool"},
        {"ColumnName":"ExportedTo","DataType":"DateTime","ColumnType":"datetime"}],
      "Rows":[["ce_MyTable","638712345678901234",false,"2026-01-01T10:04:59.1234567Z"]]}]})
}

fn v2_header() -> Value {
    json!({"FrameType":"DataSetHeader","IsProgressive":false,"Version":"v2.0"})
}

fn v2_count_table(rows: Value) -> Value {
    json!({"FrameType":"DataTable","TableId":1,"TableKind":"PrimaryResult","TableName":"PrimaryResult",
           "Columns":[{"ColumnName":"Count","ColumnType":"long"}],"Rows":rows})
}

/// docs/kusto.md §v2-frames: a count with its cursor.
fn v2_count() -> Value {
    json!([v2_header(),
        {"FrameType":"DataTable","TableId":0,"TableKind":"QueryProperties","TableName":"@ExtendedProperties",
         "Columns":[{"ColumnName":"TableId","ColumnType":"int"},{"ColumnName":"Key","ColumnType":"string"},{"ColumnName":"Value","ColumnType":"dynamic"}],
         "Rows":[[1,"Cursor",{"Cursor":"638712399999999999"}]]},
        v2_count_table(json!([[1234567]])),
        {"FrameType":"DataTable","TableId":2,"TableKind":"QueryCompletionInformation","TableName":"QueryCompletionInformation",
         "Columns":[{"ColumnName":"Level","ColumnType":"int"},{"ColumnName":"StatusCodeName","ColumnType":"string"},{"ColumnName":"Payload","ColumnType":"string"}],
         "Rows":[[4,"S_OK (0)","{\"Count\":1,\"Text\":\"Query completed successfully\"}"]]},
        {"FrameType":"DataSetCompletion","HasErrors":false,"Cancelled":false}])
}

/// A V2 response with rows, then errors reported in-band: HTTP 200, `HasErrors`.
fn v2_partial(error: Value) -> Value {
    json!([v2_header(), v2_count_table(json!([[1], {"OneApiErrors":[error.clone()]}])),
           {"FrameType":"DataSetCompletion","HasErrors":true,"Cancelled":false,"OneApiErrors":[error]}])
}

/// docs/kusto.md §errors: the error JSON.
fn error_json(code: &str, type_name: &str, message: &str, permanent: bool) -> Value {
    json!({"error":{"code":code,"message":"Request is invalid and cannot be executed.","@type":type_name,
        "@message":message,"@context":{"timestamp":"2026-01-01T10:00:00Z","clientRequestId":"x","activityId":"y"},
        "@permanent":permanent}})
}

fn low_memory() -> Value {
    error_json(
        "LowMemoryCondition",
        "Kusto.DataNode.Exceptions.KustoServicePartialQueryFailureLowMemoryConditionException",
        "Query execution lacks memory resources to complete (80DA0007): Partial query failure: Low memory condition (E_LOW_MEMORY_CONDITION). (message: 'bad allocation', details: '')",
        false,
    )
}

fn throttled() -> Value {
    error_json(
        "TooManyRequests",
        "Kusto.DataNode.Exceptions.ControlCommandThrottledException",
        "The management command was aborted due to throttling. Retrying after some backoff might succeed. CommandType: 'TableSetOrAppend', Capacity: 18, Origin: 'CapacityPolicy/Ingestion'.",
        false,
    )
}

fn syntax_error() -> Value {
    json!({"error":{"code":"General_BadRequest","message":"Request is invalid and cannot be executed.",
        "@type":"Kusto.Data.Exceptions.SyntaxException",
        "@message":"Syntax error: SYN0002: A recognition error occurred. [line:position=1:9]",
        "@permanent":true,"innererror":{"code":"SYN0002","message":"A recognition error occurred.","@permanent":true}}})
}

fn assert_no_token(err: &KustoError) {
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains(TOKEN),
        "the token leaked into an error: {text}"
    );
}

#[tokio::test]
async fn v1_management_result_is_typed() {
    let server = Replay::start(vec![Canned::json(200, v1_export())]).await;
    let tables = client(&server)
        .mgmt(&db(), &show_export())
        .await
        .expect("mgmt");
    let row = tables[0].row(0).expect("one row");
    assert_eq!(row.str("Name").unwrap(), "ce_MyTable");
    assert_eq!(row.str("StartCursor").unwrap(), "638712345678901234");
    assert!(!row.bool("IsDisabled").unwrap());
    assert_eq!(
        row.datetime("ExportedTo").unwrap(),
        datetime!(2026-01-01 10:04:59.1234567 UTC)
    );
    let missing = row.str("LastRunResult").unwrap_err().to_string();
    assert!(
        missing.contains("LastRunResult") && missing.contains("Table_0"),
        "{missing}"
    );

    let requests = server.requests();
    let sent = &requests[0];
    assert_eq!(sent.path, "/v1/rest/mgmt");
    assert_eq!(
        sent.json(),
        json!({"db":"MyDb","csl":".show continuous-export ['ce_MyTable']","properties":{"Options":{"servertimeout":"00:00:30"}}})
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        sent.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(sent.header("accept"), Some("application/json"));
    assert_eq!(sent.header("x-ms-app"), Some("adxbackup"));
    assert!(
        sent.header("x-ms-client-version")
            .unwrap()
            .starts_with("adx-backup/")
    );
    let request_id = sent.header("x-ms-client-request-id").unwrap();
    assert!(
        request_id.starts_with("adxbackup.mgmt;") && request_id.len() > 20,
        "{request_id}"
    );
}

#[tokio::test]
async fn v2_query_result_and_cursor() {
    let server = Replay::start(vec![Canned::json(200, v2_count())]).await;
    let result = client(&server)
        .query(&db(), &count_query())
        .await
        .expect("query");
    let count = result
        .primary_table()
        .unwrap()
        .row(0)
        .unwrap()
        .i64("Count")
        .unwrap();
    assert_eq!(count, 1_234_567);
    assert_eq!(result.cursor().unwrap().as_str(), "638712399999999999");
    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v2/rest/query");
    assert_eq!(sent.json()["csl"], "['MyTable'] | count");
    assert!(
        sent.header("x-ms-client-request-id")
            .unwrap()
            .starts_with("adxbackup.query;")
    );
}

#[tokio::test]
async fn partial_failure_inside_a_200_is_an_error() {
    let too_large = error_json(
        "LimitsExceeded",
        "Kusto.Data.Exceptions.KustoServicePartialQueryFailureLimitsExceededException",
        "Query result set has exceeded the internal record count limit 500000 (E_QUERY_RESULT_SET_TOO_LARGE; see https://aka.ms/kustoquerylimits)",
        false,
    );
    let server = Replay::start(vec![Canned::json(200, v2_partial(too_large))]).await;
    let err = client(&server)
        .query(&db(), &count_query())
        .await
        .unwrap_err();
    match &err {
        KustoError::PartialFailure { message, code, ctx } => {
            assert!(
                message.contains("E_QUERY_RESULT_SET_TOO_LARGE"),
                "{message}"
            );
            assert_eq!(code.as_deref(), Some("LimitsExceeded"));
            assert_eq!(ctx.database, "MyDb");
        }
        other => panic!("expected PartialFailure, got {other:?}"),
    }
    assert_eq!(
        server.requests().len(),
        1,
        "a partial failure is not retried"
    );
    assert_no_token(&err);
}

#[tokio::test]
async fn throttled_then_success_is_retried() {
    let server = Replay::start(vec![
        Canned::json(429, throttled()),
        Canned::json(200, v1_export()),
    ])
    .await;
    let tables = client(&server)
        .mgmt(&db(), &show_export())
        .await
        .expect("retried to success");
    assert_eq!(tables[0].rows.len(), 1);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let ids: HashSet<_> = requests
        .iter()
        .map(|r| r.header("x-ms-client-request-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "each attempt has its own request id");
    for r in &requests {
        assert_eq!(r.header("x-ms-app"), Some("adxbackup"));
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
}

#[tokio::test]
async fn low_memory_is_its_own_error_and_not_retried() {
    for (status, body, partial) in [
        (400, low_memory(), false),
        (500, low_memory(), false),
        (200, v2_partial(low_memory()), true),
    ] {
        let server = Replay::start(vec![Canned::json(status, body)]).await;
        let err = client(&server)
            .query(&db(), &count_query())
            .await
            .unwrap_err();
        match &err {
            KustoError::LowMemory { message, .. } => {
                assert!(message.contains("E_LOW_MEMORY_CONDITION"), "{message}")
            }
            other => {
                panic!("HTTP {status} (partial: {partial}): expected LowMemory, got {other:?}")
            }
        }
        assert!(err.needs_smaller_batch());
        assert_eq!(
            server.requests().len(),
            1,
            "HTTP {status}: low memory is not retried"
        );
        assert!(err.to_string().contains("smaller batches"), "{err}");
    }
}

#[tokio::test]
async fn syntax_error_is_permanent_with_message_and_first_line() {
    let rows = vec![vec!["secret-looking data row".to_owned()]];
    let cmd = command::ingest_inline(&TableName::new("MyTable").unwrap(), &rows);
    let server = Replay::start(vec![Canned::json(400, syntax_error())]).await;
    let err = client(&server).mgmt(&db(), &cmd).await.unwrap_err();
    match &err {
        KustoError::Permanent {
            status,
            code,
            message,
            ctx,
        } => {
            assert_eq!((*status, code.as_str()), (400, "SYN0002"));
            assert!(message.contains("Syntax error: SYN0002"), "{message}");
            assert_eq!(ctx.command, ".ingest inline into table ['MyTable'] <|");
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(".ingest inline into table ['MyTable'] <|") && text.contains("MyDb"),
        "{text}"
    );
    assert!(
        !text.contains("secret-looking data row"),
        "only the first line: {text}"
    );
    assert_eq!(server.requests().len(), 1, "a syntax error is not retried");
}

#[tokio::test]
async fn repeated_503_is_transient_after_max_attempts() {
    let unavailable = Canned::text(
        503,
        "text/html",
        "<html><body>Service Unavailable</body></html>",
    );
    let server = Replay::start(vec![unavailable; ATTEMPTS as usize]).await;
    let err = client(&server)
        .mgmt(&db(), &show_export())
        .await
        .unwrap_err();
    match &err {
        KustoError::Transient {
            status, message, ..
        } => {
            assert_eq!(*status, Some(503));
            assert!(message.contains("Service Unavailable"), "{message}");
        }
        other => panic!("expected Transient, got {other:?}"),
    }
    assert_eq!(server.requests().len(), ATTEMPTS as usize);
}

#[tokio::test]
async fn unauthorized_says_what_to_grant() {
    let server = Replay::start(vec![Canned::text(401, "text/plain", "")]).await;
    let err = client(&server)
        .mgmt(&db(), &show_export())
        .await
        .unwrap_err();
    assert!(matches!(err, KustoError::Unauthorized { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(".add database ['MyDb']") && text.contains("AdxBackup__TokenScope"),
        "{text}"
    );
    assert_eq!(server.requests().len(), 1);
    assert_no_token(&err);
}

#[tokio::test]
async fn unreadable_answers_are_protocol_errors() {
    for body in [
        Canned::text(200, "text/html", "<html>proxy login page</html>"),
        Canned::json(200, json!({"unexpected": true})),
        Canned::json(200, json!([v2_header(), v2_count_table(json!([[1]]))])),
    ] {
        let server = Replay::start(vec![body.clone()]).await;
        let err = client(&server)
            .query(&db(), &count_query())
            .await
            .unwrap_err();
        assert!(
            matches!(err, KustoError::Protocol { .. }),
            "{}: {err:?}",
            body.body
        );
        assert_eq!(server.requests().len(), 1);
    }
}

#[tokio::test]
async fn connection_refused_is_transient() {
    // Port 0 is never listening (binding it picks another port), so the refusal cannot turn
    // into some other test's server answering.
    let client = client_at(url::Url::parse("http://127.0.0.1:0").expect("URL"));
    let err = client.mgmt(&db(), &show_export()).await.unwrap_err();
    assert!(
        matches!(err, KustoError::Transient { status: None, .. }),
        "{err:?}"
    );
    assert_no_token(&err);
}
