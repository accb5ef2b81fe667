//! `gap departments`: what each department holds, which customers and
//! kinds of information it sees, and what it can decide alone compared with
//! the unified view.
//!
//! Why measured on decisions: "the CRM knows 60 % of ages" says little;
//! "churn AUC 0.62 alone vs 0.86 unified" says what sharing is worth. Every
//! department is scored on the same population, labels and targets (taken
//! from the unified store: the truth the business later observes), with
//! features built only from the department's own facts and attributes
//! (reference data such as the product catalogue is shared by all). A
//! department that knows nothing about a customer predicts for it what it
//! predicts for an unknown: that is the cost of the gap.

use std::collections::{BTreeMap, HashMap, HashSet};

use infogap_core::config::DepartmentConfig;
use infogap_core::dataset::Dataset;
use infogap_models::classify::{ClassifierConfig, ModelKind};
use infogap_models::metrics::ranking::ndcg_at_k;
use infogap_models::recs::{AlgoParams, FitContext, Recommender};
use infogap_models::regress::{self, LinearRegression};
use infogap_models::tabular::Matrix;
use infogap_store::snapshot::RawSnapshot;
use infogap_store::{Provenance, SourceRecord};
use serde::Serialize;

use super::{Kind, kind_of_event, kind_of_feedback};
use crate::features::{DAY, FeatureOptions, build_features};
use crate::{Engine, EngineError};

/// Source kinds that are reference data, shared by every department.
const REFERENCE_KINDS: [&str; 3] = ["products", "campaigns", "coupons"];

/// Options of `gap departments`.
#[derive(Debug, Clone)]
pub struct DepartmentOptions {
    /// Window after the cutoff for the churn label and the spend target (days).
    pub window_days: i64,
    /// Customers count as active (churn population) when they ordered this many days before the cutoff.
    pub active_days: i64,
    /// Churn model family.
    pub model: ModelKind,
    /// Folds of the cross-validation.
    pub folds: usize,
    /// Seed.
    pub seed: u64,
    /// Draw a progress bar (one step per department) on stderr.
    pub progress: bool,
}

impl Default for DepartmentOptions {
    fn default() -> Self {
        DepartmentOptions {
            window_days: 90,
            active_days: 365,
            model: ModelKind::Logreg,
            folds: 5,
            seed: 0,
            progress: false,
        }
    }
}

/// Decision quality with one set of facts.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionQuality {
    /// Churn ROC AUC (cross-validated, time split: features before the cutoff, label after).
    pub churn_auc: f64,
    /// Top-10 recommendation nDCG of the products first bought after the cutoff.
    pub ndcg10: f64,
    /// Mean absolute error of next-period spend (cross-validated).
    pub spend_mae: f64,
    /// What could not be fitted and was replaced by a constant guess.
    pub notes: Vec<String>,
}

/// One department (or the unified view).
#[derive(Debug, Clone, Serialize)]
pub struct DepartmentGap {
    /// Name.
    pub name: String,
    /// Its sources.
    pub sources: Vec<String>,
    /// Customers it knows (an identity, fact, attribute or consent of its sources).
    pub customers: usize,
    /// Share of all customers it knows.
    pub coverage: f64,
    /// Fact kinds it holds, with row counts (`orders`, `events:view`, `feedback:ticket`, …).
    pub facts: BTreeMap<String, u64>,
    /// Fields it holds: attribute names and identity kinds (`email`, `phone`, `customer id`).
    pub fields: Vec<String>,
    /// Information kind → share of all customers for whom it knows something of that kind.
    pub visibility: BTreeMap<String, f64>,
    /// Churn ROC AUC with its facts only.
    pub churn_auc: f64,
    /// Top-10 nDCG with its facts only.
    pub ndcg10: f64,
    /// Next-period spend MAE with its facts only.
    pub spend_mae: f64,
    /// What could not be fitted (a constant guess stands in).
    pub notes: Vec<String>,
}

impl DepartmentGap {
    fn new(
        d: &DepartmentConfig,
        customers: usize,
        all: usize,
        facts: BTreeMap<String, u64>,
        fields: Vec<String>,
        visibility: BTreeMap<String, f64>,
        q: DecisionQuality,
    ) -> DepartmentGap {
        DepartmentGap {
            name: d.name.clone(),
            sources: d.sources.clone(),
            customers,
            coverage: customers as f64 / all.max(1) as f64,
            facts,
            fields,
            visibility,
            churn_auc: q.churn_auc,
            ndcg10: q.ndcg10,
            spend_mae: q.spend_mae,
            notes: q.notes,
        }
    }
}

/// What `gap departments` reports.
#[derive(Debug, Clone, Serialize)]
pub struct DepartmentsReport {
    /// Customers in the store.
    pub customers: usize,
    /// Cutoff of the decision backtest (`YYYY-MM-DD`).
    pub cutoff: String,
    /// Window of the label and target (days).
    pub window_days: i64,
    /// Churn population (active customers at the cutoff) and how many churned.
    pub churn_population: usize,
    /// Of whom churned.
    pub churners: usize,
    /// Customers with products first bought after the cutoff (nDCG population).
    pub recs_population: usize,
    /// Recommender of the backtest (fixed for every department).
    pub recs_algorithm: String,
    /// Customers who bought before the cutoff (spend population).
    pub spend_population: usize,
    /// How departments were formed (`[[department]]` or one per source).
    pub grouping: String,
    /// Information kinds of the visibility matrix, in order.
    pub kinds: Vec<String>,
    /// Each department.
    pub departments: Vec<DepartmentGap>,
    /// Everything together.
    pub unified: DepartmentGap,
    /// Unified minus the best single department, per decision.
    pub value_of_sharing: DecisionQuality,
    /// Seconds.
    pub seconds: f64,
}

/// The departments to compare: the stored `[[department]]` groups, else
/// one per source that holds customer data. The customers' own
/// self-service source (corrections, feedback, consent changes made in the
/// portal) is a department of its own when no `[[department]]` lists it:
/// what the customer told the business is not any department's knowledge.
pub fn departments_of(
    stored: &[DepartmentConfig],
    sources: &[SourceRecord],
) -> (Vec<DepartmentConfig>, String) {
    if !stored.is_empty() {
        let mut depts = stored.to_vec();
        let own = crate::privacy::consent::SELF_SERVICE_SOURCE;
        let listed = depts
            .iter()
            .any(|d| d.name == own || d.sources.iter().any(|s| s == own));
        if !listed && sources.iter().any(|s| s.name == own) {
            depts.push(DepartmentConfig {
                name: own.to_string(),
                sources: vec![own.to_string()],
            });
        }
        return (depts, "[[department]] in the config".into());
    }
    let depts = sources
        .iter()
        .filter(|s| !REFERENCE_KINDS.contains(&s.kind.as_str()))
        .map(|s| DepartmentConfig {
            name: s.name.clone(),
            sources: vec![s.name.clone()],
        })
        .collect();
    (depts, "one department per source".into())
}

/// The data set a set of sources would hold alone (reference data shared).
pub fn restricted_dataset(
    raw: &RawSnapshot,
    prov: &Provenance,
    sources: &HashSet<i64>,
    all_sources: &[SourceRecord],
) -> Result<Dataset, EngineError> {
    let reference: HashSet<i64> = all_sources
        .iter()
        .filter(|s| REFERENCE_KINDS.contains(&s.kind.as_str()))
        .map(|s| s.id)
        .collect();
    let keep_src = |s: i64| sources.contains(&s) || reference.contains(&s);
    let attr_src: HashMap<i64, i64> = prov
        .attributes
        .iter()
        .map(|a| (a.rowid, a.source_id))
        .collect();
    let keep_file = |f: i64| prov.file_sources.get(&f).is_some_and(|s| keep_src(*s));
    let r = raw.restricted(
        keep_file,
        |row| attr_src.get(&row).is_some_and(|s| keep_src(*s)),
        |o| prov.order_files.get(&o).copied(),
    );
    Ok(r.dataset()?)
}

/// The time split every decision uses.
pub(crate) struct Split {
    pub cutoff: i64,
    pub window: i64,
    /// Churn population (dataset rows) and labels.
    pub churn_rows: Vec<usize>,
    pub churn_labels: Vec<bool>,
    /// Spend population (rows) and next-period spend.
    pub spend_rows: Vec<usize>,
    pub spend_target: Vec<f64>,
    /// Customer id → products first bought in the window (catalogue positions).
    pub new_items: Vec<(i64, Vec<u32>)>,
}

/// Labels and targets from the unified data set.
pub(crate) fn split(
    ds: &Dataset,
    window_days: i64,
    active_days: i64,
) -> Result<Split, EngineError> {
    if window_days < 1 || active_days < 1 {
        return Err(EngineError::Invalid(
            "window-days and active-days must be at least 1".into(),
        ));
    }
    let max_t = ds
        .max_time()
        .ok_or_else(|| EngineError::Invalid("the store holds no dated facts".into()))?;
    let window = window_days * DAY;
    let cutoff = max_t + 1 - window;
    let index = ds.customer_index();
    let n = ds.customers.len();
    let mut active = vec![false; n];
    let mut before = vec![false; n];
    let mut after = vec![false; n];
    let mut spend = vec![0.0; n];
    for o in &ds.orders {
        let (Some(t), Some(i)) = (o.time, index.pos(o.customer)) else {
            continue;
        };
        if t < cutoff {
            before[i] = true;
            if t >= cutoff - active_days * DAY {
                active[i] = true;
            }
        } else if t < cutoff + window {
            after[i] = true;
            spend[i] += o.amount;
        }
    }
    let churn_rows: Vec<usize> = (0..n).filter(|&i| active[i]).collect();
    let churn_labels = churn_rows.iter().map(|&i| !after[i]).collect();
    let spend_rows: Vec<usize> = (0..n).filter(|&i| before[i]).collect();
    let spend_target = spend_rows.iter().map(|&i| spend[i]).collect();
    // products first bought in the window
    let product_pos: HashMap<i64, u32> = ds
        .products
        .iter()
        .enumerate()
        .map(|(k, p)| (p.id, k as u32))
        .collect();
    let mut bought_before: HashSet<(i64, u32)> = HashSet::new();
    let mut later: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for l in &ds.lines {
        let (Some(t), Some(p)) = (l.time, l.product) else {
            continue;
        };
        let Some(&k) = product_pos.get(&p) else {
            continue;
        };
        if t < cutoff {
            bought_before.insert((l.customer, k));
        } else if t < cutoff + window && index.pos(l.customer).is_some() {
            later.entry(l.customer).or_default().push(k);
        }
    }
    let new_items = later
        .into_iter()
        .filter_map(|(c, mut v)| {
            v.retain(|k| !bought_before.contains(&(c, *k)));
            v.sort_unstable();
            v.dedup();
            (!v.is_empty()).then_some((c, v))
        })
        .collect();
    Ok(Split {
        cutoff,
        window,
        churn_rows,
        churn_labels,
        spend_rows,
        spend_target,
        new_items,
    })
}

/// Out-of-fold churn probabilities of the churn population (features of
/// `ds` at the cutoff) and their ROC AUC.
pub(crate) fn churn_oof(
    ds: &Dataset,
    sp: &Split,
    model: ModelKind,
    folds: usize,
    seed: u64,
) -> Result<(Vec<f64>, f64), EngineError> {
    let ft = build_features(ds, sp.cutoff, &FeatureOptions::default());
    let d = ft.columns.len();
    let mut data = Vec::with_capacity(sp.churn_rows.len() * d);
    for &i in &sp.churn_rows {
        data.extend_from_slice(ft.row(i));
    }
    let x = infogap_models::classify::DenseMatrix::new(sp.churn_rows.len(), data, ft.names())?;
    let churners = sp.churn_labels.iter().filter(|&&b| b).count();
    if churners < folds || sp.churn_labels.len() - churners < folds {
        return Err(EngineError::Invalid(format!(
            "too few customers for the churn backtest: {churners} churned and {} stayed",
            sp.churn_labels.len() - churners
        )));
    }
    let mut cfg = ClassifierConfig::of_kind(model, seed);
    cfg.inner_folds = 3;
    let (m, _, oof, _) = crate::churn::cross_validate_oof(&cfg, &x, &sp.churn_labels, folds, seed)?;
    Ok((oof, m.roc_auc))
}

fn churn_auc(
    ds: &Dataset,
    sp: &Split,
    opts: &DepartmentOptions,
    notes: &mut Vec<String>,
) -> Result<f64, EngineError> {
    match churn_oof(ds, sp, opts.model, opts.folds, opts.seed) {
        Ok((_, auc)) if auc.is_finite() => Ok(auc),
        Ok(_) => {
            notes.push("churn: no usable feature, a constant guess (AUC 0.5)".into());
            Ok(0.5)
        }
        Err(EngineError::Invalid(m)) => Err(EngineError::Invalid(m)),
        Err(e) => {
            notes.push(format!("churn: a constant guess (AUC 0.5): {e}"));
            Ok(0.5)
        }
    }
}

/// The recommender of the backtest: GF-CF (graph filtering; the best
/// single model on small catalogues here) up to 5,000 products, item-kNN
/// beyond (GF-CF's item-item matrix grows with the square).
pub fn recs_algorithm(n_items: usize) -> &'static str {
    if n_items <= 5_000 {
        "gf-cf"
    } else {
        "item-knn"
    }
}

fn recs_ndcg(ds: &Dataset, sp: &Split, notes: &mut Vec<String>) -> Result<f64, EngineError> {
    if sp.new_items.is_empty() {
        return Ok(0.0);
    }
    let mut before = ds.clone();
    before
        .lines
        .retain(|l| l.time.is_some_and(|t| t < sp.cutoff));
    before
        .events
        .retain(|e| e.time.is_some_and(|t| t < sp.cutoff));
    before.orders.clear();
    let x = crate::recs::build_interactions(
        &before,
        &crate::recs::SignalConfig::with_weights(0.5, 0.1, 1.0, None),
    )?;
    let k = 10;
    let n_items = x.items.len();
    // popularity: distinct customers per product (the fallback for customers it does not know)
    let mut pop: Vec<(usize, u32)> = (0..n_items)
        .map(|i| (x.by_item.row_len(i), i as u32))
        .filter(|(n, _)| *n > 0)
        .collect();
    pop.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let popular: Vec<u32> = pop.iter().take(k + 50).map(|p| p.1).collect();
    let recs = if x.nnz() == 0 {
        notes.push("recs: no product interactions, nothing to recommend (nDCG 0)".into());
        Vec::new()
    } else {
        let params = AlgoParams::default_for(recs_algorithm(n_items))?;
        let ctx = FitContext::new(&x.by_user, &x.by_item);
        match Recommender::fit_in(&params, &ctx) {
            // seen items stay candidates (people buy what they viewed); only
            // what the department saw them buy is left out below
            Ok(m) => m.recommend_all(&x.by_user, k + 50, true),
            Err(e) => {
                notes.push(format!("recs: popularity only: {e}"));
                Vec::new()
            }
        }
    };
    // item positions of this interaction matrix ↔ catalogue positions
    let item_of: Vec<Option<u32>> = ds
        .products
        .iter()
        .map(|p| x.items.get(&p.id.to_string()))
        .collect();
    // what the department saw each customer buy before the cutoff
    let mut bought: HashSet<(i64, u32)> = HashSet::new();
    for l in &before.lines {
        if let Some(i) = l.product.and_then(|p| x.items.get(&p.to_string())) {
            bought.insert((l.customer, i));
        }
    }
    let mut total = 0.0;
    for (c, items) in &sp.new_items {
        let relevant: Vec<u32> = items.iter().filter_map(|&k| item_of[k as usize]).collect();
        let list: &[u32] = match x.users.get(&c.to_string()) {
            Some(u) if !recs.is_empty() && x.by_user.row_len(u as usize) > 0 => &recs[u as usize],
            _ => &popular,
        };
        let list: Vec<u32> = list
            .iter()
            .copied()
            .filter(|i| !bought.contains(&(*c, *i)))
            .take(k)
            .collect();
        total += ndcg_at_k(&list, &relevant, k);
    }
    Ok(total / sp.new_items.len() as f64)
}

/// Out-of-fold next-period spend of the spend population (ridge, as
/// `train amount`; a fold whose fit fails predicts its training mean).
pub(crate) fn spend_oof(
    ds: &Dataset,
    sp: &Split,
    folds: usize,
    seed: u64,
) -> Result<Vec<f64>, EngineError> {
    let fopts = FeatureOptions {
        recent_days: sp.window / DAY,
        // as `train amount`: the texts' sentiment feeds churn, not spend
        without: vec!["sentiment".into()],
        ..FeatureOptions::default()
    };
    let ft = build_features(ds, sp.cutoff, &fopts);
    let p = ft.columns.len();
    let n = sp.spend_rows.len();
    if n < 10 {
        return Err(EngineError::Invalid(format!(
            "only {n} customers bought before the cutoff; the spend backtest needs 10"
        )));
    }
    let mut data = Vec::with_capacity(n * p);
    for &i in &sp.spend_rows {
        data.extend_from_slice(ft.row(i));
    }
    let x = Matrix::new(data, n, p)?;
    let y = &sp.spend_target;
    let model = LinearRegression { ridge: 1.0 };
    let mut pred = vec![0.0; n];
    for test in regress::kfold(n, folds.max(2).min(n / 2), seed) {
        let tset: HashSet<usize> = test.iter().copied().collect();
        let train: Vec<usize> = (0..n).filter(|i| !tset.contains(i)).collect();
        let mut d = Vec::with_capacity(train.len() * p);
        for &r in &train {
            d.extend_from_slice(x.row(r));
        }
        let xt = Matrix::new(d, train.len(), p)?;
        let yt: Vec<f64> = train.iter().map(|&i| y[i]).collect();
        let mean = yt.iter().sum::<f64>() / yt.len().max(1) as f64;
        match model.fit_matrix(&xt, &yt) {
            Ok(f) => {
                for &i in &test {
                    pred[i] = f.predict_row(x.row(i)).max(0.0);
                }
            }
            Err(_) => {
                for &i in &test {
                    pred[i] = mean;
                }
            }
        }
    }
    Ok(pred)
}

fn spend_mae(ds: &Dataset, sp: &Split, opts: &DepartmentOptions) -> Result<f64, EngineError> {
    let pred = spend_oof(ds, sp, opts.folds, opts.seed)?;
    let n = pred.len().max(1) as f64;
    Ok(sp
        .spend_target
        .iter()
        .zip(&pred)
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
        / n)
}

/// The three decisions on one data set.
pub(crate) fn decisions(
    ds: &Dataset,
    sp: &Split,
    opts: &DepartmentOptions,
) -> Result<DecisionQuality, EngineError> {
    let mut notes = Vec::new();
    let churn_auc = churn_auc(ds, sp, opts, &mut notes)?;
    let ndcg10 = recs_ndcg(ds, sp, &mut notes)?;
    let spend_mae = spend_mae(ds, sp, opts)?;
    Ok(DecisionQuality {
        churn_auc,
        ndcg10,
        spend_mae,
        notes,
    })
}

/// (customer, `email` | `phone`) for every fact a set of sources recorded
/// under an email or phone: the department knows that contact, even when
/// another source brought the identity first.
pub(crate) fn contact_facts(
    raw: &RawSnapshot,
    prov: &Provenance,
    sources: &HashSet<i64>,
) -> HashSet<(i64, String)> {
    let ident: HashMap<i64, (i64, &str)> = raw
        .identities
        .iter()
        .filter(|i| !i.shared && (i.namespace == "email" || i.namespace == "phone"))
        .map(|i| (i.id, (i.customer_id, i.namespace.as_str())))
        .collect();
    let mut out = HashSet::new();
    for (f, seg) in &raw.segments {
        if !prov
            .file_sources
            .get(f)
            .is_some_and(|s| sources.contains(s))
        {
            continue;
        }
        let ids = seg
            .lines
            .iter()
            .map(|l| l.identity_id)
            .chain(seg.events.iter().map(|e| e.identity_id))
            .chain(seg.feedback.iter().map(|e| e.identity_id))
            .chain(seg.contacts.iter().map(|e| e.identity_id));
        for id in ids {
            if let Some((c, ns)) = ident.get(&id) {
                out.insert((*c, (*ns).to_string()));
            }
        }
    }
    out
}

/// What a set of sources holds and sees.
fn holdings(
    ds: &Dataset,
    prov: &Provenance,
    sources: &HashSet<i64>,
    kinds: &[Kind],
    demographic: &dyn Fn(&str) -> Kind,
    contact_facts: &HashSet<(i64, String)>,
) -> (
    usize,
    BTreeMap<String, u64>,
    Vec<String>,
    BTreeMap<String, f64>,
) {
    let n = ds.customers.len().max(1);
    let index = ds.customer_index();
    let mut facts: BTreeMap<String, u64> = BTreeMap::new();
    let mut fields: HashSet<String> = HashSet::new();
    let mut known: HashSet<i64> = HashSet::new();
    let mut seen: HashMap<Kind, HashSet<i64>> = HashMap::new();
    let mut mark = |k: Kind, c: i64, known: &mut HashSet<i64>| {
        if index.pos(c).is_some() {
            seen.entry(k).or_default().insert(c);
            known.insert(c);
        }
    };
    for (c, kind, s) in &prov.identities {
        if sources.contains(s) {
            *facts.entry(format!("identities:{kind}")).or_default() += 1;
            fields.insert(if kind == "customer" {
                "customer id".into()
            } else {
                kind.clone()
            });
            if kind == "email" || kind == "phone" {
                mark(Kind::Contact, *c, &mut known);
            } else if index.pos(*c).is_some() {
                known.insert(*c);
            }
        }
    }
    for (c, ns) in contact_facts {
        if ns == "email" || ns == "phone" {
            fields.insert(ns.clone());
            mark(Kind::Contact, *c, &mut known);
        }
    }
    for a in &prov.attributes {
        if sources.contains(&a.source_id) && a.name != super::RECORD_TIME {
            *facts.entry("attributes".into()).or_default() += 1;
            fields.insert(a.name.clone());
            mark(demographic(&a.name), a.customer_id, &mut known);
        }
    }
    for (c, s, _, _) in &prov.consents {
        if sources.contains(s) {
            *facts.entry("consents".into()).or_default() += 1;
            fields.insert("consent".into());
            mark(Kind::Consent, *c, &mut known);
        }
    }
    if !ds.orders.is_empty() {
        facts.insert("orders".into(), ds.orders.len() as u64);
        facts.insert("order_lines".into(), ds.lines.len() as u64);
    }
    for o in &ds.orders {
        mark(Kind::Behaviour, o.customer, &mut known);
    }
    for e in &ds.events {
        *facts.entry(format!("events:{}", e.kind)).or_default() += 1;
        mark(kind_of_event(e), e.customer, &mut known);
    }
    for f in &ds.feedback {
        *facts.entry(format!("feedback:{}", f.kind)).or_default() += 1;
        mark(kind_of_feedback(f), f.customer, &mut known);
    }
    if !ds.exposures.is_empty() {
        facts.insert("campaign exposures".into(), ds.exposures.len() as u64);
    }
    for e in &ds.exposures {
        mark(Kind::Campaigns, e.customer, &mut known);
    }
    if !ds.redemptions.is_empty() {
        facts.insert("redemptions".into(), ds.redemptions.len() as u64);
    }
    for r in &ds.redemptions {
        mark(Kind::Campaigns, r.customer, &mut known);
        mark(Kind::Preferences, r.customer, &mut known);
    }
    let visibility = kinds
        .iter()
        .map(|k| {
            (
                k.as_str().to_string(),
                seen.get(k).map_or(0, HashSet::len) as f64 / n as f64,
            )
        })
        .collect();
    let mut fields: Vec<String> = fields.into_iter().collect();
    fields.sort();
    (known.len(), facts, fields, visibility)
}

impl Engine {
    /// `gap departments`: holdings, visibility and decision quality per
    /// department and unified (an analysis of the whole store: not for a
    /// department-limited key).
    pub fn gap_departments(
        &self,
        a: &crate::access::Access,
        opts: &DepartmentOptions,
    ) -> Result<DepartmentsReport, EngineError> {
        super::knowledge::whole_store(a)?;
        let t0 = std::time::Instant::now();
        let (raw, _) = self.current_raw()?;
        let prov = self.store().provenance()?;
        let sources = self.store().sources()?;
        let stored = self.stored_departments()?;
        let (depts, grouping) = departments_of(&stored, &sources);
        let policy = self.policy()?;
        let classify = |name: &str| super::attribute_kind(&policy, name);
        let unified_ds = raw.dataset()?;
        let sp = split(&unified_ds, opts.window_days, opts.active_days)?;
        let kinds = Kind::all().to_vec();
        let id_of: HashMap<&str, i64> = sources.iter().map(|s| (s.name.as_str(), s.id)).collect();
        let n = unified_ds.customers.len();
        let mut out = Vec::new();
        let bar = crate::report::progress_bar(opts.progress, "backtesting departments");
        if let Some(b) = &bar {
            b.set_length(depts.len() as u64 + 1);
        }
        for d in &depts {
            if let Some(b) = &bar {
                b.set_message(format!("backtesting department {}", d.name));
                b.inc(1);
            }
            let set: HashSet<i64> = d
                .sources
                .iter()
                .filter_map(|s| id_of.get(s.as_str()).copied())
                .collect();
            let ds = restricted_dataset(&raw, &prov, &set, &sources)?;
            let q = decisions(&ds, &sp, opts)?;
            let cf = contact_facts(&raw, &prov, &set);
            let (customers, facts, fields, visibility) =
                holdings(&ds, &prov, &set, &kinds, &classify, &cf);
            out.push(DepartmentGap::new(
                d, customers, n, facts, fields, visibility, q,
            ));
        }
        let all: HashSet<i64> = sources.iter().map(|s| s.id).collect();
        if let Some(b) = &bar {
            b.set_message("backtesting the unified view");
            b.inc(1);
        }
        let q = decisions(&unified_ds, &sp, opts)?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let cf = contact_facts(&raw, &prov, &all);
        let (customers, facts, fields, visibility) =
            holdings(&unified_ds, &prov, &all, &kinds, &classify, &cf);
        let all_names = DepartmentConfig {
            name: "unified".into(),
            sources: sources.iter().map(|s| s.name.clone()).collect(),
        };
        let unified = DepartmentGap::new(&all_names, customers, n, facts, fields, visibility, q);
        let best = |f: fn(&DepartmentGap) -> f64, higher: bool| {
            out.iter().map(f).fold(
                if higher {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                },
                |a, b| if higher { a.max(b) } else { a.min(b) },
            )
        };
        let value_of_sharing = DecisionQuality {
            churn_auc: unified.churn_auc - best(|d| d.churn_auc, true),
            ndcg10: unified.ndcg10 - best(|d| d.ndcg10, true),
            spend_mae: unified.spend_mae - best(|d| d.spend_mae, false),
            notes: vec![
                "unified minus the best single department (churn AUC and nDCG: higher is better; spend MAE: lower is better)".into(),
            ],
        };
        let churners = sp.churn_labels.iter().filter(|&&b| b).count();
        self.record_access(a, "gap.departments", vec![], vec![])?;
        let report = DepartmentsReport {
            customers: n,
            cutoff: crate::churn::fmt_date(sp.cutoff),
            window_days: opts.window_days,
            churn_population: sp.churn_rows.len(),
            churners,
            recs_population: sp.new_items.len(),
            recs_algorithm: recs_algorithm(unified_ds.products.len()).into(),
            spend_population: sp.spend_rows.len(),
            grouping,
            kinds: kinds.iter().map(|k| k.as_str().to_string()).collect(),
            departments: out,
            unified,
            value_of_sharing,
            seconds: t0.elapsed().as_secs_f64(),
        };
        crate::invariants::checked("gap departments", report)
    }

    /// The `[[department]]` groups of the config last imported.
    pub fn stored_departments(&self) -> Result<Vec<DepartmentConfig>, EngineError> {
        match self.store().setting("departments")? {
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                EngineError::Invalid(format!(
                    "the stored [[department]] groups are unreadable: {e}"
                ))
            }),
            None => Ok(Vec::new()),
        }
    }
}
