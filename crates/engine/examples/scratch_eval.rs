//! TEMPORARY scratch (classify engineer), will be deleted.
#![allow(missing_docs)]
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let frame = infogap_engine::analytics::read_frame(std::path::Path::new(&a[1])).unwrap();
    for k in &a[3..] {
        let mut cfg = infogap_models::classify::ClassifierConfig::of_kind(k.parse().unwrap(), 0);
        if let Ok(v) = std::env::var("INNER") { cfg.inner_folds = v.parse().unwrap(); }
        if let Ok(v) = std::env::var("ML") { cfg.gbm.min_samples_leaf = v.parse().unwrap(); }
        if let Ok(v) = std::env::var("T") { cfg.gbm.n_trees = v.parse().unwrap(); }
        if let Ok(v) = std::env::var("LR") { cfg.gbm.learning_rate = v.parse().unwrap(); }
        let r = infogap_models::classify::eval_frame(&frame, &a[2], None, &[], &cfg, 5, 0).unwrap();
        println!("{k}: auc {:.4}±{:.4} pr {:.4} ll {:.4} brier {:.4} acc {:.4} fit {:.3} {:?} chosen {:?}", r.roc_auc, r.std.roc_auc, r.pr_auc, r.log_loss, r.brier, r.accuracy, r.fit_seconds_per_fold, r.fit_seconds, r.chosen);
        if k == "auto" { println!("{}", serde_json::to_string(&r.table).unwrap()); println!("{:?}", r.encoding.rules); }
    }
}
