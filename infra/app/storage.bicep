// Two accounts: the backup (data, catalog, schema, state, queues), which protects itself, and
// one for the Functions host (timer leases, the deployment package), whose churn must not fill
// the backup's versions. Shared-key access is off on both: identities only.
param backupAccountName string
@description('Redundancy of the backup account (docs/deploy.md, "Redundancy").')
@allowed([
  'Standard_ZRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param backupRedundancy string
param hostAccountName string
param location string
param tags object
param container string
param queues array
@description('Blob prefixes (<container>/<prefix>/<database>/) holding only data files: the tiering rule\'s scope.')
param dataPrefixes array
param softDeleteDays int
param versionRetentionDays int
param immutabilityDays int
param coolAfterDays int
param coldAfterDays int

var accountProperties = {
  minimumTlsVersion: 'TLS1_2'
  allowBlobPublicAccess: false
  allowSharedKeyAccess: false
  supportsHttpsTrafficOnly: true
  defaultToOAuthAuthentication: true
}

resource backup 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: backupAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: backupRedundancy }
  properties: accountProperties
}

// Soft delete (blobs and containers) and versioning: an overwritten or deleted blob stays
// recoverable; the change feed records who changed what.
resource backupBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: backup
  name: 'default'
  properties: {
    isVersioningEnabled: true
    changeFeed: { enabled: true }
    deleteRetentionPolicy: { enabled: true, days: softDeleteDays }
    containerDeleteRetentionPolicy: { enabled: true, days: softDeleteDays }
  }
}

// Version-level immutability, not container-level: a container-level time-based policy forbids
// overwriting any blob, and protect overwrites its state documents (ETag-guarded). With
// version-level WORM an overwrite creates a new version and the old one stays locked for
// immutabilityDays (docs/operations.md, "The backup under soft delete, versioning and immutability").
resource backupContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: backupBlobs
  name: container
  properties: {
    publicAccess: 'None'
    immutableStorageWithVersioning: { enabled: immutabilityDays > 0 }
  }
}

resource immutability 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = if (immutabilityDays > 0) {
  parent: backupContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: immutabilityDays
    allowProtectedAppendWrites: false
  }
}

resource backupQueues 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: backup
  name: 'default'
}

resource queue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for q in queues: {
  parent: backupQueues
  name: q
}]

var tiering = union(
  coolAfterDays > 0 ? { tierToCool: { daysAfterModificationGreaterThan: coolAfterDays } } : {},
  coldAfterDays > 0 ? { tierToCold: { daysAfterModificationGreaterThan: coldAfterDays } } : {}
)

// Old versions go after versionRetentionDays (never before an immutability period ends: the
// service refuses); data files move to cool/cold when asked. Catalog, schema and state
// ($catalog, $schema, $state) are read on every run and stay hot.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: backup
  name: 'default'
  properties: {
    policy: {
      rules: concat(
        [
          {
            name: 'expire-old-versions'
            enabled: true
            type: 'Lifecycle'
            definition: {
              filters: { blobTypes: ['blockBlob'], prefixMatch: ['${container}/'] }
              actions: { version: { delete: { daysAfterCreationGreaterThan: versionRetentionDays } } }
            }
          }
        ],
        empty(tiering) ? [] : [
          {
            name: 'tier-data-files'
            enabled: true
            type: 'Lifecycle'
            definition: {
              filters: { blobTypes: ['blockBlob'], prefixMatch: dataPrefixes }
              actions: { baseBlob: tiering }
            }
          }
        ]
      )
    }
  }
  dependsOn: [backupBlobs]
}

resource host 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: hostAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: accountProperties
}

resource hostBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: host
  name: 'default'
}

// Flex Consumption deploys from this container (functionAppConfig.deployment.storage).
resource deployment 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: hostBlobs
  name: 'app-package'
}

output backupAccountName string = backup.name
output backupBlobEndpoint string = backup.properties.primaryEndpoints.blob
output backupQueueEndpoint string = backup.properties.primaryEndpoints.queue
output hostAccountName string = host.name
output deploymentContainerUrl string = '${host.properties.primaryEndpoints.blob}${deployment.name}'
