//! Criterion benches of the model fits that `quickstart` and the `eval`
//! commands time against their Python peers: the churn classifiers (logistic
//! regression, GBM, `auto` with its inner selection) on a 6 000 × 40 table,
//! automatic ETS on a 132-month seasonal series, BG/NBD and Gamma-Gamma on
//! 2 500 customers, and OLS on 1M rows. Inputs are generated with fixed seeds
//! (planted structure, so the fits do real work); real-data figures beside
//! the peers' are in BENCHMARKS.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use infogap_models::classify::{ClassifierConfig, DenseMatrix, ModelKind};
use infogap_models::clv::{
    BgNbd, BgNbdParams, ClvModel, CustomerSummary, GammaGamma, GammaGammaParams, TimeUnit,
};
use infogap_models::forecast::AutoEts;
use infogap_models::regress::{LinearRegression, synthetic_customers};

/// A small deterministic generator (xorshift64*), uniform in [0, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn churn_table(n: usize, p: usize) -> (DenseMatrix, Vec<bool>) {
    let mut r = Rng(7);
    let mut data = Vec::with_capacity(n * p);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let row: Vec<f64> = (0..p)
            .map(|j| {
                if j % 4 == 0 {
                    f64::from(u8::from(r.next() < 0.3))
                } else {
                    r.next()
                }
            })
            .collect();
        let logit = 2.0 * row[1] - 1.5 * row[2] + row[4] * row[5] * 3.0 - 1.2;
        y.push(r.next() < 1.0 / (1.0 + (-logit).exp()));
        data.extend(row);
    }
    let names = (0..p).map(|j| format!("x{j}")).collect();
    (DenseMatrix::new(n, data, names).expect("shape"), y)
}

fn seasonal_series(n: usize) -> Vec<f64> {
    let mut r = Rng(11);
    (0..n)
        .map(|t| {
            let season = 1.0 + 0.25 * (2.0 * std::f64::consts::PI * (t % 12) as f64 / 12.0).sin();
            (120.0 + 2.0 * t as f64) * season * (1.0 + 0.04 * (r.next() - 0.5))
        })
        .collect()
}

fn clv_summaries(n: usize) -> Vec<CustomerSummary> {
    let mut r = Rng(3);
    (0..n)
        .map(|customer| {
            let age = 30.0 + 48.0 * r.next();
            let frequency = (r.next() * r.next() * 12.0) as u32;
            let recency = if frequency == 0 {
                0.0
            } else {
                age * r.next().sqrt()
            };
            let monetary = if frequency == 0 {
                0.0
            } else {
                20.0 + 40.0 * r.next()
            };
            CustomerSummary {
                customer,
                frequency,
                recency,
                age,
                monetary,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let (x, y) = churn_table(6_000, 40);
    let mut g = c.benchmark_group("classify_fit_6000x40");
    g.sample_size(10);
    for kind in [ModelKind::Logreg, ModelKind::Gbm, ModelKind::Auto] {
        let cfg = ClassifierConfig {
            kind,
            ..ClassifierConfig::default()
        };
        g.bench_function(kind.to_string(), |b| {
            b.iter(|| cfg.fit(black_box(&x), &y).expect("fit"))
        });
    }
    g.finish();

    let s = seasonal_series(132);
    let mut g = c.benchmark_group("forecast");
    g.bench_function("auto_ets_132_months", |b| {
        b.iter(|| {
            AutoEts {
                refit_amse: 12,
                ..AutoEts::new(12)
            }
            .fit_series(black_box(&s))
            .expect("fit")
        })
    });
    g.finish();

    let d = clv_summaries(2_500);
    let mut g = c.benchmark_group("clv_2500_customers");
    g.bench_function("bgnbd", |b| {
        b.iter(|| BgNbd::default().fit_summaries(black_box(&d)).expect("fit"))
    });
    g.bench_function("gamma_gamma", |b| {
        b.iter(|| {
            GammaGamma::default()
                .fit_summaries(black_box(&d))
                .expect("fit")
        })
    });
    // Valuing customers (12 monthly expectations each) with The Complete
    // Journey's fitted parameters (b = 421.6: the regime where the old ₂F₁
    // form broke), established and brand-new customers.
    let model = ClvModel {
        bgnbd: BgNbdParams {
            r: 1.412_439,
            alpha: 1.391_082,
            a: 0.294_162,
            b: 421.614_2,
        },
        gamma_gamma: GammaGammaParams {
            p: 0.447_885,
            q: 3.864_895,
            gamma: 240.66,
        },
        unit: TimeUnit::Week,
        fallback_spend: None,
    };
    let fresh: Vec<CustomerSummary> = d
        .iter()
        .map(|s| CustomerSummary {
            age: s.age / 40.0,
            recency: s.recency / 40.0,
            ..*s
        })
        .collect();
    g.bench_function("value_12_months", |b| {
        b.iter(|| {
            d.iter()
                .map(|s| model.value(black_box(s), 12, 0.01).clv)
                .sum::<f64>()
        })
    });
    g.bench_function("value_12_months_new_customers", |b| {
        b.iter(|| {
            fresh
                .iter()
                .map(|s| model.value(black_box(s), 12, 0.01).clv)
                .sum::<f64>()
        })
    });
    g.finish();

    let (m, t) = synthetic_customers(1_000_000, 1);
    let mut g = c.benchmark_group("regress");
    g.sample_size(10);
    g.bench_function("ols_1m_rows", |b| {
        b.iter(|| {
            LinearRegression::default()
                .fit_matrix(black_box(&m), &t)
                .expect("fit")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
