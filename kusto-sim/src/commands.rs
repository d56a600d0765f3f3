//! Management command execution: parse, dispatch to the module of the command's concern,
//! and run any operators piped after a `.show` command over its result (a listing the pipe
//! filters by name is first narrowed to that object: `lookup`).

mod export;
mod extents;
mod external;
mod ingestion;
mod lookup;
mod objects;
mod policies;
mod principals;
mod queued;
mod schema;
mod script;
mod views;

use std::future::Future;
use std::pin::Pin;

use crate::backend::Backend;
use crate::engine::{self, Ctx};
use crate::error::SimError;
use crate::parse::command::{Command, parse_command};
use crate::protocol::QueryOutcome;
use crate::query_runner::{self, Limits};
use crate::table::ResultTable;

/// A management endpoint result: a plain command result (V1 `Table_0`), or a query-shaped
/// one (a query sent to mgmt, or a command piped into operators).
#[derive(Debug, Clone)]
pub enum MgmtResult {
    Command(ResultTable),
    Query(QueryOutcome),
}

pub async fn execute(sim: &Backend, db: &str, csl: &str) -> Result<MgmtResult, SimError> {
    if !csl.trim_start().starts_with('.') {
        return query_runner::run(sim, db, csl, &Limits::default())
            .await
            .map(MgmtResult::Query);
    }
    let parsed = parse_command(csl)?;
    let command = lookup::narrow(parsed.command, &parsed.pipe);
    let table = run(sim, db, command).await?;
    if parsed.pipe.is_empty() {
        return Ok(MgmtResult::Command(table));
    }
    let primary = engine::run(table, &parsed.pipe, &mut Ctx::new(0))?;
    Ok(MgmtResult::Query(QueryOutcome {
        primary,
        cursor: None,
        partial_error: None,
    }))
}

type BoxedResult<'a> = Pin<Box<dyn Future<Output = Result<ResultTable, SimError>> + Send + 'a>>;

/// Boxed so `.execute database script` can run commands recursively.
pub(crate) fn run<'a>(sim: &'a Backend, db: &'a str, command: Command) -> BoxedResult<'a> {
    Box::pin(async move {
        use Command::*;
        refuse_on_follower(sim, db, &command)?;
        match command {
            ExecuteScript { props, script } => script::execute(sim, db, &props, &script).await,
            CreateOrAlterExternalTable(def) => external::create_or_alter_table(sim, db, &def),
            ShowExternalTables { .. } | DropExternalTable { .. } => {
                external::tables(sim, db, command)
            }
            CreateOrAlterContinuousExport {
                name,
                over,
                external_table,
                props,
                query,
            } => {
                external::create_or_alter_export(sim, db, name, over, external_table, props, query)
            }
            ShowContinuousExports { .. }
            | ShowContinuousExport { .. }
            | ShowContinuousExportArtifacts { .. }
            | ShowContinuousExportFailures { .. }
            | SetContinuousExportDisabled { .. }
            | DropContinuousExport { .. } => external::exports(sim, db, command),
            ExportToTable {
                is_async,
                external_table,
                props,
                query,
            } => export::export(sim, db, is_async, &external_table, &props, &query).await,
            ShowOperations { ids } => Ok(export::show_operations(sim, &ids)),
            ShowOperationDetails { id } => export::operation_details(sim, id),
            Ingest {
                is_async,
                table,
                uris,
                props,
            } => ingestion::ingest(sim, db, is_async, &table, &uris, &props).await,
            IngestInline { table, props, data } => {
                ingestion::ingest_inline(sim, db, &table, &props, &data)
            }
            SetOrAppend {
                mode,
                table,
                props,
                query,
                ..
            } => ingestion::set_or_append(sim, db, mode, &table, &props, &query).await,
            DeleteRecords { table, query, .. } => extents::delete_records(sim, db, &table, &query),
            ShowExtents(sel) => extents::show(sim, db, &sel),
            ShowTablesExtents(sels) => extents::show_tables(sim, db, &sels),
            DropExtents(sel) => extents::drop(sim, db, &sel),
            MoveExtents {
                is_async: true,
                from,
                to_table,
                props,
            } => extents::move_async(sim, db, from, to_table, props),
            MoveExtents {
                from,
                to_table,
                props,
                ..
            } => extents::move_to(sim, db, &from, &to_table, &props),
            DropExtentTags { table, tags } => extents::drop_tags(sim, db, &table, &tags),
            ShowDatabasePrincipals => principals::show(sim, db, false),
            ShowPrincipalRoles => principals::show(sim, db, true),
            AddDatabasePrincipals {
                role,
                principals,
                notes,
                skip_results,
            } => principals::add(sim, db, &role, principals, &notes, skip_results),
            ShowTablePrincipals { table } => principals::show_table(sim, db, &table),
            AddTablePrincipals {
                table,
                role,
                principals,
                notes,
                skip_results,
            } => principals::add_table(sim, db, &table, &role, principals, &notes, skip_results),
            ShowClusterManagedIdentityPolicy => Ok(principals::show_identity_policy(sim)),
            AlterClusterManagedIdentityPolicy { merge, policy } => {
                principals::alter_identity_policy(sim, merge, &policy)
            }
            ShowTablePolicy { table, kind } => policies::show(sim, db, &table, kind),
            AlterTablePolicy { table, change } => policies::alter(sim, db, &table, change),
            DeleteTablePolicy { table, kind } => policies::delete(sim, db, &table, kind),
            ShowCapacity { resource } => Ok(extents::capacity(sim, resource.as_deref())),
            GetIngestionResources => queued::ingestion_resources(sim).await,
            GetKustoIdentityToken => queued::identity_token(sim).await,
            ShowIngestionFailures { operation_id } => Ok(queued::failures(sim, operation_id)),
            CreateFunction {
                name,
                params,
                body,
                props,
                or_alter,
                if_not_exists,
            } => objects::create_function(
                sim,
                db,
                objects::FunctionDef {
                    name,
                    params,
                    body,
                    props,
                    or_alter,
                    if_not_exists,
                },
            ),
            CreateMaterializedView { .. } | ShowMaterializedViews => {
                views::execute(sim, db, command)
            }
            ShowFunctions { name } => objects::show_functions(sim, db, name.as_deref()),
            CreateIngestionMapping {
                table,
                kind,
                name,
                mapping,
                or_alter,
            } => objects::create_mapping(
                sim,
                db,
                objects::MappingDef {
                    table,
                    kind,
                    name,
                    mapping,
                    or_alter,
                },
            ),
            ShowIngestionMappings { table, kind } => {
                objects::show_mappings(sim, db, &table, kind.as_deref())
            }
            other => schema::execute(sim, db, other),
        }
    })
}

/// A follower database is read-only: "the data, tables, and policies in the database can't
/// be modified except for caching policy, principals, and permissions", and continuous
/// export "can't be created on follower databases"
/// (<https://learn.microsoft.com/azure/data-explorer/follower>,
/// <https://learn.microsoft.com/kusto/management/data-export/continuous-data-export#limitations>).
fn refuse_on_follower(sim: &Backend, db: &str, command: &Command) -> Result<(), SimError> {
    use crate::parse::command::{PolicyChange, is_show};
    let follower = sim.cluster().databases.get(db).is_some_and(|d| d.follower);
    let allowed = is_show(command)
        || matches!(
            command,
            Command::AddDatabasePrincipals { .. }
                | Command::AlterTablePolicy {
                    change: PolicyChange::Caching { .. },
                    ..
                }
        );
    if follower && !allowed {
        return Err(SimError::semantic(format!(
            "Database '{db}' is a read-only follower database: {} can't modify it; run it on the leader database",
            command_type(command)
        )));
    }
    Ok(())
}

/// Kusto's name for a command kind, as `.execute database script` reports it.
pub(crate) fn command_type(c: &Command) -> &'static str {
    use Command::*;
    match c {
        CreateTable { .. } | CreateTableBasedOn { .. } => "TableCreate",
        CreateMergeTables { .. } | AlterMergeTable { .. } => "TableCreateMerge",
        DropTables { .. } => "TableDrop",
        AlterIngestionTimePolicy { .. } => "TableSetIngestionTimePolicy",
        CreateOrAlterExternalTable(_) => "ExternalTableCreateOrAlter",
        DropExternalTable { .. } => "ExternalTableDrop",
        CreateOrAlterContinuousExport { .. } => "ContinuousExportCreateOrAlter",
        SetContinuousExportDisabled { .. } => "ContinuousExportEnableDisable",
        DropContinuousExport { .. } => "ContinuousExportDrop",
        IngestInline { .. } | Ingest { .. } => "DataIngestPull",
        SetOrAppend { .. } => "TableSetOrAppend",
        ExportToTable { .. } => "DataExportToExternalTable",
        DeleteRecords { .. } => "TableDeleteRecords",
        DropExtents(_) => "ExtentsDrop",
        MoveExtents { .. } => "ExtentsMove",
        DropExtentTags { .. } => "ExtentsTagsDrop",
        AlterTablePolicy { .. } => "TableAlterPolicy",
        DeleteTablePolicy { .. } => "TableDeletePolicy",
        ExecuteScript { .. } => "DatabaseScriptExecute",
        CreateFunction { .. } => "FunctionCreateOrAlter",
        CreateMaterializedView { .. } => "MaterializedViewCreate",
        CreateIngestionMapping { .. } => "TableIngestionMappingCreateOrAlter",
        AddDatabasePrincipals { .. } => "DatabaseAddPrincipals",
        AddTablePrincipals { .. } => "TableAddPrincipals",
        _ => "Show",
    }
}
