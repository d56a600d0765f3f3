//! The Functions host's invocation envelope (`Invocation::parse`) and what the functions read
//! from it: each trigger's binding, the queue metadata, and the message inside.
#![no_main]

use adx_backup::handler::functions::Function;
use adx_backup::handler::protocol::Invocation;
use adx_backup::restore::request::{RestoreRequestV1, job_id_in};
use adx_backup::task::Task;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(inv) = Invocation::parse(body) else {
        return;
    };
    for function in Function::ALL {
        if let Ok(value) = inv.binding(function.binding()) {
            let _ = Task::decode(value);
            let _ = RestoreRequestV1::from_message(value);
            let _ = job_id_in(value);
        }
    }
    for key in ["Id", "PopReceipt", "DequeueCount", "InsertionTime", "sys"] {
        let _ = inv.metadata_str(key);
        let _ = inv.metadata_u64(key);
    }
    let _ = inv.dequeue_count();
    let _ = inv.message_id();
});
