//! Planted-structure tests of the acquisition model and its evaluation.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// Features: group (known), a, b (each decisive in one group), three noise
/// columns (one numeric). y = a in group 0, y = b in group 1, flipped 10 %.
fn subgroups(n: usize, seed: u64) -> (AcqTable, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let names = ["group", "a", "b", "noise1", "noise2", "noise_num"];
    let mut data = Vec::with_capacity(n * names.len());
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let g = rng.random_range(0..2u8);
        let a = rng.random_range(0..2u8);
        let b = rng.random_range(0..2u8);
        let decisive = if g == 0 { a } else { b };
        let flip = rng.random::<f64>() < 0.1;
        y.push((decisive == 1) != flip);
        data.extend([
            f64::from(g),
            f64::from(a),
            f64::from(b),
            f64::from(rng.random_range(0..4u8)),
            f64::from(rng.random_range(0..3u8)),
            rng.random::<f64>() * 100.0,
        ]);
    }
    (
        AcqTable {
            names: names.iter().map(|s| s.to_string()).collect(),
            categorical: vec![true, true, true, true, true, false],
            n_rows: n,
            data,
        },
        y,
    )
}

fn small_opts() -> AcqOptions {
    AcqOptions {
        trees: 40,
        restarts: 1,
        max_iter: 60,
        ..AcqOptions::default()
    }
}

fn fit(x: &AcqTable, y: &[bool]) -> AcqModel {
    let yy: Vec<usize> = y.iter().map(|&b| usize::from(b)).collect();
    AcqModel::fit(x, &yy, 2, &small_opts()).expect("fit")
}

const NAN: f64 = f64::NAN;

#[test]
fn asks_the_feature_that_decides_the_rows_subgroup() {
    let (x, y) = subgroups(1500, 1);
    let m = fit(&x, &y);
    let mut scratch = GainScratch::default();
    let cands = [1, 2, 3, 4, 5];
    for (g, want) in [(0.0, 1), (1.0, 2)] {
        let st = m.state(&[g, NAN, NAN, NAN, NAN, NAN]);
        let best = m.best_candidate(&st, &cands, Criterion::Information, &mut scratch);
        assert_eq!(best, Some(want), "group {g}");
        let gains = m.expected_gains(&[g, NAN, NAN, NAN, NAN, NAN], &cands);
        let decisive = gains[want - 1];
        assert!(
            decisive > 0.2,
            "group {g}: gain of the decisive feature {gains:?}"
        );
        for k in [2, 3, 4] {
            assert!(gains[k] < 0.02, "group {g}: noise gain {gains:?}");
        }
    }
}

#[test]
fn per_row_acquisition_beats_the_best_fixed_order_on_subgroups() {
    let (x, y) = subgroups(1500, 2);
    let r = evaluate_with(&x, &y, &[0], 2, 3, &small_opts()).expect("evaluate");
    assert_eq!(r.curves.ask_next.len(), 3);
    assert_eq!(r.curves.global_order.len(), 3);
    assert_eq!(r.curves.random.len(), 3);
    // Step 1: ask_next knows the decisive feature of every row; a fixed order only of one group's.
    assert!(
        r.curves.ask_next[1] > r.curves.global_order[1] + 0.05,
        "{:?}",
        r.curves
    );
    assert!(
        r.area.ask_next > r.area.global_order + 0.02,
        "areas {:?}",
        r.area
    );
    assert!(r.area.global_order > r.area.random, "areas {:?}", r.area);
    // Half the rows ask a first, half ask b.
    let first: Vec<&str> = r.first_asked.iter().map(|f| f.feature.as_str()).collect();
    assert!(
        first.starts_with(&["a", "b"]) || first.starts_with(&["b", "a"]),
        "{first:?}"
    );
    assert!(r.first_asked[1].fraction > 0.4, "{:?}", r.first_asked);
    assert!(r.all_features_auc > 0.85, "{}", r.all_features_auc);
    assert_eq!(r.decisions, 1500 * 2);
    assert!(r.decisions_per_second > 0.0);
}

#[test]
fn probabilities_sum_to_one_and_nothing_known_is_the_prior() {
    let (x, y) = subgroups(1500, 3);
    let m = fit(&x, &y);
    let prior = y.iter().filter(|&&v| v).count() as f64 / y.len() as f64;
    let p = m.predict(&[NAN; 6]);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!((p[1] - prior).abs() < 0.03, "p {p:?} prior {prior}");
    for i in 0..50 {
        let p = m.predict(x.row(i));
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{p:?}");
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
    }
    // Knowing group 0 and a = 1 makes y likely.
    let p = m.predict(&[0.0, 1.0, NAN, NAN, NAN, NAN]);
    assert!(p[1] > 0.8, "{p:?}");
    // A known feature has no gain.
    let g = m.expected_gains(&[0.0, 1.0, NAN, NAN, NAN, NAN], &[0, 1]);
    assert_eq!(g, vec![0.0, 0.0]);
}

#[test]
fn multiclass_fit_predict_and_gains() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let n = 1200;
    let mut data = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let c = rng.random_range(0..3usize);
        let shown = if rng.random::<f64>() < 0.85 {
            c
        } else {
            rng.random_range(0..3usize)
        };
        data.extend([shown as f64, f64::from(rng.random_range(0..5u8))]);
        y.push(c);
    }
    let x = AcqTable {
        names: vec!["signal".into(), "noise".into()],
        categorical: vec![true, true],
        n_rows: n,
        data,
    };
    let m = AcqModel::fit(&x, &y, 3, &small_opts()).expect("fit");
    for c in 0..3 {
        let p = m.predict(&[c as f64, NAN]);
        assert_eq!(p.len(), 3);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let arg = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b]));
        assert_eq!(arg, Some(c), "{p:?}");
    }
    let g = m.expected_gains(&[NAN, NAN], &[0, 1]);
    assert!(g[0] > 0.3 && g[1] < 0.02, "{g:?}");
}

#[test]
fn bad_input_is_an_error_naming_the_problem() {
    let (x, y) = subgroups(200, 5);
    let yy: Vec<usize> = y.iter().map(|&b| usize::from(b)).collect();
    let e = AcqModel::fit(&x, &yy, 1, &small_opts()).expect_err("one class");
    assert!(e.to_string().contains("n_classes"), "{e}");
    let mut bad = yy.clone();
    bad[0] = 5;
    let e = AcqModel::fit(&x, &bad, 2, &small_opts()).expect_err("label");
    assert!(e.to_string().contains("label 5"), "{e}");
    let mut xb = x.clone();
    xb.data[1] = -1.0;
    let e = AcqModel::fit(&xb, &yy, 2, &small_opts()).expect_err("level");
    assert!(e.to_string().contains("feature a"), "{e}");
    for (budget, folds, known, what) in [
        (0, 3, vec![], "budget"),
        (2, 1, vec![], "folds"),
        (2, 3, vec![0, 1, 2, 3, 4, 5], "known"),
        (2, 3, vec![9], "known"),
    ] {
        let e = evaluate_with(&x, &y, &known, budget, folds, &small_opts()).expect_err(what);
        assert!(e.to_string().contains(what), "{what}: {e}");
    }
    let few: Vec<bool> = (0..200).map(|i| i < 4).collect();
    let e = evaluate_with(&x, &few, &[], 2, 3, &small_opts()).expect_err("few");
    assert!(e.to_string().contains("too few rows per class"), "{e}");
}

#[test]
fn a_many_level_noise_feature_gains_less_than_an_informative_binary_one() {
    // y depends weakly on a binary feature; a 20-level feature is pure noise.
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let n = 600;
    let mut data = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let b = rng.random_range(0..2u8);
        let p = if b == 1 { 0.4 } else { 0.25 };
        y.push(usize::from(rng.random::<f64>() < p));
        data.extend([f64::from(b), f64::from(rng.random_range(0..20u8))]);
    }
    let x = AcqTable {
        names: vec!["binary".into(), "noise20".into()],
        categorical: vec![true, true],
        n_rows: n,
        data,
    };
    let m = AcqModel::fit(&x, &y, 2, &small_opts()).expect("fit");
    let g = m.expected_gains(&[NAN, NAN], &[0, 1]);
    assert!(g[0] > g[1], "gains {g:?}");
}
