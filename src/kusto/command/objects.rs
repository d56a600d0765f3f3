//! The schema objects a restore re-creates from a snapshot: functions, ingestion mappings,
//! and the retention, caching and update policies of tables.
//!
//! A function's parameters and body are KQL code, not a value: they cannot be escaped, only
//! checked. [`KqlCode`] accepts text whose strings and comments all end and whose brackets
//! all close in order, so the code cannot end the `{ ... }` it is put in, nor run into the
//! text after it. Everything else is a name (`['..']`) or a literal, as in the rest of the
//! builder; JSON policies and mappings are re-serialized from parsed JSON, never pasted.
//!
//! Forms (Microsoft's docs):
//! - <https://learn.microsoft.com/en-us/kusto/management/create-alter-function>
//! - <https://learn.microsoft.com/en-us/kusto/management/create-or-alter-ingestion-mapping-command>
//! - <https://learn.microsoft.com/en-us/kusto/management/alter-table-retention-policy-command>
//! - <https://learn.microsoft.com/en-us/kusto/management/alter-table-cache-policy-command>
//! - <https://learn.microsoft.com/en-us/kusto/management/alter-table-update-policy-command>

use std::time::Duration;

use super::Command;
use super::literal::{ident, string_literal, timespan_text};
use crate::ids::TableName;

/// KQL code (a function's body or parameter list) that stays inside its brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KqlCode {
    text: String,
    /// Identifiers and string-literal contents outside comments: what the code may name.
    names: Vec<String>,
    /// A `//` comment runs to the end of the text.
    ends_in_comment: bool,
}

/// Why a text is not [`KqlCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not self-contained KQL: {0}")]
pub struct CodeError(String);

impl KqlCode {
    pub fn new(text: &str) -> Result<Self, CodeError> {
        let text = text.trim();
        let mut scan = Scan::default();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            i = scan.step(&chars, i)?;
        }
        if let Some(open) = scan.open.last() {
            return Err(CodeError(format!("'{open}' is never closed")));
        }
        scan.flush_word();
        Ok(Self {
            text: text.to_owned(),
            names: scan.names,
            ends_in_comment: scan.in_comment_at_end,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the code names `name` (as an identifier, a quoted name or a string).
    pub fn mentions(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// `close`, the text after the code, with its bracket on a line of its own when the code
    /// ends in a `//` comment, which would otherwise run over it.
    pub(super) fn then(&self, close: &str) -> String {
        if self.ends_in_comment {
            format!("\n{}", close.trim_start())
        } else {
            close.to_owned()
        }
    }
}

#[derive(Default)]
struct Scan {
    open: Vec<char>,
    names: Vec<String>,
    word: String,
    in_comment_at_end: bool,
}

impl Scan {
    /// Consumes the token at `i`; returns where the next one starts.
    fn step(&mut self, c: &[char], i: usize) -> Result<usize, CodeError> {
        let ch = c[i];
        if ch.is_alphanumeric() || ch == '_' {
            self.word.push(ch);
            return Ok(i + 1);
        }
        self.flush_word();
        match ch {
            '/' if c.get(i + 1) == Some(&'/') => {
                let end = c[i..].iter().position(|&x| x == '\n').map(|p| i + p);
                self.in_comment_at_end = end.is_none();
                Ok(end.unwrap_or(c.len()))
            }
            '`' if c[i..].starts_with(&['`', '`', '`']) => self.fenced(c, i, '`'),
            '~' if c[i..].starts_with(&['~', '~', '~']) => self.fenced(c, i, '~'),
            '@' if matches!(c.get(i + 1), Some('\'' | '"')) => self.string(c, i + 1, false),
            '\'' | '"' => self.string(c, i, true),
            '(' | '[' | '{' => {
                self.open.push(ch);
                Ok(i + 1)
            }
            ')' | ']' | '}' => {
                let want = match ch {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                match self.open.pop() {
                    Some(o) if o == want => Ok(i + 1),
                    _ => Err(CodeError(format!("'{ch}' closes nothing it opened"))),
                }
            }
            _ => Ok(i + 1),
        }
    }

    fn flush_word(&mut self) {
        if !self.word.is_empty() {
            self.names.push(std::mem::take(&mut self.word));
        }
    }

    /// A quoted string starting at `i`; `escapes`: backslash escapes the next character.
    fn string(&mut self, c: &[char], i: usize, escapes: bool) -> Result<usize, CodeError> {
        let quote = c[i];
        let mut text = String::new();
        let mut j = i + 1;
        while j < c.len() {
            match c[j] {
                '\\' if escapes => {
                    if let Some(&next) = c.get(j + 1) {
                        text.push(next);
                    }
                    j += 2;
                }
                '\n' => return Err(CodeError("a string literal runs past its line".into())),
                q if q == quote => {
                    self.names.push(text);
                    return Ok(j + 1);
                }
                other => {
                    text.push(other);
                    j += 1;
                }
            }
        }
        Err(CodeError("a string literal is never closed".into()))
    }

    /// A multi-line string between three backticks (or tildes).
    fn fenced(&mut self, c: &[char], i: usize, fence: char) -> Result<usize, CodeError> {
        let start = i + 3;
        let mark = [fence, fence, fence];
        let end = (start..c.len())
            .find(|&j| c[j..].starts_with(&mark))
            .ok_or_else(|| CodeError("a multi-line string is never closed".into()))?;
        self.names.push(c[start..end].iter().collect());
        Ok(end + 3)
    }
}

/// A stored function as a snapshot defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    pub name: String,
    /// The parameter list, without its parentheses.
    pub params: KqlCode,
    /// The body, without its braces.
    pub body: KqlCode,
    pub folder: String,
    pub docstring: String,
    /// `view = true`: the function takes part in `union` wildcards like a table.
    pub view: bool,
}

/// `.create-or-alter function with (folder = '..', docstring = '..', skipvalidation =
/// 'true') ['F'](params) { body }`. Validation is skipped because a body may name tables
/// or functions the restore creates later (or that are not restored at all), as the
/// snapshot's own script does.
pub fn create_or_alter_function(f: &FunctionSpec) -> Command {
    let close = f.body.then(" }");
    let view = if f.view { "view = true, " } else { "" };
    Command::mgmt(format!(
        ".create-or-alter function with ({view}folder = {}, docstring = {}, skipvalidation = 'true') {}({}) {{ {}{close}",
        string_literal(&f.folder),
        string_literal(&f.docstring),
        ident(&f.name),
        f.params.as_str(),
        f.body.as_str(),
    ))
}

/// The kinds of ingestion mapping Kusto knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingKind {
    Csv,
    Json,
    Avro,
    ApacheAvro,
    Parquet,
    Orc,
    W3cLogFile,
}

impl MappingKind {
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "csv" => Self::Csv,
            "json" => Self::Json,
            "avro" => Self::Avro,
            "apacheavro" => Self::ApacheAvro,
            "parquet" => Self::Parquet,
            "orc" => Self::Orc,
            "w3clogfile" => Self::W3cLogFile,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Avro => "avro",
            Self::ApacheAvro => "apacheavro",
            Self::Parquet => "parquet",
            Self::Orc => "orc",
            Self::W3cLogFile => "w3clogfile",
        }
    }
}

/// `.create-or-alter table ['T'] ingestion json mapping 'name' '[...]'`.
pub fn create_or_alter_ingestion_mapping(
    table: &TableName,
    kind: MappingKind,
    name: &str,
    mapping: &serde_json::Value,
) -> Command {
    Command::mgmt(format!(
        ".create-or-alter table {} ingestion {} mapping {} {}",
        ident(table.as_str()),
        kind.as_str(),
        string_literal(name),
        string_literal(&mapping.to_string())
    ))
}

/// `.alter table ['T'] policy retention '{"SoftDeletePeriod": "d.hh:mm:ss", "Recoverability":
/// "Enabled|Disabled"}'`; no soft-delete period keeps the data forever.
pub fn alter_table_retention_policy(
    table: &TableName,
    soft_delete: Option<Duration>,
    recoverability: bool,
) -> Command {
    let policy = serde_json::json!({
        "SoftDeletePeriod": soft_delete.map(timespan_text),
        "Recoverability": if recoverability { "Enabled" } else { "Disabled" },
    });
    Command::mgmt(format!(
        ".alter table {} policy retention {}",
        ident(table.as_str()),
        string_literal(&policy.to_string())
    ))
}

/// `.alter table ['T'] policy caching hot = 7d` (the period in the largest whole unit).
pub fn alter_table_caching_policy(table: &TableName, hot: Duration) -> Command {
    Command::mgmt(format!(
        ".alter table {} policy caching hot = {}",
        ident(table.as_str()),
        short_timespan(hot)
    ))
}

/// `.alter table ['T'] policy update '[{"IsEnabled": .., "Source": .., "Query": .., ...}]'`.
pub fn alter_table_update_policy(table: &TableName, policy: &serde_json::Value) -> Command {
    Command::mgmt(format!(
        ".alter table {} policy update {}",
        ident(table.as_str()),
        string_literal(&policy.to_string())
    ))
}

/// `.show table ['T'] policy update` → `PolicyName, EntityName, Policy, ...`, `Policy` being
/// the JSON array of the table's update policy entries (or null/empty without one).
pub fn show_table_update_policy(table: &TableName) -> Command {
    Command::mgmt(format!(
        ".show table {} policy update",
        ident(table.as_str())
    ))
}

/// `.show table ['T'] policy retention` → `Policy`: the table's own retention policy as JSON
/// (`SoftDeletePeriod`, `Recoverability`), null when the table inherits the database's.
pub fn show_table_retention_policy(table: &TableName) -> Command {
    Command::mgmt(format!(
        ".show table {} policy retention",
        ident(table.as_str())
    ))
}

/// `7d`, `36h`, `90m`, `45s` or `1500ms`: the largest unit that divides the period (below a
/// millisecond is dropped; no policy period is that fine).
fn short_timespan(span: Duration) -> String {
    let ms = span.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn function_spec(name: &str) -> FunctionSpec {
        FunctionSpec {
            name: name.to_owned(),
            params: KqlCode::new("x:long = 0, s:string = \"}\"").unwrap(),
            body: KqlCode::new("Raw\n| where V > x // keep the big ones }\n| project V, s")
                .unwrap(),
            folder: "Tests".to_owned(),
            docstring: "it's {".to_owned(),
            view: false,
        }
    }

    #[test]
    fn code_must_stay_inside_its_brackets() {
        for good in [
            "T | where a == '}' | project b = \"{\"",
            "T | where s has @'C:\\' // a } in a comment\n| take 1",
            "let x = ```\n}\n```;\nT | take 1",
            "T | where a in ([1, 2]) | extend d = dynamic({\"a\": [1]})",
        ] {
            KqlCode::new(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "T } .drop table X {",
            "T | where a == '}",
            "T | where (a > 1",
            "T | where a > 1)",
            "T | extend d = dynamic([1}",
            "T | where a == 'x\n'",
            "T | extend s = ```never",
        ] {
            assert!(KqlCode::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn code_knows_what_it_names() {
        let code = KqlCode::new("['My Raw'] | join (Other) on Id | where s == 'Raw2'").unwrap();
        for name in ["My Raw", "Other", "Id", "Raw2"] {
            assert!(code.mentions(name), "{name}");
        }
        assert!(!code.mentions("Raw"));
        let commented = KqlCode::new("T // Secret").unwrap();
        assert!(!commented.mentions("Secret"));
    }

    #[test]
    fn object_commands() {
        let t = TableName::new("My T").unwrap();
        assert_eq!(
            create_or_alter_function(&function_spec("Big 'F'")).as_str(),
            ".create-or-alter function with (folder = 'Tests', docstring = 'it\\'s {', skipvalidation = 'true') ['Big \\'F\\''](x:long = 0, s:string = \"}\") { Raw\n| where V > x // keep the big ones }\n| project V, s }"
        );
        let view = FunctionSpec {
            view: true,
            ..function_spec("V")
        };
        assert!(
            create_or_alter_function(&view)
                .as_str()
                .starts_with(".create-or-alter function with (view = true, folder = 'Tests'")
        );
        let commented = FunctionSpec {
            body: KqlCode::new("T // last").unwrap(),
            ..function_spec("F")
        };
        assert!(
            create_or_alter_function(&commented)
                .as_str()
                .ends_with("{ T // last\n}")
        );
        assert_eq!(
            create_or_alter_ingestion_mapping(
                &t,
                MappingKind::Json,
                "m'1",
                &serde_json::json!([{"column": "a", "path": "$.a'"}])
            )
            .as_str(),
            r#".create-or-alter table ['My T'] ingestion json mapping 'm\'1' '[{"column":"a","path":"$.a\'"}]'"#
        );
        assert_eq!(
            alter_table_retention_policy(&t, Some(Duration::from_secs(30 * 86_400)), false)
                .as_str(),
            r#".alter table ['My T'] policy retention '{"Recoverability":"Disabled","SoftDeletePeriod":"30.00:00:00.0000000"}'"#
        );
        assert_eq!(
            alter_table_retention_policy(&t, None, true).as_str(),
            r#".alter table ['My T'] policy retention '{"Recoverability":"Enabled","SoftDeletePeriod":null}'"#
        );
        for (secs, words) in [
            (7 * 86_400, "7d"),
            (36 * 3600, "36h"),
            (90 * 60, "90m"),
            (45, "45s"),
        ] {
            assert_eq!(
                alter_table_caching_policy(&t, Duration::from_secs(secs)).as_str(),
                format!(".alter table ['My T'] policy caching hot = {words}")
            );
        }
        assert_eq!(short_timespan(Duration::from_millis(1500)), "1500ms");
        assert_eq!(
            alter_table_update_policy(
                &t,
                &serde_json::json!([{"IsEnabled": true, "Source": "Raw", "Query": "Raw | where s == 'x'"}])
            )
            .as_str(),
            r#".alter table ['My T'] policy update '[{"IsEnabled":true,"Query":"Raw | where s == \'x\'","Source":"Raw"}]'"#
        );
        assert_eq!(
            MappingKind::parse("ApacheAvro"),
            Some(MappingKind::ApacheAvro)
        );
        assert_eq!(MappingKind::parse("yaml"), None);
        assert_eq!(
            show_table_update_policy(&t).as_str(),
            ".show table ['My T'] policy update"
        );
    }
}
