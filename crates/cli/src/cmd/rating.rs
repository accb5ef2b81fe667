//! Rating-prediction evaluation: `infogap eval recs --ratings FILE --algo ALGO
//! --folds 5 --seed 0 [--grid SPEC] [--format F] --json`, reached from
//! `eval recs` (the top-N side routes here when `--ratings` is given).
//!
//! Protocol (the same as Surprise's `KFold(shuffle=True)`): the ratings are
//! shuffled with the seed and cut into `folds` parts; each part is the test
//! set once, the model is fitted on the rest. With `--grid` or `--algo auto`,
//! the choice of parameters/algorithm is made inside each fold on a
//! validation split carved from that fold's TRAINING part only (10 %), then
//! the chosen configuration is refitted on the whole training part. The test
//! part is never looked at until the final predictions.
//!
//! JSON fields: `rmse`, `mae`, `rmse_std`, `mae_std` (population std over
//! folds), `fit_seconds_per_fold` (wall time of fitting the final model),
//! `fit_cpu_seconds_per_fold` (its CPU time over all threads, Linux),
//! `predict_seconds_per_fold`,
//! `select_seconds_per_fold` (inner-validation search; 0 for a fixed
//! algorithm), `algo`, `params` (the configuration chosen most often),
//! `chosen` (per fold), `folds`, `duplicates`, `ratings`, `users`, `items`,
//! `format`, `seed`, `per_fold`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use infogap_ingest::ratings::{RatingFormat, read_ratings};
use infogap_models::metrics::rating::{mae, mean_std, rmse};
use infogap_models::recs::rating::{
    AUTO_TOLERANCE, RatingAlgo, RatingData, auto_candidates, choose, complement, expand_grid,
    grid_applies, kfold, parse_grid,
};
use serde_json::{Value, json};

use crate::Ctx;

/// Everything a rating evaluation needs (filled from `eval recs`' flags).
#[derive(Debug, Clone)]
pub struct RatingEvalOptions {
    /// The ratings file.
    pub ratings: PathBuf,
    /// Forced format (`None` = auto-detect).
    pub format: Option<RatingFormat>,
    /// Algorithm name (see `RATING_ALGORITHMS`) or `auto`.
    pub algo: String,
    /// Number of folds (≥ 2).
    pub folds: usize,
    /// Seed of the split and of the models.
    pub seed: u64,
    /// `key=v1,v2;key2=…` hyper-parameter grid.
    pub grid: Option<String>,
    /// Share of each fold's training part used as the inner validation split.
    pub val_frac: f64,
    /// Parameter overrides (`factors`, `reg`, `lr`, `epochs`, `k`, `shrink`, …).
    pub overrides: Vec<(String, f64)>,
}

/// `eval recs` in rating mode: runs the evaluation and prints it.
pub fn eval_rating(ctx: &Ctx, args: &crate::cmd::recs::EvalRecsArgs) -> anyhow::Result<()> {
    let opts = options_from(args)?;
    let v = run_rating_eval(&opts, ctx.progress())?;
    if json_flag(args) {
        crate::ctx::print_json(&v)
    } else {
        print_human(&v);
        Ok(())
    }
}

/// Maps `eval recs`' flags to the rating evaluation: `--algo` defaults to
/// `auto`, `--folds` to 5, `--validation` to 0.1; `--factors`, `--reg`,
/// `--lr`, `--epochs`, `--neighbors` (kNN `k`) and `--shrink` override the
/// chosen algorithm's defaults (with `auto`: of every candidate that has them).
fn options_from(args: &crate::cmd::recs::EvalRecsArgs) -> anyhow::Result<RatingEvalOptions> {
    let ratings = args
        .ratings
        .clone()
        .ok_or_else(|| anyhow::anyhow!("--ratings FILE is required"))?;
    let mut overrides = Vec::new();
    for (k, v) in [
        ("factors", args.factors),
        ("reg", args.reg),
        ("lr", args.lr),
        ("epochs", args.epochs.map(|e| e as f64)),
        ("k", args.neighbors),
        ("shrink", args.shrink),
    ] {
        if let Some(v) = v {
            overrides.push((k.to_string(), v));
        }
    }
    for (flag, given) in [
        ("--lambda", args.lambda.is_some()),
        ("--dropout", args.dropout.is_some()),
        ("--alpha", args.alpha.is_some()),
        ("--iterations", args.iterations.is_some()),
        ("--weight", args.weight.is_some()),
        ("--inner-splits", args.inner_splits.is_some()),
    ] {
        if given {
            anyhow::bail!("{flag} is a top-N parameter; rating prediction does not use it");
        }
    }
    Ok(RatingEvalOptions {
        ratings,
        format: args.ratings_format()?,
        algo: args.algo.clone().unwrap_or_else(|| "auto".into()),
        folds: args.folds.unwrap_or(5),
        seed: args.seed,
        grid: args.grid.clone(),
        val_frac: args.validation.unwrap_or(0.1),
        overrides,
    })
}

fn json_flag(args: &crate::cmd::recs::EvalRecsArgs) -> bool {
    args.json
}

fn print_human(v: &Value) {
    let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    println!(
        "{} on {} ({} ratings, {} users, {} items, {} duplicates), {}-fold CV, seed {}",
        v["algo"].as_str().unwrap_or("?"),
        v["file"].as_str().unwrap_or("?"),
        v["ratings"],
        v["users"],
        v["items"],
        v["duplicates"],
        v["folds"],
        v["seed"]
    );
    println!(
        "  RMSE {:.4} ± {:.4}   MAE {:.4} ± {:.4}",
        f("rmse"),
        f("rmse_std"),
        f("mae"),
        f("mae_std")
    );
    println!(
        "  fit {:.4} s/fold   predict {:.4} s/fold   selection {:.4} s/fold",
        f("fit_seconds_per_fold"),
        f("predict_seconds_per_fold"),
        f("select_seconds_per_fold")
    );
    if let Some(ch) = v["chosen"].as_array() {
        for (k, c) in ch.iter().enumerate() {
            println!("  fold {}: {}", k + 1, c.as_str().unwrap_or("?"));
        }
    }
}

/// CPU seconds used so far by all threads of this process (Linux:
/// `/proc/self/task/*/schedstat`, nanosecond resolution); `None` elsewhere.
/// Reported beside wall time because the benchmark machine is shared: CPU
/// time is what a quiet machine's wall time would be for 1-thread code.
fn process_cpu_seconds() -> Option<f64> {
    let mut ns: u64 = 0;
    for e in std::fs::read_dir("/proc/self/task").ok()? {
        let p = e.ok()?.path().join("schedstat");
        let s = std::fs::read_to_string(p).ok()?;
        ns += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 * 1e-9)
}

/// Reads the file and turns it into dense ids.
fn load(
    path: &Path,
    format: Option<RatingFormat>,
) -> anyhow::Result<(RatingData, infogap_ingest::ratings::RatingsFile)> {
    let f = read_ratings(path, format)
        .with_context(|| format!("reading ratings {}", path.display()))?;
    let data = RatingData::new(
        f.users.len(),
        f.items.len(),
        f.rows.iter().map(|r| r.user).collect(),
        f.rows.iter().map(|r| r.item).collect(),
        f.rows.iter().map(|r| r.rating).collect(),
    )?;
    Ok((data, f))
}

/// Runs the k-fold evaluation and returns the JSON report.
pub fn run_rating_eval(opts: &RatingEvalOptions, progress: bool) -> anyhow::Result<Value> {
    let (data, file) = load(&opts.ratings, opts.format)?;
    if !(opts.val_frac > 0.0 && opts.val_frac < 1.0) {
        anyhow::bail!("--val-frac must be in (0, 1), got {}", opts.val_frac);
    }
    let grid = match &opts.grid {
        Some(g) => Some(parse_grid(g).context("--grid")?),
        None => None,
    };
    let auto = opts.algo.eq_ignore_ascii_case("auto");
    // Flag overrides: strict for a named algorithm, "where it applies" for auto.
    let apply = |mut a: RatingAlgo, strict: bool| -> anyhow::Result<RatingAlgo> {
        for (k, v) in &opts.overrides {
            let mut b = a.clone();
            match b.set(k, *v) {
                Ok(()) => a = b,
                Err(e) if strict => {
                    return Err(anyhow::Error::new(e).context(format!("--algo {}", a.name())));
                }
                Err(_) => {}
            }
        }
        Ok(a)
    };
    // The candidates each fold chooses from (None = a fixed configuration).
    let candidates: Option<Vec<RatingAlgo>> = if auto {
        let mut c = auto_candidates()
            .into_iter()
            .map(|a| apply(a, false))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if let Some(g) = &grid {
            let mut out = Vec::new();
            for a in c.drain(..) {
                if grid_applies(&a, g) {
                    out.extend(expand_grid(&a, g)?);
                } else {
                    out.push(a);
                }
            }
            // Keep the list short: drop exact duplicates.
            out.dedup();
            c = out;
        }
        Some(c)
    } else {
        let base = apply(RatingAlgo::default_for(&opts.algo)?, true)?;
        match &grid {
            Some(g) => {
                Some(expand_grid(&base, g).with_context(|| format!("--grid for {}", base.name()))?)
            }
            None => None,
        }
    };
    let fixed = match &candidates {
        None => Some(apply(RatingAlgo::default_for(&opts.algo)?, true)?),
        Some(_) => None,
    };
    // auto trades ≤ 0.25 % of validation RMSE for a cheaper model; a grid takes the best.
    let tolerance = if auto { AUTO_TOLERANCE } else { 0.0 };
    let folds = kfold(data.len(), opts.folds, opts.seed)?;
    let mut per_fold = Vec::with_capacity(folds.len());
    let (mut rmses, mut maes) = (Vec::new(), Vec::new());
    let (mut fit_t, mut pred_t, mut sel_t) = (0f64, 0f64, 0f64);
    let (mut fit_cpu_t, mut cpu_known) = (0f64, true);
    let mut chosen_algos: Vec<RatingAlgo> = Vec::new();
    for (k, test) in folds.iter().enumerate() {
        if progress {
            eprint!("\rfold {}/{} …", k + 1, folds.len());
        }
        let train = data.subset(&complement(data.len(), test));
        let testd = data.subset(test);
        let fold_seed = opts.seed.wrapping_add(k as u64);
        let t0 = Instant::now();
        let (algo, trials) = match (&fixed, &candidates) {
            (Some(a), _) => (a.clone(), Vec::new()),
            (None, Some(c)) => {
                let ch = choose(&train, c, auto, opts.val_frac, tolerance, fold_seed)?;
                (ch.algo, ch.trials)
            }
            (None, None) => unreachable!("either fixed or candidates"),
        };
        let select_s = t0.elapsed().as_secs_f64();
        let c1 = process_cpu_seconds();
        let t1 = Instant::now();
        let model = algo.fit(&train, fold_seed)?;
        let fit_s = t1.elapsed().as_secs_f64();
        let fit_cpu = match (c1, process_cpu_seconds()) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        let t2 = Instant::now();
        let pred = model.predict_many(&testd.users, &testd.items);
        let pred_s = t2.elapsed().as_secs_f64();
        let (r, m) = (rmse(&pred, &testd.ratings), mae(&pred, &testd.ratings));
        rmses.push(r);
        maes.push(m);
        fit_t += fit_s;
        if let Some(c) = fit_cpu {
            fit_cpu_t += c;
        } else {
            cpu_known = false;
        }
        pred_t += pred_s;
        sel_t += select_s;
        per_fold.push(json!({
            "fold": k + 1,
            "rmse": r,
            "mae": m,
            "fit_seconds": fit_s,
            "fit_cpu_seconds": fit_cpu,
            "predict_seconds": pred_s,
            "select_seconds": select_s,
            "chosen": algo.label(),
            "blend_weights": model.blend_weights(),
            "validation": trials,
            "train_ratings": train.len(),
            "test_ratings": testd.len(),
        }));
        chosen_algos.push(algo);
    }
    if progress {
        eprintln!("\r{:40}\r", "");
    }
    let n = folds.len() as f64;
    let (rm, rs) = mean_std(&rmses);
    let (mm, ms) = mean_std(&maes);
    // The configuration chosen most often (first on ties).
    let mut best = 0;
    let mut best_count = 0;
    for (a, alg) in chosen_algos.iter().enumerate() {
        let c = chosen_algos.iter().filter(|b| *b == alg).count();
        if c > best_count {
            best = a;
            best_count = c;
        }
    }
    let mode = &chosen_algos[best];
    Ok(json!({
        "rmse": rm,
        "mae": mm,
        "rmse_std": rs,
        "mae_std": ms,
        "fit_seconds_per_fold": fit_t / n,
        "fit_cpu_seconds_per_fold": if cpu_known { Some(fit_cpu_t / n) } else { None },
        "predict_seconds_per_fold": pred_t / n,
        "select_seconds_per_fold": sel_t / n,
        "algo": opts.algo,
        "chosen_algo": mode.name(),
        "params": serde_json::to_value(mode)?,
        "chosen": chosen_algos.iter().map(|a| a.label()).collect::<Vec<_>>(),
        "grid": opts.grid,
        "tolerance": tolerance,
        "validation_share": opts.val_frac,
        "folds": folds.len(),
        "seed": opts.seed,
        "file": opts.ratings.display().to_string(),
        "format": file.format.map(|f| f.name()),
        "header": file.header,
        "duplicates": file.duplicates,
        "ratings": data.len(),
        "users": data.n_users,
        "items": data.n_items,
        "per_fold": per_fold,
    }))
}
