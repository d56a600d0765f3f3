// adx-backup on Azure, laid out like Microsoft's azd Functions quickstarts
// (Azure-Samples/functions-quickstart-*-azd): subscription scope, one resource group, one module
// per concern under app/, names from abbreviations.json and a token of the environment.
//
// What it creates: the backup storage account (ZRS, or GZRS / RA-GZRS with backupRedundancy;
// container with soft delete and versioning, optional time-based immutability and tiering; the
// task and restore queues), a storage account for the Functions host, a user-assigned identity
// with only the roles it needs, Log Analytics + Application Insights (AAD auth only) with alert
// rules, and a Linux function app running the custom handler on Flex Consumption or Elastic
// Premium. No account keys anywhere.
// The cluster side (Kusto roles, managed-identity policy) is infra/adx-setup.kql.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; every resource name derives from it.')
param environmentName string

@minLength(1)
@description('Region of every resource. Flex Consumption: check `az functionapp list-flexconsumption-locations`.')
@metadata({ azd: { type: 'location' } })
param location string

@description('Resource group name; default rg-<environmentName>.')
param resourceGroupName string = ''

@description('FlexConsumption where the region offers it and runs custom handlers (`az functionapp list-flexconsumption-runtimes -l <region> --runtime custom`), else ElasticPremium.')
@allowed(['FlexConsumption', 'ElasticPremium'])
param planKind string = 'FlexConsumption'

@description('Kusto engine URL of the source cluster, e.g. https://mycluster.westeurope.kusto.windows.net')
param clusterUri string

@description('Comma-separated source databases to protect.')
param databases string

@description('Comma-separated globs over table names (or Database/Table) to protect.')
param includeTables string = '*'

@description('Same form as includeTables; wins over it.')
param excludeTables string = ''

@description('NCRONTAB schedule of the protect timer.')
param protectSchedule string = '0 */5 * * * *'

@description('NCRONTAB schedule of the verify timer (source row counts against the catalog).')
param verifySchedule string = '0 30 3 * * *'

@description('Principal (object) id of the cluster\'s identity: granted Storage Blob Data Contributor on the backup container. Empty: grant it by hand (infra/adx-setup.kql).')
param clusterPrincipalId string = ''

@description('Redundancy of the backup account: zone-redundant in the region (default), or also copied to the paired region (GZRS; RAGZRS adds read access there). See docs/deploy.md, "Redundancy".')
@allowed([
  'Standard_ZRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param backupRedundancy string = 'Standard_ZRS'

@description('Days a deleted or overwritten blob of the backup stays recoverable (soft delete, 1-365).')
@minValue(1)
@maxValue(365)
param softDeleteDays int = 14

@description('Days previous versions are kept before the lifecycle rule deletes them.')
@minValue(1)
param versionRetentionDays int = 30

@description('Version-level time-based immutability of the backup container, in days; 0 = off. See docs/operations.md before turning it on.')
@minValue(0)
param immutabilityDays int = 0

@description('Move data files to the cool tier this many days after they were written; 0 = never.')
@minValue(0)
param coolAfterDays int = 0

@description('Move data files to the cold tier this many days after they were written; 0 = never.')
@minValue(0)
param coldAfterDays int = 0

@description('Action group notified by the alert rules; empty = alerts fire without notifying anyone.')
param actionGroupId string = ''

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }

// The backup's names. A queue a function triggers on is listed here with its poison queue:
// the host moves a message there after maxDequeueCount failures.
var container = 'adx-backup'
var prefix = 'backup'
var taskQueue = 'adxbackup-tasks'
var restoreQueue = 'adxbackup-restore'
var backupQueues = [taskQueue, '${taskQueue}-poison', restoreQueue, '${restoreQueue}-poison']

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity './app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}adxbackup-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage './app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    backupAccountName: '${abbrs.storageStorageAccounts}bk${resourceToken}'
    backupRedundancy: backupRedundancy
    hostAccountName: '${abbrs.storageStorageAccounts}fn${resourceToken}'
    location: location
    tags: tags
    container: container
    queues: backupQueues
    dataPrefixes: [for db in split(databases, ','): '${container}/${prefix}/${trim(db)}/']
    softDeleteDays: softDeleteDays
    versionRetentionDays: versionRetentionDays
    immutabilityDays: immutabilityDays
    coolAfterDays: coolAfterDays
    coldAfterDays: coldAfterDays
  }
}

module monitoring './app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    insightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    actionGroupId: actionGroupId
  }
}

module rbac './app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    backupAccountName: storage.outputs.backupAccountName
    hostAccountName: storage.outputs.hostAccountName
    container: container
    insightsName: monitoring.outputs.insightsName
    appPrincipalId: identity.outputs.principalId
    clusterPrincipalId: clusterPrincipalId
  }
}

// Every setting the binary reads (src/settings.rs ALL_KEYS) is either set here or named in
// settingsLeftAtDefault; a test (tests/e2e/infra.rs) holds the two lists against the code and
// the functions' bindings. Values are identity-based: a URI, `managedidentity` and a client id.
var appSettings = {
  AzureWebJobsStorage__accountName: storage.outputs.hostAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  BackupStorage__blobServiceUri: storage.outputs.backupBlobEndpoint
  BackupStorage__queueServiceUri: storage.outputs.backupQueueEndpoint
  BackupStorage__credential: 'managedidentity'
  BackupStorage__clientId: identity.outputs.clientId
  AZURE_CLIENT_ID: identity.outputs.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
  AdxBackup__ClusterUri: clusterUri
  AdxBackup__KustoCredential: 'managedidentity'
  AdxBackup__KustoClientId: identity.outputs.clientId
  AdxBackup__Databases: databases
  AdxBackup__IncludeTables: includeTables
  AdxBackup__ExcludeTables: excludeTables
  AdxBackup__Container: container
  AdxBackup__Prefix: prefix
  AdxBackup__TaskQueue: taskQueue
  AdxBackup__RestoreQueue: restoreQueue
  AdxBackup__ProtectSchedule: protectSchedule
  AdxBackup__VerifySchedule: verifySchedule
  AdxBackup__LogFormat: 'json'
}

// Read by the binary, deliberately not set: the code's default is the production value
// (README's settings table), or the setting is for local runs only (KustoDevToken, and the
// BackupStorage connection string, which the BackupStorage__* identity settings replace).
var settingsLeftAtDefault = [
  'BackupStorage'
  'AdxBackup__TokenScope'
  'AdxBackup__KustoDevToken'
  'AdxBackup__KustoTimeoutSeconds'
  'AdxBackup__AppName'
  'AdxBackup__PartitionColumns'
  'AdxBackup__ObjectPrefix'
  'AdxBackup__ExportIntervalSeconds'
  'AdxBackup__EnableIngestionTimePolicy'
  'AdxBackup__ReenableExports'
  'AdxBackup__FullPassIntervalSeconds'
  'AdxBackup__ClusterStorageUri'
  'AdxBackup__ClusterStorageAuth'
  'AdxBackup__Backfill'
  'AdxBackup__BackfillBatchMaxRows'
  'AdxBackup__BackfillMaxConcurrentBatches'
  'AdxBackup__BackfillSplitFloorRows'
  'AdxBackup__BackfillPollSeconds'
  'AdxBackup__JanitorGraceSeconds'
  'AdxBackup__RestoreChunkBlobs'
  'AdxBackup__RestoreChunkBytes'
  'AdxBackup__RestoreChunksInFlight'
  'AdxBackup__RestorePollSeconds'
  'AdxBackup__RestoreIngestTimeoutSeconds'
  'AdxBackup__RestoreTargets'
  'AdxBackup__LagAlertSeconds'
  'AdxBackup__Reconcile'
  'AdxBackup__ReconcileSettleDays'
  'AdxBackup__ReconcileMaxDays'
  'AdxBackup__ReconcileSupersededRetentionSeconds'
  'AdxBackup__RetentionDays'
  'AdxBackup__RetentionMonthlyMonths'
  'AdxBackup__RetentionOverrides'
  'AdxBackup__PruneMaxDaysPerPass'
  'AdxBackup__StateContainer'
]

module app './app/function-app.bicep' = {
  name: 'app'
  scope: rg
  params: {
    name: '${abbrs.webSitesFunctions}adxbackup-${resourceToken}'
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    planKind: planKind
    identityId: identity.outputs.id
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appSettings: appSettings
  }
  dependsOn: [rbac]
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = app.outputs.name
output IDENTITY_CLIENT_ID string = identity.outputs.clientId
output IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output BACKUP_ACCOUNT_NAME string = storage.outputs.backupAccountName
output BACKUP_CONTAINER_URL string = '${storage.outputs.backupBlobEndpoint}${container}'
output RESTORE_QUEUE string = restoreQueue
output SETTINGS_LEFT_AT_DEFAULT array = settingsLeftAtDefault
