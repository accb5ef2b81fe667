//! Erasure from saved models (GDPR Art. 17): on the demo store, forgetting a
//! customer rewrites every kept `recs` version without them (id, key,
//! history, per-user model parts), with no retraining; everyone else gets the
//! same recommendations as before, and the erased customer is answered as an
//! unknown one. Parameter-only models are reported as holding nothing.

use infogap_engine::Engine;
use infogap_engine::recs::{
    ModelForget, RecommendOptions, TrainOptions, forget_customer, forget_in_saved_models, load,
    recommend,
};
use infogap_models::recs::topn::TopNFilter;

use crate::imported;

fn train(engine: &Engine, algo: &str) {
    let opts = TrainOptions {
        algo: algo.into(),
        params: Vec::new(),
        signals: Default::default(),
        seed: 0,
        k: 10,
        progress: false,
    };
    infogap_engine::recs::train(engine, &opts).expect("train");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The blob of a saved `recs` version, as the store gives it (opened).
fn blob(engine: &Engine, version: i64) -> Vec<u8> {
    engine
        .store()
        .load_model_version("recs", version)
        .expect("load")
        .expect("the version")
        .blob
}

/// Product keys of a recommendation list.
fn keys(a: &infogap_engine::recs::RecsAnswer) -> Vec<String> {
    a.items.iter().map(|i| i.product.key.clone()).collect()
}

#[test]
fn forgetting_a_customer_rewrites_every_saved_recs_version_and_keeps_the_others_answers() {
    let (_fx, engine) = imported(250, 41);
    train(&engine, "user-knn");
    train(&engine, "ials");
    infogap_engine::clv::train(&engine, None, infogap_models::clv::TimeUnit::Week).expect("clv");
    let before = load(&engine).expect("load");
    assert_eq!(before.version, 2);
    let s = &before.saved;
    // a customer with history whose key is in no other customer's key
    let row = (0..s.histories.n_rows)
        .filter(|&r| s.histories.row_len(r) >= 3)
        .find(|&r| {
            let k = &s.customer_keys[r];
            s.customer_keys
                .iter()
                .enumerate()
                .all(|(o, other)| o == r || !other.contains(k.as_str()))
        })
        .expect("a customer with history");
    let x: i64 = s.users.id(row as u32).expect("id").parse().expect("an id");
    let key = s.customer_keys[row].clone();
    // another customer with history
    let other_row = (0..s.histories.n_rows)
        .find(|&r| r != row && s.histories.row_len(r) >= 3)
        .expect("another customer");
    let y: i64 = s
        .users
        .id(other_row as u32)
        .expect("id")
        .parse()
        .expect("an id");
    for v in [1, 2] {
        assert!(
            contains(&blob(&engine, v), key.as_bytes()),
            "v{v} holds the key"
        );
    }
    let opts = RecommendOptions {
        k: 10,
        ..Default::default()
    };
    let y_before = recommend(&engine, &format!("#{y}"), None, &opts).expect("recs");
    let x_before = recommend(&engine, &format!("#{x}"), None, &opts).expect("recs");
    assert!(x_before.in_training && y_before.in_training);
    // what an unknown customer with x's history gets: fold-in (item side only)
    let history: Vec<(u32, f32)> = s.histories.row(row).collect();
    let unknown: Vec<String> = s
        .model
        .recommend(None, &history, opts.k, &TopNFilter::default())
        .items
        .iter()
        .map(|i| s.products[i.item as usize].key.clone())
        .collect();

    let report = forget_in_saved_models(&engine, x).expect("forget");

    let recs: Vec<&ModelForget> = report.iter().filter(|r| r.kind == "recs").collect();
    assert_eq!(
        recs.iter().map(|r| r.version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(recs.iter().all(|r| r.found), "{report:?}");
    for (r, part) in recs
        .iter()
        .zip(["user-knn interactions", "ials user factors"])
    {
        for p in ["customer id", "training history", "display key", part] {
            assert!(
                r.parts.iter().any(|q| q == p),
                "v{} lacks {p}: {:?}",
                r.version,
                r.parts
            );
        }
    }
    let clv = report
        .iter()
        .find(|r| r.kind == "clv")
        .expect("clv reported");
    assert!(!clv.found && clv.parts.is_empty());
    assert_eq!(clv.note.as_deref(), Some("parameters only"));
    // the key is gone from every version; the versions stay the same
    for v in [1, 2] {
        assert!(
            !contains(&blob(&engine, v), key.as_bytes()),
            "v{v} still holds the key"
        );
    }
    let after = load(&engine).expect("load");
    assert_eq!(after.version, 2);
    assert_eq!(after.saved.users.get(&x.to_string()), None);
    assert_eq!(after.saved.users.len(), s.users.len());
    assert_eq!(after.saved.histories.row_len(row), 0);
    // the others: the same list
    let y_after = recommend(&engine, &format!("#{y}"), None, &opts).expect("recs");
    assert!(y_after.in_training);
    assert_eq!(keys(&y_after), keys(&y_before));
    // the erased id: an unknown customer, folded in from the store
    let x_after = recommend(&engine, &format!("#{x}"), None, &opts).expect("recs");
    assert!(!x_after.in_training);
    assert_eq!(keys(&x_after), unknown);
    // a second pass finds nothing
    let again = forget_in_saved_models(&engine, x).expect("forget");
    assert!(again.iter().all(|r| !r.found && r.parts.is_empty()));
    let mut saved = after.saved.clone();
    assert!(!forget_customer(&mut saved, x));
}
