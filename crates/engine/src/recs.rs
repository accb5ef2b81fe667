//! Recommendation use cases: top-N evaluation on ratings files, training on
//! the store, and answering "what should we offer this customer next?".
//!
//! - [`load_split`] / [`load_holdout`] read ratings files (through
//!   `infogap_ingest::ratings`) into binary interactions plus per-user test
//!   items (and, when every training rating has a timestamp, the
//!   chronological order of each user's ratings, which sequence models use);
//!   [`eval_topn`] picks a configuration on an inner validation split of the
//!   TRAIN data only (when several are given), refits it on the whole train
//!   data and measures it on the test items.
//! - [`build_interactions`] turns the store's [`Dataset`] into weighted
//!   implicit interactions (order lines, ratings, cart/view events, optional
//!   time decay); [`train`] fits, measures on an inner holdout and saves the
//!   model (parameters, metrics, id maps, training histories, product labels)
//!   in the store as CBOR, its numeric arrays packed as bytes (JSON blobs of
//!   earlier versions still load); [`recommend`] answers from the saved model, folding
//!   in customers that were not in the training data and falling back — with
//!   a label — to popularity for customers without history.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use infogap_ingest::ratings::{RatingFormat, read_ratings};
use infogap_models::metrics::ranking::RankingReport;
use infogap_models::recs::data::{
    Combine, Csr, IdMap, Interactions, InteractionsBuilder, SignalWeights, TimeDecay, Timeline,
};
use infogap_models::recs::select::{self, Selection, Validation};
use infogap_models::recs::topn::TopNFilter;
use infogap_models::recs::{AlgoParams, FitContext, Recommender, SideInfo};
use serde::{Deserialize, Serialize};

use crate::{Dataset, Engine, EngineError};

/// Model kind under which recommenders are saved.
pub const MODEL_KIND: &str = "recs";

/// A top-N evaluation problem: binary training interactions and each user's test items.
#[derive(Debug, Clone)]
pub struct TopNData {
    /// Training interactions (the item map also holds test-only items, so the catalogue is complete).
    pub train: Interactions,
    /// Test items per training row.
    pub test: Vec<Vec<u32>>,
    /// Duplicate (user, item) lines found in the files (the last rating was kept).
    pub duplicates: usize,
    /// Test rows whose user or item did not appear in the training file.
    pub test_only: usize,
    /// When each training interaction happened (rank and time), when every
    /// training rating had a timestamp.
    pub order: Option<Timeline>,
    /// The rating of each training interaction (users × items; it may cover
    /// held-out cells too, models look up the training ones), for
    /// rating-confidence iALS.
    pub ratings: Option<Csr>,
    /// Where the training ratings came from (the file), for error messages.
    pub source: String,
}

impl TopNData {
    /// What is known of the training interactions besides their weights.
    pub fn side(&self) -> SideInfo<'_> {
        SideInfo {
            order: self.order.as_ref(),
            ratings: self.ratings.as_ref(),
        }
    }
}

/// Refuses a configuration that reads the ratings when a training rating is
/// not positive (a confidence must be), naming the first such rating by its
/// user and item ids; models would only know their row and column.
fn check_ratings_for(data: &TopNData, search: &Search) -> Result<(), EngineError> {
    let wanted = match search {
        Search::Fixed(p) => p.uses_ratings(),
        Search::Grid(c) => c.iter().any(AlgoParams::uses_ratings),
        Search::Auto => false,
    };
    let Some(r) = data.ratings.as_ref().filter(|_| wanted) else {
        return Ok(());
    };
    if let Err(b) = infogap_models::recs::cell_ratings(&data.train.by_user, r) {
        let user = data.train.users.id(b.user as u32).unwrap_or("?");
        let item = data.train.items.id(b.item).unwrap_or("?");
        let source = &data.source;
        return Err(EngineError::Invalid(match b.rating {
            Some(v) => format!(
                "{source}: user {user} rated item {item} {v}: rating confidence needs positive \
                 ratings"
            ),
            None => format!("{source}: user {user} has no rating for item {item}"),
        }));
    }
    Ok(())
}

/// The ratings of `file` on the users × items grid of `x` (ids not in `x`'s
/// maps are skipped: test-only rows).
fn rating_matrix(
    file: &infogap_ingest::ratings::RatingsFile,
    x: &Interactions,
) -> Result<Csr, EngineError> {
    let triples: Vec<(u32, u32, f32)> = file
        .iter_external()
        .filter_map(|(u, i, r, _)| Some((x.users.get(u)?, x.items.get(i)?, r)))
        .collect();
    Ok(Csr::from_triples(
        x.n_users(),
        x.n_items(),
        &triples,
        |_, last| last,
    )?)
}

fn read(
    path: &Path,
    format: Option<RatingFormat>,
) -> Result<infogap_ingest::ratings::RatingsFile, EngineError> {
    read_ratings(path, format).map_err(|e| EngineError::Invalid(e.to_string()))
}

/// Reads a train and a test ratings file (every rating = one interaction).
pub fn load_split(
    train: &Path,
    test: &Path,
    format: Option<RatingFormat>,
) -> Result<TopNData, EngineError> {
    let tr = read(train, format)?;
    let te = read(test, format)?;
    let mut b = InteractionsBuilder::new(Combine::Last);
    for (u, i, _, t) in tr.iter_external() {
        b.add(u, i, 1.0, t);
    }
    if b.is_empty() {
        return Err(EngineError::Invalid(format!(
            "{}: no ratings",
            train.display()
        )));
    }
    let mut test_only = 0;
    let mut pairs = Vec::new();
    for (u, i, _, _) in te.iter_external() {
        let uu = b.add_user(u);
        let ii = b.add_item(i);
        pairs.push((uu, ii));
    }
    let (train_x, order) = b.build_with_order()?;
    let ratings = rating_matrix(&tr, &train_x)?;
    let mut test_items = vec![Vec::new(); train_x.n_users()];
    for (u, i) in pairs {
        if train_x.by_user.row_len(u as usize) == 0 || train_x.by_item.row_len(i as usize) == 0 {
            test_only += 1;
        }
        test_items[u as usize].push(i);
    }
    for t in &mut test_items {
        t.sort_unstable();
        t.dedup();
    }
    Ok(TopNData {
        train: train_x,
        test: test_items,
        duplicates: tr.duplicates + te.duplicates,
        test_only,
        order,
        ratings: Some(ratings),
        source: train.display().to_string(),
    })
}

/// Reads one ratings file and holds out `fraction` of each user's ratings (seeded).
pub fn load_holdout(
    path: &Path,
    fraction: f64,
    seed: u64,
    format: Option<RatingFormat>,
) -> Result<TopNData, EngineError> {
    let f = read(path, format)?;
    let mut b = InteractionsBuilder::new(Combine::Last);
    for (u, i, _, t) in f.iter_external() {
        b.add(u, i, 1.0, t);
    }
    if b.is_empty() {
        return Err(EngineError::Invalid(format!(
            "{}: no ratings",
            path.display()
        )));
    }
    // The order covers every rating; models only look up the training ones.
    let (all, order) = b.build_with_order()?;
    let ratings = rating_matrix(&f, &all)?;
    let (train, test) = select::holdout(&all.by_user, fraction, seed)?;
    let train = Interactions::from_csr(all.users, all.items, train);
    Ok(TopNData {
        train,
        test,
        duplicates: f.duplicates,
        test_only: 0,
        order,
        ratings: Some(ratings),
        source: path.display().to_string(),
    })
}

/// What [`eval_topn`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct TopNEvalReport {
    /// The configuration evaluated (chosen on the inner validation split when several were given).
    pub params: AlgoParams,
    /// Test metrics.
    pub report: RankingReport,
    /// Fit time on the whole training data (seconds).
    pub fit_seconds: f64,
    /// Time to score and rank every item for every training user (seconds).
    pub score_all_seconds: f64,
    /// Time of the configuration search on the inner validation split (seconds; 0 without one).
    pub select_seconds: f64,
    /// The search, when there was one.
    pub selection: Option<Selection>,
    /// Training users, items, interactions.
    pub n_users: usize,
    /// Catalogue size.
    pub n_items: usize,
    /// Training interactions.
    pub n_train: usize,
    /// Test interactions.
    pub n_test: usize,
}

/// Which configuration to fit.
#[derive(Debug, Clone)]
pub enum Search {
    /// Exactly this one.
    Fixed(AlgoParams),
    /// The best of these on the inner validation split.
    Grid(Vec<AlgoParams>),
    /// `--algo auto` ([`select::auto_search`]).
    Auto,
}

/// Chooses a configuration on the inner splits of `validation` carved from
/// `train` (never on test data); a fixed configuration is returned as is. `side`
/// (the interactions' times and ratings) enables sequence and session models
/// and rating-confidence iALS.
/// With `progress`, a search draws a bar on stderr (trials done of planned).
pub fn choose(
    search: &Search,
    train: &Csr,
    side: SideInfo<'_>,
    validation: Validation,
    seed: u64,
    k: usize,
    progress: bool,
) -> Result<(AlgoParams, Option<Selection>), EngineError> {
    let searching =
        matches!(search, Search::Auto) || matches!(search, Search::Grid(c) if c.len() > 1);
    let bar = crate::report::progress_bar(progress && searching, "choosing a recommender");
    let tick = |done: usize, planned: usize| {
        if let Some(b) = &bar {
            b.set_length(planned as u64);
            b.set_position(done as u64);
        }
    };
    let out = match search {
        Search::Fixed(p) => (p.clone(), None),
        Search::Grid(c) if c.len() == 1 => (c[0].clone(), None),
        Search::Grid(c) => {
            let sel = select::grid_search_with(c, train, side, validation, seed, k, &tick)?;
            (sel.best.clone(), Some(sel))
        }
        Search::Auto => {
            let sel = select::auto_search_with(train, side, validation, seed, k, &tick)?;
            (sel.best.clone(), Some(sel))
        }
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(out)
}

/// Evaluates a configuration (chosen by nDCG@k on the inner splits of
/// `validation` from the TRAIN data when a search is asked), refits it on all
/// the training data and measures it on the test items.
pub fn eval_topn(
    data: &TopNData,
    search: &Search,
    k: usize,
    validation: Validation,
    seed: u64,
    progress: bool,
) -> Result<TopNEvalReport, EngineError> {
    if k == 0 {
        return Err(EngineError::Invalid("--k must be at least 1".into()));
    }
    check_ratings_for(data, search)?;
    let (params, selection) = choose(
        search,
        &data.train.by_user,
        data.side(),
        validation,
        seed,
        k,
        progress,
    )?;
    let select_seconds = selection.as_ref().map_or(0.0, |s| s.seconds);
    let t0 = Instant::now();
    let ctx = FitContext::new(&data.train.by_user, &data.train.by_item).with_side(data.side());
    let model = Recommender::fit_in(&params, &ctx)?;
    let fit_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let recs = model.recommend_all(&data.train.by_user, k, false);
    let score_all_seconds = t1.elapsed().as_secs_f64();
    let report =
        infogap_models::metrics::ranking::evaluate(&recs, &data.test, k, data.train.n_items());
    crate::invariants::checked(
        "eval recs",
        TopNEvalReport {
            params,
            report,
            fit_seconds,
            score_all_seconds,
            select_seconds,
            selection,
            n_users: data.train.n_users(),
            n_items: data.train.n_items(),
            n_train: data.train.nnz(),
            n_test: data.test.iter().map(Vec::len).sum(),
        },
    )
}

/// How the store's facts become implicit interactions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SignalConfig {
    /// Weight per signal kind: `purchase` (order lines), `rating`, and event kinds (`cart`, `view`, …).
    pub weights: SignalWeights,
    /// Half-life of the exponential time decay in days (relative to the latest fact), if any.
    pub half_life_days: Option<f64>,
}

impl SignalConfig {
    /// Purchases weigh 1, with the given weights of carts, views and
    /// ratings (the CLI's defaults are 0.5, 0.1 and 1).
    pub fn with_weights(cart: f32, view: f32, rating: f32, half_life_days: Option<f64>) -> Self {
        let mut w = SignalWeights::default();
        w.weights.insert("cart".into(), cart);
        w.weights.insert("view".into(), view);
        w.weights.insert("rating".into(), rating);
        SignalConfig {
            weights: w,
            half_life_days,
        }
    }
}

/// Builds customer × product interactions from the store snapshot. Users are
/// customer ids and items product ids (as decimal strings); every product of
/// the catalogue is an item. Summed weights `w` are damped to `log2(1 + w)`
/// so one purchase counts 1 and repeats add less and less.
pub fn build_interactions(ds: &Dataset, cfg: &SignalConfig) -> Result<Interactions, EngineError> {
    Ok(build_interactions_with_order(ds, cfg)?.0)
}

/// [`build_interactions`] plus the chronological order of each customer's
/// products (`None` unless every fact used has a time), for sequence models.
pub fn build_interactions_with_order(
    ds: &Dataset,
    cfg: &SignalConfig,
) -> Result<(Interactions, Option<Timeline>), EngineError> {
    let decay = match (cfg.half_life_days, ds.max_time()) {
        (Some(d), Some(t)) if d > 0.0 => Some(TimeDecay {
            half_life_seconds: d * 86_400.0,
            reference_time: t,
        }),
        (Some(d), _) if d.is_nan() || d <= 0.0 => {
            return Err(EngineError::Invalid("half-life must be positive".into()));
        }
        _ => None,
    };
    let mut b = InteractionsBuilder::new(Combine::Sum).time_decay(decay);
    for p in &ds.products {
        b.add_item(&p.id.to_string());
    }
    let w = &cfg.weights;
    for l in &ds.lines {
        if let Some(p) = l.product {
            b.add_signal(
                w,
                &l.customer.to_string(),
                &p.to_string(),
                "purchase",
                l.time,
            );
        }
    }
    for e in &ds.events {
        if let Some(p) = e.product {
            b.add_signal(w, &e.customer.to_string(), &p.to_string(), &e.kind, e.time);
        }
    }
    let (x, order) = b.build_with_order()?;
    let by_user = x.by_user.map_values(|v| (1.0 + v.max(0.0)).log2());
    Ok((Interactions::from_csr(x.users, x.items, by_user), order))
}

/// A product as shown in answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProductLabel {
    /// Store id.
    pub id: i64,
    /// External key.
    pub key: String,
    /// Display name.
    pub name: Option<String>,
    /// Category.
    pub category: Option<String>,
}

/// What is saved in the model blob.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedRecs {
    /// Blob format version.
    pub format: u32,
    /// Customer ids ↔ model rows.
    pub users: IdMap,
    /// Product ids ↔ model columns.
    pub items: IdMap,
    /// Training histories (customer × product, weighted).
    pub histories: Csr,
    /// Display key of each training customer, by model row.
    pub customer_keys: Vec<String>,
    /// Product labels, by model column.
    pub products: Vec<ProductLabel>,
    /// How interactions were built (reused for fold-in).
    pub signals: SignalConfig,
    /// The fitted model.
    pub model: Recommender,
}

/// Options of [`train`].
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Algorithm name (see `infogap_models::recs::ALGORITHMS`) or `auto`.
    pub algo: String,
    /// Hyper-parameter overrides.
    pub params: Vec<(String, f64)>,
    /// How facts become interactions.
    pub signals: SignalConfig,
    /// Seed (inner split and randomized models).
    pub seed: u64,
    /// Cut-off of the inner-holdout metrics.
    pub k: usize,
    /// Draw a progress bar while a search runs.
    pub progress: bool,
}

/// What [`train`] did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Saved version.
    pub version: i64,
    /// The configuration fitted.
    pub params: AlgoParams,
    /// Metrics of that configuration on the inner holdout (20 % of each customer's items).
    pub holdout: RankingReport,
    /// Customers, products, interactions trained on.
    pub customers: usize,
    /// Products in the catalogue.
    pub products: usize,
    /// Interactions.
    pub interactions: usize,
    /// Fit time on all the data (seconds).
    pub fit_seconds: f64,
    /// Candidate configurations tried (for `auto`).
    pub candidates_tried: usize,
}

fn search_for(algo: &str, overrides: &[(String, f64)], seed: u64) -> Result<Search, EngineError> {
    if algo == "auto" {
        if !overrides.is_empty() {
            return Err(EngineError::Invalid(
                "parameters cannot be set with --algo auto; use --algo NAME".into(),
            ));
        }
        return Ok(Search::Auto);
    }
    let mut p = AlgoParams::default_for(algo)?.with_seed(seed);
    for (name, v) in overrides {
        p.set(name, *v)?;
    }
    Ok(Search::Fixed(p))
}

/// Trains on the store's data and saves the model as the next `recs` version.
pub fn train(engine: &Engine, opts: &TrainOptions) -> Result<TrainReport, EngineError> {
    let ds = engine.dataset()?;
    let (x, order) = build_interactions_with_order(&ds, &opts.signals)?;
    if x.nnz() == 0 {
        return Err(EngineError::Invalid(
            "the store has no purchases, ratings or product events to learn from; import data first".into(),
        ));
    }
    let k = opts.k.max(1);
    let search = search_for(&opts.algo, &opts.params, opts.seed)?;
    if matches!(&search, Search::Fixed(p) if p.uses_ratings()) {
        return Err(EngineError::Invalid(
            "rating_confidence: the store's interactions carry signal weights, which are iALS's \
             confidence already; rating confidence is for `eval recs` on a ratings file"
                .into(),
        ));
    }
    // Inner holdout on the store's data: choose (for `auto`) and measure.
    // The store's interactions carry their signal weights (iALS's
    // confidence already); there is no separate rating per cell.
    let side = SideInfo {
        order: order.as_ref(),
        ratings: None,
    };
    let (params, sel) = choose(
        &search,
        &x.by_user,
        side,
        Validation::holdout(0.2),
        opts.seed,
        k,
        opts.progress,
    )?;
    let (holdout, tried) = match sel {
        Some(s) => (s.best_report, s.trials.len()),
        None => {
            let (inner, valid) = select::holdout(&x.by_user, 0.2, opts.seed)?;
            let inner_t = inner.transpose();
            let ctx = FitContext::new(&inner, &inner_t).with_side(side);
            let m = Recommender::fit_in(&params, &ctx)?;
            (select::evaluate(&m, &inner, &valid, k).1, 1)
        }
    };
    let t0 = Instant::now();
    let model = Recommender::fit_in(
        &params,
        &FitContext::new(&x.by_user, &x.by_item).with_side(side),
    )?;
    let fit_seconds = t0.elapsed().as_secs_f64();
    let by_id: HashMap<String, &infogap_core::dataset::ProductInfo> =
        ds.products.iter().map(|p| (p.id.to_string(), p)).collect();
    let products = x
        .items
        .ids()
        .iter()
        .map(|id| match by_id.get(id) {
            Some(p) => ProductLabel {
                id: p.id,
                key: p.key.clone(),
                name: p.name.clone(),
                category: p.category.clone(),
            },
            None => ProductLabel {
                id: id.parse().unwrap_or(-1),
                key: id.clone(),
                name: None,
                category: None,
            },
        })
        .collect();
    let keys: HashMap<String, &str> = ds
        .customers
        .iter()
        .map(|c| (c.id.to_string(), c.key.as_str()))
        .collect();
    let customer_keys = x
        .users
        .ids()
        .iter()
        .map(|id| {
            keys.get(id)
                .map_or_else(|| format!("#{id}"), |k| (*k).to_owned())
        })
        .collect();
    let saved = SavedRecs {
        format: 1,
        customer_keys,
        users: x.users.clone(),
        items: x.items.clone(),
        histories: x.by_user.clone(),
        products,
        signals: opts.signals.clone(),
        model,
    };
    let mut blob = Vec::new();
    ciborium::into_writer(&saved, &mut blob)
        .map_err(|e| EngineError::Invalid(format!("serializing the model: {e}")))?;
    let params_json = serde_json::json!({
        "algo": params.name(),
        "params": params,
        "signals": opts.signals,
        "seed": opts.seed,
    });
    let metrics_json = serde_json::json!({
        "holdout": holdout,
        "fit_seconds": fit_seconds,
        "customers": x.n_users(),
        "products": x.n_items(),
        "interactions": x.nnz(),
        "candidates_tried": tried,
    });
    let rec = engine.save_model(MODEL_KIND, &params_json, &metrics_json, &blob)?;
    crate::invariants::checked(
        "train recs",
        TrainReport {
            version: rec.version,
            params,
            holdout,
            customers: x.n_users(),
            products: x.n_items(),
            interactions: x.nnz(),
            fit_seconds,
            candidates_tried: tried,
        },
    )
}

/// A saved model loaded from the store.
#[derive(Debug, Clone)]
pub struct LoadedRecs {
    /// Model version.
    pub version: i64,
    /// The model and its maps.
    pub saved: SavedRecs,
}

/// Loads the newest saved recommender.
pub fn load(engine: &Engine) -> Result<LoadedRecs, EngineError> {
    let rec = engine.load_model(MODEL_KIND)?.ok_or_else(|| {
        EngineError::NotFound(
            "no recommender model in the store; run `infogap train recs` first".into(),
        )
    })?;
    // CBOR since the fourth session; JSON before (a map starts with `{`).
    let parsed = if rec.blob.first() == Some(&b'{') {
        serde_json::from_slice(&rec.blob).map_err(|e| e.to_string())
    } else {
        ciborium::from_reader(rec.blob.as_slice()).map_err(|e| e.to_string())
    };
    let saved: SavedRecs = parsed.map_err(|e| {
        EngineError::Invalid(format!(
            "the saved recs model v{} cannot be read: {e}",
            rec.version
        ))
    })?;
    Ok(LoadedRecs {
        version: rec.version,
        saved,
    })
}

/// Options of [`recommend`].
#[derive(Debug, Clone, Default)]
pub struct RecommendOptions {
    /// Number of items.
    pub k: usize,
    /// Also recommend what the customer already has.
    pub include_seen: bool,
    /// Explain each item by the customer's own items.
    pub explain: bool,
    /// Only products of this category.
    pub category: Option<String>,
    /// Never these product keys.
    pub deny: Vec<String>,
    /// Only these product keys (empty = no allow list).
    pub allow: Vec<String>,
}

/// The product filters of [`RecommendOptions`] resolved to the model's item
/// indexes: the allow list and the category become one allowed set.
struct ItemFilters {
    include_seen: bool,
    allow: Option<HashSet<u32>>,
    deny: HashSet<u32>,
}

impl ItemFilters {
    /// Resolves product keys; an allow-listed key the model does not know is an
    /// error (a typo would otherwise empty the answer), a denied unknown key is
    /// harmless (it cannot be recommended) and ignored.
    fn new(s: &SavedRecs, opts: &RecommendOptions) -> Result<Self, EngineError> {
        let pos = |k: &String| {
            s.products
                .iter()
                .position(|p| &p.key == k)
                .map(|p| p as u32)
        };
        let mut allow = if opts.allow.is_empty() {
            None
        } else {
            let mut set = HashSet::new();
            for k in &opts.allow {
                set.insert(pos(k).ok_or_else(|| {
                    EngineError::NotFound(format!(
                        "product {k:?} (allow list) is not in the recommender's catalogue of {} products",
                        s.products.len()
                    ))
                })?);
            }
            Some(set)
        };
        if let Some(c) = &opts.category {
            if !s
                .products
                .iter()
                .any(|p| p.category.as_deref() == Some(c.as_str()))
            {
                let mut known: Vec<&str> = s
                    .products
                    .iter()
                    .filter_map(|p| p.category.as_deref())
                    .collect();
                known.sort_unstable();
                known.dedup();
                return Err(EngineError::NotFound(format!(
                    "category {c:?} has no product in the recommender's catalogue; categories: {}",
                    known.join(", ")
                )));
            }
            let of_category = (0..s.products.len() as u32)
                .filter(|&i| s.products[i as usize].category.as_deref() == Some(c.as_str()));
            allow = Some(match allow {
                Some(a) => of_category.filter(|i| a.contains(i)).collect(),
                None => of_category.collect(),
            });
        }
        Ok(Self {
            include_seen: opts.include_seen,
            allow,
            deny: opts.deny.iter().filter_map(pos).collect(),
        })
    }

    /// The filter the model applies.
    fn topn(&self) -> TopNFilter<'_> {
        TopNFilter {
            include_seen: self.include_seen,
            allow: self.allow.as_ref(),
            deny: Some(&self.deny),
            candidate: None,
        }
    }
}

/// A customer's current history in the model's item indexes (fold-in for a
/// customer the model was not trained on): `current` is built from the store
/// with the model's own signal weights; items the model does not know are dropped.
fn fold_in_history(current: &Interactions, s: &SavedRecs, customer_id: &str) -> Vec<(u32, f32)> {
    let mut h: Vec<(u32, f32)> = current
        .users
        .get(customer_id)
        .map(|u| {
            current
                .by_user
                .row(u as usize)
                .filter_map(|(i, w)| {
                    current
                        .items
                        .id(i)
                        .and_then(|k| s.items.get(k))
                        .map(|j| (j, w))
                })
                .collect()
        })
        .unwrap_or_default();
    h.sort_by_key(|&(j, _)| j);
    h
}

/// One of the customer's items that contributed to a recommendation.
#[derive(Debug, Clone, Serialize)]
pub struct Because {
    /// The customer's product.
    pub product: ProductLabel,
    /// Its contribution to the score.
    pub contribution: f32,
}

/// One recommended product.
#[derive(Debug, Clone, Serialize)]
pub struct RecItem {
    /// Rank (1 = best).
    pub rank: usize,
    /// The product.
    pub product: ProductLabel,
    /// Model score.
    pub score: f32,
    /// Explanation (when asked; empty for popularity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<Vec<Because>>,
}

/// The answer for one customer.
#[derive(Debug, Clone, Serialize)]
pub struct RecsAnswer {
    /// The customer's store id.
    pub customer_id: i64,
    /// The customer's display key.
    pub customer: String,
    /// Model version used.
    pub model_version: i64,
    /// Algorithm.
    pub algo: String,
    /// Whether the customer was in the training data (`false` = folded in from current history).
    pub in_training: bool,
    /// Items in the history used.
    pub history_items: usize,
    /// True when the history was empty and popularity was used.
    pub fallback: bool,
    /// Whether the list comes from the customer's own history (`false`:
    /// the non-personal popular list).
    pub personalized: bool,
    /// `history` (personal) or `popular` (most popular products, nothing
    /// personal used).
    pub basis: String,
    /// Why the list is not personal when consent is the reason, e.g.
    /// `consent personalization withdrawn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Recommended products, best first.
    pub items: Vec<RecItem>,
}

/// The non-personal answer for a customer whose personalization consent
/// is missing: the most popular products of the model, chosen without the
/// customer's history (so nothing is excluded as already seen), labelled
/// `personalized: false`, `basis: popular` with the consent `reason`. The
/// catalogue filters of `opts` still apply.
pub fn recommend_popular(
    loaded: &LoadedRecs,
    cid: i64,
    display: String,
    opts: &RecommendOptions,
    reason: String,
) -> Result<RecsAnswer, EngineError> {
    let s = &loaded.saved;
    let filters = ItemFilters::new(s, opts)?;
    let ans = s.model.recommend(None, &[], opts.k, &filters.topn());
    let items = ans
        .items
        .iter()
        .enumerate()
        .map(|(r, x)| RecItem {
            rank: r + 1,
            product: s
                .products
                .get(x.item as usize)
                .cloned()
                .unwrap_or(ProductLabel {
                    id: -1,
                    key: s.items.id(x.item).unwrap_or("?").to_owned(),
                    name: None,
                    category: None,
                }),
            score: x.score,
            because: opts.explain.then(Vec::new),
        })
        .collect();
    crate::invariants::checked(
        "recommend",
        RecsAnswer {
            customer_id: cid,
            customer: display,
            model_version: loaded.version,
            algo: s.model.params.name().to_owned(),
            in_training: false,
            history_items: 0,
            fallback: true,
            personalized: false,
            basis: "popular".into(),
            reason: Some(reason),
            items,
        },
    )
}

/// Recommends for one customer (by any key `find_customer` accepts) from a loaded model.
pub fn recommend_with(
    engine: &Engine,
    loaded: &LoadedRecs,
    key: &str,
    namespace: Option<&str>,
    opts: &RecommendOptions,
) -> Result<RecsAnswer, EngineError> {
    let cid = engine
        .find_customer(key, namespace)?
        .ok_or_else(|| EngineError::NotFound(format!("customer {key:?}")))?;
    recommend_customer(loaded, cid, opts, || {
        let ds = std::sync::Arc::new(engine.dataset()?);
        let x = std::sync::Arc::new(build_interactions(&ds, &loaded.saved.signals)?);
        Ok((ds, x))
    })
}

/// Recommends for one customer id. A customer the model was not trained on
/// is folded in from `current` (the data set and its interactions, built
/// the model's way), asked for only then: a server passes its snapshot's.
pub fn recommend_customer(
    loaded: &LoadedRecs,
    cid: i64,
    opts: &RecommendOptions,
    current: impl FnOnce()
        -> Result<(std::sync::Arc<Dataset>, std::sync::Arc<Interactions>), EngineError>,
) -> Result<RecsAnswer, EngineError> {
    recommend_customer_live(loaded, cid, opts, current, false)
}

/// [`recommend_customer`]; with `live`, a customer the model was trained
/// on whose interactions changed since (events taken in real time) is
/// folded in from `current` too, so new history counts without a retrain.
/// A server passes its snapshot's `current`, built once per generation.
pub fn recommend_customer_live(
    loaded: &LoadedRecs,
    cid: i64,
    opts: &RecommendOptions,
    current: impl FnOnce()
        -> Result<(std::sync::Arc<Dataset>, std::sync::Arc<Interactions>), EngineError>,
    live: bool,
) -> Result<RecsAnswer, EngineError> {
    let s = &loaded.saved;
    let row = s
        .users
        .get(&cid.to_string())
        .filter(|&r| (r as usize) < s.histories.n_rows);
    let mut current = Some(current);
    let (history, in_training, display): (Vec<(u32, f32)>, bool, String) = match row {
        Some(r) => {
            let trained: Vec<(u32, f32)> = s.histories.row(r as usize).collect();
            let display = s
                .customer_keys
                .get(r as usize)
                .cloned()
                .unwrap_or_else(|| format!("#{cid}"));
            match current.take().filter(|_| live) {
                Some(cur) => {
                    let (_, x) = cur()?;
                    let now = fold_in_history(&x, s, &cid.to_string());
                    if now == trained {
                        (trained, true, display)
                    } else {
                        // new history since training: folded in like a new customer
                        (now, false, display)
                    }
                }
                None => (trained, true, display),
            }
        }
        None => {
            // Fold-in: the customer's current interactions, built the same way.
            let cur = current
                .take()
                .ok_or_else(|| EngineError::Invariant("recommendation input used twice".into()))?;
            let (ds, x) = cur()?;
            let h = fold_in_history(&x, s, &cid.to_string());
            let disp = ds
                .customers
                .iter()
                .find(|c| c.id == cid)
                .map_or_else(|| format!("#{cid}"), |c| c.key.clone());
            (h, false, disp)
        }
    };
    let filters = ItemFilters::new(s, opts)?;
    let filter = filters.topn();
    let user = if in_training { row } else { None };
    let ans = s.model.recommend(user, &history, opts.k, &filter);
    let label = |i: u32| {
        s.products.get(i as usize).cloned().unwrap_or(ProductLabel {
            id: -1,
            key: s.items.id(i).unwrap_or("?").to_owned(),
            name: None,
            category: None,
        })
    };
    let items = ans
        .items
        .iter()
        .enumerate()
        .map(|(r, x)| RecItem {
            rank: r + 1,
            product: label(x.item),
            score: x.score,
            because: opts.explain.then(|| {
                if ans.fallback {
                    Vec::new()
                } else {
                    s.model
                        .explain(user, &history, x.item, 3)
                        .into_iter()
                        .map(|(j, c)| Because {
                            product: label(j),
                            contribution: c,
                        })
                        .collect()
                }
            }),
        })
        .collect();
    crate::invariants::checked(
        "recommend",
        RecsAnswer {
            customer_id: cid,
            customer: display,
            model_version: loaded.version,
            algo: s.model.params.name().to_owned(),
            in_training,
            history_items: history.len(),
            fallback: ans.fallback,
            personalized: !ans.fallback,
            basis: if ans.fallback { "popular" } else { "history" }.into(),
            reason: None,
            items,
        },
    )
}

/// One customer's answer in [`recommend_all`]: key, id, source, (item, score) best first.
type BatchRow = (String, i64, &'static str, Vec<(u32, f32)>);

/// What [`recommend_all`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    /// Model version used.
    pub model_version: i64,
    /// Algorithm.
    pub algo: String,
    /// Customers answered (every customer of the store).
    pub customers: usize,
    /// Of those, customers in the training data.
    pub in_training: usize,
    /// Of those, customers folded in from their current history (new since training).
    pub folded_in: usize,
    /// Of those, customers without history who got the popularity fallback.
    pub fallback: usize,
    /// Of those, customers without personalization consent, who got the
    /// non-personal popular list (`source` `popular-consent`), by reason.
    pub popular_for_consent: crate::privacy::consent::LeftOut,
    /// Rows written (customer × rank).
    pub rows: usize,
    /// The CSV file.
    pub out: String,
    /// Seconds spent scoring and ranking.
    pub score_seconds: f64,
}

/// Recommends for every customer of the store with the newest model and writes
/// `customer,customer_id,rank,product,name,category,score,source` rows to `out`
/// (`source` is `model`, `fold-in`, `fallback`, or `popular-consent` for a
/// customer without personalization consent, who gets the popular list). Customers are scored in
/// parallel; customers new since training are folded in from their current
/// history, exactly as [`recommend`] does for one.
pub fn recommend_all(
    engine: &Engine,
    access: &crate::access::Access,
    opts: &RecommendOptions,
    out: &Path,
    progress: bool,
) -> Result<BatchReport, EngineError> {
    use rayon::prelude::*;
    let loaded = load(engine)?;
    let s = &loaded.saved;
    let filters = ItemFilters::new(s, opts)?;
    // Open the output first: a bad path fails before any scoring.
    let io = |source: std::io::Error| EngineError::Io {
        path: out.display().to_string(),
        source,
    };
    let csv_err = |e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(err) => io(err),
        other => EngineError::Invalid(format!("{}: {other:?}", out.display())),
    };
    let mut w = csv::Writer::from_path(out).map_err(csv_err)?;
    let ds = engine.dataset()?;
    let current = build_interactions(&ds, &s.signals)?;
    let t = Instant::now();
    let bar = crate::report::progress_bar(progress, "recommend");
    if let Some(b) = &bar {
        b.set_length(ds.customers.len() as u64);
    }
    let filter = filters.topn();
    // personalization consent, read now: the others get the popular list
    let consents = engine.consents()?;
    let purpose = infogap_core::privacy::PERSONALIZATION;
    let popular: Vec<(u32, f32)> = s
        .model
        .recommend(None, &[], opts.k, &filter)
        .items
        .iter()
        .map(|x| (x.item, x.score))
        .collect();
    // (key, id, source, items) per customer, in the store's customer order
    let allowed = engine.department_customers(access)?;
    if access.visibility(infogap_core::access::FieldClass::Predictions)
        != infogap_core::access::Visibility::Visible
    {
        return Err(EngineError::Forbidden(format!(
            "role {:?} sees predictions masked or not at all; `recommend --all` needs them visible",
            access.role.name
        )));
    }
    let mut answers: Vec<BatchRow> = ds
        .customers
        .par_iter()
        .filter(|c| allowed.as_ref().is_none_or(|a| a.contains(&c.id)))
        .map(|c| {
            if consents.allows(c.id, purpose).is_err() {
                if let Some(b) = &bar {
                    b.inc(1);
                }
                return (c.key.clone(), c.id, "popular-consent", popular.clone());
            }
            let id = c.id.to_string();
            let row = s
                .users
                .get(&id)
                .filter(|&r| (r as usize) < s.histories.n_rows);
            let history: Vec<(u32, f32)> = match row {
                Some(r) => s.histories.row(r as usize).collect(),
                None => fold_in_history(&current, s, &id),
            };
            let ans = s.model.recommend(row, &history, opts.k, &filter);
            let source = if ans.fallback {
                "fallback"
            } else if row.is_some() {
                "model"
            } else {
                "fold-in"
            };
            if let Some(b) = &bar {
                b.inc(1);
            }
            (
                c.key.clone(),
                c.id,
                source,
                ans.items.iter().map(|x| (x.item, x.score)).collect(),
            )
        })
        .collect();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for a in &mut answers {
        a.0 = crate::share::show_key(access, a.1, &a.0);
    }
    let score_seconds = t.elapsed().as_secs_f64();
    w.write_record([
        "customer",
        "customer_id",
        "rank",
        "product",
        "name",
        "category",
        "score",
        "source",
    ])
    .map_err(csv_err)?;
    let mut rep = BatchReport {
        model_version: loaded.version,
        algo: s.model.params.name().to_owned(),
        customers: answers.len(),
        in_training: 0,
        folded_in: 0,
        fallback: 0,
        popular_for_consent: crate::privacy::consent::LeftOut::new(purpose),
        rows: 0,
        out: out.display().to_string(),
        score_seconds,
    };
    for (key, id, source, items) in &answers {
        match *source {
            "model" => rep.in_training += 1,
            "fold-in" => rep.folded_in += 1,
            "popular-consent" => {
                if let Err(r) = consents.allows(*id, purpose) {
                    rep.popular_for_consent.add(r);
                }
            }
            _ => rep.fallback += 1,
        }
        for (rank, (item, score)) in items.iter().enumerate() {
            let p = s.products.get(*item as usize);
            w.write_record([
                key.as_str(),
                &id.to_string(),
                &(rank + 1).to_string(),
                p.map_or_else(|| s.items.id(*item).unwrap_or("?"), |p| p.key.as_str()),
                p.and_then(|p| p.name.as_deref()).unwrap_or(""),
                p.and_then(|p| p.category.as_deref()).unwrap_or(""),
                &format!("{score:.6}"),
                source,
            ])
            .map_err(csv_err)?;
            rep.rows += 1;
        }
    }
    w.flush().map_err(io)?;
    engine.record_access(
        access,
        "recommendations.export",
        answers.iter().map(|a| a.1).collect(),
        access.shown_classes(&[
            infogap_core::access::FieldClass::Contact,
            infogap_core::access::FieldClass::Predictions,
        ]),
    )?;
    crate::invariants::checked("recommend --all", rep)
}

/// Loads the newest model and recommends for one customer.
pub fn recommend(
    engine: &Engine,
    key: &str,
    namespace: Option<&str>,
    opts: &RecommendOptions,
) -> Result<RecsAnswer, EngineError> {
    let loaded = load(engine)?;
    recommend_with(engine, &loaded, key, namespace, opts)
}

/// What a person's erasure removed from one saved model version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelForget {
    /// Model kind (`recs`, `churn`, `clv`, `amount`, …).
    pub kind: String,
    /// Version.
    pub version: i64,
    /// Whether the version held anything of the customer (and was rewritten
    /// without it).
    pub found: bool,
    /// What was removed, e.g. `customer id`, `training history`,
    /// `display key`, `ials user factors`, `user-knn interactions`.
    pub parts: Vec<String>,
    /// Why there is nothing per customer to look for, e.g. `parameters only`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Removes customer `customer_id` from a saved recommender without refitting
/// (GDPR Art. 17): their id (the row stays, under a placeholder no customer
/// id matches, so every other row keeps its number), their training history,
/// their display key and the per-user parts of the fitted model (see
/// [`Recommender::forget_user`]). Asked for afterwards, they are an unknown
/// customer (folded in from their current history in the store). True when
/// the model knew them.
pub fn forget_customer(saved: &mut SavedRecs, customer_id: i64) -> bool {
    forget_customer_parts(saved, customer_id).is_some()
}

/// [`forget_customer`], with the names of the parts removed (`None`: not known).
fn forget_customer_parts(saved: &mut SavedRecs, customer_id: i64) -> Option<Vec<String>> {
    let row = saved.users.forget(&customer_id.to_string())? as usize;
    let mut parts = vec!["customer id".to_owned()];
    if saved.histories.clear_row(row) > 0 {
        parts.push("training history".into());
    }
    if let Some(k) = saved.customer_keys.get_mut(row) {
        k.clear();
        parts.push("display key".into());
    }
    parts.extend(saved.model.forget_user(row).into_iter().map(str::to_owned));
    Some(parts)
}

/// Removes customer `customer_id` from every kept version of every saved
/// model, rewriting each blob that held them in place (same kind and
/// version; no retraining), and says per kind and version what was removed.
///
/// - `recs`: see [`forget_customer`].
/// - `churn`, `clv`, `amount`: their blobs hold parameters only (classifier
///   weights or trees over feature columns, BG/NBD and Gamma-Gamma
///   parameters, regression coefficients) and their params and metrics only
///   aggregates: nothing per customer; reported as not found, with the note
///   `parameters only`.
/// - Any other kind is not read: reported with the note
///   `unknown model kind: not checked`.
///
/// A `recs` version that cannot be read is an error (the erasure cannot be
/// claimed). Run it after the person's rows are gone from the store, so a
/// model trained meanwhile does not bring them back.
pub fn forget_in_saved_models(
    engine: &Engine,
    customer_id: i64,
) -> Result<Vec<ModelForget>, EngineError> {
    let store = engine.store();
    let mut out = Vec::new();
    for (kind, _) in store.model_versions()? {
        for version in store.model_history(&kind)? {
            let untouched = |note: &str| ModelForget {
                kind: kind.clone(),
                version,
                found: false,
                parts: Vec::new(),
                note: Some(note.to_owned()),
            };
            out.push(match kind.as_str() {
                MODEL_KIND => forget_in_recs_version(engine, version, customer_id)?,
                "churn" | "amount" => untouched("parameters only"),
                k if k == crate::clv::MODEL_KIND => untouched("parameters only"),
                _ => untouched("unknown model kind: not checked"),
            });
        }
    }
    Ok(out)
}

/// Forgets the customer in one saved `recs` version and rewrites its blob (in
/// the format it was saved in) when they were in it.
fn forget_in_recs_version(
    engine: &Engine,
    version: i64,
    customer_id: i64,
) -> Result<ModelForget, EngineError> {
    let store = engine.store();
    let mut result = ModelForget {
        kind: MODEL_KIND.to_owned(),
        version,
        found: false,
        parts: Vec::new(),
        note: None,
    };
    let Some(rec) = store.load_model_version(MODEL_KIND, version)? else {
        return Ok(result);
    };
    let unreadable = |e: String| {
        EngineError::Invalid(format!(
            "the saved recs model v{version} cannot be read: {e}"
        ))
    };
    // CBOR since the fourth session; JSON before (as `load` reads it).
    let json = rec.blob.first() == Some(&b'{');
    let mut saved: SavedRecs = if json {
        serde_json::from_slice(&rec.blob).map_err(|e| unreadable(e.to_string()))?
    } else {
        ciborium::from_reader(rec.blob.as_slice()).map_err(|e| unreadable(e.to_string()))?
    };
    drop(rec);
    let Some(parts) = forget_customer_parts(&mut saved, customer_id) else {
        return Ok(result);
    };
    let ser = |e: String| EngineError::Invalid(format!("serializing the model: {e}"));
    let blob = if json {
        serde_json::to_vec(&saved).map_err(|e| ser(e.to_string()))?
    } else {
        let mut b = Vec::new();
        ciborium::into_writer(&saved, &mut b).map_err(|e| ser(e.to_string()))?;
        b
    };
    if !store.replace_model_blob(MODEL_KIND, version, &blob)? {
        return Err(EngineError::NotFound(format!(
            "saved recs model v{version} vanished while the customer was removed from it"
        )));
    }
    result.found = true;
    result.parts = parts;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use infogap_core::dataset::{EventFact, LineFact, ProductInfo};

    use super::*;

    fn line(customer: i64, product: i64, time: i64) -> LineFact {
        LineFact {
            order: 1,
            customer,
            product: Some(product),
            quantity: 1.0,
            amount: 10.0,
            discount: 0.0,
            time: Some(time),
        }
    }

    fn event(customer: i64, kind: &str, product: i64) -> EventFact {
        EventFact {
            customer,
            kind: kind.into(),
            product: Some(product),
            value: None,
            channel: None,
            time: Some(0),
        }
    }

    #[test]
    fn interactions_from_a_hand_built_dataset() {
        let products = (1..=4)
            .map(|id| ProductInfo {
                id,
                key: format!("P{id}"),
                name: None,
                category: None,
                price: None,
            })
            .collect();
        let ds = Dataset {
            products,
            lines: vec![
                line(10, 1, 0),
                line(10, 1, 0),
                line(10, 2, 0),
                line(11, 2, 0),
            ],
            events: vec![event(11, "view", 3), event(11, "unknown", 4)],
            ..Default::default()
        };
        let x = build_interactions(&ds, &SignalConfig::default()).expect("build");
        assert_eq!(x.n_items(), 4, "the whole catalogue is kept");
        assert_eq!(x.n_users(), 2);
        let u10 = x.users.get("10").expect("customer 10") as usize;
        let p1 = x.items.get("1").expect("product 1");
        let h: Vec<(u32, f32)> = x.history(u10);
        // Two purchases of product 1: log2(1 + 2); one of product 2: 1.
        assert!((h.iter().find(|t| t.0 == p1).expect("p1").1 - 3f32.log2()).abs() < 1e-6);
        let u11 = x.users.get("11").expect("customer 11") as usize;
        assert_eq!(
            x.by_user.row_len(u11),
            2,
            "purchase + view; unknown kinds are ignored"
        );
        // A fitted model recommends the co-purchased product to customer 11.
        let m = Recommender::fit(&AlgoParams::ItemKnn { k: 10, shrink: 0.0 }, &x).expect("fit");
        let r = m.recommend(None, &x.history(u11), 1, &TopNFilter::default());
        assert_eq!(r.items[0].item, p1);
        assert!(!r.fallback);
        // Decay needs a positive half-life.
        let bad = SignalConfig {
            half_life_days: Some(0.0),
            ..Default::default()
        };
        assert!(build_interactions(&ds, &bad).is_err());
    }
}
