//! The app zip `make package` builds (scripts/package.sh), run as Azure runs it: unzipped, its
//! binary started by the host as host.json names it, then readiness and a protect run on
//! Azurite + kusto-sim. scripts/test.sh builds the package and names it in ADXBACKUP_PACKAGE;
//! a plain `cargo test` has no package, and this test then says so and checks nothing.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::harness::data::{events_stack, names, timer_then_tasks};
use crate::harness::host::{FunctionsHost, app_root, function_folders, read_json};

const PACKAGE: &str = "ADXBACKUP_PACKAGE";

#[tokio::test]
async fn the_packaged_app_starts_and_protects_through_the_host() {
    let Some(zip) = std::env::var_os(PACKAGE) else {
        eprintln!("{PACKAGE} is not set: `make test` builds the package and checks it");
        return;
    };
    let root = unzip(Path::new(&zip));

    // The zip is the app root: host.json and one folder per function, as in the repository.
    assert_eq!(
        read_json(&root.join("host.json")),
        read_json(&app_root().join("host.json"))
    );
    for (name, json) in function_folders() {
        assert_eq!(
            read_json(&root.join(&name).join("function.json")),
            json,
            "function {name} in the package"
        );
    }
    let host_json = read_json(&root.join("host.json"));
    let executable = host_json["customHandler"]["description"]["defaultExecutablePath"]
        .as_str()
        .map(|p| root.join(p))
        .expect("host.json names the executable");
    let mode = std::fs::metadata(&executable)
        .unwrap_or_else(|e| panic!("{} in the package: {e}", executable.display()))
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o111,
        0o111,
        "the binary keeps its run bits: {mode:o}"
    );

    let stack = events_stack().await;
    let app = stack.app();
    let host = FunctionsHost::start_app(&root, &executable, &stack.settings).await;
    assert_eq!(host.get_root().await.status(), 200, "readiness");
    let run = timer_then_tasks(&host, &app, None).await;
    assert_eq!(
        (run.succeeded, run.failed_attempts),
        (1, 0),
        "one task for the one table: {:?}",
        run.logs
    );
    assert_eq!(
        names(&stack, ".show continuous-exports", "Name").await,
        BTreeSet::from(["adxbk_Events".to_owned()])
    );
}

/// Unzips with `unzip`, which restores the unix mode bits the way the Functions host's zip
/// deployment does, into a fresh folder under cargo's scratch directory.
fn unzip(zip: &Path) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("package")
        .join(uuid::Uuid::new_v4().to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let status = std::process::Command::new("unzip")
        .arg("-q")
        .arg(zip)
        .arg("-d")
        .arg(&dir)
        .status()
        .expect("run unzip");
    assert!(status.success(), "unzip {}: {status}", zip.display());
    dir
}
