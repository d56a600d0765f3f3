//! Wire format: auth, errors, V1/V2 shapes, partial failures.

use reqwest::StatusCode;
use serde_json::json;

use super::support::{Client, start};

const NO_STORAGE: &str = "http://127.0.0.1:0/devstoreaccount1";

#[tokio::test]
async fn requests_without_a_bearer_token_get_401() {
    let server = start(&["db"], NO_STORAGE).await;
    let mut client = Client::new(&server);
    client.token = None;
    let (status, body) = client.mgmt("db", ".show tables").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "Unauthorized");
}

#[tokio::test]
async fn a_configured_token_is_enforced() {
    let mut config = super::support::config(&["db"], NO_STORAGE);
    config.required_token = Some("secret".into());
    let server = kusto_sim::Server::start(config).await.unwrap();
    let mut client = Client::new(&server);
    assert_eq!(
        client.mgmt("db", ".show tables").await.0,
        StatusCode::UNAUTHORIZED
    );
    client.token = Some("secret".into());
    assert_eq!(client.mgmt("db", ".show tables").await.0, StatusCode::OK);
}

#[tokio::test]
async fn unsupported_commands_get_the_clear_400() {
    let server = start(&["db"], NO_STORAGE).await;
    let client = Client::new(&server);
    let (status, body) = client
        .mgmt(
            "db",
            ".purge table T records in database db <| where x == 1",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let err = &body["error"];
    assert_eq!(err["code"], "General_BadRequest");
    assert_eq!(err["@permanent"], true);
    assert_eq!(
        err["@message"],
        "not supported by kusto-sim: .purge table T records"
    );
    let (status, body) = client.query_v2("db", "T | join (U) on x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["@message"]
            .as_str()
            .unwrap()
            .starts_with("not supported by kusto-sim: | join")
    );
}

#[tokio::test]
async fn hostile_input_never_crashes_the_server() {
    // Not logged to a shared command log: these texts are invalid on purpose.
    let mut config = kusto_sim::Config::new(&["db"], NO_STORAGE);
    config.command_log = None;
    let server = kusto_sim::Server::start(config).await.unwrap();
    let client = Client::new(&server);
    for body in [
        json!("not an object"),
        json!({"db": "db"}),
        json!({"db": 1, "csl": 2}),
    ] {
        let (status, _) = client.post("/v1/rest/mgmt", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    for csl in [
        "",
        ".",
        "['",
        ".create table ['a\\'] (x:long)",
        "T | where",
        "datetime(",
        ".show table ['']",
        ".create table T (a:nosuchtype)",
        "print 1/0, -9223372036854775808 - 1",
        "\u{0}\u{feff}",
    ] {
        let (status, body) = client.mgmt("db", csl).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::OK,
            "{csl}: {status} {body}"
        );
    }
    assert_eq!(client.mgmt("db", ".show tables").await.0, StatusCode::OK);
}

#[tokio::test]
async fn management_results_are_v1_table_0() {
    let server = start(&["db"], NO_STORAGE).await;
    let client = Client::new(&server);
    let (_, body) = client
        .mgmt("db", ".create table T (a:long, b:datetime)")
        .await;
    let t = &body["Tables"][0];
    assert_eq!(t["TableName"], "Table_0");
    assert_eq!(
        t["Columns"][0],
        json!({"ColumnName": "TableName", "DataType": "String", "ColumnType": "string"})
    );
    assert_eq!(body["Tables"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn v2_frames_carry_header_properties_result_and_completion() {
    let server = start(&["db"], NO_STORAGE).await;
    let client = Client::new(&server);
    client.ok("db", ".create table T (a:long, t:datetime, s:timespan, g:guid, d:dynamic, r:real, b:bool, m:decimal)").await;
    client
        .ok("db", ".ingest inline into table T <| 1,2024-01-15T10:00:00.1234567Z,01:02:03,123e27de-1e4e-49d9-b579-fe0b331d3642,\"{\"\"k\"\":[1]}\",0.5,true,1.25")
        .await;
    let (status, body) = client.query_v2("db", "T | where cursor_after('')").await;
    assert_eq!(status, StatusCode::OK);
    let frames = body.as_array().unwrap();
    assert_eq!(frames[0]["FrameType"], "DataSetHeader");
    assert_eq!(frames[0]["Version"], "v2.0");
    assert_eq!(frames.last().unwrap()["FrameType"], "DataSetCompletion");
    assert_eq!(frames.last().unwrap()["HasErrors"], false);
    let props = frames
        .iter()
        .find(|f| f["TableKind"] == "QueryProperties")
        .unwrap();
    assert_eq!(props["TableName"], "@ExtendedProperties");
    let cursor_row = &props["Rows"][0];
    assert_eq!(cursor_row[1], "Cursor");
    let cursor: serde_json::Value = serde_json::from_str(cursor_row[2].as_str().unwrap()).unwrap();
    assert_eq!(
        cursor["Cursor"].as_str().unwrap(),
        server.state().cursor("db").unwrap()
    );
    let primary = frames
        .iter()
        .find(|f| f["TableKind"] == "PrimaryResult")
        .unwrap();
    assert_eq!(
        primary["Rows"][0],
        json!([1, "2024-01-15T10:00:00.1234567Z", "01:02:03", "123e27de-1e4e-49d9-b579-fe0b331d3642", {"k": [1]}, 0.5, true, "1.25"])
    );
    assert!(
        frames
            .iter()
            .any(|f| f["TableKind"] == "QueryCompletionInformation")
    );
}

#[tokio::test]
async fn truncation_is_a_partial_failure_inside_a_200() {
    let server = start(&["db"], NO_STORAGE).await;
    let client = Client::new(&server);
    client.ok("db", ".create table T (a:long)").await;
    client
        .ok("db", ".ingest inline into table T <| 1\n2\n3")
        .await;
    let body =
        json!({"db": "db", "csl": "T", "properties": "{\"Options\":{\"truncationmaxrecords\":2}}"});
    let (status, body) = client.post("/v2/rest/query", body).await;
    assert_eq!(status, StatusCode::OK);
    let frames = body.as_array().unwrap();
    let primary = frames
        .iter()
        .find(|f| f["TableKind"] == "PrimaryResult")
        .unwrap();
    assert_eq!(primary["Rows"].as_array().unwrap().len(), 2);
    let done = frames.last().unwrap();
    assert_eq!(done["HasErrors"], true);
    assert_eq!(done["OneApiErrors"][0]["error"]["code"], "LimitsExceeded");
    assert_eq!(done["OneApiErrors"][0]["error"]["@permanent"], false);

    let body =
        json!({"db": "db", "csl": "T", "properties": {"Options": {"truncationmaxrecords": 2}}});
    let (status, v1) = client.post("/v1/rest/query", body).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        v1["Exceptions"][0]
            .as_str()
            .unwrap()
            .contains("E_QUERY_RESULT_SET_TOO_LARGE")
    );
}

#[tokio::test]
async fn piped_show_commands_answer_like_queries() {
    let server = start(&["db"], NO_STORAGE).await;
    let client = Client::new(&server);
    client.ok("db", ".create table A (a:long)").await;
    client.ok("db", ".create table B (b:long)").await;
    let (status, body) = client
        .mgmt(
            "db",
            ".show tables | where TableName == 'B' | project TableName",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let tables = body["Tables"].as_array().unwrap();
    assert_eq!(tables.len(), 4);
    assert_eq!(tables[0]["Rows"], json!([["B"]]));
    assert_eq!(tables[3]["Rows"][0][1], "QueryResult");
}

#[tokio::test]
async fn commands_are_logged_to_memory_and_file() {
    let log = std::env::temp_dir().join(format!("kusto-sim-log-{}.jsonl", uuid::Uuid::new_v4()));
    let mut config = kusto_sim::Config::new(&["db"], NO_STORAGE);
    config.command_log = Some(log.clone());
    let server = kusto_sim::Server::start(config).await.unwrap();
    let client = Client::new(&server);
    client.mgmt("db", ".show tables").await;
    client.query_v2("db", "print 1").await;
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0],
        json!({"endpoint": "mgmt", "db": "db", "csl": ".show tables"})
    );
    assert_eq!(lines[1]["endpoint"], "query");
    assert_eq!(server.state().commands().len(), 2);
    let _ = std::fs::remove_file(log);
}
