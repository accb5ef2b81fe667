//! Recommendation commands: `eval recs` (top-N on ratings files here; rating
//! prediction is delegated to [`crate::cmd::rating`]), `train recs` and
//! `recommend` on the store, and the recommendations part of `quickstart`.
//!
//! `eval recs` has two modes, chosen by the flags:
//! - top-N: `--train FILE --test FILE`, or `--ratings FILE --holdout-per-user F`;
//!   JSON `{"precision@K", "recall@K", "ndcg@K", "map@K", "coverage",
//!   "fit_seconds", "score_all_seconds", "algo", "params", ...}`;
//! - rating prediction: `--ratings FILE [--folds N]` (k-fold RMSE/MAE).
//!
//! With `--grid` or `--algo auto` the configuration is chosen on a per-user
//! validation split carved from the TRAIN data only, then refitted on all of
//! it; the report says what was chosen and what was tried.

use std::path::PathBuf;

use anyhow::{Context, bail};
use infogap_engine::recs::{self as erecs, RecommendOptions, SignalConfig, TrainOptions};
use infogap_ingest::ratings::RatingFormat;
use infogap_models::recs::{AlgoParams, select};
use serde_json::{Value, json};

use crate::Ctx;
use infogap_core::access::Action;

/// `infogap eval recs`: rating prediction (k-fold) or top-N ranking (train/test).
#[derive(Debug, Clone, clap::Args)]
pub struct EvalRecsArgs {
    /// A ratings file (u.data tab, ratings.dat `::`, CSV with header, or whitespace).
    /// Alone or with --folds: rating-prediction k-fold evaluation; with
    /// --holdout-per-user: top-N evaluation on a per-user holdout.
    #[arg(long, value_name = "FILE")]
    pub ratings: Option<PathBuf>,
    /// Number of folds (rating mode).
    #[arg(long)]
    pub folds: Option<usize>,
    /// Seed of splits and randomized models.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training ratings file (top-N mode, with --test).
    #[arg(long, value_name = "FILE")]
    pub train: Option<PathBuf>,
    /// Test ratings file (top-N mode, with --train).
    #[arg(long, value_name = "FILE")]
    pub test: Option<PathBuf>,
    /// Hold out this share of each user's ratings as test (top-N mode with --ratings).
    #[arg(long, value_name = "FRACTION")]
    pub holdout_per_user: Option<f64>,
    /// Algorithm, or `auto` to choose by inner validation. Top-N: popularity,
    /// item-knn, user-knn, seq-knn, session-knn, ials, ease, session-ease, gf-cf,
    /// blend, auto (default auto); seq-knn and the session-* models need timestamps. Rating mode: global-mean, baseline, svd, svdpp, knn-baseline, blend, auto;
    /// an unknown name is refused with the list.
    #[arg(long)]
    pub algo: Option<String>,
    /// Cut-off of the ranking metrics.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Hyper-parameter grid `name=v1,v2;name2=v3,...`, searched on a validation
    /// split of the training data.
    #[arg(long)]
    pub grid: Option<String>,
    /// Force the ratings file format (tab, colons, csv, whitespace).
    #[arg(long)]
    pub format: Option<String>,
    /// Share of each user's training data held out by an inner validation
    /// split (top-N default: 0.1, or 0.25 when the data gets one split, see
    /// --inner-splits; rating mode: 0.1).
    #[arg(long, value_name = "FRACTION")]
    pub validation: Option<f64>,
    /// Inner validation splits of a top-N search: disjoint per-user holdouts
    /// of --validation each, candidates ranked by their mean. Default: enough
    /// to hold out about 35 000 interactions in all, at most 5 (5 on ml-100k;
    /// one split of 25 % on data ten times larger, or with 4 600 items or more
    /// up to the 20 000 of the dense item-item models, whose memory grows with
    /// every split).
    #[arg(long, value_name = "N")]
    pub inner_splits: Option<usize>,
    /// EASE L2 regularization λ.
    #[arg(long)]
    pub lambda: Option<f64>,
    /// EASE dropout emphasis in [0,1).
    #[arg(long)]
    pub dropout: Option<f64>,
    /// Latent factors (iALS; rating models).
    #[arg(long)]
    pub factors: Option<f64>,
    /// Regularization (iALS; rating models).
    #[arg(long)]
    pub reg: Option<f64>,
    /// iALS confidence scale (c = 1 + alpha·r).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// iALS sweeps.
    #[arg(long)]
    pub iterations: Option<f64>,
    /// iALS: take each interaction's confidence from its rating (r = rating /
    /// mean rating in c = 1 + alpha·r) instead of counting every rating alike.
    /// Needs positive ratings; `auto` tries both.
    #[arg(long)]
    pub rating_confidence: bool,
    /// Neighbours of the kNN models.
    #[arg(long)]
    pub neighbors: Option<f64>,
    /// Cosine shrinkage of the kNN models.
    #[arg(long)]
    pub shrink: Option<f64>,
    /// Weight of EASE in the EASE+iALS blend.
    #[arg(long)]
    pub weight: Option<f64>,
    /// Session models (session-ease, session-knn): largest gap in seconds between two ratings of one session
    /// (0 = only equal timestamps).
    #[arg(long, value_name = "SECONDS")]
    pub session_gap: Option<f64>,
    /// Session models: weight of the co-occurrence within sessions.
    #[arg(long)]
    pub session_weight: Option<f64>,
    /// session-ease: time scale in seconds over which two ratings of one session stop counting together
    /// (each pair weighs exp(-seconds apart / this); 0 = every pair counts fully).
    #[arg(long, value_name = "SECONDS")]
    pub session_decay: Option<f64>,
    /// Learning rate (rating models trained by SGD).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Epochs (rating models trained by SGD).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

impl EvalRecsArgs {
    /// The forced ratings format, if any.
    pub fn ratings_format(&self) -> anyhow::Result<Option<RatingFormat>> {
        self.format
            .as_deref()
            .map(|f| f.parse::<RatingFormat>().map_err(anyhow::Error::msg))
            .transpose()
    }

    /// The top-N hyper-parameters given as flags, by model parameter name.
    fn topn_overrides(&self) -> Vec<(String, f64)> {
        let pairs = [
            ("lambda", self.lambda),
            ("dropout", self.dropout),
            ("factors", self.factors),
            ("reg", self.reg),
            ("alpha", self.alpha),
            ("iterations", self.iterations),
            ("k", self.neighbors),
            ("shrink", self.shrink),
            ("weight", self.weight),
            ("session_gap", self.session_gap),
            ("session_weight", self.session_weight),
            ("session_decay", self.session_decay),
            ("rating_confidence", self.rating_confidence.then_some(1.0)),
        ];
        pairs
            .into_iter()
            .filter_map(|(n, v)| v.map(|v| (n.to_owned(), v)))
            .collect()
    }

    fn is_topn(&self) -> bool {
        self.train.is_some() || self.test.is_some() || self.holdout_per_user.is_some()
    }
}

/// `eval recs`.
pub fn eval(ctx: &Ctx, args: &EvalRecsArgs) -> anyhow::Result<()> {
    if !args.is_topn() {
        if args.ratings.is_none() {
            bail!(
                "give --train FILE --test FILE (top-N), --ratings FILE --holdout-per-user F (top-N), or --ratings FILE [--folds N] (rating prediction)"
            );
        }
        return crate::cmd::rating::eval_rating(ctx, args);
    }
    if args.folds.is_some() {
        bail!(
            "--folds is for rating prediction; top-N evaluation uses --train/--test or --holdout-per-user"
        );
    }
    let format = args.ratings_format()?;
    let data = match (
        &args.train,
        &args.test,
        &args.ratings,
        args.holdout_per_user,
    ) {
        (Some(tr), Some(te), None, None) => erecs::load_split(tr, te, format)?,
        (None, None, Some(r), Some(h)) => erecs::load_holdout(r, h, args.seed, format)?,
        (Some(_), None, _, _) | (None, Some(_), _, _) => bail!("--train and --test go together"),
        (None, None, None, Some(_)) => bail!("--holdout-per-user needs --ratings FILE"),
        _ => bail!("use either --train/--test or --ratings with --holdout-per-user, not both"),
    };
    let algo = args.algo.clone().unwrap_or_else(|| "auto".to_owned());
    let overrides = args.topn_overrides();
    let search = if algo == "auto" {
        if args.grid.is_some() || !overrides.is_empty() {
            bail!(
                "--algo auto chooses its own parameters; use --algo NAME with --grid or parameter flags"
            );
        }
        erecs::Search::Auto
    } else {
        let mut base = AlgoParams::default_for(&algo)?.with_seed(args.seed);
        for (n, v) in &overrides {
            base.set(n, *v).with_context(|| format!("--algo {algo}"))?;
        }
        match &args.grid {
            Some(g) => erecs::Search::Grid(select::expand_grid(&base, &select::parse_grid(g)?)?),
            None => erecs::Search::Fixed(base),
        }
    };
    let validation = match args.inner_splits {
        Some(splits) => select::Validation {
            fraction: args
                .validation
                .unwrap_or(select::DEFAULT_VALIDATION_FRACTION),
            splits,
        },
        None => select::Validation::default_for(
            data.train.by_user.nnz(),
            data.train.by_user.n_cols,
            args.validation,
        ),
    };
    let rep = erecs::eval_topn(
        &data,
        &search,
        args.k,
        validation,
        args.seed,
        ctx.progress(),
    )?;
    let k = args.k;
    let mut out = serde_json::Map::new();
    out.insert(format!("precision@{k}"), json!(rep.report.precision));
    out.insert(format!("recall@{k}"), json!(rep.report.recall));
    out.insert(format!("ndcg@{k}"), json!(rep.report.ndcg));
    out.insert(format!("map@{k}"), json!(rep.report.map));
    out.insert("coverage".into(), json!(rep.report.coverage));
    out.insert("fit_seconds".into(), json!(rep.fit_seconds));
    out.insert("score_all_seconds".into(), json!(rep.score_all_seconds));
    out.insert("select_seconds".into(), json!(rep.select_seconds));
    out.insert("algo".into(), json!(rep.params.name()));
    out.insert("params".into(), serde_json::to_value(&rep.params)?);
    out.insert("k".into(), json!(k));
    out.insert("users_evaluated".into(), json!(rep.report.users));
    out.insert("users".into(), json!(rep.n_users));
    out.insert("items".into(), json!(rep.n_items));
    out.insert("train_interactions".into(), json!(rep.n_train));
    out.insert("test_interactions".into(), json!(rep.n_test));
    out.insert("duplicates".into(), json!(data.duplicates));
    out.insert("seed".into(), json!(args.seed));
    if let Some(sel) = &rep.selection {
        let trials: Vec<Value> = sel
            .trials
            .iter()
            .map(|t| {
                json!({
                    "algo": t.params.name(),
                    "params": t.params,
                    "validation_ndcg": t.report.map(|r| r.ndcg),
                    "fit_seconds": t.fit_seconds,
                    "error": t.error,
                })
            })
            .collect();
        out.insert(
            "selection".into(),
            json!({
                "chosen_on": chosen_on(validation, args.seed),
                "validation_fraction": validation.fraction,
                "inner_splits": validation.splits,
                "validation_ndcg": sel.best_report.ndcg,
                "candidates": trials,
            }),
        );
    }
    let v = Value::Object(out);
    if args.json {
        return crate::ctx::print_json(&v);
    }
    println!(
        "top-{k} evaluation: {} users, {} items, {} train / {} test interactions",
        rep.n_users, rep.n_items, rep.n_train, rep.n_test
    );
    if let Some(sel) = &rep.selection {
        println!(
            "chosen on {} of the TRAIN data ({} candidates): {} (validation nDCG@{k} {:.4})",
            match validation.splits {
                1 => "a validation split".to_owned(),
                n => format!("{n} validation splits"),
            },
            sel.trials.len(),
            serde_json::to_string(&sel.best)?,
            sel.best_report.ndcg
        );
    } else {
        println!("configuration: {}", serde_json::to_string(&rep.params)?);
    }
    println!(
        "  P@{k} {:.4}  R@{k} {:.4}  nDCG@{k} {:.4}  MAP@{k} {:.4}  coverage {:.3}",
        rep.report.precision,
        rep.report.recall,
        rep.report.ndcg,
        rep.report.map,
        rep.report.coverage
    );
    println!(
        "  fit {:.3} s, score all users {:.3} s",
        rep.fit_seconds, rep.score_all_seconds
    );
    Ok(())
}

/// `infogap train recs`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainRecsArgs {
    /// Algorithm (popularity, item-knn, user-knn, seq-knn, session-knn, ials, ease,
    /// session-ease, gf-cf, blend) or `auto` (chosen on an inner holdout of the
    /// store's data).
    #[arg(long, default_value = "auto")]
    pub algo: String,
    /// Parameter overrides `name=value[,name=value]` (e.g. `lambda=300`).
    #[arg(long)]
    pub set: Option<String>,
    /// Cut-off of the holdout metrics.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Weight of a cart event (a purchase counts 1).
    #[arg(long, default_value_t = 0.5)]
    pub cart_weight: f32,
    /// Weight of a view event.
    #[arg(long, default_value_t = 0.1)]
    pub view_weight: f32,
    /// Weight of a rating.
    #[arg(long, default_value_t = 1.0)]
    pub rating_weight: f32,
    /// Exponential time decay: half-life in days (none by default).
    #[arg(long)]
    pub half_life_days: Option<f64>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// How a search chose, for the JSON report.
fn chosen_on(v: select::Validation, seed: u64) -> String {
    match v.splits {
        1 => format!(
            "per-user holdout of {} of the training data (seed {seed})",
            v.fraction
        ),
        n => format!(
            "mean of {n} disjoint per-user holdouts of {} of the training data (seed {seed})",
            v.fraction
        ),
    }
}

fn parse_set(s: &Option<String>) -> anyhow::Result<Vec<(String, f64)>> {
    let Some(s) = s else { return Ok(Vec::new()) };
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p
                .split_once('=')
                .with_context(|| format!("--set {p:?}: expected name=value"))?;
            let v: f64 = v
                .trim()
                .parse()
                .with_context(|| format!("--set {p:?}: {v:?} is not a number"))?;
            Ok((n.trim().to_owned(), v))
        })
        .collect()
}

fn signals(args: &TrainRecsArgs) -> SignalConfig {
    SignalConfig::with_weights(
        args.cart_weight,
        args.view_weight,
        args.rating_weight,
        args.half_life_days,
    )
}

/// `train recs`.
pub fn train(ctx: &Ctx, args: &TrainRecsArgs) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    let opts = TrainOptions {
        algo: args.algo.clone(),
        params: parse_set(&args.set)?,
        signals: signals(args),
        seed: args.seed,
        k: args.k,
        progress: ctx.progress(),
    };
    let rep = erecs::train(&engine, &opts)?;
    let v = train_json(&rep);
    if args.json {
        return crate::ctx::print_json(&v);
    }
    print_train(&rep);
    Ok(())
}

fn train_json(rep: &erecs::TrainReport) -> Value {
    let k = rep.holdout.k;
    json!({
        "version": rep.version,
        "algo": rep.params.name(),
        "params": rep.params,
        "customers": rep.customers,
        "products": rep.products,
        "interactions": rep.interactions,
        "fit_seconds": rep.fit_seconds,
        "candidates_tried": rep.candidates_tried,
        "holdout": {
            format!("precision@{k}"): rep.holdout.precision,
            format!("recall@{k}"): rep.holdout.recall,
            format!("ndcg@{k}"): rep.holdout.ndcg,
            format!("map@{k}"): rep.holdout.map,
            "coverage": rep.holdout.coverage,
            "users": rep.holdout.users,
        },
    })
}

fn print_train(rep: &erecs::TrainReport) {
    let k = rep.holdout.k;
    println!(
        "recs model v{} saved: {} on {} customers × {} products ({} interactions), fit {:.3} s",
        rep.version,
        rep.params.name(),
        rep.customers,
        rep.products,
        rep.interactions,
        rep.fit_seconds
    );
    println!(
        "  inner holdout (20% of each customer's items, {} candidate(s)): nDCG@{k} {:.3}  P@{k} {:.3}  R@{k} {:.3}",
        rep.candidates_tried, rep.holdout.ndcg, rep.holdout.precision, rep.holdout.recall
    );
}

/// `infogap recommend`.
#[derive(Debug, Clone, clap::Args)]
pub struct RecommendArgs {
    /// The customer: an id of a source namespace, an email, a phone, `ns:id` or `#ID`.
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub customer: Option<String>,
    /// Recommend for every customer of the store and write the rows to `--out` (CSV).
    #[arg(long, requires = "out")]
    pub all: bool,
    /// The CSV file of `--all` (customer, customer_id, rank, product, name, category, score, source).
    #[arg(long, value_name = "FILE", requires = "all")]
    pub out: Option<std::path::PathBuf>,
    /// Namespace of the customer id.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Number of recommendations.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Name, for each recommendation, the customer's own items that contributed most.
    #[arg(long)]
    pub explain: bool,
    /// Also recommend products the customer already has.
    #[arg(long)]
    pub include_seen: bool,
    /// Only products of this category.
    #[arg(long)]
    pub category: Option<String>,
    /// Never these product keys (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Only these product keys (comma-separated allow list).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `recommend`.
pub fn recommend(ctx: &Ctx, args: &RecommendArgs) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    let opts = RecommendOptions {
        k: args.k,
        include_seen: args.include_seen,
        explain: args.explain,
        category: args.category.clone(),
        deny: args.exclude.clone(),
        allow: args.only.clone(),
    };
    let Some(customer) = args.customer.as_deref() else {
        let out = args
            .out
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("--all needs --out FILE"))?;
        let access = ctx.access(&engine, Action::RecommendationsRead)?;
        let rep = erecs::recommend_all(&engine, &access, &opts, out, ctx.progress())?;
        if args.json {
            return crate::ctx::print_json(&rep);
        }
        println!(
            "{} rows for {} customers written to {} (model v{} {}: {} from the model, {} folded in, {} popularity fallback), scored in {:.2} s",
            rep.rows,
            rep.customers,
            rep.out,
            rep.model_version,
            rep.algo,
            rep.in_training,
            rep.folded_in,
            rep.fallback,
            rep.score_seconds
        );
        let p = &rep.popular_for_consent;
        if p.total() > 0 {
            println!(
                "{} customers got the non-personal popular list (source popular-consent) for lack of {} consent: {} withdrawn, {} never granted",
                p.total(),
                p.purpose,
                p.withdrawn,
                p.not_granted
            );
        }
        return Ok(());
    };
    let access = ctx.access(&engine, Action::RecommendationsRead)?;
    let id = infogap_engine::report::resolve_key(&engine, customer, args.namespace.as_deref())?;
    let shared = engine.share_recommendations(&access, None, &erecs::load(&engine)?, id, &opts)?;
    if args.json {
        return crate::ctx::print_json(&shared);
    }
    print_answer(&shared.answer);
    Ok(())
}

fn product_name(p: &erecs::ProductLabel) -> String {
    match (&p.name, &p.category) {
        (Some(n), Some(c)) => format!("{} {n} [{c}]", p.key),
        (Some(n), None) => format!("{} {n}", p.key),
        (None, Some(c)) => format!("{} [{c}]", p.key),
        (None, None) => p.key.clone(),
    }
}

fn print_answer(ans: &erecs::RecsAnswer) {
    let how = if let Some(why) = &ans.reason {
        format!("not personalized ({why}): most popular products")
    } else if ans.fallback {
        "no history: most popular products (fallback)".to_owned()
    } else if ans.in_training {
        format!("{} from {} items of history", ans.algo, ans.history_items)
    } else {
        format!(
            "{} folded in from {} current items (not in the training data)",
            ans.algo, ans.history_items
        )
    };
    println!("{} (model v{}): {how}", ans.customer, ans.model_version);
    for it in &ans.items {
        println!(
            "  {:>2}. {}  score {:.4}",
            it.rank,
            product_name(&it.product),
            it.score
        );
        if let Some(b) = it.because.as_ref().filter(|b| !b.is_empty()) {
            let why: Vec<String> = b.iter().map(|x| product_name(&x.product)).collect();
            println!("      because: {}", why.join("; "));
        }
    }
}

/// The recommendations part of `quickstart`: trains (auto) and shows a few
/// customers' recommendations with explanations.
pub fn quickstart_section(
    ctx: &Ctx,
    engine: &infogap_engine::Engine,
    json: bool,
) -> anyhow::Result<Value> {
    let opts = TrainOptions {
        algo: "auto".into(),
        params: Vec::new(),
        signals: SignalConfig::default(),
        seed: 0,
        k: 10,
        progress: false,
    };
    let rep = erecs::train(engine, &opts)?;
    let loaded = erecs::load(engine)?;
    // A few customers with the most history.
    let h = &loaded.saved.histories;
    let mut rows: Vec<usize> = (0..h.n_rows).collect();
    rows.sort_by_key(|&r| (std::cmp::Reverse(h.row_len(r)), r));
    let ropts = RecommendOptions {
        k: 5,
        explain: true,
        ..Default::default()
    };
    let access = ctx.access(engine, Action::RecommendationsRead)?;
    let mut answers = Vec::new();
    for &r in rows.iter().take(3) {
        let Some(id) = loaded.saved.users.id(r as u32) else {
            continue;
        };
        let Ok(id) = id.parse::<i64>() else { continue };
        answers.push(
            engine
                .share_recommendations(&access, None, &loaded, id, &ropts)?
                .answer,
        );
    }
    if !json {
        println!("== Recommendations ==");
        print_train(&rep);
        for a in &answers {
            print_answer(a);
        }
    }
    Ok(json!({ "train": train_json(&rep), "examples": answers }))
}
