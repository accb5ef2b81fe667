//! Principals and the policy: who is acting, what their role may do, which
//! departments' facts they see, and how each field class is shown to them.
//!
//! This is the one place access is decided. The HTTP server, the CLI
//! (`--as-role`), exports and everything later call [`Policy::authorize`]
//! before a use case runs and pass the resulting [`Access`] into it; the use
//! case shapes its output with [`Access::visibility`] and the maskers here.
//! Default deny: an unknown role, or an action a role does not list, is
//! refused; a field class a role does not list is hidden.

use std::collections::{BTreeMap, BTreeSet};

use infogap_core::access::{AccessConfig, Action, FieldClass, RoleConfig, Visibility};
use serde::Serialize;

use crate::EngineError;

/// The built-in roles.
pub const BUILTIN_ROLES: [&str; 7] = [
    "admin",
    "analyst",
    "marketing",
    "sales",
    "support",
    "customer",
    "source",
];

/// What kind of principal acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// The local command line (the machine's operator).
    Local,
    /// A staff API key or user with a role.
    Key,
    /// A customer acting on their own data (a customer token).
    Customer,
    /// A source that only writes events.
    Source,
}

impl PrincipalKind {
    /// The audit name.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Local => "local",
            PrincipalKind::Key => "key",
            PrincipalKind::Customer => "customer",
            PrincipalKind::Source => "source",
        }
    }
}

/// Who is acting, and from where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Principal {
    /// Name shown in the audit trail (the key's name, `local`, …).
    pub name: String,
    /// Kind.
    pub kind: PrincipalKind,
    /// Role (a built-in or a configured one).
    pub role: String,
    /// The department a staff key is limited to.
    pub department: Option<String>,
    /// The customer a customer token acts as.
    pub customer: Option<i64>,
    /// The source a source key writes to.
    pub source: Option<String>,
    /// Where the request came from (client address or `cli`).
    pub origin: String,
    /// HTTP request id, if any.
    pub request_id: Option<String>,
}

impl Principal {
    /// The local operator: admin unless a role is asked for.
    pub fn local(role: Option<&str>) -> Principal {
        Principal {
            name: "local".into(),
            kind: PrincipalKind::Local,
            role: role.unwrap_or("admin").to_string(),
            department: None,
            customer: None,
            source: None,
            origin: "cli".into(),
            request_id: None,
        }
    }
}

/// One role's rights.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolePolicy {
    /// Name.
    pub name: String,
    /// Allowed actions.
    pub actions: BTreeSet<Action>,
    /// Visibility per field class (a missing class is hidden).
    pub fields: BTreeMap<FieldClass, Visibility>,
}

impl RolePolicy {
    /// The visibility of a class.
    pub fn visibility(&self, c: FieldClass) -> Visibility {
        self.fields.get(&c).copied().unwrap_or(Visibility::Hidden)
    }
}

fn builtin_role(name: &str) -> Option<RolePolicy> {
    use Action::*;
    use Visibility::*;
    let staff_reads = [CustomersLookup, CustomersRead];
    let (actions, fields): (Vec<Action>, [Visibility; 5]) = match name {
        "admin" => (
            Action::ALL
                .into_iter()
                .filter(|a| !matches!(a, SelfRead | SelfWrite | EventsWrite))
                .collect(),
            [Visible; 5],
        ),
        "analyst" => (
            [
                &staff_reads[..],
                &[
                    RecommendationsRead,
                    ChurnRead,
                    ClvRead,
                    SegmentsRead,
                    SegmentsExport,
                    StatsRead,
                    ForecastsRead,
                    ModelsTrain,
                    FeedbackRead,
                ],
            ]
            .concat(),
            // contact, demographic, behaviour, feedback_text, predictions
            [Masked, Visible, Visible, Hidden, Visible],
        ),
        "marketing" => (
            [
                &staff_reads[..],
                &[
                    RecommendationsRead,
                    ClvRead,
                    SegmentsRead,
                    SegmentsExport,
                    StatsRead,
                    ForecastsRead,
                    AlertsRead,
                    FeedbackRead,
                ],
            ]
            .concat(),
            [Visible, Visible, Visible, Hidden, Visible],
        ),
        "sales" => (
            [
                &staff_reads[..],
                &[
                    RecommendationsRead,
                    ChurnRead,
                    ClvRead,
                    StatsRead,
                    ForecastsRead,
                    AlertsRead,
                    FeedbackRead,
                ],
            ]
            .concat(),
            [Visible, Masked, Visible, Masked, Visible],
        ),
        "support" => (
            [
                &staff_reads[..],
                &[
                    ChurnRead,
                    ConsentsRead,
                    ConsentsWrite,
                    AlertsRead,
                    FeedbackRead,
                ],
            ]
            .concat(),
            [Visible, Hidden, Visible, Visible, Masked],
        ),
        // a customer sees their own data unmasked, through `/v1/me`
        "customer" => (vec![SelfRead, SelfWrite], [Visible; 5]),
        "source" => (vec![EventsWrite], [Hidden; 5]),
        _ => return None,
    };
    Some(RolePolicy {
        name: name.to_string(),
        actions: actions.into_iter().collect(),
        fields: FieldClass::ALL.into_iter().zip(fields).collect(),
    })
}

/// Attribute names that are contact data unless the config says otherwise.
const DEFAULT_CONTACT_ATTRS: [&str; 8] = [
    "first_name",
    "last_name",
    "name",
    "full_name",
    "address",
    "street",
    "postcode",
    "zip",
];

/// Attribute names that are demographic unless the config says otherwise.
const DEFAULT_DEMOGRAPHIC_ATTRS: [&str; 12] = [
    "age",
    "age_band",
    "age_desc",
    "birth_year",
    "gender",
    "income",
    "income_band",
    "income_desc",
    "region",
    "marital_status",
    "household_size",
    "kids",
];

/// The whole policy: roles, departments and the class of each attribute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    roles: BTreeMap<String, RolePolicy>,
    departments: BTreeMap<String, Vec<String>>,
    contact_attrs: BTreeSet<String>,
    demographic_attrs: BTreeSet<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::from_config(&AccessConfig::default())
    }
}

impl Policy {
    /// The built-in policy overridden by a config's `[access]` section.
    pub fn from_config(cfg: &AccessConfig) -> Policy {
        let mut roles: BTreeMap<String, RolePolicy> = BUILTIN_ROLES
            .iter()
            .filter_map(|r| builtin_role(r).map(|p| (r.to_string(), p)))
            .collect();
        for (name, rc) in &cfg.roles {
            let base = roles.remove(name).unwrap_or_else(|| RolePolicy {
                name: name.clone(),
                actions: BTreeSet::new(),
                fields: BTreeMap::new(),
            });
            roles.insert(name.clone(), merge_role(base, rc));
        }
        let lower = |v: &[String]| v.iter().map(|s| s.to_lowercase()).collect();
        Policy {
            roles,
            departments: cfg.departments.clone(),
            contact_attrs: cfg
                .contact_attributes
                .as_deref()
                .map(lower)
                .unwrap_or_else(|| {
                    DEFAULT_CONTACT_ATTRS
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                }),
            demographic_attrs: cfg
                .demographic_attributes
                .as_deref()
                .map(lower)
                .unwrap_or_else(|| {
                    DEFAULT_DEMOGRAPHIC_ATTRS
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                }),
        }
    }

    /// A role by name.
    pub fn role(&self, name: &str) -> Option<&RolePolicy> {
        self.roles.get(name)
    }

    /// Every role, by name.
    pub fn roles(&self) -> impl Iterator<Item = &RolePolicy> {
        self.roles.values()
    }

    /// The configured departments (every source is also one of its own name).
    pub fn departments(&self) -> &BTreeMap<String, Vec<String>> {
        &self.departments
    }

    /// The sources of a department: the configured list, or the source of
    /// that name. `None` when neither exists.
    pub fn department_sources(&self, dept: &str, all_sources: &[String]) -> Option<Vec<String>> {
        if let Some(s) = self.departments.get(dept) {
            return Some(s.clone());
        }
        all_sources
            .iter()
            .any(|s| s == dept)
            .then(|| vec![dept.to_string()])
    }

    /// The field class of an attribute.
    pub fn attribute_class(&self, name: &str) -> FieldClass {
        attribute_class(&self.contact_attrs, &self.demographic_attrs, name)
    }

    /// Checks that a role exists (for `keys create`, `--as-role`).
    pub fn check_role(&self, role: &str) -> Result<&RolePolicy, EngineError> {
        self.roles.get(role).ok_or_else(|| {
            EngineError::Invalid(format!(
                "unknown role {role:?}; roles: {}",
                self.roles.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// Decides whether `p` may take `action`; the grant carries what the
    /// use case needs to shape its output. Refusals are `Forbidden`.
    pub fn authorize(&self, p: &Principal, action: Action) -> Result<Access, EngineError> {
        let role = self.roles.get(&p.role).ok_or_else(|| {
            EngineError::Forbidden(format!("role {:?} is not defined by the policy", p.role))
        })?;
        if !role.actions.contains(&action) {
            return Err(EngineError::Forbidden(format!(
                "role {:?} may not {action}",
                p.role
            )));
        }
        if p.kind == PrincipalKind::Customer && p.customer.is_none() {
            return Err(EngineError::Forbidden(
                "a customer token without a customer".into(),
            ));
        }
        Ok(Access {
            principal: p.clone(),
            role: role.clone(),
            action,
            department_sources: None,
            contact_attrs: self.contact_attrs.clone(),
            demographic_attrs: self.demographic_attrs.clone(),
            records: None,
        })
    }
}

fn attribute_class(
    contact: &BTreeSet<String>,
    demographic: &BTreeSet<String>,
    name: &str,
) -> FieldClass {
    let n = name.to_lowercase();
    if contact.contains(&n) {
        FieldClass::Contact
    } else if demographic.contains(&n) {
        FieldClass::Demographic
    } else {
        FieldClass::Behaviour
    }
}

fn merge_role(mut base: RolePolicy, rc: &RoleConfig) -> RolePolicy {
    if let Some(a) = &rc.actions {
        base.actions = a.iter().copied().collect();
    }
    for (c, v) in &rc.fields {
        base.fields.insert(*c, *v);
    }
    base
}

/// A granted action: the principal, its role and, for a department key,
/// the store ids of the department's sources (filled by the engine).
#[derive(Debug, Clone)]
pub struct Access {
    /// Who.
    pub principal: Principal,
    /// Their role's rights.
    pub role: RolePolicy,
    /// The action granted.
    pub action: Action,
    /// Source ids whose facts a department key sees (`None`: all).
    pub department_sources: Option<Vec<i64>>,
    contact_attrs: BTreeSet<String>,
    demographic_attrs: BTreeSet<String>,
    /// Where customer records of the current snapshot generation are
    /// kept between requests (a server sets it; see [`Access::with_records`]).
    pub(crate) records: Option<std::sync::Arc<crate::share::RecordCache>>,
}

impl Access {
    /// The visibility of a field class. A customer acting on their own data
    /// sees it all.
    pub fn visibility(&self, c: FieldClass) -> Visibility {
        self.role.visibility(c)
    }

    /// Reads customer records through a cache of the current generation.
    pub fn with_records(mut self, cache: std::sync::Arc<crate::share::RecordCache>) -> Access {
        self.records = Some(cache);
        self
    }

    /// The field class of an attribute (as [`Policy::attribute_class`]).
    pub fn attribute_class(&self, name: &str) -> FieldClass {
        attribute_class(&self.contact_attrs, &self.demographic_attrs, name)
    }

    /// The classes shown (visible or masked): what the audit records.
    pub fn shown_classes(&self, classes: &[FieldClass]) -> Vec<String> {
        classes
            .iter()
            .filter(|c| self.visibility(**c) != Visibility::Hidden)
            .map(|c| c.as_str().to_string())
            .collect()
    }

    /// The policy note attached to every output of customer data.
    pub fn note(&self) -> PolicyNote {
        PolicyNote {
            role: self.role.name.clone(),
            department: self.principal.department.clone(),
            fields: FieldClass::ALL
                .into_iter()
                .map(|c| (c, self.visibility(c)))
                .collect(),
        }
    }
}

/// Which role and field visibilities shaped an output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyNote {
    /// Role.
    pub role: String,
    /// Department, if limited to one.
    pub department: Option<String>,
    /// Visibility per field class.
    pub fields: BTreeMap<FieldClass, Visibility>,
}

/// Masks an email: `a***@example.com`.
pub fn mask_email(v: &str) -> String {
    match v.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => mask_text_short(v),
    }
}

/// Masks a phone number: `***-***-4567` (the last four digits).
pub fn mask_phone(v: &str) -> String {
    let digits: Vec<char> = v.chars().filter(|c| c.is_ascii_digit()).collect();
    let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("***-***-{tail}")
}

/// Masks a short value (a name, a band): its first character and `***`.
pub fn mask_text_short(v: &str) -> String {
    let first: String = v.chars().take(1).collect();
    format!("{first}***")
}

/// Masks free text: only its length is told.
pub fn mask_free_text(v: &str) -> String {
    format!("[redacted: {} characters]", v.chars().count())
}

/// Masks an identity value by its kind.
pub fn mask_identity(kind: &str, value: &str) -> String {
    match kind {
        "email" => mask_email(value),
        "phone" => mask_phone(value),
        _ => mask_text_short(value),
    }
}

/// A probability as a band: what a masked prediction shows.
pub fn risk_band(p: f64) -> &'static str {
    if p >= 0.6 {
        "high"
    } else if p >= 0.3 {
        "medium"
    } else {
        "low"
    }
}

/// Whether an identity kind is contact data (emails and phones are; ids in
/// a namespace are pseudonymous identifiers).
pub fn is_contact_kind(kind: &str) -> bool {
    kind == "email" || kind == "phone"
}

/// Shows a contact value per visibility; `None` when hidden.
pub fn show_contact(v: Visibility, kind: &str, value: &str) -> Option<String> {
    match v {
        Visibility::Visible => Some(value.to_string()),
        Visibility::Masked => Some(mask_identity(kind, value)),
        Visibility::Hidden => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_what_identifies_nothing() {
        assert_eq!(mask_email("alice@example.com"), "a***@example.com");
        assert_eq!(mask_phone("+1 (555) 123-4567"), "***-***-4567");
        assert_eq!(mask_text_short("Alice"), "A***");
        assert_eq!(
            mask_free_text("my parcel is late"),
            "[redacted: 17 characters]"
        );
        assert!(!mask_email("alice@example.com").contains("alice"));
    }

    #[test]
    fn default_deny_and_builtin_roles() {
        let p = Policy::default();
        let mut who = Principal::local(Some("support"));
        assert!(p.authorize(&who, Action::CustomersRead).is_ok());
        assert!(matches!(
            p.authorize(&who, Action::SegmentsExport),
            Err(EngineError::Forbidden(_))
        ));
        who.role = "nobody".into();
        assert!(matches!(
            p.authorize(&who, Action::CustomersRead),
            Err(EngineError::Forbidden(_))
        ));
        let a = p
            .authorize(&Principal::local(Some("analyst")), Action::CustomersRead)
            .expect("analyst reads");
        assert_eq!(a.visibility(FieldClass::Contact), Visibility::Masked);
        assert_eq!(a.visibility(FieldClass::FeedbackText), Visibility::Hidden);
        // the source role can read nothing
        let s = p.role("source").expect("source role");
        assert!(
            FieldClass::ALL
                .iter()
                .all(|c| s.visibility(*c) == Visibility::Hidden)
        );
    }

    #[test]
    fn config_overrides_a_role_and_adds_one() {
        let cfg: AccessConfig = toml::from_str(
            r#"
            demographic_attributes = ["segment_code"]
            [roles.support]
            fields = { contact = "masked" }
            [roles.auditor]
            actions = ["audit.read"]
            "#,
        )
        .expect("parses");
        let p = Policy::from_config(&cfg);
        let s = p.role("support").expect("support");
        assert_eq!(s.visibility(FieldClass::Contact), Visibility::Masked);
        assert!(s.actions.contains(&Action::CustomersRead));
        let a = p.role("auditor").expect("auditor");
        assert_eq!(a.actions.len(), 1);
        assert_eq!(a.visibility(FieldClass::Contact), Visibility::Hidden);
        assert_eq!(p.attribute_class("segment_code"), FieldClass::Demographic);
        assert_eq!(p.attribute_class("age_band"), FieldClass::Behaviour);
        assert_eq!(p.attribute_class("first_name"), FieldClass::Contact);
    }
}
