//! Times each classifier family on one outer training fold of a CSV (the
//! same encoding and folds as `infogap eval classify`), so the cost of
//! `auto` can be split into its parts:
//!
//! ```text
//! cargo build --release -p infogap-bench --example classify_parts
//! target/release/examples/classify_parts --csv ../shared/data/telco-churn/WA_Fn-UseC_-Telco-Customer-Churn.csv --target Churn
//! ```
//!
//! `--inner K` sets `auto`'s inner folds (default 2, the shipped setting).
//! Prints, per model, the median fit seconds over `--reps` runs on the
//! training rows of fold `--fold` (0-based), the CPU seconds per run (fit and
//! scoring the held-out rows, all threads), and the ROC AUC on its held-out rows.

use std::path::PathBuf;
use std::time::Instant;

use infogap_models::classify::{
    ClassifierConfig, DenseMatrix, ModelKind, split_indices, stratified_folds,
};
use infogap_models::metrics::classification::roc_auc;
use infogap_models::tabular::{Encoder, EncoderOptions, TargetSpec, prepare};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|p| args.get(p + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

/// CPU seconds (user + system) this process has used so far, from /proc (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // fields after the ")" that closes the command name: state is field 3; utime 14, stime 15
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |k: usize| f.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let csv = PathBuf::from(arg(&args, "--csv", ""));
    let target = arg(&args, "--target", "Churn");
    let reps: usize = arg(&args, "--reps", "5").parse().expect("--reps");
    let fold: usize = arg(&args, "--fold", "0").parse().expect("--fold");
    let models = arg(&args, "--models", "logreg,tree,gbm,auto");
    let inner: usize = arg(&args, "--inner", "2").parse().expect("--inner");
    let frame = infogap_engine::analytics::read_frame(&csv).expect("read csv");
    let prep = prepare(&frame, &target, &TargetSpec::Binary { positive: None }, &[]).expect("prep");
    let y: Vec<bool> = prep.y.iter().map(|&v| v > 0.5).collect();
    let folds = stratified_folds(&y, 5, 0).expect("folds");
    let (tr, te) = split_indices(&folds, fold);
    let fitted = Encoder::new(EncoderOptions { standardize: false })
        .fit(&prep.features, &tr)
        .expect("encoder");
    let names = fitted.feature_names().to_vec();
    let mtr = fitted.transform(&prep.features, &tr).expect("transform");
    let mte = fitted.transform(&prep.features, &te).expect("transform");
    let xtr = DenseMatrix::new(mtr.n_rows, mtr.data, names.clone()).expect("matrix");
    let xte = DenseMatrix::new(mte.n_rows, mte.data, names).expect("matrix");
    let ytr: Vec<bool> = tr.iter().map(|&i| y[i]).collect();
    let yte: Vec<bool> = te.iter().map(|&i| y[i]).collect();
    println!(
        "{} training rows x {} columns, {} held out",
        xtr.n_rows, xtr.n_cols, xte.n_rows
    );
    for m in models.split(',') {
        let kind: ModelKind = match m.parse() {
            Ok(k) => k,
            Err(e) => {
                println!("{m}: {e}");
                continue;
            }
        };
        let mut cfg = ClassifierConfig::of_kind(kind, 0);
        cfg.inner_folds = inner;
        let mut secs = Vec::new();
        let mut auc = 0.0;
        let mut name = String::new();
        let cpu0 = cpu_seconds();
        for _ in 0..reps {
            let t0 = Instant::now();
            let out = cfg.fit(&xtr, &ytr).expect("fit");
            secs.push(t0.elapsed().as_secs_f64());
            auc = roc_auc(&yte, &out.model.predict_proba(&xte)).unwrap_or(f64::NAN);
            name = out.model.name();
        }
        let cpu = (cpu_seconds() - cpu0) / reps as f64;
        secs.sort_by(f64::total_cmp);
        println!(
            "{m:<10} median fit {:.4} s (min {:.4}), CPU {cpu:.3} s per fit+predict  held-out ROC AUC {auc:.4}  {name}",
            secs[secs.len() / 2],
            secs[0]
        );
    }
}
