//! Schema commands: tables, policies, scripts, external tables, continuous exports.

use super::{ColumnDefs, Command, Props, with_props};
use crate::error::SimError;
use crate::lexer::Tok;
use crate::parse::Parser;
use crate::value::ColumnType;

#[derive(Debug, Clone, PartialEq)]
pub enum PartitionFn {
    /// `P:string [= Col]` (without a column, `P` itself names a column).
    StringColumn(String),
    /// `P:datetime = startofday|startofweek|startofmonth|startofyear(Col)`.
    StartOf(&'static str, String),
    /// `P:datetime = bin(Col, span)`.
    Bin(String, i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartitionDef {
    pub name: String,
    pub func: PartitionFn,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathPart {
    Separator(String),
    Partition(String),
    DatetimePattern(String, String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExternalTableDef {
    pub name: String,
    pub columns: ColumnDefs,
    pub partitions: Vec<PartitionDef>,
    pub path_format: Option<Vec<PathPart>>,
    pub data_format: String,
    pub connection_strings: Vec<String>,
    pub props: Props,
    /// `.create` fails if the table exists, `.alter` if it doesn't.
    pub mode: CreateMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    Create,
    Alter,
    CreateOrAlter,
}

pub(super) fn parse(p: &mut Parser) -> Result<Option<Command>, SimError> {
    if p.eat_kw("create-or-alter") {
        return create_or_alter(p, CreateMode::CreateOrAlter);
    }
    if p.eat_kw("create-merge") {
        return create_merge(p).map(Some);
    }
    if p.eat_kw("add") {
        return add_principals(p).map(Some);
    }
    if p.eat_kw("alter-merge") {
        if p.eat_kw("cluster") {
            return cluster_policy(p, true).map(Some);
        }
        p.expect_kw("table")?;
        let name = p.name()?;
        if p.eat_kw("policy") {
            let change = super::policy::change(p, true)?;
            return Ok(change.map(|change| Command::AlterTablePolicy {
                table: name,
                change,
            }));
        }
        let columns = column_defs(p)?;
        let props = with_props(p)?;
        return Ok(Some(Command::AlterMergeTable {
            name,
            columns,
            props,
        }));
    }
    if p.eat_kw("create") {
        if p.eat_kw("function") {
            return super::objects::function(p, false).map(Some);
        }
        // `.create [async] [ifnotexists] materialized-view`: the only `.create` these words
        // come before.
        let is_async = p.eat_kw("async");
        let if_not_exists = p.eat_kw("ifnotexists");
        if p.eat_kw("materialized-view") {
            return super::objects::materialized_view(p, is_async, if_not_exists).map(Some);
        }
        if is_async || if_not_exists {
            return Err(p.unexpected("materialized-view"));
        }
        if p.eat_kw("table") {
            let name = p.name()?;
            if p.eat_kw("ingestion") {
                return super::objects::mapping(p, name, false).map(Some);
            }
            if p.eat_kw("based-on") {
                let source = p.name()?;
                let if_not_exists = p.eat_kw("ifnotexists");
                let props = with_props(p)?;
                return Ok(Some(Command::CreateTableBasedOn {
                    name,
                    source,
                    if_not_exists,
                    props,
                }));
            }
            let columns = column_defs(p)?;
            let props = with_props(p)?;
            return Ok(Some(Command::CreateTable {
                name,
                columns,
                props,
            }));
        }
        return create_or_alter(p, CreateMode::Create);
    }
    if p.eat_kw("alter") {
        return alter(p);
    }
    if p.eat_kw("drop") {
        return drop(p);
    }
    if p.eat_kw("execute") {
        p.eat_kw("database");
        p.expect_kw("script")?;
        let props = with_props(p)?;
        p.expect_punct("<|")?;
        let script = p.take_rest().to_string();
        return Ok(Some(Command::ExecuteScript { props, script }));
    }
    for (kw, disabled) in [("enable", false), ("disable", true)] {
        if p.eat_kw(kw) {
            p.expect_kw("continuous-export")?;
            let name = p.name()?;
            return Ok(Some(Command::SetContinuousExportDisabled {
                name,
                disabled,
            }));
        }
    }
    Ok(None)
}

/// The role words `.add database` takes.
const DATABASE_ROLE_WORDS: [&str; 6] = [
    "admins",
    "users",
    "viewers",
    "unrestrictedviewers",
    "ingestors",
    "monitors",
];
/// The role words `.add table` takes.
const TABLE_ROLE_WORDS: [&str; 2] = ["admins", "ingestors"];

/// `.add database D <role> (principals) [skip-results] ['notes']` (the database is the
/// request's) or `.add table T <role> (...) [skip-results] ['notes']`
/// (<https://learn.microsoft.com/en-us/kusto/management/manage-database-security-roles>,
/// <https://learn.microsoft.com/en-us/kusto/management/manage-table-security-roles>).
fn add_principals(p: &mut Parser) -> Result<Command, SimError> {
    let table = if p.eat_kw("table") {
        Some(p.name()?)
    } else {
        p.expect_kw("database")?;
        p.name()?;
        None
    };
    let role = p.name()?;
    // Kusto's grammar knows only the documented role words: anything else is a syntax
    // error before any role is looked at (the words are the grammar's, so the parser keeps
    // them; `roles` maps them to roles).
    let words: &[&str] = match table {
        Some(_) => &TABLE_ROLE_WORDS,
        None => &DATABASE_ROLE_WORDS,
    };
    let known = words.iter().any(|w| w.eq_ignore_ascii_case(&role));
    if !known {
        return Err(SimError::Syntax(format!(
            "unknown role '{role}' in .add {}",
            if table.is_some() { "table" } else { "database" }
        )));
    }
    let principals = p.paren_list(Parser::string)?;
    let skip_results = p.eat_kw("skip-results");
    let notes = match p.peek() {
        Some(Tok::Str(_)) => p.string()?,
        _ => String::new(),
    };
    Ok(match table {
        Some(table) => Command::AddTablePrincipals {
            table,
            role,
            principals,
            notes,
            skip_results,
        },
        None => Command::AddDatabasePrincipals {
            role,
            principals,
            notes,
            skip_results,
        },
    })
}

pub(super) fn show_database(p: &mut Parser) -> Result<Option<Command>, SimError> {
    // `.show database [Db] schema as (csl script | json)`; the database, when named, is
    // resolved by the executor against the request's database.
    if !p.is_kw("schema") {
        p.name()?;
    }
    if p.eat_kw("principals") {
        return Ok(Some(Command::ShowDatabasePrincipals));
    }
    if p.eat_kw("principal") {
        p.expect_kw("roles")?;
        return Ok(Some(Command::ShowPrincipalRoles));
    }
    if !p.eat_kw("schema") || !p.eat_kw("as") {
        return Ok(None);
    }
    if p.eat_kw("json") {
        with_props(p)?;
        return Ok(Some(Command::ShowDatabaseSchemaJson));
    }
    if p.eat_kw("csl") || p.eat_kw("kql") {
        p.expect_kw("script")?;
        // Principals, row-level security and restricted view access: "Defaults to `true`"
        // (show-schema-database, Supported options).
        let include_security = with_props(p)?
            .get_bool("IncludeSecuritySettings")
            .unwrap_or(true);
        return Ok(Some(Command::ShowDatabaseSchemaScript { include_security }));
    }
    Ok(None)
}

fn create_merge(p: &mut Parser) -> Result<Command, SimError> {
    let single = p.eat_kw("table");
    if !single {
        p.expect_kw("tables")?;
    }
    let mut tables = vec![table_schema(p)?];
    while !single && p.eat_punct(",") {
        tables.push(table_schema(p)?);
    }
    let props = with_props(p)?;
    Ok(Command::CreateMergeTables {
        tables,
        props,
        single,
    })
}

/// The part after `.alter[-merge] cluster`: `policy managed_identity "<json array>"`.
fn cluster_policy(p: &mut Parser, merge: bool) -> Result<Command, SimError> {
    p.expect_kw("policy")?;
    p.expect_kw("managed_identity")?;
    let policy = p.string()?;
    Ok(Command::AlterClusterManagedIdentityPolicy { merge, policy })
}

fn alter(p: &mut Parser) -> Result<Option<Command>, SimError> {
    if p.eat_kw("cluster") {
        return cluster_policy(p, false).map(Some);
    }
    let tables = if p.eat_kw("tables") {
        p.paren_list(Parser::name)?
    } else if p.eat_kw("table") {
        vec![p.name()?]
    } else {
        return create_or_alter(p, CreateMode::Alter);
    };
    if !p.eat_kw("policy") {
        return Ok(None);
    }
    if !p.eat_kw("ingestiontime") {
        let [table] = tables.as_slice() else {
            return Ok(None);
        };
        let change = super::policy::change(p, false)?;
        return Ok(change.map(|change| Command::AlterTablePolicy {
            table: table.clone(),
            change,
        }));
    }
    // Only `true`: the command's page and Kusto.Language's grammar have no `false` form; the
    // policy is turned off with `.delete table T policy ingestiontime`.
    match p.advance() {
        Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("true") => {}
        _ => return Err(p.unexpected("true")),
    }
    Ok(Some(Command::AlterIngestionTimePolicy {
        tables,
        enabled: true,
    }))
}

fn drop(p: &mut Parser) -> Result<Option<Command>, SimError> {
    if p.eat_kw("table") || p.is_kw("tables") {
        let names = if p.eat_kw("tables") {
            p.paren_list(Parser::name)?
        } else {
            vec![p.name()?]
        };
        if let [table] = names.as_slice()
            && p.eat_kw("extent")
        {
            p.expect_kw("tags")?;
            let tags = p.paren_list(Parser::string)?;
            return Ok(Some(Command::DropExtentTags {
                table: table.clone(),
                tags,
            }));
        }
        let if_exists = p.eat_kw("ifexists");
        return Ok(Some(Command::DropTables { names, if_exists }));
    }
    if p.eat_kw("external") {
        p.expect_kw("table")?;
        let name = p.name()?;
        let if_exists = p.eat_kw("ifexists");
        return Ok(Some(Command::DropExternalTable { name, if_exists }));
    }
    if p.eat_kw("continuous-export") {
        let name = p.name()?;
        return Ok(Some(Command::DropContinuousExport { name }));
    }
    Ok(None)
}

fn create_or_alter(p: &mut Parser, mode: CreateMode) -> Result<Option<Command>, SimError> {
    if mode == CreateMode::CreateOrAlter && p.eat_kw("function") {
        return super::objects::function(p, true).map(Some);
    }
    if mode == CreateMode::CreateOrAlter && p.eat_kw("table") {
        let name = p.name()?;
        p.expect_kw("ingestion")?;
        return super::objects::mapping(p, name, true).map(Some);
    }
    if p.eat_kw("external") {
        p.expect_kw("table")?;
        return external_table(p, mode).map(|d| Some(Command::CreateOrAlterExternalTable(d)));
    }
    if mode == CreateMode::CreateOrAlter && p.eat_kw("continuous-export") {
        return continuous_export(p).map(Some);
    }
    Ok(None)
}

fn continuous_export(p: &mut Parser) -> Result<Command, SimError> {
    let name = p.name()?;
    let over = if p.eat_kw("over") {
        p.paren_list(Parser::name)?
    } else {
        Vec::new()
    };
    p.expect_kw("to")?;
    p.expect_kw("table")?;
    let external_table = p.name()?;
    let props = with_props(p)?;
    p.expect_punct("<|")?;
    let query = p.take_rest().to_string();
    Ok(Command::CreateOrAlterContinuousExport {
        name,
        over,
        external_table,
        props,
        query,
    })
}

/// `Name (col:type, ...)`.
fn table_schema(p: &mut Parser) -> Result<(String, ColumnDefs), SimError> {
    let name = p.name()?;
    Ok((name, column_defs(p)?))
}

fn column_defs(p: &mut Parser) -> Result<ColumnDefs, SimError> {
    p.paren_list(|p| {
        let column = p.name()?;
        p.expect_punct(":")?;
        Ok((column, column_type(p)?))
    })
}

fn column_type(p: &mut Parser) -> Result<ColumnType, SimError> {
    let word = p.name()?;
    ColumnType::parse(&word)
        .ok_or_else(|| SimError::Syntax(format!("unknown column type '{word}'")))
}

fn external_table(p: &mut Parser, mode: CreateMode) -> Result<ExternalTableDef, SimError> {
    let name = p.name()?;
    let columns = column_defs(p)?;
    p.expect_kw("kind")?;
    p.expect_punct("=")?;
    let kind = p.name()?;
    if !["storage", "blob", "adl"]
        .iter()
        .any(|k| kind.eq_ignore_ascii_case(k))
    {
        return Err(crate::error::not_supported(&format!(
            "external table kind={kind}"
        )));
    }
    let mut partitions = Vec::new();
    let mut path_format = None;
    if p.eat_kw("partition") {
        p.expect_kw("by")?;
        partitions = p.paren_list(partition)?;
        if p.eat_kw("pathformat") {
            p.expect_punct("=")?;
            path_format = Some(path_parts(p)?);
        }
    }
    p.expect_kw("dataformat")?;
    p.expect_punct("=")?;
    let data_format = p.name()?.to_ascii_lowercase();
    let connection_strings = p.paren_list(Parser::string)?;
    let props = with_props(p)?;
    Ok(ExternalTableDef {
        name,
        columns,
        partitions,
        path_format,
        data_format,
        connection_strings,
        props,
        mode,
    })
}

fn partition(p: &mut Parser) -> Result<PartitionDef, SimError> {
    let name = p.name()?;
    p.expect_punct(":")?;
    let ty = column_type(p)?;
    let func = match ty {
        ColumnType::String if p.eat_punct("=") => PartitionFn::StringColumn(p.name()?),
        ColumnType::String => PartitionFn::StringColumn(name.clone()),
        ColumnType::DateTime => {
            p.expect_punct("=")?;
            datetime_partition(p)?
        }
        other => {
            let what = format!("partition by {}", other.kusto_name());
            return Err(crate::error::not_supported(&what));
        }
    };
    Ok(PartitionDef { name, func })
}

fn datetime_partition(p: &mut Parser) -> Result<PartitionFn, SimError> {
    let func = p.name()?.to_ascii_lowercase();
    p.expect_punct("(")?;
    let column = p.name()?;
    let result = match func.as_str() {
        "bin" => {
            p.expect_punct(",")?;
            match p.advance() {
                Some(Tok::Span(t)) if t > 0 => PartitionFn::Bin(column, t),
                _ => return Err(p.unexpected("a positive timespan")),
            }
        }
        "startofday" => PartitionFn::StartOf("startofday", column),
        "startofweek" => PartitionFn::StartOf("startofweek", column),
        "startofmonth" => PartitionFn::StartOf("startofmonth", column),
        "startofyear" => PartitionFn::StartOf("startofyear", column),
        other => {
            return Err(SimError::Syntax(format!(
                "unknown partition function '{other}'"
            )));
        }
    };
    p.expect_punct(")")?;
    Ok(result)
}

fn path_parts(p: &mut Parser) -> Result<Vec<PathPart>, SimError> {
    p.expect_punct("(")?;
    let mut parts = Vec::new();
    while !p.eat_punct(")") {
        let part = match p.advance() {
            Some(Tok::Str(s)) => PathPart::Separator(s),
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("datetime_pattern") => {
                p.expect_punct("(")?;
                let format = p.string()?;
                p.expect_punct(",")?;
                let partition = p.name()?;
                p.expect_punct(")")?;
                PathPart::DatetimePattern(format, partition)
            }
            Some(Tok::Ident(w) | Tok::Quoted(w)) => PathPart::Partition(w),
            _ => return Err(p.unexpected("a path format element")),
        };
        parts.push(part);
    }
    Ok(parts)
}
