//! The custom handler as the Functions host sees it: the function folders agree with the
//! routes and settings, `serve` starts with nothing but local.settings.json.example in its
//! environment (no Kusto or storage reachable), answers readiness, and turns bad requests into
//! clear errors without dying.

use std::collections::BTreeSet;

use adx_backup::handler::functions::{Function, Trigger};
use adx_backup::settings::{ALL_KEYS, STORAGE_PREFIX};
use serde_json::Value;

use crate::harness::host::{FunctionsHost, app_root, function_folders, read_json};

/// The example's values, as the host would pass them.
pub fn example_settings() -> Vec<(String, String)> {
    let example = read_json(&app_root().join("local.settings.json.example"));
    example["Values"]
        .as_object()
        .expect("Values")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// Settings a function.json names as `%Setting%`.
fn referenced_settings(json: &Value) -> Vec<String> {
    let text = json.to_string();
    text.split('%')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn function_folders_match_the_routes() {
    let folders = function_folders();
    let names: BTreeSet<_> = folders.iter().map(|(n, _)| n.as_str()).collect();
    let routes: BTreeSet<_> = Function::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(
        names, routes,
        "functions/ folders and handler routes differ"
    );
    for (name, json) in &folders {
        let function = Function::from_name(name).expect("route");
        let bindings = json["bindings"].as_array().expect("bindings");
        let trigger = bindings
            .iter()
            .find(|b| b["direction"] == "in")
            .expect("trigger binding");
        assert_eq!(trigger["name"], function.binding(), "{name}: binding name");
        let (want_type, want_connection) = match function.trigger() {
            Trigger::Timer => ("timerTrigger", None),
            Trigger::Queue => ("queueTrigger", Some(STORAGE_PREFIX)),
            Trigger::Http => ("httpTrigger", None),
        };
        if function.trigger() == Trigger::Http {
            assert_eq!(
                trigger["authLevel"], "function",
                "{name}: needs a function key"
            );
            let out = bindings.iter().find(|b| b["direction"] == "out");
            assert_eq!(
                out.map(|b| (&b["type"], &b["name"])),
                Some((&Value::from("http"), &Value::from("res"))),
                "{name}: the handler answers through the `res` output binding"
            );
        }
        assert_eq!(trigger["type"], want_type, "{name}: trigger type");
        if let Some(conn) = want_connection {
            assert_eq!(
                trigger["connection"], conn,
                "{name}: queue connection prefix"
            );
        }
    }
    let host = read_json(&app_root().join("host.json"));
    assert_eq!(
        host["customHandler"]["description"]["arguments"],
        serde_json::json!(["serve"])
    );
    assert_eq!(host["extensions"]["queues"]["messageEncoding"], "base64");
    assert_eq!(
        host["extensions"]["queues"]["maxDequeueCount"].as_u64(),
        Some(adx_backup::task::MAX_DEQUEUE_COUNT),
        "the handler's last-delivery logic must match the host's poison threshold"
    );
}

#[test]
fn settings_example_readme_and_code_agree() {
    let example: BTreeSet<String> = example_settings().into_iter().map(|(k, _)| k).collect();
    let host_only = ["FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"];
    let code: BTreeSet<String> = ALL_KEYS.iter().map(|k| k.to_string()).collect();
    let example_app: BTreeSet<String> = example
        .iter()
        .filter(|k| !host_only.contains(&k.as_str()))
        .cloned()
        .collect();
    assert_eq!(
        example_app, code,
        "local.settings.json.example and settings::ALL_KEYS differ"
    );
    for (name, json) in function_folders() {
        for key in referenced_settings(&json) {
            assert!(
                example.contains(&key),
                "functions/{name} reads {key}, missing from the example"
            );
        }
    }
    let readme = std::fs::read_to_string(app_root().join("README.md")).expect("README");
    for key in ALL_KEYS {
        assert!(
            readme.contains(&format!("`{key}")),
            "README's settings table lacks {key}"
        );
    }
}

#[tokio::test]
async fn serve_starts_with_the_example_settings_and_survives_bad_requests() {
    let host = FunctionsHost::start(&example_settings()).await;
    assert_eq!(host.get_root().await.status(), 200);

    let unknown = host
        .post("no-such-function", br#"{"Data":{},"Metadata":{}}"#.to_vec())
        .await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.raw.contains("no-such-function"), "{}", unknown.raw);

    for body in [&b"not json"[..], b"[]", br#"{"Metadata":{}}"#, b""] {
        let verdict = host.post("tasks", body.to_vec()).await;
        assert!(!verdict.succeeded());
        assert_eq!(verdict.status, 400, "{}", verdict.raw);
        assert!(
            verdict.body.is_some(),
            "error bodies are JSON: {}",
            verdict.raw
        );
    }
    let wrong_binding = host
        .post("tasks", br#"{"Data":{"queue":"x"},"Metadata":{}}"#.to_vec())
        .await;
    assert_eq!(wrong_binding.status, 500);
    let error = wrong_binding.body.as_ref().map(|b| b["error"].clone());
    assert!(
        error
            .as_ref()
            .and_then(|e| e.as_str())
            .is_some_and(|e| e.ends_with(r#"no binding named "task" in Data (found: queue)"#)),
        "{}",
        wrong_binding.raw
    );

    let malformed_task = host
        .invoke_queue(
            "tasks",
            "task",
            r#"{"kind":"NoSuchTaskV1"}"#,
            1,
            crate::harness::host::Shape::Host,
        )
        .await;
    assert!(!malformed_task.succeeded());
    let error = malformed_task.body.as_ref().map(|b| b["error"].clone());
    assert!(
        error.as_ref().and_then(|e| e.as_str()).is_some_and(|e| e
            .contains("is not a task this version understands: unknown variant `NoSuchTaskV1`")),
        "{}",
        malformed_task.raw
    );

    assert_eq!(
        host.get_root().await.status(),
        200,
        "still serving after bad requests"
    );
}
