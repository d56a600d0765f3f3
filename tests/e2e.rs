//! The one integration test binary: real processes (Azurite, kusto-sim, the handler) on
//! loopback. Run one area with `cargo test --test e2e <module>`, e.g. `storage`.
//!
//! A crate root resolves `mod x;` next to itself (tests/x.rs, which cargo would build as a
//! separate test binary), hence the explicit paths into tests/e2e/.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod harness;

#[path = "e2e/backfill.rs"]
mod backfill;
#[path = "e2e/backup_content.rs"]
mod backup_content;
#[path = "e2e/backup_policies.rs"]
mod backup_policies;
#[path = "e2e/chaos.rs"]
mod chaos;
#[path = "e2e/check.rs"]
mod check;
#[path = "e2e/handler.rs"]
mod handler;
#[path = "e2e/immutability.rs"]
mod immutability;
#[path = "e2e/infra.rs"]
mod infra;
#[path = "e2e/jobs.rs"]
mod jobs;
#[path = "e2e/kusto_client.rs"]
mod kusto_client;
#[path = "e2e/package.rs"]
mod package;
#[path = "e2e/protect.rs"]
mod protect;
#[path = "e2e/protect_guarantees.rs"]
mod protect_guarantees;
#[path = "e2e/protect_scale.rs"]
mod protect_scale;
#[path = "e2e/protect_unservable.rs"]
mod protect_unservable;
#[path = "e2e/prune.rs"]
mod prune;
#[path = "e2e/reconcile.rs"]
mod reconcile;
#[path = "e2e/restore.rs"]
mod restore;
#[path = "e2e/restore_reprotect.rs"]
mod restore_reprotect;
#[path = "e2e/restore_roundtrip.rs"]
mod restore_roundtrip;
#[path = "e2e/restore_schema.rs"]
mod restore_schema;
#[path = "e2e/run_local.rs"]
mod run_local;
#[path = "e2e/status.rs"]
mod status;
#[path = "e2e/storage.rs"]
mod storage;
#[path = "e2e/worker.rs"]
mod worker;
