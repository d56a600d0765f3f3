//! Continuous export definitions and their run history.

use serde_json::json;
use uuid::Uuid;

use crate::parse::command::Props;
use crate::table::ResultTable;
use crate::value::Value;
use crate::value::temporal::TICKS_PER_DAY;

pub const SHOW_SCHEMA: &str = "(Name: string, ExternalTableName: string, Query: string, ForcedLatency: timespan, IntervalBetweenRuns: timespan, CursorScopedTables: string, ExportProperties: string, LastRunTime: datetime, StartCursor: string, IsDisabled: bool, LastRunResult: string, ExportedTo: datetime, IsRunning: bool)";
/// The grammar's four columns plus `SizeInBytes`, which the docs' sample output shows.
pub const ARTIFACTS_SCHEMA: &str = "(Timestamp: datetime, ExternalTableName: string, Path: string, NumRecords: long, SizeInBytes: long)";
pub const FAILURES_SCHEMA: &str = "(Timestamp: datetime, OperationId: string, Name: string, LastSuccessRun: datetime, FailureKind: string, Details: string)";
/// Exported artifacts and failures are kept 14 days (the two commands' pages).
pub const RETENTION: i64 = 14 * TICKS_PER_DAY;

#[derive(Debug, Clone)]
pub struct ContinuousExport {
    pub name: String,
    pub external_table: String,
    pub query: String,
    pub over: Vec<String>,
    pub interval: i64,
    pub forced_latency: i64,
    pub props: Props,
    pub is_disabled: bool,
    /// Set by the first run; rows at or before it are never exported by this export.
    pub start_cursor: Option<u64>,
    /// Upper cursor of the last successful run.
    pub last_cursor: Option<u64>,
    pub last_run_time: Option<i64>,
    pub last_run_result: Option<&'static str>,
    pub last_success: Option<i64>,
    pub exported_to: Option<i64>,
    pub is_running: bool,
    pub artifacts: Vec<Artifact>,
    pub failures: Vec<ExportFailure>,
}

#[derive(Debug, Clone)]
pub struct Artifact {
    pub timestamp: i64,
    /// Listed with a null Timestamp (a fault); `timestamp` still ages it out.
    pub timestamp_missing: bool,
    pub external_table: String,
    pub path: String,
    pub num_records: u64,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct ExportFailure {
    pub timestamp: i64,
    pub operation_id: Uuid,
    pub details: String,
}

impl ContinuousExport {
    /// `ExportProperties`: the `with` properties other than the scheduling ones, as JSON.
    fn export_properties(&self) -> String {
        let mut map = serde_json::Map::new();
        for (k, v) in &self.props.0 {
            if k == "intervalbetweenruns" || k == "forcedlatency" {
                continue;
            }
            map.insert(pascal_case(k), v.to_json());
        }
        serde_json::Value::Object(map).to_string()
    }

    pub fn push_row(&self, out: &mut ResultTable) {
        let opt_time = |t: Option<i64>| t.map_or(Value::Null, Value::DateTime);
        out.push(vec![
            Value::String(self.name.clone()),
            Value::String(self.external_table.clone()),
            Value::String(self.query.clone()),
            Value::TimeSpan(self.forced_latency),
            Value::TimeSpan(self.interval),
            Value::String(json!(self.over).to_string()),
            Value::String(self.export_properties()),
            opt_time(self.last_run_time),
            Value::String(self.start_cursor.map(|c| c.to_string()).unwrap_or_default()),
            Value::Bool(self.is_disabled),
            Value::String(self.last_run_result.unwrap_or_default().to_string()),
            opt_time(self.exported_to),
            Value::Bool(self.is_running),
        ]);
    }

    /// The artifacts younger than 14 days at `now`.
    pub fn artifacts_table(&self, now: i64) -> ResultTable {
        let mut out = ResultTable::with_schema(ARTIFACTS_SCHEMA);
        for a in self
            .artifacts
            .iter()
            .filter(|a| now - a.timestamp < RETENTION)
        {
            out.push(vec![
                if a.timestamp_missing {
                    Value::Null
                } else {
                    Value::DateTime(a.timestamp)
                },
                Value::String(a.external_table.clone()),
                Value::String(a.path.clone()),
                Value::Long(a.num_records as i64),
                Value::Long(a.size as i64),
            ]);
        }
        out
    }

    /// The failures younger than 14 days at `now`.
    pub fn failures_table(&self, now: i64) -> ResultTable {
        let mut out = ResultTable::with_schema(FAILURES_SCHEMA);
        for f in self
            .failures
            .iter()
            .filter(|f| now - f.timestamp < RETENTION)
        {
            out.push(vec![
                Value::DateTime(f.timestamp),
                Value::String(f.operation_id.to_string()),
                Value::String(self.name.clone()),
                self.last_success.map_or(Value::Null, Value::DateTime),
                Value::String("Failure".into()),
                Value::String(f.details.clone()),
            ]);
        }
        out
    }
}

/// Kusto reports property names in PascalCase (`sizeLimit` → `SizeLimit`); the parsed
/// names are lower-cased, so known names are mapped back.
fn pascal_case(lower: &str) -> String {
    const KNOWN: &[&str] = &[
        "SizeLimit",
        "Distributed",
        "Distribution",
        "DistributionKind",
        "ParquetRowGroupSize",
        "IsDisabled",
        "ManagedIdentity",
    ];
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(lower))
        .map_or_else(|| lower.to_string(), |k| (*k).to_string())
}
