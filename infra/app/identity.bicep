// The app's user-assigned identity: created, and granted its roles (rbac.bicep), before the
// function app starts, so the first start already reaches storage and Kusto.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
