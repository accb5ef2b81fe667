//! Writes the reference tables of `infogap_testkit::tables` as CSV files
//! (with their `fold` column) into a directory, for
//! `scripts/reference/tabular_reference.py`.
//!
//! `cargo run -p infogap-testkit --example reference_tables -- DIR`

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: reference_tables DIR");
        std::process::exit(2);
    };
    let dir = std::path::PathBuf::from(dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("{}: {e}", dir.display());
        std::process::exit(1);
    }
    let tables = infogap_testkit::tables::classify_tables()
        .into_iter()
        .chain(infogap_testkit::tables::regress_tables());
    for t in tables {
        let path = dir.join(format!("{}.csv", t.name));
        if let Err(e) = t.write_csv(&path) {
            eprintln!("{}: {e}", path.display());
            std::process::exit(1);
        }
        println!(
            "{}\t{:?}\t{} rows\t{}",
            path.display(),
            t.task,
            t.rows.len(),
            t.shapes
        );
    }
}
