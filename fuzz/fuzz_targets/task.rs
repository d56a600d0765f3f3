//! A task-queue message as read from the queue (`Task::decode_text`): a task that decodes is
//! sent on as `to_json`, which must decode to the same task.
#![no_main]

use adx_backup::task::Task;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(task) = Task::decode_text(text) {
        let _ = task.kind();
        let again = Task::decode_text(&task.to_json()).expect("a task's own JSON decodes");
        assert_eq!(again, task);
    }
});
