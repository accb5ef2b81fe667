//! How well the business knows each customer: a knowledge profile over six
//! dimensions (contact, demographics, behaviour, preferences, needs and
//! feedback, consent) with staleness and cross-department conflicts, its
//! summary `knowledge_score`, the backtest that shows the score means
//! something, and the customer's side of the gap (what we hold that they
//! were never shown; what they do not know about us).
//!
//! How the score is built (and why it can be checked): each dimension gets
//! a level in [0, 1] from what is known (depth: how many facts, saturating;
//! freshness: how old the newest fact is, decaying with a half-life), and
//! the score is their weighted mean (behaviour 0.35, needs 0.25,
//! preferences 0.15, demographics 0.10, consent 0.10, contact 0.05; a
//! dimension the business records for nobody is left out and the rest
//! renormalized). The weights and half-lives are fixed and documented; they
//! were set by hand on the demo and are checked unchanged on The Complete
//! Journey. The backtest ([`Engine::gap_overview`]) then measures, on a time split,
//! whether customers with lower scores get worse churn and spend
//! predictions (Spearman correlation between score and realized error).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use infogap_core::access::{FieldClass, Visibility};
use infogap_core::dataset::{AttrValue, Dataset};
use infogap_models::classify::ModelKind;
use infogap_store::Provenance;
use serde::Serialize;

use super::departments::{Split, split};
use super::{Kind, attribute_kind, kind_of_event, spearman};
use crate::access::{Access, Policy, mask_text_short};
use crate::features::DAY;
use crate::{Engine, EngineError};

/// Weight of each dimension in the score.
pub const WEIGHTS: [(Kind, f64); 6] = [
    (Kind::Behaviour, 0.35),
    (Kind::Preferences, 0.15),
    (Kind::NeedsFeedback, 0.25),
    (Kind::Demographics, 0.10),
    (Kind::Contact, 0.05),
    (Kind::Consent, 0.10),
];

/// Facts of one customer, by dimension.
#[derive(Debug, Clone, Default)]
struct Acc {
    n: [u32; 6],
    /// Facts weighted by their age: Σ 0.5^(age / half-life) (see [`HALF_LIFE`]).
    w: [f64; 6],
    /// Campaigns received (what we did to them, not what we know: only
    /// counts as knowing they exist).
    reached: bool,
    newest: [Option<i64>; 6],
    email: bool,
    phone: bool,
    /// attribute → (normalized value, shown value, source id)
    attrs: BTreeMap<String, Vec<(String, AttrValue, i64)>>,
    consents: BTreeSet<String>,
}

fn dim(k: Kind) -> usize {
    match k {
        Kind::Contact => 0,
        Kind::Demographics => 1,
        Kind::Behaviour => 2,
        Kind::Preferences | Kind::Campaigns => 3,
        Kind::NeedsFeedback => 4,
        Kind::Consent => 5,
    }
}

/// Half-life (days) of what a fact says about the customer today, per
/// dimension: behaviour changes fastest (the decisions look 90 days ahead).
pub const HALF_LIFE: [f64; 6] = [730.0, 730.0, 90.0, 180.0, 365.0, 730.0];

impl Acc {
    fn add(&mut self, k: Kind, t: Option<i64>, at: i64) {
        let d = dim(k);
        self.n[d] += 1;
        match t {
            Some(t) => {
                self.newest[d] = Some(self.newest[d].map_or(t, |o| o.max(t)));
                let age = ((at - t) as f64 / DAY as f64).max(0.0);
                self.w[d] += 0.5f64.powf(age / HALF_LIFE[d]);
            }
            // undated: known, of unknown age (counted as one half-life old)
            None => self.w[d] += 0.5,
        }
    }
}

/// Everything known about every customer as of a time, in one pass.
pub(crate) struct KnowledgeIndex {
    at: i64,
    /// Per dimension: recorded for anyone (see [`KnowledgeIndex::recorded`]).
    present: [bool; 6],
    accs: Vec<Acc>,
    /// Demographic and preference attributes the business records for at
    /// least 5 % of its customers (what counts as missing when unknown).
    expected: Vec<(String, Kind)>,
    /// How much each attribute tells about churn (see [`field_weights`]):
    /// an unknown field counts as much as it matters.
    field_weights: HashMap<String, f64>,
    purposes: Vec<String>,
    source_names: HashMap<i64, String>,
}

impl KnowledgeIndex {
    /// Facts strictly before `at` (undated facts and attributes count as known).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        ds: &Dataset,
        prov: &Provenance,
        at: i64,
        policy: &Policy,
        purposes: &[String],
        source_names: HashMap<i64, String>,
        sources: Option<&HashSet<i64>>,
        contacts: &HashSet<(i64, String)>,
    ) -> KnowledgeIndex {
        let index = ds.customer_index();
        let n = ds.customers.len();
        let mut accs = vec![Acc::default(); n];
        let before = |t: Option<i64>| t.is_none_or(|t| t < at);
        let in_scope = |s: i64| sources.is_none_or(|set| set.contains(&s));
        for (c, kind, s) in &prov.identities {
            if let Some(i) = index.pos(*c)
                && in_scope(*s)
            {
                match kind.as_str() {
                    "email" => accs[i].email = true,
                    "phone" => accs[i].phone = true,
                    _ => {}
                }
            }
        }
        // the date each source recorded each customer's attributes
        let recorded_at: HashMap<(i64, i64), i64> = prov
            .attributes
            .iter()
            .filter(|a| a.name == super::RECORD_TIME)
            .filter_map(|a| {
                let t = crate::churn::parse_date(&a.value.as_text()).ok()?;
                Some(((a.customer_id, a.source_id), t))
            })
            .collect();
        for (c, ns) in contacts {
            if let Some(i) = index.pos(*c) {
                match ns.as_str() {
                    "email" => accs[i].email = true,
                    "phone" => accs[i].phone = true,
                    _ => {}
                }
            }
        }
        let mut attr_counts: BTreeMap<String, usize> = BTreeMap::new();
        for a in &prov.attributes {
            let Some(i) = index.pos(a.customer_id) else {
                continue;
            };
            if !in_scope(a.source_id) || a.name == super::RECORD_TIME {
                continue;
            }
            let t = recorded_at.get(&(a.customer_id, a.source_id)).copied();
            if !before(t) {
                continue;
            }
            let k = attribute_kind(policy, &a.name);
            accs[i].add(k, t, at);
            let norm = a.value.as_text().trim().to_lowercase();
            let e = accs[i].attrs.entry(a.name.clone()).or_default();
            if e.is_empty() {
                *attr_counts.entry(a.name.clone()).or_default() += 1;
            }
            e.push((norm, a.value.clone(), a.source_id));
        }
        for (c, s, purpose, t) in &prov.consents {
            if let Some(i) = index.pos(*c)
                && in_scope(*s)
                && before(*t)
            {
                accs[i].add(Kind::Consent, *t, at);
                accs[i].consents.insert(purpose.clone());
            }
        }
        let facts = ds
            .orders
            .iter()
            .map(|o| (o.customer, Kind::Behaviour, o.time))
            .chain(
                ds.events
                    .iter()
                    .map(|e| (e.customer, kind_of_event(e), e.time)),
            )
            .chain(
                ds.feedback
                    .iter()
                    .map(|f| (f.customer, Kind::NeedsFeedback, f.time)),
            )
            .chain(
                ds.redemptions
                    .iter()
                    .map(|r| (r.customer, Kind::Preferences, r.time)),
            );
        for (c, k, t) in facts {
            if let Some(i) = index.pos(c)
                && before(t)
            {
                accs[i].add(k, t, at);
            }
        }
        for r in &ds.exposures {
            if let Some(i) = index.pos(r.customer)
                && before(r.time)
            {
                accs[i].reached = true;
            }
        }
        let expected = attr_counts
            .into_iter()
            .filter(|(name, c)| {
                *c * 20 >= n.max(1) && attribute_kind(policy, name) != Kind::Contact
            })
            .map(|(name, _)| {
                let k = attribute_kind(policy, &name);
                (name, k)
            })
            .collect();
        let mut ix = KnowledgeIndex {
            field_weights: HashMap::new(),
            at,
            present: [true; 6],
            accs,
            expected,
            purposes: purposes.to_vec(),
            source_names,
        };
        ix.present = Kind::dimensions().map(|k| ix.recorded(k));
        ix
    }

    /// Scores a department's knowledge on the business's terms: the
    /// dimensions and fields the whole store records (a department that
    /// lacks one scores 0 there instead of leaving it out).
    fn on_terms_of(mut self, whole: &KnowledgeIndex) -> KnowledgeIndex {
        self.present = whole.present;
        self.expected = whole.expected.clone();
        self
    }

    /// Whether the business records this dimension for anyone (a dimension
    /// nobody has is left out of the score: it would only shift it).
    fn recorded(&self, k: Kind) -> bool {
        let d = dim(k);
        match k {
            Kind::Demographics => self.expected.iter().any(|(_, x)| *x == Kind::Demographics),
            Kind::Contact => self.accs.iter().any(|a| a.email || a.phone),
            Kind::Consent => !self.purposes.is_empty() && self.accs.iter().any(|a| a.n[d] > 0),
            _ => self.accs.iter().any(|a| a.n[d] > 0),
        }
    }

    /// Level of each dimension and the score of customer row `i`.
    pub(crate) fn score(&self, i: usize) -> (f64, [f64; 6]) {
        let a = &self.accs[i];
        let mut level = [0.0; 6];
        let depth = |w: f64, scale: f64| 1.0 - (-w / scale).exp();
        level[0] = match (a.email, a.phone) {
            (true, true) => 1.0,
            (true, false) | (false, true) => 0.7,
            _ => 0.0,
        };
        let demo: Vec<&String> = self
            .expected
            .iter()
            .filter(|(_, k)| *k == Kind::Demographics)
            .map(|(n, _)| n)
            .collect();
        if !demo.is_empty() {
            let weight = |n: &str| self.field_weights.get(n).copied().unwrap_or(1.0);
            let known: f64 = demo
                .iter()
                .map(|n| {
                    weight(n)
                        * match a.attrs.get(*n) {
                            None => 0.0,
                            Some(v) if distinct(v) > 1 => 0.5,
                            Some(_) => 1.0,
                        }
                })
                .sum();
            let total: f64 = demo.iter().map(|n| weight(n)).sum();
            level[1] = if total > 0.0 { known / total } else { 0.0 };
        }
        level[2] = depth(a.w[2], 3.0);
        let stated = self
            .expected
            .iter()
            .filter(|(n, k)| *k == Kind::Preferences && a.attrs.contains_key(n))
            .count() as u32;
        level[3] = depth(a.w[3] + 2.0 * stated as f64, 6.0);
        level[4] = depth(a.w[4], 1.5);
        if !self.purposes.is_empty() {
            let have = self
                .purposes
                .iter()
                .filter(|p| a.consents.contains(*p))
                .count();
            level[5] = have as f64 / self.purposes.len() as f64;
        }
        let (mut s, mut w) = (0.0, 0.0);
        for (k, wk) in WEIGHTS {
            if self.present[dim(k)] {
                s += wk * level[dim(k)];
                w += wk;
            }
        }
        (if w > 0.0 { s / w } else { 0.0 }, level)
    }

    fn conflicts(&self, i: usize) -> Vec<(String, Vec<ValueSources>)> {
        let mut out = Vec::new();
        for (name, vals) in &self.accs[i].attrs {
            if distinct(vals) < 2 {
                continue;
            }
            let mut by: BTreeMap<&str, (AttrValue, BTreeSet<String>)> = BTreeMap::new();
            for (norm, v, s) in vals {
                let e = by
                    .entry(norm.as_str())
                    .or_insert_with(|| (v.clone(), BTreeSet::new()));
                e.1.insert(
                    self.source_names
                        .get(s)
                        .cloned()
                        .unwrap_or_else(|| s.to_string()),
                );
            }
            out.push((
                name.clone(),
                by.into_values()
                    .map(|(v, s)| (v, s.into_iter().collect()))
                    .collect(),
            ));
        }
        out
    }
}

/// The weight of each attribute in the demographics level: its mutual
/// information (nats) with churn over the customers who have it, measured
/// on the churn split ending at `cutoff` (active customers before it,
/// churned or not in the window after), less the plug-in estimate's bias
/// (levels − 1) / 2N, plus a floor of 0.01 so a field that tells nothing
/// still counts a little as knowing the person.
pub(crate) fn field_weights(ds: &Dataset, sp: &Split) -> HashMap<String, f64> {
    let mut cells: HashMap<&str, HashMap<String, [f64; 2]>> = HashMap::new();
    for (&i, &y) in sp.churn_rows.iter().zip(&sp.churn_labels) {
        for (name, v) in &ds.customers[i].attributes {
            if name == super::RECORD_TIME {
                continue;
            }
            let e = cells.entry(name.as_str()).or_default();
            e.entry(v.as_text().trim().to_lowercase()).or_default()[usize::from(y)] += 1.0;
        }
    }
    let h = |p: f64| if p > 0.0 { -p * p.ln() } else { 0.0 };
    cells
        .into_iter()
        .map(|(name, levels)| {
            let n: f64 = levels.values().map(|c| c[0] + c[1]).sum();
            let pos: f64 = levels.values().map(|c| c[1]).sum();
            let hy = h(pos / n) + h(1.0 - pos / n);
            let hyx: f64 = levels
                .values()
                .map(|c| {
                    let m = c[0] + c[1];
                    (m / n) * (h(c[1] / m) + h(c[0] / m))
                })
                .sum();
            let bias = (levels.len().saturating_sub(1)) as f64 / (2.0 * n.max(1.0));
            (name.to_string(), (hy - hyx - bias).max(0.0) + 0.01)
        })
        .collect()
}

/// A value and the sources that hold it.
type ValueSources = (AttrValue, Vec<String>);

fn distinct(v: &[(String, AttrValue, i64)]) -> usize {
    v.iter().map(|x| x.0.as_str()).collect::<HashSet<_>>().len()
}

/// One dimension of a customer's knowledge profile.
#[derive(Debug, Clone, Serialize)]
pub struct Dimension {
    /// Name.
    pub dimension: String,
    /// Level in [0, 1] (depth × freshness; share of fields for demographics and consent).
    pub level: f64,
    /// Facts of this dimension.
    pub facts: u64,
    /// Date of the newest dated fact (`YYYY-MM-DD`).
    pub newest: Option<String>,
    /// Days from the newest fact to the analysis date (staleness).
    pub age_days: Option<f64>,
    /// Fields or questions of this dimension that are unknown for this customer.
    pub missing: Vec<String>,
    /// The business records this dimension for somebody (else it is left
    /// out of the score and nothing is listed as missing).
    pub recorded: bool,
}

/// One value in a conflict and who holds it.
#[derive(Debug, Clone, Serialize)]
pub struct ConflictValue {
    /// The value, shaped by the field policy (`None`: hidden from this role;
    /// the disagreement and its sources are still shown).
    pub value: Option<String>,
    /// Sources that hold it.
    pub sources: Vec<String>,
}

/// Departments that disagree on a value.
#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    /// Attribute.
    pub attribute: String,
    /// Its different values.
    pub values: Vec<ConflictValue>,
}

/// Something we hold about the customer that the self-service view has not
/// shown them.
#[derive(Debug, Clone, Serialize)]
pub struct Unshown {
    /// What (`churn risk`, `orders`, …).
    pub item: String,
    /// Why it counts as not shown.
    pub detail: String,
}

/// Something that matters to the customer they have not been shown.
#[derive(Debug, Clone, Serialize)]
pub struct Unaware {
    /// `product` or `campaign`.
    pub kind: String,
    /// Its key.
    pub key: String,
    /// Name, when known.
    pub name: Option<String>,
    /// Why it is relevant to them.
    pub why: String,
}

/// `gap customer KEY`.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerGap {
    /// Customer id.
    pub id: i64,
    /// Display key (shaped by the contact class).
    pub key: String,
    /// The summary in [0, 1].
    pub knowledge_score: f64,
    /// Percentile of the score among all customers (0–100).
    pub percentile: f64,
    /// Analysis date (`YYYY-MM-DD`).
    pub as_of: String,
    /// The six dimensions.
    pub dimensions: Vec<Dimension>,
    /// The dimensions where knowledge is thinnest (level < 0.34), thinnest first.
    pub thin: Vec<String>,
    /// Departments that disagree on a value.
    pub conflicts: Vec<Conflict>,
    /// Which departments know the customer, and how many facts of each kind each holds.
    pub departments: Vec<CustomerDepartment>,
    /// What we hold that the self-service view has not shown them.
    pub held_not_shown: Vec<Unshown>,
    /// When the customer last looked at their own data (self-service), if ever.
    pub last_self_view: Option<String>,
    /// What matters to them that they have not been shown: recommended
    /// products they have not seen, campaigns they qualify for but never received.
    pub unaware_of: Vec<Unaware>,
    /// The field classes this answer shows.
    pub shown: Vec<String>,
}

/// One department's knowledge of one customer.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerDepartment {
    /// Department.
    pub name: String,
    /// Knows the customer at all.
    pub knows: bool,
    /// Facts per information kind.
    pub facts: BTreeMap<String, u64>,
    /// The knowledge score the department alone would have.
    pub knowledge_score: f64,
}

fn date(t: i64) -> String {
    crate::churn::fmt_date(t)
}

fn shape_value(a: &Access, policy: &Policy, name: &str, v: &AttrValue) -> Option<String> {
    let class = policy.attribute_class(name);
    match a.visibility(class) {
        Visibility::Visible => Some(v.as_text()),
        Visibility::Masked => Some(mask_text_short(&v.as_text())),
        Visibility::Hidden => None,
    }
}

fn dimension_rows(ix: &KnowledgeIndex, i: usize, levels: &[f64; 6]) -> Vec<Dimension> {
    let a = &ix.accs[i];
    Kind::dimensions()
        .iter()
        .map(|&k| {
            let d = dim(k);
            let mut missing = Vec::new();
            match k {
                Kind::Contact => {
                    if !a.email {
                        missing.push("email".into());
                    }
                    if !a.phone {
                        missing.push("phone".into());
                    }
                }
                Kind::Demographics | Kind::Preferences => {
                    for (name, kk) in &ix.expected {
                        if *kk == k && !a.attrs.contains_key(name) {
                            missing.push(name.clone());
                        }
                    }
                    if k == Kind::Preferences && a.n[d] == 0 {
                        missing.push("no ratings, product views or redemptions".into());
                    }
                }
                Kind::Behaviour if a.n[d] == 0 => missing.push("no orders or visits".into()),
                Kind::NeedsFeedback if a.n[d] == 0 => {
                    missing.push("no survey, review or ticket".into())
                }
                Kind::Consent => {
                    for p in &ix.purposes {
                        if !a.consents.contains(p) {
                            missing.push(p.clone());
                        }
                    }
                }
                _ => {}
            }
            if !ix.present[d] {
                missing.clear();
            }
            Dimension {
                recorded: ix.present[d],
                dimension: k.as_str().into(),
                level: levels[d],
                facts: u64::from(a.n[d]),
                newest: a.newest[d].map(date),
                age_days: a.newest[d].map(|t| ((ix.at - t) as f64 / DAY as f64).max(0.0).floor()),
                missing,
            }
        })
        .collect()
}

/// Distribution of scores.
#[derive(Debug, Clone, Serialize)]
pub struct Distribution {
    /// Customers.
    pub customers: usize,
    /// Mean score.
    pub mean: f64,
    /// Quartiles and median: [p25, p50, p75].
    pub quartiles: [f64; 3],
    /// Histogram over ten bins of width 0.1: customers per bin.
    pub histogram: Vec<usize>,
}

fn distribution(scores: &[f64]) -> Distribution {
    let mut s = scores.to_vec();
    s.sort_by(f64::total_cmp);
    let q = |p: f64| {
        if s.is_empty() {
            0.0
        } else {
            s[((s.len() - 1) as f64 * p).round() as usize]
        }
    };
    let mut histogram = vec![0; 10];
    for &x in scores {
        histogram[((x * 10.0).floor() as usize).min(9)] += 1;
    }
    Distribution {
        customers: scores.len(),
        mean: scores.iter().sum::<f64>() / scores.len().max(1) as f64,
        quartiles: [q(0.25), q(0.5), q(0.75)],
        histogram,
    }
}

/// A dimension over all customers.
#[derive(Debug, Clone, Serialize)]
pub struct DimensionSummary {
    /// Name.
    pub dimension: String,
    /// Mean level.
    pub mean_level: f64,
    /// Share of customers with anything known in it.
    pub known_share: f64,
    /// Median age of the newest fact (days), among those with a dated fact.
    pub median_age_days: Option<f64>,
}

/// Mean score of a group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupScore {
    /// Group (segment or department).
    pub name: String,
    /// Customers in it.
    pub customers: usize,
    /// Their mean score.
    pub mean_score: f64,
}

/// Score quartile vs realized error.
#[derive(Debug, Clone, Serialize)]
pub struct QuartileError {
    /// 1 = lowest scores.
    pub quartile: usize,
    /// Customers.
    pub customers: usize,
    /// Mean score.
    pub mean_score: f64,
    /// Mean absolute churn error |label − predicted probability| (churn population).
    pub churn_error: Option<f64>,
    /// Mean symmetric relative spend error (spend population).
    pub spend_error: Option<f64>,
}

/// Does the score mean something? A time-split backtest.
#[derive(Debug, Clone, Serialize)]
pub struct Backtest {
    /// Cutoff: scores from facts before it, labels and targets after.
    pub cutoff: String,
    /// Window (days).
    pub window_days: i64,
    /// Churn population.
    pub churn_customers: usize,
    /// Out-of-fold churn ROC AUC of the model whose errors are measured.
    pub churn_auc: f64,
    /// Spearman(score, |churned − predicted probability|): negative = lower scores, larger errors.
    pub churn_spearman: Option<f64>,
    /// Spend population.
    pub spend_customers: usize,
    /// Spearman(score, symmetric relative spend error |a−p| / ((a+p)/2)).
    pub spend_spearman: Option<f64>,
    /// Spearman(score, absolute spend error), for comparison: absolute
    /// errors grow with how much a customer spends, so they mix size with knowledge.
    pub spend_abs_spearman: Option<f64>,
    /// Errors by score quartile.
    pub quartiles: Vec<QuartileError>,
}

/// `gap`: the distribution over all customers.
#[derive(Debug, Clone, Serialize)]
pub struct GapOverview {
    /// Analysis date.
    pub as_of: String,
    /// Score distribution.
    pub distribution: Distribution,
    /// Per dimension.
    pub dimensions: Vec<DimensionSummary>,
    /// Mean score per RFM segment.
    pub by_segment: Vec<GroupScore>,
    /// Per department: the mean score it alone would have of the customers it knows.
    pub by_department: Vec<GroupScore>,
    /// Customers with at least one conflict, and per attribute.
    pub conflicts: BTreeMap<String, usize>,
    /// Customers with any conflict.
    pub customers_with_conflicts: usize,
    /// How the score is built.
    pub method: String,
    /// Dimensions the business records for nobody (left out of the score).
    pub not_recorded: Vec<String>,
    /// The backtest against realized errors.
    pub backtest: Backtest,
    /// Seconds.
    pub seconds: f64,
}

/// The method, as reports state it.
pub const METHOD: &str = "weighted mean of six dimension levels in [0, 1] (behaviour 0.35, needs and feedback 0.25, preferences 0.15, demographics 0.10, consent 0.10, contact 0.05; a dimension the business records for nobody is left out). Behaviour, preferences and feedback: 1 - exp(-w / s) where w counts facts weighted by 0.5^(age / half-life) (half-lives 90, 180, 365 days; s = 3, 6, 1.5; a stated preference counts 2). Demographics: share of the attributes recorded for at least 5 % of customers that are known (a conflicting one counts half). Contact: 1 with email and phone, 0.7 with one. Consent: share of purposes with a record. Weights are fixed (set on the demo, checked unchanged on The Complete Journey), not fitted per store.";

/// The inputs every gap analysis reads once.
/// The knowledge profile's inputs and whole-store index for one snapshot
/// generation ([`Engine::gap_cache`]).
pub struct GapCache {
    g: GapInputs,
    now: i64,
    ix: KnowledgeIndex,
    sorted: Vec<f64>,
}

impl std::fmt::Debug for GapCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GapCache")
            .field("now", &self.now)
            .field("customers", &self.sorted.len())
            .finish_non_exhaustive()
    }
}

pub(crate) struct GapInputs {
    pub ds: Dataset,
    pub raw: infogap_store::snapshot::RawSnapshot,
    pub prov: Provenance,
    pub policy: Policy,
    pub purposes: Vec<String>,
    pub sources: Vec<infogap_store::SourceRecord>,
    /// Attribute weights per analysis time (computed once).
    pub weights: std::sync::Mutex<HashMap<i64, HashMap<String, f64>>>,
}

impl GapInputs {
    pub(crate) fn names(&self) -> HashMap<i64, String> {
        self.sources
            .iter()
            .map(|s| (s.id, s.name.clone()))
            .collect()
    }

    /// The index with attribute weights from the churn split before `at`
    /// (none when the store has too little history for one).
    pub(crate) fn index(
        &self,
        ds: &Dataset,
        at: i64,
        scope: Option<&HashSet<i64>>,
    ) -> KnowledgeIndex {
        self.index_in(&self.raw, ds, at, scope)
    }

    /// [`GapInputs::index`] of a data set assembled from `raw` (a part of the store's).
    pub(crate) fn index_in(
        &self,
        raw: &infogap_store::snapshot::RawSnapshot,
        ds: &Dataset,
        at: i64,
        scope: Option<&HashSet<i64>>,
    ) -> KnowledgeIndex {
        let mut ix = self.index_unweighted(raw, ds, at, scope);
        let mut cache = self
            .weights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ix.field_weights = cache
            .entry(at)
            .or_insert_with(|| {
                split_before(&self.ds, at)
                    .map(|sp| field_weights(&self.ds, &sp))
                    .unwrap_or_default()
            })
            .clone();
        ix
    }

    fn index_unweighted(
        &self,
        raw: &infogap_store::snapshot::RawSnapshot,
        ds: &Dataset,
        at: i64,
        scope: Option<&HashSet<i64>>,
    ) -> KnowledgeIndex {
        let all: HashSet<i64>;
        let set = match scope {
            Some(s) => s,
            None => {
                all = self.sources.iter().map(|s| s.id).collect();
                &all
            }
        };
        let contacts = super::departments::contact_facts(raw, &self.prov, set);
        KnowledgeIndex::build(
            ds,
            &self.prov,
            at,
            &self.policy,
            &self.purposes,
            self.names(),
            scope,
            &contacts,
        )
    }

    fn now(&self) -> Result<i64, EngineError> {
        Ok(self
            .ds
            .max_time()
            .ok_or_else(|| EngineError::Invalid("the store holds no dated facts".into()))?
            + 1)
    }
}

/// The 90-day churn split whose window ends at `at` (labels known by then).
fn split_before(ds: &Dataset, at: i64) -> Result<Split, EngineError> {
    let mut before = ds.clone();
    before.orders.retain(|o| o.time.is_some_and(|t| t < at));
    before.lines.retain(|l| l.time.is_some_and(|t| t < at));
    before.events.retain(|e| e.time.is_some_and(|t| t < at));
    before.feedback.retain(|f| f.time.is_some_and(|t| t < at));
    before.exposures.retain(|e| e.time.is_some_and(|t| t < at));
    before
        .redemptions
        .retain(|e| e.time.is_some_and(|t| t < at));
    split(&before, 90, 365)
}

fn sym_rel(a: f64, p: f64) -> f64 {
    let d = (a.abs() + p.abs()) / 2.0;
    if d <= 0.0 { 0.0 } else { (a - p).abs() / d }
}

impl Engine {
    pub(crate) fn gap_inputs(&self) -> Result<GapInputs, EngineError> {
        let (raw, _) = self.current_raw()?;
        let ds = raw.dataset()?;
        let prov = self.store().provenance()?;
        let policy = self.policy()?;
        let purposes = self.privacy()?.purposes();
        let sources = self.store().sources()?;
        Ok(GapInputs {
            ds,
            raw,
            prov,
            policy,
            purposes,
            sources,
            weights: Default::default(),
        })
    }

    /// The backtest of the score (pure over the inputs).
    pub(crate) fn gap_backtest(g: &GapInputs, seed: u64) -> Result<Backtest, EngineError> {
        let sp = split(&g.ds, 90, 365)?;
        let ix = g.index(&g.ds, sp.cutoff, None);
        let scores: Vec<f64> = (0..g.ds.customers.len()).map(|i| ix.score(i).0).collect();
        let (oof, auc) = super::departments::churn_oof(&g.ds, &sp, ModelKind::Auto, 5, seed)?;
        let churn_err: Vec<f64> = oof
            .iter()
            .zip(&sp.churn_labels)
            .map(|(p, &y)| (f64::from(u8::from(y)) - p).abs())
            .collect();
        let churn_scores: Vec<f64> = sp.churn_rows.iter().map(|&i| scores[i]).collect();
        let pred = super::departments::spend_oof(&g.ds, &sp, 5, seed)?;
        let spend_err: Vec<f64> = sp
            .spend_target
            .iter()
            .zip(&pred)
            .map(|(a, p)| sym_rel(*a, *p))
            .collect();
        let spend_abs: Vec<f64> = sp
            .spend_target
            .iter()
            .zip(&pred)
            .map(|(a, p)| (a - p).abs())
            .collect();
        let spend_scores: Vec<f64> = sp.spend_rows.iter().map(|&i| scores[i]).collect();
        // quartiles of the score over the union of both populations
        let mut all: Vec<f64> = churn_scores.iter().chain(&spend_scores).copied().collect();
        all.sort_by(f64::total_cmp);
        let cut = |p: f64| {
            all.get(((all.len().max(1) - 1) as f64 * p) as usize)
                .copied()
                .unwrap_or(0.0)
        };
        let bounds = [cut(0.25), cut(0.5), cut(0.75)];
        let q_of = |s: f64| bounds.iter().filter(|&&b| s > b).count();
        let mut quartiles = Vec::new();
        for q in 0..4 {
            let mean = |sc: &[f64], err: &[f64]| {
                let v: Vec<f64> = sc
                    .iter()
                    .zip(err)
                    .filter(|(s, _)| q_of(**s) == q)
                    .map(|(_, e)| *e)
                    .collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            };
            let members: Vec<f64> = churn_scores
                .iter()
                .chain(&spend_scores)
                .filter(|s| q_of(**s) == q)
                .copied()
                .collect();
            quartiles.push(QuartileError {
                quartile: q + 1,
                customers: members.len(),
                mean_score: members.iter().sum::<f64>() / members.len().max(1) as f64,
                churn_error: mean(&churn_scores, &churn_err),
                spend_error: mean(&spend_scores, &spend_err),
            });
        }
        Ok(Backtest {
            cutoff: date(sp.cutoff),
            window_days: sp.window / DAY,
            churn_customers: sp.churn_rows.len(),
            churn_auc: auc,
            churn_spearman: spearman(&churn_scores, &churn_err),
            spend_customers: sp.spend_rows.len(),
            spend_spearman: spearman(&spend_scores, &spend_err),
            spend_abs_spearman: spearman(&spend_scores, &spend_abs),
            quartiles,
        })
    }

    /// `gap`: the knowledge score over all customers, by dimension, segment
    /// and department, conflicts, and the backtest that checks the score.
    pub fn gap_overview(&self, a: &Access) -> Result<GapOverview, EngineError> {
        whole_store(a)?;
        let t0 = std::time::Instant::now();
        let g = self.gap_inputs()?;
        let now = g.now()?;
        let ix = g.index(&g.ds, now, None);
        let n = g.ds.customers.len();
        let scored: Vec<(f64, [f64; 6])> = (0..n).map(|i| ix.score(i)).collect();
        let scores: Vec<f64> = scored.iter().map(|s| s.0).collect();
        let dimensions = Kind::dimensions()
            .iter()
            .map(|&k| {
                let d = dim(k);
                let mut ages: Vec<f64> = ix
                    .accs
                    .iter()
                    .filter_map(|a| a.newest[d].map(|t| (now - t) as f64 / DAY as f64))
                    .collect();
                ages.sort_by(f64::total_cmp);
                DimensionSummary {
                    dimension: k.as_str().into(),
                    mean_level: scored.iter().map(|s| s.1[d]).sum::<f64>() / n.max(1) as f64,
                    known_share: ix
                        .accs
                        .iter()
                        .filter(|a| a.n[d] > 0 || (d == 0 && (a.email || a.phone)))
                        .count() as f64
                        / n.max(1) as f64,
                    median_age_days: (!ages.is_empty()).then(|| ages[ages.len() / 2].floor()),
                }
            })
            .collect();
        // by segment
        let mut by_segment = Vec::new();
        if let Ok((_, members)) = crate::analytics::segments(&g.ds, &Default::default()) {
            let index = g.ds.customer_index();
            let mut acc: BTreeMap<String, (usize, f64)> = BTreeMap::new();
            for m in &members {
                if let Some(i) = index.pos(m.id) {
                    let e = acc.entry(m.segment.clone()).or_default();
                    e.0 += 1;
                    e.1 += scores[i];
                }
            }
            let seg: HashSet<i64> = members.iter().map(|m| m.id).collect();
            let none: Vec<f64> =
                g.ds.customers
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !seg.contains(&c.id))
                    .map(|(i, _)| scores[i])
                    .collect();
            if !none.is_empty() {
                acc.insert("no purchases".into(), (none.len(), none.iter().sum()));
            }
            by_segment = acc
                .into_iter()
                .map(|(name, (c, s))| GroupScore {
                    name,
                    customers: c,
                    mean_score: s / c.max(1) as f64,
                })
                .collect();
        }
        // by department: what each alone would know of the customers it knows
        let stored = self.stored_departments()?;
        let (depts, _) = super::departments::departments_of(&stored, &g.sources);
        let id_of: HashMap<&str, i64> = g.sources.iter().map(|s| (s.name.as_str(), s.id)).collect();
        let mut by_department = Vec::new();
        for d in &depts {
            let set: HashSet<i64> = d
                .sources
                .iter()
                .filter_map(|s| id_of.get(s.as_str()).copied())
                .collect();
            let dds = super::departments::restricted_dataset(&g.raw, &g.prov, &set, &g.sources)?;
            let dix = g.index(&dds, now, Some(&set)).on_terms_of(&ix);
            let known = knows(&dix);
            let s: Vec<f64> = (0..n)
                .filter(|&i| known[i])
                .map(|i| dix.score(i).0)
                .collect();
            by_department.push(GroupScore {
                name: d.name.clone(),
                customers: s.len(),
                mean_score: s.iter().sum::<f64>() / s.len().max(1) as f64,
            });
        }
        by_department.push(GroupScore {
            name: "unified".into(),
            customers: n,
            mean_score: scores.iter().sum::<f64>() / n.max(1) as f64,
        });
        let mut conflicts: BTreeMap<String, usize> = BTreeMap::new();
        let mut customers_with_conflicts = 0;
        for i in 0..n {
            let c = ix.conflicts(i);
            if !c.is_empty() {
                customers_with_conflicts += 1;
            }
            for (name, _) in c {
                *conflicts.entry(name).or_default() += 1;
            }
        }
        let backtest = Self::gap_backtest(&g, 0)?;
        self.record_access(a, "gap.read", vec![], vec![])?;
        crate::invariants::checked(
            "gap",
            GapOverview {
                as_of: date(now),
                distribution: distribution(&scores),
                dimensions,
                by_segment,
                by_department,
                conflicts,
                customers_with_conflicts,
                method: METHOD.into(),
                not_recorded: Kind::dimensions()
                    .iter()
                    .filter(|k| !ix.present[dim(**k)])
                    .map(|k| k.as_str().to_string())
                    .collect(),
                backtest,
                seconds: t0.elapsed().as_secs_f64(),
            },
        )
    }

    /// `gap customer KEY`: one customer's knowledge profile, conflicts,
    /// departments, and their side of the gap. A department key sees the
    /// gap as its department knows the customer.
    pub fn gap_customer(&self, a: &Access, id: i64) -> Result<CustomerGap, EngineError> {
        self.gap_customer_in(a, None, id)
    }

    /// [`Engine::gap_customer`] over a server's per-generation
    /// [`crate::share::Insights`]: the store-wide inputs and index
    /// ([`crate::share::Insights::gap`]), the loaded recommender and its
    /// fold-in data are built once per generation, not per request.
    pub fn gap_customer_at(
        &self,
        a: &Access,
        ins: &crate::share::Insights,
        id: i64,
    ) -> Result<CustomerGap, EngineError> {
        let cache = ins.gap(self)?;
        let recs = ins.recs(self).ok();
        self.gap_customer_with(a, Some(&cache), recs.as_deref().map(|r| (r, ins)), id)
    }

    /// The inputs and the whole-store index of the knowledge profile for
    /// the store as it is now (what [`Engine::gap_customer_in`] reuses
    /// across requests of one snapshot generation).
    pub fn gap_cache(&self) -> Result<GapCache, EngineError> {
        let g = self.gap_inputs()?;
        let now = g.now()?;
        let ix = g.index(&g.ds, now, None);
        let mut sorted: Vec<f64> = (0..g.ds.customers.len()).map(|j| ix.score(j).0).collect();
        sorted.sort_by(f64::total_cmp);
        Ok(GapCache { g, now, ix, sorted })
    }

    /// [`Engine::gap_customer`] with a cache of the current generation's
    /// inputs and index (the server's [`crate::share::Insights::gap`]):
    /// the store-wide work is done once per generation, not per request.
    pub fn gap_customer_in(
        &self,
        a: &Access,
        cache: Option<&GapCache>,
        id: i64,
    ) -> Result<CustomerGap, EngineError> {
        self.gap_customer_with(a, cache, None, id)
    }

    fn gap_customer_with(
        &self,
        a: &Access,
        cache: Option<&GapCache>,
        recs: Option<(&crate::recs::LoadedRecs, &crate::share::Insights)>,
        id: i64,
    ) -> Result<CustomerGap, EngineError> {
        let rec = self.admit(a, id)?;
        let fresh;
        let c = match cache {
            Some(c) => c,
            None => {
                fresh = self.gap_cache()?;
                &fresh
            }
        };
        let g = &c.g;
        let now = c.now;
        let scope: Option<HashSet<i64>> = a
            .department_sources
            .as_ref()
            .map(|v| v.iter().copied().collect());
        let scoped;
        let scoped_ix;
        let (ds, ix) = match &scope {
            Some(set) => {
                scoped = super::departments::restricted_dataset(&g.raw, &g.prov, set, &g.sources)?;
                scoped_ix = g.index(&scoped, now, scope.as_ref());
                (&scoped, &scoped_ix)
            }
            None => (&g.ds, &c.ix),
        };
        let i = ds.customer_index().pos(id).ok_or_else(|| {
            EngineError::NotFound(format!(
                "customer #{id} has no personal key (a shared mailbox)"
            ))
        })?;
        let (score, levels) = ix.score(i);
        let below = match &scope {
            None => c.sorted.partition_point(|&x| x < score),
            Some(_) => (0..ds.customers.len())
                .filter(|&j| ix.score(j).0 < score)
                .count(),
        };
        let percentile = 100.0 * below as f64 / ds.customers.len().max(1) as f64;
        let dimensions = dimension_rows(ix, i, &levels);
        let mut thin: Vec<(f64, String)> = dimensions
            .iter()
            .filter(|d| d.level < 0.34 && ix.present[dim(kind_named(&d.dimension))])
            .map(|d| (d.level, d.dimension.clone()))
            .collect();
        thin.sort_by(|x, y| x.0.total_cmp(&y.0));
        let conflicts = ix
            .conflicts(i)
            .into_iter()
            .map(|(attribute, vals)| {
                let values: Vec<ConflictValue> = vals
                    .into_iter()
                    .map(|(v, sources)| ConflictValue {
                        value: shape_value(a, &g.policy, &attribute, &v),
                        sources,
                    })
                    .collect();
                Conflict { attribute, values }
            })
            .collect();
        // departments
        let stored = self.stored_departments()?;
        let (depts, _) = super::departments::departments_of(&stored, &g.sources);
        let id_of: HashMap<&str, i64> = g.sources.iter().map(|s| (s.name.as_str(), s.id)).collect();
        let mut departments = Vec::new();
        let one = one_customer(&g.raw, id);
        for d in &depts {
            let set: HashSet<i64> = d
                .sources
                .iter()
                .filter_map(|s| id_of.get(s.as_str()).copied())
                .collect();
            if scope.as_ref().is_some_and(|sc| !set.is_subset(sc)) {
                continue; // a department key sees only its own sources
            }
            let dds = super::departments::restricted_dataset(&one, &g.prov, &set, &g.sources)?;
            let dix = g.index_in(&one, &dds, now, Some(&set)).on_terms_of(ix);
            let Some(j) = dds.customer_index().pos(id) else {
                continue;
            };
            let acc = &dix.accs[j];
            let mut facts = BTreeMap::new();
            for k in Kind::dimensions() {
                let c = u64::from(acc.n[dim(k)])
                    + if k == Kind::Contact {
                        u64::from(acc.email) + u64::from(acc.phone)
                    } else {
                        0
                    };
                if c > 0 {
                    facts.insert(k.as_str().to_string(), c);
                }
            }
            let knows_it = knows(&dix)[j];
            departments.push(CustomerDepartment {
                name: d.name.clone(),
                knows: knows_it,
                facts,
                knowledge_score: dix.score(j).0,
            });
        }
        // the customer's side
        let last_self_view = self.last_self_view(id)?;
        let held_not_shown = self.held_not_shown(ix, i, last_self_view, ds, id)?;
        // the served recommender sees every department's history: a
        // department-limited view recommends from its own facts only
        let served = recs.filter(|_| scope.is_none());
        let unaware_of = self.unaware_of(ds, id, served)?;
        let classes = [
            FieldClass::Demographic,
            FieldClass::Behaviour,
            FieldClass::Predictions,
        ];
        let shown = a.shown_classes(&classes);
        self.record_access(a, "gap.customer", vec![id], shown.clone())?;
        crate::invariants::checked(
            "gap customer",
            CustomerGap {
                id,
                key: crate::share::show_key(a, id, &rec.display_key(a)),
                knowledge_score: score,
                percentile,
                as_of: date(now),
                dimensions,
                thin: thin.into_iter().map(|t| t.1).collect(),
                conflicts,
                departments,
                held_not_shown,
                last_self_view: last_self_view.map(|t| date(t / 1_000_000)),
                unaware_of,
                shown,
            },
        )
    }

    /// When the customer last read their own data through self-service
    /// (microseconds), from the audit trail.
    fn last_self_view(&self, id: i64) -> Result<Option<i64>, EngineError> {
        let f = infogap_store::audit::AuditFilter {
            customer: Some(id),
            actor: None,
            before: None,
            limit: 0,
        };
        let recs = self.audit_sink()?.log().records(&f)?;
        Ok(recs
            .iter()
            .filter(|r| r.entry.actor_kind == "customer" && r.entry.detail == "ok")
            .map(|r| r.entry.time_us)
            .max())
    }

    fn held_not_shown(
        &self,
        ix: &KnowledgeIndex,
        i: usize,
        last_view_us: Option<i64>,
        ds: &Dataset,
        id: i64,
    ) -> Result<Vec<Unshown>, EngineError> {
        let mut out = Vec::new();
        let models: HashSet<String> = self
            .store()
            .model_versions()?
            .into_iter()
            .map(|m| m.0)
            .collect();
        for (kind, what) in [
            ("churn", "churn risk and its reasons"),
            ("clv", "lifetime value (expected purchases and spend)"),
            ("amount", "predicted next-period spend"),
        ] {
            if models.contains(kind) {
                out.push(Unshown {
                    item: what.into(),
                    detail: "held (a saved model scores them); the self-service view does not show predictions".into(),
                });
            }
        }
        out.push(Unshown {
            item: "segment".into(),
            detail: "derived from their purchases; not shown in the self-service view".into(),
        });
        out.push(Unshown {
            item: "knowledge profile".into(),
            detail: format!(
                "this score ({:.2}) and what we do not know about them; not shown in the self-service view",
                ix.score(i).0
            ),
        });
        // facts recorded (by time) since the last self-service view, or all
        let since = last_view_us.map(|t| t / 1_000_000);
        let after = |t: Option<i64>| since.is_none_or(|s| t.is_some_and(|t| t > s));
        let orders = ds
            .orders
            .iter()
            .filter(|o| o.customer == id && after(o.time))
            .count();
        let events = ds
            .events
            .iter()
            .filter(|e| e.customer == id && after(e.time))
            .count();
        let feedback = ds
            .feedback
            .iter()
            .filter(|f| f.customer == id && after(f.time))
            .count();
        let when = match since {
            Some(s) => format!("since their last self-service view on {}", date(s)),
            None => "they have never opened the self-service view".into(),
        };
        for (n, what) in [
            (orders, "orders"),
            (events, "events"),
            (feedback, "surveys, reviews and tickets"),
        ] {
            if n > 0 {
                out.push(Unshown {
                    item: what.into(),
                    detail: format!("{n} recorded; {when}"),
                });
            }
        }
        let attrs = ix.accs[i].attrs.len();
        if attrs > 0 && since.is_none() {
            out.push(Unshown {
                item: "attributes".into(),
                detail: format!("{attrs} recorded; {when}"),
            });
        }
        Ok(out)
    }

    /// Recommended products they have not seen, campaigns they qualify
    /// for but never received.
    fn unaware_of(
        &self,
        ds: &Dataset,
        id: i64,
        served: Option<(&crate::recs::LoadedRecs, &crate::share::Insights)>,
    ) -> Result<Vec<Unaware>, EngineError> {
        let mut out = Vec::new();
        let my_lines: Vec<&infogap_core::dataset::LineFact> =
            ds.lines.iter().filter(|l| l.customer == id).collect();
        let my_events: Vec<&infogap_core::dataset::EventFact> =
            ds.events.iter().filter(|e| e.customer == id).collect();
        let mut seen: HashSet<i64> = my_lines
            .iter()
            .filter_map(|l| l.product)
            .chain(my_events.iter().filter_map(|e| e.product))
            .collect();
        // the catalogue entries of what they touched (and, below, of what
        // is recommended), not the whole catalogue
        let prod_of = |ids: &HashSet<i64>| -> HashMap<i64, &infogap_core::dataset::ProductInfo> {
            ds.products
                .iter()
                .filter(|p| ids.contains(&p.id))
                .map(|p| (p.id, p))
                .collect()
        };
        let prod = prod_of(&seen);
        seen.clear();
        let mut cat_weight: BTreeMap<String, f64> = BTreeMap::new();
        let mut first_t: Option<i64> = None;
        let mut touch = |t: Option<i64>| {
            if let Some(t) = t {
                first_t = Some(first_t.map_or(t, |f: i64| f.min(t)));
            }
        };
        for l in &my_lines {
            touch(l.time);
            if let Some(p) = l.product {
                seen.insert(p);
                if let Some(c) = prod.get(&p).and_then(|p| p.category.clone()) {
                    *cat_weight.entry(c).or_default() += 1.0;
                }
            }
        }
        for e in &my_events {
            touch(e.time);
            if let Some(p) = e.product {
                seen.insert(p);
                if let Some(c) = prod.get(&p).and_then(|p| p.category.clone()) {
                    *cat_weight.entry(c).or_default() += 0.3;
                }
            }
        }
        let mut cats: Vec<(String, f64)> = cat_weight.into_iter().collect();
        cats.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let top: Vec<String> = cats.iter().take(2).map(|c| c.0.clone()).collect();
        // recommended products not seen: the saved recommender's, else the
        // most bought products of their top categories
        let mut recommended: Vec<(i64, String)> = Vec::new();
        let owned;
        let loaded = match served {
            Some((l, _)) => Some(l),
            None => {
                owned = crate::recs::load(self).ok();
                owned.as_ref()
            }
        };
        if let Some(loaded) = loaded {
            let opts = crate::recs::RecommendOptions {
                k: 5,
                ..Default::default()
            };
            if let Ok(ans) = crate::recs::recommend_customer(loaded, id, &opts, || match served {
                // the served snapshot and its fold-in data, built once
                Some((l, ins)) => Ok((ins.ds.clone(), ins.fold_in(l)?)),
                None => {
                    let ds = std::sync::Arc::new(ds.clone());
                    let x = std::sync::Arc::new(crate::recs::build_interactions(
                        &ds,
                        &loaded.saved.signals,
                    )?);
                    Ok((ds, x))
                }
            }) {
                for it in ans.items {
                    if !seen.contains(&it.product.id) {
                        recommended.push((
                            it.product.id,
                            format!("recommended for them (rank {})", it.rank),
                        ));
                    }
                }
            }
        }
        if recommended.is_empty() && !top.is_empty() {
            // the whole catalogue, only on this fallback path
            let prod: HashMap<i64, &infogap_core::dataset::ProductInfo> =
                ds.products.iter().map(|p| (p.id, p)).collect();
            let mut count: HashMap<i64, usize> = HashMap::new();
            for l in &ds.lines {
                if let Some(p) = l.product {
                    *count.entry(p).or_default() += 1;
                }
            }
            let mut cands: Vec<(usize, i64)> = count
                .into_iter()
                .filter(|(p, _)| {
                    !seen.contains(p)
                        && prod
                            .get(p)
                            .and_then(|x| x.category.as_ref())
                            .is_some_and(|c| top.contains(c))
                })
                .map(|(p, c)| (c, p))
                .collect();
            cands.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            for (_, p) in cands.into_iter().take(5) {
                recommended.push((
                    p,
                    format!(
                        "popular in {} (their most bought categories)",
                        top.join(" and ")
                    ),
                ));
            }
        }
        recommended.truncate(5);
        let prod = prod_of(&recommended.iter().map(|r| r.0).collect());
        for (p, why) in recommended {
            if let Some(info) = prod.get(&p) {
                out.push(Unaware {
                    kind: "product".into(),
                    key: info.key.clone(),
                    name: info.name.clone(),
                    why,
                });
            }
        }
        // campaigns about their categories, running while they were a customer, never received
        let got: HashSet<i64> = ds
            .exposures
            .iter()
            .chain(&ds.redemptions)
            .filter(|e| e.customer == id)
            .map(|e| e.campaign)
            .collect();
        for c in &ds.campaigns {
            if got.contains(&c.id) {
                continue;
            }
            let text = format!("{} {}", c.key, c.name.clone().unwrap_or_default()).to_lowercase();
            let Some(cat) = top.iter().find(|t| text.contains(&t.to_lowercase())) else {
                continue;
            };
            let while_customer = match (first_t, c.end) {
                (Some(f), Some(e)) => f <= e,
                _ => true,
            };
            if while_customer {
                out.push(Unaware {
                    kind: "campaign".into(),
                    key: c.key.clone(),
                    name: c.name.clone(),
                    why: format!("about {cat}, one of their top categories; they were a customer while it ran and never received it"),
                });
            }
        }
        Ok(out)
    }
}

/// The part of a raw snapshot that is one customer's (its identities, their
/// attributes, orders and facts): cheap to restrict and assemble.
fn one_customer(
    raw: &infogap_store::snapshot::RawSnapshot,
    id: i64,
) -> infogap_store::snapshot::RawSnapshot {
    // a customer has a handful of identities: a linear search beats
    // hashing every one of the store's lines
    let ids: Vec<i64> = raw
        .identities
        .iter()
        .filter(|i| i.customer_id == id)
        .map(|i| i.id)
        .collect();
    let segments = raw
        .segments
        .iter()
        .map(|(f, s)| {
            (
                *f,
                infogap_store::snapshot::Segment {
                    lines: s
                        .lines
                        .iter()
                        .filter(|x| ids.contains(&x.identity_id))
                        .cloned()
                        .collect(),
                    events: s
                        .events
                        .iter()
                        .filter(|x| ids.contains(&x.identity_id))
                        .cloned()
                        .collect(),
                    feedback: s
                        .feedback
                        .iter()
                        .filter(|x| ids.contains(&x.identity_id))
                        .cloned()
                        .collect(),
                    contacts: s
                        .contacts
                        .iter()
                        .filter(|x| ids.contains(&x.identity_id))
                        .cloned()
                        .collect(),
                },
            )
        })
        .filter(|(_, s)| !s.is_empty())
        .collect::<BTreeMap<_, _>>();
    // only the products this customer's lines and events name: the
    // catalogue is the same for every department and need not be copied
    let named: HashSet<i64> = segments
        .values()
        .flat_map(|s| {
            s.lines
                .iter()
                .filter_map(|l| l.product_id)
                .chain(s.events.iter().filter_map(|e| e.product_id))
        })
        .collect();
    infogap_store::snapshot::RawSnapshot {
        store_id: raw.store_id.clone(),
        generation: raw.generation,
        identities: raw
            .identities
            .iter()
            .filter(|i| ids.contains(&i.id))
            .cloned()
            .collect(),
        attributes: raw
            .attributes
            .iter()
            .filter(|a| ids.contains(&a.identity_id))
            .cloned()
            .collect(),
        products: raw
            .products
            .iter()
            .filter(|p| named.contains(&p.id))
            .cloned()
            .collect(),
        campaigns: raw.campaigns.clone(),
        orders: raw
            .orders
            .iter()
            .filter(|o| ids.contains(&o.identity_id))
            .cloned()
            .collect(),
        segments,
    }
}

fn kind_named(s: &str) -> Kind {
    Kind::all()
        .into_iter()
        .find(|k| k.as_str() == s)
        .unwrap_or(Kind::Behaviour)
}

/// Whether a department's index knows each customer at all.
fn knows(ix: &KnowledgeIndex) -> Vec<bool> {
    ix.accs
        .iter()
        .map(|a| {
            a.email || a.phone || a.reached || a.n.iter().any(|&n| n > 0) || !a.attrs.is_empty()
        })
        .collect()
}

/// Whole-store analyses are not for department-limited or customer principals.
pub(crate) fn whole_store(a: &Access) -> Result<(), EngineError> {
    if a.department_sources.is_some() {
        return Err(EngineError::Forbidden(
            "the information-gap analysis of the whole store is not open to a department-limited key".into(),
        ));
    }
    Ok(())
}
