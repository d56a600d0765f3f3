// adx-backup: storage (backup container + task queue), a user-assigned identity with the roles
// it needs, Application Insights, and a Linux function app running the custom handler.
// Premium (EP1) is the default plan: custom handlers are documented there and Flex Consumption
// support for `custom` must be checked per region (see infra/README.md).

@description('Location of every resource.')
param location string = resourceGroup().location

@description('Short name used to derive resource names.')
@minLength(3)
@maxLength(16)
param name string = 'adxbackup'

@description('Kusto engine URL of the source cluster, e.g. https://mycluster.westeurope.kusto.windows.net')
param clusterUri string

@description('Comma-separated source databases to protect.')
param databases string

@description('Include / exclude table patterns (comma-separated globs, or Database/Table).')
param includeTables string = '*'
param excludeTables string = ''

@description('NCRONTAB schedule of the protect timer.')
param protectSchedule string = '0 */5 * * * *'

var suffix = uniqueString(resourceGroup().id, name)
var storageName = toLower('st${take(name, 9)}${take(suffix, 13)}')
var container = 'adx-backup'
var taskQueue = 'adxbackup-tasks'

var roles = {
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${name}-${suffix}'
  location: location
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_ZRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 14 }
  }
}

resource backupContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: container
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tasks 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: taskQueue
}

resource tasksPoison 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${taskQueue}-poison'
}

resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [roles.blobDataOwner, roles.queueDataContributor]: {
  name: guid(storage.id, identity.id, role)
  scope: storage
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
  }
}]

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${name}-${suffix}'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${name}-${suffix}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

resource insightsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: 'plan-${name}-${suffix}'
  location: location
  kind: 'elastic'
  sku: { name: 'EP1', tier: 'ElasticPremium' }
  properties: { reserved: true }
}

resource app 'Microsoft.Web/sites@2023-12-01' = {
  name: 'func-${name}-${suffix}'
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      linuxFxVersion: ''
      minTlsVersion: '1.2'
      appSettings: [
        { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
        { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'custom' }
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId }
        { name: 'BackupStorage__blobServiceUri', value: storage.properties.primaryEndpoints.blob }
        { name: 'BackupStorage__queueServiceUri', value: storage.properties.primaryEndpoints.queue }
        { name: 'BackupStorage__credential', value: 'managedidentity' }
        { name: 'BackupStorage__clientId', value: identity.properties.clientId }
        { name: 'AZURE_CLIENT_ID', value: identity.properties.clientId }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identity.properties.clientId};Authorization=AAD' }
        { name: 'AdxBackup__ClusterUri', value: clusterUri }
        { name: 'AdxBackup__KustoCredential', value: 'managedidentity' }
        { name: 'AdxBackup__KustoClientId', value: identity.properties.clientId }
        { name: 'AdxBackup__Databases', value: databases }
        { name: 'AdxBackup__IncludeTables', value: includeTables }
        { name: 'AdxBackup__ExcludeTables', value: excludeTables }
        { name: 'AdxBackup__Container', value: container }
        { name: 'AdxBackup__TaskQueue', value: taskQueue }
        { name: 'AdxBackup__ProtectSchedule', value: protectSchedule }
        { name: 'AdxBackup__LogFormat', value: 'json' }
      ]
    }
  }
  dependsOn: [storageRoles]
}

output functionAppName string = app.name
output identityPrincipalId string = identity.properties.principalId
output identityClientId string = identity.properties.clientId
output backupContainerUrl string = '${storage.properties.primaryEndpoints.blob}${container}'
