//! What can be checked of infra/ without the Bicep compiler or azd (neither installs here):
//! every setting the binary reads is set by the template or named as left at its default;
//! every function's %settings% are set; every queue a function triggers on is a queue the
//! template creates, with its poison queue, on the account the binding's connection names;
//! every role definition id is the documented built-in one; every resource declaration has a
//! type, an API version and a name; every module file exists; every parameter is used, every
//! module gets exactly the parameters it declares (those without a default at least), every
//! parameter azd sets (main.parameters.json) is one main.bicep declares and every one without a
//! default is set there, and each default of an `@allowed` parameter (in the template and in
//! azd's environment default) is one of its allowed values. Each check also runs on a broken
//! template, which it must reject.

use std::collections::{BTreeMap, BTreeSet};

use adx_backup::settings::{ALL_KEYS, STORAGE_PREFIX};
use serde_json::Value;

use crate::harness::host::{app_root, function_folders};

/// Azure's built-in role definition ids, copied from
/// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
/// (the names in camel case, as rbac.bicep's `roles` keys spell them).
const BUILT_IN_ROLES: &[(&str, &str)] = &[
    (
        "storageBlobDataOwner",
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    ),
    (
        "storageBlobDataContributor",
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    ),
    (
        "storageBlobDataReader",
        "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    ),
    (
        "storageQueueDataContributor",
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    ),
    (
        "storageQueueDataMessageProcessor",
        "8a0f0c08-91a1-4084-bc3d-661d67233fed",
    ),
    (
        "storageQueueDataMessageSender",
        "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
    ),
    (
        "monitoringMetricsPublisher",
        "3913510d-42f4-4e42-8a64-420c390055eb",
    ),
];

/// azd's parameter file, beside the templates.
const PARAMETERS: &str = "main.parameters.json";

/// Every `.bicep` file under infra/ and azd's parameter file, by path relative to infra/.
fn template() -> BTreeMap<String, String> {
    let infra = app_root().join("infra");
    let mut out = BTreeMap::new();
    for dir in [infra.clone(), infra.join("app")] {
        for entry in std::fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "bicep") {
                let rel = path
                    .strip_prefix(&infra)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out.insert(
        PARAMETERS.to_owned(),
        std::fs::read_to_string(infra.join(PARAMETERS)).unwrap(),
    );
    out
}

/// One `param` declaration: its default as written, and its `@allowed` values.
#[derive(Debug)]
struct Param {
    name: String,
    default: Option<String>,
    allowed: Option<Vec<String>>,
}

/// The `param` declarations of a template, with the `@allowed([...])` decorator above each
/// (one-line or one value a line).
fn params(text: &str) -> Vec<Param> {
    let unquote = |v: &str| v.trim().trim_matches('\'').to_owned();
    let mut out = Vec::new();
    let mut allowed: Option<Vec<String>> = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("@allowed([") {
            let mut values: Vec<String> = Vec::new();
            let mut part = rest.to_owned();
            loop {
                let items = part.split("])").next().unwrap_or_default().to_owned();
                values.extend(items.split(',').map(unquote).filter(|v| !v.is_empty()));
                if part.contains("])") {
                    break;
                }
                match lines.next() {
                    Some(next) => part = next.trim().to_owned(),
                    None => break,
                }
            }
            allowed = Some(values);
        } else if let Some(rest) = line.strip_prefix("param ") {
            let (decl, default) = match rest.split_once(" = ") {
                Some((d, v)) => (d, Some(unquote(v))),
                None => (rest, None),
            };
            out.push(Param {
                name: decl
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                default,
                allowed: allowed.take(),
            });
        } else if !line.starts_with('@') {
            allowed = None;
        }
    }
    out
}

/// Per `module` of a template: its file (as written) and the names its `params` block passes.
fn module_params(text: &str) -> Vec<(String, Vec<String>)> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with("module ") {
            continue;
        }
        let path = line.split('\'').nth(1).unwrap_or_default().to_owned();
        let body = lines[i + 1..].iter().take_while(|l| !l.starts_with('}'));
        let mut names = Vec::new();
        let mut params_at = None;
        for l in body {
            match params_at {
                None if l.trim() == "params: {" => params_at = Some(indent(l)),
                Some(at) if indent(l) == at && l.trim().starts_with('}') => break,
                Some(at) if indent(l) == at + 2 => {
                    if let Some((name, _)) = l.trim().split_once(':') {
                        names.push(name.trim().to_owned());
                    }
                }
                _ => {}
            }
        }
        out.push((path, names));
    }
    out
}

/// Whether `name` occurs in `text` as a whole identifier, besides its `param` line.
fn used(text: &str, name: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.lines()
        .filter(|l| !l.trim_start().starts_with("param "))
        .any(|l| {
            l.match_indices(name).any(|(at, _)| {
                let before = l[..at].chars().next_back();
                let after = l[at + name.len()..].chars().next();
                !before.is_some_and(ident) && !after.is_some_and(ident)
            })
        })
}

/// What is wrong with the parameters: unused ones, modules' wiring, azd's file, `@allowed`.
fn param_problems(files: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    let declared: BTreeMap<&String, Vec<Param>> = files
        .iter()
        .filter(|(f, _)| f.ends_with(".bicep"))
        .map(|(f, text)| (f, params(text)))
        .collect();
    for (file, ps) in &declared {
        let text = &files[*file];
        for p in ps {
            if !used(text, &p.name) {
                out.push(format!(
                    "{file}: param {} is declared but never used",
                    p.name
                ));
            }
            if let (Some(d), Some(allowed)) = (&p.default, &p.allowed)
                && !allowed.contains(d)
            {
                out.push(format!(
                    "{file}: param {} defaults to {d}, not one of its @allowed values",
                    p.name
                ));
            }
        }
        for (path, passed) in module_params(text) {
            let rel = std::path::Path::new(file.as_str())
                .parent()
                .unwrap_or(std::path::Path::new(""))
                .join(path.trim_start_matches("./"))
                .to_string_lossy()
                .into_owned();
            let Some(wanted) = declared.get(&rel) else {
                continue;
            };
            for name in &passed {
                if !wanted.iter().any(|p| &p.name == name) {
                    out.push(format!(
                        "{file}: module {path} is passed {name}, which it does not declare"
                    ));
                }
            }
            for p in wanted.iter().filter(|p| p.default.is_none()) {
                if !passed.contains(&p.name) {
                    out.push(format!(
                        "{file}: module {path} needs {}, which is not passed",
                        p.name
                    ));
                }
            }
        }
    }
    let main = declared
        .get(&"main.bicep".to_owned())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let azd: Value = files
        .get(PARAMETERS)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let Some(set) = azd["parameters"].as_object() else {
        out.push(format!("{PARAMETERS} has no parameters"));
        return out;
    };
    for (name, value) in set {
        let Some(p) = main.iter().find(|p| &p.name == name) else {
            out.push(format!(
                "{PARAMETERS} sets {name}, which main.bicep does not declare"
            ));
            continue;
        };
        // `${VAR=default}`: azd's value when the environment does not set VAR.
        let env_default = value["value"]
            .as_str()
            .and_then(|v| v.strip_prefix("${")?.strip_suffix('}')?.split_once('='))
            .map(|(_, d)| d.to_owned());
        if let (Some(d), Some(allowed)) = (env_default, &p.allowed)
            && !allowed.contains(&d)
        {
            out.push(format!(
                "{PARAMETERS} defaults {name} to {d}, not one of its @allowed values"
            ));
        }
    }
    for p in main.iter().filter(|p| p.default.is_none()) {
        if !set.contains_key(&p.name) {
            out.push(format!(
                "main.bicep param {} has no default and {PARAMETERS} does not set it",
                p.name
            ));
        }
    }
    out
}

/// The lines of the block that opens with `head` (e.g. `var appSettings = {`), up to the line
/// that closes it at the same indentation; None for a missing or one-line block.
fn block<'a>(text: &'a str, head: &str) -> Option<Vec<&'a str>> {
    let mut lines = text.lines();
    let open = lines.by_ref().find(|l| l.trim_start().starts_with(head))?;
    if open.trim_end().ends_with([']', '}']) {
        return None;
    }
    let indent = open.len() - open.trim_start().len();
    Some(
        lines
            .take_while(|l| {
                !(l.len() - l.trim_start().len() == indent && l.trim().starts_with([']', '}']))
            })
            .collect(),
    )
}

/// `Key: value` lines of an object block, first level only.
fn object_entries(lines: &[&str]) -> BTreeMap<String, String> {
    let indent = lines
        .iter()
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .filter(|l| l.len() - l.trim_start().len() == indent)
        .filter_map(|l| l.trim().split_once(':'))
        .map(|(k, v)| (k.trim().trim_matches('\'').to_owned(), v.trim().to_owned()))
        .collect()
}

/// The string literals of an array block: `'a'`, or `'${var}-poison'` kept as written.
fn array_items(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `var name = 'literal'` declarations.
fn string_vars(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("var "))
        .filter_map(|l| l.split_once(" = "))
        .filter(|(_, v)| v.starts_with('\'') && v.ends_with('\'') && !v.contains("${"))
        .map(|(k, v)| (k.trim().to_owned(), v.trim_matches('\'').to_owned()))
        .collect()
}

fn bound_setting(value: &str) -> Option<&str> {
    value.strip_prefix('%')?.strip_suffix('%')
}

/// Every problem found, in words; empty when the template is in step with the code.
fn problems(
    files: &BTreeMap<String, String>,
    keys: &[&str],
    functions: &[(String, Value)],
) -> Vec<String> {
    let mut out = Vec::new();
    let main = files
        .get("main.bicep")
        .map(String::as_str)
        .unwrap_or_default();
    let settings = block(main, "var appSettings = {")
        .map(|b| object_entries(&b))
        .unwrap_or_default();
    let defaults: BTreeSet<String> = block(main, "var settingsLeftAtDefault = [")
        .map(|b| {
            array_items(&b)
                .into_iter()
                .map(|s| s.trim_matches('\'').to_owned())
                .collect()
        })
        .unwrap_or_default();
    let queues: Vec<String> = block(main, "var backupQueues = [")
        .map(|b| array_items(&b))
        .or_else(|| {
            main.lines()
                .find_map(|l| l.trim().strip_prefix("var backupQueues = ["))
                .map(|rest| {
                    rest.trim_end_matches(']')
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .collect()
                })
        })
        .unwrap_or_default();
    let vars = string_vars(main);
    if settings.is_empty() {
        out.push("main.bicep has no `var appSettings = {` block".to_owned());
    }

    for key in keys {
        match (settings.contains_key(*key), defaults.contains(*key)) {
            (false, false) => out.push(format!(
                "{key} is read by the binary but neither set in appSettings nor listed in settingsLeftAtDefault"
            )),
            (true, true) => out.push(format!("{key} is both set and listed as left at its default")),
            _ => {}
        }
    }
    for key in &defaults {
        if !keys.contains(&key.as_str()) {
            out.push(format!(
                "settingsLeftAtDefault names {key}, which the binary does not read"
            ));
        }
    }
    for suffix in [
        "blobServiceUri",
        "queueServiceUri",
        "credential",
        "clientId",
    ] {
        let key = format!("{STORAGE_PREFIX}__{suffix}");
        if !settings.contains_key(&key) {
            out.push(format!("the identity-based connection {key} is not set"));
        }
    }

    for (name, json) in functions {
        for binding in json["bindings"].as_array().into_iter().flatten() {
            for value in binding
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, v)| v.as_str())
            {
                if let Some(setting) = bound_setting(value)
                    && !settings.contains_key(setting)
                {
                    out.push(format!(
                        "functions/{name} binds %{setting}%, which the template does not set"
                    ));
                }
            }
            if binding["type"] != "queueTrigger" {
                continue;
            }
            if binding["connection"] != STORAGE_PREFIX {
                out.push(format!(
                    "functions/{name} triggers on connection {}, not {STORAGE_PREFIX}",
                    binding["connection"]
                ));
            }
            let queue = binding["queueName"].as_str().unwrap_or_default();
            let Some(var) = bound_setting(queue).and_then(|s| settings.get(s)) else {
                out.push(format!(
                    "functions/{name}: queue {queue} is not an app setting of the template"
                ));
                continue;
            };
            if !vars.contains_key(var) {
                out.push(format!(
                    "functions/{name}: its queue setting is {var}, not a `var {var} = '<name>'`"
                ));
            }
            for wanted in [var.clone(), format!("'${{{var}}}-poison'")] {
                if !queues.contains(&wanted) {
                    out.push(format!("functions/{name}: backupQueues lacks {wanted}"));
                }
            }
        }
    }

    let known: BTreeMap<&str, &str> = BUILT_IN_ROLES.iter().copied().collect();
    let mut role_count = 0;
    for (file, text) in files {
        if let Some(roles) = block(text, "var roles = {") {
            for (role, id) in object_entries(&roles) {
                role_count += 1;
                let id = id.trim_matches('\'');
                match known.get(role.as_str()) {
                    Some(doc) if *doc == id => {}
                    Some(doc) => {
                        out.push(format!("{file}: role {role} is {id}, documented as {doc}"))
                    }
                    None => out.push(format!("{file}: role {role} is not in the documented list")),
                }
            }
        }
        if text.contains("roleDefinitions', '") {
            out.push(format!(
                "{file}: a role definition id written inline; name it in `var roles`"
            ));
        }
        out.extend(resource_problems(file, text));
        for line in text
            .lines()
            .filter(|l| l.trim_start().starts_with("module "))
        {
            let path = line.split('\'').nth(1).unwrap_or_default();
            let rel = path.trim_start_matches("./");
            let resolved = std::path::Path::new(file)
                .parent()
                .unwrap_or(std::path::Path::new(""))
                .join(rel);
            if !files.contains_key(&resolved.to_string_lossy().into_owned()) {
                out.push(format!("{file}: module {path} does not exist"));
            }
        }
    }
    if role_count == 0 {
        out.push("no `var roles = {` block names the role definitions".to_owned());
    }
    out.extend(param_problems(files));
    out
}

/// `resource sym 'Provider/type@yyyy-mm-dd[-preview]' [existing] = ...`: a type, an API
/// version, and a `name:` in the body.
fn resource_problems(file: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("resource ") else {
            continue;
        };
        let sym = rest.split_whitespace().next().unwrap_or_default();
        let Some((ty, version)) = rest.split('\'').nth(1).and_then(|t| t.split_once('@')) else {
            out.push(format!("{file}: resource {sym} has no 'type@apiVersion'"));
            continue;
        };
        let date = version.strip_suffix("-preview").unwrap_or(version);
        let ok_date = date.len() == 10
            && date.chars().enumerate().all(|(k, c)| {
                if k == 4 || k == 7 {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }
            });
        if !ok_date {
            out.push(format!(
                "{file}: resource {sym} has API version {version:?}, not yyyy-mm-dd[-preview]"
            ));
        }
        if !ty.contains('/') || !ty.starts_with("Microsoft.") {
            out.push(format!(
                "{file}: resource {sym} has type {ty:?}, not Microsoft.<provider>/<type>"
            ));
        }
        let body_has_name = lines[i + 1..]
            .iter()
            .take_while(|l| !(l.starts_with('}') || l.starts_with(']')))
            .any(|l| l.trim_start().starts_with("name:"));
        if !body_has_name {
            out.push(format!("{file}: resource {sym} has no name"));
        }
    }
    out
}

#[test]
fn the_template_sets_every_setting_queue_and_role_the_code_needs() {
    let problems = problems(&template(), ALL_KEYS, &function_folders());
    assert!(
        problems.is_empty(),
        "infra/ is out of step with the code:\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_broken_template_is_rejected_for_each_fault() {
    let main = r#"
var taskQueue = 'adxbackup-tasks'
var backupQueues = [taskQueue]
resource rg 'Microsoft.Resources/resourceGroups' = {
  name: 'rg'
}
resource plan 'Microsoft.Web/serverfarms@latest' = {
  location: 'x'
}
module app './app/missing.bicep' = {
  name: 'app'
}
var appSettings = {
  AdxBackup__TaskQueue: taskQueue
  BackupStorage__blobServiceUri: 'https://x'
}
var settingsLeftAtDefault = [
  'AdxBackup__TaskQueue'
  'AdxBackup__NotRead'
]
@allowed([
  'Standard_ZRS'
  'Standard_GZRS'
])
param redundancy string = 'Standard_LRS'
param unused string = 'x'
param required string
module storage './app/storage.bicep' = {
  name: 'storage'
  params: {
    redundancy: redundancy
    extra: required
  }
}
"#;
    let storage = r#"
param redundancy string
param needed int
resource x 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'x'
  sku: { name: redundancy }
  properties: { n: needed }
}
"#;
    let azd = r#"{"parameters": {
  "redundancy": { "value": "${X_REDUNDANCY=Standard_LRS}" },
  "unknown": { "value": "1" }
}}"#;
    let rbac = r#"
var roles = {
  storageBlobDataOwner: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  madeUpRole: '00000000-0000-0000-0000-000000000000'
}
resource r 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: 'r'
  properties: { roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b') }
}
"#;
    let files = BTreeMap::from([
        ("main.bicep".to_owned(), main.to_owned()),
        ("app/rbac.bicep".to_owned(), rbac.to_owned()),
        ("app/storage.bicep".to_owned(), storage.to_owned()),
        (PARAMETERS.to_owned(), azd.to_owned()),
    ]);
    let functions = vec![
        (
            "tasks".to_owned(),
            serde_json::json!({"bindings": [{"type": "queueTrigger", "name": "task",
                "queueName": "%AdxBackup__TaskQueue%", "connection": "BackupStorage"}]}),
        ),
        (
            "protect".to_owned(),
            serde_json::json!({"bindings": [{"type": "timerTrigger", "name": "timer",
                "schedule": "%AdxBackup__ProtectSchedule%"}]}),
        ),
        (
            "restore".to_owned(),
            serde_json::json!({"bindings": [{"type": "queueTrigger", "name": "request",
                "queueName": "%AdxBackup__RestoreQueue%", "connection": "AzureWebJobsStorage"}]}),
        ),
    ];
    let found = problems(
        &files,
        &["AdxBackup__TaskQueue", "AdxBackup__Databases"],
        &functions,
    )
    .join("\n");
    for expected in [
        "AdxBackup__Databases is read by the binary but neither set",
        "AdxBackup__TaskQueue is both set and listed as left at its default",
        "settingsLeftAtDefault names AdxBackup__NotRead",
        "BackupStorage__queueServiceUri is not set",
        "functions/protect binds %AdxBackup__ProtectSchedule%",
        "functions/tasks: backupQueues lacks '${taskQueue}-poison'",
        "functions/restore triggers on connection \"AzureWebJobsStorage\"",
        "functions/restore: queue %AdxBackup__RestoreQueue% is not an app setting",
        "role storageBlobDataOwner is ba92f5b4-2d11-453d-a403-e96b0029c9fe, documented as b7e6dc6d",
        "role madeUpRole is not in the documented list",
        "a role definition id written inline",
        "resource rg has no 'type@apiVersion'",
        "resource plan has API version \"latest\"",
        "resource plan has no name",
        "module ./app/missing.bicep does not exist",
        "param unused is declared but never used",
        "param redundancy defaults to Standard_LRS, not one of its @allowed values",
        "module ./app/storage.bicep is passed extra, which it does not declare",
        "module ./app/storage.bicep needs needed, which is not passed",
        "main.parameters.json defaults redundancy to Standard_LRS, not one of its @allowed values",
        "main.parameters.json sets unknown, which main.bicep does not declare",
        "main.bicep param required has no default and main.parameters.json does not set it",
    ] {
        assert!(
            found.contains(expected),
            "missing {expected:?} in:\n{found}"
        );
    }
}
