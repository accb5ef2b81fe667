//! The sharing use cases: what a principal may see of customers, shaped by
//! the policy and recorded in the audit trail before it leaves the engine.
//!
//! Every function here takes an [`Access`] (from [`Engine::authorize`]),
//! checks row-level rights (a customer token sees only its customer; a
//! department key only customers its sources know, and only those sources'
//! facts), builds the output with each field class visible, masked or left
//! out, and writes the audit record. The HTTP API, the CLI (`--as-role`),
//! exports and later pages, webhooks and alerts all call these, so they
//! cannot disagree. Predictions come from [`Insights`]: scores of every
//! customer computed once per snapshot generation and model version.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use infogap_core::access::{Action, FieldClass, Visibility};
use infogap_core::dataset::{AttrValue, Dataset};
use infogap_store::{
    CampaignSummary, FeedbackSummary, IdentityRecord, OrderSummary, TimelineCursor,
};
use serde::Serialize;

use crate::access::{
    Access, Policy, PolicyNote, Principal, PrincipalKind, is_contact_kind, mask_email,
    mask_free_text, mask_phone, mask_text_short, risk_band, show_contact,
};
use crate::{Engine, EngineError};

impl Engine {
    /// The policy: built-in roles overridden by the `[access]` section of
    /// the config last imported into this store.
    pub fn policy(&self) -> Result<Policy, EngineError> {
        match self.store.setting("access")? {
            Some(json) => {
                let cfg = serde_json::from_str(&json).map_err(|e| {
                    EngineError::Invalid(format!("the stored [access] policy is unreadable: {e}"))
                })?;
                Ok(Policy::from_config(&cfg))
            }
            None => Ok(Policy::default()),
        }
    }

    /// Authorizes an action and resolves a department key's sources.
    /// A refusal is recorded in the audit trail too.
    pub fn authorize(
        &self,
        policy: &Policy,
        p: &Principal,
        action: Action,
    ) -> Result<Access, EngineError> {
        let mut a = match policy.authorize(p, action) {
            Ok(a) => a,
            Err(e) => {
                let _ = self.record(crate::audit::entry(
                    p,
                    action.as_str(),
                    vec![],
                    vec![],
                    "denied: not allowed for this role",
                ));
                return Err(e);
            }
        };
        if let Some(d) = &p.department {
            let sources = self.store.sources()?;
            let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
            let members = policy.department_sources(d, &names).ok_or_else(|| {
                EngineError::Forbidden(format!("department {d:?} is not defined by the policy"))
            })?;
            a.department_sources = Some(
                sources
                    .iter()
                    .filter(|s| members.contains(&s.name))
                    .map(|s| s.id)
                    .collect(),
            );
        }
        Ok(a)
    }
}

/// What the store holds about one customer within a scope (everything, or
/// a department's sources), before the policy shapes it.
#[derive(Debug)]
pub struct CustomerRecord {
    idents: Vec<IdentityRecord>,
    links: Vec<infogap_store::LinkRecord>,
    facts: infogap_store::CustomerFacts,
    names: HashMap<i64, String>,
    known_to_scope: bool,
}

impl CustomerRecord {
    /// The display key (`ns:value`) of the first identity the access's
    /// scope may see, else `#ID`; not yet shaped by the contact class.
    pub(crate) fn display_key(&self, a: &Access) -> String {
        let dept = a.department_sources.as_deref();
        self.idents
            .iter()
            .find(|i| dept.is_none_or(|d| d.contains(&i.source_id)))
            .map(|i| format!("{}:{}", i.namespace, i.value))
            .unwrap_or_else(|| match self.idents.first() {
                Some(i) => format!("#{}", i.customer_id),
                None => String::new(),
            })
    }
}

/// Customer records read from one store generation, kept for the next
/// requests (a server's; cleared when it grows past its bound). Any write
/// to the store starts a new generation and with it a new cache.
#[derive(Debug, Default)]
pub struct RecordCache {
    map: std::sync::Mutex<HashMap<RecordKey, Arc<CustomerRecord>>>,
}

/// A customer and the scope (department sources) its record was read in.
type RecordKey = (i64, Option<Vec<i64>>);

/// Most records a cache holds before it starts again.
const RECORD_CACHE_MAX: usize = 100_000;

impl RecordCache {
    fn get(&self, id: i64, scope: &Option<Vec<i64>>) -> Option<Arc<CustomerRecord>> {
        let m = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.get(&(id, scope.clone())).cloned()
    }

    fn put(&self, id: i64, scope: Option<Vec<i64>>, rec: Arc<CustomerRecord>) {
        let mut m = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.len() >= RECORD_CACHE_MAX {
            m.clear();
        }
        m.insert((id, scope), rec);
    }
}

/// A customer as the principal may see it.
#[derive(Debug, Clone, Serialize)]
pub struct SharedCustomer {
    /// Store id.
    pub id: i64,
    /// Display key (masked or `#ID` per the contact class).
    pub key: String,
    /// Sources that hold records of this customer (within the department).
    pub sources: Vec<String>,
    /// Identities with provenance (contact values per the policy).
    pub identities: Vec<SharedIdentity>,
    /// Attributes with their class.
    pub attributes: Vec<SharedAttribute>,
    /// Orders (behaviour).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orders: Option<OrderSummary>,
    /// Events by type (behaviour).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<crate::report::EventCount>>,
    /// Feedback per kind (scores: behaviour; text: feedback_text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Vec<FeedbackSummary>>,
    /// Campaigns (behaviour).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaigns: Option<Vec<CampaignSummary>>,
    /// Latest consent per purpose (behaviour).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consents: Option<Vec<crate::report::ConsentView>>,
    /// The policy that shaped this view.
    pub policy: PolicyNote,
}

/// One identity.
#[derive(Debug, Clone, Serialize)]
pub struct SharedIdentity {
    /// Namespace.
    pub namespace: String,
    /// Kind.
    pub kind: String,
    /// Value (masked per the contact class for emails and phones).
    pub value: String,
    /// Source that brought it.
    pub source: String,
    /// Line of that source.
    pub line: i64,
    /// How it joined this customer (other keys shown as this one is).
    pub linked_by: String,
}

/// One attribute.
#[derive(Debug, Clone, Serialize)]
pub struct SharedAttribute {
    /// Name.
    pub name: String,
    /// Field class.
    pub class: FieldClass,
    /// Value (masked values are text).
    pub value: AttrValue,
    /// Source.
    pub source: String,
}

/// Shows a display key (`ns:value`) per the contact class.
pub fn show_key(a: &Access, id: i64, key: &str) -> String {
    let (ns, value) = key.split_once(':').unwrap_or(("", key));
    let contact = ns == "email" || ns == "phone" || value.contains('@');
    if !contact {
        return key.to_string();
    }
    match a.visibility(FieldClass::Contact) {
        Visibility::Visible => key.to_string(),
        Visibility::Masked => {
            if ns == "phone" {
                format!("{ns}:{}", mask_phone(value))
            } else {
                format!("{ns}:{}", mask_email(value))
            }
        }
        Visibility::Hidden => format!("#{id}"),
    }
}

fn ident_label(a: &Access, i: &IdentityRecord) -> String {
    if i.kind == "customer" {
        format!("{}:{}", i.namespace, i.value)
    } else {
        match show_contact(a.visibility(FieldClass::Contact), &i.kind, &i.value) {
            Some(v) => format!("{} {v}", i.kind),
            None => format!("a hidden {}", i.kind),
        }
    }
}

fn rule_words(rule: &str) -> &'static str {
    match rule {
        "same_record" => "seen on the same record",
        "link_table" => "mapped by a link table",
        _ => "linked",
    }
}

fn refuse_customer(a: &Access, id: i64) -> Result<(), EngineError> {
    if a.principal.kind == PrincipalKind::Customer && a.principal.customer != Some(id) {
        return Err(EngineError::Forbidden(
            "a customer token acts only on its own customer".into(),
        ));
    }
    Ok(())
}

impl Engine {
    /// Row-level check: the customer exists, and the principal may see it
    /// (a customer token only its own; a department only customers its
    /// sources know). Returns the customer's identities.
    pub(crate) fn admit(&self, a: &Access, id: i64) -> Result<Arc<CustomerRecord>, EngineError> {
        refuse_customer(a, id)?;
        let rec = self.customer_record(a, id)?;
        if !rec.known_to_scope {
            let _ = self.record(crate::audit::entry(
                &a.principal,
                a.action.as_str(),
                vec![id],
                vec![],
                "denied: customer unknown to the department",
            ));
            return Err(EngineError::Forbidden(format!(
                "customer #{id} is not known to department {:?}",
                a.principal.department.as_deref().unwrap_or("")
            )));
        }
        Ok(rec)
    }

    /// What the store holds about a customer within the access's scope,
    /// from the access's cache when it has one (a server's, per snapshot
    /// generation), else read now.
    fn customer_record(&self, a: &Access, id: i64) -> Result<Arc<CustomerRecord>, EngineError> {
        let scope = a.department_sources.clone();
        if let Some(c) = &a.records
            && let Some(r) = c.get(id, &scope)
        {
            return Ok(r);
        }
        let store = self.store();
        let idents = store.customer_identities(id)?;
        if idents.is_empty() {
            return Err(EngineError::NotFound(format!("no customer #{id}")));
        }
        let ids: Vec<i64> = idents.iter().map(|i| i.id).collect();
        let links = store.links_of(&ids)?;
        let facts = store.customer_facts(id, scope.as_deref())?;
        let known_to_scope = match &scope {
            None => true,
            Some(src) => {
                idents.iter().any(|i| src.contains(&i.source_id))
                    || facts.orders.count > 0
                    || !facts.events.is_empty()
                    || !facts.feedback.is_empty()
                    || !facts.campaigns.is_empty()
                    || !facts.attributes.is_empty()
                    || !facts.consents.is_empty()
            }
        };
        let names = store
            .sources()?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect();
        let rec = Arc::new(CustomerRecord {
            idents,
            links,
            facts,
            names,
            known_to_scope,
        });
        if let Some(c) = &a.records {
            c.put(id, scope, rec.clone());
        }
        Ok(rec)
    }

    /// Finds the customer a key (email, phone, `ns:id`, `#ID`) belongs to.
    pub fn share_lookup(&self, a: &Access, key: &str) -> Result<LookupAnswer, EngineError> {
        let key = key.trim();
        if key.is_empty() || key.len() > 320 {
            return Err(EngineError::Invalid(
                "key must be 1 to 320 characters".into(),
            ));
        }
        let found = self.find_customer(key, None);
        let id = match found {
            Ok(Some(id)) => id,
            Ok(None) => {
                self.record(crate::audit::entry(
                    &a.principal,
                    "customers.lookup",
                    vec![],
                    vec![],
                    "no match",
                ))?;
                return Err(EngineError::NotFound("no customer with that key".into()));
            }
            Err(EngineError::Invalid(_)) => {
                self.record(crate::audit::entry(
                    &a.principal,
                    "customers.lookup",
                    vec![],
                    vec![],
                    "ambiguous",
                ))?;
                return Err(EngineError::Invalid(
                    "that key matches several customers; use ns:id or #ID".into(),
                ));
            }
            Err(e) => return Err(e),
        };
        let rec = self.admit(a, id)?;
        let dept = a.department_sources.as_deref();
        let key = rec
            .idents
            .iter()
            .find(|i| dept.is_none_or(|d| d.contains(&i.source_id)))
            .map(|i| format!("{}:{}", i.namespace, i.value))
            .unwrap_or_else(|| format!("#{id}"));
        self.record_access(
            a,
            "customers.lookup",
            vec![id],
            a.shown_classes(&[FieldClass::Contact]),
        )?;
        Ok(LookupAnswer {
            id,
            key: show_key(a, id, &key),
        })
    }

    /// The unified view of one customer as the principal may see it.
    pub fn share_customer(&self, a: &Access, id: i64) -> Result<SharedCustomer, EngineError> {
        let idents = self.admit(a, id)?;
        let view =
            crate::invariants::checked("customer show", self.customer_shaped(a, id, &idents)?)?;
        let classes = [
            FieldClass::Contact,
            FieldClass::Demographic,
            FieldClass::Behaviour,
            FieldClass::FeedbackText,
        ];
        self.record_access(a, "customers.read", vec![id], a.shown_classes(&classes))?;
        Ok(view)
    }

    fn customer_shaped(
        &self,
        a: &Access,
        id: i64,
        rec: &CustomerRecord,
    ) -> Result<SharedCustomer, EngineError> {
        let idents = &rec.idents;
        let names = &rec.names;
        let links = &rec.links;
        let dept = a.department_sources.as_deref();
        let in_dept = |src: i64| dept.is_none_or(|d| d.contains(&src));
        let contact = a.visibility(FieldClass::Contact);
        let by_id: HashMap<i64, &IdentityRecord> = idents.iter().map(|i| (i.id, i)).collect();
        let mut sources: BTreeSet<String> = BTreeSet::new();
        let mut identities = Vec::new();
        for (n, i) in idents.iter().enumerate() {
            if !in_dept(i.source_id) {
                continue;
            }
            let value = if is_contact_kind(&i.kind) {
                match show_contact(contact, &i.kind, &i.value) {
                    Some(v) => v,
                    None => continue,
                }
            } else {
                i.value.clone()
            };
            let src = names.get(&i.source_id).cloned().unwrap_or_default();
            sources.insert(src.clone());
            let linked_by = if n == 0 {
                "first key of this customer".to_string()
            } else {
                match links
                    .iter()
                    .find(|l| !l.suppressed && (l.a == i.id || l.b == i.id))
                {
                    Some(l) => {
                        let other = if l.a == i.id { l.b } else { l.a };
                        let other = match by_id.get(&other) {
                            Some(o) if in_dept(o.source_id) => ident_label(a, o),
                            Some(o) => format!("a {} of another department", o.kind),
                            None => format!("identity {other}"),
                        };
                        let lsrc = names.get(&l.source_id).cloned().unwrap_or_default();
                        format!(
                            "{} with {other} ({lsrc} line {})",
                            rule_words(&l.rule),
                            l.line
                        )
                    }
                    None => "no live link".to_string(),
                }
            };
            identities.push(SharedIdentity {
                namespace: i.namespace.clone(),
                kind: i.kind.clone(),
                value,
                source: src,
                line: i.line,
                linked_by,
            });
        }
        let facts = &rec.facts;
        let mut attributes = Vec::new();
        for (name, value, source) in facts.attributes.iter().cloned() {
            let class = a.attribute_class(&name);
            let value = match (a.visibility(class), value) {
                (Visibility::Hidden, _) => continue,
                (Visibility::Visible, v) => v,
                (Visibility::Masked, AttrValue::Text(t)) => AttrValue::Text(mask_text_short(&t)),
                (Visibility::Masked, _) => AttrValue::Text("***".into()),
            };
            sources.insert(source.clone());
            attributes.push(SharedAttribute {
                name,
                class,
                value,
                source,
            });
        }
        let behaviour = a.visibility(FieldClass::Behaviour);
        let text = a.visibility(FieldClass::FeedbackText);
        let show_b = behaviour != Visibility::Hidden;
        let orders = show_b.then(|| {
            let mut o = facts.orders.clone();
            if behaviour == Visibility::Masked {
                // masked amounts: to the nearest hundred
                o.revenue = (o.revenue / 100.0).round() * 100.0;
                o.discount = (o.discount / 100.0).round() * 100.0;
            }
            o
        });
        let feedback = (show_b || text != Visibility::Hidden).then(|| {
            facts
                .feedback
                .iter()
                .map(|f| FeedbackSummary {
                    kind: f.kind.clone(),
                    count: f.count,
                    mean_score: if show_b { f.mean_score } else { None },
                    last_score: if show_b { f.last_score } else { None },
                    last_text: match text {
                        Visibility::Visible => f.last_text.clone(),
                        Visibility::Masked => f.last_text.as_deref().map(mask_free_text),
                        Visibility::Hidden => None,
                    },
                })
                .collect()
        });
        // the display key: the first identity the principal may see
        let key = idents
            .iter()
            .find(|i| in_dept(i.source_id))
            .map(|i| format!("{}:{}", i.namespace, i.value))
            .unwrap_or_else(|| format!("#{id}"));
        Ok(SharedCustomer {
            id,
            key: show_key(a, id, &key),
            sources: sources.into_iter().filter(|s| !s.is_empty()).collect(),
            identities,
            attributes,
            orders,
            events: show_b.then(|| {
                facts
                    .events
                    .iter()
                    .map(|(event, count)| crate::report::EventCount {
                        event: event.clone(),
                        count: *count,
                    })
                    .collect()
            }),
            feedback,
            campaigns: show_b.then(|| facts.campaigns.clone()),
            consents: show_b.then(|| {
                facts
                    .consents
                    .iter()
                    .map(|(purpose, granted, time)| crate::report::ConsentView {
                        purpose: purpose.clone(),
                        granted: *granted,
                        time: *time,
                    })
                    .collect()
            }),
            policy: a.note(),
        })
    }

    /// A customer's dated facts, newest first, one page at a time.
    pub fn share_timeline(
        &self,
        a: &Access,
        id: i64,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Timeline, EngineError> {
        let before = cursor.map(parse_cursor).transpose()?;
        self.admit(a, id)?;
        let behaviour = a.visibility(FieldClass::Behaviour);
        let text = a.visibility(FieldClass::FeedbackText);
        let limit = limit.clamp(1, 500);
        let mut rows = self.store.customer_timeline(
            id,
            a.department_sources.as_deref(),
            before.as_ref(),
            limit + 1,
        )?;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|r| format!("{}.{}.{}", r.time.unwrap_or(-1), r.kind, r.id))
        } else {
            None
        };
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            if behaviour == Visibility::Hidden && r.kind != "feedback" {
                continue;
            }
            if behaviour == Visibility::Hidden && text == Visibility::Hidden {
                continue;
            }
            items.push(TimelineItem {
                time: r.time.map(crate::churn::fmt_date),
                kind: r.kind.clone(),
                label: r.label,
                value: match (behaviour, r.kind.as_str()) {
                    // amounts to the cent (sums of lines carry float noise)
                    (Visibility::Visible, "order") => r.value.map(|v| (v * 100.0).round() / 100.0),
                    (Visibility::Visible, _) => r.value,
                    (Visibility::Masked, "order") => None,
                    (Visibility::Masked, _) => r.value,
                    (Visibility::Hidden, _) => None,
                },
                text: match text {
                    Visibility::Visible => r.text,
                    Visibility::Masked => r.text.as_deref().map(mask_free_text),
                    Visibility::Hidden => None,
                },
                detail: r.extra,
                source: r.source,
            });
        }
        self.record_access(
            a,
            "customers.timeline",
            vec![id],
            a.shown_classes(&[FieldClass::Behaviour, FieldClass::FeedbackText]),
        )?;
        Ok(Timeline {
            customer: id,
            items,
            next_cursor,
            policy: a.note(),
        })
    }
}

fn parse_cursor(s: &str) -> Result<TimelineCursor, EngineError> {
    let bad = || EngineError::Invalid("cursor: not a cursor this API gave".into());
    let mut it = s.splitn(3, '.');
    let time = it.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
    let kind = it.next().ok_or_else(bad)?.to_string();
    let id = it.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
    if !matches!(
        kind.as_str(),
        "order" | "event" | "feedback" | "campaign" | "consent"
    ) {
        return Err(bad());
    }
    Ok(TimelineCursor { time, kind, id })
}

/// The answer of a lookup.
#[derive(Debug, Clone, Serialize)]
pub struct LookupAnswer {
    /// Store id of the customer.
    pub id: i64,
    /// Display key, as the policy shows it.
    pub key: String,
}

/// A page of a customer's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// Customer id.
    pub customer: i64,
    /// Items, newest first.
    pub items: Vec<TimelineItem>,
    /// Cursor of the next (older) page.
    pub next_cursor: Option<String>,
    /// The policy that shaped it.
    pub policy: PolicyNote,
}

/// One dated fact.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineItem {
    /// Date (UTC).
    pub time: Option<String>,
    /// `order`, `event`, `feedback`, `campaign`, `consent`.
    pub kind: String,
    /// Order key, event type, feedback kind, campaign, purpose.
    pub label: String,
    /// Amount, value, score, granted (1/0).
    pub value: Option<f64>,
    /// Free text (feedback_text class).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Channel, exposure/redemption.
    pub detail: Option<String>,
    /// Source.
    pub source: String,
}

// ---------------------------------------------------------------------------
// Predictions, computed once per snapshot and model version.

/// A lazily computed part of [`Insights`]: the value, or why it is missing.
type Lazy<T> = OnceLock<Result<Arc<T>, (bool, String)>>;

fn lazy<T>(
    cell: &Lazy<T>,
    f: impl FnOnce() -> Result<T, EngineError>,
) -> Result<Arc<T>, EngineError> {
    let r = cell.get_or_init(|| {
        f().map(Arc::new).map_err(|e| match e {
            EngineError::NotFound(m) => (true, m),
            other => (false, other.to_string()),
        })
    });
    match r {
        Ok(v) => Ok(v.clone()),
        Err((true, m)) => Err(EngineError::NotFound(m.clone())),
        Err((false, m)) => Err(EngineError::Invalid(m.clone())),
    }
}

type RecsAnswers = HashMap<(i64, usize, bool, bool), Arc<crate::recs::RecsAnswer>>;

/// Scores of every customer for one snapshot and set of model versions.
pub struct Insights {
    /// Snapshot generation.
    pub generation: i64,
    /// Newest model version per kind when built.
    pub models: Vec<(String, i64)>,
    /// The data set.
    pub ds: Arc<Dataset>,
    churn: Lazy<ChurnTable>,
    clv: Lazy<ClvTable>,
    segments: Lazy<SegmentTable>,
    recs: Lazy<crate::recs::LoadedRecs>,
    fold_in: Lazy<infogap_models::recs::data::Interactions>,
    /// Recommendations answered at this generation: (customer, k, explain,
    /// include seen) → answer, before the policy shapes it.
    recs_answers: std::sync::Mutex<RecsAnswers>,
    /// The knowledge profile's inputs and index at this generation.
    gap: OnceLock<Arc<crate::gap::knowledge::GapCache>>,
    /// The churn decision's ask-next model at this generation.
    ask: Lazy<crate::gap::ask::AskModel>,
    /// Customer records read at this generation.
    pub records: Arc<RecordCache>,
}

impl std::fmt::Debug for Insights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Insights")
            .field("generation", &self.generation)
            .field("models", &self.models)
            .finish_non_exhaustive()
    }
}

/// Churn risk of every scored customer.
#[derive(Debug)]
pub struct ChurnTable {
    /// Model version.
    pub model_version: i64,
    /// Features as of.
    pub as_of: String,
    /// Highest risk first.
    pub ranked: Vec<crate::churn::ChurnRisk>,
    /// Customer id → index in `ranked`.
    pub by_customer: HashMap<i64, usize>,
}

/// CLV of every customer.
#[derive(Debug)]
pub struct ClvTable {
    /// Model version.
    pub model_version: i64,
    /// Horizon (months).
    pub horizon_months: u32,
    /// Highest first.
    pub ranked: Vec<crate::clv::RankedCustomer>,
    /// Customer id → index.
    pub by_customer: HashMap<i64, usize>,
}

/// RFM segments.
#[derive(Debug)]
pub struct SegmentTable {
    /// The report.
    pub report: crate::analytics::SegmentsReport,
    /// Every customer's segment.
    pub customers: Vec<crate::analytics::CustomerSegment>,
}

impl Insights {
    /// Insights over a data set (nothing computed yet).
    pub fn new(generation: i64, models: Vec<(String, i64)>, ds: Arc<Dataset>) -> Insights {
        Insights {
            generation,
            models,
            ds,
            churn: OnceLock::new(),
            clv: OnceLock::new(),
            segments: OnceLock::new(),
            recs: OnceLock::new(),
            fold_in: OnceLock::new(),
            recs_answers: std::sync::Mutex::default(),
            gap: OnceLock::new(),
            ask: OnceLock::new(),
            records: Arc::default(),
        }
    }

    /// Insights over the engine's current data (a command line's one-off).
    pub fn current(engine: &Engine) -> Result<Insights, EngineError> {
        let ds = Arc::new(engine.dataset()?);
        let generation = engine.store().generation()?.generation;
        Ok(Insights::new(
            generation,
            engine.store().model_versions()?,
            ds,
        ))
    }

    /// Churn scores (the saved model over this snapshot).
    pub fn churn(&self, engine: &Engine) -> Result<Arc<ChurnTable>, EngineError> {
        lazy(&self.churn, || {
            let rec = engine.load_model("churn")?.ok_or_else(|| {
                EngineError::NotFound(
                    "no churn model in the store: train one first (`infogap train churn` or POST /v1/models/churn/train)".into(),
                )
            })?;
            let model: crate::churn::ChurnModel =
                serde_json::from_slice(&rec.blob).map_err(|e| {
                    EngineError::Invalid(format!(
                        "saved churn model v{} is unreadable: {e}",
                        rec.version
                    ))
                })?;
            let as_of = self.ds.max_time().map_or(model.cutoff, |t| t + 1);
            let (_, ranked) = crate::churn::score_dataset(&self.ds, &model, as_of, 0);
            let by_customer = ranked
                .iter()
                .enumerate()
                .map(|(i, r)| (r.customer, i))
                .collect();
            Ok(ChurnTable {
                model_version: rec.version,
                as_of: crate::churn::fmt_date(as_of),
                ranked,
                by_customer,
            })
        })
    }

    /// CLV of every customer over 12 months at 1 % a month.
    pub fn clv(&self, engine: &Engine) -> Result<Arc<ClvTable>, EngineError> {
        lazy(&self.clv, || {
            let rec = engine.load_model(crate::clv::MODEL_KIND)?.ok_or_else(|| {
                EngineError::NotFound(
                    "no CLV model in the store: train one first (`infogap train clv` or POST /v1/models/clv/train)".into(),
                )
            })?;
            let stored: crate::clv::StoredClv = serde_json::from_slice(&rec.blob).map_err(|e| {
                EngineError::Invalid(format!(
                    "the saved CLV model (version {}) is unreadable: {e}",
                    rec.version
                ))
            })?;
            let ranked =
                crate::clv::rank_dataset(&self.ds, &stored.model, usize::MAX, 12, 0.01)?.top;
            let by_customer = ranked
                .iter()
                .enumerate()
                .map(|(i, r)| (r.customer_id, i))
                .collect();
            Ok(ClvTable {
                model_version: rec.version,
                horizon_months: 12,
                ranked,
                by_customer,
            })
        })
    }

    /// The knowledge profile's inputs and whole-store index (built on
    /// first use, then shared by every request of this generation).
    pub fn gap(
        &self,
        engine: &Engine,
    ) -> Result<Arc<crate::gap::knowledge::GapCache>, EngineError> {
        if let Some(c) = self.gap.get() {
            return Ok(c.clone());
        }
        let c = Arc::new(engine.gap_cache()?);
        Ok(self.gap.get_or_init(|| c).clone())
    }

    /// The churn decision's ask-next model over this snapshot (fitted on
    /// first use: about a second on The Complete Journey).
    pub fn ask(&self, engine: &Engine) -> Result<Arc<crate::gap::ask::AskModel>, EngineError> {
        lazy(&self.ask, || {
            crate::gap::ask::AskModel::fit(
                &self.ds,
                &engine.policy()?,
                crate::gap::ask::Decision::Churn,
                0,
                None,
            )
        })
    }

    /// RFM segments of every customer.
    pub fn segments(&self) -> Result<Arc<SegmentTable>, EngineError> {
        lazy(&self.segments, || {
            let (report, customers) =
                crate::analytics::segments(&self.ds, &crate::analytics::SegmentOptions::default())?;
            Ok(SegmentTable { report, customers })
        })
    }

    /// This snapshot's interactions, built the way the recommender was
    /// trained: what customers it was not trained on are folded in from.
    pub fn fold_in(
        &self,
        loaded: &crate::recs::LoadedRecs,
    ) -> Result<Arc<infogap_models::recs::data::Interactions>, EngineError> {
        lazy(&self.fold_in, || {
            crate::recs::build_interactions(&self.ds, &loaded.saved.signals)
        })
    }

    /// The saved recommender.
    pub fn recs(&self, engine: &Engine) -> Result<Arc<crate::recs::LoadedRecs>, EngineError> {
        lazy(&self.recs, || crate::recs::load(engine))
    }
}

/// Churn risk of one customer, as the policy shows predictions.
#[derive(Debug, Clone, Serialize)]
pub struct SharedChurn {
    /// Customer id.
    pub customer: i64,
    /// Model version.
    pub model_version: i64,
    /// Features as of.
    pub as_of: String,
    /// Whether the customer is in the scored population (active recently).
    pub scored: bool,
    /// Probability (visible predictions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// `low`, `medium`, `high`.
    pub band: Option<String>,
    /// Reasons, strongest first (visible predictions only).
    pub reasons: Vec<crate::churn::Reason>,
    /// Set when no score is given for lack of profiling consent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_out: Option<crate::privacy::consent::Withheld>,
    /// Policy.
    pub policy: PolicyNote,
}

/// CLV of one customer.
#[derive(Debug, Clone, Serialize)]
pub struct SharedClv {
    /// Customer id.
    pub customer: i64,
    /// Model version.
    pub model_version: i64,
    /// Horizon (months).
    pub horizon_months: u32,
    /// Discounted CLV (visible predictions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clv: Option<f64>,
    /// Expected purchases (visible only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_purchases: Option<f64>,
    /// P(alive) (visible only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prob_alive: Option<f64>,
    /// Rank among all customers (1 = highest).
    pub rank: Option<usize>,
    /// Percentile band: `top 10%`, `top 50%`, `bottom 50%`.
    pub band: Option<String>,
    /// Set when no value is given for lack of profiling consent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_out: Option<crate::privacy::consent::Withheld>,
    /// Policy.
    pub policy: PolicyNote,
}

/// Recommendations for one customer, as the policy shows them.
#[derive(Debug, Clone, Serialize)]
pub struct SharedRecs {
    /// The answer (explanations left out when predictions are masked).
    #[serde(flatten)]
    pub answer: crate::recs::RecsAnswer,
    /// Policy.
    pub policy: PolicyNote,
}

fn need_predictions(a: &Access) -> Result<Visibility, EngineError> {
    match a.visibility(FieldClass::Predictions) {
        Visibility::Hidden => Err(EngineError::Forbidden(format!(
            "role {:?} may not see predictions",
            a.role.name
        ))),
        v => Ok(v),
    }
}

impl Engine {
    /// Churn risk of one customer with reasons.
    pub fn share_churn(
        &self,
        a: &Access,
        ins: &Insights,
        id: i64,
    ) -> Result<SharedChurn, EngineError> {
        let vis = need_predictions(a)?;
        self.admit(a, id)?;
        let t = ins.churn(self)?;
        // profiling consent, read now: without it no score is given
        let left_out = self.consent_withheld(id, infogap_core::privacy::PROFILING)?;
        let r = t
            .by_customer
            .get(&id)
            .map(|&i| &t.ranked[i])
            .filter(|_| left_out.is_none());
        self.record_access(
            a,
            "churn.read",
            vec![id],
            a.shown_classes(&[FieldClass::Predictions]),
        )?;
        Ok(SharedChurn {
            customer: id,
            model_version: t.model_version,
            as_of: t.as_of.clone(),
            scored: r.is_some(),
            probability: r
                .filter(|_| vis == Visibility::Visible)
                .map(|r| r.probability),
            band: r.map(|r| risk_band(r.probability).to_string()),
            reasons: r
                .filter(|_| vis == Visibility::Visible)
                .map(|r| r.reasons.clone())
                .unwrap_or_default(),
            left_out,
            policy: a.note(),
        })
    }

    /// CLV of one customer.
    pub fn share_clv(&self, a: &Access, ins: &Insights, id: i64) -> Result<SharedClv, EngineError> {
        let vis = need_predictions(a)?;
        self.admit(a, id)?;
        let t = ins.clv(self)?;
        // profiling consent, read now: without it no value is given
        let left_out = self.consent_withheld(id, infogap_core::privacy::PROFILING)?;
        let pos = t
            .by_customer
            .get(&id)
            .copied()
            .filter(|_| left_out.is_none());
        let r = pos.map(|i| &t.ranked[i]);
        let n = t.ranked.len().max(1);
        self.record_access(
            a,
            "clv.read",
            vec![id],
            a.shown_classes(&[FieldClass::Predictions]),
        )?;
        let visible = vis == Visibility::Visible;
        Ok(SharedClv {
            customer: id,
            model_version: t.model_version,
            horizon_months: t.horizon_months,
            clv: r.filter(|_| visible).map(|r| r.clv),
            expected_purchases: r.filter(|_| visible).map(|r| r.expected_purchases),
            prob_alive: r.filter(|_| visible).map(|r| r.prob_alive),
            rank: pos.filter(|_| visible).map(|i| i + 1),
            band: pos.map(|i| {
                if (i + 1) * 10 <= n {
                    "top 10%".to_string()
                } else if (i + 1) * 2 <= n {
                    "top 50%".to_string()
                } else {
                    "bottom 50%".to_string()
                }
            }),
            left_out,
            policy: a.note(),
        })
    }

    /// Recommendations for one customer, with explanations.
    pub fn share_recommendations(
        &self,
        a: &Access,
        ins: Option<&Insights>,
        loaded: &crate::recs::LoadedRecs,
        id: i64,
        opts: &crate::recs::RecommendOptions,
    ) -> Result<SharedRecs, EngineError> {
        let vis = need_predictions(a)?;
        if opts.k == 0 {
            return Err(EngineError::Invalid("k must be at least 1".into()));
        }
        let rec = self.admit(a, id)?;
        // personalization consent, read from the store on every request
        // (before any cached answer): without it, the popular list
        let withheld = self.consent_withheld(id, infogap_core::privacy::PERSONALIZATION)?;
        let compute = || {
            // a server's answers follow the events it takes (its snapshot's
            // interactions are built once per generation)
            crate::recs::recommend_customer_live(
                loaded,
                id,
                opts,
                || match ins {
                    Some(ins) => Ok((ins.ds.clone(), ins.fold_in(loaded)?)),
                    None => {
                        let ds = Arc::new(self.dataset()?);
                        let x =
                            Arc::new(crate::recs::build_interactions(&ds, &loaded.saved.signals)?);
                        Ok((ds, x))
                    }
                },
                ins.is_some(),
            )
        };
        // a server keeps answers of plain requests for this snapshot and
        // model (scoring one customer of The Complete Journey took 1.7–2.6 ms)
        let plain = opts.category.is_none() && opts.deny.is_empty() && opts.allow.is_empty();
        let mut answer = match (&withheld, ins) {
            (Some(w), _) => {
                crate::recs::recommend_popular(loaded, id, rec.display_key(a), opts, w.describe())?
            }
            (None, Some(ins)) if plain => {
                let key = (id, opts.k, opts.explain, opts.include_seen);
                let hit = ins
                    .recs_answers
                    .lock()
                    .ok()
                    .and_then(|m| m.get(&key).cloned());
                match hit {
                    Some(a) => (*a).clone(),
                    None => {
                        let a = compute()?;
                        if let Ok(mut m) = ins.recs_answers.lock() {
                            if m.len() >= RECORD_CACHE_MAX {
                                m.clear();
                            }
                            m.insert(key, Arc::new(a.clone()));
                        }
                        a
                    }
                }
            }
            _ => compute()?,
        };
        answer.customer = show_key(a, id, &answer.customer);
        if vis == Visibility::Masked {
            // masked predictions: the list, without the reasons behind it
            for it in &mut answer.items {
                it.because = None;
            }
        }
        self.record_access(
            a,
            "recommendations.read",
            vec![id],
            a.shown_classes(&[FieldClass::Predictions]),
        )?;
        Ok(SharedRecs {
            answer,
            policy: a.note(),
        })
    }
}

// ---------------------------------------------------------------------------
// Many customers: segments, members, watchlist, stats.

impl SharedSegment {
    /// A segment of `report` as listed (its words in both languages).
    pub(crate) fn of(
        report: &crate::analytics::SegmentsReport,
        name: &str,
        size: usize,
        share: f64,
        revenue_share: Option<f64>,
    ) -> SharedSegment {
        let p = report.segments.iter().find(|s| s.name == name);
        SharedSegment {
            name: name.to_string(),
            name_zh: p.map_or_else(
                || crate::analytics::segment_name_zh(name),
                |p| p.name_zh.clone(),
            ),
            description: p.map(|p| p.description.clone()).unwrap_or_default(),
            description_zh: p.map(|p| p.description_zh.clone()).unwrap_or_default(),
            size,
            share,
            revenue_share,
        }
    }
}

/// A segment as listed.
#[derive(Debug, Clone, Serialize)]
pub struct SharedSegment {
    /// Name.
    pub name: String,
    /// The name in Simplified Chinese.
    pub name_zh: String,
    /// What characterizes it (the RFM rule or the cluster's centre).
    pub description: String,
    /// The same in Simplified Chinese.
    pub description_zh: String,
    /// Customers.
    pub size: usize,
    /// Share of customers.
    pub share: f64,
    /// Share of revenue (behaviour visible only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue_share: Option<f64>,
}

/// The segments.
#[derive(Debug, Clone, Serialize)]
pub struct SharedSegments {
    /// Method.
    pub method: String,
    /// As of.
    pub as_of: String,
    /// Customers segmented.
    pub customers: usize,
    /// Segments.
    pub segments: Vec<SharedSegment>,
    /// Rules in words.
    pub rules: Vec<String>,
    /// The same in Simplified Chinese.
    pub rules_zh: Vec<String>,
    /// Policy.
    pub policy: PolicyNote,
    /// How the figures were protected (small groups, noise) or that they
    /// are exact.
    pub privacy: crate::privacy::aggregate::AggregateNote,
}

/// One member of a segment as the policy shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentMember {
    /// Customer id (left out when pseudonymized).
    #[serde(skip_serializing_if = "crate::privacy::aggregate::withheld")]
    pub id: i64,
    /// Display key (contact class).
    pub key: String,
    /// Segment.
    pub segment: String,
    /// Days since the last purchase (behaviour).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recency_days: Option<f64>,
    /// Orders (behaviour).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency: Option<usize>,
    /// Spend (behaviour, visible only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monetary: Option<f64>,
}

/// A page of members.
#[derive(Debug, Clone, Serialize)]
pub struct MembersPage {
    /// Segment.
    pub segment: String,
    /// Members in the segment (all pages).
    pub total: usize,
    /// This page.
    pub members: Vec<SegmentMember>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
    /// Segment members left out for lack of marketing consent (a segment's
    /// members are a marketing list), by reason.
    pub left_out: crate::privacy::consent::LeftOut,
    /// Policy.
    pub policy: PolicyNote,
    /// Whether keys are keyed-hash pseudonyms (`p_…`) and ids left out
    /// (the analyst role under `[privacy] pseudonymize_analyst`).
    pub pseudonymized: bool,
}

/// One row of the churn watchlist.
#[derive(Debug, Clone, Serialize)]
pub struct WatchItem {
    /// Customer id (left out when pseudonymized).
    #[serde(skip_serializing_if = "crate::privacy::aggregate::withheld")]
    pub id: i64,
    /// Display key.
    pub key: String,
    /// Probability (visible predictions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Band.
    pub band: String,
    /// Reasons in words (visible only).
    pub reasons: Vec<String>,
}

/// Customers in one lifetime-value band.
#[derive(Debug, Clone, Serialize)]
pub struct ClvBand {
    /// Lower bound (inclusive).
    pub from: f64,
    /// Upper bound (exclusive); none for the last band.
    pub to: Option<f64>,
    /// Customers.
    pub customers: usize,
}

/// The lifetime-value distribution.
#[derive(Debug, Clone, Serialize)]
pub struct ClvDistribution {
    /// Model version.
    pub model_version: i64,
    /// Horizon (months).
    pub horizon_months: u32,
    /// Customers counted.
    pub customers: usize,
    /// Per band.
    pub bands: Vec<ClvBand>,
    /// Sum of the values (visible predictions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    /// Median (visible only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median: Option<f64>,
    /// 90th percentile (visible only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p90: Option<f64>,
    /// Left out for lack of profiling consent.
    pub left_out: crate::privacy::consent::LeftOut,
}

/// Customers in one risk band.
#[derive(Debug, Clone, Serialize)]
pub struct BandCount {
    /// `low`, `medium` or `high`.
    pub band: String,
    /// Customers.
    pub customers: usize,
}

/// The churn-risk distribution.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnDistribution {
    /// Model version.
    pub model_version: i64,
    /// As of.
    pub as_of: String,
    /// Customers counted.
    pub customers: usize,
    /// Per band.
    pub bands: Vec<BandCount>,
    /// Customers per tenth of probability (0–0.1, …, 0.9–1; visible
    /// predictions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deciles: Option<Vec<usize>>,
    /// Left out for lack of profiling consent.
    pub left_out: crate::privacy::consent::LeftOut,
}

/// The churn watchlist.
#[derive(Debug, Clone, Serialize)]
pub struct Watchlist {
    /// Model version.
    pub model_version: i64,
    /// As of.
    pub as_of: String,
    /// Customers scored.
    pub scored: usize,
    /// Highest risk first.
    pub customers: Vec<WatchItem>,
    /// Customers left out for lack of profiling consent, by reason.
    pub left_out: crate::privacy::consent::LeftOut,
    /// Policy.
    pub policy: PolicyNote,
    /// Whether keys are keyed-hash pseudonyms and ids left out.
    pub pseudonymized: bool,
}

impl Engine {
    /// The customers a department key may see (those its sources know:
    /// identities they brought, or facts they hold); `None` for a key that
    /// is not limited to a department. Every list of customers filters by it.
    pub fn department_customers(
        &self,
        a: &Access,
    ) -> Result<Option<std::collections::HashSet<i64>>, EngineError> {
        match &a.department_sources {
            Some(src) => Ok(Some(self.store.customers_of_sources(src)?)),
            None => Ok(None),
        }
    }
}

impl Engine {
    /// Segments and their sizes.
    pub fn share_segments(
        &self,
        a: &Access,
        ins: &Insights,
    ) -> Result<SharedSegments, EngineError> {
        let t = ins.segments()?;
        let show_b = a.visibility(FieldClass::Behaviour) == Visibility::Visible;
        // small groups merged or suppressed (and DP noise) outside analyst
        let (customers, segments, privacy) =
            crate::privacy::aggregate::shared_segments(self, a, &t.report, &t.customers, show_b)?;
        self.record_access(a, "segments.read", vec![], vec![])?;
        Ok(SharedSegments {
            method: t.report.method.clone(),
            as_of: t.report.as_of.clone(),
            customers,
            segments,
            rules: t.report.rules.clone(),
            rules_zh: t.report.rules_zh.clone(),
            policy: a.note(),
            privacy,
        })
    }

    /// Members of a segment (one page; `limit` 0 = all, for exports).
    pub fn share_segment_members(
        &self,
        a: &Access,
        ins: &Insights,
        name: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<MembersPage, EngineError> {
        let t = ins.segments()?;
        let want = name.trim().to_lowercase();
        let seg = t
            .report
            .segments
            .iter()
            .find(|s| {
                s.name.to_lowercase() == want || s.name.to_lowercase().replace(' ', "-") == want
            })
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "no segment {name:?}; segments: {}",
                    t.report
                        .segments
                        .iter()
                        .map(|s| s.name.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let start: usize = match cursor {
            None => 0,
            Some(c) => c
                .parse()
                .map_err(|_| EngineError::Invalid("cursor: not a cursor this API gave".into()))?,
        };
        let allowed = self.department_customers(a)?;
        let mut all: Vec<&crate::analytics::CustomerSegment> = t
            .customers
            .iter()
            .filter(|c| c.segment == seg.name)
            .filter(|c| allowed.as_ref().is_none_or(|s| s.contains(&c.id)))
            .collect();
        // marketing consent, read now: the list omits whoever lacks it
        let left_out = self
            .consents()?
            .retain(&mut all, infogap_core::privacy::MARKETING, |c| c.id);
        let total = all.len();
        let end = if limit == 0 {
            total
        } else {
            start.saturating_add(limit.min(1000)).min(total)
        };
        let behaviour = a.visibility(FieldClass::Behaviour);
        let mut members: Vec<SegmentMember> = all
            .get(start.min(total)..end)
            .unwrap_or(&[])
            .iter()
            .map(|c| SegmentMember {
                id: c.id,
                key: show_key(a, c.id, &c.key),
                segment: c.segment.clone(),
                recency_days: (behaviour != Visibility::Hidden)
                    .then_some(c.recency_days)
                    .flatten(),
                frequency: (behaviour != Visibility::Hidden).then_some(c.frequency),
                monetary: (behaviour == Visibility::Visible).then_some(c.monetary),
            })
            .collect();
        let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
        self.record_access(
            a,
            "segments.export",
            ids,
            a.shown_classes(&[FieldClass::Contact, FieldClass::Behaviour]),
        )?;
        let pseudonymized = crate::privacy::aggregate::pseudonymize(self, a, &mut members)?;
        Ok(MembersPage {
            segment: seg.name.clone(),
            total,
            members,
            next_cursor: (end < total).then(|| end.to_string()),
            left_out,
            policy: a.note(),
            pseudonymized,
        })
    }

    /// The customers at highest churn risk.
    pub fn share_watchlist(
        &self,
        a: &Access,
        ins: &Insights,
        top: usize,
    ) -> Result<Watchlist, EngineError> {
        let vis = need_predictions(a)?;
        let t = ins.churn(self)?;
        let top = top.clamp(1, 1000);
        // the department's customers who allow profiling (consent read now)
        let (ranked, left_out) = self.profiling_population(a, &t.ranked, |r| r.customer)?;
        let mut customers: Vec<WatchItem> = ranked
            .into_iter()
            .take(top)
            .map(|r| WatchItem {
                id: r.customer,
                key: show_key(a, r.customer, &r.key),
                probability: (vis == Visibility::Visible).then_some(r.probability),
                band: risk_band(r.probability).to_string(),
                reasons: if vis == Visibility::Visible {
                    r.reasons.iter().map(|x| x.text.clone()).collect()
                } else {
                    vec![]
                },
            })
            .collect();
        let ids: Vec<i64> = customers.iter().map(|c| c.id).collect();
        self.record_access(
            a,
            "churn.watchlist",
            ids,
            a.shown_classes(&[FieldClass::Contact, FieldClass::Predictions]),
        )?;
        let pseudonymized = crate::privacy::aggregate::pseudonymize(self, a, &mut customers)?;
        Ok(Watchlist {
            model_version: t.model_version,
            as_of: t.as_of.clone(),
            scored: t.ranked.len(),
            customers,
            left_out,
            policy: a.note(),
            pseudonymized,
        })
    }

    /// The scored rows a principal may see (its department's customers)
    /// whose customers allow profiling (consent read now), with how many
    /// were left out and why: the population of the watchlist and of the
    /// churn and lifetime-value distributions.
    fn profiling_population<'t, T>(
        &self,
        a: &Access,
        rows: &'t [T],
        id: impl Fn(&T) -> i64,
    ) -> Result<(Vec<&'t T>, crate::privacy::consent::LeftOut), EngineError> {
        let allowed = self.department_customers(a)?;
        let mut kept: Vec<&T> = rows
            .iter()
            .filter(|r| allowed.as_ref().is_none_or(|s| s.contains(&id(r))))
            .collect();
        let left_out = self
            .consents()?
            .retain(&mut kept, infogap_core::privacy::PROFILING, |r| id(r));
        Ok((kept, left_out))
    }

    /// How many customers fall in each churn-risk band (`low`, `medium`,
    /// `high`) and in each tenth of probability, over the customers the
    /// principal may see and who allow profiling: the dashboard's
    /// distribution, the same population as [`Engine::share_watchlist`].
    /// A role that sees predictions masked gets the bands only.
    pub fn share_churn_distribution(
        &self,
        a: &Access,
        ins: &Insights,
    ) -> Result<ChurnDistribution, EngineError> {
        let vis = need_predictions(a)?;
        let t = ins.churn(self)?;
        let (ranked, left_out) = self.profiling_population(a, &t.ranked, |r| r.customer)?;
        let mut bands = vec![
            ("low".to_string(), 0usize),
            ("medium".to_string(), 0),
            ("high".to_string(), 0),
        ];
        let mut deciles = vec![0usize; 10];
        for r in &ranked {
            let b = risk_band(r.probability);
            if let Some(x) = bands.iter_mut().find(|(n, _)| n == b) {
                x.1 += 1;
            }
            let d = ((r.probability * 10.0).floor().max(0.0) as usize).min(9);
            deciles[d] += 1;
        }
        self.record_access(a, "churn.distribution", vec![], vec![])?;
        Ok(ChurnDistribution {
            model_version: t.model_version,
            as_of: t.as_of.clone(),
            customers: ranked.len(),
            bands: bands
                .into_iter()
                .map(|(band, customers)| BandCount { band, customers })
                .collect(),
            deciles: (vis == Visibility::Visible).then_some(deciles),
            left_out,
        })
    }

    /// The lifetime-value distribution over the customers the principal
    /// may see and who allow profiling: customers per value band (bands
    /// at round values, widening by ×2.5/×2 steps), the total and quantiles;
    /// for a role that sees predictions masked, the bands only (no figures).
    pub fn share_clv_distribution(
        &self,
        a: &Access,
        ins: &Insights,
    ) -> Result<ClvDistribution, EngineError> {
        let vis = need_predictions(a)?;
        let t = ins.clv(self)?;
        let (ranked, left_out) = self.profiling_population(a, &t.ranked, |r| r.customer_id)?;
        let mut values: Vec<f64> = ranked
            .iter()
            .map(|r| r.clv)
            .filter(|v| v.is_finite())
            .collect();
        values.sort_by(f64::total_cmp);
        // band edges 0, 10, 25, 50, 100, 250, … up to the largest value
        let top = values.last().copied().unwrap_or(0.0).max(0.0);
        let mut edges = vec![0.0];
        let mut e = 10.0;
        let mut k = 0usize;
        while e < top && edges.len() < 24 {
            edges.push(e);
            e *= if k.is_multiple_of(3) { 2.5 } else { 2.0 };
            k += 1;
        }
        let mut bands: Vec<ClvBand> = edges
            .iter()
            .enumerate()
            .map(|(i, &lo)| ClvBand {
                from: lo,
                to: edges.get(i + 1).copied(),
                customers: 0,
            })
            .collect();
        for &v in &values {
            let i = edges.iter().rposition(|&lo| v >= lo).unwrap_or(0);
            bands[i].customers += 1;
        }
        let q = |p: f64| -> Option<f64> {
            if values.is_empty() {
                return None;
            }
            let i = ((values.len() - 1) as f64 * p).round() as usize;
            values.get(i).copied()
        };
        let visible = vis == Visibility::Visible;
        let mut sum = infogap_store::snapshot::KbnSum::default();
        for &v in &values {
            sum.add(v);
        }
        self.record_access(a, "clv.distribution", vec![], vec![])?;
        Ok(ClvDistribution {
            model_version: t.model_version,
            horizon_months: t.horizon_months,
            customers: values.len(),
            bands,
            total: visible.then(|| sum.value().unwrap_or(0.0)),
            median: q(0.5).filter(|_| visible),
            p90: q(0.9).filter(|_| visible),
            left_out,
        })
    }

    /// A customer's own view (customer tokens): everything, unmasked.
    pub fn share_me(&self, a: &Access) -> Result<SharedCustomer, EngineError> {
        let id = a
            .principal
            .customer
            .ok_or_else(|| EngineError::Forbidden("only a customer token has a `me`".into()))?;
        let rec = self.admit(a, id)?;
        let view = self.customer_shaped(a, id, &rec)?;
        self.record_access(a, "self.read", vec![id], a.shown_classes(&FieldClass::ALL))?;
        Ok(view)
    }
}

/// Shapes a ranked list of customers (churn risk, CLV, batch
/// recommendations) for a principal: the list needs predictions visible
/// (a masked role gets bands through the API's watchlist instead), a
/// department sees only its customers, keys follow the contact class; the
/// read is recorded with every customer listed.
pub fn share_ranked<T>(
    engine: &Engine,
    access: &Access,
    action: &str,
    items: &mut Vec<T>,
    top: usize,
    id: impl Fn(&T) -> i64,
    key: impl Fn(&mut T) -> &mut String,
) -> Result<(), EngineError> {
    if access.visibility(FieldClass::Predictions) != Visibility::Visible {
        return Err(EngineError::Forbidden(format!(
            "role {:?} sees predictions masked or not at all; a ranked list needs them visible",
            access.role.name
        )));
    }
    if let Some(allowed) = engine.department_customers(access)? {
        items.retain(|x| allowed.contains(&id(x)));
    }
    if top > 0 {
        items.truncate(top);
    }
    for x in items.iter_mut() {
        let i = id(x);
        let k = key(x);
        *k = show_key(access, i, k);
    }
    let ids = items.iter().map(&id).collect();
    engine.record_access(
        access,
        action,
        ids,
        access.shown_classes(&[FieldClass::Contact, FieldClass::Predictions]),
    )?;
    Ok(())
}

/// [`share_ranked`] for a use of `purpose` (churn and CLV lists:
/// profiling): customers without that consent (read now from the store)
/// are left out before the top is taken; returns how many (of the
/// customers the principal may see) and why.
#[allow(clippy::too_many_arguments)]
pub fn share_ranked_for<T>(
    engine: &Engine,
    access: &Access,
    purpose: &str,
    action: &str,
    items: &mut Vec<T>,
    top: usize,
    id: impl Fn(&T) -> i64,
    key: impl Fn(&mut T) -> &mut String,
) -> Result<crate::privacy::consent::LeftOut, EngineError> {
    if let Some(allowed) = engine.department_customers(access)? {
        items.retain(|x| allowed.contains(&id(x)));
    }
    let left_out = engine.consents()?.retain(items, purpose, &id);
    share_ranked(engine, access, action, items, top, id, key)?;
    Ok(left_out)
}

/// Shapes the per-customer rows of `segments --customers` for a principal:
/// a department's customers only, keys per the contact class, spend per the
/// behaviour class (masked: to the nearest hundred); recorded as an export.
/// Customers who withdrew `analytics` consent are left out (returned:
/// how many and why).
pub fn share_segment_rows(
    engine: &Engine,
    access: &Access,
    rows: &mut Vec<crate::analytics::CustomerSegment>,
) -> Result<crate::privacy::consent::LeftOut, EngineError> {
    let behaviour = access.visibility(FieldClass::Behaviour);
    if behaviour == Visibility::Hidden {
        return Err(EngineError::Forbidden(format!(
            "role {:?} may not see behaviour, which segment rows are",
            access.role.name
        )));
    }
    if let Some(allowed) = engine.department_customers(access)? {
        rows.retain(|r| allowed.contains(&r.id));
    }
    // per-person rows for analysts: whoever withdrew `analytics` is left
    // out (the aggregates above still count everyone)
    let left_out = engine
        .consents()?
        .retain(rows, infogap_core::privacy::ANALYTICS, |r| r.id);
    for r in rows.iter_mut() {
        r.key = show_key(access, r.id, &r.key);
        if behaviour == Visibility::Masked {
            r.monetary = (r.monetary / 100.0).round() * 100.0;
        }
    }
    engine.record_access(
        access,
        "segments.export",
        rows.iter().map(|r| r.id).collect(),
        access.shown_classes(&[FieldClass::Contact, FieldClass::Behaviour]),
    )?;
    // the analyst's rows: keyed-hash pseudonyms, ids left out
    crate::privacy::aggregate::pseudonymize(engine, access, rows)?;
    Ok(left_out)
}
