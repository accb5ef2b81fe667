//! Rating-prediction models on generated ratings with planted structure:
//! `r = 3.5 + b_u + b_i + p_uᵀq_i + noise` (rank 3, clipped to 1..5), so the
//! baseline must beat the global mean (biases are real) and every
//! personalized model must beat the baseline (the low-rank part is real).

use infogap_models::metrics::rating::rmse;
use infogap_models::recs::rating::{
    RatingAlgo, RatingData, auto_candidates, choose, complement, expand_grid, kfold, parse_grid,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn planted(seed: u64) -> RatingData {
    let (nu, ni, rank) = (400usize, 250usize, 3usize);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut g = || -> f32 {
        // Sum of uniforms ≈ normal(0, 1).
        (0..12).map(|_| rng.random::<f32>()).sum::<f32>() - 6.0
    };
    let bu: Vec<f32> = (0..nu).map(|_| 0.4 * g()).collect();
    let bi: Vec<f32> = (0..ni).map(|_| 0.4 * g()).collect();
    let p: Vec<f32> = (0..nu * rank).map(|_| 0.6 * g()).collect();
    let q: Vec<f32> = (0..ni * rank).map(|_| 0.6 * g()).collect();
    let noise: Vec<f32> = (0..nu * ni).map(|_| 0.3 * g()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 99);
    let (mut us, mut is, mut rs) = (Vec::new(), Vec::new(), Vec::new());
    for u in 0..nu {
        for i in 0..ni {
            // ~12 % density.
            if rng.random::<f32>() < 0.12 {
                let dot: f32 = (0..rank).map(|f| p[u * rank + f] * q[i * rank + f]).sum();
                let r = (3.5 + bu[u] + bi[i] + dot + noise[u * ni + i]).clamp(1.0, 5.0);
                us.push(u as u32);
                is.push(i as u32);
                rs.push(r);
            }
        }
    }
    RatingData::new(nu, ni, us, is, rs).expect("valid planted data")
}

fn holdout_rmse(algo: &RatingAlgo, data: &RatingData, seed: u64) -> f64 {
    let folds = kfold(data.len(), 5, 3).expect("folds");
    let train = data.subset(&complement(data.len(), &folds[0]));
    let test = data.subset(&folds[0]);
    let m = algo.fit(&train, seed).expect("fit");
    rmse(&m.predict_many(&test.users, &test.items), &test.ratings)
}

#[test]
fn every_model_beats_the_baseline_which_beats_the_mean() {
    let data = planted(1);
    let mean = holdout_rmse(&RatingAlgo::GlobalMean, &data, 0);
    let base = holdout_rmse(
        &RatingAlgo::default_for("baseline").expect("algo"),
        &data,
        0,
    );
    assert!(base < 0.9 * mean, "baseline {base} vs mean {mean}");
    for name in ["svd", "knn-baseline", "blend"] {
        let r = holdout_rmse(&RatingAlgo::default_for(name).expect("algo"), &data, 0);
        assert!(
            r < 0.9 * base,
            "{name}: {r} vs baseline {base} (mean {mean})"
        );
    }
    // SVD++'s defaults (8 short epochs, strong regularization) are tuned for
    // noisy MovieLens-like data and underfit this strong planted signal;
    // they still beat the baseline, and the long setting `auto` also tries
    // beats it by the same margin as the others.
    let short = holdout_rmse(&RatingAlgo::default_for("svdpp").expect("algo"), &data, 0);
    assert!(
        short < 0.98 * base,
        "svdpp default: {short} vs baseline {base}"
    );
    let mut long = RatingAlgo::default_for("svdpp").expect("algo");
    for (k, v) in [
        ("epochs", 30.0),
        ("lr", 0.02),
        ("reg", 0.02),
        ("decay", 0.95),
    ] {
        long.set(k, v).expect("param");
    }
    let r = holdout_rmse(&long, &data, 0);
    assert!(r < 0.9 * base, "svdpp long: {r} vs baseline {base}");
}

#[test]
fn deterministic_for_a_seed() {
    let data = planted(2);
    for name in ["svd", "svdpp", "knn-baseline", "blend"] {
        let a = RatingAlgo::default_for(name).expect("algo");
        let m1 = a.fit(&data, 7).expect("fit");
        let m2 = a.fit(&data, 7).expect("fit");
        let users: Vec<u32> = (0..50).collect();
        let items: Vec<u32> = (0..50).map(|i| (i * 3) % 250).collect();
        assert_eq!(
            m1.predict_many(&users, &items),
            m2.predict_many(&users, &items),
            "{name}"
        );
    }
}

#[test]
fn predictions_stay_in_range_and_unknown_ids_fall_back() {
    let mut data = planted(3);
    // One extra user and item that have no ratings.
    data.n_users += 1;
    data.n_items += 1;
    let (nu, ni) = (data.n_users as u32 - 1, data.n_items as u32 - 1);
    let base = RatingAlgo::default_for("baseline")
        .expect("algo")
        .fit(&data, 0)
        .expect("fit");
    for name in ["svd", "svdpp", "knn-baseline"] {
        let m = RatingAlgo::default_for(name)
            .expect("algo")
            .fit(&data, 0)
            .expect("fit");
        let p = m.predict_many(&data.users, &data.items);
        assert!(
            p.iter().all(|&x| (1.0..=5.0).contains(&x)),
            "{name}: out of range"
        );
        // A user with no ratings gets exactly the item's baseline part.
        assert!(
            (m.predict(nu, 5) - base.predict(nu, 5)).abs() < 0.3,
            "{name}: unknown user"
        );
        assert!(
            (m.predict(4, ni) - base.predict(4, ni)).abs() < 0.3,
            "{name}: unknown item"
        );
    }
}

#[test]
fn selection_uses_train_only_and_picks_a_personalized_model() {
    let data = planted(4);
    let folds = kfold(data.len(), 5, 0).expect("folds");
    let train = data.subset(&complement(data.len(), &folds[0]));
    let ch = choose(&train, &auto_candidates(), true, 0.1, 0.0, 0).expect("choose");
    assert!(
        !matches!(ch.algo, RatingAlgo::Baseline(_) | RatingAlgo::GlobalMean),
        "{:?}",
        ch.algo
    );
    assert!(
        ch.trials.len() > auto_candidates().len(),
        "blend was scored too"
    );
    let best_single = ch.trials[..auto_candidates().len()]
        .iter()
        .map(|t| t.val_rmse)
        .fold(f64::INFINITY, f64::min);
    assert!(ch.val_rmse <= best_single);
    assert_eq!(ch.val_rmse, ch.best_val_rmse, "tolerance 0 takes the best");
    // With a tolerance, a cheaper model within it may win instead.
    let tol = 0.05;
    let ch2 = choose(&train, &auto_candidates(), true, 0.1, tol, 0).expect("choose");
    assert!(ch2.val_rmse <= ch2.best_val_rmse * (1.0 + tol));
    assert!(ch2.algo.cost(&train) <= ch.algo.cost(&train));
    // A grid over an obviously bad value is not chosen.
    let grid = parse_grid("reg=0.08,50").expect("grid");
    let cands =
        expand_grid(&RatingAlgo::default_for("svdpp").expect("algo"), &grid).expect("expand");
    let ch = choose(&train, &cands, false, 0.1, 0.0, 0).expect("choose");
    assert_eq!(ch.algo, cands[0], "{:?}", ch.trials);
}

#[test]
fn bad_inputs_are_errors() {
    assert!(RatingData::new(2, 2, vec![0, 5], vec![0, 1], vec![1.0, 2.0]).is_err());
    assert!(RatingData::new(2, 2, vec![0], vec![0, 1], vec![1.0, 2.0]).is_err());
    assert!(RatingData::new(2, 2, vec![0], vec![0], vec![f32::NAN]).is_err());
    let empty = RatingData::new(2, 2, vec![], vec![], vec![]).expect("empty is valid data");
    assert!(
        RatingAlgo::default_for("svd")
            .expect("algo")
            .fit(&empty, 0)
            .is_err()
    );
    assert!(RatingAlgo::default_for("nope").is_err());
    let mut a = RatingAlgo::default_for("svd").expect("algo");
    assert!(a.set("lr", 5.0).is_ok());
    let d = planted(5);
    assert!(a.fit(&d, 0).is_err(), "lr above 1 is rejected");
}
