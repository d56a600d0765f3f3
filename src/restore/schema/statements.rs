//! The statements of a schema snapshot, taken apart.
//!
//! protect stores the rows of `.show database D schema as csl script` one per line. Per
//! Microsoft's docs the script holds the commands that create the tables, set the database,
//! table and column policies, create or alter the functions, and (by default) the tables'
//! ingestion mappings
//! (<https://learn.microsoft.com/en-us/kusto/management/show-schema-database#show-database-schema-as-csl-script>),
//! and with `IncludeSecuritySettings` (which protect sets) the database's and tables'
//! principals, row-level security and restricted view access. The docs do not show how a
//! principal's line reads, so any form of the documented `.add database|table X <role>
//! (<principals>) [skip-results] ['notes']` is read
//! (<https://learn.microsoft.com/en-us/kusto/management/manage-database-security-roles>).
//! A function body keeps its line breaks, so a statement is a line starting with `.` outside
//! any bracket, string or comment, up to the next one.
//!
//! Each statement becomes a typed [`Statement`]; one this build cannot read becomes
//! [`Statement::Other`] with the reason, so the restore can report it instead of dropping it.

use std::time::Duration;

use super::{Parser, TableSchema, parse_table};
use crate::ids::{Principal, TableName, ViewName};
use crate::kusto::command::{
    DataFormat, DatabaseRole, FunctionSpec, KqlCode, MappingKind, MaterializedViewSpec, Property,
    PropertyValue, StorageExternalTableSpec, TableRole,
};

/// One statement of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Table(TableSchema),
    /// `.alter table T policy ingestiontime true`: the restore sets it on every table anyway.
    IngestionTime,
    Retention {
        table: TableName,
        /// None: keep the data forever.
        soft_delete: Option<Duration>,
        recoverability: bool,
    },
    Caching {
        table: TableName,
        hot: Duration,
    },
    Mapping {
        table: TableName,
        kind: MappingKind,
        name: String,
        mapping: serde_json::Value,
    },
    Function(FunctionSpec),
    /// The entries of a table's update policy, as JSON objects.
    UpdatePolicy {
        table: TableName,
        entries: Vec<serde_json::Value>,
    },
    /// `.alter table T policy row_level_security enable|disable "<query>"`.
    RowLevelSecurity {
        table: TableName,
        enabled: bool,
        query: KqlCode,
    },
    /// `.alter table T policy restricted_view_access true|false`.
    RestrictedViewAccess {
        table: TableName,
        enabled: bool,
    },
    /// `.create[-or-alter] [async] [ifnotexists] materialized-view [with (...)] V on table T
    /// { query }`.
    MaterializedView {
        name: String,
        /// Its source table, when the statement could be read that far.
        source: Option<TableName>,
        /// The definition, or why this build does not re-create the view.
        view: Result<MaterializedViewSpec, String>,
    },
    /// `.create[-or-alter] external table E (...) kind = storage ...`.
    ExternalTable {
        name: String,
        /// The definition, or why this build does not re-create the table.
        table: Result<StorageExternalTableSpec, String>,
    },
    ContinuousExport {
        name: String,
    },
    /// `.add database D <role> (...) ['notes']`: principals of the (source) database.
    DatabasePrincipals {
        role: DatabaseRole,
        principals: Vec<Principal>,
        notes: String,
    },
    /// `.add table T <role> (...) ['notes']`.
    TablePrincipals {
        table: TableName,
        role: TableRole,
        principals: Vec<Principal>,
        notes: String,
    },
    /// A statement the restore does not apply: its text (first line) and why.
    Other {
        table: Option<TableName>,
        text: String,
        why: String,
    },
}

/// Every statement of `script`. Only a table this build cannot read is an error (the data
/// could not go anywhere); anything else unreadable is [`Statement::Other`].
pub fn statements(script: &str) -> Result<Vec<Statement>, String> {
    split(script).iter().map(|s| statement(s)).collect()
}

/// The script cut into statements (see the module doc).
fn split(script: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut depth = Depth::default();
    for line in script.lines() {
        let starts = depth.is_top() && line.trim_start().starts_with('.');
        match out.last_mut() {
            Some(current) if !starts => {
                current.push('\n');
                current.push_str(line);
            }
            _ if line.trim().is_empty() => continue,
            _ => out.push(line.to_owned()),
        }
        depth.feed(line);
    }
    out
}

/// Open brackets and multi-line strings carried from one line to the next.
#[derive(Default)]
struct Depth {
    brackets: i64,
    fence: Option<char>,
}

impl Depth {
    fn is_top(&self) -> bool {
        self.brackets <= 0 && self.fence.is_none()
    }

    fn feed(&mut self, line: &str) {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if let Some(f) = self.fence {
                if chars[i..].starts_with(&[f, f, f]) {
                    self.fence = None;
                    i += 3;
                } else {
                    i += 1;
                }
                continue;
            }
            match c {
                '/' if chars.get(i + 1) == Some(&'/') => return,
                '`' | '~' if chars[i..].starts_with(&[c, c, c]) => {
                    self.fence = Some(c);
                    i += 3;
                }
                '\'' | '"' => {
                    let verbatim = i > 0 && chars[i - 1] == '@';
                    i = skip_string(&chars, i, verbatim);
                }
                '(' | '[' | '{' => {
                    self.brackets += 1;
                    i += 1;
                }
                ')' | ']' | '}' => {
                    self.brackets -= 1;
                    i += 1;
                }
                _ => i += 1,
            }
        }
    }
}

/// The index after the string literal starting at `i` (or the line's end).
pub(super) fn skip_string(chars: &[char], i: usize, verbatim: bool) -> usize {
    let quote = chars[i];
    let mut j = i + 1;
    while j < chars.len() {
        match chars[j] {
            '\\' if !verbatim => j += 2,
            q if q == quote => return j + 1,
            _ => j += 1,
        }
    }
    chars.len()
}

fn statement(text: &str) -> Result<Statement, String> {
    let mut p = Parser { rest: text.trim() };
    let other = |why: &str| Statement::Other {
        table: table_named(text),
        text: first_line(text),
        why: why.to_owned(),
    };
    let verb = p.word_with_dashes();
    let result = match verb.as_str() {
        ".create-merge" | ".create" | ".create-or-alter" => create(&mut p, &verb, text),
        ".alter" | ".alter-merge" => alter(&mut p, &verb),
        ".add" => add(&mut p),
        _ => Ok(None),
    };
    match result {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Ok(other("this restore does not apply statements of this kind")),
        Err(Fatal(e)) => Err(e),
        Err(Unreadable(why)) => Ok(other(&why)),
    }
}

/// Why a statement could not be read: a table (fatal) or anything else (reported).
enum Failure {
    Fatal(String),
    Unreadable(String),
}
use Failure::{Fatal, Unreadable};

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Unreadable(e)
    }
}

fn create(p: &mut Parser, verb: &str, text: &str) -> Result<Option<Statement>, Failure> {
    p.skip_spaces();
    let what = p.word_with_dashes();
    match what.as_str() {
        "table" => {
            let name = p.name().map_err(Fatal)?;
            p.skip_spaces();
            if p.rest.starts_with("ingestion") {
                p.word();
                return mapping(p, name).map(Some);
            }
            if verb == ".create-or-alter" {
                return Ok(None);
            }
            let rest = text.trim().splitn(3, ' ').nth(2).unwrap_or_default();
            parse_table(rest)
                .map(|t| t.map(Statement::Table))
                .map_err(Fatal)
        }
        "function" => function(p).map(Some),
        "async" | "ifnotexists" | "materialized-view" => {
            let mut word = what;
            while word == "async" || word == "ifnotexists" {
                p.skip_spaces();
                word = p.word_with_dashes();
            }
            if word != "materialized-view" {
                return Ok(None);
            }
            materialized_view(p).map(Some)
        }
        "external" => {
            p.skip_spaces();
            if p.word() != "table" {
                return Ok(None);
            }
            let name = p.name()?;
            let table = external_table(p, &name);
            Ok(Some(Statement::ExternalTable { name, table }))
        }
        "continuous-export" => {
            let name = p.name()?;
            Ok(Some(Statement::ContinuousExport { name }))
        }
        _ => Ok(None),
    }
}

/// `[ifnotexists] [with (...)] V on table T { query }`. The name and the source are read
/// first, so a view this build cannot re-create is still reported with them.
fn materialized_view(p: &mut Parser) -> Result<Statement, Failure> {
    p.skip_spaces();
    if p.rest.starts_with("ifnotexists") {
        p.word();
    }
    let props = if p.at_with() {
        p.word();
        p.properties()
            .map_err(|e| format!("a property this restore cannot read ({e})"))?
    } else {
        Vec::new()
    };
    let name = p.name()?;
    p.expect_word("on")?;
    p.skip_spaces();
    let on = p.word_with_dashes();
    let source = p.name()?;
    let query = p.balanced('{', '}')?;
    p.end()?;
    let view = view_spec(&name, &on, &source, &query, &props);
    Ok(Statement::MaterializedView {
        name,
        source: (on == "table")
            .then(|| TableName::new(source).ok())
            .flatten(),
        view,
    })
}

/// The view a restore re-creates, or why it does not.
fn view_spec(
    name: &str,
    on: &str,
    source: &str,
    query: &str,
    props: &[(String, String)],
) -> Result<MaterializedViewSpec, String> {
    if on != "table" {
        return Err(format!(
            "it is defined on {on} {source}, not on a table; create it by hand once {source} is back"
        ));
    }
    let mut view = MaterializedViewSpec {
        name: ViewName::new(name).map_err(|e| e.to_string())?,
        source: table_name(source.to_owned())?,
        query: KqlCode::new(query).map_err(|e| format!("its query: {e}"))?,
        folder: String::new(),
        docstring: String::new(),
        lookback: None,
        auto_update_schema: None,
        update_extents_creation_time: None,
    };
    let flag = |key: &str, value: &str| match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("its {key} is {other:?}, not true or false")),
    };
    for (key, value) in props {
        match key.to_ascii_lowercase().as_str() {
            "folder" => view.folder = value.clone(),
            "docstring" => view.docstring = value.clone(),
            "lookback" => view.lookback = Some(timespan(value)?),
            "autoupdateschema" => view.auto_update_schema = Some(flag(key, value)?),
            "updateextentscreationtime" => {
                view.update_extents_creation_time = Some(flag(key, value)?);
            }
            // How the source's view was once created, not what it holds: the restore
            // chooses its own (a backfill from every restored record).
            "backfill" | "concurrency" | "maxsourcerecordsforsingleingest" => {}
            "effectivedatetime" => {
                return Err(
                    "it was backfilled only from records ingested after its effectiveDateTime, and every restored record is ingested anew, so a backfill now would take them all; create it by hand with the filter it needs"
                        .to_owned(),
                );
            }
            _ => {
                return Err(format!(
                    "its property {key} is not one this restore re-creates; create it by hand"
                ));
            }
        }
    }
    Ok(view)
}

/// `(cols) kind = storage [partition by (..)] [pathformat = (..)] dataformat = F (conn,
/// ...) [with (..)]` (after the name): the table a restore re-creates, or why it does not.
fn external_table(p: &mut Parser, name: &str) -> Result<StorageExternalTableSpec, String> {
    let name = table_name(name.to_owned())?;
    p.skip_spaces();
    let columns = p.columns(name.as_str())?;
    p.expect_word("kind")?;
    p.expect_char('=')?;
    p.skip_spaces();
    let kind = p.word();
    // `blob` is the deprecated name of `storage`.
    if !["storage", "blob"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(&kind))
    {
        return Err(format!(
            "it is an external table of kind {kind}, which this restore does not re-create; create it by hand"
        ));
    }
    let (mut partitions, mut path_format, mut data_format) = (None, None, None);
    loop {
        p.skip_spaces();
        let before = p.rest;
        match p.word().to_ascii_lowercase().as_str() {
            "partition" => {
                p.expect_word("by")?;
                let code = p.balanced('(', ')')?;
                partitions = Some(KqlCode::new(&code).map_err(|e| format!("its partitions: {e}"))?);
            }
            "pathformat" => {
                p.expect_char('=')?;
                let code = p.balanced('(', ')')?;
                path_format =
                    Some(KqlCode::new(&code).map_err(|e| format!("its path format: {e}"))?);
            }
            "dataformat" => {
                p.expect_char('=')?;
                p.skip_spaces();
                let word = p.word();
                data_format =
                    Some(DataFormat::parse(&word).ok_or_else(|| {
                        format!("its data format {word:?} is not one Kusto reads")
                    })?);
            }
            _ => {
                p.rest = before;
                break;
            }
        }
    }
    let data_format = data_format.ok_or("it has no dataformat")?;
    p.expect_char('(')?;
    let mut connection_strings = Vec::new();
    loop {
        connection_strings.push(p.string()?);
        p.skip_spaces();
        if p.eat(')') {
            break;
        }
        if !p.eat(',') {
            return Err(format!("expected `,` or `)` at {:?}", super::head(p.rest)));
        }
    }
    let mut properties = Vec::new();
    if p.at_with() {
        p.word();
        for (key, value, quoted) in p.literal_properties()? {
            // Options of the create command itself, not of the table: `dryRun` would not
            // even create it.
            let lower = key.to_ascii_lowercase();
            if ["dryrun", "sampleuris", "filespreview", "validatenotempty"]
                .contains(&lower.as_str())
            {
                continue;
            }
            let value = match value.parse::<i64>() {
                _ if quoted => PropertyValue::Text(value),
                Ok(n) => PropertyValue::Number(n),
                _ if value.eq_ignore_ascii_case("true") => PropertyValue::Flag(true),
                _ if value.eq_ignore_ascii_case("false") => PropertyValue::Flag(false),
                _ if value.contains('(') => {
                    return Err(format!(
                        "its property {key} = {value} is not one this restore rebuilds; create it by hand"
                    ));
                }
                _ => PropertyValue::Text(value),
            };
            properties.push(
                Property::new(&key, value)
                    .ok_or_else(|| format!("its property {key:?} is not a plain name"))?,
            );
        }
    }
    p.end()?;
    Ok(StorageExternalTableSpec {
        name,
        columns,
        partitions,
        path_format,
        data_format,
        connection_strings,
        properties,
    })
}

/// `ingestion <kind> mapping "name" '<json>'` (after the table name).
fn mapping(p: &mut Parser, table: String) -> Result<Statement, Failure> {
    p.skip_spaces();
    let kind_word = p.word();
    let kind = MappingKind::parse(&kind_word)
        .ok_or_else(|| format!("ingestion mapping of kind {kind_word:?}"))?;
    p.skip_spaces();
    if p.word() != "mapping" {
        return Err(Unreadable("no `mapping` after the kind".into()));
    }
    let name = p.string()?;
    let json = p.string()?;
    p.end()?;
    let mapping =
        serde_json::from_str(&json).map_err(|e| format!("mapping {name:?} is not JSON: {e}"))?;
    Ok(Statement::Mapping {
        table: table_name(table)?,
        kind,
        name,
        mapping,
    })
}

/// `[with (folder = "..", docstring = "..", ...)] Name(params) { body }`.
fn function(p: &mut Parser) -> Result<Statement, Failure> {
    p.skip_spaces();
    if p.rest.starts_with("ifnotexists") {
        p.word();
        p.skip_spaces();
    }
    let mut folder = String::new();
    let mut docstring = String::new();
    let mut view = false;
    if p.rest.starts_with("with") && !p.rest[4..].starts_with(|c: char| c.is_alphanumeric()) {
        p.word();
        for (key, value) in p.properties()? {
            match key.to_ascii_lowercase().as_str() {
                "folder" => folder = value,
                "docstring" => docstring = value,
                "view" => view = value.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
    }
    let name = p.name()?;
    p.skip_spaces();
    let params = p.balanced('(', ')')?;
    p.skip_spaces();
    let body = p.balanced('{', '}')?;
    p.end()?;
    let code = |text: &str| KqlCode::new(text).map_err(|e| format!("function {name}: {e}"));
    Ok(Statement::Function(FunctionSpec {
        params: code(&params)?,
        body: code(&body)?,
        name,
        folder,
        docstring,
        view,
    }))
}

fn alter(p: &mut Parser, verb: &str) -> Result<Option<Statement>, Failure> {
    p.skip_spaces();
    if p.word() != "table" {
        return Ok(None);
    }
    let table = table_name(p.name()?)?;
    p.skip_spaces();
    if p.word() != "policy" {
        return Ok(None);
    }
    p.skip_spaces();
    let kind = p.word();
    p.skip_spaces();
    let statement = match (kind.as_str(), verb) {
        ("ingestiontime", _) => {
            p.rest_text();
            Statement::IngestionTime
        }
        ("retention", ".alter-merge") if !p.at_string() => retention_words(p, table)?,
        ("retention", _) => retention_json(&p.string()?, table)?,
        ("caching", ".alter") => {
            p.expect_word("hot")?;
            p.expect_char('=')?;
            let rest = p.rest_text();
            if rest.contains("hot_window") {
                return Err(Unreadable(
                    "a caching policy with hot windows; set it again by hand".into(),
                ));
            }
            let hot = timespan(&rest)?;
            Statement::Caching { table, hot }
        }
        ("update", ".alter") => update_policy(&p.string()?, table)?,
        ("row_level_security", ".alter") => {
            let enabled = match p.word().to_ascii_lowercase().as_str() {
                "enable" => true,
                "disable" => false,
                other => return Err(Unreadable(format!("row_level_security {other:?}"))),
            };
            p.skip_spaces();
            let query = KqlCode::new(&p.string()?)
                .map_err(|e| format!("row-level security query of {table}: {e}"))?;
            Statement::RowLevelSecurity {
                table,
                enabled,
                query,
            }
        }
        ("restricted_view_access", ".alter") => {
            let enabled = match p.word().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                other => return Err(Unreadable(format!("restricted_view_access {other:?}"))),
            };
            Statement::RestrictedViewAccess { table, enabled }
        }
        _ => return Ok(None),
    };
    p.end()?;
    Ok(Some(statement))
}

/// `database D <role> (<principals>) [skip-results] ['notes']` or the same with `table T`;
/// Ok(None) for other objects' principals (functions, views, external tables).
fn add(p: &mut Parser) -> Result<Option<Statement>, Failure> {
    p.skip_spaces();
    let what = p.word();
    if !matches!(what.as_str(), "database" | "table") {
        return Ok(None);
    }
    let name = p.name()?;
    p.skip_spaces();
    let role_word = p.word();
    let principals = principal_list(p)?;
    p.skip_spaces();
    if p.rest.starts_with("skip-results") {
        p.word_with_dashes();
    }
    let notes = if p.at_string() {
        p.string()?
    } else {
        String::new()
    };
    p.end()?;
    let unknown_role = || Unreadable(format!("{what} role {role_word:?}"));
    Ok(Some(if what == "database" {
        Statement::DatabasePrincipals {
            role: DatabaseRole::parse(&role_word).ok_or_else(unknown_role)?,
            principals,
            notes,
        }
    } else {
        Statement::TablePrincipals {
            table: table_name(name)?,
            role: TableRole::parse(&role_word).ok_or_else(unknown_role)?,
            principals,
            notes,
        }
    }))
}

/// `('p1', "p2", ...)`, each a principal.
fn principal_list(p: &mut Parser) -> Result<Vec<Principal>, Failure> {
    p.expect_char('(')?;
    let mut out = Vec::new();
    loop {
        let text = p.string()?;
        out.push(Principal::new(text).map_err(|e| e.to_string())?);
        p.skip_spaces();
        if p.eat(')') {
            return Ok(out);
        }
        if !p.eat(',') {
            return Err(Unreadable(format!(
                "expected `,` or `)` at {:?}",
                super::head(p.rest)
            )));
        }
    }
}

/// `softdelete = 30d [recoverability = enabled|disabled]`.
fn retention_words(p: &mut Parser, table: TableName) -> Result<Statement, Failure> {
    p.expect_word("softdelete")?;
    p.expect_char('=')?;
    p.skip_spaces();
    let span = p.word();
    let soft_delete = Some(timespan(&span)?);
    p.skip_spaces();
    let mut recoverability = true;
    if !p.rest.is_empty() {
        p.expect_word("recoverability")?;
        p.expect_char('=')?;
        p.skip_spaces();
        recoverability = match p.word().to_ascii_lowercase().as_str() {
            "enabled" => true,
            "disabled" => false,
            other => return Err(Unreadable(format!("recoverability {other:?}"))),
        };
    }
    Ok(Statement::Retention {
        table,
        soft_delete,
        recoverability,
    })
}

/// `{"SoftDeletePeriod": "30.00:00:00", "Recoverability": "Enabled"}`.
fn retention_json(text: &str, table: TableName) -> Result<Statement, Failure> {
    let policy: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("retention policy is not JSON: {e}"))?;
    let soft_delete = match policy.get("SoftDeletePeriod") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(timespan(s)?),
        Some(other) => return Err(Unreadable(format!("SoftDeletePeriod {other}"))),
    };
    let recoverability = match policy.get("Recoverability").and_then(|v| v.as_str()) {
        None => true,
        Some(s) if s.eq_ignore_ascii_case("enabled") => true,
        Some(s) if s.eq_ignore_ascii_case("disabled") => false,
        Some(other) => return Err(Unreadable(format!("Recoverability {other:?}"))),
    };
    Ok(Statement::Retention {
        table,
        soft_delete,
        recoverability,
    })
}

fn update_policy(text: &str, table: TableName) -> Result<Statement, Failure> {
    let policy: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("update policy is not JSON: {e}"))?;
    let serde_json::Value::Array(entries) = policy else {
        return Err(Unreadable("the update policy is not a JSON array".into()));
    };
    let readable = entries.iter().all(|e| {
        e.get("Source").and_then(|s| s.as_str()).is_some()
            && e.get("Query").and_then(|s| s.as_str()).is_some()
    });
    if !readable {
        return Err(Unreadable(
            "an update policy entry lacks its Source or Query".into(),
        ));
    }
    Ok(Statement::UpdatePolicy { table, entries })
}

/// `30d`, `12h`, `90m`, `45s`, `100ms`, `time(1.02:03:04)`, or `[d.]hh:mm:ss[.fffffff]`.
pub(super) fn timespan(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let inner = ["time(", "timespan("]
        .iter()
        .find_map(|f| text.strip_prefix(f).and_then(|r| r.strip_suffix(')')));
    if let Some(inner) = inner {
        return clock_span(inner.trim());
    }
    if text.contains(':') {
        return clock_span(text);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("timespan {text:?} has no unit"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("timespan {text:?} is not a number"))?;
    let seconds = match unit {
        "d" => 86_400.0,
        "h" => 3600.0,
        "m" => 60.0,
        "s" => 1.0,
        "ms" => 0.001,
        _ => return Err(format!("timespan {text:?} has an unknown unit")),
    };
    Duration::try_from_secs_f64(number * seconds).map_err(|e| format!("timespan {text:?}: {e}"))
}

/// `[d.]hh:mm:ss[.fffffff]`.
fn clock_span(text: &str) -> Result<Duration, String> {
    let bad = || format!("timespan {text:?} is not [d.]hh:mm:ss[.fffffff]");
    let (days, clock) = match text.split_once(':') {
        Some((head, _)) if head.contains('.') => {
            let (d, _) = head.split_once('.').ok_or_else(bad)?;
            (d.parse::<u64>().map_err(|_| bad())?, &text[d.len() + 1..])
        }
        _ => (0, text),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let [h, m, s] = parts.as_slice() else {
        return Err(bad());
    };
    let (secs, fraction) = s.split_once('.').unwrap_or((s, ""));
    let whole = days * 86_400
        + h.parse::<u64>().map_err(|_| bad())? * 3600
        + m.parse::<u64>().map_err(|_| bad())? * 60
        + secs.parse::<u64>().map_err(|_| bad())?;
    let nanos = if fraction.is_empty() {
        0
    } else {
        let digits: String = format!("{fraction:0<9}").chars().take(9).collect();
        digits.parse::<u32>().map_err(|_| bad())?
    };
    Ok(Duration::new(whole, nanos))
}

fn table_name(name: String) -> Result<TableName, String> {
    TableName::new(name).map_err(|e| e.to_string())
}

/// The table a statement we cannot apply is about (`... table T ...`), to report it only
/// when the table is restored.
fn table_named(text: &str) -> Option<TableName> {
    let at = text.find(" table ")?;
    let mut p = Parser {
        rest: &text[at + " table ".len()..],
    };
    p.name().ok().and_then(|n| TableName::new(n).ok())
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let cut: String = line.chars().take(160).collect();
    if cut.len() < line.len() || text.contains('\n') {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot in the forms Kusto's script uses (one row per statement; the function's
    /// body keeps its line breaks).
    const SCRIPT: &str = r#".create-merge table ['Raw'] (['Timestamp']:datetime, ['Line']:string) with (folder = "", docstring = "")
.alter table ['Raw'] policy ingestiontime true
.alter-merge table ['Raw'] policy retention softdelete = 30d recoverability = disabled
.alter table ['Raw'] policy caching hot = 7d
.create-or-alter table ['Raw'] ingestion json mapping "RawMap" "[{\"column\":\"Line\",\"path\":\"$.line\"}]"
.create-merge table Parsed (Timestamp:datetime, Word:string)
.alter table Parsed policy retention "{\"SoftDeletePeriod\": \"365.00:00:00\", \"Recoverability\": \"Enabled\"}"
.create-or-alter function with (folder = "Tests", docstring = "Reads it", view = true, skipvalidation = "true") Words(min:long = 0) {
    Raw
    // a line starting with a dot inside the body:
    .alter table X policy caching hot = 1d
    | where strlen(Line) > min and Line != "}"
}
.alter table Parsed policy update "[{\"IsEnabled\":true,\"Source\":\"Raw\",\"Query\":\"Raw | project Timestamp, Word = Line\",\"IsTransactional\":false,\"PropagateIngestionProperties\":false}]"
.create materialized-view with (backfill = true) Daily on table Raw { Raw | summarize count() by bin(Timestamp, 1d) }
.create-or-alter external table ['adxbk_Raw'] (Timestamp:datetime) kind = storage dataformat = parquet (h@"https://x")
.alter table ['Raw'] policy row_level_security enable "Raw | take 1"
.add database ['Sales'] viewers ('aadgroup=x')
.add function ['Words'] admins ('aaduser=u@x.com')"#;

    #[test]
    fn every_statement_of_a_script_is_read_or_kept_with_its_reason() {
        let all = statements(SCRIPT).unwrap();
        let raw = TableName::new("Raw").unwrap();
        let parsed = TableName::new("Parsed").unwrap();
        assert!(matches!(&all[0], Statement::Table(t) if t.name == raw && t.columns.len() == 2));
        assert_eq!(all[1], Statement::IngestionTime);
        assert_eq!(
            all[2],
            Statement::Retention {
                table: raw.clone(),
                soft_delete: Some(Duration::from_secs(30 * 86_400)),
                recoverability: false
            }
        );
        assert_eq!(
            all[3],
            Statement::Caching {
                table: raw.clone(),
                hot: Duration::from_secs(7 * 86_400)
            }
        );
        assert_eq!(
            all[4],
            Statement::Mapping {
                table: raw.clone(),
                kind: MappingKind::Json,
                name: "RawMap".into(),
                mapping: serde_json::json!([{"column": "Line", "path": "$.line"}])
            }
        );
        assert!(matches!(&all[5], Statement::Table(t) if t.name == parsed));
        assert_eq!(
            all[6],
            Statement::Retention {
                table: parsed.clone(),
                soft_delete: Some(Duration::from_secs(365 * 86_400)),
                recoverability: true
            }
        );
        let Statement::Function(f) = &all[7] else {
            panic!("{:?}", all[7]);
        };
        assert_eq!(
            (f.name.as_str(), f.folder.as_str(), f.docstring.as_str()),
            ("Words", "Tests", "Reads it")
        );
        assert_eq!(f.params.as_str(), "min:long = 0");
        assert!(f.view);
        assert!(f.body.as_str().starts_with("Raw\n"));
        assert!(f.body.as_str().ends_with("Line != \"}\""));
        assert!(f.body.mentions("Raw"));
        let Statement::UpdatePolicy { table, entries } = &all[8] else {
            panic!("{:?}", all[8]);
        };
        assert_eq!(table, &parsed);
        assert_eq!(entries[0]["Source"], "Raw");
        let Statement::MaterializedView { name, source, view } = &all[9] else {
            panic!("{:?}", all[9]);
        };
        assert_eq!((name.as_str(), source.as_ref()), ("Daily", Some(&raw)));
        let view = view.as_ref().expect("a view this build re-creates");
        assert_eq!(
            view.query.as_str(),
            "Raw | summarize count() by bin(Timestamp, 1d)"
        );
        let Statement::ExternalTable { name, table } = &all[10] else {
            panic!("{:?}", all[10]);
        };
        assert_eq!(name, "adxbk_Raw");
        assert_eq!(
            table.as_ref().expect("readable").connection_strings,
            ["https://x"]
        );
        assert!(
            matches!(&all[11], Statement::RowLevelSecurity { table, enabled: true, query } if *table == raw && query.as_str() == "Raw | take 1"),
            "{:?}",
            all[11]
        );
        assert!(
            matches!(&all[12], Statement::DatabasePrincipals { role: DatabaseRole::Viewers, principals, notes } if principals.len() == 1 && notes.is_empty()),
            "{:?}",
            all[12]
        );
        assert!(matches!(&all[13], Statement::Other { table: None, .. }));
        assert_eq!(all.len(), 14);
    }

    #[test]
    fn materialized_views_are_read_in_every_form_with_the_properties_they_keep() {
        let script = r#".create-or-alter materialized-view with (folder = "Views", docString = "it's", lookback = 6h, autoUpdateSchema = true, backfill = true, Concurrency = 2) ['Last One'] on table ['Raw']
{
    Raw // newest per id
    | summarize arg_max(Timestamp, *) by Id
}
.create async ifnotexists materialized-view with (updateExtentsCreationTime=false) Daily on table Raw { Raw | summarize count() by bin(Timestamp, 1d) }
.create ifnotexists materialized-view Plain on table Raw { Raw | summarize count() }"#;
        let all = statements(script).unwrap();
        assert_eq!(all.len(), 3, "{all:#?}");
        let views: Vec<MaterializedViewSpec> = all
            .iter()
            .map(|s| match s {
                Statement::MaterializedView { view: Ok(v), .. } => v.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        let last = &views[0];
        assert_eq!(
            (
                last.name.as_str(),
                last.source.as_str(),
                last.folder.as_str(),
                last.docstring.as_str()
            ),
            ("Last One", "Raw", "Views", "it's")
        );
        assert_eq!(
            last.query.as_str(),
            "Raw // newest per id\n    | summarize arg_max(Timestamp, *) by Id"
        );
        assert_eq!(last.lookback, Some(Duration::from_secs(6 * 3600)));
        assert_eq!(last.auto_update_schema, Some(true));
        assert_eq!(views[1].update_extents_creation_time, Some(false));
        assert_eq!(views[2].name.as_str(), "Plain");
        assert_eq!(views[2].lookback, None);
    }

    #[test]
    fn storage_external_tables_are_read_with_their_parts() {
        let script = r#".create-or-alter external table ['Lake'] (['Ts']:datetime, ['Id']:long)
kind = storage
partition by (['Day']:datetime = startofday(['Ts']))
pathformat = ("day=" datetime_pattern("yyyyMMdd", ['Day']))
dataformat = parquet
(
    h@"https://lake.blob.core.windows.net/c/a;managed_identity=system",
    'https://lake.blob.core.windows.net/c/b;impersonate'
)
with (folder = "Lake", docString = "raw", compressed = true, dryRun = true)"#;
        let all = statements(script).unwrap();
        let [Statement::ExternalTable { name, table }] = &all[..] else {
            panic!("{all:#?}");
        };
        assert_eq!(name, "Lake");
        let t = table.as_ref().expect("readable");
        assert_eq!(t.columns.len(), 2);
        assert_eq!(
            t.partitions.as_ref().map(KqlCode::as_str),
            Some("['Day']:datetime = startofday(['Ts'])")
        );
        assert_eq!(
            t.path_format.as_ref().map(KqlCode::as_str),
            Some("\"day=\" datetime_pattern(\"yyyyMMdd\", ['Day'])")
        );
        assert_eq!(t.data_format.as_str(), "parquet");
        assert_eq!(
            t.connection_strings,
            [
                "https://lake.blob.core.windows.net/c/a;managed_identity=system",
                "https://lake.blob.core.windows.net/c/b;impersonate"
            ]
        );
        let props: Vec<&str> = t.properties.iter().map(Property::name).collect();
        assert_eq!(
            props,
            ["folder", "docString", "compressed"],
            "dryRun dropped"
        );
        for (text, why) in [
            (
                ".create external table S (a:long) kind = sql table = T (h@'Server=x')",
                "kind sql",
            ),
            (
                ".create external table D (a:long) kind = storage dataformat = yaml ('https://x')",
                "data format \"yaml\"",
            ),
            (
                ".create external table P (a:long) kind = storage partition by (D:datetime = startofday(a) dataformat = parquet ('https://x')",
                "never closed",
            ),
        ] {
            match &statements(text).unwrap()[..] {
                [Statement::ExternalTable { table: Err(w), .. }] => {
                    assert!(w.contains(why), "{text}: {w}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn unreadable_statements_are_kept_with_why_and_unreadable_tables_fail() {
        for (text, why) in [
            (
                ".create-or-alter function F() { T | where a == '}",
                "never closed",
            ),
            (".alter table T policy caching hot = 7 parsecs", "timespan"),
            (
                ".alter table T policy caching hot = 3d, hot_window = datetime(2026-01-01) .. datetime(2026-02-01)",
                "hot windows",
            ),
            (
                ".create-or-alter table T ingestion json mapping 'm' 'not json'",
                "not JSON",
            ),
            (".alter table T policy update '{}'", "array"),
            (".create table T ingestion yaml mapping 'm' '[]'", "yaml"),
        ] {
            match &statements(text).unwrap()[..] {
                [Statement::Other { why: w, .. }] => assert!(w.contains(why), "{text}: {w}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(statements(".create-merge table T (a:varchar)").is_err());
    }

    #[test]
    fn principals_are_read_in_every_documented_form() {
        let app =
            "aadapp=4c7e82bd-6adb-46c3-b413-fdd44834c69b;72f988bf-86f1-41af-91ab-2d7cd011db47";
        let script = format!(
            r#".add database ['Sales'] viewers ("{app}") "AAD App (reader)"
.add database Sales UnrestrictedViewers ('aaduser=a@x.com', @'aadgroup=G;x.com') skip-results
.add table ['Raw'] admins ("aaduser=b@x.com") skip-results 'owner, \'b\''
.add table Raw ingestors ('msauser=c@live.com')"#
        );
        let p = |s: &str| Principal::new(s).unwrap();
        assert_eq!(
            statements(&script).unwrap(),
            [
                Statement::DatabasePrincipals {
                    role: DatabaseRole::Viewers,
                    principals: vec![p(app)],
                    notes: "AAD App (reader)".into()
                },
                Statement::DatabasePrincipals {
                    role: DatabaseRole::UnrestrictedViewers,
                    principals: vec![p("aaduser=a@x.com"), p("aadgroup=G;x.com")],
                    notes: String::new()
                },
                Statement::TablePrincipals {
                    table: TableName::new("Raw").unwrap(),
                    role: TableRole::Admins,
                    principals: vec![p("aaduser=b@x.com")],
                    notes: "owner, 'b'".into()
                },
                Statement::TablePrincipals {
                    table: TableName::new("Raw").unwrap(),
                    role: TableRole::Ingestors,
                    principals: vec![p("msauser=c@live.com")],
                    notes: String::new()
                },
            ]
        );
    }

    #[test]
    fn unreadable_principals_are_kept_with_why() {
        for (text, why, table) in [
            (
                ".add database D readers ('aaduser=a@x.com')",
                "database role \"readers\"",
                None,
            ),
            (
                ".add table T viewers ('aaduser=a@x.com')",
                "table role \"viewers\"",
                Some("T"),
            ),
            (
                ".add database D viewers ('nobody')",
                "is not `<kind>=<id>",
                None,
            ),
            (
                ".add table T admins ('aaduser=a@x.com' 'x')",
                "expected `,` or `)`",
                Some("T"),
            ),
            (
                ".add table T admins ('aaduser=a@x.com') 'n' trailing",
                "unexpected text",
                Some("T"),
            ),
            (
                ".add database D viewers 'aaduser=a@x.com'",
                "expected `(`",
                None,
            ),
        ] {
            match &statements(text).unwrap()[..] {
                [
                    Statement::Other {
                        why: w, table: t, ..
                    },
                ] => {
                    assert!(w.contains(why), "{text}: {w}");
                    assert_eq!(t.as_ref().map(TableName::as_str), table, "{text}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn timespans_in_every_form() {
        for (text, secs) in [
            ("30d", 30 * 86_400),
            ("12h", 12 * 3600),
            ("90m", 5400),
            ("45s", 45),
            ("1.5d", 129_600),
            ("time(1.02:03:04)", 93_784),
            ("365.00:00:00", 365 * 86_400),
            ("00:10:00", 600),
        ] {
            assert_eq!(timespan(text), Ok(Duration::from_secs(secs)), "{text}");
        }
        assert_eq!(
            timespan("00:00:01.5000000"),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(timespan("100ms"), Ok(Duration::from_millis(100)));
        for bad in ["", "d", "7", "7y", "1:2", "x.00:00:00"] {
            assert!(timespan(bad).is_err(), "{bad}");
        }
    }
}
