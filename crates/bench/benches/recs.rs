//! Criterion benches of the top-N recommenders: fit and score-all on
//! synthetic power-law interactions (20 000 users × 2 000 items, 200 000
//! draws). Larger sizes (1M–50M interactions, with peak memory) are run by
//! `examples/recs_scale.rs`; figures in BENCHMARKS.md (top-N, scaling).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use infogap_models::recs::data::Interactions;
use infogap_models::recs::ials::IalsParams;
use infogap_models::recs::synth::power_law;
use infogap_models::recs::{AlgoParams, Recommender};

fn data() -> Interactions {
    let t = power_law(20_000, 2_000, 200_000, 1.0, 42);
    Interactions::from_dense_triples(20_000, 2_000, &t).expect("valid triples")
}

fn bench(c: &mut Criterion) {
    let x = data();
    let algos = [
        AlgoParams::ItemKnn {
            k: 100,
            shrink: 10.0,
        },
        AlgoParams::Ease {
            lambda: 500.0,
            dropout: 0.0,
            max_items: 20_000,
        },
        AlgoParams::Ials(IalsParams {
            iterations: 5,
            ..IalsParams::default()
        }),
    ];
    let mut g = c.benchmark_group("recs_fit");
    g.sample_size(10);
    for a in &algos {
        g.bench_function(a.name(), |b| {
            b.iter(|| Recommender::fit(black_box(a), &x).expect("fit"))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("recs_score_all");
    g.sample_size(10);
    for a in &algos {
        let m = Recommender::fit(a, &x).expect("fit");
        g.bench_function(a.name(), |b| {
            b.iter(|| m.recommend_all(black_box(&x.by_user), 10, false))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
