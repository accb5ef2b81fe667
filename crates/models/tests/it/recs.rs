//! Integration tests of the top-N recommenders on planted-taste data: users
//! draw most of their items from one taste group, so every algorithm must rank
//! the held-out items of that group far above random; plus the product rules
//! (no seen items unless asked, labelled cold-start fallback, fold-in ≈
//! retrain, determinism, explanations from the customer's own items).

use infogap_models::metrics::ranking;
use infogap_models::recs::data::{Csr, Interactions};
use infogap_models::recs::ials::IalsParams;
use infogap_models::recs::select::{self, holdout};
use infogap_models::recs::synth::{Planted, planted_taste};
use infogap_models::recs::topn::TopNFilter;
use infogap_models::recs::{AlgoParams, Recommender};

const N_USERS: usize = 300;
const N_ITEMS: usize = 120;
const GROUPS: usize = 4;

fn planted() -> (Planted, Interactions) {
    let p = planted_taste(N_USERS, N_ITEMS, GROUPS, 16, 0.1, 7);
    let x = Interactions::from_dense_triples(N_USERS, N_ITEMS, &p.triples).expect("valid triples");
    (p, x)
}

fn small_ials() -> AlgoParams {
    AlgoParams::Ials(IalsParams {
        factors: 8,
        reg: 1.0,
        alpha: 5.0,
        iterations: 8,
        cg_steps: 3,
        seed: 3,
        rating_confidence: false,
    })
}

fn all_algos() -> Vec<AlgoParams> {
    vec![
        AlgoParams::ItemKnn { k: 30, shrink: 2.0 },
        AlgoParams::UserKnn { k: 30, shrink: 2.0 },
        small_ials(),
        AlgoParams::Ease {
            lambda: 20.0,
            dropout: 0.0,
            max_items: 10_000,
        },
        AlgoParams::Blend {
            lambda: 20.0,
            dropout: 0.0,
            weight: 0.5,
            ials: IalsParams {
                factors: 8,
                reg: 1.0,
                alpha: 5.0,
                iterations: 8,
                cg_steps: 3,
                seed: 3,
                rating_confidence: false,
            },
            max_items: 10_000,
        },
    ]
}

fn recall_at_10(params: &AlgoParams, train: &Csr, test: &[Vec<u32>]) -> f64 {
    let m = Recommender::fit_matrices(params, train, &train.transpose()).expect("fit");
    let (_, rep) = select::evaluate(&m, train, test, 10);
    rep.recall
}

#[test]
fn every_algorithm_beats_random_by_far_on_planted_tastes() {
    let (_, x) = planted();
    let (train, test) = holdout(&x.by_user, 0.25, 1).expect("holdout");
    // Random ranking of the ~108 unseen items puts 10/108 of the test items in the top 10.
    let random = 10.0 / (N_ITEMS as f64 - 12.0);
    let pop = recall_at_10(&AlgoParams::Popularity, &train, &test);
    for a in all_algos() {
        let r = recall_at_10(&a, &train, &test);
        assert!(
            r > 3.0 * random,
            "{}: recall@10 {r:.3} vs random {random:.3}",
            a.name()
        );
        assert!(
            r > pop + 0.1,
            "{}: recall@10 {r:.3} vs popularity {pop:.3}",
            a.name()
        );
    }
}

#[test]
fn recommendations_come_from_the_users_taste_group() {
    let (p, x) = planted();
    let m = Recommender::fit(
        &AlgoParams::Ease {
            lambda: 20.0,
            dropout: 0.0,
            max_items: 10_000,
        },
        &x,
    )
    .expect("fit");
    let recs = m.recommend_all(&x.by_user, 10, false);
    let mut in_group = 0usize;
    for (u, r) in recs.iter().enumerate() {
        in_group += r
            .iter()
            .filter(|&&i| p.item_group[i as usize] == p.user_group[u])
            .count();
    }
    let share = in_group as f64 / (N_USERS * 10) as f64;
    // A random pick would be in the group 1/4 of the time.
    assert!(
        share > 0.8,
        "share of recommendations in the user's group: {share:.3}"
    );
}

#[test]
fn seen_items_are_never_returned_unless_asked() {
    let (_, x) = planted();
    for a in all_algos() {
        let m = Recommender::fit(&a, &x).expect("fit");
        for u in 0..40 {
            let h = x.history(u);
            let r = m.recommend(Some(u as u32), &h, 20, &TopNFilter::default());
            assert_eq!(r.items.len(), 20, "{}: exactly N", a.name());
            assert!(
                r.items.iter().all(|s| !h.iter().any(|&(i, _)| i == s.item)),
                "{} returned a seen item",
                a.name()
            );
        }
        // With include_seen the user's own items come back (they score high).
        let h = x.history(0);
        let f = TopNFilter {
            include_seen: true,
            ..Default::default()
        };
        let r = m.recommend(Some(0), &h, N_ITEMS, &f);
        assert_eq!(r.items.len(), N_ITEMS);
        assert!(h.iter().all(|&(i, _)| r.items.iter().any(|s| s.item == i)));
    }
}

#[test]
fn exactly_n_when_candidates_exist_and_filters_hold() {
    let (p, x) = planted();
    let m = Recommender::fit(&AlgoParams::ItemKnn { k: 5, shrink: 0.0 }, &x).expect("fit");
    let h = x.history(3);
    // Only group-2 items: there are 30, minus the seen ones.
    let pred = |i: u32| p.item_group[i as usize] == 2;
    let f = TopNFilter {
        candidate: Some(&pred),
        ..Default::default()
    };
    let unseen_in_group = (0..N_ITEMS as u32)
        .filter(|&i| pred(i) && !h.iter().any(|&(j, _)| j == i))
        .count();
    let r = m.recommend(Some(3), &h, 1000, &f);
    assert_eq!(r.items.len(), unseen_in_group);
    assert!(r.items.iter().all(|s| pred(s.item)));
    assert!(r.items.windows(2).all(|w| w[0].score >= w[1].score));
}

#[test]
fn new_customer_gets_a_labelled_popularity_fallback() {
    let (_, x) = planted();
    for a in all_algos() {
        let m = Recommender::fit(&a, &x).expect("fit");
        let r = m.recommend(None, &[], 10, &TopNFilter::default());
        assert!(r.fallback, "{}", a.name());
        assert_eq!(r.items.len(), 10);
        let best = m.popularity.scores.iter().copied().fold(f32::MIN, f32::max);
        assert_eq!(r.items[0].score, best);
        let with_history = m.recommend(None, &x.history(0), 10, &TopNFilter::default());
        assert!(!with_history.fallback);
    }
}

fn overlap(a: &[u32], b: &[u32]) -> f64 {
    a.iter().filter(|i| b.contains(i)).count() as f64 / a.len().max(1) as f64
}

#[test]
fn fold_in_approaches_a_retrain() {
    let (_, x) = planted();
    // Leave the last 20 users out of training, fold them in, and compare with a
    // model trained on everyone.
    let keep = N_USERS - 20;
    let without = x.by_user.retain_rows(|u| u < keep);
    for a in all_algos() {
        let full = Recommender::fit(&a, &x).expect("fit");
        let part = Recommender::fit_matrices(&a, &without, &without.transpose()).expect("fit");
        let mut total = 0.0;
        for u in keep..N_USERS {
            let h = x.history(u);
            let f = TopNFilter::default();
            let folded: Vec<u32> = part
                .recommend(None, &h, 10, &f)
                .items
                .iter()
                .map(|s| s.item)
                .collect();
            let trained: Vec<u32> = full
                .recommend(Some(u as u32), &h, 10, &f)
                .items
                .iter()
                .map(|s| s.item)
                .collect();
            total += overlap(&folded, &trained);
        }
        let mean = total / 20.0;
        assert!(
            mean >= 0.6,
            "{}: top-10 overlap fold-in vs retrain {mean:.3}",
            a.name()
        );
    }
    // For EASE and item-kNN, folding in a training user is exactly its trained answer.
    for a in [
        AlgoParams::ItemKnn { k: 30, shrink: 2.0 },
        AlgoParams::Ease {
            lambda: 20.0,
            dropout: 0.0,
            max_items: 100,
        },
    ] {
        let m = Recommender::fit(&a, &x).expect("fit");
        let h = x.history(5);
        let f = TopNFilter::default();
        assert_eq!(
            m.recommend(None, &h, 10, &f),
            m.recommend(Some(5), &h, 10, &f)
        );
    }
}

#[test]
fn ials_fold_in_matches_trained_user_factors() {
    let (_, x) = planted();
    let m = Recommender::fit(&small_ials(), &x).expect("fit");
    let f = TopNFilter::default();
    let mut total = 0.0;
    for u in 0..30u32 {
        let h = x.history(u as usize);
        let a: Vec<u32> = m
            .recommend(None, &h, 10, &f)
            .items
            .iter()
            .map(|s| s.item)
            .collect();
        let b: Vec<u32> = m
            .recommend(Some(u), &h, 10, &f)
            .items
            .iter()
            .map(|s| s.item)
            .collect();
        total += overlap(&a, &b);
    }
    assert!(total / 30.0 > 0.8, "overlap {:.3}", total / 30.0);
}

#[test]
fn deterministic_for_a_seed() {
    let (_, x) = planted();
    let a = Recommender::fit(&small_ials(), &x).expect("fit");
    let b = Recommender::fit(&small_ials(), &x).expect("fit");
    assert_eq!(a, b);
    let c = Recommender::fit(&small_ials().with_seed(99), &x).expect("fit");
    assert_ne!(a, c);
}

#[test]
fn explanations_name_the_users_own_items_of_the_same_taste() {
    let (p, x) = planted();
    for a in [
        AlgoParams::ItemKnn { k: 30, shrink: 2.0 },
        AlgoParams::Ease {
            lambda: 20.0,
            dropout: 0.0,
            max_items: 10_000,
        },
        AlgoParams::UserKnn { k: 30, shrink: 2.0 },
        small_ials(),
    ] {
        let m = Recommender::fit(&a, &x).expect("fit");
        let mut same = 0usize;
        let mut total = 0usize;
        for u in 0..30usize {
            let h = x.history(u);
            let r = m.recommend(Some(u as u32), &h, 3, &TopNFilter::default());
            for s in &r.items {
                let why = m.explain(Some(u as u32), &h, s.item, 3);
                assert!(!why.is_empty(), "{}: no explanation", a.name());
                for (i, c) in why {
                    assert!(
                        h.iter().any(|&(j, _)| j == i),
                        "{}: explanation item not in history",
                        a.name()
                    );
                    assert!(c > 0.0);
                    total += 1;
                    same += usize::from(p.item_group[i as usize] == p.item_group[s.item as usize]);
                }
            }
        }
        let share = same as f64 / total as f64;
        assert!(
            share > 0.7,
            "{}: explanations from the same group {share:.3}",
            a.name()
        );
    }
}

#[test]
fn grid_search_uses_train_only_and_picks_a_sane_lambda() {
    let (_, x) = planted();
    let (train, _test) = holdout(&x.by_user, 0.25, 1).expect("holdout");
    let base = AlgoParams::Ease {
        lambda: 1.0,
        dropout: 0.0,
        max_items: 10_000,
    };
    let grid = select::parse_grid("lambda=1,20,1e6").expect("grid");
    let cands = select::expand_grid(&base, &grid).expect("expand");
    assert_eq!(cands.len(), 3);
    let sel = select::grid_search(&cands, &train, 0.25, 0, 10).expect("search");
    assert_eq!(sel.trials.len(), 3);
    let best = sel
        .trials
        .iter()
        .filter_map(|t| t.report.map(|r| r.ndcg))
        .fold(f64::MIN, f64::max);
    assert_eq!(sel.best_report.ndcg, best);
    // Popularity ignores tastes: next to EASE it must lose on the validation split.
    let mixed = vec![AlgoParams::Popularity, cands[1].clone()];
    let sel = select::grid_search(&mixed, &train, 0.25, 0, 10).expect("search");
    assert_eq!(sel.best, cands[1]);
    assert!(select::parse_grid("lambda=").is_err());
    assert!(select::parse_grid("lambda=abc").is_err());
    assert!(select::expand_grid(&base, &select::parse_grid("factors=8").expect("grid")).is_err());
}

#[test]
fn ranking_metrics_on_a_hand_checked_case() {
    // Two users; user 0: hits at ranks 2 and 3 of 3 with 2 test items;
    // user 1: no hit; user 2 has no test items and is skipped.
    let recs = vec![vec![5, 1, 2], vec![0, 3, 4], vec![9, 8, 7]];
    let test = vec![vec![1, 2], vec![6], vec![]];
    let r = ranking::evaluate(&recs, &test, 3, 10);
    assert_eq!(r.users, 2);
    assert!((r.precision - (2.0 / 3.0) / 2.0).abs() < 1e-12);
    assert!((r.recall - 0.5).abs() < 1e-12);
    let dcg = 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
    let idcg = 1.0 + 1.0 / 3f64.log2();
    assert!((r.ndcg - dcg / idcg / 2.0).abs() < 1e-12);
    let ap = (1.0 / 2.0 + 2.0 / 3.0) / 2.0;
    assert!((r.map - ap / 2.0).abs() < 1e-12);
    assert!((r.coverage - 6.0 / 10.0).abs() < 1e-12);
}

/// Scoring everyone in batches (`recommend_all`) gives exactly the lists of
/// scoring each customer alone, for every model and for an ensemble, with a
/// customer whose history is empty (popularity) among them.
#[test]
fn recommend_all_equals_one_customer_at_a_time() {
    let (p, _) = planted();
    // User 5 keeps no items: its row is empty.
    let triples: Vec<_> = p.triples.iter().copied().filter(|t| t.0 != 5).collect();
    let x = Interactions::from_dense_triples(N_USERS, N_ITEMS, &triples).expect("valid triples");
    let mut algos = all_algos();
    algos.push(AlgoParams::Ensemble {
        parts: vec![small_ials(), AlgoParams::ItemKnn { k: 30, shrink: 2.0 }],
        weights: vec![0.7, 0.3],
    });
    for a in &algos {
        let m = Recommender::fit(a, &x).expect("fit");
        let all = m.recommend_all(&x.by_user, 10, false);
        assert_eq!(all.len(), N_USERS);
        for (u, got) in all.iter().enumerate() {
            let hist: Vec<(u32, f32)> = x.by_user.row(u).collect();
            let one = m.recommend(Some(u as u32), &hist, 10, &TopNFilter::default());
            let want: Vec<u32> = one.items.iter().map(|s| s.item).collect();
            assert_eq!(got, &want, "{} user {u}", a.name());
        }
    }
}

/// A search reports its progress: fits and evaluations done never go back,
/// never pass the plan, and the last report is all of them done (each split
/// fits every candidate; an ensemble is evaluated once on all the splits).
#[test]
fn search_progress_ends_at_every_trial() {
    let (_, x) = planted();
    for splits in [1, 2] {
        let seen = std::sync::Mutex::new(Vec::new());
        let record = |done: usize, planned: usize| {
            seen.lock().expect("lock").push((done, planned));
        };
        let sel = select::auto_search_with(
            &x.by_user,
            infogap_models::recs::SideInfo::default(),
            select::Validation {
                fraction: 0.25,
                splits,
            },
            0,
            10,
            &record,
        )
        .expect("auto");
        let v = seen.into_inner().expect("lock");
        assert!(v.len() > 10, "{v:?}");
        assert!(v.windows(2).all(|w| w[1].0 >= w[0].0), "{v:?}");
        assert!(v.iter().all(|&(d, p)| d <= p), "{v:?}");
        // A configuration left out after the first split was fitted once.
        let left_out = |t: &select::Trial| {
            t.error
                .as_deref()
                .is_some_and(|e| e.starts_with("left out after the first inner split"))
        };
        let fits = |t: &select::Trial| match &t.params {
            AlgoParams::Ensemble { .. } => 1,
            _ if left_out(t) => 1,
            _ => splits,
        };
        let all: usize = sel.trials.iter().map(fits).sum();
        assert_eq!(v.last().copied(), Some((all, all)), "{splits} splits");
        // Only a search on several splits leaves configurations out.
        let n_left_out = sel.trials.iter().filter(|t| left_out(t)).count();
        assert_eq!(n_left_out > 0, splits > 1, "{splits} splits");
    }
}

/// Every fitted model goes through JSON and back unchanged (the fitted state
/// is read by a hand-written, streaming deserializer), and a map that does not
/// start with `kind` is refused with a clear message.
#[test]
fn fitted_models_round_trip_through_json() {
    let (_, x) = planted();
    let mut algos = all_algos();
    algos.push(AlgoParams::Popularity);
    algos.push(AlgoParams::default_for("gf-cf").expect("gf-cf"));
    algos.push(AlgoParams::Ensemble {
        parts: vec![small_ials(), AlgoParams::UserKnn { k: 30, shrink: 2.0 }],
        weights: vec![0.6, 0.4],
    });
    for a in &algos {
        let m = Recommender::fit(a, &x).expect("fit");
        let text = serde_json::to_string(&m).expect("serialize");
        let back: Recommender = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, m, "{}", a.name());
    }
    let err = serde_json::from_str::<infogap_models::recs::Fitted>(
        r#"{"weights": [1.0], "kind": "ensemble"}"#,
    )
    .expect_err("kind not first");
    assert!(err.to_string().contains("`kind`"), "{err}");
    let err = serde_json::from_str::<infogap_models::recs::Fitted>(r#"{"kind": "nope"}"#)
        .expect_err("unknown kind");
    assert!(err.to_string().contains("nope"), "{err}");
}
