//! Consent by purpose, decided where the data is used.
//!
//! A customer's consent to a purpose (`personalization`, `profiling`,
//! `marketing`, `analytics`, or one the config adds) is the latest consent
//! row over all the customer's identities and every source: latest by time,
//! ties by the higher row id. Without a row the purpose's mode decides:
//! opt-in purposes are not allowed (`not_granted`), opt-out ones are. A
//! latest row that withdraws gives `withdrawn`.
//!
//! Every use declares its purpose and asks here, reading the store on each
//! request (never the snapshot or the per-generation insights): a change
//! takes effect on the next request, without retraining or a snapshot
//! refresh. Changes recorded through infogap are appended as new consent
//! rows under a store-made source (`self-service` when the customer acts,
//! `staff` otherwise) and its own file (`consent-changes`), so re-importing
//! a department's files (which replaces that file's rows) never loses them,
//! and no row is ever updated: the rows are the history.

use std::collections::HashMap;

use infogap_core::access::FieldClass;
use infogap_core::privacy::{ConsentMode, PrivacyConfig};
use infogap_store::{ConsentRecord, ConsentRow, WriteBatch};
use serde::Serialize;

use crate::access::{Access, PolicyNote, PrincipalKind};
use crate::{Engine, EngineError};

/// Source of the changes a customer makes to their own consent.
pub const SELF_SERVICE_SOURCE: &str = "self-service";
/// Source of the changes staff record on a customer's behalf.
pub const STAFF_SOURCE: &str = "staff";
/// The file (of either source) that recorded changes belong to.
pub const CHANGES_FILE: &str = "consent-changes";
/// Source kind and namespace of the store-made sources (shared with the
/// other self-service writes, `crate::selfservice`).
pub(crate) const CHANGES_KIND: &str = "consents";
pub(crate) const CHANGES_NAMESPACE: &str = "consent";

/// Why a purpose is not allowed for a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The latest record withdraws it.
    Withdrawn,
    /// An opt-in purpose the customer never granted.
    NotGranted,
}

impl Reason {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Withdrawn => "withdrawn",
            Reason::NotGranted => "not_granted",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decision for one purpose given its mode and the latest recorded
/// consent (`None`: nothing recorded).
pub fn decide(mode: ConsentMode, latest: Option<bool>) -> Result<(), Reason> {
    match (latest, mode) {
        (Some(true), _) => Ok(()),
        (Some(false), _) => Err(Reason::Withdrawn),
        (None, ConsentMode::OptIn) => Err(Reason::NotGranted),
        (None, ConsentMode::OptOut) => Ok(()),
    }
}

/// A customer left out of a use for lack of consent: the purpose and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Withheld {
    /// The purpose the use needs.
    pub purpose: String,
    /// Why it is not allowed.
    pub reason: Reason,
}

impl Withheld {
    /// In words, e.g. `consent profiling withdrawn`.
    pub fn describe(&self) -> String {
        match self.reason {
            Reason::Withdrawn => format!("consent {} withdrawn", self.purpose),
            Reason::NotGranted => format!("consent {} not granted", self.purpose),
        }
    }
}

/// How many customers a report left out for lack of consent, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LeftOut {
    /// The purpose the report needs.
    pub purpose: String,
    /// Customers whose latest record withdraws it.
    pub withdrawn: usize,
    /// Customers who never granted it (opt-in purposes).
    pub not_granted: usize,
}

impl LeftOut {
    /// Nobody left out yet.
    pub fn new(purpose: &str) -> LeftOut {
        LeftOut {
            purpose: purpose.to_string(),
            withdrawn: 0,
            not_granted: 0,
        }
    }

    /// Counts one customer left out.
    pub fn add(&mut self, r: Reason) {
        match r {
            Reason::Withdrawn => self.withdrawn += 1,
            Reason::NotGranted => self.not_granted += 1,
        }
    }

    /// Customers left out.
    pub fn total(&self) -> usize {
        self.withdrawn + self.not_granted
    }

    /// In words, for command lines.
    pub fn describe(&self) -> String {
        if self.total() == 0 {
            return format!("nobody left out for lack of {} consent", self.purpose);
        }
        format!(
            "{} left out for lack of {} consent ({} withdrawn, {} never granted)",
            self.total(),
            self.purpose,
            self.withdrawn,
            self.not_granted
        )
    }
}

/// The consent of every customer, read from the store at once (one query):
/// what a list or export asks before it includes anyone.
#[derive(Debug, Clone)]
pub struct Consents {
    privacy: PrivacyConfig,
    latest: HashMap<i64, Vec<(String, bool)>>,
}

impl Consents {
    /// Builds from the rules and the latest row per customer and purpose.
    pub fn new(privacy: PrivacyConfig, rows: Vec<infogap_store::LatestConsent>) -> Consents {
        let mut latest: HashMap<i64, Vec<(String, bool)>> = HashMap::new();
        for r in rows {
            latest
                .entry(r.customer_id)
                .or_default()
                .push((r.purpose, r.granted));
        }
        Consents { privacy, latest }
    }

    /// The rules in force.
    pub fn privacy(&self) -> &PrivacyConfig {
        &self.privacy
    }

    /// Whether `purpose` is allowed for `customer`, else why not.
    pub fn allows(&self, customer: i64, purpose: &str) -> Result<(), Reason> {
        let latest = self
            .latest
            .get(&customer)
            .and_then(|v| v.iter().find(|(p, _)| p == purpose))
            .map(|(_, g)| *g);
        decide(self.privacy.mode(purpose), latest)
    }

    /// Whether anyone at all may be refused `purpose`: an opt-in purpose,
    /// or an opt-out one someone withdrew (else every check passes and
    /// callers can skip looking people up).
    pub fn may_refuse(&self, purpose: &str) -> bool {
        self.privacy.mode(purpose) == infogap_core::privacy::ConsentMode::OptIn
            || self
                .latest
                .values()
                .any(|v| v.iter().any(|(p, g)| p == purpose && !*g))
    }

    /// Keeps the items whose customer allows `purpose`; counts the others.
    pub fn retain<T>(&self, items: &mut Vec<T>, purpose: &str, id: impl Fn(&T) -> i64) -> LeftOut {
        let mut out = LeftOut::new(purpose);
        items.retain(|x| match self.allows(id(x), purpose) {
            Ok(()) => true,
            Err(r) => {
                out.add(r);
                false
            }
        });
        out
    }
}

/// One purpose of one customer.
#[derive(Debug, Clone, Serialize)]
pub struct PurposeState {
    /// Purpose.
    pub purpose: String,
    /// `opt-in` or `opt-out` (from `[privacy.consent]`).
    pub mode: ConsentMode,
    /// Whether uses of this purpose include the customer.
    pub allowed: bool,
    /// Why not, when not allowed.
    pub reason: Option<Reason>,
    /// The latest recorded answer (`None`: nothing recorded, the mode decides).
    pub granted: Option<bool>,
    /// When the latest record was made (RFC 3339), if recorded with a time.
    pub since: Option<String>,
    /// The source of the latest record.
    pub source: Option<String>,
}

/// One recorded consent, as the history shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentChange {
    /// Row id.
    pub id: i64,
    /// Purpose.
    pub purpose: String,
    /// Granted (true) or withdrawn (false).
    pub granted: bool,
    /// When (RFC 3339), if known.
    pub time: Option<String>,
    /// Source.
    pub source: String,
    /// File of that source.
    pub file: String,
}

/// A customer's consent by purpose, and its history.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerConsent {
    /// Customer id.
    pub customer: i64,
    /// Display key (per the contact class).
    pub key: String,
    /// Every purpose the store knows, with its state.
    pub purposes: Vec<PurposeState>,
    /// Every record, oldest first (changes are appended, never rewritten).
    pub history: Vec<ConsentChange>,
    /// The policy that shaped this view.
    pub policy: PolicyNote,
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(
        || t.to_string(),
        |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// The latest record per purpose of a history (latest by time, records
/// without a time before any with one; ties by the higher row id).
fn latest_of(history: &[ConsentRecord]) -> HashMap<&str, &ConsentRecord> {
    let mut m: HashMap<&str, &ConsentRecord> = HashMap::new();
    for r in history {
        let key = |x: &ConsentRecord| (x.time.is_some(), x.time, x.id);
        match m.get(r.purpose.as_str()) {
            Some(cur) if key(cur) >= key(r) => {}
            _ => {
                m.insert(r.purpose.as_str(), r);
            }
        }
    }
    m
}

/// The state of every purpose (the configured ones, and any a record names)
/// given a customer's history.
pub fn states(privacy: &PrivacyConfig, history: &[ConsentRecord]) -> Vec<PurposeState> {
    let latest = latest_of(history);
    let mut purposes = privacy.purposes();
    let mut extra: Vec<String> = latest
        .keys()
        .filter(|p| !purposes.iter().any(|q| q == *p))
        .map(|p| p.to_string())
        .collect();
    extra.sort();
    purposes.extend(extra);
    purposes
        .into_iter()
        .map(|p| {
            let mode = privacy.mode(&p);
            let last = latest.get(p.as_str());
            let d = decide(mode, last.map(|r| r.granted));
            PurposeState {
                mode,
                allowed: d.is_ok(),
                reason: d.err(),
                granted: last.map(|r| r.granted),
                since: last.and_then(|r| r.time).map(rfc3339),
                source: last.map(|r| r.source.clone()),
                purpose: p,
            }
        })
        .collect()
}

impl Engine {
    /// The consent of every customer, read now from the store (one query).
    pub fn consents(&self) -> Result<Consents, EngineError> {
        Ok(Consents::new(
            self.privacy()?,
            self.store().latest_consents()?,
        ))
    }

    /// Whether one customer allows `purpose` (read now from the store).
    pub fn consent_allows(
        &self,
        customer: i64,
        purpose: &str,
    ) -> Result<Result<(), Reason>, EngineError> {
        let privacy = self.privacy()?;
        let history = self.store().consent_history(customer)?;
        let latest = latest_of(&history);
        Ok(decide(
            privacy.mode(purpose),
            latest.get(purpose).map(|r| r.granted),
        ))
    }

    /// The same as a [`Withheld`] note when not allowed.
    pub fn consent_withheld(
        &self,
        customer: i64,
        purpose: &str,
    ) -> Result<Option<Withheld>, EngineError> {
        Ok(self
            .consent_allows(customer, purpose)?
            .err()
            .map(|reason| Withheld {
                purpose: purpose.to_string(),
                reason,
            }))
    }

    /// A customer's consent by purpose and its history (`consents.read`,
    /// or a customer token on itself). Audited.
    pub fn share_consents(&self, a: &Access, id: i64) -> Result<CustomerConsent, EngineError> {
        let rec = self.admit(a, id)?;
        let view = self.consent_view(a, id, &rec)?;
        self.record_access(
            a,
            a.action.as_str(),
            vec![id],
            a.shown_classes(&[FieldClass::Contact]),
        )?;
        Ok(view)
    }

    /// Records a change of a customer's consent to one purpose
    /// (`consents.write`, or a customer token on itself: `self.write`), then
    /// answers as [`Engine::share_consents`]. An unknown purpose is refused
    /// with the known ones named. Audited.
    pub fn share_consent_change(
        &self,
        a: &Access,
        id: i64,
        purpose: &str,
        granted: bool,
    ) -> Result<CustomerConsent, EngineError> {
        let rec = self.admit(a, id)?;
        let privacy = self.privacy()?;
        let purpose = purpose.trim();
        let known = privacy.purposes();
        if !known.iter().any(|p| p == purpose) {
            let shown: String = purpose.chars().take(40).collect();
            return Err(EngineError::Invalid(format!(
                "purpose: {shown:?} is not a consent purpose; known purposes: {}",
                known.join(", ")
            )));
        }
        let source = if a.principal.kind == PrincipalKind::Customer {
            SELF_SERVICE_SOURCE
        } else {
            STAFF_SOURCE
        };
        self.record_consent(id, purpose, granted, source)?;
        let view = self.consent_view(a, id, &rec)?;
        self.record_access(
            a,
            a.action.as_str(),
            vec![id],
            a.shown_classes(&[FieldClass::Contact]),
        )?;
        Ok(view)
    }

    /// The calling customer's own consent (customer tokens).
    pub fn share_my_consents(&self, a: &Access) -> Result<CustomerConsent, EngineError> {
        let id = my_id(a)?;
        self.share_consents(a, id)
    }

    /// The calling customer changes their own consent (customer tokens).
    pub fn share_my_consent_change(
        &self,
        a: &Access,
        purpose: &str,
        granted: bool,
    ) -> Result<CustomerConsent, EngineError> {
        let id = my_id(a)?;
        self.share_consent_change(a, id, purpose, granted)
    }

    fn consent_view(
        &self,
        a: &Access,
        id: i64,
        rec: &crate::share::CustomerRecord,
    ) -> Result<CustomerConsent, EngineError> {
        let privacy = self.privacy()?;
        let history = self.store().consent_history(id)?;
        let purposes = states(&privacy, &history);
        Ok(CustomerConsent {
            customer: id,
            key: crate::share::show_key(a, id, &rec.display_key(a)),
            purposes,
            history: history
                .into_iter()
                .map(|r| ConsentChange {
                    id: r.id,
                    purpose: r.purpose,
                    granted: r.granted,
                    time: r.time.map(rfc3339),
                    source: r.source,
                    file: r.file,
                })
                .collect(),
            policy: a.note(),
        })
    }

    /// Appends a consent row for the customer under the store-made source
    /// `source` and its `consent-changes` file, at the current time. The
    /// write takes the next store generation like every write.
    fn record_consent(
        &self,
        id: i64,
        purpose: &str,
        granted: bool,
        source: &str,
    ) -> Result<(), EngineError> {
        let store = self.store();
        // the customer's first identity carries the row (facts point at
        // identities; the customer's rows are those of all its identities)
        let identity = store
            .customer_identities(id)?
            .iter()
            .map(|i| i.id)
            .min()
            .ok_or_else(|| EngineError::NotFound(format!("no customer #{id}")))?;
        if let Some(s) = store.sources()?.into_iter().find(|s| s.name == source)
            && (s.kind != CHANGES_KIND || s.namespace != CHANGES_NAMESPACE)
        {
            return Err(EngineError::Invalid(format!(
                "a source of the config is named {source:?} (kind {}), the name infogap keeps for recorded consent changes: rename that source",
                s.kind
            )));
        }
        let mut tx = store.begin()?;
        let source_id = tx.upsert_source(source, CHANGES_KIND, CHANGES_NAMESPACE)?;
        let file_id = tx.upsert_file(source_id, CHANGES_FILE)?;
        let batch = WriteBatch {
            consents: vec![ConsentRow {
                source_id,
                file_id,
                identity_id: identity,
                purpose: purpose.to_string(),
                granted,
                time: Some(chrono::Utc::now().timestamp()),
            }],
            ..Default::default()
        };
        tx.write(&batch)?;
        tx.commit()?;
        Ok(())
    }
}

fn my_id(a: &Access) -> Result<i64, EngineError> {
    a.principal
        .customer
        .ok_or_else(|| EngineError::Forbidden("only a customer token has a `me`".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: i64, purpose: &str, granted: bool, time: Option<i64>) -> ConsentRecord {
        ConsentRecord {
            id,
            purpose: purpose.into(),
            granted,
            time,
            source: "s".into(),
            file: "f".into(),
        }
    }

    #[test]
    fn the_mode_decides_without_a_record() {
        assert_eq!(decide(ConsentMode::OptIn, None), Err(Reason::NotGranted));
        assert_eq!(decide(ConsentMode::OptOut, None), Ok(()));
        assert_eq!(
            decide(ConsentMode::OptOut, Some(false)),
            Err(Reason::Withdrawn)
        );
        assert_eq!(decide(ConsentMode::OptIn, Some(true)), Ok(()));
    }

    #[test]
    fn latest_by_time_then_row_id() {
        let h = vec![
            rec(5, "marketing", true, Some(200)),
            rec(3, "marketing", false, Some(100)),
            rec(9, "marketing", false, None),
            rec(1, "profiling", true, Some(50)),
            rec(2, "profiling", false, Some(50)),
        ];
        let s = states(&PrivacyConfig::default(), &h);
        let m = s.iter().find(|p| p.purpose == "marketing").unwrap();
        assert!(m.allowed, "the newest (time 200) grants");
        let p = s.iter().find(|p| p.purpose == "profiling").unwrap();
        assert_eq!(
            p.reason,
            Some(Reason::Withdrawn),
            "same time: the higher id"
        );
        let a = s.iter().find(|p| p.purpose == "analytics").unwrap();
        assert!(a.allowed && a.granted.is_none(), "opt-out by default");
    }
}
