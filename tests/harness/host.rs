//! A Functions host emulator: it starts the built binary the way the Azure Functions host
//! does, and talks to it the way the host does (docs/functions-host.md §host-emulator).
//!
//! - spawn with FUNCTIONS_CUSTOMHANDLER_PORT and friends, cwd = app root, arguments from
//!   host.json; poll `GET /` every 25 ms, any status means ready, give up after 30 s;
//! - invocations shaped like the host's (Data strings JSON-encoded, Metadata numbers as
//!   strings, Id/PopReceipt double-encoded) or like the docs' plain example;
//! - responses judged like the host: non-2xx or a non-JSON body fails the invocation;
//! - a queue-triggered function can be driven from a real Azurite queue: success deletes the
//!   message, failure leaves it for redelivery, and after maxDequeueCount it moves to
//!   `<queue>-poison`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio::process::{Child, Command};

use adx_backup::storage::TaskQueue;

/// The repository root, which is the Functions app root (host.json, functions/).
pub fn app_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path:?}: {e}"))
}

/// A command for a process that runs beside the tests (the app, `run-local`): it is killed when
/// the test thread that started it ends, even if the test binary aborts (a stack overflow does,
/// skipping every drop). Without that, an orphan kept `make test`'s output pipe open and CI
/// waited for it until its time ran out. `setpriv` (util-linux, on every Debian) sets the
/// parent-death signal, which `Command` cannot do without `unsafe`.
pub fn long_lived(executable: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command
        .arg("--pdeathsig")
        .arg("KILL")
        .arg("--")
        .arg(executable)
        .kill_on_drop(true);
    command
}

/// Every `functions/<name>/function.json`, by folder name.
pub fn function_folders() -> Vec<(String, Value)> {
    let mut out: Vec<_> = std::fs::read_dir(app_root().join("functions"))
        .expect("functions/ exists")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("function.json").is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, read_json(&e.path().join("function.json")))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// How the emulator shapes a queue invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// What the real host sends (a capture from Core Tools 4.0.6610).
    Host,
    /// The docs' idealised example: plain numbers and strings.
    Docs,
}

/// The host's verdict on one invocation.
#[derive(Debug)]
pub struct Verdict {
    pub status: u16,
    pub body: Option<Value>,
    pub raw: String,
}

impl Verdict {
    /// The host treats any non-2xx or non-JSON answer as a failed invocation.
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status) && self.body.as_ref().is_some_and(Value::is_object)
    }

    pub fn logs(&self) -> Vec<String> {
        self.body
            .as_ref()
            .and_then(|b| b.get("Logs"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What driving a queue until it is empty did.
#[derive(Debug, Default)]
pub struct DriveReport {
    pub succeeded: usize,
    pub failed_attempts: usize,
    pub poisoned: usize,
    pub logs: Vec<String>,
}

/// A running custom handler, owned like the host owns its worker process.
pub struct FunctionsHost {
    /// Behind a lock so a test can kill the process while invocations are in flight.
    child: std::sync::Mutex<Child>,
    /// Holds the handler's port for as long as the handler lives (see [`reserve_port`]).
    _port: TcpSocket,
    base: String,
    http: reqwest::Client,
    function_timeout: Duration,
    max_dequeue_count: u32,
}

impl FunctionsHost {
    /// Starts the binary cargo built as the handler of this repository's app, with
    /// `settings` as its app settings, and waits until it is ready.
    pub async fn start(settings: &[(String, String)]) -> FunctionsHost {
        Self::start_app(
            &app_root(),
            Path::new(env!("CARGO_BIN_EXE_adx-backup")),
            settings,
        )
        .await
    }

    /// Starts `executable` as the handler of the app at `root` (its host.json, its working
    /// directory), as the host starts a deployed app, and waits until it is ready.
    pub async fn start_app(
        root: &Path,
        executable: &Path,
        settings: &[(String, String)],
    ) -> FunctionsHost {
        let host_json = read_json(&root.join("host.json"));
        let description = &host_json["customHandler"]["description"];
        let args: Vec<String> = description["arguments"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let (reservation, port) = reserve_port();
        let child = long_lived(executable)
            .args(&args)
            .current_dir(root)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env(
                "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
                uuid::Uuid::new_v4().to_string(),
            )
            .env("FUNCTIONS_APP_ROOT_PATH", root)
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", executable.display()));
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let mut host = FunctionsHost {
            child: std::sync::Mutex::new(child),
            _port: reservation,
            base,
            http,
            function_timeout: parse_timespan(
                host_json["functionTimeout"].as_str().unwrap_or("00:05:00"),
            ),
            max_dequeue_count: host_json["extensions"]["queues"]["maxDequeueCount"]
                .as_u64()
                .unwrap_or(5) as u32,
        };
        host.wait_ready().await;
        host
    }

    async fn wait_ready(&mut self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.get_mut().expect("child lock").try_wait() {
                panic!("custom handler exited during start-up: {status}");
            }
            // Any HTTP status, even 404, means ready.
            if self
                .http
                .get(format!("{}/", self.base))
                .send()
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("custom handler did not answer GET / within 30 s");
    }

    /// Kills the handler process at once (SIGKILL), as a crashed or recycled worker dies:
    /// invocations in flight fail, and nothing of them runs further.
    pub fn kill(&self) {
        self.child
            .lock()
            .expect("child lock")
            .start_kill()
            .expect("kill the handler");
    }

    pub async fn get_root(&self) -> reqwest::Response {
        self.http
            .get(format!("{}/", self.base))
            .send()
            .await
            .expect("GET /")
    }

    /// POSTs a raw body to `/<function>` with the host's headers and judges the answer.
    pub async fn post(&self, function: &str, body: Vec<u8>) -> Verdict {
        let sent = self
            .http
            .post(format!("{}/{function}", self.base))
            .header("Content-Type", "application/json; charset=utf-8")
            .header(
                "X-Azure-Functions-InvocationId",
                uuid::Uuid::new_v4().to_string(),
            )
            .header("X-Azure-Functions-HostVersion", "4.1036.1.23224")
            .header("User-Agent", "Azure-Functions-Host/4.1036.1.23224")
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .timeout(self.function_timeout)
            .body(body)
            .send()
            .await;
        match sent {
            Err(e) => Verdict {
                status: 0,
                body: None,
                raw: format!("transport failure: {e}"),
            },
            Ok(resp) => {
                let status = resp.status().as_u16();
                let raw = resp.text().await.unwrap_or_default();
                Verdict {
                    status,
                    body: serde_json::from_str(&raw).ok(),
                    raw,
                }
            }
        }
    }

    /// A timer firing. `last` None is the first run (ScheduleStatus null).
    pub async fn invoke_timer(
        &self,
        function: &str,
        binding: &str,
        last: Option<&str>,
        past_due: bool,
    ) -> Verdict {
        let status = last.map(|l| json!({"Last": l, "Next": l, "LastUpdated": l}));
        let body = json!({
            "Data": { binding: {
                "Schedule": {"AdjustForDST": true},
                "ScheduleStatus": status,
                "IsPastDue": past_due,
            }},
            "Metadata": { "sys": sys(function) },
        });
        self.post(function, body.to_string().into_bytes()).await
    }

    /// A queue message delivered to a queue-triggered function.
    pub async fn invoke_queue(
        &self,
        function: &str,
        binding: &str,
        message: &str,
        dequeue_count: u32,
        shape: Shape,
    ) -> Verdict {
        let id = uuid::Uuid::new_v4().to_string();
        let body = match shape {
            Shape::Host => json!({
                "Data": { binding: serde_json::to_string(message).expect("string") },
                "Metadata": {
                    "DequeueCount": dequeue_count.to_string(),
                    "ExpirationTime": "2026-12-02T10:00:00+00:00",
                    "Id": serde_json::to_string(&id).expect("string"),
                    "InsertionTime": "2026-11-25T10:00:00+00:00",
                    "NextVisibleTime": "2026-11-25T10:10:00+00:00",
                    "PopReceipt": "\"AgAAAAMAAAAAAAAA\"",
                    "sys": sys(function),
                },
            }),
            Shape::Docs => json!({
                "Data": { binding: message },
                "Metadata": { "DequeueCount": dequeue_count, "Id": id, "sys": sys(function) },
            }),
        };
        self.post(function, body.to_string().into_bytes()).await
    }

    /// Works `queue` like the host's queue listener until it stays empty: each message is
    /// invoked; success deletes it, failure makes it visible again, and a message that failed
    /// maxDequeueCount times moves to `<queue>-poison`.
    pub async fn drive_queue(
        &self,
        function: &str,
        binding: &str,
        queue: &TaskQueue,
        poison: &TaskQueue,
    ) -> DriveReport {
        let mut report = DriveReport::default();
        let mut idle_since = Instant::now();
        while idle_since.elapsed() < Duration::from_millis(1500) {
            let batch = queue
                .receive(16, Duration::from_secs(30))
                .await
                .expect("receive");
            if batch.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            idle_since = Instant::now();
            for msg in batch {
                // The host fails a message it cannot base64-decode before invoking anything.
                let (text, succeeded) = match &msg.text {
                    Ok(text) => {
                        let verdict = self
                            .invoke_queue(function, binding, text, msg.dequeue_count, Shape::Host)
                            .await;
                        report.logs.extend(verdict.logs());
                        (text.clone(), verdict.succeeded())
                    }
                    Err(undecodable) => (undecodable.raw.clone(), false),
                };
                if succeeded {
                    report.succeeded += 1;
                    queue
                        .delete(&msg.id, &msg.pop_receipt)
                        .await
                        .expect("delete");
                } else if msg.dequeue_count >= self.max_dequeue_count {
                    report.poisoned += 1;
                    // Like the host, create the poison queue on first use.
                    poison.ensure_exists().await.expect("create poison queue");
                    poison.send(&text, None).await.expect("poison send");
                    queue
                        .delete(&msg.id, &msg.pop_receipt)
                        .await
                        .expect("delete");
                } else {
                    report.failed_attempts += 1;
                    queue
                        .update_visibility(&msg.id, &msg.pop_receipt, Duration::ZERO)
                        .await
                        .expect("release");
                }
            }
        }
        report
    }
}

fn sys(function: &str) -> Value {
    json!({
        "MethodName": function,
        "UtcNow": "2026-11-25T10:05:00.0047Z",
        "RandGuid": uuid::Uuid::new_v4().to_string(),
    })
}

/// A loopback port for the handler, reserved until the returned socket is dropped.
///
/// The socket is bound with SO_REUSEADDR but never listens: Linux then lets the handler
/// (whose listener also sets SO_REUSEADDR, as tokio's does) bind and listen on the same port,
/// while any other bind, including an ephemeral `:0` bind by a parallel test's server, is
/// refused. Binding, dropping and handing the number over would leave a window in which
/// another test could take the port, and the harness would then talk to the wrong server.
fn reserve_port() -> (TcpSocket, u16) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind a loopback port");
    let port = socket.local_addr().expect("bound address").port();
    (socket, port)
}

/// `hh:mm:ss` as in host.json.
fn parse_timespan(s: &str) -> Duration {
    let secs = s
        .split(':')
        .map(|p| p.parse::<u64>().unwrap_or(0))
        .fold(0, |acc, p| acc * 60 + p);
    Duration::from_secs(secs)
}
