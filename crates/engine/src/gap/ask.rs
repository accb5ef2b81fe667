//! `gap ask-next`: for each customer, the unknown fields and survey
//! questions ranked by how much their answer is expected to improve a
//! decision (churn, recommendations, spend): a question queue a survey or
//! a form can use (progressive profiling).
//!
//! Why this way: a fixed question order (Mautic's progressive profiling)
//! asks everyone the same next question; what is worth asking depends on
//! what is already known about the person. The expected gain is EDDI's
//! information reward (Ma et al., 2019): the expected information the
//! answer gives about the decision's outcome given what we already know,
//! computed by `infogap_models::acquire` from a model trained on a time
//! split (what we knew at the cutoff vs what happened after).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use infogap_core::dataset::{AttrValue, Dataset};
use infogap_models::acquire::{AcqModel, AcqOptions, AcqTable};
use serde::Serialize;

use super::departments::split;
use super::{Kind, attribute_kind};
use crate::access::{Access, Policy};
use crate::features::DAY;
use crate::privacy::consent::LeftOut;
use crate::{Engine, EngineError};

/// The decision the answers should improve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Will the customer stop buying in the next 90 days?
    Churn,
    /// Which category will they buy next (what to recommend)?
    Recs,
    /// How much will they spend in the next 90 days (quartile)?
    Spend,
}

impl Decision {
    /// Parses `churn`, `recs` or `spend`.
    pub fn parse(s: &str) -> Result<Decision, EngineError> {
        match s {
            "churn" => Ok(Decision::Churn),
            "recs" | "recommendations" => Ok(Decision::Recs),
            "spend" => Ok(Decision::Spend),
            other => Err(EngineError::Invalid(format!(
                "--for {other:?}: expected churn, recs or spend"
            ))),
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            Decision::Recs => infogap_core::privacy::PERSONALIZATION,
            _ => infogap_core::privacy::PROFILING,
        }
    }
}

/// Options of `gap ask-next`.
#[derive(Debug, Clone)]
pub struct AskOptions {
    /// The decision.
    pub decision: Decision,
    /// Questions per customer.
    pub top: usize,
    /// Seed.
    pub seed: u64,
}

/// A field of the table: known behaviour, or something we can ask.
#[derive(Debug, Clone, Serialize)]
pub struct Field {
    /// Name (`plan`, `survey:survey`, `orders`, …).
    pub name: String,
    /// The question to ask (None for behaviour we observe).
    pub question: Option<String>,
    /// `behaviour`, `attribute` or `survey`.
    pub source: String,
    /// Share of customers for whom it is known now.
    pub known_share: f64,
    #[serde(skip)]
    categorical: bool,
    #[serde(skip)]
    levels: Vec<String>,
}

/// One question in a queue.
#[derive(Debug, Clone, Serialize)]
pub struct Question {
    /// Field.
    pub field: String,
    /// What to ask.
    pub question: String,
    /// Expected information the answer gives about the decision (nats).
    pub expected_gain: f64,
}

/// One customer's queue.
#[derive(Debug, Clone, Serialize)]
pub struct Queue {
    /// Customer id.
    pub id: i64,
    /// Display key (shaped by the contact class).
    pub key: String,
    /// Questions, best first.
    pub questions: Vec<Question>,
}

/// What `gap ask-next` reports.
#[derive(Debug, Clone, Serialize)]
pub struct AskReport {
    /// The decision.
    pub decision: Decision,
    /// What the model predicts.
    pub target: String,
    /// Cutoff of the training split.
    pub cutoff: String,
    /// Customers trained on.
    pub trained_on: usize,
    /// Outcome classes.
    pub classes: Vec<String>,
    /// The fields.
    pub fields: Vec<Field>,
    /// Customers with a queue.
    pub customers: usize,
    /// Customers left out by consent.
    pub left_out: LeftOut,
    /// How often each field is asked first.
    pub first_asked: BTreeMap<String, usize>,
    /// Queues (every customer with an unknown field).
    pub queues: Vec<Queue>,
    /// Ranking decisions per second (one per customer).
    pub decisions_per_second: f64,
    /// Seconds.
    pub seconds: f64,
}

fn question_for(name: &str, kind: Kind) -> String {
    if let Some(k) = name.strip_prefix("survey:") {
        return match k {
            "survey" | "nps" => "How likely are you to recommend us to a friend (0–10)?".into(),
            "review" | "csat" => "How satisfied are you with us (1–5)?".into(),
            other => format!("How would you score us ({other})?"),
        };
    }
    match kind {
        Kind::Preferences => format!("What is your {}?", name.replace('_', " ")),
        _ => format!("May we ask your {}?", name.replace('_', " ")),
    }
}

/// The per-customer table as of `at`: observed behaviour, then the
/// attributes and survey answers we could ask for (NaN = unknown).
fn table(ds: &Dataset, at: i64, fields: &[Field]) -> Vec<f64> {
    let index = ds.customer_index();
    let n = ds.customers.len();
    let p = fields.len();
    let mut x = vec![f64::NAN; n * p];
    let pos: HashMap<&str, usize> = fields
        .iter()
        .enumerate()
        .map(|(j, f)| (f.name.as_str(), j))
        .collect();
    let set = |x: &mut Vec<f64>, i: usize, name: &str, v: f64| {
        if let Some(&j) = pos.get(name) {
            x[i * p + j] = v;
        }
    };
    let mut orders = vec![0.0; n];
    let mut spend = vec![0.0; n];
    let mut last: Vec<Option<i64>> = vec![None; n];
    let mut first: Vec<Option<i64>> = vec![None; n];
    let mut recent = vec![0.0; n];
    for o in &ds.orders {
        let (Some(t), Some(i)) = (o.time, index.pos(o.customer)) else {
            continue;
        };
        if t >= at {
            continue;
        }
        orders[i] += 1.0;
        spend[i] += o.amount;
        if t >= at - 90 * DAY {
            recent[i] += 1.0;
        }
        last[i] = Some(last[i].map_or(t, |l| l.max(t)));
        first[i] = Some(first[i].map_or(t, |l| l.min(t)));
    }
    let mut tickets = vec![0.0; n];
    let mut visits = vec![0.0; n];
    let mut latest: HashMap<(usize, String), (i64, f64)> = HashMap::new();
    for f in &ds.feedback {
        let (Some(t), Some(i)) = (f.time, index.pos(f.customer)) else {
            continue;
        };
        if t >= at {
            continue;
        }
        if f.kind == "ticket" {
            tickets[i] += 1.0;
        }
        if let Some(s) = f.score {
            let e = latest.entry((i, f.kind.clone())).or_insert((t, s));
            if t >= e.0 {
                *e = (t, s);
            }
        }
    }
    for e in &ds.events {
        let (Some(t), Some(i)) = (e.time, index.pos(e.customer)) else {
            continue;
        };
        if t < at {
            visits[i] += 1.0;
        }
    }
    for i in 0..n {
        set(&mut x, i, "orders", orders[i]);
        set(&mut x, i, "orders_last_90_days", recent[i]);
        set(&mut x, i, "spend", spend[i]);
        set(&mut x, i, "tickets", tickets[i]);
        set(&mut x, i, "events", visits[i]);
        if let Some(l) = last[i] {
            set(&mut x, i, "days_since_last_order", ((at - l) / DAY) as f64);
        }
        if let Some(f) = first[i] {
            set(&mut x, i, "days_since_first_order", ((at - f) / DAY) as f64);
        }
    }
    for ((i, kind), (_, s)) in latest {
        set(&mut x, i, &format!("survey:{kind}"), s);
    }
    for (i, c) in ds.customers.iter().enumerate() {
        for (name, v) in &c.attributes {
            let Some(&j) = pos.get(name.as_str()) else {
                continue;
            };
            let f = &fields[j];
            x[i * p + j] = if f.categorical {
                let t = v.as_text().trim().to_lowercase();
                match f.levels.iter().position(|l| *l == t) {
                    Some(k) => k as f64,
                    None => f.levels.len() as f64, // "other"
                }
            } else {
                v.as_f64().unwrap_or(f64::NAN)
            };
        }
    }
    x
}

const BEHAVIOUR: [&str; 7] = [
    "orders",
    "orders_last_90_days",
    "spend",
    "days_since_last_order",
    "days_since_first_order",
    "tickets",
    "events",
];

/// The fields of a store: observed behaviour, askable attributes (recorded
/// for at least 5 % of customers, not contact data, at most 20 levels) and
/// survey answers (feedback kinds with scores).
fn fields_of(ds: &Dataset, policy: &Policy) -> Vec<Field> {
    let n = ds.customers.len().max(1);
    let mut fields: Vec<Field> = BEHAVIOUR
        .iter()
        .map(|b| Field {
            name: (*b).into(),
            question: None,
            source: "behaviour".into(),
            known_share: 0.0,
            categorical: false,
            levels: Vec::new(),
        })
        .collect();
    let mut levels: BTreeMap<&str, (usize, bool, BTreeMap<String, usize>)> = BTreeMap::new();
    for c in &ds.customers {
        for (name, v) in &c.attributes {
            let e = levels.entry(name.as_str()).or_default();
            e.0 += 1;
            if !matches!(v, AttrValue::Int(_) | AttrValue::Float(_)) {
                e.1 = true;
            }
            *e.2.entry(v.as_text().trim().to_lowercase()).or_default() += 1;
        }
    }
    for (name, (count, text, lv)) in levels {
        let kind = attribute_kind(policy, name);
        if name == super::RECORD_TIME
            || kind == Kind::Contact
            || count * 20 < n
            || (text && lv.len() > 20)
        {
            continue;
        }
        let mut lv: Vec<(String, usize)> = lv.into_iter().collect();
        lv.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        fields.push(Field {
            name: name.to_string(),
            question: Some(question_for(name, kind)),
            source: "attribute".into(),
            known_share: count as f64 / n as f64,
            categorical: text,
            levels: if text {
                lv.into_iter().map(|l| l.0).collect()
            } else {
                Vec::new()
            },
        });
    }
    let kinds: std::collections::BTreeSet<&str> = ds
        .feedback
        .iter()
        .filter(|f| f.score.is_some())
        .map(|f| f.kind.as_str())
        .collect();
    for k in kinds {
        let name = format!("survey:{k}");
        fields.push(Field {
            question: Some(question_for(&name, Kind::NeedsFeedback)),
            name,
            source: "survey".into(),
            known_share: 0.0,
            categorical: false,
            levels: Vec::new(),
        });
    }
    fields
}

/// The outcome a decision's model learns: what it is, the cutoff, the
/// training rows, their classes and the class names.
struct Outcome {
    target: String,
    cutoff: i64,
    rows: Vec<usize>,
    y: Vec<usize>,
    classes: Vec<String>,
}

/// Outcome classes of the decision for the training rows.
fn outcome(ds: &Dataset, decision: Decision) -> Result<Outcome, EngineError> {
    let (target, cutoff, rows, y, classes) = outcome_parts(ds, decision)?;
    Ok(Outcome {
        target,
        cutoff,
        rows,
        y,
        classes,
    })
}

type Parts = (String, i64, Vec<usize>, Vec<usize>, Vec<String>);

fn outcome_parts(ds: &Dataset, decision: Decision) -> Result<Parts, EngineError> {
    let sp = split(ds, 90, 365)?;
    match decision {
        Decision::Churn => Ok((
            "no order in the 90 days after the cutoff".into(),
            sp.cutoff,
            sp.churn_rows.clone(),
            sp.churn_labels.iter().map(|&b| usize::from(b)).collect(),
            vec!["stays".into(), "churns".into()],
        )),
        Decision::Spend => {
            let mut v: Vec<f64> = sp.spend_target.clone();
            v.sort_by(f64::total_cmp);
            let q = |p: f64| v[((v.len().max(1) - 1) as f64 * p) as usize];
            if v.is_empty() {
                return Err(EngineError::Invalid(
                    "no customer bought before the cutoff".into(),
                ));
            }
            let cuts = [q(0.25), q(0.5), q(0.75)];
            let y = sp
                .spend_target
                .iter()
                .map(|&s| cuts.iter().filter(|&&c| s > c).count())
                .collect();
            Ok((
                "spend quartile in the 90 days after the cutoff".into(),
                sp.cutoff,
                sp.spend_rows.clone(),
                y,
                vec![
                    format!("≤ {:.2}", cuts[0]),
                    format!("≤ {:.2}", cuts[1]),
                    format!("≤ {:.2}", cuts[2]),
                    format!("> {:.2}", cuts[2]),
                ],
            ))
        }
        Decision::Recs => {
            let cat: HashMap<i64, &str> = ds
                .products
                .iter()
                .filter_map(|p| Some((p.id, p.category.as_deref()?)))
                .collect();
            let index = ds.customer_index();
            let mut by: HashMap<usize, HashMap<&str, usize>> = HashMap::new();
            let mut overall: HashMap<&str, usize> = HashMap::new();
            for l in &ds.lines {
                let (Some(t), Some(p), Some(i)) = (l.time, l.product, index.pos(l.customer)) else {
                    continue;
                };
                if t >= sp.cutoff
                    && t < sp.cutoff + sp.window
                    && let Some(c) = cat.get(&p)
                {
                    *by.entry(i).or_default().entry(c).or_default() += 1;
                    *overall.entry(c).or_default() += 1;
                }
            }
            let mut cats: Vec<(&str, usize)> = overall.into_iter().collect();
            cats.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let names: Vec<String> = cats.iter().take(12).map(|c| c.0.to_string()).collect();
            if names.len() < 2 {
                return Err(EngineError::Invalid(
                    "recs: fewer than two product categories bought after the cutoff".into(),
                ));
            }
            let mut rows: Vec<usize> = by.keys().copied().collect();
            rows.sort_unstable();
            let mut classes = names.clone();
            let other = cats.len() > names.len();
            if other {
                classes.push("other".into());
            }
            let y = rows
                .iter()
                .map(|i| {
                    let mut v: Vec<(&&str, &usize)> = by[i].iter().collect();
                    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                    let top = v[0].0;
                    names.iter().position(|n| n == top).unwrap_or(names.len())
                })
                .collect();
            Ok((
                "category most bought in the 90 days after the cutoff".into(),
                sp.cutoff,
                rows,
                y,
                classes,
            ))
        }
    }
}

fn acq_table(fields: &[Field], rows: &[usize], x: &[f64]) -> AcqTable {
    let p = fields.len();
    let mut data = Vec::with_capacity(rows.len() * p);
    for &i in rows {
        data.extend_from_slice(&x[i * p..(i + 1) * p]);
    }
    AcqTable {
        names: fields.iter().map(|f| f.name.clone()).collect(),
        categorical: fields.iter().map(|f| f.categorical).collect(),
        n_rows: rows.len(),
        data,
    }
}

/// A decision's acquisition model fitted on one data set, with every
/// customer's row as of now: what `gap ask-next` ranks from, and what a
/// server keeps per snapshot generation ([`crate::share::Insights::ask`])
/// so one customer's queue costs one ranking, not a fit.
pub struct AskModel {
    /// The decision.
    pub decision: Decision,
    /// What the model predicts.
    pub target: String,
    /// Cutoff of the training split.
    pub cutoff: i64,
    /// Customers trained on.
    pub trained_on: usize,
    /// Outcome classes.
    pub classes: Vec<String>,
    /// The fields, with their known share now.
    pub fields: Vec<Field>,
    model: AcqModel,
    x_now: Vec<f64>,
    askable: Vec<usize>,
    index: infogap_core::dataset::IdIndex,
}

impl std::fmt::Debug for AskModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AskModel")
            .field("decision", &self.decision)
            .field("fields", &self.fields.len())
            .finish_non_exhaustive()
    }
}

impl AskModel {
    /// Fits the decision's model on `ds` (with `table_out`, also writes the
    /// training table as CSV without identifiers).
    pub fn fit(
        ds: &Dataset,
        policy: &Policy,
        decision: Decision,
        seed: u64,
        table_out: Option<&Path>,
    ) -> Result<AskModel, EngineError> {
        let mut fields = fields_of(ds, policy);
        let Outcome {
            target,
            cutoff,
            rows,
            y,
            classes,
        } = outcome(ds, decision)?;
        let x_then = table(ds, cutoff, &fields);
        let train = acq_table(&fields, &rows, &x_then);
        if let Some(path) = table_out {
            write_table(path, &fields, &train, &y, &classes)?;
        }
        let model = AcqModel::fit(
            &train,
            &y,
            classes.len(),
            &AcqOptions {
                seed,
                ..AcqOptions::default()
            },
        )?;
        let now = ds
            .max_time()
            .ok_or_else(|| EngineError::Invalid("the store holds no dated facts".into()))?
            + 1;
        let x_now = table(ds, now, &fields);
        let p = fields.len();
        let n = ds.customers.len();
        for (j, f) in fields.iter_mut().enumerate() {
            f.known_share =
                (0..n).filter(|i| !x_now[i * p + j].is_nan()).count() as f64 / n.max(1) as f64;
        }
        let askable = (0..p).filter(|&j| fields[j].question.is_some()).collect();
        Ok(AskModel {
            decision,
            target,
            cutoff,
            trained_on: rows.len(),
            classes,
            fields,
            model,
            x_now,
            askable,
            index: ds.customer_index(),
        })
    }

    /// Whether the customer at position `i` of the data set has a field we
    /// could ask for.
    fn has_unknown(&self, i: usize) -> bool {
        let p = self.fields.len();
        self.askable
            .iter()
            .any(|&j| self.x_now.get(i * p + j).is_some_and(|v| v.is_nan()))
    }

    /// The question queue of the customer at position `i` of the data set
    /// (the unknown askable fields `keep` admits, best first, at most `top`).
    pub fn queue(&self, i: usize, top: usize, keep: impl Fn(&Field) -> bool) -> Vec<Question> {
        let p = self.fields.len();
        let Some(row) = self.x_now.get(i * p..(i + 1) * p) else {
            return Vec::new();
        };
        let cands: Vec<usize> = self
            .askable
            .iter()
            .copied()
            .filter(|&j| row[j].is_nan() && keep(&self.fields[j]))
            .collect();
        if cands.is_empty() {
            return Vec::new();
        }
        let gains = self.model.expected_gains(row, &cands);
        let mut q: Vec<(usize, f64)> = cands.iter().copied().zip(gains).collect();
        q.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        q.truncate(top.max(1));
        q.into_iter()
            .map(|(j, g)| Question {
                field: self.fields[j].name.clone(),
                question: self.fields[j].question.clone().unwrap_or_default(),
                expected_gain: g.max(0.0),
            })
            .collect()
    }
}

/// One customer's ask-next queue, as a principal may see it.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerAsk {
    /// Customer id.
    pub customer: i64,
    /// The decision the answers would sharpen.
    pub decision: Decision,
    /// What the model predicts.
    pub target: String,
    /// Questions, best first (fields the role may not see are left out).
    pub questions: Vec<Question>,
    /// Why there is no queue (consent), when there is none for that reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withheld: Option<String>,
}

impl Engine {
    /// `gap ask-next`: the question queue of every customer (who allows
    /// the decision's purpose), or with `table_out` also the training table
    /// as CSV (no identifiers) for `eval ask-next`.
    pub fn gap_ask_next(
        &self,
        a: &Access,
        opts: &AskOptions,
        table_out: Option<&Path>,
    ) -> Result<AskReport, EngineError> {
        super::knowledge::whole_store(a)?;
        let t0 = std::time::Instant::now();
        let ds = self.dataset()?;
        let policy = self.policy()?;
        let m = AskModel::fit(&ds, &policy, opts.decision, opts.seed, table_out)?;
        let consents = self.consents()?;
        let purpose = opts.decision.purpose();
        let mut left_out = LeftOut::new(purpose);
        let t1 = std::time::Instant::now();
        let mut decisions = 0usize;
        let mut queues = Vec::new();
        let mut first_asked: BTreeMap<String, usize> = BTreeMap::new();
        for (i, c) in ds.customers.iter().enumerate() {
            if !m.has_unknown(i) {
                continue;
            }
            if let Err(r) = consents.allows(c.id, purpose) {
                left_out.add(r);
                continue;
            }
            decisions += 1;
            let questions = m.queue(i, opts.top, |_| true);
            if let Some(q) = questions.first() {
                *first_asked.entry(q.field.clone()).or_default() += 1;
            }
            queues.push(Queue {
                id: c.id,
                key: crate::share::show_key(a, c.id, &c.key),
                questions,
            });
        }
        let rank_seconds = t1.elapsed().as_secs_f64();
        self.record_access(
            a,
            "gap.ask_next",
            queues.iter().map(|q| q.id).collect(),
            vec![],
        )?;
        let AskModel {
            target,
            cutoff,
            trained_on,
            classes,
            fields,
            ..
        } = m;
        crate::invariants::checked(
            "gap ask-next",
            AskReport {
                decision: opts.decision,
                target,
                cutoff: crate::churn::fmt_date(cutoff),
                trained_on,
                classes,
                fields,
                customers: queues.len(),
                left_out,
                first_asked,
                queues,
                decisions_per_second: decisions as f64 / rank_seconds.max(1e-9),
                seconds: t0.elapsed().as_secs_f64(),
            },
        )
    }

    /// One customer's ask-next queue for churn over a server's
    /// per-generation model ([`crate::share::Insights::ask`]): the
    /// questions whose answers would most sharpen the churn prediction,
    /// leaving out attributes the principal's role may not see, and none
    /// when the customer does not allow profiling. Audited as a read.
    pub fn ask_next_customer(
        &self,
        a: &Access,
        ins: &crate::share::Insights,
        id: i64,
        top: usize,
    ) -> Result<CustomerAsk, EngineError> {
        self.admit(a, id)?;
        let m = ins.ask(self)?;
        let purpose = m.decision.purpose();
        let mut out = CustomerAsk {
            customer: id,
            decision: m.decision,
            target: m.target.clone(),
            questions: Vec::new(),
            withheld: None,
        };
        if let Err(r) = self.consent_allows(id, purpose)? {
            out.withheld = Some(format!("{purpose}: {}", r.as_str()));
        } else if let Some(i) = m.index.pos(id) {
            out.questions = m.queue(i, top, |f| {
                f.source != "attribute"
                    || a.visibility(a.attribute_class(&f.name))
                        != infogap_core::access::Visibility::Hidden
            });
        }
        self.record_access(a, "gap.ask_next", vec![id], vec![])?;
        Ok(out)
    }
}

fn write_table(
    path: &Path,
    fields: &[Field],
    t: &AcqTable,
    y: &[usize],
    classes: &[String],
) -> Result<(), EngineError> {
    let io = |e: std::io::Error| EngineError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    let p = fields.len();
    let header: Vec<String> = fields
        .iter()
        .map(|f| f.name.replace(':', "_"))
        .chain(std::iter::once("outcome".to_string()))
        .collect();
    writeln!(w, "{}", header.join(",")).map_err(io)?;
    for (r, &yr) in y.iter().enumerate().take(t.n_rows) {
        let mut cells = Vec::with_capacity(p + 1);
        for (j, f) in fields.iter().enumerate() {
            let v = t.data[r * p + j];
            cells.push(if v.is_nan() {
                String::new()
            } else if f.categorical {
                f.levels
                    .get(v as usize)
                    .cloned()
                    .unwrap_or_else(|| "other".into())
                    .replace([',', '"', '\n'], " ")
            } else {
                crate::features::fixed(v, 4)
            });
        }
        cells.push(
            classes
                .get(yr)
                .cloned()
                .unwrap_or_default()
                .replace(',', " "),
        );
        writeln!(w, "{}", cells.join(",")).map_err(io)?;
    }
    w.flush().map_err(io)
}

/// Writes the queues as CSV: customer, rank, field, question, expected_gain.
pub fn write_queue(path: &Path, r: &AskReport) -> Result<(), EngineError> {
    let err = |e: csv::Error| EngineError::Invalid(format!("{}: {e}", path.display()));
    let mut w = csv::Writer::from_path(path).map_err(err)?;
    w.write_record(["customer", "rank", "field", "question", "expected_gain"])
        .map_err(err)?;
    for q in &r.queues {
        for (k, x) in q.questions.iter().enumerate() {
            w.write_record([
                q.key.as_str(),
                &(k + 1).to_string(),
                &x.field,
                &x.question,
                &format!("{:.5}", x.expected_gain),
            ])
            .map_err(err)?;
        }
    }
    w.flush().map_err(|e| EngineError::Io {
        path: path.display().to_string(),
        source: e,
    })
}
