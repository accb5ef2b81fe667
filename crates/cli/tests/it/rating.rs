//! `infogap eval recs --ratings FILE` (rating prediction, k-fold RMSE/MAE).

use std::fmt::Write as _;
use std::path::Path;

use crate::common;

/// Deterministic pseudo-random numbers in [0, 1) (64-bit LCG).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        (0..12).map(|_| self.next()).sum::<f64>() - 6.0
    }
}

/// Ratings with planted user/item biases and a rank-2 taste structure,
/// written as MovieLens `u.data` (tab-separated, with timestamps).
fn planted_udata(path: &Path, seed: u64) {
    let (nu, ni) = (150usize, 80usize);
    let mut g = Lcg(seed);
    let bu: Vec<f64> = (0..nu).map(|_| 0.5 * g.gauss()).collect();
    let bi: Vec<f64> = (0..ni).map(|_| 0.5 * g.gauss()).collect();
    let pu: Vec<[f64; 2]> = (0..nu)
        .map(|_| [0.7 * g.gauss(), 0.7 * g.gauss()])
        .collect();
    let qi: Vec<[f64; 2]> = (0..ni)
        .map(|_| [0.7 * g.gauss(), 0.7 * g.gauss()])
        .collect();
    let mut s = String::new();
    for u in 0..nu {
        for i in 0..ni {
            if g.next() < 0.3 {
                let r = 3.3
                    + bu[u]
                    + bi[i]
                    + pu[u][0] * qi[i][0]
                    + pu[u][1] * qi[i][1]
                    + 0.3 * g.gauss();
                let r = r.round().clamp(1.0, 5.0);
                let _ = writeln!(s, "u{u}\ti{i}\t{r}\t{}", 880000000 + u * 1000 + i);
            }
        }
    }
    std::fs::write(path, s).expect("write ratings");
}

fn eval(dir: &Path, file: &str, algo: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "eval",
        "recs",
        "--ratings",
        file,
        "--algo",
        algo,
        "--folds",
        "3",
        "--seed",
        "0",
        "--json",
    ];
    args.extend_from_slice(extra);
    common::json(dir, &args)
}

#[test]
fn kfold_report_has_the_contract_fields_and_models_beat_the_mean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("u.data");
    planted_udata(&f, 1);
    let file = f.to_str().expect("utf-8 path");
    let mean = eval(dir.path(), file, "global-mean", &[]);
    for k in [
        "rmse",
        "mae",
        "rmse_std",
        "fit_seconds_per_fold",
        "predict_seconds_per_fold",
    ] {
        assert!(
            mean[k].as_f64().is_some_and(f64::is_finite),
            "{k} missing: {mean}"
        );
    }
    assert_eq!(mean["folds"], 3);
    assert_eq!(mean["duplicates"], 0);
    assert_eq!(mean["format"], "tab");
    let m = mean["rmse"].as_f64().expect("rmse");
    let base = eval(dir.path(), file, "baseline", &[])["rmse"]
        .as_f64()
        .expect("rmse");
    assert!(base < 0.9 * m, "baseline {base} vs mean {m}");
    let knn = eval(dir.path(), file, "knn-baseline", &[])["rmse"]
        .as_f64()
        .expect("rmse");
    assert!(knn < 0.95 * base, "knn {knn} vs baseline {base}");
    let auto = eval(dir.path(), file, "auto", &[]);
    let a = auto["rmse"].as_f64().expect("rmse");
    assert!(a < 0.95 * base, "auto {a} vs baseline {base}");
    assert_eq!(auto["chosen"].as_array().map(Vec::len), Some(3), "{auto}");
    assert!(
        auto["select_seconds_per_fold"]
            .as_f64()
            .is_some_and(|s| s > 0.0)
    );
}

#[test]
fn grid_reports_the_choice_made_on_training_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("r.csv");
    // CSV with header, CRLF line ends, no final newline, one duplicate pair.
    let mut g = Lcg(5);
    let mut s = String::from("userId,movieId,rating,timestamp\r\n0,0,1,1\r\n");
    for u in 1..80 {
        for i in 0..40 {
            if g.next() < 0.4 {
                // A pure interaction: biases alone cannot explain it.
                let r = 1.0 + ((u % 5) * (i % 5)) as f64 / 4.0;
                let _ = write!(s, "{u},{i},{r},1\r\n");
            }
        }
    }
    s.push_str("0,0,5,2");
    std::fs::write(&f, s).expect("write");
    let file = f.to_str().expect("utf-8 path");
    let v = eval(
        dir.path(),
        file,
        "svdpp",
        &["--grid", "reg=0.02,20;epochs=10"],
    );
    assert_eq!(v["format"], "csv");
    assert_eq!(v["duplicates"], 1);
    let chosen = v["chosen"].as_array().expect("chosen");
    // reg=20 wipes out every factor; the inner validation must not choose it.
    assert!(
        chosen
            .iter()
            .all(|c| c.as_str().is_some_and(|c| c.contains("reg=0.02"))),
        "{v}"
    );
    assert_eq!(v["params"]["epochs"], 10, "{v}");
}

#[test]
fn duplicates_are_counted_and_bad_lines_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("dups.txt");
    let mut s = String::new();
    for u in 0..20 {
        for i in 0..10 {
            let _ = writeln!(s, "{u} {i} {}", 1 + (u + i) % 5);
        }
    }
    s.push_str("3 4 5\n3 4 1\n");
    std::fs::write(&f, &s).expect("write");
    let v = eval(dir.path(), f.to_str().expect("path"), "baseline", &[]);
    assert_eq!(v["duplicates"], 2, "{v}");
    assert_eq!(v["ratings"], 200);
    assert_eq!(v["format"], "whitespace");

    let bad = dir.path().join("bad.data");
    std::fs::write(&bad, "1\t2\t3\t4\n1\t3\tfour\t5\n").expect("write");
    let out = common::run_in(
        dir.path(),
        &[
            "eval",
            "recs",
            "--ratings",
            bad.to_str().expect("path"),
            "--algo",
            "baseline",
            "--json",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("column 3") && err.contains("bad.data"),
        "{err}"
    );

    let out = common::run_in(
        dir.path(),
        &[
            "eval",
            "recs",
            "--ratings",
            f.to_str().expect("path"),
            "--algo",
            "svd",
            "--grid",
            "nonsense=1",
        ],
    );
    assert!(!out.status.success(), "unknown grid parameter must fail");
}

#[test]
#[ignore = "real data: ../shared/data"]
fn ml100k_auto_reaches_the_target_rmse() {
    let data = common::shared_data().join("ml-100k/u.data");
    assert!(data.is_file(), "missing {}", data.display());
    let dir = tempfile::tempdir().expect("tempdir");
    let v = common::json(
        dir.path(),
        &[
            "eval",
            "recs",
            "--ratings",
            data.to_str().expect("path"),
            "--algo",
            "auto",
            "--folds",
            "5",
            "--seed",
            "0",
            "--json",
        ],
    );
    let rmse = v["rmse"].as_f64().expect("rmse");
    assert_eq!(v["ratings"], 100_000);
    assert!(rmse <= 0.905, "ml-100k 5-fold RMSE {rmse} > 0.905: {v}");
    assert!(v["mae"].as_f64().is_some_and(|m| m < 0.72), "{v}");
}
