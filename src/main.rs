//! The adx-backup binary (arrives with the foundation).
fn main() {}
