//! adx-backup: continuous backup and exactly-once restore for Azure Data Explorer.
