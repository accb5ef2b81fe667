//! Reports over the store: stats, the unified customer view, why records were
//! merged, and reversible splits. Also the progress-bar helper every long
//! command uses (drawn only on a terminal).

use std::collections::{BTreeSet, HashMap};

use indicatif::{ProgressBar, ProgressStyle};
use infogap_core::ids::{Email, Phone};
use infogap_store::{IdentityRecord, LinkRecord, MergeLogEntry, Stats, Store, now_rfc3339};
use serde::Serialize;

use crate::{Engine, EngineError};

/// A progress bar on stderr when `enabled`, else `None`.
pub fn progress_bar(enabled: bool, label: &str) -> Option<ProgressBar> {
    if !enabled {
        return None;
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "{spinner} {msg} [{bar:30}] {percent}% {elapsed} (ETA {eta}) {per_sec}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_message(label.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(bar)
}

/// Store-wide counts.
pub fn stats(engine: &Engine) -> Result<Stats, EngineError> {
    let mut s = engine.store().stats(false)?;
    // revenue from the snapshot (the store's SQL would scan every order
    // line): each order's amount, its lines' sum when it has none
    let ds = engine.dataset()?;
    let mut sum = infogap_store::snapshot::KbnSum::default();
    for o in &ds.orders {
        sum.add(o.amount);
    }
    s.revenue = (sum.value().unwrap_or(0.0) * 100.0).round() / 100.0;
    crate::invariants::checked("stats", s)
}

/// Finds the customer a key belongs to (see [`Engine::find_customer`]).
pub fn find_customer(
    store: &dyn Store,
    key: &str,
    namespace: Option<&str>,
) -> Result<Option<i64>, EngineError> {
    let key = key.trim();
    if let Some(id) = key.strip_prefix('#') {
        let id: i64 = id
            .parse()
            .map_err(|_| EngineError::Invalid(format!("{key:?}: expected #<number>")))?;
        return Ok((!store.customer_identities(id)?.is_empty()).then_some(id));
    }
    let cc = store.setting("identity.default_country_code")?;
    let mut candidates: Vec<IdentityRecord> = Vec::new();
    let mut values = vec![key.to_string()];
    if let Some(e) = Email::parse(key) {
        values.push(e.as_str().to_string());
    }
    if let Some(p) = Phone::parse(key, cc.as_deref()) {
        values.push(p.as_str().to_string());
    }
    // "ns:value" as printed by infogap
    if namespace.is_none()
        && let Some((ns, v)) = key.split_once(':')
        && !ns.is_empty()
        && !ns.contains('@')
    {
        for rec in store.identities_by_value(v)? {
            if rec.namespace == ns {
                candidates.push(rec);
            }
        }
    }
    values.dedup();
    for v in &values {
        for rec in store.identities_by_value(v)? {
            if namespace.is_none_or(|ns| ns == rec.namespace)
                && !candidates.iter().any(|c| c.id == rec.id)
            {
                candidates.push(rec);
            }
        }
    }
    let customers: BTreeSet<i64> = candidates.iter().map(|c| c.customer_id).collect();
    match customers.len() {
        0 => Ok(None),
        1 => Ok(customers.into_iter().next()),
        _ => {
            let list: Vec<String> = candidates
                .iter()
                .map(|c| format!("{}:{} (customer #{})", c.namespace, c.value, c.customer_id))
                .collect();
            Err(EngineError::Invalid(format!(
                "{key:?} matches several customers: {}; pass --namespace NS or #ID",
                list.join(", ")
            )))
        }
    }
}

/// The customer id of a key, or `NotFound`.
pub fn resolve_key(
    engine: &Engine,
    key: &str,
    namespace: Option<&str>,
) -> Result<i64, EngineError> {
    engine.find_customer(key, namespace)?.ok_or_else(|| {
        EngineError::NotFound(format!(
            "no customer with key {key:?}{}",
            namespace
                .map(|n| format!(" in namespace {n:?}"))
                .unwrap_or_default()
        ))
    })
}

/// Events of one type.
#[derive(Debug, Clone, Serialize)]
pub struct EventCount {
    /// Type.
    pub event: String,
    /// Count.
    pub count: i64,
}

/// Consent state.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentView {
    /// Purpose.
    pub purpose: String,
    /// Granted.
    pub granted: bool,
    /// When (Unix seconds).
    pub time: Option<i64>,
}

fn source_names(store: &dyn Store) -> Result<HashMap<i64, String>, EngineError> {
    Ok(store
        .sources()?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect())
}

fn ident_label(i: &IdentityRecord) -> String {
    if i.kind == "customer" {
        format!("{}:{}", i.namespace, i.value)
    } else {
        format!("{} {}", i.kind, i.value)
    }
}

/// One piece of merge evidence.
#[derive(Debug, Clone, Serialize)]
pub struct LinkView {
    /// One key.
    pub a: String,
    /// The other.
    pub b: String,
    /// Rule.
    pub rule: String,
    /// Source of the evidence.
    pub source: String,
    /// Line of the evidence.
    pub line: i64,
    /// Undone by a split.
    pub suppressed: bool,
}

/// Why a customer's records were merged.
#[derive(Debug, Clone, Serialize)]
pub struct MergeExplanation {
    /// Customer id.
    pub id: i64,
    /// Identities.
    pub identities: Vec<String>,
    /// Links among (and from) them.
    pub links: Vec<LinkView>,
    /// History from the merge log.
    pub history: Vec<MergeLogEntry>,
}

/// What the store holds as merge evidence of one customer, before any
/// policy shapes it: its identities, the links touching them (live and
/// split), the identities at the far end of links that now belong to
/// another customer, source names and the merge log.
#[derive(Debug, Clone)]
pub(crate) struct Evidence {
    /// The customer's identities.
    pub idents: Vec<IdentityRecord>,
    /// Links touching any of them.
    pub links: Vec<LinkRecord>,
    /// Identities at the other end of a link that are not the customer's.
    pub others: HashMap<i64, IdentityRecord>,
    /// Source names by id.
    pub names: HashMap<i64, String>,
    /// Merge-log entries naming the customer.
    pub history: Vec<MergeLogEntry>,
}

/// Reads the merge evidence of customer `id` (`NotFound` when it has no
/// identities).
pub(crate) fn merge_evidence(store: &dyn Store, id: i64) -> Result<Evidence, EngineError> {
    let idents = store.customer_identities(id)?;
    if idents.is_empty() {
        return Err(EngineError::NotFound(format!("no customer #{id}")));
    }
    let ids: Vec<i64> = idents.iter().map(|i| i.id).collect();
    let links = store.links_of(&ids)?;
    let mut others = HashMap::new();
    for l in &links {
        for x in [l.a, l.b] {
            if !ids.contains(&x)
                && let std::collections::hash_map::Entry::Vacant(e) = others.entry(x)
                && let Some(rec) = store.identity(x)?
            {
                e.insert(rec);
            }
        }
    }
    Ok(Evidence {
        idents,
        links,
        others,
        names: source_names(store)?,
        history: store.merge_log(id)?,
    })
}

/// Explains why the customer's keys are one customer.
pub fn merges(
    engine: &Engine,
    key: &str,
    namespace: Option<&str>,
) -> Result<MergeExplanation, EngineError> {
    let id = resolve_key(engine, key, namespace)?;
    let ev = merge_evidence(engine.store(), id)?;
    let mut labels: HashMap<i64, String> =
        ev.idents.iter().map(|i| (i.id, ident_label(i))).collect();
    for (x, rec) in &ev.others {
        labels.insert(
            *x,
            format!("{} (customer #{})", ident_label(rec), rec.customer_id),
        );
    }
    let link_views = ev
        .links
        .iter()
        .map(|l: &LinkRecord| LinkView {
            a: labels.get(&l.a).cloned().unwrap_or_default(),
            b: labels.get(&l.b).cloned().unwrap_or_default(),
            rule: l.rule.clone(),
            source: ev.names.get(&l.source_id).cloned().unwrap_or_default(),
            line: l.line,
            suppressed: l.suppressed,
        })
        .collect();
    crate::invariants::checked(
        "customer merges",
        MergeExplanation {
            id,
            identities: ev.idents.iter().map(ident_label).collect(),
            links: link_views,
            history: ev.history,
        },
    )
}

/// The outcome of a split or unsplit.
#[derive(Debug, Clone, Serialize)]
pub struct SplitOutcome {
    /// The identity acted on.
    pub identity: String,
    /// Customer it belonged to before.
    pub from_customer: i64,
    /// Customer it belongs to now.
    pub to_customer: i64,
    /// Links switched off (split) or on (unsplit).
    pub links_changed: usize,
}

/// The identity an `NS:VALUE` spec names (emails and phones normalized
/// as on import).
pub(crate) fn find_identity(store: &dyn Store, spec: &str) -> Result<IdentityRecord, EngineError> {
    let (ns, value) = spec.split_once(':').ok_or_else(|| {
        EngineError::Invalid(format!(
            "--identity {spec:?}: expected NS:VALUE (e.g. web:W123 or email:ann@example.com)"
        ))
    })?;
    let cc = store.setting("identity.default_country_code")?;
    let value = match ns {
        "email" => Email::parse(value)
            .map(|e| e.as_str().to_string())
            .unwrap_or_else(|| value.trim().to_lowercase()),
        "phone" => Phone::parse(value, cc.as_deref())
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| value.to_string()),
        _ => value.trim().to_string(),
    };
    store
        .identities_by_value(&value)?
        .into_iter()
        .find(|i| i.namespace == ns)
        .ok_or_else(|| EngineError::NotFound(format!("no identity {ns}:{value}")))
}

/// Undoes a wrong link: the identity and its facts become a separate customer.
/// Reversible with [`unsplit`].
pub fn split(
    engine: &Engine,
    key: &str,
    namespace: Option<&str>,
    identity: &str,
) -> Result<SplitOutcome, EngineError> {
    set_split(engine, key, namespace, identity, true)
}

/// Re-enables the links a split switched off.
pub fn unsplit(
    engine: &Engine,
    key: &str,
    namespace: Option<&str>,
    identity: &str,
) -> Result<SplitOutcome, EngineError> {
    set_split(engine, key, namespace, identity, false)
}

fn set_split(
    engine: &Engine,
    key: &str,
    namespace: Option<&str>,
    identity: &str,
    split: bool,
) -> Result<SplitOutcome, EngineError> {
    let store = engine.store();
    let customer = resolve_key(engine, key, namespace)?;
    let ident = find_identity(store, identity)?;
    if split && ident.customer_id != customer {
        return Err(EngineError::Invalid(format!(
            "{identity} belongs to customer #{}, not to #{customer} ({key})",
            ident.customer_id
        )));
    }
    let links: Vec<LinkRecord> = store
        .links_of(&[ident.id])?
        .into_iter()
        .filter(|l| l.suppressed != split)
        .collect();
    if links.is_empty() {
        return Err(EngineError::Invalid(if split {
            format!("{identity} has no active link to split (it is alone in customer #{customer})")
        } else {
            format!("{identity} has no split link to restore")
        }));
    }
    if split && store.customer_identities(customer)?.len() < 2 {
        return Err(EngineError::Invalid(format!(
            "customer #{customer} has a single identity: nothing to split"
        )));
    }
    apply_split(engine, customer, &ident, &links, identity, split)
}

/// Switches `links` (of identity `ident`, checked by the caller) off
/// (`split`) or on, re-resolves the identity graph and logs it; `label`
/// names the identity in the merge log. One transaction.
pub(crate) fn apply_split(
    engine: &Engine,
    customer: i64,
    ident: &IdentityRecord,
    links: &[LinkRecord],
    label: &str,
    split: bool,
) -> Result<SplitOutcome, EngineError> {
    let store = engine.store();
    let max: usize = store
        .setting("identity.max_customers_per_key")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut tx = store.begin()?;
    let ids: Vec<i64> = links.iter().map(|l| l.id).collect();
    tx.set_links_suppressed(&ids, split)?;
    let m = tx.max_ids()?;
    let why = if split {
        "a split".to_string()
    } else {
        format!("undoing the split of {label}")
    };
    crate::import::resolve_graph(tx.as_mut(), max, m.customer + 1, m.customer + 1, &why)?;
    let after = tx
        .identity_graph()?
        .0
        .into_iter()
        .find(|i| i.id == ident.id)
        .map(|i| i.customer_id)
        .unwrap_or(customer);
    tx.log_merge(&MergeLogEntry {
        at: now_rfc3339(),
        action: if split {
            "split".into()
        } else {
            "unsplit".into()
        },
        customer_id: ident.customer_id,
        other_id: Some(after),
        detail: if split {
            format!(
                "{label} split from customer #{} into #{after} ({} link(s) switched off)",
                ident.customer_id,
                ids.len()
            )
        } else {
            format!(
                "{label} rejoined customer #{after} ({} link(s) restored)",
                ids.len()
            )
        },
    })?;
    tx.commit()?;
    Ok(SplitOutcome {
        identity: label.to_string(),
        from_customer: ident.customer_id,
        to_customer: after,
        links_changed: ids.len(),
    })
}

/// Writes a Parquet file as CSV (header + rows), streaming; returns the row count.
pub fn parquet_to_csv(
    parquet: &std::path::Path,
    out: &std::path::Path,
) -> Result<u64, EngineError> {
    let mut r = infogap_ingest::reader::open(
        parquet,
        infogap_core::config::FileFormat::Parquet,
        None,
        &[],
    )?;
    let io = |e: std::io::Error| EngineError::Io {
        path: out.display().to_string(),
        source: e,
    };
    let f = std::fs::File::create(out).map_err(io)?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(f));
    let cerr = |e: csv::Error| EngineError::Invalid(format!("{}: {e}", out.display()));
    let headers = r.headers().to_vec();
    w.write_record(&headers).map_err(cerr)?;
    let mut n = 0;
    let mut rec: Vec<String> = Vec::with_capacity(headers.len());
    while r.advance()? {
        rec.clear();
        for i in 0..headers.len() {
            rec.push(match r.cell(i) {
                infogap_core::value::Cell::Time(t) => infogap_core::value::format_time(t),
                c => c.text().unwrap_or_default(),
            });
        }
        w.write_record(&rec).map_err(cerr)?;
        n += 1;
    }
    w.flush().map_err(io)?;
    Ok(n)
}
