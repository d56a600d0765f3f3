//! A scripted HTTP server on 127.0.0.1:0: answers each request with the next canned response
//! and records what it received, so a client's wire behaviour (paths, headers, bodies, retries)
//! can be checked exactly. When the script runs out it answers 418 with a message saying so,
//! which no client treats as transient, so an unexpected extra request fails the test visibly.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Canned {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json; charset=utf-8",
            body: body.to_string(),
        }
    }

    pub fn text(status: u16, content_type: &'static str, body: &str) -> Self {
        Self {
            status,
            content_type,
            body: body.to_owned(),
        }
    }
}

/// One request as the server saw it; header names are lowercase.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("request body is JSON")
    }
}

#[derive(Default)]
struct Script {
    responses: VecDeque<Canned>,
    requests: Vec<Recorded>,
}

/// The running server; stops when dropped.
pub struct Replay {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Replay {
    pub async fn start(responses: Vec<Canned>) -> Self {
        let script = Arc::new(Mutex::new(Script {
            responses: responses.into(),
            requests: Vec::new(),
        }));
        let shared = script.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let script = shared.clone();
            async move { answer(&script, uri, headers, body) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("replay server");
        });
        Self { addr, script, task }
    }

    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}", self.addr)).expect("loopback URL")
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.script.lock().expect("script lock").requests.clone()
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(script: &Mutex<Script>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut script = script.lock().expect("script lock");
    script.requests.push(Recorded {
        path: uri.path().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let Some(canned) = script.responses.pop_front() else {
        return (
            StatusCode::IM_A_TEAPOT,
            "replay script exhausted: unexpected extra request",
        )
            .into_response();
    };
    let status = StatusCode::from_u16(canned.status).expect("valid status");
    (
        status,
        [(header::CONTENT_TYPE, canned.content_type)],
        canned.body,
    )
        .into_response()
}
