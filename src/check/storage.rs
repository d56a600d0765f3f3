//! What no Kusto command or data-plane call can read, measured instead: Azure RBAC is
//! management-plane, so the app cannot list its own role assignments on the backup account.
//!
//! - The app's identity: a probe blob under `$state/check/` is created, read, listed and
//!   deleted, and a probe message is sent to the task queue, peeked and deleted; the first
//!   step storage refuses (HTTP 401/403) is the finding, with the role assignment that fixes
//!   it (docs/deploy.md: Storage Blob Data Contributor and Storage Queue Data Contributor on
//!   the backup account).
//! - The cluster's identity: the cluster exports one row through a probe external table
//!   whose connection string carries `AdxBackup__ClusterStorageAuth`, exactly as protect's
//!   external tables do, into `$state/check/cluster-<run>/`. A continuous export writes
//!   through its external table, so this is the narrowest command that proves the same
//!   write: `.export to <format>` with a managed identity authenticates under another
//!   managed-identity usage (`ExportRequest`) than the external table's (`ExternalTable`),
//!   and a query over an external table proves only read access
//!   (<https://learn.microsoft.com/kusto/management/managed-identity-policy>). The probe
//!   table is dropped and the file deleted right after.

use std::time::Duration;

use bytes::Bytes;

use super::{CheckError, CheckReport, Finding};
use crate::app::App;
use crate::ids::{ColumnName, DatabaseName, TableName};
use crate::kusto::command::{self, ExternalTableSpec, QueryBuilder};
use crate::kusto::types::KustoType;
use crate::kusto::{KustoError, Step};
use crate::storage::StorageError;

/// What the probes write: enough to recognise a leftover.
const PROBE_TEXT: &str = "adx-backup check";
/// The DocString of the cluster probe's external table.
const PROBE_TABLE_DOC: &str = "adx-backup:check probe";
/// How long the probe message stays hidden; it expires a second later.
const PROBE_MESSAGE_HIDDEN: Duration = Duration::from_secs(300);

const BLOB_ROLE: &str = "Storage Blob Data Contributor";
const QUEUE_ROLE: &str = "Storage Queue Data Contributor";

/// One probe step that failed: what it was doing, and storage's answer.
type Failed = (String, StorageError);

/// Probes the app's own rights on the backup container and the task queue; true when the
/// app may write and delete blobs (the cluster probe needs that to clean up after itself).
pub(super) async fn app_rights(app: &App, r: &mut CheckReport) -> Result<bool, CheckError> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let blob = blob_probe(app, &run).await;
    let blobs_ok = blob.is_ok();
    let queue = queue_probe(app).await;
    for (outcome, role) in [(blob, BLOB_ROLE), (queue, QUEUE_ROLE)] {
        if let Err((step, e)) = outcome {
            r.findings.push(app_refused(app, &step, e, role)?);
        }
    }
    Ok(blobs_ok)
}

/// Create, read, list and delete one small blob; stops at the first failure.
async fn blob_probe(app: &App, run: &str) -> Result<(), Failed> {
    let blobs = &app.blobs;
    let container = blobs.container_name();
    let path = app.layout.check_app_probe(run);
    let failed = |what: String| move |e| (what, e);
    blobs
        .ensure_container()
        .await
        .map_err(failed(format!("create container {container} (if missing)")))?;
    blobs
        .create_new(&path, Bytes::from_static(PROBE_TEXT.as_bytes()))
        .await
        .map_err(failed(format!("create blob {container}/{path}")))?;
    blobs
        .read(&path)
        .await
        .map_err(failed(format!("read blob {container}/{path}")))?;
    blobs
        .list_page(&path, None, 1)
        .await
        .map_err(failed(format!("list blobs in container {container}")))?;
    blobs
        .delete(&path)
        .await
        .map_err(failed(format!("delete blob {container}/{path}")))
}

/// Send a message no worker will see, peek at the queue, delete the message.
async fn queue_probe(app: &App) -> Result<(), Failed> {
    let queue = &app.tasks;
    let name = queue.name();
    let failed = |what: String| move |e| (what, e);
    queue
        .ensure_exists()
        .await
        .map_err(failed(format!("create queue {name} (if missing)")))?;
    let (id, receipt) = queue
        .send_unseen(PROBE_TEXT, PROBE_MESSAGE_HIDDEN)
        .await
        .map_err(failed(format!("send a message to queue {name}")))?;
    queue
        .peek(1)
        .await
        .map_err(failed(format!("peek at queue {name}")))?;
    queue
        .delete(&id, &receipt)
        .await
        .map_err(failed(format!("delete a message from queue {name}")))
}

/// The finding for a probe step storage refused; any other failure is an error of the
/// check itself (storage unreachable, a missing queue it could not create).
fn app_refused(app: &App, step: &str, e: StorageError, role: &str) -> Result<Finding, CheckError> {
    let Some(answer) = e.refused_rights() else {
        return Err(CheckError::Storage {
            what: format!("probe the app's storage rights ({step})"),
            source: Box::new(e),
        });
    };
    let account = account_name(&app.settings.storage.blob_service_uri);
    Ok(Finding {
        database: None,
        table: None,
        problem: format!(
            "backup storage refused the app's identity: {step} failed with {answer}; the app needs {role} on storage account {account}"
        ),
        fix: role_assignment(
            "<principal id of the app's managed identity>",
            role,
            &format!("<resource id of storage account {account}>"),
        ),
    })
}

/// Has the cluster write one row into the backup container through a probe external table
/// on `db` (where the app is Database Admin), then removes the table and the file.
pub(super) async fn cluster_write(
    app: &App,
    db: &DatabaseName,
    r: &mut CheckReport,
) -> Result<(), CheckError> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let spec = probe_table(app, &run)?;
    Step::database(db, "create the storage probe's external table")
        .mgmt(&app.kusto, &command::create_external_table(&spec))
        .await?;
    let column = probe_column()?;
    let exported = Step::database(db, "export one row through the cluster's storage auth")
        .mgmt(
            &app.kusto,
            &command::export_to_table(&spec.name, &QueryBuilder::print_text(&column, PROBE_TEXT)),
        )
        .await;
    // Cleaned up whatever the export did; a leftover table would only cost a name.
    Step::database(db, "drop the storage probe's external table")
        .mgmt(&app.kusto, &command::drop_external_table(&spec.name))
        .await?;
    remove_probe_files(app, &run).await?;
    match exported {
        Ok(_) => Ok(()),
        Err(e) => match &*e.source {
            KustoError::StorageDenied { message, .. } => {
                r.findings.push(cluster_refused(app, message));
                Ok(())
            }
            _ => Err(e.into()),
        },
    }
}

/// An unpartitioned parquet external table over `$state/check/cluster-<run>`, with the
/// cluster storage auth protect's external tables carry.
fn probe_table(app: &App, run: &str) -> Result<ExternalTableSpec, CheckError> {
    let s = &app.settings;
    let name = TableName::new(format!("{}check_{run}", s.protect.object_prefix)).map_err(|e| {
        CheckError::Unexpected {
            what: "the storage probe's external table name".to_owned(),
            message: e.to_string(),
        }
    })?;
    let url = app.layout.blob_url(
        &s.protect.cluster_storage_uri,
        &s.storage.container,
        &app.layout.check_cluster_probe_root(run),
    );
    Ok(ExternalTableSpec {
        name,
        columns: vec![(probe_column()?, KustoType::String)],
        partition: None,
        storage_uri: format!("{url};{}", s.protect.cluster_storage_auth),
        folder: "adx-backup".to_owned(),
        file_extension: ".parquet".to_owned(),
        doc_string: PROBE_TABLE_DOC.to_owned(),
        name_prefix: None,
    })
}

fn probe_column() -> Result<ColumnName, CheckError> {
    ColumnName::new("Probe").map_err(|e| CheckError::Unexpected {
        what: "the storage probe's column".to_owned(),
        message: e.to_string(),
    })
}

/// Deletes what the cluster wrote under the probe's folder.
async fn remove_probe_files(app: &App, run: &str) -> Result<(), CheckError> {
    let folder = format!("{}/", app.layout.check_cluster_probe_root(run));
    let storage = |e| CheckError::Storage {
        what: format!("remove the storage probe's files under {folder}"),
        source: Box::new(e),
    };
    let page = app
        .blobs
        .list_page(&folder, None, crate::storage::blob::MAX_PAGE_SIZE)
        .await
        .map_err(storage)?;
    for item in page.items {
        app.blobs.delete(&item.path).await.map_err(storage)?;
    }
    Ok(())
}

fn cluster_refused(app: &App, kusto: &str) -> Finding {
    let s = &app.settings;
    let account = account_name(&s.storage.blob_service_uri);
    let container = &s.storage.container;
    let scope = format!(
        "<resource id of storage account {account}>/blobServices/default/containers/{container}"
    );
    let fix = match super::cluster_identity(app) {
        Some("system") | None => role_assignment(
            "<principal id of the cluster's identity: az kusto cluster show -g <rg> -n <cluster> --query identity.principalId>",
            BLOB_ROLE,
            &scope,
        ),
        Some(object_id) => role_assignment(object_id, BLOB_ROLE, &scope),
    };
    Finding {
        database: None,
        table: None,
        problem: format!(
            "backup storage refused the cluster's identity ({}): exporting one row into container {container} failed, so continuous exports fail the same way ({kusto})",
            s.protect.cluster_storage_auth
        ),
        fix,
    }
}

/// `az role assignment create` for a service principal, as infra/adx-setup.kql writes it.
fn role_assignment(assignee: &str, role: &str, scope: &str) -> String {
    format!(
        "az role assignment create --assignee-object-id {assignee} --assignee-principal-type ServicePrincipal --role \"{role}\" --scope \"{scope}\""
    )
}

/// The storage account a service URL names: the first label of
/// `https://<account>.blob.core.windows.net`, or the path's first segment of an emulator's
/// `http://127.0.0.1:10000/<account>`.
fn account_name(service: &url::Url) -> String {
    let from_path = service
        .path_segments()
        .and_then(|mut s| s.next())
        .filter(|s| !s.is_empty());
    match (service.host(), from_path) {
        (Some(url::Host::Domain(host)), _) if host.contains('.') => {
            host.split('.').next().unwrap_or(host).to_owned()
        }
        (_, Some(account)) => account.to_owned(),
        _ => service.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_from_azure_and_emulator_urls() {
        let name = |u: &str| account_name(&url::Url::parse(u).unwrap());
        assert_eq!(name("https://bkacct.blob.core.windows.net"), "bkacct");
        assert_eq!(name("https://bkacct.blob.core.windows.net/"), "bkacct");
        assert_eq!(
            name("http://127.0.0.1:10000/devstoreaccount1"),
            "devstoreaccount1"
        );
        assert_eq!(
            name("http://localhost:10000/devstoreaccount1"),
            "devstoreaccount1"
        );
    }

    #[test]
    fn role_assignments_quote_role_and_scope() {
        assert_eq!(
            role_assignment("0000", BLOB_ROLE, "<scope>"),
            "az role assignment create --assignee-object-id 0000 --assignee-principal-type ServicePrincipal --role \"Storage Blob Data Contributor\" --scope \"<scope>\""
        );
    }
}
