//! Integration tests of exponential smoothing: the textbook table, planted
//! level/trend/season recovered, AICc choosing the planted class, and
//! prediction intervals that widen and cover.

use infogap_models::forecast::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

const SEASON12: [f64; 12] = [
    -12.0, -8.0, 0.0, 5.0, 9.0, 14.0, 16.0, 10.0, 2.0, -6.0, -14.0, -16.0,
];

fn planted_additive(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|t| 100.0 + 0.8 * t as f64 + SEASON12[t % 12] + 1.5 * normal(&mut rng))
        .collect()
}

fn planted_multiplicative(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|t| {
            let f = 1.0 + SEASON12[t % 12] / 50.0;
            (200.0 + 2.0 * t as f64) * f * (1.0 + 0.01 * normal(&mut rng))
        })
        .collect()
}

#[test]
fn ses_textbook_table_20_40_62_85_6() {
    let y = [100.0, 120.0, 150.0, 180.0];
    let fixed = EtsFixed {
        alpha: Some(0.2),
        initial_level: Some(0.0),
        ..EtsFixed::default()
    };
    let fit = fit_ets(&y, EtsSpec::ses(), &fixed).expect("fit");
    let want = [20.0, 40.0, 62.0, 85.6];
    assert_eq!(fit.levels.len(), 4);
    for (got, want) in fit.levels.iter().zip(want) {
        assert!((got - want).abs() < 1e-9, "levels {:?}", fit.levels);
    }
    // Flat forecast at the last level; one-step fitted values are the previous levels.
    assert!(fit.forecast(4).iter().all(|v| (v - 85.6).abs() < 1e-9));
    assert!((fit.fitted[0] - 0.0).abs() < 1e-9 && (fit.fitted[3] - 62.0).abs() < 1e-9);
}

#[test]
fn ses_estimates_alpha_on_a_random_walk() {
    // A random walk is SES with α = 1; α estimated high, forecast = last value-ish.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut v = 50.0;
    let y: Vec<f64> = (0..200)
        .map(|_| {
            v += normal(&mut rng);
            v
        })
        .collect();
    let fit = fit_ets(&y, EtsSpec::ses(), &EtsFixed::default()).expect("fit");
    assert!(fit.params.alpha > 0.8, "alpha {}", fit.params.alpha);
    assert!((fit.forecast(1)[0] - y[199]).abs() < 1.0);
}

#[test]
fn holt_recovers_planted_level_and_trend() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let y: Vec<f64> = (0..120)
        .map(|t| 30.0 + 2.5 * t as f64 + normal(&mut rng))
        .collect();
    let fit = fit_ets(&y, EtsSpec::holt(false), &EtsFixed::default()).expect("fit");
    let f = fit.forecast(10);
    let slope = (f[9] - f[0]) / 9.0;
    assert!((slope - 2.5).abs() < 0.15, "slope {slope}");
    // The forecast continues the planted line.
    let truth = 30.0 + 2.5 * 129.0;
    assert!((f[9] - truth).abs() < 3.0, "h=10: {} vs {truth}", f[9]);
    let last = *fit.levels.last().expect("levels");
    assert!(
        (last - (30.0 + 2.5 * 119.0)).abs() < 2.0,
        "last level {last}"
    );
    // Damped: φ within its bounds and still near the line at short horizons.
    let d = fit_ets(&y, EtsSpec::holt(true), &EtsFixed::default()).expect("fit");
    assert!((0.8..=0.98).contains(&d.params.phi));
    assert!((d.forecast(1)[0] - (30.0 + 2.5 * 120.0)).abs() < 3.0);
}

#[test]
fn holt_winters_additive_recovers_season_and_trend() {
    let y = planted_additive(96, 3);
    let fit = fit_ets(&y, EtsSpec::hw_additive(12, false), &EtsFixed::default()).expect("fit");
    let f = fit.forecast(24);
    // Seasonal shape: forecast minus trend line, averaged over two cycles.
    for j in 0..12 {
        let trend_at = |h: usize| 100.0 + 0.8 * (96 + h) as f64;
        let est = 0.5 * ((f[j] - trend_at(j)) + (f[j + 12] - trend_at(j + 12)));
        let want = SEASON12[(96 + j) % 12];
        assert!((est - want).abs() < 3.0, "month {j}: {est} vs {want}");
    }
    let slope = (f[12] - f[0]) / 12.0;
    assert!((slope - 0.8).abs() < 0.2, "slope {slope}");
}

#[test]
fn holt_winters_multiplicative_recovers_factors() {
    let y = planted_multiplicative(96, 5);
    let fit = fit_ets(
        &y,
        EtsSpec::hw_multiplicative(12, false),
        &EtsFixed::default(),
    )
    .expect("fit");
    let f = fit.forecast(12);
    for (j, &v) in f.iter().enumerate() {
        let t = 96 + j;
        let want = (200.0 + 2.0 * t as f64) * (1.0 + SEASON12[t % 12] / 50.0);
        assert!((v / want - 1.0).abs() < 0.03, "h={}: {v} vs {want}", j + 1);
    }
}

#[test]
fn aicc_picks_seasonal_only_when_planted() {
    for seed in [1, 2] {
        let y = planted_additive(84, seed);
        let auto = AutoEts::new(12).fit_series(&y).expect("auto");
        assert_ne!(
            auto.best.spec.season,
            SeasonType::None,
            "seed {seed}: {}",
            auto.best.name()
        );
        let y = planted_multiplicative(84, seed);
        let auto = AutoEts::new(12).fit_series(&y).expect("auto");
        assert_ne!(
            auto.best.spec.season,
            SeasonType::None,
            "seed {seed}: {}",
            auto.best.name()
        );
    }
    // No season planted: local level with noise, offered a season of 12.
    for seed in [3, 4] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut l = 100.0;
        let y: Vec<f64> = (0..84)
            .map(|_| {
                l += 0.5 * normal(&mut rng);
                l + 2.0 * normal(&mut rng)
            })
            .collect();
        let auto = AutoEts::new(12).fit_series(&y).expect("auto");
        assert_eq!(
            auto.best.spec.season,
            SeasonType::None,
            "seed {seed}: {}",
            auto.best.name()
        );
    }
    // A strong trend without season: a trend model.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let y: Vec<f64> = (0..60)
        .map(|t| 10.0 + 3.0 * t as f64 + normal(&mut rng))
        .collect();
    let auto = AutoEts::new(1).fit_series(&y).expect("auto");
    assert_ne!(
        auto.best.spec.trend,
        TrendType::None,
        "{}",
        auto.best.name()
    );
}

#[test]
fn intervals_widen_and_cover_about_95_percent_analytic() {
    // Simulated local-level series (ETS(A,N,N), α = 0.3, σ = 1): coverage of
    // the 95% analytic intervals over 5 steps ahead.
    let (mut inside, mut total) = (0, 0);
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    for _ in 0..150 {
        let mut l = 20.0;
        let y: Vec<f64> = (0..65)
            .map(|_| {
                let e = normal(&mut rng);
                let v = l + e;
                l += 0.3 * e;
                v
            })
            .collect();
        let (train, test) = y.split_at(60);
        let fit = fit_ets(train, EtsSpec::ses(), &EtsFixed::default()).expect("fit");
        let fc = fit.forecast_intervals(5, 0.95).expect("intervals");
        assert_eq!(fc.interval_method, "analytic");
        for j in 1..5 {
            assert!(fc.upper[j] - fc.lower[j] >= fc.upper[j - 1] - fc.lower[j - 1] - 1e-12);
        }
        for (j, &v) in test.iter().enumerate() {
            total += 1;
            if v >= fc.lower[j] && v <= fc.upper[j] {
                inside += 1;
            }
        }
    }
    let cov = inside as f64 / total as f64;
    assert!((0.89..=0.99).contains(&cov), "coverage {cov}");
}

#[test]
fn intervals_cover_by_simulation_for_multiplicative_error() {
    // ETS(M,N,N) with α = 0.2, σ = 5%: simulated intervals.
    let (mut inside, mut total) = (0, 0);
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    for _ in 0..60 {
        let mut l = 100.0;
        let y: Vec<f64> = (0..64)
            .map(|_| {
                let e = 0.05 * normal(&mut rng);
                let v = l * (1.0 + e);
                l *= 1.0 + 0.2 * e;
                v
            })
            .collect();
        let (train, test) = y.split_at(60);
        let spec = EtsSpec::new(
            ErrorType::Multiplicative,
            TrendType::None,
            SeasonType::None,
            1,
        );
        let fit = fit_ets(train, spec, &EtsFixed::default()).expect("fit");
        let fc = fit.forecast_intervals(4, 0.95).expect("intervals");
        assert_eq!(fc.interval_method, "simulation");
        // Widening is slow when α is small; allow simulation noise.
        assert!(fc.upper[3] - fc.lower[3] > 0.95 * (fc.upper[0] - fc.lower[0]));
        for (j, &v) in test.iter().enumerate() {
            total += 1;
            if v >= fc.lower[j] && v <= fc.upper[j] {
                inside += 1;
            }
        }
    }
    let cov = inside as f64 / total as f64;
    assert!((0.88..=0.995).contains(&cov), "coverage {cov}");
}

#[test]
fn seasonal_intervals_widen_with_horizon() {
    let y = planted_additive(72, 8);
    let fit = fit_ets(&y, EtsSpec::hw_additive(12, false), &EtsFixed::default()).expect("fit");
    let fc = fit.forecast_intervals(24, 0.9).expect("intervals");
    let w: Vec<f64> = fc.upper.iter().zip(&fc.lower).map(|(u, l)| u - l).collect();
    assert!(w[23] > w[0], "{w:?}");
    assert!(fc.lower.iter().zip(&fc.point).all(|(l, p)| l < p));
    let y = planted_multiplicative(72, 8);
    let fit = fit_ets(
        &y,
        EtsSpec::hw_multiplicative(12, false),
        &EtsFixed::default(),
    )
    .expect("fit");
    let fc = fit.forecast_intervals(24, 0.9).expect("intervals");
    assert!(fc.upper[23] - fc.lower[23] > fc.upper[0] - fc.lower[0]);
}

#[test]
fn log_model_is_comparable_and_positive() {
    let y = planted_multiplicative(72, 12);
    let fit = fit_ets(
        &y,
        EtsSpec::hw_additive(12, false).on_log(),
        &EtsFixed::default(),
    )
    .expect("fit");
    assert!(fit.aicc.is_finite());
    let fc = fit.forecast_intervals(12, 0.95).expect("intervals");
    assert!(fc.lower.iter().all(|&v| v > 0.0));
    // Its likelihood is on the original scale: close to the multiplicative model's.
    let mul = fit_ets(
        &y,
        EtsSpec::hw_multiplicative(12, false),
        &EtsFixed::default(),
    )
    .expect("fit");
    assert!(
        (fit.loglik - mul.loglik).abs() < 30.0,
        "{} vs {}",
        fit.loglik,
        mul.loglik
    );
}

#[test]
fn metrics() {
    assert!((mape(&[100.0, 200.0], &[110.0, 180.0]) - 10.0).abs() < 1e-12);
    assert!((rmse(&[1.0, 2.0], &[2.0, 4.0]) - (2.5f64).sqrt()).abs() < 1e-12);
}
