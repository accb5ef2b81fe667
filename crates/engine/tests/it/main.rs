//! Integration tests of infogap-engine: the import use case on the messy demo,
//! checked key by key against the planted ground truth.

mod aggregate;
mod consent;
mod demo_gaps;
mod export;
mod feedback;
mod forget;
mod gap;
mod generated;
mod merges;
mod selfservice;
mod snapshot;
mod truthful;
mod web;
mod webhooks;

use std::collections::{HashMap, HashSet};

use infogap_core::config::Config;
use infogap_engine::Engine;
use infogap_engine::import::{ImportOptions, import};

fn imported(n: usize, seed: u64) -> (infogap_testkit::DemoFixture, Engine) {
    let fx = infogap_testkit::demo(n, seed);
    let engine = Engine::open(&fx.dir.path().join("store.db")).expect("open");
    let config = Config::load(&fx.config).expect("config");
    import(&engine, &config, &ImportOptions::default()).expect("import");
    (fx, engine)
}

/// Removes the last order line of the demo's sales file (a changed file).
/// The local admin's grant of an action (what the CLI acts as by default).
fn admin(action: infogap_core::access::Action) -> infogap_engine::access::Access {
    infogap_engine::access::Policy::default()
        .authorize(&infogap_engine::access::Principal::local(None), action)
        .expect("the admin may do everything")
}

fn drop_last_sales_line(fx: &infogap_testkit::DemoFixture) {
    let sales = fx
        .config
        .parent()
        .expect("dir")
        .join("sales/order_lines.csv");
    let text = std::fs::read_to_string(&sales).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    std::fs::write(&sales, lines.join("\n") + "\n").expect("write");
}

#[test]
fn every_key_lands_on_its_true_person_and_no_customer_mixes_people() {
    let (fx, engine) = imported(400, 11);
    let dir = fx.config.parent().expect("dir").to_path_buf();
    let truth = infogap_testkit::truth_records(&dir);
    assert!(truth.len() > 400, "truth has {} records", truth.len());
    let store = engine.store();
    let mut person_of_customer: HashMap<i64, usize> = HashMap::new();
    let mut customers_of_person: HashMap<usize, HashSet<i64>> = HashMap::new();
    for r in &truth {
        let ids = store.identities_by_value(&r.key).expect("lookup");
        let id = ids
            .iter()
            .find(|i| i.namespace == r.namespace)
            .unwrap_or_else(|| panic!("{}:{} not in the store", r.namespace, r.key));
        if let Some(p) = person_of_customer.insert(id.customer_id, r.person) {
            assert_eq!(
                p, r.person,
                "customer #{} holds persons {p} and {}",
                id.customer_id, r.person
            );
        }
        customers_of_person
            .entry(r.person)
            .or_default()
            .insert(id.customer_id);
    }
    for (p, cs) in &customers_of_person {
        assert_eq!(cs.len(), 1, "person {p} is split over customers {cs:?}");
    }
    assert_eq!(
        engine.store().stats(true).expect("stats").customers as usize,
        fx.persons
    );
}

#[test]
fn the_dataset_snapshot_matches_the_stats() {
    let (_fx, engine) = imported(150, 5);
    let stats = engine.store().stats(true).expect("stats");
    let ds = engine.dataset().expect("dataset");
    assert_eq!(ds.lines.len() as i64, stats.order_lines);
    assert_eq!(ds.orders.len() as i64, stats.orders);
    assert_eq!(ds.events.len() as i64, stats.events);
    let revenue: f64 = ds.orders.iter().map(|o| o.amount).sum();
    assert!(
        (revenue - stats.revenue).abs() < 0.01,
        "{revenue} vs {}",
        stats.revenue
    );
    // every fact points at a listed customer
    let ids: HashSet<i64> = ds.customers.iter().map(|c| c.id).collect();
    assert!(ds.lines.iter().all(|l| ids.contains(&l.customer)));
    assert!(ds.events.iter().all(|e| ids.contains(&e.customer)));
    // planted tastes: most purchases fall in few categories per customer
    assert!(
        ds.customers
            .iter()
            .any(|c| c.attributes.contains_key("age_band"))
    );
}

#[test]
fn a_changed_file_replaces_its_rows_and_an_unchanged_one_is_skipped() {
    let (fx, engine) = imported(120, 9);
    let config = Config::load(&fx.config).expect("config");
    let before = engine.store().stats(true).expect("stats");
    // drop the last order line of the sales file and re-import
    drop_last_sales_line(&fx);
    let rep = import(&engine, &config, &ImportOptions::default()).expect("reimport");
    let after = engine.store().stats(true).expect("stats");
    assert_eq!(after.order_lines, before.order_lines - 1);
    let sales_rep = rep
        .sources
        .iter()
        .find(|s| s.name == "sales")
        .expect("sales");
    assert_eq!(sales_rep.status, "ok");
    assert!(sales_rep.rows_replaced as i64 >= before.order_lines);
    assert!(
        rep.sources
            .iter()
            .filter(|s| s.name != "sales")
            .all(|s| s.status == "unchanged")
    );
    assert_eq!(after.customers, before.customers);
}

/// A trained recommender is saved in CBOR and loads back equal; a model saved
/// as JSON by earlier versions still loads, to the same model.
#[test]
fn saved_recommenders_load_back_in_both_formats() {
    use infogap_engine::recs::{TrainOptions, load, train};
    let (_fx, engine) = imported(200, 5);
    let opts = TrainOptions {
        algo: "ials".into(),
        params: Vec::new(),
        signals: Default::default(),
        seed: 0,
        k: 10,
        progress: false,
    };
    let rep = train(&engine, &opts).expect("train");
    let rec = engine
        .load_model("recs")
        .expect("load")
        .expect("a saved model");
    assert_ne!(rec.blob.first(), Some(&b'{'), "new models are CBOR");
    let cbor = load(&engine).expect("load CBOR");
    assert_eq!(cbor.version, rep.version);
    // The same model written as JSON (the format before) is read too.
    let json_blob = serde_json::to_vec(&cbor.saved).expect("json");
    engine
        .save_model(
            "recs",
            &serde_json::json!({}),
            &serde_json::json!({}),
            &json_blob,
        )
        .expect("save json");
    let from_json = load(&engine).expect("load JSON");
    assert_eq!(from_json.version, rep.version + 1);
    assert_eq!(from_json.saved.model, cbor.saved.model);
    // As JSON values (maps compare regardless of key order).
    assert_eq!(
        serde_json::to_value(&from_json.saved).expect("json"),
        serde_json::to_value(&cbor.saved).expect("json")
    );
}

/// Every model family goes through CBOR (packed arrays) and back unchanged;
/// packed factors make the float-heavy models' blobs far smaller than JSON.
#[test]
fn every_recommender_round_trips_through_cbor() {
    use infogap_models::recs::data::Interactions;
    use infogap_models::recs::synth::planted_taste;
    use infogap_models::recs::{AlgoParams, Recommender};
    let p = planted_taste(200, 80, 4, 12, 0.1, 3);
    let x = Interactions::from_dense_triples(200, 80, &p.triples).expect("triples");
    for name in [
        "popularity",
        "item-knn",
        "user-knn",
        "ials",
        "ease",
        "gf-cf",
    ] {
        let params = AlgoParams::default_for(name).expect("algo");
        let m = Recommender::fit(&params, &x).expect("fit");
        let mut blob = Vec::new();
        ciborium::into_writer(&m, &mut blob).expect("cbor");
        let back: Recommender = ciborium::from_reader(blob.as_slice()).expect("read cbor");
        assert_eq!(back, m, "{name}");
        // Float-heavy models shrink to well under half their JSON (4 bytes
        // a value instead of ~10 characters); small-integer ones need not.
        if ["ials", "ease", "gf-cf"].contains(&name) {
            let json = serde_json::to_vec(&m).expect("json");
            assert!(
                blob.len() * 2 < json.len(),
                "{name}: CBOR {} vs JSON {}",
                blob.len(),
                json.len()
            );
        }
    }
}
