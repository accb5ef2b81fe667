//! Integration tests: RFM names and k-means with k chosen by silhouette.
#![allow(clippy::unwrap_used)]

use infogap_models::segment::{KMeans, adjusted_rand_index, choose_k, rfm_scores, standardize};
use infogap_models::tabular::Matrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn blobs(k: usize, per: usize, p: usize, seed: u64) -> (Matrix, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centers: Vec<Vec<f64>> = (0..k)
        .map(|_| (0..p).map(|_| rng.random_range(-20.0..20.0)).collect())
        .collect();
    let mut data = Vec::new();
    let mut truth = Vec::new();
    for i in 0..k * per {
        let c = i % k;
        for m in &centers[c] {
            data.push(m + infogap_models::regress::std_normal(&mut rng));
        }
        truth.push(c);
    }
    (Matrix::new(data, k * per, p).unwrap(), truth)
}

#[test]
fn kmeans_recovers_planted_clusters() {
    let (mut x, truth) = blobs(4, 150, 3, 5);
    standardize(&mut x);
    let fit = KMeans {
        k: 4,
        restarts: 5,
        max_iter: 100,
        seed: 0,
    }
    .fit(&x)
    .unwrap();
    let ari = adjusted_rand_index(&truth, &fit.labels).unwrap();
    assert!(ari > 0.95, "ARI {ari}");
}

#[test]
fn silhouette_picks_the_planted_k() {
    for (k, seed) in [(3, 1), (5, 2)] {
        let (mut x, truth) = blobs(k, 100, 4, seed);
        standardize(&mut x);
        let c = choose_k(
            &x,
            2,
            8,
            &KMeans {
                k: 2,
                restarts: 4,
                max_iter: 100,
                seed: 0,
            },
            1_000,
        )
        .unwrap();
        assert_eq!(c.k, k, "silhouettes {:?}", c.silhouettes);
        assert!(adjusted_rand_index(&truth, &c.fit.labels).unwrap() > 0.95);
    }
}

#[test]
fn kmeans_is_deterministic_for_a_seed() {
    let (x, _) = blobs(3, 50, 2, 9);
    let cfg = KMeans {
        k: 3,
        restarts: 3,
        max_iter: 50,
        seed: 42,
    };
    assert_eq!(cfg.fit(&x).unwrap(), cfg.fit(&x).unwrap());
}

#[test]
fn rfm_names_hand_built_customers() {
    // 20 customers, 4 per quintile: (days since last purchase, orders, spend).
    let mut c = vec![
        (2.0, 40.0, 4000.0),   // recent and frequent → champions
        (3.0, 38.0, 3800.0),   // champions
        (300.0, 31.0, 3100.0), // long gone, used to buy a lot → can't lose
        (310.0, 30.0, 3000.0), // can't lose
        (4.0, 1.0, 20.0),      // just arrived, one order → new
        (5.0, 1.0, 30.0),      // new
        (400.0, 1.0, 10.0),    // one order long ago → lost
        (420.0, 1.0, 15.0),    // lost
    ];
    // 12 middling customers.
    for i in 0..12 {
        c.push((
            50.0 + 10.0 * i as f64,
            5.0 + i as f64,
            100.0 * (i + 1) as f64,
        ));
    }
    let r: Vec<f64> = c.iter().map(|v| v.0).collect();
    let f: Vec<f64> = c.iter().map(|v| v.1).collect();
    let m: Vec<f64> = c.iter().map(|v| v.2).collect();
    let s = rfm_scores(&r, &f, &m).unwrap();
    let names: Vec<&str> = s.iter().map(|x| x.segment).collect();
    assert_eq!(
        &names[..8],
        [
            "champions",
            "champions",
            "can't lose",
            "can't lose",
            "new",
            "new",
            "lost",
            "lost"
        ]
    );
    assert_eq!((s[0].r, s[0].f, s[0].m), (5, 5, 5));
    assert_eq!((s[6].r, s[6].f, s[6].m), (1, 1, 1));
    // The middling ones are never champions, new or lost.
    assert!(
        names[8..]
            .iter()
            .all(|n| !["champions", "new", "lost"].contains(n)),
        "{names:?}"
    );
}
