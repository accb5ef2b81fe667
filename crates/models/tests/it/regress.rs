//! Integration tests: linear regression (OLS / ridge) and the tabular layer feeding it.
#![allow(clippy::unwrap_used)]

use infogap_models::Predictor;
use infogap_models::regress::{LinearFit, LinearRegression, synthetic_customers};
use infogap_models::tabular::{
    Column, ColumnData, Encoder, EncoderOptions, Frame, TargetSpec, prepare,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn textbook_prediction_is_1525_6() {
    // intercept 10, 0.5·age, 0.3·income, 0.2·purchases; age 30, income 5000, 3 purchases.
    let m = LinearFit::from_coefficients(10.0, vec![0.5, 0.3, 0.2]);
    let x = infogap_models::tabular::Matrix::new(vec![30.0, 5000.0, 3.0], 1, 3).unwrap();
    let p = m.predict(&x)[0];
    assert!((p - 1525.6).abs() < 1e-9, "{p}");
    assert!((p - 643.0).abs() > 800.0);
}

#[test]
fn ols_recovers_planted_coefficients_with_sane_standard_errors() {
    let truth = [0.5, 0.3, 0.2];
    let (x, y) = synthetic_customers(200_000, 7);
    let f = LinearRegression::default().fit_matrix(&x, &y).unwrap();
    let n = 200_000f64;
    // Theoretical SE of a slope ≈ σ / (sd_x √n) for nearly uncorrelated predictors.
    let sd_x = [
        (63.0f64 * 63.0 - 1.0).sqrt() / 12f64.sqrt(),
        15.0,
        10f64.sqrt(),
    ];
    for j in 0..3 {
        let se = f.standard_errors[j].unwrap();
        let theory = 5.0 / (sd_x[j] * n.sqrt());
        assert!(
            (se / theory - 1.0).abs() < 0.1,
            "coef {j}: se {se} vs theory {theory}"
        );
        let z = (f.coefficients[j] - truth[j]) / se;
        assert!(
            z.abs() < 4.5,
            "coef {j}: {} is {z:.1} SE from {}",
            f.coefficients[j],
            truth[j]
        );
    }
    let z0 = (f.intercept - 10.0) / f.intercept_se.unwrap();
    assert!(z0.abs() < 4.5, "intercept {} ({z0:.1} SE)", f.intercept);
    let sigma = f.sigma.expect("sigma");
    let r2 = f.r2.expect("r2");
    assert!((sigma - 5.0).abs() < 0.05, "sigma {sigma}");
    assert!(r2 > 0.78 && r2 < 0.83, "r2 {r2}");
    let t = f.t_values();
    assert!(t[0].unwrap() > 100.0);
}

#[test]
fn ridge_shrinks_standardized_coefficients() {
    let (x, y) = synthetic_customers(5_000, 1);
    let norm = |l: f64| {
        let f = LinearRegression { ridge: l }.fit_matrix(&x, &y).unwrap();
        f.standardized.iter().map(|b| b * b).sum::<f64>().sqrt()
    };
    let (a, b, c) = (norm(0.0), norm(5_000.0), norm(500_000.0));
    assert!(a > b && b > c, "{a} {b} {c}");
    assert!(c < 0.1 * a);
    assert!(LinearRegression { ridge: -1.0 }.fit_matrix(&x, &y).is_err());
}

#[test]
fn categorical_effects_through_the_tabular_layer() {
    // y = 3 + 2·x + {a: 0, b: 5, c: −4} + noise, with some blank x.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let n = 3_000;
    let (mut xs, mut cs, mut ys) = (vec![], vec![], vec![]);
    for i in 0..n {
        let x: f64 = rng.random_range(0.0..10.0);
        let c = ["a", "b", "c"][i % 3];
        let eff = [0.0, 5.0, -4.0][i % 3];
        ys.push(Some(
            3.0 + 2.0 * x + eff + 0.5 * infogap_models::regress::std_normal(&mut rng),
        ));
        xs.push(if i % 50 == 0 { None } else { Some(x) });
        cs.push(Some(c.to_string()));
    }
    let frame = Frame::new(vec![
        Column {
            name: "x".into(),
            data: ColumnData::Numeric(xs),
        },
        Column {
            name: "kind".into(),
            data: ColumnData::Categorical(cs),
        },
        Column {
            name: "y".into(),
            data: ColumnData::Numeric(ys),
        },
    ])
    .unwrap();
    let p = prepare(&frame, "y", &TargetSpec::Numeric, &[]).unwrap();
    let rows: Vec<usize> = (0..n).collect();
    let enc = Encoder::new(EncoderOptions { standardize: false })
        .fit(&p.features, &rows)
        .unwrap();
    let m = enc.transform(&p.features, &rows).unwrap();
    let f = LinearRegression::default().fit_matrix(&m, &p.y).unwrap();
    let names = enc.feature_names();
    let coef = |n: &str| f.coefficients[names.iter().position(|x| x == n).unwrap()];
    assert!((coef("x") - 2.0).abs() < 0.05, "{}", coef("x"));
    // All levels kept next to the intercept: exactly one level is aliased; contrasts are recovered.
    assert_eq!(f.aliased.iter().filter(|a| **a).count(), 1);
    let (a, b, c) = (coef("kind=a"), coef("kind=b"), coef("kind=c"));
    assert!(
        ((b - a) - 5.0).abs() < 0.15 && ((c - a) + 4.0).abs() < 0.15,
        "{a} {b} {c}"
    );
}
