//! The customer self-service portal's use cases and the staff feedback
//! inbox: a customer corrects an attribute, answers a survey, reviews a
//! product or posts in the forum, and sees what each department holds
//! about them and where it came from; staff read the feedback that lands.
//!
//! Why here: these are writes and reads of customer data by principals, so
//! the policy, the row-level checks and the audit trail apply as for every
//! other use case. Every write goes under the store-made source
//! `self-service` (the one the customer's own consent changes use, see
//! [`crate::privacy::consent`]), through one write transaction that takes
//! the next store generation, so a server's snapshot refresher picks it up
//! like an import. A correction is appended as the self-service source's
//! own attribute row (line N of that source): it never overwrites what a
//! department holds, and where they disagree the staff see a conflict in
//! [`Engine::gap_customer`] (`self-service` is a department of its own
//! there, see [`crate::gap::departments::departments_of`]). Feedback rows
//! carry the stored kinds `survey_nps`, `survey_csat`, `review` and
//! `forum`; the churn features count survey and review scores by those
//! kinds (`survey_*` as surveys, `review` as reviews; a forum post has no
//! score and only dates the customer's activity), and a review also
//! writes a `rating` event so it feeds recommendations like an imported
//! rating. A CSAT score (1–5) joins the survey mean as it is, beside
//! surveys on a 0–10 scale: a known limit of the feature reader.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use infogap_core::access::{Action, FieldClass, Visibility};
use infogap_core::dataset::AttrValue;
use infogap_core::value::{Cell, infer_attr};
use infogap_store::{AttributeRow, EventRow, FeedbackRow, WriteBatch};
use serde::{Deserialize, Serialize};

use crate::access::{
    Access, PolicyNote, PrincipalKind, is_contact_kind, mask_free_text, mask_text_short,
    show_contact,
};
use crate::privacy::consent::{CHANGES_KIND, CHANGES_NAMESPACE, SELF_SERVICE_SOURCE};
use crate::share::show_key;
use crate::{Engine, EngineError};

/// The file (of the `self-service` source) that portal feedback and the
/// rating events of reviews belong to.
pub const FEEDBACK_FILE: &str = "portal-feedback";
/// The channel of everything the portal writes.
pub const PORTAL_CHANNEL: &str = "portal";
/// Stored kind of an NPS answer (0–10).
pub const KIND_NPS: &str = "survey_nps";
/// Stored kind of a CSAT answer (1–5).
pub const KIND_CSAT: &str = "survey_csat";
/// Stored kind of a product review (1–5, the product in a `rating` event).
pub const KIND_REVIEW: &str = "review";
/// Stored kind of a forum post (text only).
pub const KIND_FORUM: &str = "forum";

/// Longest corrected value (characters, trimmed).
pub const MAX_VALUE_CHARS: usize = 200;
/// Longest feedback text (characters, trimmed).
pub const MAX_TEXT_CHARS: usize = 5_000;
/// Most inbox items one page holds.
pub const MAX_INBOX_LIMIT: usize = 500;

/// One writer at a time in this process: the next line of the self-service
/// source is read before the write transaction opens (the store's
/// connection is held by the transaction), so two corrections at once
/// must not both take the same line.
static WRITES: Mutex<()> = Mutex::new(());

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(
        || t.to_string(),
        |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// A value the way conflicts compare them (as the knowledge index does).
fn normalized(v: &AttrValue) -> String {
    v.as_text().trim().to_lowercase()
}

/// At most `n` characters of a user's input, for an error message.
fn shown(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The customer a self-service action acts as: a customer principal holding
/// the grant of `action`.
fn me(a: &Access, action: Action) -> Result<i64, EngineError> {
    if a.action != action {
        return Err(EngineError::Forbidden(format!(
            "this needs the {action} grant, not {}",
            a.action
        )));
    }
    match (a.principal.kind, a.principal.customer) {
        (PrincipalKind::Customer, Some(id)) => Ok(id),
        _ => Err(EngineError::Forbidden(
            "only a signed-in customer acts on their own data here".into(),
        )),
    }
}

/// A value shaped by the visibility of its class (masked text keeps its
/// first character; a masked number is `***`).
fn shape_attr(v: Visibility, value: AttrValue) -> Option<AttrValue> {
    match (v, value) {
        (Visibility::Hidden, _) => None,
        (Visibility::Visible, x) => Some(x),
        (Visibility::Masked, AttrValue::Text(t)) => Some(AttrValue::Text(mask_text_short(&t))),
        (Visibility::Masked, _) => Some(AttrValue::Text("***".into())),
    }
}

/// What values an attribute takes across the store, which decides how a
/// corrected value is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttrType {
    /// Every held value is a number.
    Number,
    /// Every held value is true or false.
    Flag,
    /// Anything else: the value is typed as an import types a cell.
    Any,
}

fn attr_type<'a>(held: impl Iterator<Item = &'a AttrValue>) -> AttrType {
    let (mut numbers, mut flags, mut n) = (0usize, 0usize, 0usize);
    for v in held {
        n += 1;
        match v {
            AttrValue::Int(_) | AttrValue::Float(_) => numbers += 1,
            AttrValue::Bool(_) => flags += 1,
            AttrValue::Text(_) => {}
        }
    }
    if n > 0 && numbers == n {
        AttrType::Number
    } else if n > 0 && flags == n {
        AttrType::Flag
    } else {
        AttrType::Any
    }
}

/// Types a corrected value like an import types a cell (bool, integer,
/// decimal, else text), refusing one that does not fit an attribute whose
/// every held value is a number or a flag.
fn parse_value(name: &str, value: &str, t: AttrType) -> Result<AttrValue, EngineError> {
    let v = infer_attr(&Cell::Str(value))
        .ok_or_else(|| EngineError::Invalid("value: empty; write the correct value".into()))?;
    match (t, &v) {
        (AttrType::Number, AttrValue::Int(_) | AttrValue::Float(_))
        | (AttrType::Flag, AttrValue::Bool(_))
        | (AttrType::Any, _) => Ok(v),
        (AttrType::Number, _) => Err(EngineError::Invalid(format!(
            "value: {name} is a number; write it in digits"
        ))),
        (AttrType::Flag, _) => Err(EngineError::Invalid(format!(
            "value: {name} is true or false"
        ))),
    }
}

/// A value another source holds for the corrected attribute.
#[derive(Debug, Clone, Serialize)]
pub struct HeldValue {
    /// The value (shaped by the attribute's class for the principal).
    pub value: Option<AttrValue>,
    /// The source that holds it.
    pub source: String,
    /// Its line in that source.
    pub line: i64,
}

/// A recorded correction.
#[derive(Debug, Clone, Serialize)]
pub struct Correction {
    /// Customer id.
    pub customer: i64,
    /// Attribute.
    pub attribute: String,
    /// Its field class.
    pub class: FieldClass,
    /// The value recorded, typed as an import would.
    pub value: AttrValue,
    /// Source: `self-service`.
    pub source: String,
    /// Line of the self-service source that holds it (provenance: "self-service, line N").
    pub line: i64,
    /// When it was recorded (RFC 3339; attribute rows carry no time, the
    /// audit record of this correction does).
    pub time: String,
    /// False when the customer's self-service value already was this one
    /// (nothing written; `line` is the existing row's).
    pub changed: bool,
    /// Whether another source holds a different value (staff see it as a
    /// conflict in the customer's knowledge profile).
    pub conflict: bool,
    /// What the other sources hold for this attribute.
    pub others: Vec<HeldValue>,
    /// The policy that shaped it.
    pub policy: PolicyNote,
}

/// A kind of feedback the portal takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    /// Net promoter score: a whole number 0–10, text optional.
    Nps,
    /// Customer satisfaction: a whole number 1–5, text optional.
    Csat,
    /// A product review: the product and a whole number 1–5, text optional.
    Review,
    /// A forum post: text.
    Forum,
}

impl FeedbackKind {
    /// The kind stored on the feedback row.
    pub fn stored(self) -> &'static str {
        match self {
            FeedbackKind::Nps => KIND_NPS,
            FeedbackKind::Csat => KIND_CSAT,
            FeedbackKind::Review => KIND_REVIEW,
            FeedbackKind::Forum => KIND_FORUM,
        }
    }

    /// The score range, when the kind has a score.
    fn range(self) -> Option<(f64, f64)> {
        match self {
            FeedbackKind::Nps => Some((0.0, 10.0)),
            FeedbackKind::Csat | FeedbackKind::Review => Some((1.0, 5.0)),
            FeedbackKind::Forum => None,
        }
    }
}

/// What a customer submits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackInput {
    /// Kind.
    pub kind: FeedbackKind,
    /// Score (NPS 0–10, CSAT and review 1–5; none for a forum post).
    #[serde(default)]
    pub score: Option<f64>,
    /// Free text (at most 5,000 characters; required for a forum post).
    #[serde(default)]
    pub text: Option<String>,
    /// The reviewed product's key as the catalogue knows it (reviews only).
    #[serde(default)]
    pub product: Option<String>,
}

/// What was recorded.
#[derive(Debug, Clone, Serialize)]
pub struct FeedbackReceipt {
    /// Customer id.
    pub customer: i64,
    /// Stored kind (`survey_nps`, `survey_csat`, `review`, `forum`).
    pub kind: String,
    /// Score.
    pub score: Option<f64>,
    /// The text as stored (trimmed).
    pub text: Option<String>,
    /// The reviewed product's key.
    pub product: Option<String>,
    /// Source: `self-service`.
    pub source: String,
    /// File of that source.
    pub file: String,
    /// Channel: `portal`.
    pub channel: String,
    /// When (RFC 3339).
    pub time: String,
    /// Whether a `rating` event was written too (reviews).
    pub rating_event: bool,
}

/// A validated feedback input.
#[derive(Debug, Clone, PartialEq)]
struct CheckedFeedback {
    kind: &'static str,
    score: Option<f64>,
    text: Option<String>,
    product: Option<String>,
}

fn check_feedback(f: &FeedbackInput) -> Result<CheckedFeedback, EngineError> {
    let score = match (f.kind.range(), f.score) {
        (None, Some(_)) => {
            return Err(EngineError::Invalid(
                "score: a forum post has no score".into(),
            ));
        }
        (None, None) => None,
        (Some((lo, hi)), None) => {
            return Err(EngineError::Invalid(format!(
                "score: required, a whole number from {lo} to {hi}"
            )));
        }
        (Some((lo, hi)), Some(s)) => {
            if !s.is_finite() || s.fract() != 0.0 || s < lo || s > hi {
                return Err(EngineError::Invalid(format!(
                    "score: must be a whole number from {lo} to {hi}"
                )));
            }
            Some(s)
        }
    };
    let text = match f.text.as_deref().map(str::trim) {
        None => None,
        Some("") => {
            return Err(EngineError::Invalid(
                "text: empty; leave it out or write something".into(),
            ));
        }
        Some(t) if t.chars().count() > MAX_TEXT_CHARS => {
            return Err(EngineError::Invalid(format!(
                "text: at most {MAX_TEXT_CHARS} characters"
            )));
        }
        Some(t) => Some(t.to_string()),
    };
    if f.kind == FeedbackKind::Forum && text.is_none() {
        return Err(EngineError::Invalid(
            "text: required, a forum post is its text".into(),
        ));
    }
    let product = match (f.kind, f.product.as_deref().map(str::trim)) {
        (FeedbackKind::Review, None | Some("")) => {
            return Err(EngineError::Invalid(
                "product: required, the key of the reviewed product".into(),
            ));
        }
        (FeedbackKind::Review, Some(p)) if p.chars().count() > 200 => {
            return Err(EngineError::Invalid(
                "product: at most 200 characters".into(),
            ));
        }
        (FeedbackKind::Review, Some(p)) => Some(p.to_string()),
        (_, None) => None,
        (_, Some(_)) => {
            return Err(EngineError::Invalid(
                "product: only a review names a product".into(),
            ));
        }
    };
    Ok(CheckedFeedback {
        kind: f.kind.stored(),
        score,
        text,
        product,
    })
}

// ---------------------------------------------------------------------------
// What each department holds about the person.

/// Where facts of one kind came from.
#[derive(Debug, Clone, Serialize)]
pub struct FactSource {
    /// Source.
    pub source: String,
    /// File of that source, when the store records one.
    pub file: Option<String>,
    /// Rows.
    pub count: usize,
}

/// Facts of one kind a department holds.
#[derive(Debug, Clone, Serialize)]
pub struct Holding {
    /// `identities`, `attributes`, `orders`, `order_lines`, `events`,
    /// `feedback`, `campaigns` or `consents`.
    pub kind: String,
    /// Rows.
    pub count: usize,
    /// Date of the earliest dated row (RFC 3339).
    pub first: Option<String>,
    /// Date of the latest dated row (RFC 3339).
    pub last: Option<String>,
    /// Where they came from.
    pub from: Vec<FactSource>,
}

/// One identity key with its provenance.
#[derive(Debug, Clone, Serialize)]
pub struct MyIdentity {
    /// Namespace.
    pub namespace: String,
    /// `customer`, `email` or `phone`.
    pub kind: String,
    /// Value (per the contact class).
    pub value: String,
    /// Source that brought it.
    pub source: String,
    /// Line of that source.
    pub line: i64,
}

/// One attribute with its provenance.
#[derive(Debug, Clone, Serialize)]
pub struct MyAttribute {
    /// Name.
    pub name: String,
    /// Field class.
    pub class: FieldClass,
    /// Value (per its class).
    pub value: Option<AttrValue>,
    /// Source.
    pub source: String,
    /// File of that source (its last import), if it has one.
    pub file: Option<String>,
    /// Line of that source.
    pub line: i64,
}

/// One department's holdings about the person.
#[derive(Debug, Clone, Serialize)]
pub struct MyDepartment {
    /// Department (a `[[department]]`, else a source).
    pub name: String,
    /// Its sources that hold something about the person.
    pub sources: Vec<String>,
    /// Facts by kind.
    pub holdings: Vec<Holding>,
    /// Attributes with their provenance.
    pub attributes: Vec<MyAttribute>,
    /// Identity keys with their provenance.
    pub identities: Vec<MyIdentity>,
}

/// What each department holds about the calling customer, and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct MyData {
    /// Customer id.
    pub customer: i64,
    /// Display key.
    pub key: String,
    /// How departments are formed (`[[department]] in the config` or one per source).
    pub grouping: String,
    /// Departments that hold something, by name.
    pub departments: Vec<MyDepartment>,
    /// When this view was made (RFC 3339).
    pub generated_at: String,
    /// The policy that shaped it.
    pub policy: PolicyNote,
}

/// Accumulates rows of one kind for one department.
#[derive(Default)]
struct KindAcc {
    count: usize,
    first: Option<i64>,
    last: Option<i64>,
    from: BTreeMap<(String, Option<String>), usize>,
}

impl KindAcc {
    fn add(&mut self, time: Option<i64>, source: &str, file: Option<&str>) {
        self.count += 1;
        if let Some(t) = time {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
        *self
            .from
            .entry((source.to_string(), file.map(str::to_string)))
            .or_default() += 1;
    }
}

#[derive(Default)]
struct DeptAcc {
    sources: BTreeSet<String>,
    kinds: BTreeMap<&'static str, KindAcc>,
    attributes: Vec<MyAttribute>,
    identities: Vec<MyIdentity>,
}

/// Order of the kinds in a department's holdings.
const HOLDING_KINDS: [&str; 8] = [
    "identities",
    "attributes",
    "orders",
    "order_lines",
    "events",
    "feedback",
    "campaigns",
    "consents",
];

// ---------------------------------------------------------------------------
// The staff inbox.

/// Which feedback the inbox lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InboxQuery {
    /// Only this stored kind (`survey_nps`, `review`, `ticket`, …).
    pub kind: Option<String>,
    /// Only scores at least this.
    pub min_score: Option<f64>,
    /// Only scores at most this.
    pub max_score: Option<f64>,
    /// Items on a page (1 to 500).
    pub limit: usize,
    /// The cursor of the page before (its `next_cursor`).
    pub before: Option<String>,
}

impl Default for InboxQuery {
    fn default() -> Self {
        InboxQuery {
            kind: None,
            min_score: None,
            max_score: None,
            limit: 50,
            before: None,
        }
    }
}

/// One piece of feedback as the principal may see it.
#[derive(Debug, Clone, Serialize)]
pub struct InboxItem {
    /// Feedback row id.
    pub id: i64,
    /// Customer id (left out when pseudonymized).
    #[serde(skip_serializing_if = "crate::privacy::aggregate::withheld")]
    pub customer: i64,
    /// Display key (per the contact class).
    pub key: String,
    /// Stored kind.
    pub kind: String,
    /// Score (behaviour class).
    pub score: Option<f64>,
    /// Text (feedback_text class: visible, masked to its length, or left out).
    pub text: Option<String>,
    /// The text's language, sentiment and topics (only beside a text shown
    /// as it is: the note says what the text says).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<crate::feedback::TextNote>,
    /// Channel.
    pub channel: Option<String>,
    /// When (RFC 3339).
    pub time: Option<String>,
    /// Source.
    pub source: String,
}

impl crate::privacy::aggregate::Pseudonymize for InboxItem {
    fn ident(&mut self) -> (&mut i64, &mut String) {
        (&mut self.customer, &mut self.key)
    }
}

/// One kind's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindFigures {
    /// Stored kind.
    pub kind: String,
    /// Items.
    pub count: usize,
    /// Items with a score.
    pub scored: usize,
    /// Mean score (behaviour class; none without scores).
    pub mean_score: Option<f64>,
}

/// Figures over every item the query matches (not only the page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboxSummary {
    /// Items.
    pub count: usize,
    /// Per kind.
    pub kinds: Vec<KindFigures>,
    /// Net promoter score of the `survey_nps` answers: % promoters (9–10)
    /// minus % detractors (0–6), from -100 to 100.
    pub nps: Option<f64>,
    /// `survey_nps` answers counted.
    pub nps_answers: usize,
    /// Share of the `survey_csat` answers that are 4 or 5, in %.
    pub csat_percent: Option<f64>,
    /// `survey_csat` answers counted.
    pub csat_answers: usize,
}

/// A page of the feedback inbox.
#[derive(Debug, Clone, Serialize)]
pub struct Inbox {
    /// Items, newest first.
    pub items: Vec<InboxItem>,
    /// Cursor of the next (older) page.
    pub next_cursor: Option<String>,
    /// Figures over everything the query matches.
    pub summary: InboxSummary,
    /// Whether keys are keyed-hash pseudonyms and ids left out.
    pub pseudonymized: bool,
    /// The policy that shaped it.
    pub policy: PolicyNote,
}

/// The figures of a set of (kind, score) pairs; scores left out when the
/// principal may not see them.
fn summarize(rows: &[(&str, Option<f64>)], scores: bool) -> InboxSummary {
    let mut by: BTreeMap<&str, (usize, usize, f64)> = BTreeMap::new();
    let (mut nps, mut csat) = ((0usize, 0usize, 0usize), (0usize, 0usize));
    for (kind, score) in rows {
        let e = by.entry(kind).or_default();
        e.0 += 1;
        if let Some(s) = score.filter(|s| s.is_finite()) {
            e.1 += 1;
            e.2 += s;
            if *kind == KIND_NPS {
                nps.0 += 1;
                if s >= 9.0 {
                    nps.1 += 1;
                } else if s <= 6.0 {
                    nps.2 += 1;
                }
            } else if *kind == KIND_CSAT {
                csat.0 += 1;
                if s >= 4.0 {
                    csat.1 += 1;
                }
            }
        }
    }
    let pct = |a: usize, n: usize| 100.0 * a as f64 / n as f64;
    InboxSummary {
        count: rows.len(),
        kinds: by
            .into_iter()
            .map(|(kind, (count, scored, sum))| KindFigures {
                kind: kind.to_string(),
                count,
                scored: if scores { scored } else { 0 },
                mean_score: (scores && scored > 0).then(|| sum / scored as f64),
            })
            .collect(),
        nps: (scores && nps.0 > 0).then(|| pct(nps.1, nps.0) - pct(nps.2, nps.0)),
        nps_answers: if scores { nps.0 } else { 0 },
        csat_percent: (scores && csat.0 > 0).then(|| pct(csat.1, csat.0)),
        csat_answers: if scores { csat.0 } else { 0 },
    }
}

fn parse_inbox_cursor(s: &str) -> Result<(i64, i64), EngineError> {
    let bad = || EngineError::Invalid("before: not a cursor this inbox gave".into());
    let (t, id) = s.split_once('.').ok_or_else(bad)?;
    Ok((
        t.parse().map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    ))
}

impl Engine {
    /// The customer's first identity (the one store-made rows hang on, as
    /// consent changes do) and the self-service source's id if it exists;
    /// refuses when a config source took the name with another kind.
    fn self_service_target(&self, id: i64) -> Result<(i64, Option<i64>), EngineError> {
        let store = self.store();
        let identity = store
            .customer_identities(id)?
            .iter()
            .map(|i| i.id)
            .min()
            .ok_or_else(|| EngineError::NotFound(format!("no customer #{id}")))?;
        let source = match store
            .sources()?
            .into_iter()
            .find(|s| s.name == SELF_SERVICE_SOURCE)
        {
            Some(s) if s.kind != CHANGES_KIND || s.namespace != CHANGES_NAMESPACE => {
                return Err(EngineError::Invalid(format!(
                    "a source of the config is named {SELF_SERVICE_SOURCE:?} (kind {}), the name infogap keeps for what customers record themselves: rename that source",
                    s.kind
                )));
            }
            Some(s) => Some(s.id),
            None => None,
        };
        Ok((identity, source))
    }

    /// A customer corrects one of their attributes (`self.write`, customer
    /// principals only). The attribute must be one the store holds for
    /// some customer; the value (trimmed, 1–200 characters) is typed like
    /// an imported cell. It is appended as the `self-service` source's row
    /// with the next line of that source and never overwrites another
    /// source's value; where they differ, staff see a conflict. Audited as
    /// `self.correct` with the attribute's name (never the value).
    pub fn submit_correction(
        &self,
        a: &Access,
        attribute: &str,
        value: &str,
    ) -> Result<Correction, EngineError> {
        let id = me(a, Action::SelfWrite)?;
        let attribute = attribute.trim();
        if attribute.is_empty() {
            return Err(EngineError::Invalid(
                "attribute: required, the name of the attribute to correct".into(),
            ));
        }
        let value = value.trim();
        let n = value.chars().count();
        if n == 0 {
            return Err(EngineError::Invalid(
                "value: empty; write the correct value".into(),
            ));
        }
        if n > MAX_VALUE_CHARS {
            return Err(EngineError::Invalid(format!(
                "value: at most {MAX_VALUE_CHARS} characters"
            )));
        }
        let _one = WRITES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let store = self.store();
        let prov = store.provenance()?;
        let held: Vec<&infogap_store::AttributeSource> = prov
            .attributes
            .iter()
            .filter(|r| r.name == attribute)
            .collect();
        if attribute == crate::gap::RECORD_TIME || held.is_empty() {
            return Err(EngineError::Invalid(format!(
                "attribute: {:?} is not an attribute the store holds",
                shown(attribute, 40)
            )));
        }
        let parsed = parse_value(attribute, value, attr_type(held.iter().map(|r| &r.value)))?;
        let (identity, source) = self.self_service_target(id)?;
        let names: HashMap<i64, String> = store
            .sources()?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect();
        let class = a.attribute_class(attribute);
        let vis = a.visibility(class);
        let mine_here = |r: &&&infogap_store::AttributeSource| r.customer_id == id;
        let existing = held
            .iter()
            .filter(mine_here)
            .find(|r| Some(r.source_id) == source);
        let others: Vec<HeldValue> = held
            .iter()
            .filter(mine_here)
            .filter(|r| Some(r.source_id) != source)
            .map(|r| HeldValue {
                value: shape_attr(vis, r.value.clone()),
                source: names.get(&r.source_id).cloned().unwrap_or_default(),
                line: r.line,
            })
            .collect();
        let conflict = held
            .iter()
            .filter(mine_here)
            .filter(|r| Some(r.source_id) != source)
            .any(|r| normalized(&r.value) != normalized(&parsed));
        let now = chrono::Utc::now().timestamp();
        let (line, changed) = match existing {
            Some(r) if r.value == parsed => (r.line, false),
            _ => {
                let line = prov
                    .attributes
                    .iter()
                    .filter(|r| Some(r.source_id) == source)
                    .map(|r| r.line)
                    .max()
                    .unwrap_or(0)
                    + 1;
                let mut tx = store.begin()?;
                let source_id =
                    tx.upsert_source(SELF_SERVICE_SOURCE, CHANGES_KIND, CHANGES_NAMESPACE)?;
                tx.write(&WriteBatch {
                    attributes: vec![AttributeRow {
                        identity_id: identity,
                        name: attribute.to_string(),
                        value: parsed.clone(),
                        source_id,
                        line,
                    }],
                    ..Default::default()
                })?;
                tx.commit()?;
                (line, true)
            }
        };
        drop(_one);
        self.record(crate::audit::entry(
            &a.principal,
            "self.correct",
            vec![id],
            vec![attribute.to_string()],
            if changed { "ok" } else { "ok; unchanged" },
        ))?;
        Ok(Correction {
            customer: id,
            attribute: attribute.to_string(),
            class,
            value: parsed,
            source: SELF_SERVICE_SOURCE.to_string(),
            line,
            time: rfc3339(now),
            changed,
            conflict,
            others,
            policy: a.note(),
        })
    }

    /// A customer answers a survey (NPS 0–10, CSAT 1–5), reviews a product
    /// (1–5) or posts in the forum (`self.write`, customer principals only).
    /// Written as a feedback row of the `self-service` source, channel
    /// `portal`, time now; a review also writes a `rating` event of the
    /// product with the score, as an imported rating. Audited as
    /// `self.feedback` with the kind (never the text).
    pub fn submit_feedback(
        &self,
        a: &Access,
        f: &FeedbackInput,
    ) -> Result<FeedbackReceipt, EngineError> {
        let id = me(a, Action::SelfWrite)?;
        let c = check_feedback(f)?;
        // the reviewed product, as the catalogue knows it
        let product_id = match &c.product {
            None => None,
            Some(key) => {
                let ds = self.dataset()?;
                let p = ds.products.iter().find(|p| &p.key == key).ok_or_else(|| {
                    EngineError::Invalid(format!(
                        "product: {:?} is not a product of the catalogue",
                        shown(key, 40)
                    ))
                })?;
                Some(p.id)
            }
        };
        let _one = WRITES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (identity, _) = self.self_service_target(id)?;
        let now = chrono::Utc::now().timestamp();
        let store = self.store();
        let mut tx = store.begin()?;
        let source_id = tx.upsert_source(SELF_SERVICE_SOURCE, CHANGES_KIND, CHANGES_NAMESPACE)?;
        let file_id = tx.upsert_file(source_id, FEEDBACK_FILE)?;
        let events = match (product_id, c.score) {
            (Some(p), Some(s)) => vec![EventRow {
                source_id,
                file_id,
                identity_id: identity,
                kind: "rating".into(),
                product_id: Some(p),
                value: Some(s),
                channel: Some(PORTAL_CHANNEL.into()),
                time: Some(now),
            }],
            _ => Vec::new(),
        };
        let rating_event = !events.is_empty();
        tx.write(&WriteBatch {
            feedback: vec![FeedbackRow {
                source_id,
                file_id,
                identity_id: identity,
                kind: c.kind.to_string(),
                score: c.score,
                text: c.text.clone(),
                channel: Some(PORTAL_CHANNEL.into()),
                time: Some(now),
            }],
            events,
            ..Default::default()
        })?;
        tx.commit()?;
        drop(_one);
        // the classes written (never the text itself)
        let mut written = Vec::new();
        if c.score.is_some() {
            written.push(FieldClass::Behaviour.as_str().to_string());
        }
        if c.text.is_some() {
            written.push(FieldClass::FeedbackText.as_str().to_string());
        }
        self.record(crate::audit::entry(
            &a.principal,
            "self.feedback",
            vec![id],
            written,
            &format!("ok; kind {}", c.kind),
        ))?;
        Ok(FeedbackReceipt {
            customer: id,
            kind: c.kind.to_string(),
            score: c.score,
            text: c.text,
            product: c.product,
            source: SELF_SERVICE_SOURCE.to_string(),
            file: FEEDBACK_FILE.to_string(),
            channel: PORTAL_CHANNEL.to_string(),
            time: rfc3339(now),
            rating_event,
        })
    }

    /// What each department holds about the calling customer and where it
    /// came from (`self.read`, customer principals only): per department
    /// (the `[[department]]` groups, else one per source; `self-service`
    /// and any source no group lists are departments of their own), the
    /// facts by kind with counts, first and last dates and their source
    /// and file; every attribute with its value, source, file and line;
    /// the identity keys. Shaped by the customer role's field classes.
    /// Audited as `self.read`.
    pub fn share_my_data(&self, a: &Access) -> Result<MyData, EngineError> {
        let id = me(a, Action::SelfRead)?;
        let rec = self.admit(a, id)?;
        let store = self.store();
        let sources = store.sources()?;
        let src_name: HashMap<i64, String> =
            sources.iter().map(|s| (s.id, s.name.clone())).collect();
        let stored = self.stored_departments()?;
        let (depts, grouping) = crate::gap::departments::departments_of(&stored, &sources);
        // source → its departments; a source no department lists is one
        let mut dept_of: HashMap<String, Vec<String>> = HashMap::new();
        for d in &depts {
            for s in &d.sources {
                dept_of.entry(s.clone()).or_default().push(d.name.clone());
            }
        }
        let mut acc: BTreeMap<String, DeptAcc> = BTreeMap::new();
        let mut targets = |source: &str| -> Vec<String> {
            dept_of
                .entry(source.to_string())
                .or_insert_with(|| vec![source.to_string()])
                .clone()
        };
        let contact = a.visibility(FieldClass::Contact);
        let behaviour = a.visibility(FieldClass::Behaviour) != Visibility::Hidden;
        let add = |acc: &mut BTreeMap<String, DeptAcc>,
                   depts: Vec<String>,
                   kind: &'static str,
                   time: Option<i64>,
                   source: &str,
                   file: Option<&str>| {
            for d in depts {
                let e = acc.entry(d).or_default();
                e.sources.insert(source.to_string());
                e.kinds.entry(kind).or_default().add(time, source, file);
            }
        };

        // identities
        for i in &store.customer_identities(id)? {
            let value = if is_contact_kind(&i.kind) {
                match show_contact(contact, &i.kind, &i.value) {
                    Some(v) => v,
                    None => continue,
                }
            } else {
                i.value.clone()
            };
            let source = src_name.get(&i.source_id).cloned().unwrap_or_default();
            let ds = targets(&source);
            add(&mut acc, ds.clone(), "identities", None, &source, None);
            for d in ds {
                acc.entry(d).or_default().identities.push(MyIdentity {
                    namespace: i.namespace.clone(),
                    kind: i.kind.clone(),
                    value: value.clone(),
                    source: source.clone(),
                    line: i.line,
                });
            }
        }

        // attributes: rows with their line, values through the reader that
        // opens them (joined by name and source, as the export does)
        let rows = store.person_rows(id)?;
        let facts = store.customer_facts(id, None)?;
        let mut values: HashMap<(String, String), std::collections::VecDeque<AttrValue>> =
            HashMap::new();
        for (name, value, source) in facts.attributes {
            values.entry((name, source)).or_default().push_back(value);
        }
        let mut files: HashMap<String, String> = HashMap::new();
        for run in store.import_runs()? {
            if run.status != "failed" {
                // newest first: the first run of a source names its file
                files.entry(run.source).or_insert(run.file);
            }
        }
        for r in &rows.attributes {
            let class = a.attribute_class(&r.name);
            let vis = a.visibility(class);
            let value = values
                .get_mut(&(r.name.clone(), r.source.clone()))
                .and_then(std::collections::VecDeque::pop_front);
            if vis == Visibility::Hidden {
                continue;
            }
            let file = files.get(&r.source).cloned();
            let ds = targets(&r.source);
            add(
                &mut acc,
                ds.clone(),
                "attributes",
                None,
                &r.source,
                file.as_deref(),
            );
            for d in ds {
                acc.entry(d).or_default().attributes.push(MyAttribute {
                    name: r.name.clone(),
                    class,
                    value: value.clone().and_then(|v| shape_attr(vis, v)),
                    source: r.source.clone(),
                    file: file.clone(),
                    line: r.line,
                });
            }
        }

        // dated facts
        if behaviour {
            for o in &rows.orders {
                let ds = targets(&o.source);
                add(&mut acc, ds, "orders", o.time, &o.source, o.file.as_deref());
            }
            for l in &rows.order_lines {
                let ds = targets(&l.source);
                add(
                    &mut acc,
                    ds,
                    "order_lines",
                    l.time,
                    &l.source,
                    Some(&l.file),
                );
            }
            for e in &rows.events {
                let ds = targets(&e.source);
                add(&mut acc, ds, "events", e.time, &e.source, Some(&e.file));
            }
            for c in &rows.campaigns {
                let ds = targets(&c.source);
                add(&mut acc, ds, "campaigns", c.time, &c.source, Some(&c.file));
            }
            for c in store.consent_history(id)? {
                let ds = targets(&c.source);
                add(&mut acc, ds, "consents", c.time, &c.source, Some(&c.file));
            }
            for f in &rows.feedback {
                let ds = targets(&f.source);
                add(&mut acc, ds, "feedback", f.time, &f.source, Some(&f.file));
            }
        }
        // departments in the configured order, then the sources of their own
        let order: Vec<String> = depts.iter().map(|d| d.name.clone()).collect();
        let mut names: Vec<String> = acc.keys().cloned().collect();
        names.sort_by_key(|n| {
            (
                order.iter().position(|o| o == n).unwrap_or(usize::MAX),
                n.clone(),
            )
        });
        let departments = names
            .into_iter()
            .filter_map(|n| acc.remove(&n).map(|d| (n, d)))
            .map(|(name, mut d)| MyDepartment {
                name,
                sources: d.sources.into_iter().filter(|s| !s.is_empty()).collect(),
                holdings: HOLDING_KINDS
                    .iter()
                    .filter_map(|k| d.kinds.remove(k).map(|x| (*k, x)))
                    .map(|(kind, x)| Holding {
                        kind: kind.to_string(),
                        count: x.count,
                        first: x.first.map(rfc3339),
                        last: x.last.map(rfc3339),
                        from: x
                            .from
                            .into_iter()
                            .map(|((source, file), count)| FactSource {
                                source,
                                file,
                                count,
                            })
                            .collect(),
                    })
                    .collect(),
                attributes: d.attributes,
                identities: d.identities,
            })
            .collect();
        let view = crate::invariants::checked(
            "my data",
            MyData {
                customer: id,
                key: show_key(a, id, &rec.display_key(a)),
                grouping,
                departments,
                generated_at: infogap_store::now_rfc3339(),
                policy: a.note(),
            },
        )?;
        // feedback text is not part of this view (counts and dates are behaviour)
        let classes = [
            FieldClass::Contact,
            FieldClass::Demographic,
            FieldClass::Behaviour,
        ];
        self.record_access(a, "self.read", vec![id], a.shown_classes(&classes))?;
        Ok(view)
    }

    /// The staff feedback inbox (`customers.read`): surveys, reviews,
    /// tickets and forum posts of every source, newest first, filtered by
    /// kind and score; a department key sees only its sources' feedback.
    /// Keys follow the contact class, scores the behaviour class, text the
    /// feedback_text class (visible, masked to its length, or left out).
    /// With figures over everything the query matches: count and mean score
    /// per kind, NPS and CSAT. Audited as `feedback.read` with the
    /// customers listed; an analyst's page is pseudonymized like other
    /// per-person lists.
    pub fn share_feedback_inbox(&self, a: &Access, q: &InboxQuery) -> Result<Inbox, EngineError> {
        if a.action != Action::CustomersRead || a.principal.kind == PrincipalKind::Customer {
            return Err(EngineError::Forbidden(
                "the feedback inbox needs a staff grant of customers.read".into(),
            ));
        }
        if !(1..=MAX_INBOX_LIMIT).contains(&q.limit) {
            return Err(EngineError::Invalid(format!(
                "limit: from 1 to {MAX_INBOX_LIMIT}"
            )));
        }
        for (name, v) in [("min_score", q.min_score), ("max_score", q.max_score)] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(EngineError::Invalid(format!("{name}: must be a number")));
            }
        }
        if let (Some(lo), Some(hi)) = (q.min_score, q.max_score)
            && lo > hi
        {
            return Err(EngineError::Invalid(
                "min_score: greater than max_score".into(),
            ));
        }
        let kind = match q.kind.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(k) if k.chars().count() > 100 => {
                return Err(EngineError::Invalid("kind: at most 100 characters".into()));
            }
            Some(k) => Some(k.to_lowercase()),
        };
        let behaviour = a.visibility(FieldClass::Behaviour);
        let scores = behaviour != Visibility::Hidden;
        if !scores && (q.min_score.is_some() || q.max_score.is_some()) {
            return Err(EngineError::Forbidden(format!(
                "role {:?} does not see scores, so it cannot filter by them",
                a.role.name
            )));
        }
        let before = q.before.as_deref().map(parse_inbox_cursor).transpose()?;
        let FeedbackRows {
            raw,
            prov,
            names,
            owner,
            scope,
        } = self.feedback_rows(a)?;
        // (sort key, customer, source, row) of every matching row
        let mut rows = Vec::new();
        for (file, seg) in &raw.segments {
            let Some(&src) = prov.file_sources.get(file) else {
                continue;
            };
            if scope.as_ref().is_some_and(|s| !s.contains(&src)) {
                continue;
            }
            for f in &seg.feedback {
                if kind.as_deref().is_some_and(|k| f.kind.to_lowercase() != k) {
                    continue;
                }
                let s = f.score.filter(|s| s.is_finite());
                if q.min_score.is_some_and(|lo| s.is_none_or(|s| s < lo))
                    || q.max_score.is_some_and(|hi| s.is_none_or(|s| s > hi))
                {
                    continue;
                }
                let Some(&customer) = owner.get(&f.identity_id) else {
                    continue;
                };
                rows.push(((f.time.unwrap_or(-1), f.id), customer, src, f));
            }
        }
        let summary = summarize(
            &rows
                .iter()
                .map(|(_, _, _, f)| (f.kind.as_str(), f.score))
                .collect::<Vec<_>>(),
            scores,
        );
        rows.sort_by_key(|r| std::cmp::Reverse(r.0));
        let start = match before {
            Some(c) => rows.partition_point(|r| r.0 >= c),
            None => 0,
        };
        let end = start.saturating_add(q.limit).min(rows.len());
        let page = rows.get(start..end).unwrap_or(&[]);
        let next_cursor = (end < rows.len())
            .then(|| page.last().map(|r| format!("{}.{}", r.0.0, r.0.1)))
            .flatten();
        // display keys: the first identity the principal's scope may see
        let mut keys: HashMap<i64, String> = HashMap::new();
        for (_, c, _, _) in page {
            if keys.contains_key(c) {
                continue;
            }
            let idents = self.store().customer_identities(*c)?;
            let key = idents
                .iter()
                .find(|i| scope.as_ref().is_none_or(|s| s.contains(&i.source_id)))
                .map(|i| format!("{}:{}", i.namespace, i.value))
                .unwrap_or_else(|| format!("#{c}"));
            keys.insert(*c, show_key(a, *c, &key));
        }
        let text = a.visibility(FieldClass::FeedbackText);
        let items: Vec<InboxItem> = page
            .iter()
            .map(|(_, c, src, f)| InboxItem {
                id: f.id,
                customer: *c,
                key: keys.get(c).cloned().unwrap_or_else(|| format!("#{c}")),
                kind: f.kind.clone(),
                score: f.score.filter(|_| scores),
                text: match text {
                    Visibility::Visible => f.text.clone(),
                    Visibility::Masked => f.text.as_deref().map(mask_free_text),
                    Visibility::Hidden => None,
                },
                analysis: f
                    .text
                    .as_deref()
                    .filter(|t| text == Visibility::Visible && !t.trim().is_empty())
                    .map(crate::feedback::TextNote::of),
                channel: f.channel.clone(),
                time: f.time.map(rfc3339),
                source: names.get(src).cloned().unwrap_or_default(),
            })
            .collect();
        let customers: Vec<i64> = items
            .iter()
            .map(|i| i.customer)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut inbox = crate::invariants::checked(
            "feedback inbox",
            Inbox {
                items,
                next_cursor,
                summary,
                pseudonymized: false,
                policy: a.note(),
            },
        )?;
        self.record_access(
            a,
            "feedback.read",
            customers,
            a.shown_classes(&[
                FieldClass::Contact,
                FieldClass::Behaviour,
                FieldClass::FeedbackText,
            ]),
        )?;
        inbox.pseudonymized = crate::privacy::aggregate::pseudonymize(self, a, &mut inbox.items)?;
        Ok(inbox)
    }
}

/// What the feedback inbox and the feedback summary read to place each
/// feedback row: the raw snapshot, which file came from which source, the
/// sources' names, each identity's customer, and the department's sources.
pub(crate) struct FeedbackRows {
    pub(crate) raw: infogap_store::snapshot::RawSnapshot,
    pub(crate) prov: infogap_store::Provenance,
    pub(crate) names: HashMap<i64, String>,
    pub(crate) owner: HashMap<i64, i64>,
    pub(crate) scope: Option<HashSet<i64>>,
}

impl Engine {
    /// [`FeedbackRows`] for a principal's scope.
    pub(crate) fn feedback_rows(&self, a: &Access) -> Result<FeedbackRows, EngineError> {
        let (raw, _) = self.current_raw()?;
        let prov = self.store().provenance()?;
        let names: HashMap<i64, String> = self
            .store()
            .sources()?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect();
        let owner: HashMap<i64, i64> = raw
            .identities
            .iter()
            .map(|i| (i.id, i.customer_id))
            .collect();
        let scope: Option<HashSet<i64>> = a
            .department_sources
            .as_ref()
            .map(|v| v.iter().copied().collect());
        Ok(FeedbackRows {
            raw,
            prov,
            names,
            owner,
            scope,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(kind: FeedbackKind, score: Option<f64>, text: Option<&str>) -> FeedbackInput {
        FeedbackInput {
            kind,
            score,
            text: text.map(str::to_string),
            product: None,
        }
    }

    fn invalid_on(r: Result<CheckedFeedback, EngineError>, field: &str) {
        match r {
            Err(EngineError::Invalid(m)) => {
                assert!(m.starts_with(&format!("{field}:")), "{m}")
            }
            other => panic!("expected Invalid on {field}, got {other:?}"),
        }
    }

    #[test]
    fn feedback_rules_name_the_field() {
        use FeedbackKind::*;
        invalid_on(check_feedback(&input(Nps, Some(11.0), None)), "score");
        invalid_on(check_feedback(&input(Nps, Some(7.5), None)), "score");
        invalid_on(check_feedback(&input(Nps, None, Some("hi"))), "score");
        invalid_on(check_feedback(&input(Nps, Some(f64::NAN), None)), "score");
        invalid_on(check_feedback(&input(Csat, Some(0.0), None)), "score");
        invalid_on(check_feedback(&input(Csat, Some(6.0), None)), "score");
        invalid_on(check_feedback(&input(Forum, None, None)), "text");
        invalid_on(check_feedback(&input(Forum, None, Some("   "))), "text");
        invalid_on(check_feedback(&input(Forum, Some(3.0), Some("x"))), "score");
        invalid_on(check_feedback(&input(Review, Some(4.0), None)), "product");
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        invalid_on(check_feedback(&input(Csat, Some(3.0), Some(&long))), "text");
        let mut nps_product = input(Nps, Some(3.0), None);
        nps_product.product = Some("P1".into());
        invalid_on(check_feedback(&nps_product), "product");

        let ok = check_feedback(&input(Nps, Some(0.0), Some("  fine  "))).expect("valid");
        assert_eq!(ok.kind, KIND_NPS);
        assert_eq!(ok.text.as_deref(), Some("fine"));
        let ok = check_feedback(&input(Forum, None, Some("a post"))).expect("valid");
        assert_eq!((ok.kind, ok.score), (KIND_FORUM, None));
        let exact = "é".repeat(MAX_TEXT_CHARS);
        assert!(check_feedback(&input(Csat, Some(5.0), Some(&exact))).is_ok());
        let mut review = input(Review, Some(5.0), None);
        review.product = Some(" P7 ".into());
        let ok = check_feedback(&review).expect("valid");
        assert_eq!(
            (ok.kind, ok.product.as_deref(), ok.score),
            (KIND_REVIEW, Some("P7"), Some(5.0))
        );
    }

    #[test]
    fn kinds_serialize_snake_case_and_store_their_names() {
        let f: FeedbackInput =
            serde_json::from_str(r#"{"kind":"csat","score":4}"#).expect("parses");
        assert_eq!(f.kind, FeedbackKind::Csat);
        assert_eq!(f.kind.stored(), "survey_csat");
        assert_eq!(
            serde_json::to_string(&FeedbackKind::Nps).expect("json"),
            "\"nps\""
        );
        let q: InboxQuery = serde_json::from_str(r#"{"kind":"review"}"#).expect("parses");
        assert_eq!(q.limit, 50);
    }

    #[test]
    fn nps_and_csat_figures() {
        // NPS: 2 promoters (9, 10), 1 passive (7), 2 detractors (0, 6) of 5
        let rows = [
            (KIND_NPS, Some(9.0)),
            (KIND_NPS, Some(10.0)),
            (KIND_NPS, Some(7.0)),
            (KIND_NPS, Some(0.0)),
            (KIND_NPS, Some(6.0)),
            (KIND_CSAT, Some(5.0)),
            (KIND_CSAT, Some(4.0)),
            (KIND_CSAT, Some(2.0)),
            (KIND_CSAT, Some(1.0)),
            (KIND_FORUM, None),
        ];
        let s = summarize(&rows, true);
        assert_eq!(s.count, 10);
        assert_eq!(s.nps_answers, 5);
        assert!((s.nps.expect("nps") - 0.0).abs() < 1e-9);
        assert_eq!(s.csat_answers, 4);
        assert!((s.csat_percent.expect("csat") - 50.0).abs() < 1e-9);
        let nps = s.kinds.iter().find(|k| k.kind == KIND_NPS).expect("nps");
        assert!((nps.mean_score.expect("mean") - 32.0 / 5.0).abs() < 1e-9);
        let forum = s
            .kinds
            .iter()
            .find(|k| k.kind == KIND_FORUM)
            .expect("forum");
        assert_eq!((forum.count, forum.scored, forum.mean_score), (1, 0, None));
        // promoters only
        let s = summarize(&[(KIND_NPS, Some(10.0)), (KIND_NPS, Some(9.0))], true);
        assert_eq!(s.nps, Some(100.0));
        // scores hidden from the role: counts only
        let s = summarize(&rows, false);
        assert_eq!((s.nps, s.csat_percent, s.nps_answers), (None, None, 0));
        assert!(s.kinds.iter().all(|k| k.mean_score.is_none()));
    }

    #[test]
    fn corrected_values_are_typed_like_imports_and_fit_the_attribute() {
        let ints = [AttrValue::Int(3), AttrValue::Float(2.5)];
        let t = attr_type(ints.iter());
        assert_eq!(t, AttrType::Number);
        assert_eq!(
            parse_value("kids", "2", t).expect("number"),
            AttrValue::Int(2)
        );
        assert!(matches!(
            parse_value("kids", "two", t),
            Err(EngineError::Invalid(m)) if m.starts_with("value:") && !m.contains("two")
        ));
        let flags = [AttrValue::Bool(true)];
        let t = attr_type(flags.iter());
        assert_eq!(t, AttrType::Flag);
        assert_eq!(
            parse_value("vip", "FALSE", t).expect("flag"),
            AttrValue::Bool(false)
        );
        assert!(parse_value("vip", "maybe", t).is_err());
        let mixed = [AttrValue::Text("25-34".into()), AttrValue::Int(30)];
        let t = attr_type(mixed.iter());
        assert_eq!(t, AttrType::Any);
        assert_eq!(
            parse_value("age_band", "35-44", t).expect("text"),
            AttrValue::Text("35-44".into())
        );
        // a leading zero stays text, as on import
        assert_eq!(
            parse_value("postcode", "01234", t).expect("text"),
            AttrValue::Text("01234".into())
        );
    }

    #[test]
    fn inbox_cursors_round_trip_and_refuse_garbage() {
        assert_eq!(
            parse_inbox_cursor("1700000000.42").expect("ok"),
            (1_700_000_000, 42)
        );
        assert_eq!(parse_inbox_cursor("-1.7").expect("ok"), (-1, 7));
        for bad in ["", "12", "a.b", "1.2.3"] {
            assert!(
                matches!(parse_inbox_cursor(bad), Err(EngineError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
