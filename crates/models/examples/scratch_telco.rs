//! TEMPORARY scratch (classify engineer), will be deleted.
#![allow(missing_docs)]
use infogap_models::classify::*;
fn main() {
    let s = std::fs::read_to_string("/tmp/cx/telco_X.csv").unwrap();
    let mut lines = s.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let d = header.len() - 1;
    let mut data = Vec::new(); let mut y = Vec::new(); let mut n = 0;
    for l in lines { let v: Vec<f64> = l.split(',').map(|t| match t { "True"=>1.0, "False"=>0.0, _=> t.parse().unwrap()}).collect(); data.extend_from_slice(&v[..d]); y.push(v[d] > 0.5); n += 1; }
    let x = DenseMatrix::new(n, data, header[..d].to_vec()).unwrap();
    let kinds: Vec<String> = std::env::args().skip(1).collect();
    for k in kinds {
        let cfg = ClassifierConfig::of_kind(k.parse().unwrap(), 0);
        let mut cfg = cfg;
        if k == "logreg" && std::env::var("NL").is_ok() { cfg.logreg.nonlinear = true; }
        let ev = |n: &str| std::env::var(n).ok().map(|v| v.parse::<f64>().unwrap());
        if let Some(v) = ev("T") { cfg.gbm.n_trees = v as usize; }
        if let Some(v) = ev("LR") { cfg.gbm.learning_rate = v; }
        if let Some(v) = ev("D") { cfg.gbm.max_depth = v as usize; }
        if let Some(v) = ev("B") { cfg.gbm.max_bins = v as usize; }
        if let Some(v) = ev("SS") { cfg.gbm.subsample = v; }
        if let Some(v) = ev("CS") { cfg.gbm.colsample = v; }
        if let Some(v) = ev("ML") { cfg.gbm.min_samples_leaf = v as usize; }
        let r = cross_validate(&cfg, &x, &y, 5, 0).unwrap();
        println!("{k}: auc {:.4}±{:.4} pr {:.4} ll {:.4} acc {:.4} fit {:?} models {:?}", r.mean.roc_auc, r.std.roc_auc, r.mean.pr_auc, r.mean.log_loss, r.mean.accuracy, r.fit_seconds.iter().map(|v| (v*1000.0).round()/1000.0).collect::<Vec<_>>(), r.models);
        for c in r.candidates.iter().take(2) { println!("   {:?}", c.iter().map(|c| format!("{} {:.4}", c.name, c.inner_roc_auc)).collect::<Vec<_>>()); }
    }
}
