// Role assignments, each at the narrowest scope that works. Role definition ids are Azure's
// built-in ones (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles);
// tests/e2e/infra.rs checks them against that page's values.
param backupAccountName string
param hostAccountName string
param container string
param insightsName string
param appPrincipalId string
@description('The cluster\'s identity; empty = no assignment (grant it by hand).')
param clusterPrincipalId string

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource backup 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: backupAccountName
}

resource backupBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: backup
  name: 'default'
}

resource backupContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: backupBlobs
  name: container
}

resource host 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostAccountName
}

resource insights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: insightsName
}

// The app reads and writes blobs of the backup (data is written by the cluster; the app writes
// catalog, schema and state) and works its queues (trigger, poison queue, sending tasks).
// Contributor, not Owner: the app sets no ACLs and takes no ownership.
resource appBackupBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(backup.id, appPrincipalId, roles.storageBlobDataContributor)
  scope: backup
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

resource appBackupQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(backup.id, appPrincipalId, roles.storageQueueDataContributor)
  scope: backup
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// The Functions host's own account: Blob Data Owner is what the host documents for
// AzureWebJobsStorage with an identity (timer and singleton leases, keys, the package).
resource appHostBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(host.id, appPrincipalId, roles.storageBlobDataOwner)
  scope: host
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

// Telemetry with Entra auth (the component has local auth disabled).
resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, appPrincipalId, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

// The cluster writes the parquet files (continuous exports) and reads them (restore) with its
// own identity, on the backup container only.
resource clusterBackupBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(clusterPrincipalId)) {
  name: guid(backupContainer.id, clusterPrincipalId, roles.storageBlobDataContributor)
  scope: backupContainer
  properties: {
    principalId: clusterPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}
