//! Shared test plumbing: start a server, talk to it like a Kusto client, find Azurite.

use std::io::Write;

use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use kusto_sim::{Config, Server};

/// Azurite's blob endpoint from `AZURITE_BLOB_ENDPOINT`. Unset: with
/// `KUSTO_SIM_REQUIRE_AZURITE=1` (set by `make test`) the test fails; otherwise it is skipped
/// with a `SKIPPED` line naming it, so a bare `cargo test` says what it did not run.
pub fn azurite() -> Option<String> {
    endpoint("AZURITE_BLOB_ENDPOINT")
}

/// Azurite's queue endpoint from `AZURITE_QUEUE_ENDPOINT`, under the same rule as
/// [`azurite`].
pub fn azurite_queues() -> Option<String> {
    endpoint("AZURITE_QUEUE_ENDPOINT")
}

fn endpoint(variable: &str) -> Option<String> {
    if let Some(endpoint) = std::env::var(variable).ok().filter(|e| !e.is_empty()) {
        return Some(endpoint.trim_end_matches('/').to_string());
    }
    assert!(
        std::env::var("KUSTO_SIM_REQUIRE_AZURITE").as_deref() != Ok("1"),
        "{variable} is not set and KUSTO_SIM_REQUIRE_AZURITE=1: this test needs Azurite"
    );
    let test = std::thread::current()
        .name()
        .unwrap_or("a kusto-sim test")
        .to_owned();
    // Written past libtest's capture (which takes only the print macros), so the skip shows
    // in a plain `cargo test` run among the `ok` lines.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs Azurite; set {variable} (make test does)"
    );
    None
}

/// A server with the given databases, storage at `endpoint`, and no scheduled runs.
pub async fn start(databases: &[&str], endpoint: &str) -> Server {
    Server::start(config(databases, endpoint))
        .await
        .expect("start kusto-sim")
}

/// The configuration every test server starts from: no scheduled runs, and, when
/// `KUSTO_SIM_COMMAND_LOG_DIR` is set (`make test` sets it), a command log of its own there,
/// so Microsoft's parser checks every text these tests got kusto-sim to accept.
pub fn config(databases: &[&str], endpoint: &str) -> Config {
    let mut config = Config::new(databases, endpoint);
    config.scheduler_tick = None;
    if let Some(dir) = std::env::var_os("KUSTO_SIM_COMMAND_LOG_DIR") {
        let name = format!("sim-{}.jsonl", uuid::Uuid::new_v4().simple());
        config.command_log = Some(std::path::PathBuf::from(dir).join(name));
    }
    config
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    pub token: Option<String>,
}

impl Client {
    pub fn new(server: &Server) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: server.url(),
            token: Some("test-token".into()),
        }
    }

    pub async fn post(&self, path: &str, body: Json) -> (StatusCode, Json) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Json::String(text)),
        )
    }

    pub async fn mgmt(&self, db: &str, csl: &str) -> (StatusCode, Json) {
        self.post("/v1/rest/mgmt", json!({"db": db, "csl": csl}))
            .await
    }

    /// A management command that must succeed; returns its `Table_0`.
    pub async fn ok(&self, db: &str, csl: &str) -> Table {
        let (status, body) = self.mgmt(db, csl).await;
        assert_eq!(status, StatusCode::OK, "{csl}: {body}");
        Table::v1(&body["Tables"][0])
    }

    pub async fn query_v2(&self, db: &str, csl: &str) -> (StatusCode, Json) {
        self.post(
            "/v2/rest/query",
            json!({"db": db, "csl": csl, "properties": {"Options": {}}}),
        )
        .await
    }

    /// A V2 query that must succeed; returns its PrimaryResult.
    pub async fn query(&self, db: &str, csl: &str) -> Table {
        let (status, body) = self.query_v2(db, csl).await;
        assert_eq!(status, StatusCode::OK, "{csl}: {body}");
        let frames = body.as_array().expect("frames");
        let primary = frames
            .iter()
            .find(|f| f["TableKind"] == "PrimaryResult")
            .expect("PrimaryResult frame");
        Table::v2(primary)
    }
}

/// A decoded result table: column (name, type) pairs and JSON rows.
#[derive(Debug)]
pub struct Table {
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<Json>>,
}

impl Table {
    fn v1(t: &Json) -> Self {
        Self::decode(t)
    }

    fn v2(t: &Json) -> Self {
        Self::decode(t)
    }

    fn decode(t: &Json) -> Self {
        let columns = t["Columns"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| {
                (
                    c["ColumnName"].as_str().unwrap_or_default().to_string(),
                    c["ColumnType"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let rows = t["Rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r.as_array().cloned().unwrap_or_default())
            .collect();
        Self { columns, rows }
    }

    /// `"Name:type, ..."`, to compare with a documented schema.
    pub fn schema(&self) -> String {
        self.columns
            .iter()
            .map(|(n, t)| format!("{n}:{t}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn col(&self, name: &str) -> usize {
        self.columns
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no column {name} in {}", self.schema()))
    }

    pub fn cell(&self, row: usize, name: &str) -> &Json {
        &self.rows[row][self.col(name)]
    }

    pub fn single_long(&self) -> i64 {
        self.rows[0][0].as_i64().expect("a long")
    }
}

/// A fresh container on Azurite for one test, returning its URL.
pub async fn container(server: &Server, endpoint: &str, name: &str) -> String {
    let url = format!("{endpoint}/{name}-{}", uuid::Uuid::new_v4().simple());
    server
        .state()
        .ensure_container(&url)
        .await
        .expect("create container");
    url
}
