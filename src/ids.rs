//! The names the product passes around, as validated types.
//!
//! Raw text becomes one of these at the edge (settings, queue messages, Kusto results) and is
//! only turned back into text by `kusto::command` (escaped) and `storage::layout` (paths).
//! Validation follows Kusto's entity-name rules: 1..=1024 characters, letters, digits, `_`,
//! `-`, `.` and spaces. Anything else is rejected with an error that names the input, so a
//! hostile name from a message never reaches a command or a blob path.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a piece of text is not a valid name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} name is empty")]
    Empty { kind: &'static str },
    #[error("{kind} name is {len} characters long; Kusto allows at most 1024")]
    TooLong { kind: &'static str, len: usize },
    #[error(
        "{kind} name {name:?} contains {bad:?}; Kusto names may only contain letters, digits, '_', '-', '.' and spaces"
    )]
    BadCharacter {
        kind: &'static str,
        name: String,
        bad: char,
    },
    #[error("{kind} name {name:?} starts or ends with a space")]
    OuterSpace { kind: &'static str, name: String },
}

const MAX_NAME_LEN: usize = 1024;

fn validate_entity_name(kind: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    let len = name.chars().count();
    if len > MAX_NAME_LEN {
        return Err(NameError::TooLong { kind, len });
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ')))
    {
        return Err(NameError::BadCharacter {
            kind,
            name: name.to_owned(),
            bad,
        });
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err(NameError::OuterSpace {
            kind,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Declares a newtype over a `String` that exists only once `$validate` accepted it, and
/// (de)serializes as a plain string, so an invalid value cannot be decoded from a message.
macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $error:ty, $validate:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, $error> {
                let value = value.into();
                let validate: fn(&str) -> Result<(), $error> = $validate;
                validate(&value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = $error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Declares a validated Kusto entity-name newtype (Kusto's entity-name rules).
macro_rules! entity_name {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        validated_string!($(#[$doc])* $name, NameError, |name| validate_entity_name($kind, name));
    };
}

entity_name!(
    /// A Kusto database name.
    DatabaseName,
    "database"
);
entity_name!(
    /// A Kusto table name (also used for external tables).
    TableName,
    "table"
);
entity_name!(
    /// A Kusto column name.
    ColumnName,
    "column"
);
entity_name!(
    /// A continuous-export name.
    ExportName,
    "continuous-export"
);
entity_name!(
    /// A materialized view's name.
    ViewName,
    "materialized view"
);

/// One table of one database: what a protect task carries, and the unit every job works on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TableRef {
    pub database: DatabaseName,
    pub table: TableName,
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.database, self.table)
    }
}

/// One table to harvest, and the export's `ExportedTo` the plan saw: what a harvest task
/// carries, so the table's state learns how far its export reached without asking again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HarvestRef {
    pub database: DatabaseName,
    pub table: TableName,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub exported_to: Option<time::OffsetDateTime>,
}

impl HarvestRef {
    pub fn table_ref(&self) -> TableRef {
        TableRef {
            database: self.database.clone(),
            table: self.table.clone(),
        }
    }
}

/// One batch of one backfill job of one table: what a batch task carries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BatchRef {
    pub database: DatabaseName,
    pub table: TableName,
    pub job: JobId,
    pub batch: BatchId,
}

impl BatchRef {
    pub fn table_ref(&self) -> TableRef {
        TableRef {
            database: self.database.clone(),
            table: self.table.clone(),
        }
    }
}

impl fmt::Display for BatchRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{} backfill {} batch {}",
            self.database, self.table, self.job, self.batch
        )
    }
}

/// Why a piece of text is not a valid job, batch, chunk or tag id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} id is empty")]
    Empty { kind: &'static str },
    #[error("{kind} id is {len} characters long; at most {max} are allowed")]
    TooLong {
        kind: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{kind} id {id:?} contains {bad:?}; only ASCII letters, digits{} are allowed", extra_chars(.allowed))]
    BadCharacter {
        kind: &'static str,
        id: String,
        bad: char,
        allowed: &'static [char],
    },
}

fn extra_chars(allowed: &[char]) -> String {
    allowed.iter().map(|c| format!(", '{c}'")).collect()
}

/// Ids end up in blob paths, queue messages and extent tags, so they are kept to ASCII
/// letters, digits and a few separators: nothing a path, a URL or a KQL string could read as
/// syntax, and no case-folding surprises.
fn validate_id(
    kind: &'static str,
    id: &str,
    max: usize,
    allowed: &'static [char],
) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if id.len() > max {
        return Err(IdError::TooLong {
            kind,
            len: id.chars().count(),
            max,
        });
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || allowed.contains(c)))
    {
        return Err(IdError::BadCharacter {
            kind,
            id: id.to_owned(),
            bad,
            allowed,
        });
    }
    Ok(())
}

/// Declares a validated id newtype: letters, digits and `$allowed`, at most `$max` long.
macro_rules! validated_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $allowed:expr) => {
        validated_string!($(#[$doc])* $name, IdError, |id| validate_id($kind, id, $max, $allowed));
    };
}

/// Separators an id may use besides letters and digits.
const ID_SEPARATORS: &[char] = &['-', '_'];

validated_id!(
    /// One backfill or restore job, e.g. `bf-20261125-0a1b2c`: a folder under `$state/jobs/`.
    JobId,
    "job",
    64,
    ID_SEPARATORS
);
validated_id!(
    /// One batch of a backfill job (a slice of the table's history exported at once).
    BatchId,
    "batch",
    64,
    ID_SEPARATORS
);
validated_id!(
    /// One chunk of a restore job (a set of files ingested at once).
    ChunkId,
    "chunk",
    64,
    ID_SEPARATORS
);
validated_id!(
    /// An extent tag, e.g. `ingest-by:<job>-<chunk>`: how a restore finds what it already
    /// ingested. Kusto reads the `ingest-by:` and `drop-by:` prefixes, hence `:`.
    ExtentTag,
    "extent tag",
    256,
    &['-', '_', ':', '.']
);

/// Why a piece of text is not a principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    #[error(
        "principal {0:?} is not `<kind>=<id>[;<tenant>]` with kind aaduser, aadgroup, aadapp or msauser"
    )]
    Form(String),
    #[error("principal {text:?} contains the control character {bad:?}")]
    Control { text: String, bad: char },
    #[error("principal is {0} characters long; at most {MAX_NAME_LEN} are allowed")]
    TooLong(usize),
}

/// The kinds of principal Kusto's role commands take (referencing-security-principals).
const PRINCIPAL_KINDS: &[&str] = &["aaduser", "aadgroup", "aadapp", "msauser"];

/// `<kind>=<id>[;<tenant>]`. The id may be a group's display name, so anything but a control
/// character is allowed after the `=`: the text only ever reaches KQL as an escaped string.
fn validate_principal(text: &str) -> Result<(), PrincipalError> {
    let len = text.chars().count();
    if len > MAX_NAME_LEN {
        return Err(PrincipalError::TooLong(len));
    }
    if let Some(bad) = text.chars().find(|c| c.is_control()) {
        return Err(PrincipalError::Control {
            text: text.to_owned(),
            bad,
        });
    }
    let form = || PrincipalError::Form(text.to_owned());
    let (kind, id) = text.split_once('=').ok_or_else(form)?;
    let known = PRINCIPAL_KINDS.iter().any(|k| k.eq_ignore_ascii_case(kind));
    let id = id.split(';').next().unwrap_or_default();
    if !known || id.trim().is_empty() || text.trim() != text {
        return Err(form());
    }
    Ok(())
}

validated_string!(
    /// A Kusto security principal as its fully qualified name: `aaduser=<UPN or object
    /// id>[;<tenant>]`, `aadgroup=<email, name or object id>[;<tenant>]`, `aadapp=<app id or
    /// name>;<tenant>`, `msauser=<UPN>`
    /// (<https://learn.microsoft.com/en-us/kusto/management/access-control/referencing-security-principals>).
    Principal,
    PrincipalError,
    validate_principal
);

impl Principal {
    /// The same principal: Kusto compares FQNs without regard to case.
    pub fn same_as(&self, other: &Principal) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }

    /// Where `text` holds two principals joined by `=` (`aadapp=a;t=aadapp=b;t`, the CLI's
    /// `--principal-map`), the index of that `=`: the first one followed by a principal
    /// kind and its own `=`.
    pub fn pair_separator(text: &str) -> Option<usize> {
        let first = text.find('=')?;
        text.char_indices()
            .skip_while(|(i, _)| *i <= first)
            .filter(|(_, c)| *c == '=')
            .map(|(i, _)| i)
            .find(|i| {
                let rest = &text[i + 1..];
                PRINCIPAL_KINDS.iter().any(|k| {
                    rest.get(..k.len() + 1)
                        .is_some_and(|head| head.eq_ignore_ascii_case(&format!("{k}=")))
                })
            })
    }
}

/// A database cursor as issued by Kusto. Opaque: only ever passed back, always as an escaped
/// string literal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of an asynchronous Kusto operation (`.export async`, `.ingest async`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OperationId(String);

impl OperationId {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A calendar day (UTC) of a table's partition column: the `yyyyMMdd` folder of the backup.
/// Rows without a datetime value (or tables without a datetime column) belong to
/// [`Day::UNDATED`], `00010101`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Day(time::Date);

impl Day {
    pub const UNDATED: Day = Day(time::macros::date!(0001 - 01 - 01));

    pub fn new(date: time::Date) -> Self {
        Self(date)
    }

    pub fn date(self) -> time::Date {
        self.0
    }

    /// Parses the `yyyyMMdd` folder name.
    pub fn parse_folder(folder: &str) -> Option<Self> {
        if folder.len() != 8 || !folder.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let num = |r: std::ops::Range<usize>| folder[r].parse::<i32>().ok();
        let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
        let day = u8::try_from(num(6..8)?).ok()?;
        time::Date::from_calendar_date(num(0..4)?, month, day)
            .ok()
            .map(Self)
    }

    pub fn folder(self) -> String {
        format!(
            "{:04}{:02}{:02}",
            self.0.year(),
            u8::from(self.0.month()),
            self.0.day()
        )
    }
}

impl TryFrom<String> for Day {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse_folder(&value).ok_or_else(|| format!("{value:?} is not a yyyyMMdd day"))
    }
}

impl From<Day> for String {
    fn from(value: Day) -> String {
        value.folder()
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.folder())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kusto_names() {
        for ok in [
            "T",
            "My_Table-1",
            "Events.v2",
            "name with spaces",
            "Täbelle",
            "表",
        ] {
            assert!(TableName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_hostile_names() {
        for bad in [
            "",
            "a'b",
            "a\"b",
            "x]",
            "['x']",
            "'); .drop table X",
            "line\nbreak",
            "tab\t",
            " lead",
            "trail ",
            "semi;colon",
            "pipe|x",
            "back\\slash",
            "slash/x",
        ] {
            assert!(TableName::new(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(TableName::new("x".repeat(1025)).is_err());
    }

    #[test]
    fn error_names_the_input() {
        let err = TableName::new("a'b").unwrap_err().to_string();
        assert!(err.contains("a'b") && err.contains("table"), "{err}");
    }

    #[test]
    fn day_folders_round_trip() {
        let d = Day::parse_folder("20240229").unwrap();
        assert_eq!(d.folder(), "20240229");
        assert_eq!(Day::UNDATED.folder(), "00010101");
        for bad in [
            "20240230",
            "2024011",
            "2024-01-01",
            "__DEFAULT_PARTITION__",
            "abcdefgh",
        ] {
            assert!(Day::parse_folder(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn deserializing_validates() {
        let bad: Result<TableName, _> = serde_json::from_str("\"x; .drop\"");
        assert!(bad.is_err());
        let good: TableName = serde_json::from_str("\"Events\"").unwrap();
        assert_eq!(good.as_str(), "Events");
    }

    #[test]
    fn ids_accept_plain_tokens() {
        assert_eq!(
            JobId::new("bf-20261125-0a1b2c").unwrap().as_str(),
            "bf-20261125-0a1b2c"
        );
        assert!(BatchId::new("000042").is_ok());
        assert!(ChunkId::new("chunk_7").is_ok());
        assert!(ExtentTag::new("ingest-by:rs-1.chunk_7").is_ok());
        assert!(JobId::new("j".repeat(64)).is_ok());
        assert!(ExtentTag::new("t".repeat(256)).is_ok());
    }

    #[test]
    fn ids_reject_hostile_text() {
        for bad in [
            "",
            "../etc",
            "a/b",
            "a b",
            "a'b",
            "a\"b",
            "x]",
            "new\nline",
            "semi;colon",
            "p%41th",
            "q?x=1",
            "Täg",
            "ingest-by:x",
        ] {
            assert!(JobId::new(bad).is_err(), "job {bad:?}");
            assert!(BatchId::new(bad).is_err(), "batch {bad:?}");
            assert!(ChunkId::new(bad).is_err(), "chunk {bad:?}");
        }
        for bad in ["", "a b", "a'b", "ingest-by:x]", "drop-by:a/b", "x\u{0}"] {
            assert!(ExtentTag::new(bad).is_err(), "tag {bad:?}");
        }
        assert!(JobId::new("j".repeat(65)).is_err());
        assert!(ExtentTag::new("t".repeat(257)).is_err());
    }

    #[test]
    fn id_errors_name_the_input_and_deserializing_validates() {
        let err = JobId::new("a/b").unwrap_err().to_string();
        assert!(
            err.contains("job") && err.contains("a/b") && err.contains("'/'"),
            "{err}"
        );
        assert!(serde_json::from_str::<ChunkId>("\"../x\"").is_err());
        let ok: BatchId = serde_json::from_str("\"b-1\"").unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"b-1\"");
    }

    #[test]
    fn table_refs_validate_both_names() {
        let t: TableRef = serde_json::from_str(r#"{"database":"Sales","table":"Orders"}"#).unwrap();
        assert_eq!(t.to_string(), "Sales.Orders");
        assert!(
            serde_json::from_str::<TableRef>(r#"{"database":"Sales","table":"x'; .drop"}"#)
                .is_err()
        );
    }

    #[test]
    fn principals_take_kustos_forms_and_nothing_else() {
        for ok in [
            "aaduser=imikeoein@fabrikam.com",
            "aaduser=cd709aed-0000-4000-8000-e3953dec735e;72f988bf-86f1-41af-91ab-2d7cd011db47",
            "aadGroup=SG Display Name;fabrikam.com",
            "aadapp=4c7e82bd-6adb-46c3-b413-fdd44834c69b;fabrikam.com",
            "msauser=abbiatkins@live.com",
            "aadgroup=it's \"quoted\"');.drop table T;fabrikam.com",
        ] {
            assert!(Principal::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "imikeoein@fabrikam.com",
            "aadrole=x",
            "aaduser=",
            "aaduser=;tenant",
            " aaduser=x",
            "aaduser=x\n.drop table T",
            "aaduser=x\u{0}",
        ] {
            assert!(Principal::new(bad).is_err(), "{bad:?}");
        }
        assert!(
            Principal::new("aaduser=A@X.com")
                .unwrap()
                .same_as(&Principal::new("AADUSER=a@x.COM").unwrap())
        );
        let err: Result<Principal, _> = serde_json::from_str("\"nobody\"");
        assert!(err.unwrap_err().to_string().contains("aaduser, aadgroup"));
    }

    #[test]
    fn a_pair_of_principals_splits_at_the_second_kind() {
        for (text, at) in [
            ("aadapp=a;t=aadapp=b;t", Some(10)),
            ("aaduser=x@y.com=AADGROUP=g", Some(15)),
            ("aadgroup=a=b;t=aaduser=u", Some(14)),
            ("aadapp=a;t", None),
            ("aadapp=a;t=nobody", None),
        ] {
            assert_eq!(Principal::pair_separator(text), at, "{text}");
        }
    }
}
