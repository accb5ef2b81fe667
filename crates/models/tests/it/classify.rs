//! Integration tests of the classification family on generated data with
//! planted structure (fixed seeds, margins).

use infogap_models::classify::{
    ClassifierConfig, DenseMatrix, ModelKind, cross_validate, eval_frame, split_indices,
    stratified_folds,
};
use infogap_models::metrics::classification::roc_auc;
use infogap_models::tabular::{Column, ColumnData, Frame};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// x0 linear, x1 a step at 0.3, x2 × x3 interaction, x4..x6 noise.
fn planted(n: usize, seed: u64, shuffle_labels: bool) -> (DenseMatrix, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let r: Vec<f64> = (0..7).map(|_| rng.random_range(-1.0..1.0)).collect();
        let z = 1.5 * r[0] + 1.5 * f64::from(u8::from(r[1] > 0.3)) + 2.0 * r[2] * r[3] - 0.7;
        y.push(rng.random::<f64>() < sigmoid(z));
        rows.push(r);
    }
    if shuffle_labels {
        use rand::seq::SliceRandom;
        y.shuffle(&mut rng);
    }
    (DenseMatrix::from_rows(&rows).expect("rows"), y)
}

fn holdout_auc(kind: ModelKind, x: &DenseMatrix, y: &[bool]) -> f64 {
    let folds = stratified_folds(y, 4, 1).expect("folds");
    let (tr, te) = split_indices(&folds, 0);
    let ytr: Vec<bool> = tr.iter().map(|&i| y[i]).collect();
    let yte: Vec<bool> = te.iter().map(|&i| y[i]).collect();
    let m = ClassifierConfig::of_kind(kind, 0)
        .fit(&x.select_rows(&tr), &ytr)
        .expect("fit")
        .model;
    roc_auc(&yte, &m.predict_proba(&x.select_rows(&te))).expect("auc")
}

#[test]
fn every_model_beats_chance_on_planted_signal_and_not_on_noise() {
    let (x, y) = planted(2400, 3, false);
    let (xn, yn) = planted(2400, 3, true);
    for kind in [
        ModelKind::Logreg,
        ModelKind::Tree,
        ModelKind::Gbm,
        ModelKind::Auto,
    ] {
        let auc = holdout_auc(kind, &x, &y);
        // chance is 0.5; a depth-5 tree is the coarsest of the four
        let floor = if kind == ModelKind::Tree { 0.65 } else { 0.72 };
        assert!(auc > floor, "{kind}: held-out AUC {auc} on planted signal");
        let noise = holdout_auc(kind, &xn, &yn);
        assert!(
            (noise - 0.5).abs() < 0.08,
            "{kind}: AUC {noise} on shuffled labels"
        );
    }
}

#[test]
fn auto_prefers_trees_on_an_interaction_and_scores_candidates_by_inner_cv() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut rows = Vec::new();
    let mut y = Vec::new();
    for _ in 0..2000 {
        let a: f64 = rng.random_range(-1.0..1.0);
        let b: f64 = rng.random_range(-1.0..1.0);
        rows.push(vec![a, b, rng.random_range(-1.0..1.0)]);
        y.push((a * b > 0.0) ^ (rng.random::<f64>() < 0.1));
    }
    let x = DenseMatrix::from_rows(&rows).expect("rows");
    let out = ClassifierConfig::of_kind(ModelKind::Auto, 0)
        .fit(&x, &y)
        .expect("fit");
    assert_eq!(out.candidates.len(), 5);
    let name = out.model.name();
    assert!(
        name.contains("gbm") || name.contains("tree"),
        "auto chose {name}"
    );
    let plain = out
        .candidates
        .iter()
        .find(|c| c.name == "logreg")
        .expect("logreg scored");
    assert!(
        plain.inner_roc_auc < 0.6,
        "a linear model cannot see XOR: {}",
        plain.inner_roc_auc
    );
    assert_eq!(out.oof.len(), y.len());
}

#[test]
fn cross_validation_reports_every_metric_per_fold() {
    let (x, y) = planted(1000, 5, false);
    let r = cross_validate(
        &ClassifierConfig::of_kind(ModelKind::Logreg, 0),
        &x,
        &y,
        5,
        0,
    )
    .expect("cv");
    assert_eq!(r.per_fold.len(), 5);
    assert_eq!(r.fit_seconds.len(), 5);
    assert!(r.mean.roc_auc > 0.7 && r.mean.roc_auc <= 1.0);
    assert!(r.mean.pr_auc > 0.5);
    assert!(r.mean.log_loss > 0.0 && r.mean.log_loss < 0.69);
    assert!(r.mean.brier > 0.0 && r.mean.brier < 0.25);
    assert!(r.mean.accuracy > 0.6);
    assert!(r.std.roc_auc >= 0.0 && r.std.roc_auc < 0.1);
}

#[test]
fn tree_rules_print_with_column_names_and_contributions_point_at_the_signal() {
    let (mut x, y) = planted(2000, 6, false);
    x.names = ["spend", "promo_level", "a", "b", "n1", "n2", "n3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = ClassifierConfig::of_kind(ModelKind::Tree, 0)
        .fit(&x, &y)
        .expect("fit");
    let infogap_models::classify::Classifier::Tree(t) = &out.model else {
        panic!("not a tree")
    };
    let rules = t.rules();
    assert!(
        rules
            .iter()
            .all(|r| r.starts_with("IF ") && r.contains("THEN p = "))
    );
    assert!(
        rules
            .iter()
            .any(|r| r.contains("spend <=") || r.contains("spend >")),
        "{rules:?}"
    );
    // Logistic regression: the informative column dominates the contributions of a high-x0 row.
    let lr = ClassifierConfig::of_kind(ModelKind::Logreg, 0)
        .fit(&x, &y)
        .expect("fit")
        .model;
    let c = lr.contributions(&[0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    let max_noise = c[4..].iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(c[0] > 5.0 * max_noise, "{c:?}");
}

#[test]
fn eval_on_a_typed_table_drops_ids_and_handles_blanks() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let n = 600;
    let mut id = Vec::new();
    let mut plan = Vec::new();
    let mut usage = Vec::new();
    let mut target = Vec::new();
    for i in 0..n {
        let p = ["basic", "plus", "pro"][rng.random_range(0..3)];
        let u: f64 = rng.random_range(0.0..100.0);
        let z = -1.0 + if p == "basic" { 1.5 } else { 0.0 } - 0.02 * (u - 50.0);
        let yes = rng.random::<f64>() < sigmoid(z);
        id.push(Some(format!("C-{i:05}")));
        plan.push(if i % 37 == 0 {
            None
        } else {
            Some(p.to_string())
        });
        usage.push(if i % 29 == 0 { None } else { Some(u) });
        target.push(Some(if yes { "Yes" } else { "No" }.to_string()));
    }
    let frame = Frame::new(vec![
        Column {
            name: "customerID".into(),
            data: ColumnData::Categorical(id),
        },
        Column {
            name: "plan".into(),
            data: ColumnData::Categorical(plan),
        },
        Column {
            name: "usage".into(),
            data: ColumnData::Numeric(usage),
        },
        Column {
            name: "Churn".into(),
            data: ColumnData::Categorical(target),
        },
    ])
    .expect("frame");
    let cfg = ClassifierConfig::of_kind(ModelKind::Logreg, 0);
    let r = eval_frame(&frame, "Churn", None, &[], &cfg, 5, 0).expect("eval");
    assert!(r.roc_auc > 0.75, "auc {}", r.roc_auc);
    assert!(
        r.table.dropped.iter().any(|d| d.name == "customerID"),
        "{:?}",
        r.table.dropped
    );
    assert!(
        r.encoding
            .numeric
            .iter()
            .any(|e| e.name == "usage" && e.indicator.is_some())
    );
    assert_eq!(r.per_fold.len(), 5);
    // A missing target column is a clear error.
    let err = eval_frame(&frame, "Nope", None, &[], &cfg, 5, 0).expect_err("no such column");
    assert!(err.to_string().contains("Nope"), "{err}");
}
