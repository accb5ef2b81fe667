//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of the built `infogap` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_infogap"))
}

/// Runs `infogap` with `args` in `dir`, with the store at `dir/infogap.db`.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(dir)
        .env("INFOGAP_DB", dir.join("infogap.db"))
        .args(args)
        .output()
        .expect("spawn infogap")
}

/// Runs `infogap` in `dir` on the store at `db` (a file or a PostgreSQL
/// URL), with the data key in `dir/store.key`.
pub fn run_on(dir: &Path, db: &str, args: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(dir)
        .env("INFOGAP_DB", db)
        .env("INFOGAP_KEY_FILE", dir.join("store.key"))
        .args(args)
        .output()
        .expect("spawn infogap")
}

/// [`run_on`], asserting success; returns stdout.
pub fn ok_on(dir: &Path, db: &str, args: &[&str]) -> String {
    succeeded(run_on(dir, db, args), args)
}

/// [`run_on`], asserting success and parsing stdout as JSON.
pub fn json_on(dir: &Path, db: &str, args: &[&str]) -> serde_json::Value {
    let s = ok_on(dir, db, args);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Runs and asserts success; returns stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    succeeded(run_in(dir, args), args)
}

/// Asserts a run succeeded; returns its stdout.
fn succeeded(out: Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "infogap {:?} failed\nstdout:\n{}\nstderr:\n{}",
        args,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs and asserts failure (a non-zero exit); returns stderr.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let out = run_in(dir, args);
    assert!(
        !out.status.success(),
        "infogap {:?} succeeded\nstdout:\n{}",
        args,
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs with `--json` output expected; parses stdout.
pub fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let s = ok(dir, args);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// `../shared/data` beside the repository; panics (fails the test) when missing,
/// so real-data tests never skip silently.
pub fn shared_data() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    assert!(
        p.is_dir(),
        "real data missing: {} (needed by the ignored real-data tests)",
        p.display()
    );
    p
}

/// `../shared/anchors` beside the repository.
pub fn shared_anchors() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/anchors");
    assert!(p.is_dir(), "anchors missing: {}", p.display());
    p
}
