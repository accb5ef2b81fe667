//! Customer lifetime value on the store: fit BG/NBD + Gamma-Gamma on the
//! orders (one transaction per order, at the order's UTC day, for its
//! amount), save the fitted model as kind `clv`, and rank customers by
//! discounted CLV.
//!
//! The models and the summary builder are pure (`infogap_models::clv`); this
//! module only turns the store's [`Dataset`] into transactions, keeps the
//! mapping between dense indices and store customer ids, and persists the
//! model.

use std::time::Instant;

use chrono::NaiveDate;
use infogap_models::clv::{
    BgNbd, BgNbdFit, ClvModel, CustomerSummary, GammaGamma, GammaGammaFit, TimeUnit, Transaction,
    summarize,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Dataset, Engine, EngineError};

/// Model kind under which the CLV model is saved.
pub const MODEL_KIND: &str = "clv";

const DAY: i64 = 86_400;

/// The date of a day number (days since 1970-01-01), as `YYYY-MM-DD`.
pub fn day_to_date(day: i64) -> String {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|d| d.checked_add_signed(chrono::Duration::days(day)))
        .map_or_else(
            || format!("day {day}"),
            |d| d.format("%Y-%m-%d").to_string(),
        )
}

/// The store's orders as CLV transactions, with the store customer id of
/// every dense index. Orders without a time are skipped (their count is
/// returned third).
pub fn transactions(ds: &Dataset) -> (Vec<Transaction>, Vec<i64>, usize) {
    let mut ids: Vec<i64> = ds
        .orders
        .iter()
        .filter(|o| o.time.is_some())
        .map(|o| o.customer)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut skipped = 0;
    let tx = ds
        .orders
        .iter()
        .filter_map(|o| {
            let Some(t) = o.time else {
                skipped += 1;
                return None;
            };
            let customer = ids.binary_search(&o.customer).ok()?;
            Some(Transaction {
                customer,
                day: t.div_euclid(DAY),
                amount: o.amount,
            })
        })
        .collect();
    (tx, ids, skipped)
}

/// What `train clv` produced.
#[derive(Debug, Clone, Serialize)]
pub struct ClvTrainReport {
    /// Version of the saved model.
    pub version: i64,
    /// BG/NBD fit.
    pub bgnbd: BgNbdFit,
    /// Gamma-Gamma fit.
    pub gamma_gamma: GammaGammaFit,
    /// Last day of the calibration period (`YYYY-MM-DD`).
    pub calibration_end: String,
    /// Time unit of the model.
    pub time_unit: TimeUnit,
    /// Orders skipped because they have no time.
    pub orders_without_time: usize,
    /// Seconds spent in the two fits.
    pub fit_seconds: f64,
    /// Fit health: what did not go as it should, and what was done instead.
    pub warnings: Vec<String>,
}

impl ClvTrainReport {
    /// The report as JSON (the same `bgnbd` / `gamma_gamma` fields as `eval clv`).
    pub fn to_json(&self) -> serde_json::Value {
        let p = &self.bgnbd.params;
        let g = &self.gamma_gamma.params;
        json!({
            "version": self.version,
            "bgnbd": {"r": p.r, "alpha": p.alpha, "a": p.a, "b": p.b, "log_likelihood": self.bgnbd.log_likelihood},
            "gamma_gamma": {"p": g.p, "q": g.q, "gamma": g.gamma},
            "customers": self.bgnbd.customers,
            "repeaters": self.bgnbd.repeaters,
            "calibration_end": self.calibration_end,
            "time_unit": self.time_unit,
            "orders_without_time": self.orders_without_time,
            "fit_seconds": self.fit_seconds,
            "warnings": self.warnings,
        })
    }
}

/// The blob saved in the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredClv {
    /// Fitted parameters and time unit.
    pub model: ClvModel,
    /// Calibration end (day number) the model was fitted with.
    pub calibration_end_day: i64,
}

/// Both fits on a dataset, with what their health checks found.
#[derive(Debug, Clone)]
pub struct ClvFitted {
    /// The model to value customers with.
    pub model: ClvModel,
    /// BG/NBD fit.
    pub bgnbd: BgNbdFit,
    /// Gamma-Gamma fit.
    pub gamma_gamma: GammaGammaFit,
    /// Calibration end (day number).
    pub end: i64,
    /// Orders skipped because they have no time.
    pub skipped: usize,
    /// Seconds spent in the two fits.
    pub seconds: f64,
    /// Health warnings (non-convergence; the spend fallback when q ≤ 1).
    pub warnings: Vec<String>,
}

/// The health of the two fits, in words: a fit that stopped before its
/// gradient tolerance, and the spend fallback when the Gamma-Gamma q <= 1
/// (the model has no finite mean spend for customers without repeats; they
/// are valued at the observed mean repeat spend instead).
pub fn fit_warnings(bg: &BgNbdFit, gg: &GammaGammaFit) -> Vec<String> {
    let mut warnings = Vec::new();
    if !bg.converged {
        warnings.push(format!(
            "BG/NBD on {} customers stopped after {} iterations without reaching its gradient tolerance: \
             the parameters are the best found and may be imprecise",
            bg.customers, bg.iterations
        ));
    }
    if !gg.converged {
        warnings.push(format!(
            "Gamma-Gamma on {} repeat customers stopped after {} iterations without reaching its gradient tolerance: \
             the parameters are the best found and may be imprecise",
            gg.customers, gg.iterations
        ));
    }
    if gg.params.q <= 1.0 {
        warnings.push(spend_fallback_warning(gg.params.q, gg.observed_mean_spend));
    }
    warnings
}

fn spend_fallback_warning(q: f64, spend: f64) -> String {
    format!(
        "Gamma-Gamma q = {q:.4} <= 1: the model has no finite mean spend for customers without repeat purchases; \
         they are valued at the observed mean repeat spend {spend:.2}"
    )
}

/// Fits both models on a dataset. `calibration_end` is a day number (default:
/// the day of the latest order).
///
/// Health: a fit that stopped before its gradient tolerance is kept with a
/// warning (BFGS returns the best point found); when the Gamma-Gamma q ≤ 1 the
/// model has no finite mean spend for customers without repeat purchases, so
/// they are valued at the observed mean repeat spend, and a warning says so.
pub fn fit_dataset(
    ds: &Dataset,
    calibration_end: Option<i64>,
    unit: TimeUnit,
) -> Result<ClvFitted, EngineError> {
    let (tx, _ids, skipped) = transactions(ds);
    let Some(last) = tx.iter().map(|t| t.day).max() else {
        return Err(EngineError::Invalid(
            "the store has no dated orders to fit CLV on".into(),
        ));
    };
    let end = calibration_end.unwrap_or(last);
    let summaries = summarize(&tx, end, unit)?;
    if summaries.is_empty() {
        return Err(EngineError::Invalid(format!(
            "no orders on or before the calibration end {}",
            day_to_date(end)
        )));
    }
    let t0 = Instant::now();
    let bg = BgNbd::default().fit_summaries(&summaries)?;
    let gg = GammaGamma::default().fit_summaries(&summaries)?;
    let seconds = t0.elapsed().as_secs_f64();
    let g = &gg.params;
    if ![g.p, g.q, g.gamma].iter().all(|v| v.is_finite()) {
        // e.g. every repeat customer's orders have the same value: the
        // Gamma-Gamma likelihood keeps rising as its scale diverges
        return Err(EngineError::Invalid(
            "the spend model (Gamma-Gamma) cannot be fitted on these orders: the repeat customers' order values do not vary enough; CLV needs varying order values".into(),
        ));
    }
    let b = &bg.params;
    if ![b.r, b.alpha, b.a, b.b].iter().all(|v| v.is_finite()) {
        return Err(EngineError::Invalid(
            "the purchase model (BG/NBD) cannot be fitted on these orders: too few repeat purchases".into(),
        ));
    }
    let warnings = fit_warnings(&bg, &gg);
    let fallback_spend = (gg.params.q <= 1.0).then_some(gg.observed_mean_spend);
    let model = ClvModel {
        bgnbd: bg.params,
        gamma_gamma: gg.params,
        unit,
        fallback_spend,
    };
    Ok(ClvFitted {
        model,
        bgnbd: bg,
        gamma_gamma: gg,
        end,
        skipped,
        seconds,
        warnings,
    })
}

/// `infogap train clv`: fits on the store's orders and saves the model.
pub fn train(
    engine: &Engine,
    calibration_end: Option<i64>,
    unit: TimeUnit,
) -> Result<ClvTrainReport, EngineError> {
    let ds = engine.dataset()?;
    let fitted = fit_dataset(&ds, calibration_end, unit)?;
    let report = ClvTrainReport {
        version: 0,
        bgnbd: fitted.bgnbd,
        gamma_gamma: fitted.gamma_gamma,
        calibration_end: day_to_date(fitted.end),
        time_unit: unit,
        orders_without_time: fitted.skipped,
        fit_seconds: fitted.seconds,
        warnings: fitted.warnings,
    };
    crate::invariants::check("train clv", &report)?;
    let stored = StoredClv {
        model: fitted.model,
        calibration_end_day: fitted.end,
    };
    let blob = serde_json::to_vec(&stored)
        .map_err(|e| EngineError::Invalid(format!("serializing the model: {e}")))?;
    let params = json!({"calibration_end": day_to_date(fitted.end), "time_unit": unit});
    let metrics = json!({
        "log_likelihood": report.bgnbd.log_likelihood,
        "gamma_gamma_log_likelihood": report.gamma_gamma.log_likelihood,
        "customers": report.bgnbd.customers,
        "repeaters": report.bgnbd.repeaters,
        "warnings": report.warnings,
    });
    let rec = engine.save_model(MODEL_KIND, &params, &metrics, &blob)?;
    Ok(ClvTrainReport {
        version: rec.version,
        ..report
    })
}

/// One ranked customer.
#[derive(Debug, Clone, Serialize)]
pub struct RankedCustomer {
    /// Store customer id (left out of the analyst's pseudonymized lists).
    #[serde(skip_serializing_if = "crate::privacy::aggregate::withheld")]
    pub customer_id: i64,
    /// Display key.
    pub key: String,
    /// Repeat purchase days.
    pub frequency: u32,
    /// Recency tₓ in the model's time unit.
    pub recency: f64,
    /// Age T in the model's time unit.
    pub age: f64,
    /// Mean repeat-day spend.
    pub monetary: f64,
    /// Expected purchases over the horizon.
    pub expected_purchases: f64,
    /// P(alive).
    pub prob_alive: f64,
    /// Expected average spend per purchase.
    pub expected_spend: f64,
    /// Discounted CLV over the horizon.
    pub clv: f64,
}

/// Customers ranked by CLV.
#[derive(Debug, Clone, Serialize)]
pub struct ClvRanking {
    /// Model version used.
    pub model_version: i64,
    /// Day the histories end (`YYYY-MM-DD`): the latest order in the store.
    pub as_of: String,
    /// Horizon in months.
    pub horizon_months: u32,
    /// The horizon in the model's time unit (months × the unit's length of a
    /// month: 4.345 weeks, 30 days, as lifetimes' `customer_lifetime_value`):
    /// `expected_purchases` is E[Y(t)] at this t.
    pub horizon_time_units: f64,
    /// Time unit of recency, age and the horizon.
    pub time_unit: TimeUnit,
    /// Monthly discount rate.
    pub discount_rate: f64,
    /// The BG/NBD parameters used (so any value can be checked against another implementation).
    pub bgnbd: infogap_models::clv::BgNbdParams,
    /// The Gamma-Gamma parameters used.
    pub gamma_gamma: infogap_models::clv::GammaGammaParams,
    /// Customers scored.
    pub customers: usize,
    /// Sum of CLV over all scored customers.
    pub total_clv: f64,
    /// The top customers, highest CLV first.
    pub top: Vec<RankedCustomer>,
    /// Customers left out for lack of profiling consent, by reason.
    pub left_out: crate::privacy::consent::LeftOut,
    /// Whether keys are keyed-hash pseudonyms and ids left out.
    pub pseudonymized: bool,
    /// What the model could not do as it should (the spend fallback when q <= 1).
    pub warnings: Vec<String>,
}

/// What [`rank_dataset`] found.
#[derive(Debug, Clone)]
pub struct Ranked {
    /// The `top` highest CLVs, highest first.
    pub top: Vec<RankedCustomer>,
    /// Customers scored.
    pub customers: usize,
    /// Sum of CLV over them.
    pub total_clv: f64,
    /// Day the histories end (day number).
    pub as_of: i64,
    /// Repeat customers whose mean repeat spend is ≤ 0 (refunds), valued at
    /// the spend model's limit for vanishing spend.
    pub refunds: usize,
}

/// Scores every customer of a dataset with a model, histories ending on the
/// day of the latest order, and returns the `top` highest CLVs.
pub fn rank_dataset(
    ds: &Dataset,
    model: &ClvModel,
    top: usize,
    horizon_months: u32,
    discount_rate: f64,
) -> Result<Ranked, EngineError> {
    if !(discount_rate.is_finite() && discount_rate > -1.0) {
        return Err(EngineError::Invalid(format!(
            "discount rate {discount_rate} must be a number > -1"
        )));
    }
    let (tx, ids, _) = transactions(ds);
    let Some(as_of) = tx.iter().map(|t| t.day).max() else {
        return Err(EngineError::Invalid("the store has no dated orders".into()));
    };
    let summaries = summarize(&tx, as_of, model.unit)?;
    let values: Vec<(CustomerSummary, infogap_models::clv::CustomerValue)> = summaries
        .par_iter()
        .map(|s| (*s, model.value(s, horizon_months, discount_rate)))
        .collect();
    let total: f64 = values.iter().map(|v| v.1.clv).sum();
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].1.clv.total_cmp(&values[a].1.clv));
    let keys: std::collections::HashMap<i64, &str> = ds
        .customers
        .iter()
        .map(|c| (c.id, c.key.as_str()))
        .collect();
    let ranked = order
        .into_iter()
        .take(top)
        .map(|i| {
            let (s, v) = &values[i];
            let id = ids[s.customer];
            RankedCustomer {
                customer_id: id,
                key: keys
                    .get(&id)
                    .map_or_else(|| format!("#{id}"), |k| (*k).to_string()),
                frequency: s.frequency,
                recency: s.recency,
                age: s.age,
                monetary: s.monetary,
                expected_purchases: v.expected_purchases,
                prob_alive: v.prob_alive,
                expected_spend: v.expected_spend,
                clv: v.clv,
            }
        })
        .collect();
    let refunds = values
        .iter()
        .filter(|(s, _)| s.frequency > 0 && s.monetary <= 0.0)
        .count();
    Ok(Ranked {
        top: ranked,
        customers: values.len(),
        total_clv: total,
        as_of,
        refunds,
    })
}

/// `infogap clv --top N`: ranks the store's customers with the saved model.
pub fn rank(
    engine: &Engine,
    access: &crate::access::Access,
    top: usize,
    horizon_months: u32,
    discount_rate: f64,
) -> Result<ClvRanking, EngineError> {
    let Some(rec) = engine.load_model(MODEL_KIND)? else {
        return Err(EngineError::NotFound(
            "no CLV model in the store: run `infogap train clv` first".into(),
        ));
    };
    let stored: StoredClv = serde_json::from_slice(&rec.blob).map_err(|e| {
        EngineError::Invalid(format!(
            "the saved CLV model (version {}) is unreadable: {e}",
            rec.version
        ))
    })?;
    let ds = engine.dataset()?;
    let model = &stored.model;
    let Ranked {
        top: mut ranked,
        customers,
        total_clv,
        as_of,
        refunds,
    } = rank_dataset(&ds, model, usize::MAX, horizon_months, discount_rate)?;
    let left_out = crate::share::share_ranked_for(
        engine,
        access,
        infogap_core::privacy::PROFILING,
        "clv.read",
        &mut ranked,
        top,
        |r| r.customer_id,
        |r| &mut r.key,
    )?;
    let pseudonymized = crate::privacy::aggregate::pseudonymize(engine, access, &mut ranked)?;
    let top = ranked;
    let mut warnings: Vec<String> = model
        .fallback_spend
        .map(|v| spend_fallback_warning(model.gamma_gamma.q, v))
        .into_iter()
        .collect();
    if refunds > 0 {
        warnings.push(format!(
            "{refunds} customer{} whose repeat purchases net to a refund (mean repeat spend <= 0) {} valued as spending next to nothing: \
             the spend model is for positive amounts",
            if refunds == 1 { "" } else { "s" },
            if refunds == 1 { "is" } else { "are" }
        ));
    }
    let ranking = ClvRanking {
        model_version: rec.version,
        as_of: day_to_date(as_of),
        horizon_months,
        horizon_time_units: f64::from(horizon_months) * model.unit.per_month(),
        time_unit: model.unit,
        discount_rate,
        bgnbd: model.bgnbd,
        gamma_gamma: model.gamma_gamma,
        customers,
        total_clv,
        top,
        left_out,
        pseudonymized,
        warnings,
    };
    crate::invariants::check("clv", &ranking)?;
    Ok(ranking)
}

#[cfg(test)]
mod tests {
    use super::*;
    use infogap_core::dataset::{CustomerInfo, OrderFact};
    use rand::{Rng, SeedableRng};

    /// Customers with planted purchase rates: "loyal" ones buy weekly until
    /// the end, "lapsed" ones bought often but stopped long ago, "rare" ones
    /// buy every couple of months.
    fn dataset() -> Dataset {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut ds = Dataset::default();
        let start = 20_000 * DAY;
        let mut oid = 0;
        for c in 0..300i64 {
            ds.customers.push(CustomerInfo {
                id: 1000 + c,
                key: format!("crm:{c}"),
                attributes: Default::default(),
            });
            let (gap, stop) = match c % 3 {
                0 => (7, 364),  // loyal
                1 => (5, 120),  // lapsed after 4 months
                _ => (60, 364), // rare
            };
            let mut d = rng.random_range(0..30);
            while d <= stop {
                oid += 1;
                ds.orders.push(OrderFact {
                    id: oid,
                    customer: 1000 + c,
                    time: Some(start + d * DAY + 3600),
                    amount: 20.0
                        + rng.random_range(0.0..10.0)
                        + if c % 3 == 0 { 30.0 } else { 0.0 },
                    discount: 0.0,
                });
                d += gap + rng.random_range(0..3);
            }
        }
        ds.orders.push(OrderFact {
            id: 0,
            customer: 1000,
            time: None,
            amount: 1.0,
            discount: 0.0,
        });
        ds
    }

    #[test]
    fn ranks_loyal_customers_first_and_lapsed_as_likely_dead() {
        let ds = dataset();
        let ClvFitted {
            model,
            bgnbd: bg,
            end,
            skipped,
            ..
        } = fit_dataset(&ds, None, TimeUnit::Week).expect("fit");
        assert_eq!(skipped, 1);
        assert_eq!(bg.customers, 300);
        assert_eq!(
            day_to_date(end),
            day_to_date(ds.orders.iter().filter_map(|o| o.time).max().unwrap_or(0) / DAY)
        );
        let Ranked {
            top,
            customers: n,
            total_clv: total,
            ..
        } = rank_dataset(&ds, &model, 300, 12, 0.01).expect("rank");
        assert_eq!(n, 300);
        assert!(total > 0.0);
        // the top 50 are all loyal customers (c % 3 == 0)
        assert!(
            top[..50].iter().all(|r| (r.customer_id - 1000) % 3 == 0),
            "{:?}",
            &top[..5]
        );
        let alive = |k: i64| {
            let v: Vec<f64> = top
                .iter()
                .filter(|r| (r.customer_id - 1000) % 3 == k)
                .map(|r| r.prob_alive)
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!(alive(0) > 0.9, "loyal P(alive) {}", alive(0));
        assert!(alive(1) < 0.2, "lapsed P(alive) {}", alive(1));
        assert!(top.windows(2).all(|w| w[0].clv >= w[1].clv));
        assert!(top[0].key.starts_with("crm:"));
    }

    #[test]
    fn rejects_empty_store_and_bad_discount() {
        let ds = Dataset::default();
        assert!(matches!(
            fit_dataset(&ds, None, TimeUnit::Week),
            Err(EngineError::Invalid(_))
        ));
        let ds = dataset();
        let model = fit_dataset(&ds, None, TimeUnit::Week).expect("fit").model;
        assert!(rank_dataset(&ds, &model, 5, 12, f64::NAN).is_err());
    }

    #[test]
    fn a_spend_model_without_a_finite_mean_falls_back_and_says_so() {
        let ds = dataset();
        let mut fitted = fit_dataset(&ds, None, TimeUnit::Week).expect("fit");
        assert!(fitted.warnings.is_empty(), "{:?}", fitted.warnings);
        // q <= 1: the population mean spend p·γ/(q−1) does not exist
        fitted.gamma_gamma.params.q = 0.8;
        fitted.bgnbd.converged = false;
        let w = fit_warnings(&fitted.bgnbd, &fitted.gamma_gamma);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("BG/NBD on 300 customers stopped"), "{w:?}");
        assert!(w[1].contains("q = 0.8000 <= 1"), "{w:?}");
        let model = ClvModel {
            gamma_gamma: fitted.gamma_gamma.params,
            fallback_spend: Some(fitted.gamma_gamma.observed_mean_spend),
            ..fitted.model
        };
        let Ranked { top, total_clv, .. } = rank_dataset(&ds, &model, 300, 12, 0.01).expect("rank");
        assert!(total_clv.is_finite() && total_clv > 0.0);
        assert!(
            top.iter()
                .all(|c| c.expected_spend.is_finite() && c.clv >= 0.0)
        );
        // without the fallback, a customer with no repeat purchase has no finite value
        let no_fallback = ClvModel {
            fallback_spend: None,
            ..model
        };
        let s = infogap_models::clv::CustomerSummary {
            customer: 0,
            frequency: 0,
            recency: 0.0,
            age: 10.0,
            monetary: 0.0,
        };
        assert!(!no_fallback.value(&s, 12, 0.01).clv.is_finite());
        assert!(model.value(&s, 12, 0.01).clv.is_finite());
    }
}
