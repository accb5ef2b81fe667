//! Aggregates that leave the analyst role, and the analyst's pseudonymized
//! exports.
//!
//! Admin and analyst see exact figures. Every other role (marketing, sales,
//! support, department keys, and later dashboards and webhooks) gets
//! aggregates through this module: a [`GroupGuard`] merges every group
//! smaller than `[privacy] min_group_size` into one "Other (small groups)"
//! bucket and suppresses that bucket when it is still too small; with
//! `[privacy] dp_epsilon` set, [`Laplace`] noise is added to the released
//! counts and sums first (the guard then works on the noisy figures, which
//! is post-processing and keeps the guarantee). The output carries an
//! [`AggregateNote`] saying what was merged, suppressed and how much ε each
//! statistic spent.
//!
//! Differential privacy, precisely: neighbouring stores differ by one
//! person. A count changes by at most 1 (sensitivity 1). A sum (revenue)
//! is taken over each person's contribution clamped to `[0, B]`, where `B`
//! is `[privacy] dp_sum_bound` or [`DEFAULT_SUM_BOUND`] — a fixed number,
//! never derived from the data (a data-derived bound such as a percentile
//! would itself leak). Counts of disjoint groups (each person is in one
//! segment) compose in parallel, so the whole histogram of sizes costs one
//! share of ε; distinct statistics (sizes, revenue) compose sequentially,
//! and ε is split evenly between them. Noisy counts are rounded to integers
//! and clamped at 0; noisy sums are clamped at 0 (both post-processing).
//!
//! Pseudonyms ([`Pseudonyms`]): for the analyst role with
//! `[privacy] pseudonymize_analyst` on, exported customers are shown as
//! `p_` and 16 hex digits of HMAC-SHA256(store secret, "pseudonym v1" ‖ 0 ‖
//! id): stable within a store, not reversible without `<db>.secret`, and
//! not a customer id any endpoint accepts.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::access::Access;
use crate::keys::Secret;
use crate::{Engine, EngineError};

/// The label of the bucket small groups are merged into.
pub const OTHER: &str = "Other (small groups)";

/// The per-person clamp of summed amounts (revenue) under differential
/// privacy when `[privacy] dp_sum_bound` is not set.
pub const DEFAULT_SUM_BOUND: f64 = 1000.0;

/// The domain string of pseudonyms (a new version gives new pseudonyms).
const PSEUDONYM_DOMAIN: &str = "pseudonym v1";

/// Whether a role sees exact aggregates (admin and analyst do; every other
/// role, built-in or configured, gets protected ones).
pub fn sees_exact(a: &Access) -> bool {
    matches!(a.role.name.as_str(), "admin" | "analyst")
}

/// One group of an aggregate: a label, how many people, and sums over them.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    /// Label (segment, source, …).
    pub label: String,
    /// People in the group.
    pub count: usize,
    /// Sums over the group (revenue, …), in a fixed order per aggregate.
    pub sums: Vec<f64>,
}

/// The rows a [`GroupGuard`] lets through and what it did.
#[derive(Debug, Clone, PartialEq)]
pub struct Guarded {
    /// The groups shown: those of at least `min`, in their order, then the
    /// merged bucket when it is large enough.
    pub rows: Vec<GroupRow>,
    /// Labels of the groups merged into [`OTHER`] (or suppressed with it).
    pub merged: Vec<String>,
    /// How many groups were left out (merged and still too small).
    pub suppressed: usize,
    /// What happened, in words.
    pub note: String,
}

/// Never shows a group of fewer than `min` people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupGuard {
    /// Smallest group shown.
    pub min: usize,
}

impl GroupGuard {
    /// Merges the groups under `min` into [`OTHER`]; suppresses that bucket
    /// when it is itself under `min`.
    pub fn apply(&self, rows: Vec<GroupRow>) -> Guarded {
        let width = rows.iter().map(|r| r.sums.len()).max().unwrap_or(0);
        let mut other = GroupRow {
            label: OTHER.to_string(),
            count: 0,
            sums: vec![0.0; width],
        };
        let mut kept = Vec::new();
        let mut merged = Vec::new();
        for r in rows {
            if r.count >= self.min {
                kept.push(r);
            } else {
                other.count += r.count;
                for (acc, s) in other.sums.iter_mut().zip(&r.sums) {
                    *acc += s;
                }
                merged.push(r.label);
            }
        }
        let min = self.min;
        let (suppressed, note) = if merged.is_empty() {
            (0, format!("every group has at least {min}"))
        } else if other.count >= min {
            kept.push(other);
            (
                0,
                format!(
                    "{} group(s) under {min} merged into {OTHER:?}",
                    merged.len()
                ),
            )
        } else {
            (
                merged.len(),
                format!(
                    "{n} group(s) under {min} merged into {OTHER:?}; that group is still under {min}, so it is suppressed ({n} group(s) not shown)",
                    n = merged.len()
                ),
            )
        };
        Guarded {
            rows: kept,
            merged,
            suppressed,
            note,
        }
    }
}

/// The Laplace mechanism: a noise source for counts and sums of one ε.
#[derive(Debug)]
pub struct Laplace {
    /// The ε of each statistic this source noises (the caller splits the
    /// configured ε among statistics).
    pub epsilon: f64,
    rng: StdRng,
}

impl Laplace {
    /// Noise from the operating system's randomness (real outputs).
    pub fn new(epsilon: f64) -> Result<Laplace, EngineError> {
        Laplace::with_rng(epsilon, StdRng::from_os_rng())
    }

    /// Reproducible noise (tests only: a known seed gives known noise).
    pub fn seeded(epsilon: f64, seed: u64) -> Result<Laplace, EngineError> {
        Laplace::with_rng(epsilon, StdRng::seed_from_u64(seed))
    }

    fn with_rng(epsilon: f64, rng: StdRng) -> Result<Laplace, EngineError> {
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(EngineError::Invalid(format!(
                "[privacy] dp_epsilon must be a positive number, not {epsilon}"
            )));
        }
        Ok(Laplace { epsilon, rng })
    }

    /// One draw of Laplace(0, `scale`) by the inverse CDF.
    pub fn noise(&mut self, scale: f64) -> f64 {
        // u uniform in (-1/2, 1/2); 1 - 2|u| stays in (0, 1]
        let u: f64 = self.rng.random::<f64>() - 0.5;
        let tail = (1.0 - 2.0 * u.abs()).max(f64::MIN_POSITIVE);
        -scale * u.signum() * tail.ln()
    }

    /// A count (sensitivity 1) with Laplace(1/ε) noise, rounded, at least 0.
    pub fn count(&mut self, n: usize) -> usize {
        let v = n as f64 + self.noise(1.0 / self.epsilon);
        v.round().max(0.0) as usize
    }

    /// A sum of per-person contributions already clamped to `[0, bound]`
    /// (sensitivity `bound`) with Laplace(bound/ε) noise, at least 0.
    pub fn sum(&mut self, s: f64, bound: f64) -> f64 {
        (s + self.noise(bound / self.epsilon)).max(0.0)
    }
}

/// One statistic released under differential privacy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DpStatistic {
    /// What it is (`segment sizes`, `segment revenue`, …).
    pub statistic: String,
    /// The ε it spent (its share of the configured ε).
    pub epsilon: f64,
    /// How much one person can change it.
    pub sensitivity: f64,
    /// The Laplace scale, sensitivity / ε.
    pub scale: f64,
}

/// The differential privacy of an output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DpNote {
    /// Always `laplace`.
    pub mechanism: &'static str,
    /// The configured ε, spent in total by this output.
    pub epsilon: f64,
    /// The largest sensitivity among the statistics.
    pub sensitivity: f64,
    /// Each person's summed amount is clamped to `[0, sum_bound]`.
    pub sum_bound: f64,
    /// ε per statistic (sequential composition: they add up to `epsilon`).
    pub statistics: Vec<DpStatistic>,
}

impl DpNote {
    /// Splits `epsilon` evenly over the statistics, `(name, sensitivity)`.
    pub fn split(epsilon: f64, sum_bound: f64, stats: &[(&str, f64)]) -> DpNote {
        let each = epsilon / stats.len().max(1) as f64;
        DpNote {
            mechanism: "laplace",
            epsilon,
            sensitivity: stats.iter().map(|s| s.1).fold(0.0, f64::max),
            sum_bound,
            statistics: stats
                .iter()
                .map(|(name, sens)| DpStatistic {
                    statistic: name.to_string(),
                    epsilon: each,
                    sensitivity: *sens,
                    scale: sens / each,
                })
                .collect(),
        }
    }

    /// The ε of one statistic.
    pub fn epsilon_of(&self, statistic: &str) -> Option<f64> {
        self.statistics
            .iter()
            .find(|s| s.statistic == statistic)
            .map(|s| s.epsilon)
    }
}

/// How an aggregate was protected: attached to every aggregate output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggregateNote {
    /// Exact figures (admin and analyst).
    pub exact: bool,
    /// The smallest group shown (`None` when exact).
    pub min_group_size: Option<usize>,
    /// Groups merged into [`OTHER`].
    pub merged: Vec<String>,
    /// Groups not shown at all.
    pub suppressed: usize,
    /// Differential privacy, when on.
    pub dp: Option<DpNote>,
    /// What was done, in words (the text output prints it).
    pub note: String,
}

impl AggregateNote {
    /// The note of an exact output.
    pub fn exact(a: &Access) -> AggregateNote {
        AggregateNote {
            exact: true,
            min_group_size: None,
            merged: vec![],
            suppressed: 0,
            dp: None,
            note: format!("exact figures (role {})", a.role.name),
        }
    }

    /// One line for the text output.
    pub fn line(&self) -> String {
        match &self.dp {
            Some(dp) => format!(
                "privacy: {}; Laplace noise, ε = {} in total ({})",
                self.note,
                dp.epsilon,
                dp.statistics
                    .iter()
                    .map(|s| format!("{} ε {:.3}", s.statistic, s.epsilon))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => format!("privacy: {}", self.note),
        }
    }
}

/// Groups of people as a role outside analyst may see them, under the
/// store's `[privacy]` rules. `groups` gives each group's label and one
/// amount per member (revenue; clamped to `[0, bound]` under DP). With
/// `with_sums` the rows carry the group's sum of amounts, else only counts
/// are released. `what` names the two statistics in the DP note. Under DP
/// the counts and sums are noised first (OS randomness), then the guard
/// merges or suppresses small groups by the noisy counts.
pub fn protect_groups(
    engine: &Engine,
    groups: &[(String, Vec<f64>)],
    with_sums: bool,
    what: (&str, &str),
) -> Result<(Vec<GroupRow>, AggregateNote), EngineError> {
    let cfg = engine.privacy()?;
    let bound = cfg.dp_sum_bound.unwrap_or(DEFAULT_SUM_BOUND);
    let mut rows: Vec<GroupRow> = groups
        .iter()
        .map(|(label, members)| GroupRow {
            label: label.clone(),
            count: members.len(),
            sums: if with_sums {
                vec![members.iter().map(|v| v.clamp(0.0, bound)).sum()]
            } else {
                vec![]
            },
        })
        .collect();
    let dp = match cfg.dp_epsilon {
        None => {
            // no clamping without DP: exact sums
            for (r, (_, members)) in rows.iter_mut().zip(groups) {
                if with_sums {
                    r.sums = vec![members.iter().sum()];
                }
            }
            None
        }
        Some(eps) => {
            let stats: Vec<(&str, f64)> = if with_sums {
                vec![(what.0, 1.0), (what.1, bound)]
            } else {
                vec![(what.0, 1.0)]
            };
            let note = DpNote::split(eps, bound, &stats);
            let mut lap = Laplace::new(note.statistics[0].epsilon)?;
            for r in &mut rows {
                r.count = lap.count(r.count);
                for s in &mut r.sums {
                    *s = lap.sum(*s, bound);
                }
            }
            Some(note)
        }
    };
    let g = GroupGuard {
        min: cfg.min_group_size,
    }
    .apply(rows);
    let note = AggregateNote {
        exact: false,
        min_group_size: Some(cfg.min_group_size),
        merged: g.merged,
        suppressed: g.suppressed,
        note: g.note,
        dp,
    };
    Ok((g.rows, note))
}

/// Segment sizes, shares and revenue shares as the principal may see
/// them: exact for admin and analyst, else through [`protect_groups`]
/// (shares recomputed over the groups shown). Revenue shares only when
/// `show_revenue` (behaviour visible). Returns the customers counted, the
/// segments and the note.
pub fn shared_segments(
    engine: &Engine,
    a: &Access,
    report: &crate::analytics::SegmentsReport,
    customers: &[crate::analytics::CustomerSegment],
    show_revenue: bool,
) -> Result<(usize, Vec<crate::share::SharedSegment>, AggregateNote), EngineError> {
    use crate::share::SharedSegment;
    if sees_exact(a) {
        let segs = report
            .segments
            .iter()
            .map(|s| {
                SharedSegment::of(
                    report,
                    &s.name,
                    s.size,
                    s.share,
                    show_revenue.then_some(s.revenue_share),
                )
            })
            .collect();
        return Ok((report.customers, segs, AggregateNote::exact(a)));
    }
    let mut members: std::collections::HashMap<&str, Vec<f64>> = report
        .segments
        .iter()
        .map(|s| (s.name.as_str(), Vec::new()))
        .collect();
    for c in customers {
        if let Some(v) = members.get_mut(c.segment.as_str()) {
            v.push(c.monetary);
        }
    }
    let groups: Vec<(String, Vec<f64>)> = report
        .segments
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                members.remove(s.name.as_str()).unwrap_or_default(),
            )
        })
        .collect();
    let (rows, note) = protect_groups(
        engine,
        &groups,
        show_revenue,
        ("segment sizes", "segment revenue"),
    )?;
    let total: usize = rows.iter().map(|r| r.count).sum();
    let revenue: f64 = rows.iter().filter_map(|r| r.sums.first()).sum();
    let ratio = |x: f64, of: f64| if of > 0.0 { x / of } else { 0.0 };
    let segs = rows
        .iter()
        .map(|r| {
            SharedSegment::of(
                report,
                &r.label,
                r.count,
                ratio(r.count as f64, total as f64),
                show_revenue.then(|| ratio(r.sums.first().copied().unwrap_or(0.0), revenue)),
            )
        })
        .collect();
    Ok((total, segs, note))
}

/// One segment profile as a role outside analyst may see it.
#[derive(Debug, Clone, Serialize)]
pub struct SharedProfile {
    /// Name ([`OTHER`] for merged small segments).
    pub name: String,
    /// Customers (noisy under DP).
    pub size: usize,
    /// Share of the customers shown.
    pub share: f64,
    /// Share of the revenue shown (behaviour visible only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue_share: Option<f64>,
    /// Median days since the last purchase (not under DP, not for
    /// [`OTHER`]).
    pub median_recency_days: Option<f64>,
    /// Median number of orders (same).
    pub median_frequency: Option<f64>,
    /// Median spend (same, and behaviour visible only).
    pub median_monetary: Option<f64>,
    /// Top categories by spend (same).
    pub top_categories: Vec<crate::analytics::CategoryShare>,
    /// What characterizes it.
    pub description: String,
}

/// The segment profiles of a report as the principal may see them: sizes
/// and shares from [`shared_segments`]; medians and top categories of the
/// segments shown whole when no noise is added (each is at least
/// `min_group_size` people), left out under DP (they are not noised) and
/// for the merged bucket. Returns the customers counted, the profiles and
/// the note.
pub fn shared_profiles(
    engine: &Engine,
    a: &Access,
    report: &crate::analytics::SegmentsReport,
    customers: &[crate::analytics::CustomerSegment],
    show_revenue: bool,
) -> Result<(usize, Vec<SharedProfile>, AggregateNote), EngineError> {
    let (total, segs, note) = shared_segments(engine, a, report, customers, show_revenue)?;
    let detail = note.dp.is_none();
    let profiles = segs
        .into_iter()
        .map(|s| {
            let p = report
                .segments
                .iter()
                .find(|p| p.name == s.name)
                .filter(|_| detail);
            SharedProfile {
                median_recency_days: p.and_then(|p| p.median_recency_days),
                median_frequency: p.map(|p| p.median_frequency),
                median_monetary: p.filter(|_| show_revenue).map(|p| p.median_monetary),
                top_categories: p.map(|p| p.top_categories.clone()).unwrap_or_default(),
                description: match report.segments.iter().find(|p| p.name == s.name) {
                    Some(p) => p.description.clone(),
                    None if s.name == OTHER => format!("merged: {}", note.merged.join(", ")),
                    None => String::new(),
                },
                name: s.name,
                size: s.size,
                share: s.share,
                revenue_share: s.revenue_share,
            }
        })
        .collect();
    Ok((total, profiles, note))
}

/// Store-wide figures as the principal may see them (`GET /v1/stats`,
/// `infogap stats`). Admin and analyst: exact. Other roles: sources that
/// contributed fewer than `min_group_size` rows are merged into [`OTHER`]
/// (or suppressed); under DP only the customer count (sensitivity 1) and
/// the revenue (each person's clamped to `[0, bound]`) are released, with
/// Laplace noise and ε split between them; every other figure counts facts,
/// of which one person may hold any number, so it is withheld (listed in
/// `withheld`). Returns the figures as JSON and the note.
pub fn shared_stats(
    engine: &Engine,
    a: &Access,
    stats: infogap_store::Stats,
    ds: &infogap_core::dataset::Dataset,
) -> Result<(serde_json::Value, AggregateNote), EngineError> {
    if sees_exact(a) {
        return Ok((json(&stats)?, AggregateNote::exact(a)));
    }
    let cfg = engine.privacy()?;
    let mut v = json(&stats)?;
    let mut note = AggregateNote {
        exact: false,
        min_group_size: Some(cfg.min_group_size),
        merged: vec![],
        suppressed: 0,
        dp: None,
        note: String::new(),
    };
    match cfg.dp_epsilon {
        None => {
            let rows = stats
                .sources
                .iter()
                .map(|s| GroupRow {
                    label: s.name.clone(),
                    count: usize::try_from(s.rows).unwrap_or(0),
                    sums: vec![],
                })
                .collect();
            let g = GroupGuard {
                min: cfg.min_group_size,
            }
            .apply(rows);
            let sources: Vec<serde_json::Value> = g
                .rows
                .iter()
                .map(|r| match stats.sources.iter().find(|s| s.name == r.label) {
                    Some(s) => json(s),
                    None => Ok(serde_json::json!({"name": r.label, "rows": r.count})),
                })
                .collect::<Result<_, _>>()?;
            v["sources"] = serde_json::Value::Array(sources);
            note.merged = g.merged;
            note.suppressed = g.suppressed;
            note.note = format!("sources: {}", g.note);
        }
        Some(eps) => {
            let bound = cfg.dp_sum_bound.unwrap_or(DEFAULT_SUM_BOUND);
            let dp = DpNote::split(eps, bound, &[("customers", 1.0), ("revenue", bound)]);
            let mut lap = Laplace::new(dp.statistics[0].epsilon)?;
            let mut per_person: std::collections::HashMap<i64, f64> =
                std::collections::HashMap::new();
            for o in &ds.orders {
                *per_person.entry(o.customer).or_default() += o.amount;
            }
            let clamped: f64 = per_person.values().map(|x| x.clamp(0.0, bound)).sum();
            let customers = lap.count(usize::try_from(stats.customers).unwrap_or(0));
            let revenue = (lap.sum(clamped, bound) * 100.0).round() / 100.0;
            let withheld: Vec<String> = [
                "shared_keys",
                "identities",
                "orders",
                "order_lines",
                "events",
                "feedback",
                "campaigns",
                "campaign_contacts",
                "consents",
                "sources",
            ]
            .iter()
            .map(|k| k.to_string())
            .collect();
            if let Some(m) = v.as_object_mut() {
                for k in &withheld {
                    m.remove(k);
                }
                m.insert("customers".into(), customers.into());
                m.insert("revenue".into(), revenue.into());
                m.insert("withheld".into(), withheld.clone().into());
            }
            note.note = format!(
                "customers and revenue with Laplace noise; {} withheld (one person may hold any number of them)",
                withheld.join(", ")
            );
            note.dp = Some(dp);
        }
    }
    Ok((v, note))
}

fn json<T: Serialize>(v: &T) -> Result<serde_json::Value, EngineError> {
    serde_json::to_value(v).map_err(|e| EngineError::Invalid(format!("stats: {e}")))
}

/// Keyed-hash pseudonyms of one store.
#[derive(Debug, Clone)]
pub struct Pseudonyms {
    secret: Secret,
}

impl Pseudonyms {
    /// Pseudonyms under a store's secret.
    pub fn new(secret: Secret) -> Pseudonyms {
        Pseudonyms { secret }
    }

    /// `p_` and 16 hex digits of HMAC(secret, domain ‖ 0 ‖ id).
    pub fn of(&self, id: i64) -> String {
        let mac = self.secret.hash(&format!("{PSEUDONYM_DOMAIN}\0{id}"));
        format!("p_{}", infogap_store::audit::hex(&mac[..8]))
    }

    /// Replaces a row's id and key: the key becomes the pseudonym, the id
    /// becomes 0, which outputs leave out (see [`withheld`]).
    pub fn apply(&self, id: &mut i64, key: &mut String) {
        *key = self.of(*id);
        *id = 0;
    }
}

/// A row of a per-customer export that can carry a pseudonym.
pub trait Pseudonymize {
    /// The row's customer id and display key.
    fn ident(&mut self) -> (&mut i64, &mut String);
}

impl Pseudonymize for crate::share::SegmentMember {
    fn ident(&mut self) -> (&mut i64, &mut String) {
        (&mut self.id, &mut self.key)
    }
}

impl Pseudonymize for crate::share::WatchItem {
    fn ident(&mut self) -> (&mut i64, &mut String) {
        (&mut self.id, &mut self.key)
    }
}

impl Pseudonymize for crate::churn::ChurnRisk {
    fn ident(&mut self) -> (&mut i64, &mut String) {
        (&mut self.customer, &mut self.key)
    }
}

impl Pseudonymize for crate::clv::RankedCustomer {
    fn ident(&mut self) -> (&mut i64, &mut String) {
        (&mut self.customer_id, &mut self.key)
    }
}

impl Pseudonymize for crate::analytics::CustomerSegment {
    fn ident(&mut self) -> (&mut i64, &mut String) {
        (&mut self.id, &mut self.key)
    }
}

/// Gives the rows of an export pseudonyms when the principal is an analyst
/// and `[privacy] pseudonymize_analyst` is on (call it after the audit
/// record, which keeps the real ids). Returns whether it did.
pub fn pseudonymize<T: Pseudonymize>(
    engine: &Engine,
    a: &Access,
    rows: &mut [T],
) -> Result<bool, EngineError> {
    let Some(p) = engine.pseudonyms_for(a)? else {
        return Ok(false);
    };
    for r in rows {
        let (id, key) = r.ident();
        p.apply(id, key);
    }
    Ok(true)
}

/// Whether an id was withheld by [`Pseudonyms::apply`] (serde skips it).
pub fn withheld(id: &i64) -> bool {
    *id == 0
}

impl Engine {
    /// The pseudonyms of this access's exports: `Some` for the analyst role
    /// while `[privacy] pseudonymize_analyst` is on.
    pub fn pseudonyms_for(&self, a: &Access) -> Result<Option<Pseudonyms>, EngineError> {
        if a.role.name != "analyst" || !self.privacy()?.pseudonymize_analyst {
            return Ok(None);
        }
        Ok(Some(Pseudonyms::new(self.secret()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, count: usize, sum: f64) -> GroupRow {
        GroupRow {
            label: label.into(),
            count,
            sums: vec![sum],
        }
    }

    #[test]
    fn small_groups_merge_into_other() {
        let g = GroupGuard { min: 5 }.apply(vec![
            row("a", 10, 100.0),
            row("b", 3, 30.0),
            row("c", 2, 20.0),
            row("d", 7, 70.0),
        ]);
        let labels: Vec<&str> = g.rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["a", "d", OTHER]);
        assert_eq!(g.rows[2].count, 5);
        assert_eq!(g.rows[2].sums, vec![50.0]);
        assert_eq!(g.merged, ["b", "c"]);
        assert_eq!(g.suppressed, 0);
        assert!(g.note.contains("2 group(s) under 5 merged"), "{}", g.note);
        assert!(g.rows.iter().all(|r| r.count >= 5));
    }

    #[test]
    fn a_merged_group_still_too_small_is_suppressed() {
        let g = GroupGuard { min: 5 }.apply(vec![
            row("a", 10, 1.0),
            row("b", 1, 2.0),
            row("c", 2, 3.0),
        ]);
        assert_eq!(g.rows.len(), 1);
        assert_eq!(g.rows[0].label, "a");
        assert_eq!(g.suppressed, 2);
        assert_eq!(g.merged, ["b", "c"]);
        assert!(g.note.contains("suppressed"), "{}", g.note);
        // nothing to do: every group large enough
        let g = GroupGuard { min: 5 }.apply(vec![row("a", 5, 1.0), row("b", 6, 1.0)]);
        assert_eq!(g.rows.len(), 2);
        assert!(g.merged.is_empty() && g.suppressed == 0);
    }

    #[test]
    fn laplace_noise_has_mean_zero_and_scale_one_over_epsilon() {
        for eps in [0.5, 1.0, 2.0] {
            let mut lap = Laplace::seeded(eps, 7).expect("ε > 0");
            let n = 200_000;
            let draws: Vec<f64> = (0..n).map(|_| lap.noise(1.0 / eps)).collect();
            let mean = draws.iter().sum::<f64>() / n as f64;
            // the mean absolute deviation of Laplace(0, b) is b
            let mad = draws.iter().map(|x| x.abs()).sum::<f64>() / n as f64;
            let b = 1.0 / eps;
            // standard error of the mean: b·√2/√n ≈ 0.003·b
            assert!(mean.abs() < 0.02 * b, "ε {eps}: mean {mean}");
            assert!((mad - b).abs() < 0.02 * b, "ε {eps}: scale {mad} vs {b}");
            // the variance is 2b²
            let var = draws.iter().map(|x| x * x).sum::<f64>() / n as f64;
            assert!(
                (var / (2.0 * b * b) - 1.0).abs() < 0.05,
                "ε {eps}: var {var}"
            );
        }
    }

    #[test]
    fn noisy_counts_are_never_negative_and_noisy_sums_neither() {
        let mut lap = Laplace::seeded(0.1, 3).expect("ε > 0");
        let n = 20_000;
        let mut zeros = 0;
        for _ in 0..n {
            // a count of 2 under Laplace(10): every draw below -1.5 clamps
            // to 0, probability e^-0.15 / 2 ≈ 0.430
            if lap.count(2) == 0 {
                zeros += 1;
            }
            assert!(lap.sum(1.0, 100.0) >= 0.0);
        }
        let p = zeros as f64 / n as f64;
        assert!((p - 0.430).abs() < 0.02, "{p}");
    }

    #[test]
    fn seeded_noise_repeats_and_bad_epsilon_is_refused() {
        let a: Vec<usize> = {
            let mut l = Laplace::seeded(1.0, 9).expect("ok");
            (0..20).map(|_| l.count(100)).collect()
        };
        let b: Vec<usize> = {
            let mut l = Laplace::seeded(1.0, 9).expect("ok");
            (0..20).map(|_| l.count(100)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().any(|&c| c != 100));
        assert!(Laplace::seeded(0.0, 1).is_err());
        assert!(Laplace::new(f64::NAN).is_err());
    }

    #[test]
    fn epsilon_is_split_over_statistics() {
        let n = DpNote::split(1.0, 500.0, &[("sizes", 1.0), ("revenue", 500.0)]);
        assert_eq!(n.epsilon_of("sizes"), Some(0.5));
        assert_eq!(n.statistics[1].scale, 1000.0);
        let total: f64 = n.statistics.iter().map(|s| s.epsilon).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert_eq!(n.sensitivity, 500.0);
    }

    #[test]
    fn pseudonyms_are_stable_keyed_and_not_ids() {
        let s = Secret::random();
        let p = Pseudonyms::new(s.clone());
        assert_eq!(p.of(42), Pseudonyms::new(s).of(42));
        assert_ne!(p.of(42), p.of(43));
        assert_ne!(p.of(42), Pseudonyms::new(Secret::random()).of(42));
        let x = p.of(42);
        assert!(x.starts_with("p_") && x.len() == 18, "{x}");
        assert!(x[2..].chars().all(|c| c.is_ascii_hexdigit()), "{x}");
        let (mut id, mut key) = (42, "email:a@b.c".to_string());
        p.apply(&mut id, &mut key);
        assert_eq!((id, key.as_str()), (0, x.as_str()));
        assert!(withheld(&id));
    }
}
