//! Every state document the product reads back from storage (`storage::state::decode`), from
//! the same bytes: each one that decodes goes through what a step does before it saves (the
//! recount, the totals) and must survive the save unchanged.
#![no_main]

use adx_backup::backfill::{BackfillJob, JanitorState};
use adx_backup::check::CheckReport;
use adx_backup::protect::TableState;
use adx_backup::restore::queued::FailureReport;
use adx_backup::restore::state::{PlanPage, RestoreChunk, RestoreJob};
use adx_backup::storage::catalog_totals::CatalogTotals;
use adx_backup::storage::prune::Prune;
use adx_backup::storage::state::decode;
use adx_backup::storage::supersede::{Supersede, SupersededDeleted};
use adx_backup::verify::Verification;
use adx_backup_fuzz::survives_a_save;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(mut job) = decode::<BackfillJob>("doc", body) {
        job.recount();
        survives_a_save(&job);
    }
    if let Ok(totals) = decode::<CatalogTotals>("doc", body) {
        let _ = totals.total();
        let _ = totals.day_range();
        survives_a_save(&totals);
    }
    if let Ok(job) = decode::<RestoreJob>("doc", body) {
        survives_a_save(&job);
    }
    if let Ok(chunk) = decode::<RestoreChunk>("doc", body) {
        survives_a_save(&chunk);
    }
    decoded_and_saved::<PlanPage>(body);
    if let Ok(state) = decode::<TableState>("doc", body) {
        let _ = state.protection.summary();
        survives_a_save(&state);
    }
    decoded_and_saved::<JanitorState>(body);
    decoded_and_saved::<CheckReport>(body);
    decoded_and_saved::<Verification>(body);
    decoded_and_saved::<FailureReport>(body);
    decoded_and_saved::<Supersede>(body);
    decoded_and_saved::<SupersededDeleted>(body);
    decoded_and_saved::<Prune>(body);
});

fn decoded_and_saved<T>(body: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(doc) = decode::<T>("doc", body) {
        survives_a_save(&doc);
    }
}
