//! Identity resolution as the principal may see and change it, and the
//! system's import runs and model versions: why a customer's identities are
//! one customer (identities, the links between them with rule, source and
//! line, the merge log), splitting a wrongly linked identity off and undoing
//! it, and which files were imported and which models are saved.
//!
//! Why here and not in `report`: `report::merges` and `report::split` are
//! the operator's command-line tools, taking a key and no principal. The
//! dashboard (and any later API) goes through these use cases instead, so
//! the department scope ([`Engine::admit`]), the contact class (a masked
//! role sees masked identity values in the links and the merge log too),
//! the right to change merges and the audit record are decided in one
//! place, as for every other read of customer data (see `share`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use infogap_core::access::{Action, FieldClass, Visibility};
use infogap_store::{IdentityRecord, MergeLogEntry};
use serde::Serialize;

use crate::access::{Access, PolicyNote, is_contact_kind, show_contact};
use crate::report::{SplitOutcome, apply_split, find_identity, merge_evidence};
use crate::{Engine, EngineError};

/// Why a customer's identities are one customer, as the principal may see it.
#[derive(Debug, Clone, Serialize)]
pub struct MergeEvidence {
    /// Customer id.
    pub id: i64,
    /// The customer's identities the principal may see.
    pub identities: Vec<EvidenceIdentity>,
    /// Identities left out: another department's, or of a class the role
    /// does not see.
    pub not_shown: usize,
    /// Links touching the customer's identities, live and split.
    pub links: Vec<EvidenceLink>,
    /// Merges, splits and unsplits that named the customer, oldest first.
    pub history: Vec<EvidenceEvent>,
    /// The policy that shaped this view.
    pub policy: PolicyNote,
}

/// One identity of the customer.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceIdentity {
    /// Namespace (`email`, `phone`, or a source's id namespace).
    pub namespace: String,
    /// `customer`, `email` or `phone`.
    pub kind: String,
    /// Value (emails and phones per the contact class).
    pub value: String,
    /// Source that first brought it.
    pub source: String,
    /// Line of that source.
    pub line: i64,
    /// Live links joining it to other identities.
    pub active_links: usize,
    /// Links a split switched off.
    pub split_links: usize,
    /// `NS:VALUE`, the spec that names it in a split or unsplit; only when
    /// the value is shown in full (never a masked value's original).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
}

/// One link (a piece of evidence that two identities are one person).
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceLink {
    /// One identity (`ns:value`, shaped by the contact class).
    pub a: String,
    /// The other.
    pub b: String,
    /// Rule: `same_record` or `link_table`.
    pub rule: String,
    /// The rule in words.
    pub why: String,
    /// Source whose record is the evidence.
    pub source: String,
    /// Line of that record.
    pub line: i64,
    /// Switched off by a split.
    pub suppressed: bool,
    /// The customer the far end belongs to now, when not this one (a split
    /// identity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_customer: Option<i64>,
    /// For a split link to another customer: the spec of the identity whose
    /// unsplit restores it (only when shown in full).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undo: Option<String>,
}

/// One entry of the merge log.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceEvent {
    /// When (RFC 3339).
    pub at: String,
    /// `merge`, `split` or `unsplit`.
    pub action: String,
    /// Customer acted on.
    pub customer_id: i64,
    /// The other customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_id: Option<i64>,
    /// What happened (contact values per the contact class).
    pub detail: String,
}

/// The system's import runs and saved models.
#[derive(Debug, Clone, Serialize)]
pub struct RunsAndModels {
    /// Import runs, newest first (at most [`MAX_RUNS`]).
    pub imports: Vec<ImportRunView>,
    /// Import runs in all (within the department).
    pub imports_total: usize,
    /// Saved models, one entry per kind.
    pub models: Vec<ModelView>,
}

/// Most import runs one answer lists.
pub const MAX_RUNS: usize = 1000;

/// One import run (no customer data: counts, times and the file's name).
#[derive(Debug, Clone, Serialize)]
pub struct ImportRunView {
    /// Source.
    pub source: String,
    /// The file's name (without the server's directories).
    pub file: String,
    /// First 12 hex digits of the file's SHA-256 (which version was read).
    pub file_sha256: String,
    /// Rows read.
    pub rows_read: i64,
    /// Fact rows newly written.
    pub rows_written: i64,
    /// Rows rejected.
    pub rows_rejected: i64,
    /// `ok`, `unchanged` or `failed`.
    pub status: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339).
    pub finished_at: String,
    /// Duration in seconds.
    pub seconds: f64,
}

/// A model kind and its saved versions.
#[derive(Debug, Clone, Serialize)]
pub struct ModelView {
    /// Kind (`recs`, `churn`, `clv`, `amount`, …).
    pub kind: String,
    /// The newest version (the one in use).
    pub version: i64,
    /// Every kept version, oldest first.
    pub versions: Vec<i64>,
    /// When the newest was saved (RFC 3339).
    pub created_at: Option<String>,
    /// The newest version's scalar metrics (nested reports left out).
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// The newest version's scalar parameters.
    pub params: BTreeMap<String, serde_json::Value>,
}

fn rule_words(rule: &str) -> &'static str {
    match rule {
        "same_record" => "seen on the same record",
        "link_table" => "mapped by a link table",
        _ => "linked",
    }
}

/// Whether an identity's value is shown in full to the principal.
fn in_full(a: &Access, i: &IdentityRecord) -> bool {
    !is_contact_kind(&i.kind) || a.visibility(FieldClass::Contact) == Visibility::Visible
}

/// An identity as `ns:value` shaped by the contact class; `None` when
/// its class is hidden.
fn shaped(a: &Access, i: &IdentityRecord) -> Option<String> {
    if !is_contact_kind(&i.kind) {
        return Some(format!("{}:{}", i.namespace, i.value));
    }
    show_contact(a.visibility(FieldClass::Contact), &i.kind, &i.value)
        .map(|v| format!("{}:{v}", i.namespace))
}

/// A merge-log text with contact values shaped: known identities replaced
/// by their shaped label; a text that still holds an email or a phone
/// (typed differently on the command line) is told without it.
fn shaped_detail(a: &Access, e: &MergeLogEntry, known: &[(String, String)]) -> String {
    let mut d = e.detail.clone();
    for (raw, shown) in known {
        if raw != shown && d.contains(raw.as_str()) {
            d = d.replace(raw.as_str(), shown);
        }
    }
    if a.visibility(FieldClass::Contact) == Visibility::Visible {
        return d;
    }
    let raw_left = known
        .iter()
        .any(|(raw, shown)| raw != shown && d.contains(raw.as_str()));
    let masked_only = |d: &str| {
        d.split_whitespace().all(|t| {
            let t = t.trim_matches(|c: char| matches!(c, '(' | ')' | ',' | ';' | '.'));
            let at_ok = !t.contains('@') || t.contains("***@");
            let phone_ok = !t.starts_with("phone:") || t.starts_with("phone:***");
            at_ok && phone_ok
        })
    };
    if !raw_left && masked_only(&d) && !has_phone_tail(&d) {
        return d;
    }
    let other = e.other_id.map_or_else(String::new, |o| format!("#{o}"));
    match e.action.as_str() {
        "split" => format!(
            "an identity split from customer #{} into {other}",
            e.customer_id
        ),
        "unsplit" => format!("an identity rejoined customer {other}"),
        "merge" => format!(
            "customer {other} merged into #{}: their keys were linked (the evidence holds contact data)",
            e.customer_id
        ),
        _ => "(this entry holds contact data)".into(),
    }
}

/// Digits left after a masked phone (a number typed with spaces).
fn has_phone_tail(d: &str) -> bool {
    let toks: Vec<&str> = d.split_whitespace().collect();
    toks.windows(2).any(|w| {
        w[0].starts_with("phone:") && w[1].chars().next().is_some_and(|c| c.is_ascii_digit())
    })
}

fn invalid_identity() -> EngineError {
    EngineError::Invalid(
        "identity: expected NS:VALUE as the merges page lists it (e.g. web:W123)".into(),
    )
}

impl Engine {
    /// Why customer `id`'s identities are one customer: its identities,
    /// every link touching them with rule, source and line (and whether a
    /// split switched it off), and the merge log, as the principal may see
    /// them (department scope; contact values per the contact class, in the
    /// links and the log too). Needs `customers.read`; audited as
    /// `customers.merges` with every customer whose identity is shown.
    pub fn share_merges(&self, a: &Access, id: i64) -> Result<MergeEvidence, EngineError> {
        if a.action != Action::CustomersRead {
            return Err(EngineError::Forbidden(format!(
                "merge evidence needs the {} grant, not {}",
                Action::CustomersRead,
                a.action
            )));
        }
        self.admit(a, id)?;
        let ev = merge_evidence(self.store(), id)?;
        let dept = a.department_sources.as_deref();
        let in_dept = |src: i64| dept.is_none_or(|d| d.contains(&src));
        let mut shown_customers: BTreeSet<i64> = BTreeSet::from([id]);

        // labels of every identity a link touches
        let mut labels: HashMap<i64, String> = HashMap::new();
        let mut known: Vec<(String, String)> = Vec::new();
        for i in ev.idents.iter().chain(ev.others.values()) {
            let label = if !in_dept(i.source_id) {
                format!("another department's {}", i.kind)
            } else {
                match shaped(a, i) {
                    Some(s) => {
                        if i.customer_id != id {
                            shown_customers.insert(i.customer_id);
                        }
                        s
                    }
                    None => format!("a hidden {}", i.kind),
                }
            };
            known.push((format!("{}:{}", i.namespace, i.value), label.clone()));
            let label = if i.customer_id != id {
                format!("{label} (customer #{})", i.customer_id)
            } else {
                label
            };
            labels.insert(i.id, label);
        }
        // longest first: a value never replaces part of a longer one
        known.sort_by_key(|(raw, _)| std::cmp::Reverse(raw.len()));

        let mut identities = Vec::new();
        let mut not_shown = 0;
        for i in &ev.idents {
            let value = if in_dept(i.source_id) {
                if is_contact_kind(&i.kind) {
                    show_contact(a.visibility(FieldClass::Contact), &i.kind, &i.value)
                } else {
                    Some(i.value.clone())
                }
            } else {
                None
            };
            let Some(value) = value else {
                not_shown += 1;
                continue;
            };
            let touching = ev.links.iter().filter(|l| l.a == i.id || l.b == i.id);
            let (split_links, active_links) =
                touching.fold(
                    (0, 0),
                    |(s, n), l| if l.suppressed { (s + 1, n) } else { (s, n + 1) },
                );
            identities.push(EvidenceIdentity {
                namespace: i.namespace.clone(),
                kind: i.kind.clone(),
                value,
                source: ev.names.get(&i.source_id).cloned().unwrap_or_default(),
                line: i.line,
                active_links,
                split_links,
                spec: in_full(a, i).then(|| format!("{}:{}", i.namespace, i.value)),
            });
        }

        let mine: HashSet<i64> = ev.idents.iter().map(|i| i.id).collect();
        let links = ev
            .links
            .iter()
            .map(|l| {
                let far = [l.a, l.b]
                    .into_iter()
                    .find(|x| !mine.contains(x))
                    .and_then(|x| ev.others.get(&x));
                EvidenceLink {
                    a: labels.get(&l.a).cloned().unwrap_or_default(),
                    b: labels.get(&l.b).cloned().unwrap_or_default(),
                    rule: l.rule.clone(),
                    why: rule_words(&l.rule).into(),
                    source: ev.names.get(&l.source_id).cloned().unwrap_or_default(),
                    line: l.line,
                    suppressed: l.suppressed,
                    other_customer: far.map(|f| f.customer_id),
                    undo: far
                        .filter(|f| l.suppressed && in_dept(f.source_id) && in_full(a, f))
                        .map(|f| format!("{}:{}", f.namespace, f.value)),
                }
            })
            .collect();

        let history = ev
            .history
            .iter()
            .map(|e| EvidenceEvent {
                at: e.at.clone(),
                action: e.action.clone(),
                customer_id: e.customer_id,
                other_id: e.other_id,
                detail: shaped_detail(a, e, &known),
            })
            .collect();

        let view = crate::invariants::checked(
            "customer merges",
            MergeEvidence {
                id,
                identities,
                not_shown,
                links,
                history,
                policy: a.note(),
            },
        )?;
        self.record_access(
            a,
            "customers.merges",
            shown_customers.into_iter().collect(),
            a.shown_classes(&[FieldClass::Contact]),
        )?;
        Ok(view)
    }

    /// Splits an identity (`NS:VALUE`) off customer `id` (its live links
    /// switched off; it and its facts become a customer of their own), or
    /// with `split` false undoes that (its split links switched on again,
    /// from the split-off customer's page or the original one's). Needs
    /// `customers.merge`; the department must know the customer and the
    /// identity. Audited as `customers.split` / `customers.unsplit` with
    /// every customer involved. The outcome's `to_customer` is the one the
    /// identity belongs to afterwards (a split identity may keep the id
    /// while the others move to a new one).
    pub fn share_split(
        &self,
        a: &Access,
        id: i64,
        identity: &str,
        split: bool,
    ) -> Result<SplitOutcome, EngineError> {
        if a.action != Action::CustomersMerge {
            return Err(EngineError::Forbidden(format!(
                "splitting needs the {} grant, not {}",
                Action::CustomersMerge,
                a.action
            )));
        }
        let spec = identity.trim();
        if spec.is_empty() || spec.len() > 320 || !spec.contains(':') {
            return Err(invalid_identity());
        }
        self.admit(a, id)?;
        let store = self.store();
        let ident = match find_identity(store, spec) {
            Ok(i) => i,
            Err(EngineError::Invalid(_)) => return Err(invalid_identity()),
            Err(EngineError::NotFound(_)) => {
                return Err(EngineError::NotFound(
                    "identity: no identity with that value".into(),
                ));
            }
            Err(e) => return Err(e),
        };
        if let Some(d) = a.department_sources.as_deref()
            && !d.contains(&ident.source_id)
        {
            return Err(EngineError::Forbidden(
                "identity: brought by another department's source".into(),
            ));
        }
        let own = store.customer_identities(id)?;
        let links: Vec<infogap_store::LinkRecord> = store
            .links_of(&[ident.id])?
            .into_iter()
            .filter(|l| l.suppressed != split)
            .collect();
        if split {
            if ident.customer_id != id {
                return Err(EngineError::Invalid(format!(
                    "identity: not one of customer #{id}'s identities"
                )));
            }
            if own.len() < 2 {
                return Err(EngineError::Invalid(format!(
                    "identity: customer #{id} has a single identity, nothing to split"
                )));
            }
            if links.is_empty() {
                return Err(EngineError::Invalid(
                    "identity: no live link to switch off".into(),
                ));
            }
        } else {
            if links.is_empty() {
                return Err(EngineError::Invalid(
                    "identity: no split link to restore".into(),
                ));
            }
            let mine: HashSet<i64> = own.iter().map(|i| i.id).collect();
            let touches = links
                .iter()
                .any(|l| mine.contains(&l.a) || mine.contains(&l.b));
            if ident.customer_id != id && !touches {
                return Err(EngineError::Invalid(format!(
                    "identity: was not split from customer #{id}"
                )));
            }
            // every customer that rejoins: the department must know it too
            let mut rejoining = BTreeSet::from([ident.customer_id]);
            for l in &links {
                for x in [l.a, l.b] {
                    if !mine.contains(&x)
                        && let Some(far) = store.identity(x)?
                    {
                        rejoining.insert(far.customer_id);
                    }
                }
            }
            for c in rejoining.into_iter().filter(|c| *c != id) {
                self.admit(a, c)?;
            }
        }
        let raw = format!("{}:{}", ident.namespace, ident.value);
        let mut out = apply_split(self, id, &ident, &links, &raw, split)?;
        out.identity = shaped(a, &ident).unwrap_or_else(|| format!("a hidden {}", ident.kind));
        // both sides: a split identity may keep the id and the rest move
        let mut customers = BTreeSet::from([id, out.from_customer, out.to_customer]);
        for i in &own {
            if let Some(now) = store.identity(i.id)? {
                customers.insert(now.customer_id);
            }
        }
        self.record_access(
            a,
            if split {
                "customers.split"
            } else {
                "customers.unsplit"
            },
            customers.into_iter().collect(),
            vec![],
        )?;
        Ok(out)
    }

    /// The import runs (newest first; a department sees its sources' only)
    /// and the saved model versions with the newest one's scalar metrics.
    /// Needs `models.train`: these are the pipeline's operating records,
    /// for the roles that retrain it, and the exact per-source row counts
    /// are what the store-wide stats hide from the other roles (small
    /// sources merged). Audited as `system.read`.
    pub fn share_imports_and_models(&self, a: &Access) -> Result<RunsAndModels, EngineError> {
        if a.action != Action::ModelsTrain {
            return Err(EngineError::Forbidden(format!(
                "import runs and models need the {} grant, not {}",
                Action::ModelsTrain,
                a.action
            )));
        }
        let store = self.store();
        let allowed: Option<HashSet<String>> = match a.department_sources.as_deref() {
            Some(d) => Some(
                store
                    .sources()?
                    .into_iter()
                    .filter(|s| d.contains(&s.id))
                    .map(|s| s.name)
                    .collect(),
            ),
            None => None,
        };
        let runs: Vec<infogap_store::ImportRun> = store
            .import_runs()?
            .into_iter()
            .filter(|r| allowed.as_ref().is_none_or(|s| s.contains(&r.source)))
            .collect();
        let imports_total = runs.len();
        let imports = runs
            .into_iter()
            .take(MAX_RUNS)
            .map(|r| ImportRunView {
                file: std::path::Path::new(&r.file)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                file_sha256: r.file_hash.chars().take(12).collect(),
                source: r.source,
                rows_read: r.rows_read,
                rows_written: r.rows_written,
                rows_rejected: r.rows_rejected,
                status: r.status,
                started_at: r.started_at,
                finished_at: r.finished_at,
                seconds: r.seconds,
            })
            .collect();
        let scalars = |v: &serde_json::Value| -> BTreeMap<String, serde_json::Value> {
            v.as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(_, x)| x.is_number() || x.is_string() || x.is_boolean())
                        .filter(|(_, x)| x.as_str().is_none_or(|s| s.len() <= 80))
                        .take(16)
                        .map(|(k, x)| (k.clone(), x.clone()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut models = Vec::new();
        for (kind, version) in store.model_versions()? {
            let versions = store.model_history(&kind)?;
            let newest = store.load_model_version(&kind, version)?;
            models.push(ModelView {
                created_at: newest.as_ref().map(|m| m.created_at.clone()),
                metrics: newest
                    .as_ref()
                    .map(|m| scalars(&m.metrics))
                    .unwrap_or_default(),
                params: newest
                    .as_ref()
                    .map(|m| scalars(&m.params))
                    .unwrap_or_default(),
                kind,
                version,
                versions,
            });
        }
        self.record_access(a, "system.read", vec![], vec![])?;
        Ok(RunsAndModels {
            imports,
            imports_total,
            models,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Policy, Principal};

    fn grant(role: &str) -> Access {
        Policy::default()
            .authorize(&Principal::local(Some(role)), Action::CustomersRead)
            .expect("reads")
    }

    fn entry(action: &str, detail: &str) -> MergeLogEntry {
        MergeLogEntry {
            at: "2025-01-01T00:00:00Z".into(),
            action: action.into(),
            customer_id: 3,
            other_id: Some(9),
            detail: detail.into(),
        }
    }

    #[test]
    fn merge_log_texts_follow_the_contact_class() {
        let known = vec![(
            "email:ann.lee@example.com".to_string(),
            "email:a***@example.com".to_string(),
        )];
        let e = entry(
            "split",
            "email:ann.lee@example.com split from customer #3 into #9 (1 link(s) switched off)",
        );
        // visible (the labels are the values): as logged
        let plain = vec![(known[0].0.clone(), known[0].0.clone())];
        assert_eq!(shaped_detail(&grant("admin"), &e, &plain), e.detail);
        // masked: the known value masked in place
        let m = shaped_detail(&grant("analyst"), &e, &known);
        assert!(m.starts_with("email:a***@example.com split"), "{m}");
        assert!(!m.contains("ann.lee"), "{m}");
        // an email the page does not know (typed otherwise): told without it
        let u = entry("unsplit", "email:Ann.Lee@Example.com rejoined customer #9");
        let m = shaped_detail(&grant("analyst"), &u, &known);
        assert_eq!(m, "an identity rejoined customer #9");
        // a phone typed with spaces leaves no digits behind
        let p = entry(
            "split",
            "phone:+1 555 013 4242 split from customer #3 into #9",
        );
        let m = shaped_detail(&grant("analyst"), &p, &known);
        assert!(!m.contains("4242"), "{m}");
        // no contact data: kept
        let c = entry(
            "merge",
            "customer #9 merged into #3: their keys were linked by an import",
        );
        assert_eq!(shaped_detail(&grant("analyst"), &c, &known), c.detail);
    }
}
