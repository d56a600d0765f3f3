// Log Analytics + workspace-based Application Insights (Entra auth only), and alert rules over
// the error events adx-backup logs. The host forwards the handler's stdout/stderr to the
// `traces` table; each rule matches the stable `event` field of one event, or the fixed
// message text (src/protect/health.rs, src/verify.rs, src/worker.rs, src/protect/ensure.rs,
// src/protect.rs). docs/operations.md explains each alert.
param workspaceName string
param insightsName string
param location string
param tags object
param actionGroupId string

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: insightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

var alerts = [
  {
    name: 'export-disabled'
    severity: 1
    description: 'A continuous export is disabled: new rows of its table are not backed up.'
    query: 'traces | where message contains "adxbackup.export_disabled"'
  }
  {
    name: 'export-failing'
    severity: 2
    description: 'A continuous export run failed; Kusto disables an export after 7 days of failures.'
    query: 'traces | where message contains "adxbackup.export_failing"'
  }
  {
    name: 'export-lagging'
    severity: 2
    description: 'A continuous export lags more than AdxBackup__LagAlertSeconds behind ingestion.'
    query: 'traces | where message contains "adxbackup.export_lagging"'
  }
  {
    name: 'verify-drift'
    severity: 2
    description: 'Verification found the backup and the source disagree (rows deleted in the source, rows or files missing from the backup).'
    query: 'traces | where message contains "adxbackup.verify_drift"'
  }
  {
    name: 'job-failed'
    severity: 2
    description: 'A backfill batch, a backfill or restore step, or a verification failed for good, or a restore ended without everything it promised.'
    query: 'traces | where message contains "adxbackup.job_failed"'
  }
  {
    name: 'table-failed'
    severity: 2
    description: 'A table could not be protected (continuous export cannot serve it: row-level security, restricted view access, a materialized view, a follower database; or its IngestionTime policy is off), or a task failed for good and was recorded as failed in its state.'
    query: 'traces | where message contains "adxbackup.table_unprotected" or message has "table is not protected" or message has "table not protected" or message has "protect failed for good" or message has "database not planned"'
  }
]

resource alert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for a in alerts: {
  name: '${insightsName}-${a.name}'
  location: location
  tags: tags
  properties: {
    displayName: 'adx-backup: ${a.name}'
    description: a.description
    severity: a.severity
    enabled: true
    scopes: [insights.id]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: a.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: empty(actionGroupId) ? [] : [actionGroupId] }
  }
}]

output insightsName string = insights.name
output connectionString string = insights.properties.ConnectionString
