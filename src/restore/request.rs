//! The restore request: a versioned JSON message on the restore queue. Version 1 is
//! [`RestoreRequestV1`]; unknown fields and unknown versions are refused with a message that
//! says what is wrong, never guessed at.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, OffsetDateTime};
use url::Url;

use crate::ids::{DatabaseName, Day, JobId, Principal, TableName};

/// The request versions this build understands.
pub const VERSION: u64 = 1;

/// Why a request was refused; recorded in the job's state as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the restore request is not JSON: {0}")]
    NotJson(String),
    #[error("the restore request must be a JSON object with \"version\": {VERSION}")]
    NoVersion,
    #[error("restore request version {0} is unknown; this build understands version {VERSION}")]
    UnknownVersion(String),
    #[error("the restore request is invalid: {0}")]
    Invalid(String),
}

/// A restore request, version 1. Field names are camelCase on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RestoreRequestV1 {
    pub version: u64,
    /// The job's id; default: derived from the queue message's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    #[serde(default)]
    pub source: Source,
    pub target: Target,
    /// Glob patterns (`*`, `?`) over source table names; default every table.
    #[serde(default = "every_table")]
    pub tables: Vec<String>,
    /// Source table → target table.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rename: BTreeMap<TableName, TableName>,
    #[serde(default)]
    pub what: What,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Only artifacts exported at or before this time, and the schema snapshot valid then.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub as_of: Option<OffsetDateTime>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub mode: Mode,
    /// Restore the snapshot's database and table principals; default none, since a target
    /// in another tenant must not get the source's identities.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub principals: bool,
    /// Source principal → target principal (needs `principals`). With it, only the mapped
    /// principals are restored, as their targets; the others are reported. Keys are matched
    /// without regard to case, as Kusto compares principals.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub principal_mapping: BTreeMap<Principal, Principal>,
}

fn every_table() -> Vec<String> {
    vec!["*".to_owned()]
}

/// Where the backup is: this app's backup account, its container and prefix by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Source {
    /// The backed-up database; default: the app's only configured database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Plan from a listing of the backup's parquet files instead of its catalog: for a backup
    /// whose catalog was lost. A listing cannot tell a valid file from one a failed export
    /// left behind, and it knows no row counts, so the report says both.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_listing: bool,
}

/// Where the data goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Target {
    #[serde(with = "url_text")]
    pub cluster_uri: Url,
    pub database: DatabaseName,
    /// The data-management endpoint; default: the cluster's `ingest-` endpoint.
    #[serde(
        default,
        with = "url_text::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub ingest_uri: Option<Url>,
}

impl Target {
    /// The ingest endpoint: as given, or the cluster's own (see [`default_ingest_uri`]).
    pub fn ingest_uri(&self) -> Url {
        self.ingest_uri
            .clone()
            .unwrap_or_else(|| default_ingest_uri(&self.cluster_uri))
    }

    /// Refuses a target whose engine or ingest endpoint is not among `endpoints` (see
    /// [`allowed_endpoints`]): the app sends its own token to both.
    pub fn check_allowed(&self, endpoints: &[Url]) -> Result<(), String> {
        for (what, uri) in [
            ("cluster", self.cluster_uri.clone()),
            ("ingest endpoint", self.ingest_uri()),
        ] {
            if !endpoints.iter().any(|e| same_origin(e, &uri)) {
                return Err(format!(
                    "target {what} {uri} is not one this app restores to: the app would send its own token there. Restores go to the source cluster and to the clusters listed in AdxBackup__RestoreTargets; add the target cluster there to allow it"
                ));
            }
        }
        Ok(())
    }
}

/// `https://ingest-<cluster host>`, the data-management endpoint Kusto pairs with an engine
/// endpoint. A loopback cluster (kusto-sim) serves both on one address.
pub fn default_ingest_uri(cluster: &Url) -> Url {
    let mut uri = cluster.clone();
    if let Some(url::Host::Domain(host)) = cluster.host()
        && host != "localhost"
        && !host.starts_with("ingest-")
    {
        let _ = uri.set_host(Some(&format!("ingest-{host}")));
    }
    uri
}

/// Every endpoint a restore may talk to: each allowed cluster and its ingest endpoint.
pub fn allowed_endpoints(clusters: &[Url]) -> Vec<Url> {
    clusters
        .iter()
        .flat_map(|c| [c.clone(), default_ingest_uri(c)])
        .collect()
}

/// Same scheme, host (case-insensitive) and port: where a token would go.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum What {
    #[default]
    SchemaAndData,
    SchemaOnly,
    DataOnly,
}

impl What {
    pub fn schema(self) -> bool {
        self != What::DataOnly
    }

    pub fn data(self) -> bool {
        self != What::SchemaOnly
    }
}

/// What to do with a target table that already holds rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// Refuse the restore, naming the tables.
    #[default]
    Refuse,
    /// Add the restored rows to what is there.
    Append,
}

/// Data days `from` to `to`, both included (`yyyy-mm-dd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(with = "day_format")]
    pub from: Date,
    #[serde(with = "day_format")]
    pub to: Date,
}

impl Window {
    /// Undated rows (no datetime column, or a null one) belong to no window.
    pub fn contains(&self, day: Day) -> bool {
        day != Day::UNDATED && (self.from..=self.to).contains(&day.date())
    }
}

/// URLs as text (the `url` crate is built without its serde feature).
mod url_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use url::Url;

    pub fn serialize<S: Serializer>(u: &Url, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(u.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
        let text = String::deserialize(d)?;
        Url::parse(&text)
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a URL: {e}")))
    }

    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use url::Url;

        pub fn serialize<S: Serializer>(u: &Option<Url>, s: S) -> Result<S::Ok, S::Error> {
            match u {
                Some(u) => s.serialize_some(u.as_str()),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Url>, D::Error> {
            match Option::<String>::deserialize(d)? {
                Some(text) => Url::parse(&text)
                    .map(Some)
                    .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a URL: {e}"))),
                None => Ok(None),
            }
        }
    }
}

mod day_format {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;
    use time::macros::format_description;

    const FORMAT: &[time::format_description::FormatItem<'static>] =
        format_description!("[year]-[month]-[day]");

    pub fn serialize<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.format(FORMAT).map_err(serde::ser::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let text = String::deserialize(d)?;
        Date::parse(&text, FORMAT)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a yyyy-mm-dd day")))
    }
}

impl RestoreRequestV1 {
    /// Parses a delivered message: its JSON value, or a string holding JSON (a message that
    /// is not JSON reaches the function as a string).
    pub fn from_message(message: &Value) -> Result<Self, RequestError> {
        match message {
            Value::String(text) => Self::parse(text),
            other => Self::from_value(other.clone()),
        }
    }

    pub fn parse(text: &str) -> Result<Self, RequestError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| RequestError::NotJson(e.to_string()))?;
        Self::from_value(value)
    }

    fn from_value(value: Value) -> Result<Self, RequestError> {
        let version = value
            .as_object()
            .and_then(|o| o.get("version"))
            .ok_or(RequestError::NoVersion)?;
        if version.as_u64() != Some(VERSION) {
            return Err(RequestError::UnknownVersion(version.to_string()));
        }
        let request: Self =
            serde_json::from_value(value).map_err(|e| RequestError::Invalid(e.to_string()))?;
        request.validate()?;
        Ok(request)
    }

    fn validate(&self) -> Result<(), RequestError> {
        if let Some(bad) = self.tables.iter().find(|p| !is_table_pattern(p)) {
            return Err(RequestError::Invalid(format!(
                "table pattern {bad:?} may hold only letters, digits, '_', '-', '.', ' ', '*' and '?'"
            )));
        }
        if let Some(container) = &self.source.container
            && !is_container_name(container)
        {
            return Err(RequestError::Invalid(format!(
                "source container {container:?} is not a blob container name (3-63 lowercase letters, digits, single dashes)"
            )));
        }
        if let Some(prefix) = &self.source.prefix
            && prefix
                .split('/')
                .any(|p| p == ".." || p.contains(['\\', '?', '#']))
        {
            return Err(RequestError::Invalid(format!(
                "source prefix {prefix:?} is not a plain folder path"
            )));
        }
        if let Some(w) = &self.window
            && w.from > w.to
        {
            return Err(RequestError::Invalid(format!(
                "window starts on {} after it ends on {}",
                w.from, w.to
            )));
        }
        if !self.principals && !self.principal_mapping.is_empty() {
            return Err(RequestError::Invalid(
                "principalMapping is given but principals is not true: set \"principals\": true to restore the mapped principals".to_owned(),
            ));
        }
        if self.principals && !self.what.schema() {
            return Err(RequestError::Invalid(
                "principals are restored with the schema, and what is dataOnly: use schemaAndData or schemaOnly, or leave principals out".to_owned(),
            ));
        }
        let keys: Vec<&Principal> = self.principal_mapping.keys().collect();
        if let Some((a, b)) = keys
            .iter()
            .enumerate()
            .find_map(|(i, a)| keys[i + 1..].iter().find(|b| a.same_as(b)).map(|b| (a, b)))
        {
            return Err(RequestError::Invalid(format!(
                "principalMapping names {a} and {b}, the same principal to Kusto; keep one"
            )));
        }
        if !matches!(self.target.cluster_uri.scheme(), "http" | "https") {
            return Err(RequestError::Invalid(
                "target.clusterUri must be an http(s) URL".to_owned(),
            ));
        }
        Ok(())
    }

    /// The target name of source table `t`.
    pub fn target_table(&self, t: &TableName) -> TableName {
        self.rename.get(t).cloned().unwrap_or_else(|| t.clone())
    }
}

/// The `jobId` a message asks for, read leniently from a message that is not a valid request.
pub fn job_id_in(message: &Value) -> Option<JobId> {
    let parsed;
    let object = match message {
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text).ok()?;
            &parsed
        }
        other => other,
    };
    JobId::new(object.get("jobId")?.as_str()?).ok()
}

fn is_table_pattern(p: &str) -> bool {
    !p.is_empty()
        && p.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '*' | '?'))
}

fn is_container_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"version":1,"target":{"clusterUri":"https://dr.westeurope.kusto.windows.net","database":"Sales"}}"#;

    #[test]
    fn a_minimal_request_takes_the_defaults() {
        let r = RestoreRequestV1::parse(MINIMAL).unwrap();
        assert_eq!(r.tables, vec!["*"]);
        assert_eq!(r.what, What::SchemaAndData);
        assert_eq!(r.mode, Mode::Refuse);
        assert!(!r.dry_run);
        assert!(!r.source.from_listing);
        assert!(!r.principals && r.principal_mapping.is_empty());
        assert_eq!(
            r.target.ingest_uri().as_str(),
            "https://ingest-dr.westeurope.kusto.windows.net/"
        );
    }

    #[test]
    fn every_field_round_trips() {
        let text = r#"{"version":1,"jobId":"r-1","source":{"database":"Sales","container":"adx-backup","prefix":"backup","fromListing":true},
            "target":{"clusterUri":"https://dr.kusto.windows.net","database":"Sales2","ingestUri":"https://ingest-dr.kusto.windows.net"},
            "tables":["Ord*","Kinds"],"rename":{"Kinds":"Kinds2"},"what":"schemaOnly",
            "window":{"from":"2026-03-01","to":"2026-03-02"},"asOf":"2026-03-03T00:00:00Z","dryRun":true,"mode":"append",
            "principals":true,"principalMapping":{"aadapp=a;src":"aadapp=b;dr"}}"#;
        let r = RestoreRequestV1::parse(text).unwrap();
        assert!(r.principals);
        assert_eq!(r.principal_mapping.len(), 1);
        assert_eq!(r.what, What::SchemaOnly);
        assert_eq!(r.mode, Mode::Append);
        assert!(r.source.from_listing);
        assert_eq!(
            r.target_table(&TableName::new("Kinds").unwrap()).as_str(),
            "Kinds2"
        );
        let again = serde_json::to_string(&r).unwrap();
        assert_eq!(RestoreRequestV1::parse(&again).unwrap(), r);
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (text, want) in [
            ("restore please", "not JSON"),
            ("[1]", "\"version\": 1"),
            (r#"{"target":{}}"#, "\"version\": 1"),
            (r#"{"version":2,"target":{}}"#, "version 2 is unknown"),
            (r#"{"version":"1","target":{}}"#, "version \"1\" is unknown"),
            (
                r#"{"version":1,"target":{"clusterUri":"https://c","database":"S"},"colour":"red"}"#,
                "unknown field `colour`",
            ),
            (
                r#"{"version":1,"target":{"clusterUri":"https://c","database":"S'); .drop table T"}}"#,
                "database",
            ),
            (
                r#"{"version":1,"target":{"clusterUri":"https://c","database":"S"},"tables":["a'b"]}"#,
                "table pattern",
            ),
            (
                r#"{"version":1,"target":{"clusterUri":"https://c","database":"S"},"rename":{"A":"B/../C"}}"#,
                "table",
            ),
            (
                r#"{"version":1,"target":{"clusterUri":"https://c","database":"S"},"source":{"fromListing":"yes"}}"#,
                "expected a boolean",
            ),
            (
                r#"{"version":1,"target":{"clusterUri":"https://c","database":"S"},"source":{"listing":true}}"#,
                "unknown field `listing`",
            ),
            (
                r#"{"version":1,"target":{"clusterUri":"https://c","database":"S"},"source":{"prefix":"../x"}}"#,
                "prefix",
            ),
            (
                r#"{"version":1,"target":{"clusterUri":"https://c","database":"S"},"window":{"from":"2026-03-02","to":"2026-03-01"}}"#,
                "window starts",
            ),
            (
                r#"{"version":1,"target":{"clusterUri":"ftp://c","database":"S"}}"#,
                "http(s)",
            ),
            (
                r#"{"version":1,"target":{"clusterUri":"https://c","database":"S"},"mode":"overwrite"}"#,
                "unknown variant `overwrite`",
            ),
            (
                r#"{"version":1,"target":{"clusterUri":"https://c","database":"S"},"principalMapping":{"aaduser=a@x":"aaduser=b@y"}}"#,
                "principals is not true",
            ),
            (
                r#"{"version":1,"target":{"clusterUri":"https://c","database":"S"},"principals":true,"principalMapping":{"aaduser=a@x":"aaduser=b@y","AADUSER=A@X":"aaduser=c@y"}}"#,
                "the same principal",
            ),
            (
                r#"{"version":1,"target":{"clusterUri":"https://c","database":"S"},"principals":true,"principalMapping":{"aaduser=a@x":"b@y') .drop table T"}}"#,
                "is not `<kind>=<id>",
            ),
            (
                r#"{"version":1,"target":{"clusterUri":"https://c","database":"S"},"principals":true,"what":"dataOnly"}"#,
                "what is dataOnly",
            ),
            (
                r#"{"version":1,"target":{"clusterUri":"https://c","database":"S"},"principals":"yes"}"#,
                "expected a boolean",
            ),
        ] {
            let err = RestoreRequestV1::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn windows_hold_whole_days_and_never_the_undated_one() {
        let w = Window {
            from: time::macros::date!(2026 - 03 - 01),
            to: time::macros::date!(2026 - 03 - 02),
        };
        assert!(w.contains(Day::new(time::macros::date!(2026 - 03 - 02))));
        assert!(!w.contains(Day::new(time::macros::date!(2026 - 03 - 03))));
        assert!(!w.contains(Day::UNDATED));
    }

    #[test]
    fn only_the_source_cluster_and_listed_targets_are_allowed() {
        let url = |s: &str| Url::parse(s).unwrap();
        let endpoints = allowed_endpoints(&[
            url("https://src.westeurope.kusto.windows.net"),
            url("https://dr.northeurope.kusto.windows.net"),
        ]);
        let target = |cluster: &str, ingest: Option<&str>| Target {
            cluster_uri: url(cluster),
            database: DatabaseName::new("Sales").unwrap(),
            ingest_uri: ingest.map(url),
        };
        for ok in [
            target("https://dr.northeurope.kusto.windows.net", None),
            target("https://DR.northeurope.kusto.windows.net:443/", None),
            target(
                "https://src.westeurope.kusto.windows.net",
                Some("https://ingest-src.westeurope.kusto.windows.net"),
            ),
        ] {
            assert_eq!(ok.check_allowed(&endpoints), Ok(()), "{ok:?}");
        }
        for (bad, names) in [
            (target("https://evil.example.com", None), "cluster"),
            (
                target("http://dr.northeurope.kusto.windows.net", None),
                "cluster",
            ),
            (
                target("https://dr.northeurope.kusto.windows.net:8443", None),
                "cluster",
            ),
            (
                target(
                    "https://dr.northeurope.kusto.windows.net",
                    Some("https://collector.example.com"),
                ),
                "ingest endpoint",
            ),
        ] {
            let err = bad.check_allowed(&endpoints).unwrap_err();
            assert!(
                err.contains(names) && err.contains("AdxBackup__RestoreTargets"),
                "{err}"
            );
        }
    }

    #[test]
    fn damaged_requests_are_errors_not_panics_and_a_request_survives_its_job_document() {
        let every_field = r#"{"version":1,"jobId":"r-1","source":{"database":"Sales","container":"adx-backup","prefix":"backup","fromListing":true},
            "target":{"clusterUri":"https://dr.kusto.windows.net","database":"Sales2","ingestUri":"https://ingest-dr.kusto.windows.net"},
            "tables":["Ord*","Kinds"],"rename":{"Kinds":"Kinds2"},"what":"schemaOnly","window":{"from":"2026-03-01","to":"2026-03-02"},
            "asOf":"2026-03-03T00:00:00+01:00","dryRun":true,"mode":"append","principals":true,"principalMapping":{"aadapp=a;src":"aadapp=b;dr"}}"#;
        let samples: [&[u8]; 2] = [MINIMAL.as_bytes(), every_field.as_bytes()];
        crate::mutate::check(0x3e57, &samples, |bytes| {
            let text = String::from_utf8_lossy(bytes);
            let _ = job_id_in(&Value::String(text.to_string()));
            let request = RestoreRequestV1::parse(&text)?;
            let kept = serde_json::to_string(&request).unwrap();
            assert_eq!(RestoreRequestV1::parse(&kept), Ok(request));
            Ok::<_, RequestError>(())
        });
    }
}
