//! Event intake: Segment-spec messages (`identify`, `track`, `page`,
//! `screen`, `alias`, `batch`) taken from a source's write key into a
//! durable journal, then applied to the facts with the same mapping,
//! validation and identity resolution as a file import.
//!
//! Why a journal: a request is answered once its messages are durable (one
//! short transaction), while mapping and identity resolution run in rounds
//! of many messages ([`Engine::apply_intake`]). A round writes the facts of
//! the messages it takes and marks them done in one transaction, so a
//! `kill -9` anywhere loses nothing acknowledged and applies nothing twice.
//! Duplicates by message id are caught by the journal itself.
//!
//! How messages become rows (namespace = the source's): `userId` is the
//! source's customer id, `anonymousId` the key `anon:<id>` in the same
//! namespace; a message carrying both links them (an `identify` after
//! anonymous browsing merges, with the message as provenance, and a split
//! undoes it). `identify` traits: `email`, `phone` and scalar attributes;
//! `track`: an event (Segment's e-commerce names mapped to the
//! recommender's signals: `Product Viewed` → `view`, `Product Added` →
//! `cart`, …), and `Order Completed` also its order lines (the purchase);
//! `Product Reviewed` is a rating (`rating_negative`, with no weight, when
//! the stars are ≤ 2 or the text reads negative) and a review with its text,
//! `Feedback Submitted` a survey, ticket or other feedback (their texts get
//! sentiment and topics like imported ones); `page`/`screen`: a `page` event. Erased people's messages are dropped and counted
//! (`suppressed`); a message that denies `analytics` in
//! `context.consent.categoryPreferences`, and a track or page of someone
//! whose stored consent does not allow `analytics`, are dropped before any
//! use (`no_consent`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use infogap_core::config::{
    ColumnRef, Config, FileFormat, IdentityConfig, SourceConfig, SourceKind,
};
use infogap_core::privacy::ANALYTICS;
use infogap_ingest::reader::MemoryRows;
use infogap_ingest::segment::{self, Message, MessageKind, Rejected};
use infogap_store::{IntakeDone, IntakeIn};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::Access;
use crate::import::{ImportOptions, Target, load_rows, resolve_graph, suppressor};
use crate::{Engine, EngineError};

/// What to do with a request holding bad messages (`[intake] bad_events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadEvents {
    /// Keep the good messages, list the bad ones with their index.
    #[default]
    KeepRest,
    /// Refuse the whole request when any message is bad.
    RefuseBatch,
}

impl BadEvents {
    /// Parses `keep_rest` or `refuse_batch`.
    pub fn parse(s: &str) -> Result<BadEvents, EngineError> {
        match s {
            "keep_rest" => Ok(BadEvents::KeepRest),
            "refuse_batch" => Ok(BadEvents::RefuseBatch),
            other => Err(EngineError::Invalid(format!(
                "[intake] bad_events = {other:?}: expected \"keep_rest\" or \"refuse_batch\""
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            BadEvents::KeepRest => "keep_rest",
            BadEvents::RefuseBatch => "refuse_batch",
        }
    }
}

/// The store setting of `[intake] bad_events`.
pub const BAD_EVENTS_SETTING: &str = "intake.bad_events";

/// The answer to an intake request.
#[derive(Debug, Clone, Serialize)]
pub struct IntakeReceipt {
    /// Always true in an answer (the request's good messages are durable).
    pub success: bool,
    /// New messages journaled.
    pub accepted: usize,
    /// Messages already taken before (same message id), ignored.
    pub duplicates: usize,
    /// Messages refused, by index, with the reason.
    pub rejected: Vec<Rejected>,
}

/// What one round of [`Engine::apply_intake`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    /// Journal messages taken.
    pub messages: usize,
    /// Applied to the facts.
    pub applied: usize,
    /// Dropped: the person is erased.
    pub suppressed: usize,
    /// Dropped: the person does not allow analytics.
    pub no_consent: usize,
    /// Refused by the mapping (a value it could not take).
    pub rejected: usize,
    /// Fact rows written.
    pub rows_written: u64,
    /// Customers merged by identity resolution.
    pub merges: usize,
    /// Seconds.
    pub seconds: f64,
}

/// The recommender's signal of a Segment e-commerce event name, else the
/// name in lower case.
pub fn event_kind(name: &str) -> String {
    match name {
        "Product Viewed" | "Product List Viewed" => "view".into(),
        "Product Clicked" => "click".into(),
        "Product Added" => "cart".into(),
        "Product Removed" => "cart_remove".into(),
        "Product Added to Wishlist" => "wishlist".into(),
        "Product Reviewed" => "rating".into(),
        other => other.trim().to_lowercase(),
    }
}

/// A trait name as an attribute name (`firstName` → `first_name`), or
/// None for a name that cannot be one.
fn attribute_name(trait_name: &str) -> Option<String> {
    let mut out = String::new();
    for (i, c) in trait_name.trim().chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if matches!(c, '_' | ' ' | '-' | '.') {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
        } else {
            return None;
        }
    }
    let out = out.trim_end_matches('_').to_string();
    let reserved = [
        "customer",
        "email",
        "phone",
        "time",
        "id",
        "user_id",
        "anonymous_id",
    ];
    (!out.is_empty() && out.len() <= 64 && !reserved.contains(&out.as_str())).then_some(out)
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn first_text(m: &serde_json::Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| m.get(*k).and_then(text))
}

fn first_number(m: &serde_json::Map<String, Value>, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| match m.get(*k) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// The rows one round builds for one source, per kind of row.
#[derive(Default)]
struct Rows {
    customers: Vec<(u64, BTreeMap<String, Value>)>,
    links: Vec<(u64, Vec<Value>)>,
    events: Vec<(u64, Vec<Value>)>,
    lines: Vec<(u64, Vec<Value>)>,
    feedback: Vec<(u64, Vec<Value>)>,
}

impl Rows {
    fn add(&mut self, seq: u64, m: &Message) {
        let user = m.user_id.clone();
        let anon = m.anonymous_id.as_ref().map(|a| format!("anon:{a}"));
        let who = user.clone().or_else(|| anon.clone()).unwrap_or_default();
        let time = Value::from(m.timestamp);
        if let (Some(u), Some(a)) = (&user, &anon) {
            self.links
                .push((seq, vec![Value::from(a.as_str()), Value::from(u.as_str())]));
        }
        match m.kind {
            MessageKind::Identify => {
                let mut row = BTreeMap::new();
                // no `time`: an identify is not when the person was first seen
                row.insert("customer".into(), Value::from(who));
                for (k, v) in &m.traits {
                    match k.as_str() {
                        "email" | "phone" => {
                            if let Some(t) = text(v) {
                                row.insert(k.clone(), Value::from(t));
                            }
                        }
                        _ => {
                            let Some(name) = attribute_name(k) else {
                                continue;
                            };
                            match v {
                                Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                                    row.insert(format!("attr:{name}"), v.clone());
                                }
                                _ => {}
                            }
                        }
                    }
                }
                self.customers.push((seq, row));
            }
            MessageKind::Alias => {
                if let (Some(p), Some(u)) = (&m.previous_id, &user) {
                    self.links
                        .push((seq, vec![Value::from(p.as_str()), Value::from(u.as_str())]));
                }
            }
            MessageKind::Track | MessageKind::Page => {
                let (mut kind, product) = match m.kind {
                    MessageKind::Page => ("page".to_string(), None),
                    _ => (
                        event_kind(m.event.as_deref().unwrap_or("")),
                        first_text(&m.properties, &["product_id", "sku", "productId"]),
                    ),
                };
                let mut value = first_number(&m.properties, &["value", "revenue", "price"]);
                if let Some(f) = self.feedback_of(seq, m, &who, &time) {
                    // a review is a rating for the recommender, unless it is
                    // a bad one (stars ≤ 2 or a text that reads negative):
                    // `rating_negative` carries no weight, so a product the
                    // customer disliked does not pull its like up
                    if kind == "rating" {
                        value = f.score;
                        if f.negative {
                            kind = "rating_negative".into();
                        }
                    }
                }
                self.events.push((
                    seq,
                    vec![
                        Value::from(who.as_str()),
                        Value::from(kind),
                        product.map_or(Value::Null, Value::from),
                        m.channel.clone().map_or(Value::Null, Value::from),
                        value.map_or(Value::Null, Value::from),
                        time.clone(),
                    ],
                ));
                if m.event.as_deref() == Some("Order Completed") {
                    self.order_lines(seq, m, &who, &time);
                }
            }
        }
    }

    /// The feedback a track message carries: `Product Reviewed` (`rating`
    /// 1–5, `review_body`) is a review; `Feedback Submitted` (`type`:
    /// survey, ticket, review, forum…; `score`; `text` or `comment`) any
    /// other. The row goes to the feedback facts (sentiment, topics, NPS
    /// and CSAT, churn features, negative-feedback alerts).
    fn feedback_of(&mut self, seq: u64, m: &Message, who: &str, time: &Value) -> Option<Review> {
        let p = &m.properties;
        let (kind, score, body) = match m.event.as_deref() {
            Some("Product Reviewed") => (
                "review".to_string(),
                first_number(p, &["rating", "stars", "score"]),
                first_text(p, &["review_body", "text", "comment"]),
            ),
            Some("Feedback Submitted") => (
                first_text(p, &["type", "kind"])
                    .map(|t| t.trim().to_lowercase())
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "survey".into()),
                first_number(p, &["score", "rating", "nps"]),
                first_text(p, &["text", "comment", "body"]),
            ),
            _ => return None,
        };
        if score.is_none() && body.is_none() {
            return None;
        }
        let negative = score.is_some_and(|s| kind == "review" && s <= 2.0)
            || body.as_deref().is_some_and(|t| {
                infogap_models::text::analyze(t).sentiment.polarity
                    == infogap_models::text::Polarity::Negative
            });
        self.feedback.push((
            seq,
            vec![
                Value::from(who),
                Value::from(kind),
                score.map_or(Value::Null, Value::from),
                body.map_or(Value::Null, Value::from),
                m.channel.clone().map_or(Value::Null, Value::from),
                time.clone(),
            ],
        ));
        Some(Review { score, negative })
    }

    /// `Order Completed`: one line per product (`product_id`/`sku`,
    /// `quantity`, `price`), or the order's `total`/`revenue` as one line.
    fn order_lines(&mut self, seq: u64, m: &Message, who: &str, time: &Value) {
        let Some(order) = first_text(&m.properties, &["order_id", "orderId", "checkout_id"]) else {
            return;
        };
        let products: Vec<&serde_json::Map<String, Value>> = match m.properties.get("products") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_object).collect(),
            _ => Vec::new(),
        };
        if products.is_empty() {
            if let Some(total) = first_number(&m.properties, &["total", "revenue", "value"]) {
                self.lines.push((
                    seq,
                    vec![
                        Value::from(order.as_str()),
                        Value::from(who),
                        Value::Null,
                        Value::from(1),
                        Value::from(total),
                        Value::Null,
                        Value::Null,
                        time.clone(),
                    ],
                ));
            }
            return;
        }
        for p in products {
            let quantity = first_number(p, &["quantity"]).unwrap_or(1.0);
            let price = first_number(p, &["price"]);
            self.lines.push((
                seq,
                vec![
                    Value::from(order.as_str()),
                    Value::from(who),
                    first_text(p, &["product_id", "sku", "productId", "id"])
                        .map_or(Value::Null, Value::from),
                    Value::from(quantity),
                    price.map_or(Value::Null, |x| Value::from(x * quantity)),
                    first_text(p, &["name"]).map_or(Value::Null, Value::from),
                    first_text(p, &["category"]).map_or(Value::Null, Value::from),
                    time.clone(),
                ],
            ));
        }
    }
}

/// What a review says, for its rating signal.
struct Review {
    score: Option<f64>,
    negative: bool,
}

/// One load of a round: the synthetic source, its headers, its rows.
type Job = (SourceConfig, Vec<String>, Vec<(u64, Vec<Value>)>);

/// A source config of in-memory rows: each field read from the column of
/// its own name.
fn synthetic(
    name: &str,
    namespace: &str,
    kind: SourceKind,
    fields: &[&str],
    attributes: &[String],
) -> SourceConfig {
    let col = |c: &str| ColumnRef {
        column: c.to_string(),
        line: 0,
    };
    SourceConfig {
        name: name.to_string(),
        file: "intake".into(),
        kind,
        namespace: namespace.to_string(),
        format: FileFormat::JsonLines,
        delimiter: None,
        columns: fields.iter().map(|f| (f.to_string(), col(f))).collect(),
        attributes: attributes
            .iter()
            .map(|a| (a.clone(), col(&format!("attr:{a}"))))
            .collect(),
        default_type: None,
        left_namespace: (kind == SourceKind::IdentityLinks).then(|| namespace.to_string()),
        right_namespace: (kind == SourceKind::IdentityLinks).then(|| namespace.to_string()),
        line: 0,
        mapping_digest: String::new(),
    }
}

impl Engine {
    /// How requests with bad messages are answered (`[intake] bad_events`).
    pub fn bad_events(&self) -> Result<BadEvents, EngineError> {
        match self.store().setting(BAD_EVENTS_SETTING)? {
            Some(s) => BadEvents::parse(&s),
            None => Ok(BadEvents::default()),
        }
    }

    /// Sets `[intake] bad_events` (the import does it from the config).
    pub fn set_bad_events(&self, b: BadEvents) -> Result<(), EngineError> {
        let mut tx = self.store().begin()?;
        tx.set_setting(BAD_EVENTS_SETTING, b.as_str())?;
        tx.commit()?;
        Ok(())
    }

    /// Takes a request of Segment-spec messages from a source key: validates
    /// every message, journals the good ones durably (duplicates by message
    /// id ignored) and answers. `kind` is the endpoint's message type
    /// (`track`, `screen`, …; `None`: `/v1/batch`). Refused as a whole (`Invalid`, naming each bad message)
    /// when no message is good, or any is bad under `refuse_batch`.
    pub fn intake(
        &self,
        a: &Access,
        kind: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<IntakeReceipt, EngineError> {
        let source = a.principal.source.as_deref().ok_or_else(|| {
            EngineError::Forbidden(
                "events come with a source's write key (`infogap keys create --role source --source NAME`)"
                    .into(),
            )
        })?;
        let parsed = segment::parse(kind, body, now).map_err(EngineError::Invalid)?;
        let refuse = self.bad_events()? == BadEvents::RefuseBatch && !parsed.rejected.is_empty();
        if parsed.messages.is_empty() || refuse {
            let why: Vec<String> = parsed
                .rejected
                .iter()
                .map(|r| format!("message {}: {}", r.index, r.reason))
                .collect();
            return Err(EngineError::Invalid(format!(
                "{}{}",
                if refuse {
                    "the batch is refused ([intake] bad_events = \"refuse_batch\"): "
                } else {
                    ""
                },
                why.join("; ")
            )));
        }
        let bodies: Vec<String> = parsed
            .messages
            .iter()
            .map(|(_, m)| serde_json::to_string(m))
            .collect::<Result<_, _>>()
            .map_err(|e| EngineError::Invariant(format!("a message as JSON: {e}")))?;
        let ins: Vec<IntakeIn<'_>> = parsed
            .messages
            .iter()
            .zip(&bodies)
            .map(|((_, m), b)| IntakeIn {
                message_id: &m.message_id,
                kind: m.kind.as_str(),
                body: b,
            })
            .collect();
        let fresh = self.store().intake_append(source, now, &ins)?;
        let accepted = fresh.iter().filter(|f| **f).count();
        Ok(IntakeReceipt {
            success: true,
            accepted,
            duplicates: fresh.len() - accepted,
            rejected: parsed.rejected,
        })
    }

    /// The identity policy the last import stored, for the intake.
    fn intake_config(&self) -> Result<Config, EngineError> {
        let store = self.store();
        let mut identity = IdentityConfig::default();
        if let Some(b) = store.setting("identity.blocklist")? {
            identity.blocklist = serde_json::from_str(&b)
                .map_err(|e| EngineError::Invalid(format!("stored identity.blocklist: {e}")))?;
        }
        if let Some(m) = store.setting("identity.max_customers_per_key")? {
            identity.max_customers_per_key = m.parse().map_err(|e| {
                EngineError::Invalid(format!("stored identity.max_customers_per_key: {e}"))
            })?;
        }
        identity.default_country_code = store.setting("identity.default_country_code")?;
        Ok(Config {
            path: "intake".into(),
            store_path: None,
            identity,
            sources: Vec::new(),
            access: Default::default(),
            privacy: Default::default(),
            departments: Vec::new(),
            intake: Default::default(),
            rules: Vec::new(),
            webhooks: Default::default(),
        })
    }

    /// One round of the intake: applies up to `limit` pending journal
    /// messages (oldest first) to the facts and marks them done, in one
    /// transaction.
    pub fn apply_intake(&self, limit: usize) -> Result<ApplyReport, EngineError> {
        let t0 = std::time::Instant::now();
        let store = self.store();
        let pending = store.intake_pending(limit)?;
        let mut report = ApplyReport {
            messages: pending.len(),
            ..Default::default()
        };
        if pending.is_empty() {
            return Ok(report);
        }
        let config = self.intake_config()?;
        let sources: HashMap<String, infogap_store::SourceRecord> = store
            .sources()?
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        let consents = self.consents()?;
        let check_consent = consents.may_refuse(ANALYTICS);
        let mut marks: BTreeMap<i64, (&'static str, Option<String>)> = BTreeMap::new();
        let mut by_source: BTreeMap<String, Rows> = BTreeMap::new();
        for rec in &pending {
            let seq = rec.seq;
            let m: Message = match serde_json::from_str(&rec.body) {
                Ok(m) => m,
                Err(e) => {
                    marks.insert(seq, ("rejected", Some(format!("unreadable message: {e}"))));
                    continue;
                }
            };
            let namespace = sources
                .get(&rec.source)
                .map_or(rec.source.as_str(), |s| s.namespace.as_str());
            // a message whose sender says the person denies analytics is
            // not used at all; a track or page of someone whose stored
            // consent refuses it neither
            let denied_here = m.denied.iter().any(|d| d == ANALYTICS);
            if denied_here {
                marks.insert(seq, ("no_consent", None));
                continue;
            }
            if matches!(m.kind, MessageKind::Track | MessageKind::Page) {
                let denied_stored = check_consent && {
                    let key = match (&m.user_id, &m.anonymous_id) {
                        (Some(u), _) => format!("{namespace}:{u}"),
                        (None, Some(a)) => format!("{namespace}:anon:{a}"),
                        _ => String::new(),
                    };
                    // someone not in the store yet has no record: the default
                    let id = self.find_customer(&key, None)?.unwrap_or(i64::MIN);
                    consents.allows(id, ANALYTICS).is_err()
                };
                if denied_stored {
                    marks.insert(seq, ("no_consent", None));
                    continue;
                }
            }
            let Ok(line) = u64::try_from(seq) else {
                marks.insert(seq, ("rejected", Some("bad sequence number".into())));
                continue;
            };
            by_source
                .entry(rec.source.clone())
                .or_default()
                .add(line, &m);
            marks.insert(seq, ("applied", None));
        }
        let suppress_keys = suppressor(self)?;
        let opts = ImportOptions {
            skip_bad_rows: u64::MAX,
            rejects_dir: None,
            progress: false,
        };
        let mut tx = store.begin()?;
        // another process may have applied some of them since they were read
        let seqs: Vec<i64> = pending.iter().map(|p| p.seq).collect();
        if tx.intake_still_pending(&seqs)? != seqs.len() {
            drop(tx);
            return Ok(ApplyReport::default());
        }
        let mut first_new: Option<i64> = None;
        let mut next_customer = 0;
        let mut suppressed_lines: BTreeSet<u64> = BTreeSet::new();
        let mut rejected_lines: BTreeMap<u64, String> = BTreeMap::new();
        let linked = by_source
            .values()
            .any(|r| !r.links.is_empty() || !r.customers.is_empty());
        for (source, rows) in by_source {
            let (kind, namespace) = sources
                .get(&source)
                .map_or(("events", source.as_str()), |s| {
                    (s.kind.as_str(), s.namespace.as_str())
                });
            let source_id = tx.upsert_source(&source, kind, namespace)?;
            let file_id = tx.upsert_file(source_id, "intake")?;
            let file = format!("intake:{source}");
            let attrs: Vec<String> = rows
                .customers
                .iter()
                .flat_map(|(_, r)| r.keys())
                .filter_map(|k| k.strip_prefix("attr:"))
                .map(str::to_string)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let mut customer_headers: Vec<String> = ["customer", "email", "phone", "time"]
                .map(String::from)
                .to_vec();
            customer_headers.extend(attrs.iter().map(|a| format!("attr:{a}")));
            let customers: Vec<(u64, Vec<Value>)> = rows
                .customers
                .into_iter()
                .map(|(seq, mut r)| {
                    let row = customer_headers
                        .iter()
                        .map(|h| r.remove(h).unwrap_or(Value::Null))
                        .collect();
                    (seq, row)
                })
                .collect();
            let jobs: Vec<Job> = vec![
                (
                    synthetic(
                        &source,
                        namespace,
                        SourceKind::Customers,
                        &["customer", "email", "phone", "time"],
                        &attrs,
                    ),
                    customer_headers,
                    customers,
                ),
                (
                    synthetic(
                        &source,
                        namespace,
                        SourceKind::IdentityLinks,
                        &["left", "right"],
                        &[],
                    ),
                    vec!["left".into(), "right".into()],
                    rows.links,
                ),
                (
                    synthetic(
                        &source,
                        namespace,
                        SourceKind::Events,
                        &["customer", "event", "product", "channel", "value", "time"],
                        &[],
                    ),
                    ["customer", "event", "product", "channel", "value", "time"]
                        .map(String::from)
                        .to_vec(),
                    rows.events,
                ),
                (
                    synthetic(
                        &source,
                        namespace,
                        SourceKind::OrderLines,
                        &[
                            "order", "customer", "product", "quantity", "amount", "name",
                            "category", "time",
                        ],
                        &[],
                    ),
                    [
                        "order", "customer", "product", "quantity", "amount", "name", "category",
                        "time",
                    ]
                    .map(String::from)
                    .to_vec(),
                    rows.lines,
                ),
                (
                    synthetic(
                        &source,
                        namespace,
                        SourceKind::Feedback,
                        &["customer", "type", "score", "text", "channel", "time"],
                        &[],
                    ),
                    ["customer", "type", "score", "text", "channel", "time"]
                        .map(String::from)
                        .to_vec(),
                    rows.feedback,
                ),
            ];
            for (src, headers, data) in jobs {
                if data.is_empty() {
                    continue;
                }
                let reader = Box::new(MemoryRows::new(file.clone(), headers, data));
                let suppress = suppress_keys
                    .as_ref()
                    .map(crate::import::Suppressor::clone_keys);
                let out = load_rows(
                    tx.as_mut(),
                    &config,
                    &src,
                    reader,
                    Target {
                        source_id,
                        file: &file,
                        file_id,
                    },
                    suppress,
                    &opts,
                )?;
                report.rows_written += out.written;
                first_new = Some(first_new.map_or(out.first_new, |f: i64| f.min(out.first_new)));
                next_customer = next_customer.max(out.next_customer);
                suppressed_lines.extend(out.suppressed_lines);
                for r in out.rejects {
                    let why = if r.column.is_empty() {
                        r.reason
                    } else {
                        format!("{}: {}", r.column, r.reason)
                    };
                    rejected_lines.entry(r.line).or_insert(why);
                }
            }
        }
        // resolution only when the round brought a new identity or a link
        // (a round of events of known people changes no identity)
        let new_identities = first_new.is_some_and(|f| next_customer > f);
        if let Some(first) = first_new.filter(|_| new_identities || linked) {
            let (merges, _) = resolve_graph(
                tx.as_mut(),
                config.identity.max_customers_per_key,
                first,
                next_customer,
                "intake",
            )?;
            report.merges = merges;
        }
        for (seq, mark) in marks.iter_mut() {
            let Ok(line) = u64::try_from(*seq) else {
                continue;
            };
            if mark.0 != "applied" {
                continue;
            }
            if suppressed_lines.contains(&line) {
                *mark = ("suppressed", None);
            } else if let Some(why) = rejected_lines.get(&line) {
                *mark = ("rejected", Some(why.clone()));
            }
        }
        let done: Vec<IntakeDone> = marks
            .into_iter()
            .map(|(seq, (state, note))| IntakeDone { seq, state, note })
            .collect();
        for d in &done {
            match d.state {
                "applied" => report.applied += 1,
                "suppressed" => report.suppressed += 1,
                "no_consent" => report.no_consent += 1,
                _ => report.rejected += 1,
            }
        }
        tx.intake_done(&done)?;
        tx.commit()?;
        report.seconds = t0.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Applies the whole journal (rounds of `round` messages) and returns
    /// the summed report: what `infogap intake apply` runs.
    pub fn apply_all_intake(&self, round: usize) -> Result<ApplyReport, EngineError> {
        let mut total = ApplyReport::default();
        let t0 = std::time::Instant::now();
        loop {
            let r = self.apply_intake(round)?;
            if r.messages == 0 {
                break;
            }
            total.messages += r.messages;
            total.applied += r.applied;
            total.suppressed += r.suppressed;
            total.no_consent += r.no_consent;
            total.rejected += r.rejected;
            total.rows_written += r.rows_written;
            total.merges += r.merges;
        }
        total.seconds = t0.elapsed().as_secs_f64();
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trait_names_become_attribute_names() {
        assert_eq!(attribute_name("firstName").as_deref(), Some("first_name"));
        assert_eq!(attribute_name("plan").as_deref(), Some("plan"));
        assert_eq!(attribute_name("Age Band").as_deref(), Some("age_band"));
        assert_eq!(attribute_name("email"), None, "a key, not an attribute");
        assert_eq!(attribute_name("a/b"), None);
        assert_eq!(attribute_name(""), None);
    }

    #[test]
    fn ecommerce_names_map_to_signals() {
        assert_eq!(event_kind("Product Viewed"), "view");
        assert_eq!(event_kind("Product Added"), "cart");
        assert_eq!(event_kind("Product Reviewed"), "rating");
        // the order's lines are the purchase signal; the event is not a second one
        assert_eq!(event_kind("Order Completed"), "order completed");
        assert_eq!(event_kind("Signed Up"), "signed up");
    }
}
