//! The person's export (GDPR Art. 15 access, Art. 20 portability):
//! everything the store holds about one customer, from every department,
//! each fact with the source and the file or line it came from; the
//! identities and the links that joined them; what infogap derived (segment,
//! churn risk with reasons, lifetime value, recommendations with why); the
//! consent history; and who accessed the person's data.
//!
//! An export is always of the whole person: only a principal that sees
//! every field class of every source may make one (the admin, or the
//! person through their own customer token); a department key or a role
//! with a masked or hidden class is refused, because the export is the
//! person's right, not a staff report. Predictions come through the same
//! `share_*` functions as the API (so the policy and the audit apply); a
//! model that is not trained is said so in the export, not an error. The
//! export is recorded in the audit trail (action `privacy.export`) *before*
//! the access log is read, so the export itself is in its own access log.
//!
//! [`PersonExport::to_zip`] writes `export.json` (everything), one CSV per
//! table with the same rows, and a `README.txt` in English and Chinese.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Seek, Write};

use infogap_core::access::{Action, FieldClass, Visibility};
use infogap_core::dataset::AttrValue;
use infogap_store::MergeLogEntry;
use serde::Serialize;

use crate::access::{Access, PrincipalKind};
use crate::share::{Insights, SharedChurn, SharedClv, SharedRecs};
use crate::{Engine, EngineError};

/// The export's format name (in `export.json`).
pub const FORMAT: &str = "infogap-person-export/1";

/// Everything held about one person.
#[derive(Debug, Clone, Serialize)]
pub struct PersonExport {
    /// [`FORMAT`].
    pub format: &'static str,
    /// The customer's store id.
    pub customer_id: i64,
    /// When the export was made (RFC 3339, UTC).
    pub generated_at: String,
    /// Who asked for it.
    pub requested_by: Requester,
    /// The person.
    pub person: Person,
    /// Identity keys, with the source and line that brought each.
    pub identities: Vec<ExportIdentity>,
    /// Links between keys: which key joined which, by what rule, from
    /// which source line.
    pub links: Vec<ExportLink>,
    /// Merges and splits that involved this customer.
    pub merge_history: Vec<MergeLogEntry>,
    /// Facts from every department.
    pub facts: Facts,
    /// What infogap derived.
    pub derived: Derived,
    /// Every consent row, oldest first.
    pub consent_history: Vec<ExportConsent>,
    /// Who accessed this person's data, oldest first (this export included).
    pub access_log: Vec<AccessEntry>,
    /// Rows per table (the CSV files hold exactly these many rows).
    pub counts: BTreeMap<String, usize>,
}

/// Who made the export.
#[derive(Debug, Clone, Serialize)]
pub struct Requester {
    /// Name in the audit trail.
    pub actor: String,
    /// `local`, `key` or `customer`.
    pub kind: String,
    /// Role.
    pub role: String,
}

/// The person.
#[derive(Debug, Clone, Serialize)]
pub struct Person {
    /// Store id.
    pub id: i64,
    /// When the unified customer was created (RFC 3339).
    pub created_at: Option<String>,
    /// Sources that hold anything about the person.
    pub sources: Vec<String>,
}

/// One identity key.
#[derive(Debug, Clone, Serialize)]
pub struct ExportIdentity {
    /// Store id (links refer to it).
    pub id: i64,
    /// Namespace.
    pub namespace: String,
    /// `customer`, `email` or `phone`.
    pub kind: String,
    /// The value.
    pub value: String,
    /// Source that first brought it.
    pub source: String,
    /// Line (record) of that source.
    pub line: i64,
    /// An over-shared key (a family or office address): kept, never linked.
    pub shared: bool,
}

/// One link of the identity graph.
#[derive(Debug, Clone, Serialize)]
pub struct ExportLink {
    /// Store id.
    pub id: i64,
    /// One identity (id).
    pub a: i64,
    /// That identity as `kind value`.
    pub a_key: String,
    /// The other identity (id).
    pub b: i64,
    /// That identity as `kind value`.
    pub b_key: String,
    /// `same_record` or `link_table`.
    pub rule: String,
    /// Source whose record linked them.
    pub source: String,
    /// Line of that record.
    pub line: i64,
    /// Switched off by a split.
    pub suppressed: bool,
}

/// Facts from every department.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Facts {
    /// Orders.
    pub orders: Vec<ExportOrder>,
    /// Order lines.
    pub order_lines: Vec<ExportLine>,
    /// Events (ratings included).
    pub events: Vec<ExportEvent>,
    /// Surveys, reviews, tickets, with their text.
    pub feedback: Vec<ExportFeedback>,
    /// Campaign exposures and redemptions.
    pub campaigns: Vec<ExportContact>,
    /// Attributes.
    pub attributes: Vec<ExportAttribute>,
}

/// One order.
#[derive(Debug, Clone, Serialize)]
pub struct ExportOrder {
    /// Order key.
    pub order: String,
    /// Namespace of the key.
    pub namespace: String,
    /// Time (RFC 3339).
    pub time: Option<String>,
    /// Amount.
    pub amount: Option<f64>,
    /// Discount.
    pub discount: Option<f64>,
    /// Identity (id) of the buyer.
    pub identity_id: i64,
    /// Source.
    pub source: String,
    /// File it came from.
    pub file: Option<String>,
}

/// One order line.
#[derive(Debug, Clone, Serialize)]
pub struct ExportLine {
    /// Order key.
    pub order: String,
    /// Product key.
    pub product: Option<String>,
    /// Product name.
    pub product_name: Option<String>,
    /// Quantity.
    pub quantity: f64,
    /// Amount.
    pub amount: f64,
    /// Discount.
    pub discount: f64,
    /// Time (RFC 3339).
    pub time: Option<String>,
    /// Identity (id) of the buyer.
    pub identity_id: i64,
    /// Source.
    pub source: String,
    /// File it came from.
    pub file: String,
}

/// One event.
#[derive(Debug, Clone, Serialize)]
pub struct ExportEvent {
    /// Event type.
    pub event: String,
    /// Product key.
    pub product: Option<String>,
    /// Value (a rating).
    pub value: Option<f64>,
    /// Channel.
    pub channel: Option<String>,
    /// Time (RFC 3339).
    pub time: Option<String>,
    /// Identity (id).
    pub identity_id: i64,
    /// Source.
    pub source: String,
    /// File it came from.
    pub file: String,
}

/// One survey, review or ticket.
#[derive(Debug, Clone, Serialize)]
pub struct ExportFeedback {
    /// survey | review | ticket | …
    pub kind: String,
    /// Score.
    pub score: Option<f64>,
    /// Free text.
    pub text: Option<String>,
    /// Channel.
    pub channel: Option<String>,
    /// Time (RFC 3339).
    pub time: Option<String>,
    /// Identity (id).
    pub identity_id: i64,
    /// Source.
    pub source: String,
    /// File it came from.
    pub file: String,
}

/// One campaign exposure or redemption.
#[derive(Debug, Clone, Serialize)]
pub struct ExportContact {
    /// Campaign key.
    pub campaign: String,
    /// Campaign name.
    pub campaign_name: Option<String>,
    /// `exposure` or `redemption`.
    pub kind: String,
    /// Time (RFC 3339).
    pub time: Option<String>,
    /// Identity (id).
    pub identity_id: i64,
    /// Source.
    pub source: String,
    /// File it came from.
    pub file: String,
}

/// One attribute.
#[derive(Debug, Clone, Serialize)]
pub struct ExportAttribute {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<AttrValue>,
    /// Field class (contact, demographic, behaviour).
    pub class: String,
    /// Identity (id) it belongs to.
    pub identity_id: i64,
    /// Source.
    pub source: String,
    /// Line of that source.
    pub line: i64,
}

/// One consent row.
#[derive(Debug, Clone, Serialize)]
pub struct ExportConsent {
    /// Purpose.
    pub purpose: String,
    /// Granted (true) or withdrawn (false).
    pub granted: bool,
    /// Time (RFC 3339).
    pub time: Option<String>,
    /// Source.
    pub source: String,
    /// File it came from.
    pub file: String,
}

/// One audit record about this person (other customers a record names
/// are left out).
#[derive(Debug, Clone, Serialize)]
pub struct AccessEntry {
    /// Sequence number in the audit trail.
    pub seq: i64,
    /// When (RFC 3339, UTC, microseconds).
    pub time: String,
    /// Who (key, token or user name; `local` for the command line).
    pub actor: String,
    /// `local`, `key`, `customer`, `source`.
    pub actor_kind: String,
    /// Role.
    pub role: String,
    /// What (`customers.read`, `privacy.export`, …).
    pub action: String,
    /// Field classes shown, `;`-separated.
    pub fields: String,
    /// From where (client address or `cli`).
    pub origin: String,
    /// Outcome (`ok`, `denied: …`).
    pub detail: String,
}

/// A derived value, or why it is not there.
#[derive(Debug, Clone, Serialize)]
pub struct Maybe<T> {
    /// Whether it could be computed.
    pub available: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The value.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub value: Option<T>,
}

impl<T> Maybe<T> {
    fn of(r: Result<T, EngineError>) -> Result<Maybe<T>, EngineError> {
        match r {
            Ok(v) => Ok(Maybe {
                available: true,
                reason: None,
                value: Some(v),
            }),
            // no model yet, or one that cannot be applied: say so
            Err(EngineError::NotFound(m) | EngineError::Invalid(m)) => Ok(Maybe::none(m)),
            Err(EngineError::Model(e)) => Ok(Maybe::none(e.to_string())),
            Err(e) => Err(e),
        }
    }

    fn none(reason: String) -> Maybe<T> {
        Maybe {
            available: false,
            reason: Some(reason),
            value: None,
        }
    }
}

/// The person's RFM segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentView {
    /// Segment name.
    pub segment: String,
    /// Method.
    pub method: String,
    /// Days since the last purchase.
    pub recency_days: Option<f64>,
    /// Orders.
    pub frequency: usize,
    /// Spend.
    pub monetary: f64,
}

/// What infogap derived about the person.
#[derive(Debug, Clone, Serialize)]
pub struct Derived {
    /// RFM segment.
    pub segment: Maybe<SegmentView>,
    /// Churn risk with its reasons.
    pub churn: Maybe<SharedChurn>,
    /// Lifetime value.
    pub clv: Maybe<SharedClv>,
    /// Recommendations with why.
    pub recommendations: Maybe<SharedRecs>,
    /// The same, one row per figure (`derived.csv`).
    pub table: Vec<DerivedRow>,
}

/// One derived figure.
#[derive(Debug, Clone, Serialize)]
pub struct DerivedRow {
    /// `segment`, `churn`, `churn.reason`, `clv`, `recommendation`.
    pub item: String,
    /// The figure.
    pub value: String,
    /// What it means or why.
    pub detail: String,
}

fn rfc3339(t: Option<i64>) -> Option<String> {
    t.map(|t| {
        chrono::DateTime::from_timestamp(t, 0).map_or_else(
            || t.to_string(),
            |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
    })
}

fn rfc3339_us(t: i64) -> String {
    chrono::DateTime::from_timestamp_micros(t).map_or_else(
        || t.to_string(),
        |d| d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    )
}

/// Refuses anything but a whole-person view: the admin (not limited to a
/// department, every class visible) or the person's own token.
fn check_whole_view(a: &Access) -> Result<(), EngineError> {
    if !matches!(a.action, Action::PrivacyExport | Action::SelfRead) {
        return Err(EngineError::Forbidden(
            "an export needs privacy.export (or a customer's own token)".into(),
        ));
    }
    if a.principal.kind == PrincipalKind::Customer && a.action != Action::SelfRead {
        return Err(EngineError::Forbidden(
            "a customer token exports through /v1/me/export".into(),
        ));
    }
    if a.principal.department.is_some() || a.department_sources.is_some() {
        return Err(EngineError::Forbidden(
            "an export is the person's whole record; a department key cannot make one".into(),
        ));
    }
    if let Some(c) = FieldClass::ALL
        .into_iter()
        .find(|c| a.visibility(*c) != Visibility::Visible)
    {
        return Err(EngineError::Forbidden(format!(
            "an export shows every field class; role {:?} does not see {} in full",
            a.role.name,
            c.as_str()
        )));
    }
    Ok(())
}

impl Engine {
    /// Everything held about customer `id`, for the person (see the module
    /// note for who may ask). `ins`: the server's insights of the current
    /// snapshot; `None` computes them now.
    pub fn privacy_export(
        &self,
        a: &Access,
        ins: Option<&Insights>,
        id: i64,
    ) -> Result<PersonExport, EngineError> {
        if let Err(e) = check_whole_view(a) {
            let _ = self.record(crate::audit::entry(
                &a.principal,
                "privacy.export",
                vec![id],
                vec![],
                "denied: an export needs a whole-person view",
            ));
            return Err(e);
        }
        // row-level check (a token: only its own customer) and existence
        self.admit(a, id)?;
        let store = self.store();
        let source_names: HashMap<i64, String> = store
            .sources()?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect();
        let src = |sid: i64| source_names.get(&sid).cloned().unwrap_or_default();

        // identities and links
        let idents = store.customer_identities(id)?;
        let rows = store.person_rows(id)?;
        let shared: HashMap<i64, bool> = rows.shared.iter().copied().collect();
        let identities: Vec<ExportIdentity> = idents
            .iter()
            .map(|i| ExportIdentity {
                id: i.id,
                namespace: i.namespace.clone(),
                kind: i.kind.clone(),
                value: i.value.clone(),
                source: src(i.source_id),
                line: i.line,
                shared: shared.get(&i.id).copied().unwrap_or(false),
            })
            .collect();
        let label: HashMap<i64, String> = idents
            .iter()
            .map(|i| {
                let l = if i.kind == "customer" {
                    format!("{}:{}", i.namespace, i.value)
                } else {
                    format!("{} {}", i.kind, i.value)
                };
                (i.id, l)
            })
            .collect();
        // a link may reach an identity that is now another customer's (a
        // split): that one is named only as such, never by its value
        let key_of = |iid: i64| {
            label
                .get(&iid)
                .cloned()
                .unwrap_or_else(|| "an identity of another customer".to_string())
        };
        let ids: Vec<i64> = idents.iter().map(|i| i.id).collect();
        let links: Vec<ExportLink> = store
            .links_of(&ids)?
            .into_iter()
            .map(|l| ExportLink {
                id: l.id,
                a: l.a,
                a_key: key_of(l.a),
                b: l.b,
                b_key: key_of(l.b),
                rule: l.rule,
                source: src(l.source_id),
                line: l.line,
                suppressed: l.suppressed,
            })
            .collect();
        let merge_history = store.merge_log(id)?;

        // facts; the values encrypted at rest come through the readers
        // that open them, joined by row id (feedback) or name and source
        // (attributes)
        let summary = store.customer_facts(id, None)?;
        let mut attr_values: HashMap<(String, String), VecDeque<AttrValue>> = HashMap::new();
        for (name, value, source) in summary.attributes {
            attr_values
                .entry((name, source))
                .or_default()
                .push_back(value);
        }
        let timeline = store.customer_timeline(id, None, None, 1_000_000_000)?;
        let texts: HashMap<i64, Option<String>> = timeline
            .into_iter()
            .filter(|r| r.kind == "feedback")
            .map(|r| (r.id, r.text))
            .collect();
        let facts = Facts {
            orders: rows
                .orders
                .iter()
                .map(|o| ExportOrder {
                    order: o.key.clone(),
                    namespace: o.namespace.clone(),
                    time: rfc3339(o.time),
                    amount: o.amount.map(|v| (v * 100.0).round() / 100.0),
                    discount: o.discount.map(|v| (v * 100.0).round() / 100.0),
                    identity_id: o.identity_id,
                    source: o.source.clone(),
                    file: o.file.clone(),
                })
                .collect(),
            order_lines: rows
                .order_lines
                .iter()
                .map(|l| ExportLine {
                    order: l.order.clone(),
                    product: l.product.clone(),
                    product_name: l.product_name.clone(),
                    quantity: l.quantity,
                    amount: l.amount,
                    discount: l.discount,
                    time: rfc3339(l.time),
                    identity_id: l.identity_id,
                    source: l.source.clone(),
                    file: l.file.clone(),
                })
                .collect(),
            events: rows
                .events
                .iter()
                .map(|e| ExportEvent {
                    event: e.kind.clone(),
                    product: e.product.clone(),
                    value: e.value,
                    channel: e.channel.clone(),
                    time: rfc3339(e.time),
                    identity_id: e.identity_id,
                    source: e.source.clone(),
                    file: e.file.clone(),
                })
                .collect(),
            feedback: rows
                .feedback
                .iter()
                .map(|f| ExportFeedback {
                    kind: f.kind.clone(),
                    score: f.score,
                    text: texts.get(&f.id).cloned().flatten(),
                    channel: f.channel.clone(),
                    time: rfc3339(f.time),
                    identity_id: f.identity_id,
                    source: f.source.clone(),
                    file: f.file.clone(),
                })
                .collect(),
            campaigns: rows
                .campaigns
                .iter()
                .map(|c| ExportContact {
                    campaign: c.campaign.clone(),
                    campaign_name: c.campaign_name.clone(),
                    kind: c.kind.clone(),
                    time: rfc3339(c.time),
                    identity_id: c.identity_id,
                    source: c.source.clone(),
                    file: c.file.clone(),
                })
                .collect(),
            attributes: rows
                .attributes
                .iter()
                .map(|r| ExportAttribute {
                    name: r.name.clone(),
                    value: attr_values
                        .get_mut(&(r.name.clone(), r.source.clone()))
                        .and_then(VecDeque::pop_front),
                    class: a.attribute_class(&r.name).as_str().to_string(),
                    identity_id: r.identity_id,
                    source: r.source.clone(),
                    line: r.line,
                })
                .collect(),
        };
        let consent_history: Vec<ExportConsent> = store
            .consent_history(id)?
            .into_iter()
            .map(|c| ExportConsent {
                purpose: c.purpose,
                granted: c.granted,
                time: rfc3339(c.time),
                source: c.source,
                file: c.file,
            })
            .collect();

        // derived, through the API's own functions
        let owned;
        let ins = match ins {
            Some(i) => i,
            None => {
                owned = Insights::current(self)?;
                &owned
            }
        };
        let derived = self.derived(a, ins, id)?;

        let mut sources: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        sources.extend(identities.iter().map(|i| i.source.clone()));
        sources.extend(facts.orders.iter().map(|x| x.source.clone()));
        sources.extend(facts.order_lines.iter().map(|x| x.source.clone()));
        sources.extend(facts.events.iter().map(|x| x.source.clone()));
        sources.extend(facts.feedback.iter().map(|x| x.source.clone()));
        sources.extend(facts.campaigns.iter().map(|x| x.source.clone()));
        sources.extend(facts.attributes.iter().map(|x| x.source.clone()));
        sources.extend(consent_history.iter().map(|x| x.source.clone()));
        sources.remove("");

        // the export is recorded first, so it is in its own access log
        self.record_access(
            a,
            "privacy.export",
            vec![id],
            a.shown_classes(&FieldClass::ALL),
        )?;
        let mut records = self
            .audit_sink()?
            .log()
            .records(&infogap_store::audit::AuditFilter {
                customer: Some(id),
                limit: 0,
                ..Default::default()
            })?;
        records.sort_by_key(|r| r.seq);
        let access_log: Vec<AccessEntry> = records
            .into_iter()
            .map(|r| AccessEntry {
                seq: r.seq,
                time: rfc3339_us(r.entry.time_us),
                actor: r.entry.actor,
                actor_kind: r.entry.actor_kind,
                role: r.entry.role,
                action: r.entry.action,
                fields: r.entry.fields.join(";"),
                origin: r.entry.origin,
                detail: r.entry.detail,
            })
            .collect();

        let mut out = PersonExport {
            format: FORMAT,
            customer_id: id,
            generated_at: infogap_store::now_rfc3339(),
            requested_by: Requester {
                actor: a.principal.name.clone(),
                kind: a.principal.kind.as_str().to_string(),
                role: a.principal.role.clone(),
            },
            person: Person {
                id,
                created_at: rows.created_at.clone(),
                sources: sources.into_iter().collect(),
            },
            identities,
            links,
            merge_history,
            facts,
            derived,
            consent_history,
            access_log,
            counts: BTreeMap::new(),
        };
        let counts = out
            .tables()
            .iter()
            .map(|t| (t.name.to_string(), t.rows))
            .collect();
        out.counts = counts;
        Ok(out)
    }

    fn derived(&self, a: &Access, ins: &Insights, id: i64) -> Result<Derived, EngineError> {
        let segment = Maybe::of(ins.segments().and_then(|t| {
            t.customers
                .iter()
                .find(|c| c.id == id)
                .map(|c| SegmentView {
                    segment: c.segment.clone(),
                    method: t.report.method.clone(),
                    recency_days: c.recency_days,
                    frequency: c.frequency,
                    monetary: c.monetary,
                })
                .ok_or_else(|| {
                    EngineError::NotFound("not segmented: no purchases in the data".into())
                })
        }))?;
        let churn = Maybe::of(self.share_churn(a, ins, id))?;
        let clv = Maybe::of(self.share_clv(a, ins, id))?;
        let opts = crate::recs::RecommendOptions {
            k: 10,
            explain: true,
            ..Default::default()
        };
        let recommendations = Maybe::of(
            ins.recs(self)
                .and_then(|loaded| self.share_recommendations(a, Some(ins), &loaded, id, &opts)),
        )?;
        let mut table = Vec::new();
        let row = |item: &str, value: String, detail: String| DerivedRow {
            item: item.to_string(),
            value,
            detail,
        };
        let unavailable = |item: &str, reason: &Option<String>| {
            row(
                item,
                String::new(),
                format!("not available: {}", reason.as_deref().unwrap_or("")),
            )
        };
        match &segment.value {
            Some(s) => table.push(row(
                "segment",
                s.segment.clone(),
                format!(
                    "{} method; {} orders, spend {:.2}, last purchase {}",
                    s.method,
                    s.frequency,
                    s.monetary,
                    s.recency_days
                        .map_or("never".to_string(), |d| format!("{d:.0} days ago"))
                ),
            )),
            None => table.push(unavailable("segment", &segment.reason)),
        }
        match &churn.value {
            Some(c) => {
                table.push(row(
                    "churn",
                    c.probability.map_or(String::new(), |p| format!("{p:.4}")),
                    match &c.band {
                        Some(b) => {
                            format!("{b} risk (model v{}, as of {})", c.model_version, c.as_of)
                        }
                        None => "not scored: not active in the scored period".to_string(),
                    },
                ));
                for r in &c.reasons {
                    table.push(row("churn.reason", r.text.clone(), r.feature.clone()));
                }
            }
            None => table.push(unavailable("churn", &churn.reason)),
        }
        match &clv.value {
            Some(v) => table.push(row(
                "clv",
                v.clv.map_or(String::new(), |x| format!("{x:.2}")),
                format!(
                    "{} months; {}; expected purchases {}",
                    v.horizon_months,
                    v.band.as_deref().unwrap_or("not ranked"),
                    v.expected_purchases
                        .map_or(String::new(), |x| format!("{x:.2}"))
                ),
            )),
            None => table.push(unavailable("clv", &clv.reason)),
        }
        match &recommendations.value {
            Some(r) => {
                for it in &r.answer.items {
                    let why = match &it.because {
                        Some(b) if !b.is_empty() => format!(
                            "because you have {}",
                            b.iter()
                                .map(|x| match &x.product.name {
                                    Some(n) => format!("{} ({n})", x.product.key),
                                    None => x.product.key.clone(),
                                })
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        _ => format!("basis: {}", r.answer.basis),
                    };
                    let name = match &it.product.name {
                        Some(n) => format!("{} ({n})", it.product.key),
                        None => it.product.key.clone(),
                    };
                    table.push(row("recommendation", name, format!("#{}; {why}", it.rank)));
                }
            }
            None => table.push(unavailable("recommendations", &recommendations.reason)),
        }
        Ok(Derived {
            segment,
            churn,
            clv,
            recommendations,
            table,
        })
    }
}

/// Writes a table's rows (with their header) to a CSV writer.
type WriteRows<'a> = Box<dyn Fn(&mut csv::Writer<Vec<u8>>) -> Result<(), csv::Error> + 'a>;

/// One table of the export: its file name and rows written as CSV.
pub struct Table<'a> {
    /// File name in the zip.
    pub name: &'static str,
    /// What it holds (English).
    pub en: &'static str,
    /// What it holds (Simplified Chinese).
    pub zh: &'static str,
    /// Rows.
    pub rows: usize,
    write: WriteRows<'a>,
}

fn rows_of<'a, T: Serialize>(v: &'a [T], header: &'static [&'static str]) -> WriteRows<'a> {
    Box::new(move |w| {
        if v.is_empty() {
            // the header of an empty table still says what it would hold
            w.write_record(header)?;
        }
        for r in v {
            w.serialize(r)?;
        }
        Ok(())
    })
}

impl PersonExport {
    /// The tables, in the order the zip holds them.
    pub fn tables(&self) -> Vec<Table<'_>> {
        let f = &self.facts;
        vec![
            Table {
                name: "identities.csv",
                en: "identity keys (customer ids, emails, phones), with the source and line that brought each",
                zh: "身份标识（客户编号、邮箱、电话）及其来源与行号",
                rows: self.identities.len(),
                write: rows_of(
                    &self.identities,
                    &[
                        "id",
                        "namespace",
                        "kind",
                        "value",
                        "source",
                        "line",
                        "shared",
                    ],
                ),
            },
            Table {
                name: "links.csv",
                en: "which key was linked to which, by what rule, from which source line",
                zh: "标识之间的关联：规则、来源与行号",
                rows: self.links.len(),
                write: rows_of(
                    &self.links,
                    &[
                        "id",
                        "a",
                        "a_key",
                        "b",
                        "b_key",
                        "rule",
                        "source",
                        "line",
                        "suppressed",
                    ],
                ),
            },
            Table {
                name: "merge_history.csv",
                en: "merges and splits of customer records that involved you",
                zh: "涉及您的客户记录合并与拆分",
                rows: self.merge_history.len(),
                write: rows_of(
                    &self.merge_history,
                    &["at", "action", "customer_id", "other_id", "detail"],
                ),
            },
            Table {
                name: "orders.csv",
                en: "orders, with the source and file they came from",
                zh: "订单及其来源与文件",
                rows: f.orders.len(),
                write: rows_of(
                    &f.orders,
                    &[
                        "order",
                        "namespace",
                        "time",
                        "amount",
                        "discount",
                        "identity_id",
                        "source",
                        "file",
                    ],
                ),
            },
            Table {
                name: "order_lines.csv",
                en: "order lines (products bought)",
                zh: "订单明细（购买的商品）",
                rows: f.order_lines.len(),
                write: rows_of(
                    &f.order_lines,
                    &[
                        "order",
                        "product",
                        "product_name",
                        "quantity",
                        "amount",
                        "discount",
                        "time",
                        "identity_id",
                        "source",
                        "file",
                    ],
                ),
            },
            Table {
                name: "events.csv",
                en: "events (visits, clicks, ratings)",
                zh: "行为事件（访问、点击、评分）",
                rows: f.events.len(),
                write: rows_of(
                    &f.events,
                    &[
                        "event",
                        "product",
                        "value",
                        "channel",
                        "time",
                        "identity_id",
                        "source",
                        "file",
                    ],
                ),
            },
            Table {
                name: "feedback.csv",
                en: "surveys, reviews and support tickets, with their text",
                zh: "问卷、评价与客服工单及其文字",
                rows: f.feedback.len(),
                write: rows_of(
                    &f.feedback,
                    &[
                        "kind",
                        "score",
                        "text",
                        "channel",
                        "time",
                        "identity_id",
                        "source",
                        "file",
                    ],
                ),
            },
            Table {
                name: "campaigns.csv",
                en: "marketing campaigns you were sent (exposure) or used (redemption)",
                zh: "您收到（曝光）或使用（兑换）的营销活动",
                rows: f.campaigns.len(),
                write: rows_of(
                    &f.campaigns,
                    &[
                        "campaign",
                        "campaign_name",
                        "kind",
                        "time",
                        "identity_id",
                        "source",
                        "file",
                    ],
                ),
            },
            Table {
                name: "attributes.csv",
                en: "attributes (name, demographics and others), with the source and line",
                zh: "属性（姓名、人口统计等）及其来源与行号",
                rows: f.attributes.len(),
                write: rows_of(
                    &f.attributes,
                    &["name", "value", "class", "identity_id", "source", "line"],
                ),
            },
            Table {
                name: "consents.csv",
                en: "every consent you gave or withdrew, oldest first",
                zh: "您给予或撤回的每一项同意，按时间先后",
                rows: self.consent_history.len(),
                write: rows_of(
                    &self.consent_history,
                    &["purpose", "granted", "time", "source", "file"],
                ),
            },
            Table {
                name: "derived.csv",
                en: "what infogap derived: segment, churn risk and its reasons, lifetime value, recommendations and why",
                zh: "infogap 推导的信息：客户分群、流失风险及原因、客户终身价值、推荐及理由",
                rows: self.derived.table.len(),
                write: rows_of(&self.derived.table, &["item", "value", "detail"]),
            },
            Table {
                name: "access_log.csv",
                en: "who accessed your data, when and which kinds of fields (this export included)",
                zh: "谁在何时访问了您的哪些类别的数据（包括本次导出）",
                rows: self.access_log.len(),
                write: rows_of(
                    &self.access_log,
                    &[
                        "seq",
                        "time",
                        "actor",
                        "actor_kind",
                        "role",
                        "action",
                        "fields",
                        "origin",
                        "detail",
                    ],
                ),
            },
        ]
    }

    /// The `README.txt` of the zip.
    pub fn readme(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "infogap: everything held about customer #{} (made {})\n\n",
            self.customer_id, self.generated_at
        ));
        s.push_str("export.json  everything below in one file (JSON)\n");
        for t in self.tables() {
            s.push_str(&format!("{:<18} {} ({} rows)\n", t.name, t.en, t.rows));
        }
        s.push_str(
            "\nEvery fact names its source (the department's system) and the file or line it came from. \
             Times are UTC (RFC 3339).\n\n",
        );
        s.push_str(&format!(
            "infogap：我们持有的关于客户 #{} 的全部数据（生成于 {}）\n\n",
            self.customer_id, self.generated_at
        ));
        s.push_str("export.json  以下全部内容（JSON 格式）\n");
        for t in self.tables() {
            s.push_str(&format!("{:<18} {}（{} 行）\n", t.name, t.zh, t.rows));
        }
        s.push_str("\n每条记录都注明来源（部门系统）及其文件或行号。时间均为 UTC（RFC 3339）。\n");
        s
    }

    /// Writes the zip: `export.json`, one CSV per table, `README.txt`.
    pub fn to_zip<W: Write + Seek>(&self, w: W) -> Result<W, EngineError> {
        let zerr = |e: zip::result::ZipError| {
            EngineError::Invariant(format!("writing the export zip: {e}"))
        };
        let ioerr = |e: std::io::Error| EngineError::Io {
            path: "export zip".into(),
            source: e,
        };
        let mut z = zip::ZipWriter::new(w);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        z.start_file("README.txt", opts).map_err(zerr)?;
        z.write_all(self.readme().as_bytes()).map_err(ioerr)?;
        z.start_file("export.json", opts).map_err(zerr)?;
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| EngineError::Invariant(format!("the export is not JSON: {e}")))?;
        z.write_all(&json).map_err(ioerr)?;
        for t in self.tables() {
            let mut cw = csv::Writer::from_writer(Vec::new());
            (t.write)(&mut cw)
                .map_err(|e| EngineError::Invariant(format!("writing {}: {e}", t.name)))?;
            let bytes = cw
                .into_inner()
                .map_err(|e| EngineError::Invariant(format!("writing {}: {e}", t.name)))?;
            z.start_file(t.name, opts).map_err(zerr)?;
            z.write_all(&bytes).map_err(ioerr)?;
        }
        z.finish().map_err(zerr)
    }

    /// The rows per table, as one line (`identities 4, links 3, …`).
    pub fn summary(&self) -> String {
        self.counts
            .iter()
            .map(|(k, v)| format!("{} {v}", k.trim_end_matches(".csv")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
