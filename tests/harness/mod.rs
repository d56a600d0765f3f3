//! The one shared harness of the end-to-end tests: a Functions host emulator, a replay server
//! for canned Kusto payloads, and the local stack (Azurite + kusto-sim).

pub mod host;
pub mod replay;
pub mod stack;
