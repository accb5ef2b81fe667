//! Scaling run of the top-N recommenders on synthetic power-law interactions,
//! independent of the `infogap` binary (one algorithm per process, so
//! `/usr/bin/time -v` reports that algorithm's peak memory):
//!
//! ```text
//! cargo build --release -p infogap-bench --example recs_scale
//! /usr/bin/time -v target/release/examples/recs_scale --algo ease --nnz 1000000 --users 50000 --items 5000
//! ```
//!
//! Prints one JSON line: sizes, generation/build/fit times, and the fit's
//! own description (for EASE: how many items the dense model kept).
//! `--algo session-knn` times each user's draws in visits of `--session-len`
//! (default 5).

use std::time::Instant;

use infogap_models::recs::data::{Interactions, Timeline};
use infogap_models::recs::synth::power_law;
use infogap_models::recs::{AlgoParams, EASE_MAX_ITEMS, FitContext, Fitted, Recommender};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|p| args.get(p + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let algo = arg(&args, "--algo", "ease");
    let nnz: usize = arg(&args, "--nnz", "1000000").parse().expect("--nnz");
    let users: usize = arg(&args, "--users", "50000").parse().expect("--users");
    let items: usize = arg(&args, "--items", "5000").parse().expect("--items");
    let exponent: f64 = arg(&args, "--exponent", "1.0").parse().expect("--exponent");
    let max_items: usize = arg(&args, "--max-items", &EASE_MAX_ITEMS.to_string())
        .parse()
        .expect("--max-items");
    let mut params = AlgoParams::default_for(&algo).expect("algo");
    let t0 = Instant::now();
    let triples = power_law(users, items, nnz, exponent, 42);
    let gen_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    // Session models get visits of `--session-len` consecutive draws of each
    // user (one time per visit, so gap 0 cuts them apart).
    let timeline = matches!(params, AlgoParams::SessionKnn { .. }).then(|| {
        let per_visit: i64 = arg(&args, "--session-len", "5")
            .parse()
            .expect("--session-len");
        let mut drawn = vec![0i64; users];
        let events: Vec<(u32, u32, i64)> = triples
            .iter()
            .map(|&(u, i, _)| {
                let k = drawn[u as usize];
                drawn[u as usize] += 1;
                (u, i, k / per_visit)
            })
            .collect();
        Timeline::new(users, items, &events).expect("timeline")
    });
    let x = Interactions::from_dense_triples(users, items, &triples).expect("build");
    drop(triples);
    let build_s = t1.elapsed().as_secs_f64();
    if matches!(params, AlgoParams::Ease { .. } | AlgoParams::Blend { .. }) {
        params
            .set("max_items", max_items as f64)
            .expect("max_items");
    }
    let t2 = Instant::now();
    let ctx = FitContext::new(&x.by_user, &x.by_item).with_order(timeline.as_ref());
    let m = Recommender::fit_in(&params, &ctx).expect("fit");
    let fit_s = t2.elapsed().as_secs_f64();
    let t3 = Instant::now();
    // The first 1000 users (a matrix of just those rows).
    let rows = users.min(1000);
    let end = x.by_user.indptr[rows];
    let sample = infogap_models::recs::data::Csr {
        n_rows: rows,
        n_cols: x.n_items(),
        indptr: x.by_user.indptr[..=rows].to_vec(),
        indices: x.by_user.indices[..end].to_vec(),
        values: x.by_user.values[..end].to_vec(),
    };
    let recs = m.recommend_all(&sample, 10, false);
    let score_1000_s = t3.elapsed().as_secs_f64();
    let modelled = match &m.model {
        Fitted::Ease(e) => e.items.len(),
        _ => x.n_items(),
    };
    let active_items = (0..x.n_items())
        .filter(|&i| x.by_item.row_len(i) > 0)
        .count();
    println!(
        "{{\"algo\":\"{algo}\",\"interactions\":{},\"users\":{users},\"items\":{items},\"active_items\":{active_items},\
\"modelled_items\":{modelled},\"generate_s\":{gen_s:.3},\"build_s\":{build_s:.3},\"fit_s\":{fit_s:.3},\
\"score_1000_users_s\":{score_1000_s:.3},\"threads\":{},\"recs_len\":{}}}",
        x.nnz(),
        std::thread::available_parallelism().map_or(1, usize::from),
        recs.iter().map(Vec::len).sum::<usize>()
    );
}
