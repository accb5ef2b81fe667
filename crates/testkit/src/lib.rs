//! infogap-testkit: fixtures and generators shared by the test suites.
//!
//! Tests across crates need the same things: a messy multi-department data set
//! with ground truth (the demo generator, in a temporary directory) and a way
//! to read that truth back. Keeping them here means every suite checks against
//! the same planted structure.

pub mod tables;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use tempfile::TempDir;

/// A generated demo data set in a temporary directory.
pub struct DemoFixture {
    /// Keeps the directory alive.
    pub dir: TempDir,
    /// The demo's `infogap.toml`.
    pub config: PathBuf,
    /// Number of planted people.
    pub persons: usize,
}

/// Writes the demo data set (`customers` people, `seed`) into a fresh temporary directory.
pub fn demo(customers: usize, seed: u64) -> DemoFixture {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let out = dir.path().join("demo");
    let summary = match infogap_engine::demo::generate(&infogap_engine::demo::DemoOptions {
        out: out.clone(),
        customers,
        seed,
    }) {
        Ok(s) => s,
        Err(e) => panic!("demo: {e}"),
    };
    DemoFixture {
        config: out.join("infogap.toml"),
        persons: summary.persons,
        dir,
    }
}

/// One row of `truth/records.csv`: which person an identity key belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthRecord {
    /// Namespace of the key (`crm`, `web`, `support`, `email`).
    pub namespace: String,
    /// The key as the store normalizes it.
    pub key: String,
    /// The true person.
    pub person: usize,
}

/// Reads `truth/records.csv` of a demo directory (the directory holding `infogap.toml`).
pub fn truth_records(demo_dir: &Path) -> Vec<TruthRecord> {
    let text = match std::fs::read_to_string(demo_dir.join("truth/records.csv")) {
        Ok(t) => t,
        Err(e) => panic!("truth: {e}"),
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() == 5).then(|| TruthRecord {
                namespace: f[2].to_string(),
                key: if f[2] == "email" {
                    f[3].trim().to_lowercase()
                } else {
                    f[3].to_string()
                },
                person: f[4].parse().unwrap_or(usize::MAX),
            })
        })
        .collect()
}

/// Reads `truth/persons.csv` as maps of column name → value, one per person.
pub fn truth_persons(demo_dir: &Path) -> Vec<HashMap<String, String>> {
    csv_rows(&demo_dir.join("truth/persons.csv"))
}

/// Rows of a simple CSV (no quoted commas: the truth files) as maps of
/// column name → value.
pub fn csv_rows(path: &Path) -> Vec<HashMap<String, String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => panic!("{}: {e}", path.display()),
    };
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(str::to_string))
                .collect()
        })
        .collect()
}
