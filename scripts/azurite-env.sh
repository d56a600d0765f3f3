# Sourced by the scripts that run tests against Azurite (test.sh, chaos.sh): the ports, the
# endpoints and the emulator's well-known development account (its key is public and works
# only against the emulator).
export AZURITE_BLOB_PORT=${AZURITE_BLOB_PORT:-10000}
export AZURITE_QUEUE_PORT=${AZURITE_QUEUE_PORT:-10001}
azurite_key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
export AZURITE_BLOB_ENDPOINT="http://127.0.0.1:$AZURITE_BLOB_PORT/devstoreaccount1"
export AZURITE_QUEUE_ENDPOINT="http://127.0.0.1:$AZURITE_QUEUE_PORT/devstoreaccount1"
export AZURITE_CONNECTION_STRING="AccountName=devstoreaccount1;AccountKey=$azurite_key;BlobEndpoint=$AZURITE_BLOB_ENDPOINT;QueueEndpoint=$AZURITE_QUEUE_ENDPOINT"
# With these set, no test skips for want of Azurite: each one uses it or fails.
export KUSTO_SIM_REQUIRE_AZURITE=1
